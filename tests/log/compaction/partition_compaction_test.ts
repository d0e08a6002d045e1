/**
 * Compaction wired into the partition log: runs over sealed segments, rewrites under new
 * generations committed through a flush round, reads across the gaps, recovery after a
 * restart, tombstone expiry, the bounded key map, and replaced objects' deletion.
 */
import assert from "node:assert/strict";
import type { PartitionLog } from "../../../lib/log/log_manager.ts";
import { DEFAULT_COMPACTION_LIMITS } from "../../../lib/log/compaction/schedule.ts";
import { parseSegmentObjectKey } from "../../../lib/log/segment_format.ts";
import { MemoryObjectStore } from "../../../lib/storage/memory_object_store.ts";
import { readBatchInfo } from "../../../lib/protocol/record_batch.ts";
import { decodeKeyed, keyed, POLICY } from "./keyed_records.ts";
import { appendAcked, type Harness, harness, sealAll, settle, TOPIC } from "../log_fixture.ts";

async function appendSealedKeyed(
  h: Harness,
  log: PartitionLog,
  records: [string, string | null][],
) {
  await appendAcked(h, log, keyed(records, h.clock.now()));
  await sealAll(log);
}

/** Moves the manual clock in steps, so the session lease is kept alive on the way. */
async function advance(h: Harness, ms: number): Promise<void> {
  for (let left = ms; left > 0; left -= 5_000) {
    h.clock.advance(Math.min(5_000, left));
    await settle();
  }
}

async function readAll(log: PartitionLog, from = 0) {
  return decodeKeyed((await log.read(from, 1 << 30)).chunks);
}

async function segmentKeys(h: Harness): Promise<string[]> {
  return (await h.objectStore.list(`default/${TOPIC}/0/`)).map((o) => o.key)
    .filter((k) => parseSegmentObjectKey(k)?.kind === "kfs").sort();
}

Deno.test("compaction: keeps the latest record per key at its offset; reads cross the gaps", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await appendSealedKeyed(h, log, [["a", "a1"], ["b", "b1"]]); // 0-1
    await appendSealedKeyed(h, log, [["a", "a2"]]); // 2
    await appendSealedKeyed(h, log, [["c", "c1"], ["b", "b2"]]); // 3-4
    await appendSealedKeyed(h, log, [["a", "a3"]]); // 5
    assert.equal(log.segments.length, 4);
    assert.equal(log.dirtyRatio, 1);
    assert.ok(log.compactionDue(POLICY));

    const outcome = await log.compact(POLICY, DEFAULT_COMPACTION_LIMITS);
    assert.ok(outcome);
    assert.equal(outcome.segmentsRead, 4);
    // Segment 0-1 and 2 lose everything; 3-4 keeps both (c1, b2); 5 keeps a3: two rewrites.
    assert.equal(outcome.segmentsRewritten, 2);
    assert.equal(outcome.stats.recordsRemoved, 3);
    assert.equal(outcome.cleanedThrough, 6);
    assert.equal(log.dirtyRatio, 0);
    assert.deepEqual(await readAll(log), [[3, "c", "c1"], [4, "b", "b2"], [5, "a", "a3"]]);
    // A fetch at a removed offset gets the next batch; the high watermark is unchanged.
    assert.deepEqual((await readAll(log, 1))[0], [3, "c", "c1"]);
    assert.equal(log.highWatermark, 6);
    // Segment boundaries (and so every offset's segment) are unchanged.
    assert.deepEqual(
      log.segments.map((s) => [s.baseOffset, s.lastOffset, s.generation ?? 0]),
      [[0, 1, 1], [2, 2, 1], [3, 4, 0], [5, 5, 0]],
    );
    const state = (await h.metadata.getPartitionState(TOPIC, 0)).state;
    assert.deepEqual(state.compaction?.segments["0"]?.[0], 1);
    assert.equal(state.compaction?.cleanedThrough, 6);

    // Replaced generations stay for reads under way, then go.
    assert.equal((await segmentKeys(h)).length, 6);
    assert.equal(await log.deleteReplaced(), 0);
    // (The manager's compaction pass, every 5 s, deletes them once due; or a direct call.)
    await advance(h, 31_000);
    await log.deleteReplaced();
    assert.deepEqual((await segmentKeys(h)).map((k) => k.slice(k.lastIndexOf("/") + 1)), [
      "segment-00000000000000000000.g1.kfs",
      "segment-00000000000000000002.g1.kfs",
      "segment-00000000000000000003.kfs",
      "segment-00000000000000000005.kfs",
    ]);

    // Nothing new: not due again until something is sealed (or the recheck time passes).
    assert.equal(log.compactionDue(POLICY), false);

    // A new owner (restart) serves the committed generations, and appends continue.
    await h.manager.close();
    const next = await h.newManager();
    const again = await next.partition(TOPIC, 0);
    assert.deepEqual(await readAll(again), [[3, "c", "c1"], [4, "b", "b2"], [5, "a", "a3"]]);
    await appendSealedKeyed(h, again, [["b", "b3"]]); // 6
    const second = await again.compact(POLICY, DEFAULT_COMPACTION_LIMITS);
    assert.ok(second);
    assert.deepEqual(await readAll(again), [[3, "c", "c1"], [5, "a", "a3"], [6, "b", "b3"]]);
    assert.equal(again.segments.find((s) => s.baseOffset === 3)?.generation, 1);
  } finally {
    await h.close();
  }
});

