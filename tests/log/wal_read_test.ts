/**
 * Reading unsealed data back from the write-ahead stream the way consumers of many partitions
 * do: large ranges read in parts — with positioned reads on a local directory, with ranged
 * GETs on other stores, from where the last read ended — returning exactly the batches Fetch's
 * rule selects: from the one holding the offset, whole batches while they fit the budget (the
 * first regardless with minOneBatch).
 */
import assert from "node:assert/strict";
import { LocalObjectStore } from "../../lib/storage/local_object_store.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import type { ObjectStore } from "../../lib/storage/object_store.ts";
import { WAL_SCAN_MIN_BYTES } from "../../lib/log/partition_log.ts";
import { scanBatches } from "../../lib/protocol/record_batch.ts";
import { append, batch, decode, type Harness, harness, TOPIC } from "./log_fixture.ts";

/** 40 batches of 4 records of ~16 KiB: one flush round, one range of ~2.5 MiB. */
async function bigRange(h: Harness) {
  const log = await h.manager.partition(TOPIC, 0);
  const acks = [];
  for (let b = 0; b < 40; b++) {
    acks.push(append(log, batch([0, 1, 2, 3].map((i) => `b${b}-r${i}-`.padEnd(16_000, "x"))), {
      acks: 1,
    }));
  }
  await h.flush();
  await Promise.all(acks);
  assert.equal(log.unsealedRangeCount, 1);
  assert.ok(log.unsealedRanges[0].length > WAL_SCAN_MIN_BYTES);
  return log;
}

async function withStores(fn: (local: Harness, memory: Harness) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-walread-" });
  const local = await harness({ objectStore: new LocalObjectStore(dir) });
  const memory = await harness({ objectStore: new MemoryObjectStore() });
  try {
    await fn(local, memory);
  } finally {
    await local.close();
    await memory.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The offsets a read returns by Fetch's rule, from the batches' offsets and sizes. */
function expected(
  batches: { first: number; last: number; size: number }[],
  offset: number,
  budget: number,
  minOne: boolean,
): number[] {
  const out: number[] = [];
  let bytes = 0;
  for (const b of batches) {
    if (b.last < offset) continue;
    if (bytes + b.size > budget && !(minOne && bytes === 0)) break;
    bytes += b.size;
    for (let o = b.first; o <= b.last; o++) out.push(o);
  }
  return out;
}

Deno.test("wal read: a large range is read in parts on every store, as Fetch's rule selects", async () => {
  await withStores(async (localH, memoryH) => {
    const local = await bigRange(localH);
    const memory = await bigRange(memoryH);
    // Committed ranges are cached as they are written: read them back from the stores.
    localH.manager.cache.clear();
    memoryH.manager.cache.clear();
    // The local store reads by position, the memory store by ranged GETs (or whole, when the
    // budget takes the whole range). The batches' layout comes from one whole read.
    assert.ok((localH.objectStore as ObjectStore).readRangeSync);
    assert.equal((memoryH.objectStore as ObjectStore).readRangeSync, undefined);
    const whole = await memory.read(0, 1 << 30);
    const all = new Uint8Array(whole.bytes);
    let at = 0;
    for (const c of whole.chunks) {
      all.set(c, at);
      at += c.byteLength;
    }
    const batches = scanBatches(all).batches.map((b) => ({
      first: b.baseOffset,
      last: b.baseOffset + b.lastOffsetDelta,
      size: b.size,
    }));
    assert.equal(batches.length, 40);
    memoryH.manager.cache.clear();
    for (const offset of [0, 1, 5, 77, 158, 159]) {
      for (const budget of [0, 1_000, 64_000, 300_000, 10 << 20]) {
        for (const minOneBatch of [false, true]) {
          const want = expected(batches, offset, budget, minOneBatch);
          for (const [name, log] of [["local", local], ["memory", memory]] as const) {
            const got = await log.read(offset, budget, { minOneBatch });
            assert.deepEqual(
              decode(got.chunks).map(([o]) => o),
              want,
              `${name} ${offset}/${budget}/${minOneBatch}`,
            );
          }
        }
      }
    }
    // A consumer going forward 64 KB at a time reads everything once, in order.
    const seen: number[] = [];
    let offset = 0;
    for (let i = 0; i < 200 && offset < local.highWatermark; i++) {
      const records = decode((await local.read(offset, 64_000, { minOneBatch: true })).chunks);
      assert.ok(records.length > 0);
      for (const [o] of records) if (o >= offset) seen.push(o);
      offset = records[records.length - 1][0] + 1;
    }
    assert.deepEqual(seen, Array.from({ length: 160 }, (_, i) => i));
  });
});

Deno.test("wal read: a truncated write-ahead file is an error, not wrong data", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-walread-" });
  const h = await harness({ objectStore: new LocalObjectStore(dir) });
  try {
    const log = await bigRange(h);
    const range = log.unsealedRanges[0];
    await Deno.truncate(`${dir}/${range.object}`, range.position + range.length / 2);
    h.manager.cache.clear();
    await assert.rejects(log.read(150, 100_000), /shorter|missing|corrupt/);
  } finally {
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("wal read: many small ranges of a local file come back in shared buffers, each exactly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-walread-" });
  // No cache: every range is read back from the file (as when a consumer is far behind).
  const local = await harness({
    objectStore: new LocalObjectStore(dir),
    config: { cacheBytesMax: 0 },
  });
  const memory = await harness({
    objectStore: new MemoryObjectStore(),
    config: { cacheBytesMax: 0 },
  });
  try {
    for (const h of [local, memory]) {
      const log = await h.manager.partition(TOPIC, 1);
      // 150 rounds of one small batch each: 150 ranges of ~100 bytes.
      for (let r = 0; r < 150; r++) {
        const ack = append(log, batch([`round-${r}`]), { acks: 1 });
        await h.flush();
        await ack;
      }
      assert.equal(log.unsealedRangeCount, 150);
      // A read takes up to READ_SEGMENTS_MAX ranges: read on from where each ended.
      const got: [number, string][] = [];
      for (let i = 0; i < 100 && got.length < 150; i++) {
        const read = await log.read(got.length, 1 << 20);
        const values = decode(read.chunks);
        assert.ok(values.length > 1, "many ranges per read");
        got.push(...values);
        // On the local directory a read's ranges land back to back in one buffer sized for
        // them, headers dropped, and come back as one view (no copy to join them); elsewhere
        // each comes from its own read.
        const buffers = new Set(read.chunks.map((c) => c.buffer)).size;
        if (h === local) {
          assert.equal(read.chunks.length, 1, `${read.chunks.length} chunks`);
          assert.equal(read.chunks[0].byteLength, read.bytes);
        } else {
          assert.equal(read.chunks.length, values.length);
          assert.equal(buffers, read.chunks.length);
        }
      }
      assert.deepEqual(got, [...Array(150).keys()].map((r) => [r, `round-${r}`]));
      // A second read of the same data is unaffected by the first one's buffers.
      const again = await log.read(75, 1 << 20);
      assert.deepEqual(decode(again.chunks)[0], [75, "round-75"]);
    }
  } finally {
    await local.close();
    await memory.close();
    await Deno.remove(dir, { recursive: true });
  }
});
