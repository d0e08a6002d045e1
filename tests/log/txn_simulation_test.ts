/**
 * Seeded simulation of transactions at the partition log (issue 12): producers write
 * transactional batches, commit and abort them (markers, with the coordinator's decision
 * numbers), a plain producer writes between them, sealing and compaction run, and the broker
 * process dies right after a random storage step and a new one takes over the same stores. The
 * coordinator is modelled: a decision, once made, is written again after a crash until acked
 * (a marker already stored is not appended twice), and a transaction with a failed append is
 * aborted with a bumped epoch, as a real client and coordinator do.
 *
 * Checked at every read_committed read (from a random offset, filtered as clients filter with
 * the aborted transactions the read returns): no record of an aborted or undecided transaction
 * is ever returned, and nothing at or past the last stable offset. At the end: every record of
 * every committed transaction that was acknowledged is read committed exactly once.
 */
import assert from "node:assert/strict";
import { LogError, LogManager, type PartitionLog } from "../../lib/log/log_manager.ts";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { ManualClock } from "../../lib/util/clock.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import { scanBatches, validateBatches } from "../../lib/protocol/record_batch.ts";
import { decodeRecordBatches, encodeRecordBatch } from "../../lib/protocol/records.ts";
import { FLUSH_INTERVAL_MS, settle, TEST_CONFIG, TOPIC } from "./log_fixture.ts";
import { Process, ProcessMetadataStore, ProcessObjectStore, STEPS } from "./process_stores.ts";
import { mulberry32 } from "./compaction/support.ts";
import { POLICY } from "./compaction/keyed_records.ts";

const PRODUCERS = 3;
const ROUNDS = 150;
const LIMITS = { dedupeBufferBytes: 1 << 20, inputBytesMax: 1 << 20 };
const enc = new TextEncoder();
const dec = new TextDecoder();

interface Txn {
  id: string;
  epoch: number;
  values: string[];
  /** An append of it failed: it can only be aborted. */
  failed: boolean;
  decision: { commit: boolean; number: number; acked: boolean } | null;
}

interface Producer {
  producerId: number;
  epoch: number;
  sequence: number;
  decisions: number;
  txn: Txn | null;
  /** Decided transactions whose markers are not acked yet (the coordinator retries them). */
  deciding: Txn[];
}

function txnBatch(p: Producer, values: string[]) {
  const records = encodeRecordBatch(
    values.map((v) => ({ key: enc.encode(v.split("/")[0]), value: enc.encode(v), timestamp: 1 })),
    {
      producerId: p.producerId,
      producerEpoch: p.epoch,
      baseSequence: p.sequence,
      transactional: true,
    },
  );
  const v = validateBatches(records, { maxBatchBytes: 1 << 20 });
  assert.ok(v.ok);
  return { records, batches: v.batches };
}

function plainBatch(value: string) {
  const records = encodeRecordBatch([{ key: enc.encode("plain"), value: enc.encode(value) }]);
  const v = validateBatches(records, { maxBatchBytes: 1 << 20 });
  assert.ok(v.ok);
  return { records, batches: v.batches };
}

/** What a read_committed client keeps of a read: data, minus aborted transactions' records. */
function committedValues(
  bytes: Uint8Array,
  aborted: { producerId: number; firstOffset: number }[],
): { offset: number; value: string }[] {
  const batches = scanBatches(bytes).batches;
  const ends = aborted.map((a) => ({
    ...a,
    end:
      batches.find((b) =>
        b.isControl && b.producerId === a.producerId && b.baseOffset >= a.firstOffset
      )?.baseOffset ?? Infinity,
  }));
  return decodeRecordBatches(bytes).records.filter((r) => {
    const b = batches.find((x) =>
      x.baseOffset <= r.offset && r.offset <= x.baseOffset + x.lastOffsetDelta
    )!;
    return !ends.some((a) =>
      a.producerId === b.producerId && a.firstOffset <= r.offset && r.offset < a.end
    );
  }).map((r) => ({ offset: r.offset, value: dec.decode(r.value!) }));
}