Deno.test("compaction: tombstones go after delete.retention.ms from their segment's first cleaning", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const policy = { ...POLICY, deleteRetentionMs: 60_000 };
    await appendSealedKeyed(h, log, [["a", "a1"], ["b", "b1"]]);
    await appendSealedKeyed(h, log, [["a", null]]);
    await appendSealedKeyed(h, log, [["c", "c1"]]);
    await log.compact(policy, DEFAULT_COMPACTION_LIMITS);
    // The tombstone hides a1 and stays while delete.retention.ms runs.
    assert.deepEqual(await readAll(log), [[1, "b", "b1"], [2, "a", null], [3, "c", "c1"]]);
    await advance(h, 30_000);
    await log.compact(policy, DEFAULT_COMPACTION_LIMITS);
    assert.deepEqual(await readAll(log), [[1, "b", "b1"], [2, "a", null], [3, "c", "c1"]]);
    await advance(h, 31_000);
    assert.equal(log.compactionDue(policy), false, "nothing new, and the last run is recent");
    await log.compact(policy, DEFAULT_COMPACTION_LIMITS);
    assert.deepEqual(await readAll(log), [[1, "b", "b1"], [3, "c", "c1"]]);
    await advance(h, 60_000);
    assert.ok(log.compactionDue(policy), "re-checked after delete.retention.ms");
  } finally {
    await h.close();
  }
});

Deno.test("compaction: min.compaction.lag.ms keeps young records; the unsealed head is never touched", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await appendSealedKeyed(h, log, [["a", "a1"]]); // 0, old
    await advance(h, 120_000);
    await appendSealedKeyed(h, log, [["a", "a2"]]); // 1, young
    await appendAcked(h, log, keyed([["a", "a3"]], h.clock.now())); // 2, unsealed
    await log.compact({ ...POLICY, minCompactionLagMs: 60_000 }, DEFAULT_COMPACTION_LIMITS);
    // a1 is older than the lag, but a2 (which would replace it) is within it: all stay.
    assert.deepEqual((await readAll(log)).map((r) => r[0]), [0, 1, 2]);
    await log.compact(POLICY, DEFAULT_COMPACTION_LIMITS);
    // Without the lag, a1 goes (a2 is the latest sealed); a3 in the head is not seen at all.
    assert.deepEqual((await readAll(log)).map((r) => r[0]), [1, 2]);
  } finally {
    await h.close();
  }
});

Deno.test("compaction: more distinct keys than the key map holds take several passes, same result", async () => {
  const h = await harness({ config: { segmentBytesMax: 4_096 } });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const keys = 400;
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < keys; i += 50) {
        const records: [string, string][] = [];
        for (let k = i; k < i + 50; k++) records.push([`key-${k}`, `r${round}-${k}`]);
        await appendAcked(h, log, keyed(records, h.clock.now()));
      }
    }
    await sealAll(log, 4_096);
    // About 64 bytes of overhead + the key per entry: 2 KiB holds ~28 keys, far fewer than 400.
    const outcome = await log.compact(POLICY, { dedupeBufferBytes: 2_048, inputBytesMax: 1 << 30 });
    assert.ok(outcome);
    assert.ok(outcome.stats.passes > 10, `passes: ${outcome.stats.passes}`);
    assert.ok(
      outcome.stats.mapKeysMax <= 30,
      `keys in the map at once: ${outcome.stats.mapKeysMax}`,
    );
    const records = await readAll(log);
    assert.equal(records.length, keys);
    assert.deepEqual(
      records.map((r) => r[2]),
      Array.from({ length: keys }, (_, k) => `r1-${k}`),
    );
  } finally {
    await h.close();
  }
});

Deno.test("compaction: a run whose commit fails leaves the old segments served and deletes its orphans", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await appendSealedKeyed(h, log, [["a", "a1"]]);
    await appendSealedKeyed(h, log, [["a", "a2"]]);
    // Another owner takes the partition over between the rewrite and the commit.
    const { state, modRevision } = await h.metadata.getPartitionState(TOPIC, 0);
    const run = log.compact(POLICY, DEFAULT_COMPACTION_LIMITS);
    await h.metadataStore.put(
      `${h.metadata.partitionStateKey(TOPIC, 0)}`,
      new TextEncoder().encode(JSON.stringify({ ...state, epoch: state.epoch + 5 })),
    );
    assert.ok(modRevision > 0);
    await assert.rejects(run);
    assert.equal(log.closed, true);
    // The new owner sees the old generation only, and deletes the uncommitted rewrite.
    await h.manager.close();
    const next = await h.newManager();
    const again = await next.partition(TOPIC, 0);
    assert.deepEqual(await readAll(again), [[0, "a", "a1"], [1, "a", "a2"]]);
    assert.deepEqual(
      (await segmentKeys(h)).map((k) => parseSegmentObjectKey(k)?.generation),
      [0, 0],
    );
  } finally {
    await h.close();
  }
});

Deno.test("compaction: the log never ends in a gap; its last batch stays, emptied, until newer data follows", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const policy = { ...POLICY, deleteRetentionMs: 0 };
    await appendSealedKeyed(h, log, [["a", "a1"]]); // 0
    await appendSealedKeyed(h, log, [["a", null], ["b", null]]); // 1-2
    await log.compact(policy, DEFAULT_COMPACTION_LIMITS);
    await log.compact(policy, DEFAULT_COMPACTION_LIMITS);
    // Every record is gone, but a fetch at 1 still gets a batch (no records) spanning 1-2, so
    // a consumer moves on to the high watermark 3.
    assert.deepEqual(await readAll(log), []);
    const read = await log.read(1, 1 << 20);
    assert.equal(read.chunks.length, 1);
    const info = readBatchInfo(read.chunks[0], 0);
    assert.deepEqual([info.baseOffset, info.lastOffsetDelta, info.recordsCount], [1, 1, 0]);
    // Once something follows, the empty batch goes.
    await appendSealedKeyed(h, log, [["c", "c1"]]); // 3
    await log.compact(policy, DEFAULT_COMPACTION_LIMITS);
    assert.equal((await log.read(1, 1 << 20)).chunks.length, 1);
    assert.deepEqual(await readAll(log, 1), [[3, "c", "c1"]]);
    assert.equal(readBatchInfo((await log.read(1, 1 << 20)).chunks[0], 0).baseOffset, 3);
  } finally {
    await h.close();
  }
});

/** A memory store whose next `get` waits until released (a read caught mid-way). */
class HeldGetStore extends MemoryObjectStore {
  #held: { promise: Promise<void>; open: () => void } | null = null;
  #open: (() => void) | null = null;
  waiting = 0;
  holdNextGet(): void {
    let open!: () => void;
    this.#held = { promise: new Promise<void>((r) => (open = r)), open };
    this.#open = open;
  }
  release(): void {
    this.#open?.();
  }
  override async get(key: string): Promise<Uint8Array | null> {
    const held = this.#held;
    this.#held = null;
    if (held) {
      this.waiting++;
      await held.promise;
    }
    return await super.get(key);
  }
}

Deno.test("compaction: a read caught in a replaced segment finishes on it; later reads see the new one", async () => {
  const store = new HeldGetStore();
  const h = await harness({ objectStore: store });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await appendAcked(h, log, keyed([["a", "a1"], ["b", "b1"]], h.clock.now()));
    await appendAcked(h, log, keyed([["a", "a2"]], h.clock.now()));
    await sealAll(log);
    h.manager.cache.clear();
    store.holdNextGet();
    const caught = log.read(0, 1 << 20);
    for (let i = 0; i < 100 && store.waiting === 0; i++) await settle(1);
    assert.equal(store.waiting, 1, "the read waits in its GET of the old segment");
    const outcome = await log.compact(POLICY, DEFAULT_COMPACTION_LIMITS);
    assert.equal(outcome?.segmentsRewritten, 1);
    await log.deleteReplaced(); // not due yet: the replaced objects stay for reads under way
    store.release();
    assert.deepEqual(decodeKeyed((await caught).chunks), [[0, "a", "a1"], [1, "b", "b1"], [
      2,
      "a",
      "a2",
    ]]);
    assert.deepEqual(await readAll(log), [[1, "b", "b1"], [2, "a", "a2"]]);
  } finally {
    await h.close();
  }
});