function join(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

async function run(seed: number): Promise<void> {
  const random = mulberry32(seed);
  // One partition: a round's index record names one range, so collection never merges records.
  const CRASH_STEPS = STEPS.filter((step) => step !== "wal-index-merge");
  const clock = new ManualClock();
  const objects = new MemoryObjectStore();
  const meta = new MemoryMetadataStore({ clock });
  await new ClusterMetadata(meta).createTopic({
    name: TOPIC,
    partitions: 1,
    configs: { "cleanup.policy": "compact" },
  });
  const managers: LogManager[] = [];
  let starts = 0;
  const start = async () => {
    const dieAt = starts++ === 0 || random() < 0.7
      ? {
        step: CRASH_STEPS[Math.floor(random() * CRASH_STEPS.length)],
        occurrence: 1 + Math.floor(random() * 4),
      }
      : null;
    const process = new Process(dieAt);
    const manager = new LogManager({
      objectStore: new ProcessObjectStore(objects, process),
      metadata: new ClusterMetadata(new ProcessMetadataStore(meta, process)),
      clock,
      logger: silentLogger,
      brokerId: 1,
      config: { ...TEST_CONFIG, segmentBytesMax: 2_048, walOrphanGraceMs: 0 },
    });
    managers.push(manager);
    await manager.start();
    return { manager, process };
  };
  /** Runs `op` through one flush round; its outcome, or the LogError it failed with. */
  const flushed = async <T>(op: () => Promise<T>): Promise<T | LogError> => {
    const pending = op().catch((e) => {
      if (e instanceof LogError || (e as Error).name === "ProducerStateError") return e as LogError;
      throw e;
    });
    await settle();
    clock.advance(FLUSH_INTERVAL_MS);
    return await pending;
  };

  const producers: Producer[] = Array.from({ length: PRODUCERS }, (_, i) => ({
    producerId: 100 + i,
    epoch: 0,
    sequence: 0,
    decisions: 0,
    txn: null,
    deciding: [],
  }));
  const committed: Txn[] = [];
  const abortedOrOpen = new Set<string>(); // values that must never be read committed
  const ackedPlain = new Set<string>();
  let current = await start();
  let crashes = 0;
  let reads = 0;
  let txnCount = 0;

  const check = async (log: PartitionLog, from: number) => {
    const result = await log.read(from, 1 << 20, { readCommitted: true });
    if (result.outOfRange) return;
    const bytes = join(result.chunks);
    const aborted = log.abortedTransactions(from, result.lastStableOffset - 1);
    for (const { offset, value } of committedValues(bytes, aborted)) {
      assert.ok(offset < result.lastStableOffset, `offset ${offset} below the LSO`);
      assert.ok(
        !abortedOrOpen.has(value),
        `read committed "${value}" of an aborted or undecided transaction (seed ${seed})`,
      );
    }
    reads++;
  };

  for (let round = 0; round < ROUNDS; round++) {
    const { manager, process } = current;
    let log: PartitionLog | null = null;
    try {
      log = await manager.partition(TOPIC, 0);
      await log.loadProducerState();
    } catch (error) {
      assert.ok(error instanceof LogError, String(error));
      log = null;
    }
    if (log) {
      const l = log;
      // The coordinator finishes decided transactions first (retries after a crash).
      for (const p of producers) {
        for (const t of [...p.deciding]) {
          const r = await flushed(() =>
            l.appendMarker(p.producerId, t.epoch, t.decision!.commit, t.decision!.number)
          );
          if (r instanceof LogError) break;
          t.decision!.acked = true;
          p.deciding.splice(p.deciding.indexOf(t), 1);
          if (t.decision!.commit) committed.push(t);
        }
      }
      const p = producers[Math.floor(random() * PRODUCERS)];
      const action = random();
      if (p.deciding.length > 0) {
        // Waits for its decision's markers.
      } else if (p.txn === null || (action < 0.5 && !p.txn.failed)) {
        p.txn ??= {
          id: `p${p.producerId}-t${txnCount++}`,
          epoch: p.epoch,
          values: [],
          failed: false,
          decision: null,
        };
        const t = p.txn;
        const values = Array.from(
          { length: 1 + Math.floor(random() * 3) },
          (_, i) => `k${Math.floor(random() * 4)}/${t.id}-r${t.values.length + i}`,
        );
        for (const v of values) abortedOrOpen.add(v); // undecided until committed
        const b = txnBatch(p, values);
        const r = await flushed(() => l.append(b.records, b.batches, { acks: -1 }));
        t.values.push(...values);
        if (r instanceof LogError) {
          t.failed = true;
          // The client bumps its epoch (KIP-360); the coordinator aborts with it.
          p.epoch++;
          p.sequence = 0;
          t.epoch = p.epoch;
        } else {
          p.sequence += values.length;
        }
      } else {
        const t = p.txn;
        const commit = !t.failed && random() < 0.6;
        t.decision = { commit, number: ++p.decisions, acked: false };
        if (commit) { for (const v of t.values) abortedOrOpen.delete(v); }
        p.deciding.push(t);
        p.txn = null;
      }
      if (random() < 0.3) {
        const value = `plain/${round}`;
        const b = plainBatch(value);
        const r = await flushed(() => l.append(b.records, b.batches, { acks: -1 }));
        if (!(r instanceof LogError)) ackedPlain.add(value);
      }
      if (random() < 0.3) await l.seal({ segmentBytes: 512 }).catch(() => {});
      if (random() < 0.2) await l.compact(POLICY, LIMITS).catch(() => null);
      if (!process.dead && !l.closed) {
        const from = l.logStartOffset +
          Math.floor(random() * (l.highWatermark - l.logStartOffset + 1));
        await check(l, from).catch((e) => {
          if (!(e instanceof LogError)) throw e;
        });
      }
    }
    if (process.dead) {
      crashes++;
      current = await start();
    }
  }
  // Everything decided gets its markers; then a fresh process reads the whole log.
  for (const p of producers) {
    if (p.txn) {
      p.txn.decision = { commit: false, number: ++p.decisions, acked: false };
      p.deciding.push(p.txn);
      p.txn = null;
    }
  }
  await settle();
  const reader = new LogManager({
    objectStore: objects,
    metadata: new ClusterMetadata(meta),
    clock,
    logger: silentLogger,
    brokerId: 1,
    config: { ...TEST_CONFIG, segmentBytesMax: 2_048 },
  });
  managers.push(reader);
  await reader.start();
  const log = await reader.partition(TOPIC, 0);
  await log.loadProducerState();
  for (const p of producers) {
    for (const t of p.deciding) {
      await flushed(() =>
        log.appendMarker(p.producerId, t.epoch, t.decision!.commit, t.decision!.number)
      );
      if (t.decision!.commit) committed.push(t);
    }
  }
  assert.equal(log.lastStableOffset, log.highWatermark, "no transaction left open");
  const all = committedValues(
    join((await log.read(0, 1 << 30, { readCommitted: true })).chunks),
    log.abortedTransactions(0, log.highWatermark),
  );
  const seen = new Set<string>();
  for (const { value } of all) {
    assert.ok(!seen.has(value), `"${value}" once`);
    seen.add(value);
    assert.ok(!abortedOrOpen.has(value), `"${value}" is not of an aborted transaction`);
  }
  // Compaction keeps the latest record per key only: check presence before any compaction
  // would be stronger, so count only keys' latest committed values.
  const latestCommitted = new Map<string, string>();
  for (const v of all) latestCommitted.set(v.value.split("/")[0], v.value);
  for (const t of committed) {
    for (const v of t.values) {
      const key = v.split("/")[0];
      assert.ok(latestCommitted.has(key), `key ${key} of committed "${v}" is readable`);
    }
  }
  for (const v of ackedPlain) {
    assert.ok(latestCommitted.get("plain") !== undefined, `plain records (e.g. "${v}") readable`);
  }
  assert.ok(crashes > 0, `crashes happened (seed ${seed})`);
  assert.ok(reads > 20, `read_committed reads were checked (${reads})`);
  assert.ok(committed.length > 0 && abortedOrOpen.size > 0, "both commits and aborts happened");
  for (const m of managers) await m.close().catch(() => {});
  await meta.close();
}

for (const seed of [1, 23, 99]) {
  Deno.test(`transaction simulation: no read_committed read returns an aborted or undecided record (seed ${seed})`, async () => {
    await run(seed);
  });
}
