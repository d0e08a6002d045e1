import assert from "node:assert/strict";
import { LOG_ERROR_CODE, LogError } from "../../lib/log/log_error.ts";
import { InvariantError } from "../../lib/util/assert.ts";
import { segmentObjectKey } from "../../lib/log/segment_format.ts";
import { TIMESTAMP_TYPE } from "../../lib/protocol/record_batch.ts";
import { decodeRecordBatches } from "../../lib/protocol/records.ts";
import { FaultyObjectStore } from "../../lib/storage/faulty_object_store.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { LocalObjectStore } from "../../lib/storage/local_object_store.ts";
import type { PutOptions } from "../../lib/storage/object_store.ts";
import { SEAL_YIELD_BYTES } from "../../lib/log/partition_log.ts";
import { setImmediate } from "node:timers";
import {
  append,
  appendAcked,
  appendSealed,
  batch,
  bigBatch,
  CountingObjectStore,
  decode,
  eventually,
  FLUSH_INTERVAL_MS,
  GatedObjectStore,
  type Harness,
  harness,
  isSettled,
  sealAll,
  settle,
  TOPIC,
} from "./log_fixture.ts";

Deno.test("append/read: acked batches read back with contiguous offsets", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const a = append(log, batch(["a0", "a1"]), { acks: 1 });
    const b = append(log, batch(["b0"]), { acks: -1 });
    const c = append(log, batch(["c0", "c1", "c2"]), { acks: 1 });
    await h.flush();
    assert.deepEqual(await Promise.all([a, b, c]), [
      { baseOffset: 0, logStartOffset: 0 },
      { baseOffset: 2, logStartOffset: 0 },
      { baseOffset: 3, logStartOffset: 0 },
    ]);
    assert.equal(log.highWatermark, 6);
    const read = await log.read(0, 1 << 20);
    assert.equal(read.outOfRange, false);
    assert.equal(read.highWatermark, 6);
    assert.deepEqual(decode(read.chunks), [
      [0, "a0"],
      [1, "a1"],
      [2, "b0"],
      [3, "c0"],
      [4, "c1"],
      [5, "c2"],
    ]);
    assert.equal(read.bytes, read.chunks.reduce((n, c) => n + c.length, 0));
    // One round: one write-ahead object, one state commit, nothing sealed yet.
    assert.equal(h.manager.flushStats.rounds, 1);
    const { state } = await h.metadata.getPartitionState(TOPIC, 0);
    assert.equal(state.endOffset, 6);
    assert.equal(state.sealedEnd, 0);
    assert.equal((await h.objectStore.list("default/~wal/")).length, 1);
    assert.equal(await h.objectStore.get(segmentObjectKey("default", TOPIC, 0, 0, "kfs")), null);
    // Sealing copies the range into a segment; reads are the same.
    await sealAll(log);
    assert.equal((await h.metadata.getPartitionState(TOPIC, 0)).state.sealedEnd, 6);
    assert.ok(await h.objectStore.get(segmentObjectKey("default", TOPIC, 0, 0, "kfs")));
    assert.ok(await h.objectStore.get(segmentObjectKey("default", TOPIC, 0, 0, "index")));
    assert.deepEqual(decode((await log.read(0, 1 << 20)).chunks).map(([o]) => o), [
      0,
      1,
      2,
      3,
      4,
      5,
    ]);
  } finally {
    await h.close();
  }
});

Deno.test("append: acks=0 resolves at once; the data stays invisible until its flush", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const result = await append(log, batch(["x"]), { acks: 0 });
    assert.deepEqual(result, { baseOffset: 0, logStartOffset: 0 });
    assert.equal(log.highWatermark, 0);
    assert.equal(log.logEndOffset, 1);
    assert.deepEqual((await log.read(0, 1 << 20)).chunks, []);
    await h.flush();
    assert.equal(log.highWatermark, 1);
    assert.deepEqual(decode((await log.read(0, 1 << 20)).chunks), [[0, "x"]]);
  } finally {
    await h.close();
  }
});

Deno.test("append: acks=1 waits for the flush timer, then is readable at once", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 1);
    const acked = append(log, batch(["one"]), { acks: 1 });
    assert.equal(await isSettled(acked), false, "not acked before the flush");
    h.clock.advance(FLUSH_INTERVAL_MS - 1);
    assert.equal(await isSettled(acked), false, "not acked before the interval elapsed");
    h.clock.advance(1);
    await acked;
    // Read-after-ack: visible immediately, from the cache, without a store read.
    assert.equal(log.highWatermark, 1);
    const hits = h.manager.cache.stats.hits;
    assert.deepEqual(decode((await log.read(0, 1 << 20)).chunks), [[0, "one"]]);
    assert.equal(h.manager.cache.stats.hits, hits + 1);
  } finally {
    await h.close();
  }
});

Deno.test("append: reaching flushBytes starts a round without the timer", async () => {
  const h = await harness({ config: { flushBytes: 2_000 } });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const small = append(log, batch(["s"]), { acks: 1 });
    assert.equal(await isSettled(small), false);
    const big = append(log, bigBatch("b", 2_500), { acks: 1 });
    await Promise.all([small, big]); // no clock advance
    assert.equal(log.highWatermark, 2);
  } finally {
    await h.close();
  }
});

Deno.test("flush: one round writes every partition and commits them together", async () => {
  const h = await harness();
  try {
    const logs = await Promise.all([0, 1, 2].map((p) => h.manager.partition(TOPIC, p)));
    const acks = logs.map((log, p) => append(log, batch([`p${p}`]), { acks: 1 }));
    await h.flush();
    await Promise.all(acks);
    assert.equal(h.manager.flushStats.rounds, 1);
    assert.equal(h.manager.flushStats.flushes, 3);
    const revisions = await Promise.all(
      [0, 1, 2].map(async (p) => (await h.metadata.getPartitionState(TOPIC, p)).modRevision),
    );
    assert.equal(new Set(revisions).size, 1, "all end offsets committed in one transaction");
  } finally {
    await h.close();
  }
});

Deno.test("flush: appends arriving during a round go to the next round", async () => {
  const gated = new GatedObjectStore(new MemoryObjectStore());
  const h = await harness({ objectStore: gated });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    gated.hold();
    const first = append(log, batch(["first"]), { acks: 1 });
    h.clock.advance(FLUSH_INTERVAL_MS);
    await settle();
    assert.ok(gated.waiting > 0, "round in flight");
    const second = append(log, batch(["second"]), { acks: 1 });
    gated.release();
    assert.deepEqual(await first, { baseOffset: 0, logStartOffset: 0 });
    assert.equal(log.highWatermark, 1);
    assert.equal(await isSettled(second), false, "second waits for its own round");
    await h.flush();
    assert.deepEqual(await second, { baseOffset: 1, logStartOffset: 0 });
    assert.equal(h.manager.flushStats.rounds, 2);
    assert.deepEqual(log.unsealedRanges.map((r) => [r.baseOffset, r.lastOffset]), [[0, 0], [1, 1]]);
  } finally {
    gated.release();
    await h.close();
  }
});

Deno.test("seal: ranges are sealed into segments of about segment.bytes, at range boundaries", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    for (let i = 0; i < 6; i++) await appendAcked(h, log, bigBatch(`b${i}`, 1_500));
    assert.equal(log.unsealedRanges.length, 6);
    await sealAll(log, 4_096);
    const segments = log.segments;
    assert.deepEqual(segments.map((s) => [s.baseOffset, s.lastOffset]), [[0, 1], [2, 3], [4, 5]]);
    assert.equal(log.unsealedBytes, 0);
    assert.equal(log.sealedEnd, 6);
    assert.deepEqual(decode((await log.read(0, 1 << 20)).chunks).map(([o]) => o), [
      0,
      1,
      2,
      3,
      4,
      5,
    ]);
    // A restart finds the same segments, and nothing unsealed.
    const reloaded = await (await h.newManager()).partition(TOPIC, 0);
    assert.deepEqual(reloaded.segments.map((s) => [s.baseOffset, s.lastOffset]), [[0, 1], [2, 3], [
      4,
      5,
    ]]);
    assert.equal(reloaded.unsealedRanges.length, 0);
  } finally {
    await h.close();
  }
});

Deno.test("read: position() answers as a read with no budget, at every offset", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await appendSealed(h, log, batch(["a", "b"]));
    await appendAcked(h, log, batch(["c"]));
    await log.advanceLogStartOffset(1);
    for (const offset of [-1, 0, 1, 2, 3, 4, 100]) {
      for (const readCommitted of [false, true]) {
        const read = await log.read(offset, 0, { readCommitted });
        assert.deepEqual(log.position(offset), read, `offset ${offset}`);
      }
    }
    assert.equal(log.position(0).outOfRange, true, "below the log start");
    assert.equal(log.position(3).outOfRange, false, "at the high watermark");
    assert.equal(log.position(4).outOfRange, true, "beyond the high watermark");
    await h.manager.close();
    assert.throws(() => log.position(1), LogError, "a closed log refuses, as read does");
    await assert.rejects(log.read(1, 0), LogError);
  } finally {
    await h.close();
  }
});

Deno.test("read: spans segments, honours maxBytes and minOneBatch", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const sizes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const b = bigBatch(`v${i}`, 500);
      sizes.push(b.records.length);
      await appendSealed(h, log, b);
    }
    assert.equal(log.segments.length, 4);
    const all = await log.read(0, 1 << 20);
    assert.equal(all.chunks.length, 4, "one chunk per segment");
    assert.deepEqual(decode(all.chunks).map(([o]) => o), [0, 1, 2, 3]);

    // maxBytes smaller than one batch: nothing, unless minOneBatch.
    assert.equal((await log.read(1, 10)).bytes, 0);
    const one = await log.read(1, 10, { minOneBatch: true });
    assert.deepEqual(decode(one.chunks).map(([o]) => o), [1]);
    // Exactly two batches' worth, starting mid-log.
    const two = await log.read(1, sizes[1] + sizes[2]);
    assert.deepEqual(decode(two.chunks).map(([o]) => o), [1, 2]);
    assert.equal(two.bytes, sizes[1] + sizes[2]);
    const twoAndABit = await log.read(1, sizes[1] + sizes[2] + 5);
    assert.equal(twoAndABit.bytes, two.bytes, "never a partial batch");
    // At the high watermark: empty, not out of range.
    const end = await log.read(4, 1 << 20);
    assert.equal(end.outOfRange, false);
    assert.equal(end.bytes, 0);
  } finally {
    await h.close();
  }
});

Deno.test("read: an offset inside a batch returns the whole batch", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const ack = append(log, batch(["a", "b", "c", "d"]), { acks: 1 });
    await h.flush();
    await ack;
    const read = await log.read(2, 1 << 20);
    assert.deepEqual(decode(read.chunks).map(([o]) => o), [0, 1, 2, 3]);
  } finally {
    await h.close();
  }
});

Deno.test("read: out of range below the log start and beyond the high watermark", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const ack = append(log, batch(["a"]), { acks: 1 });
    await h.flush();
    await ack;
    assert.equal((await log.read(2, 100)).outOfRange, true);
    assert.equal((await log.read(-1, 100)).outOfRange, true);
    assert.equal((await log.read(1, 100)).outOfRange, false);
    // Pending, uncommitted data does not extend the range.
    append(log, batch(["b"]), { acks: 0 });
    assert.equal((await log.read(2, 100)).outOfRange, true);
    await h.flush();
  } finally {
    await h.close();
  }
});

Deno.test("read: segments evicted from the cache are read back from the store", async () => {
  const store = new CountingObjectStore(new MemoryObjectStore());
  // Cache of 8 KiB: each 3 KiB segment evicts older ones; segments > 2 KiB
  // (cacheBytesMax / 4) are read by index + ranged GET.
  const h = await harness({ objectStore: store, config: { cacheBytesMax: 8 * 1024 } });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    for (let i = 0; i < 6; i++) {
      const acks = [0, 1, 2].map((j) => append(log, bigBatch(`s${i}-${j}`, 1_000), { acks: 1 }));
      await h.flush();
      await Promise.all(acks);
      assert.ok(h.manager.cache.bytes <= 8 * 1024, `cache within bound: ${h.manager.cache.bytes}`);
    }
    assert.ok(h.manager.cache.stats.evictions > 0);
    const before = store.counts.getRange;
    const all = await log.read(0, 1 << 20);
    assert.deepEqual(decode(all.chunks).map(([o]) => o), Array.from({ length: 18 }, (_, i) => i));
    assert.ok(store.counts.getRange > before, "ranged GETs were used");
    // Every single offset, with a budget of one batch, via the index.
    for (let o = 0; o < 18; o++) {
      const one = await log.read(o, 1, { minOneBatch: true });
      assert.deepEqual(decode(one.chunks).map(([x, v]) => [x, v.slice(0, 5)]), [[
        o,
        `s${Math.floor(o / 3)}-${o % 3}`.padEnd(5, "."),
      ]]);
    }
    // A cap of two batches from the middle of a segment.
    const size = (await log.read(4, 1, { minOneBatch: true })).bytes;
    const two = await log.read(4, 2 * size);
    assert.deepEqual(decode(two.chunks).map(([o]) => o), [4, 5]);
  } finally {
    await h.close();
  }
});

Deno.test("read: a missing or torn index (written without fsync) falls back to a scan", async () => {
  const store = new CountingObjectStore(new MemoryObjectStore());
  const h = await harness({ objectStore: store, config: { cacheBytesMax: 8 * 1024 } });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    for (let i = 0; i < 3; i++) {
      const acks = [0, 1, 2].map((j) => append(log, bigBatch(`s${i}-${j}`, 1_000), { acks: 1 }));
      await h.flush();
      await Promise.all(acks);
    }
    // As after a machine crash: one index gone, one truncated; a cold cache reads them.
    await store.delete(segmentObjectKey("default", TOPIC, 0, 0, "index"));
    await store.put(segmentObjectKey("default", TOPIC, 0, 3, "index"), new Uint8Array(5));
    const cold = await (await h.newManager()).partition(TOPIC, 0);
    for (let o = 0; o < 9; o++) {
      const one = await cold.read(o, 1, { minOneBatch: true });
      assert.deepEqual(decode(one.chunks).map(([x]) => x), [o]);
    }
  } finally {
    await h.close();
  }
});

Deno.test("read: a cold read fetches the following segments ahead, once each", async () => {
  const store = new CountingObjectStore(new MemoryObjectStore());
  const h = await harness({ objectStore: store });
  try {
    const first = await h.manager.partition(TOPIC, 0);
    for (let i = 0; i < 6; i++) await appendSealed(h, first, batch([`r${i}`]));
    const cold = await (await h.newManager()).partition(TOPIC, 0);
    const before = store.counts.get;
    // One batch from segment 0: segments 1-4 are fetched in the background.
    assert.deepEqual(decode((await cold.read(0, 1, { minOneBatch: true })).chunks), [[0, "r0"]]);
    await eventually(() => store.counts.get - before === 5, "read-ahead of segments 1-4");
    // Reading on through them costs no further GETs; segment 5 is fetched once.
    for (let o = 1; o < 6; o++) {
      assert.deepEqual(decode((await cold.read(o, 1, { minOneBatch: true })).chunks), [[
        o,
        `r${o}`,
      ]]);
    }
    assert.equal(store.counts.get - before, 6, "every segment was read exactly once");
  } finally {
    await h.close();
  }
});

Deno.test("read: small uncached segments are fetched whole, checked, and cached", async () => {
  const store = new CountingObjectStore(new MemoryObjectStore());
  const h = await harness({ objectStore: store });
  try {
    const first = await h.manager.partition(TOPIC, 0);
    await appendSealed(h, first, batch(["a", "b"]));
    // A second broker process (same id) takes over: its cache is cold.
    const other = await h.newManager();
    const log = await other.partition(TOPIC, 0);
    const gets = store.counts.get;
    assert.deepEqual(decode((await log.read(0, 1 << 20)).chunks), [[0, "a"], [1, "b"]]);
    assert.equal(store.counts.get, gets + 1);
    await log.read(0, 1 << 20);
    assert.equal(store.counts.get, gets + 1, "second read served from the cache");
  } finally {
    await h.close();
  }
});

Deno.test("read: a corrupt segment object fails the read with a storage error", async () => {
  const objectStore = new MemoryObjectStore();
  const h = await harness({ objectStore });
  try {
    const first = await h.manager.partition(TOPIC, 0);
    await appendSealed(h, first, batch(["a"]));
    const key = segmentObjectKey("default", TOPIC, 0, 0, "kfs");
    const bytes = (await objectStore.get(key))!;
    bytes[40] ^= 0xff;
    await objectStore.delete(key);
    await objectStore.put(key, bytes);
    const log = await (await h.newManager()).partition(TOPIC, 0);
    await assert.rejects(
      log.read(0, 1 << 20),
      (e) => e instanceof LogError && e.code === LOG_ERROR_CODE.KAFKA_STORAGE_ERROR,
    );
  } finally {
    await h.close();
  }
});

Deno.test("waitForData: woken by a commit, by the timeout, and by abort", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const woken = log.waitForData(0, 5_000);
    assert.equal(await isSettled(woken), false);
    append(log, batch(["a"]), { acks: 0 });
    assert.equal(await isSettled(woken), false, "pending data does not wake readers");
    await h.flush();
    await woken;
    assert.equal(log.highWatermark, 1);

    // Data already there: resolves at once.
    await log.waitForData(0, 5_000);

    const timedOut = log.waitForData(1, 1_000);
    h.clock.advance(999);
    assert.equal(await isSettled(timedOut), false);
    h.clock.advance(1);
    await timedOut;

    const controller = new AbortController();
    const aborted = log.waitForData(1, 60_000, controller.signal);
    assert.equal(await isSettled(aborted), false);
    controller.abort();
    await aborted;
  } finally {
    await h.close();
  }
});

Deno.test("timestamps: offsetForTimestamp and maxTimestamp", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    assert.equal(await log.offsetForTimestamp(0), null);
    assert.equal(await log.maxTimestamp(), null);
    // Records get timestamps base, base+1, ...
    const acks = [
      append(log, batch(["a", "b"], { timestamp: 100 }), { acks: 1 }), // 0:100 1:101
      append(log, batch(["c", "d", "e"], { timestamp: 200 }), { acks: 1 }), // 2..4: 200..202
    ];
    await h.flush();
    await Promise.all(acks);
    const ack = append(log, batch(["f"], { timestamp: 150 }), { acks: 1 }); // 5:150
    await h.flush();
    await ack;
    assert.deepEqual(await log.offsetForTimestamp(0), { offset: 0, timestamp: 100 });
    assert.deepEqual(await log.offsetForTimestamp(101), { offset: 1, timestamp: 101 });
    assert.deepEqual(await log.offsetForTimestamp(201), { offset: 3, timestamp: 201 });
    assert.deepEqual(await log.offsetForTimestamp(202), { offset: 4, timestamp: 202 });
    assert.equal(await log.offsetForTimestamp(203), null);
    assert.deepEqual(await log.maxTimestamp(), { offset: 4, timestamp: 202 });

    // The same answers from a cold broker that must read the segments.
    const cold = await (await h.newManager()).partition(TOPIC, 0);
    assert.deepEqual(await cold.offsetForTimestamp(150), { offset: 2, timestamp: 200 });
    assert.deepEqual(await cold.maxTimestamp(), { offset: 4, timestamp: 202 });
  } finally {
    await h.close();
  }
});

Deno.test("append: logAppendTimeMs stamps the batches", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const ack = append(log, batch(["a", "b"], { timestamp: 5 }), {
      acks: 1,
      logAppendTimeMs: 777,
    });
    await h.flush();
    await ack;
    const { records } = decodeRecordBatches(concat((await log.read(0, 1 << 20)).chunks));
    assert.deepEqual(records.map((r) => [r.timestamp, r.timestampType]), [
      [777, TIMESTAMP_TYPE.logAppendTime],
      [777, TIMESTAMP_TYPE.logAppendTime],
    ]);
    assert.deepEqual(await log.offsetForTimestamp(700), { offset: 0, timestamp: 777 });
  } finally {
    await h.close();
  }
});

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

Deno.test("failure: a failed put rejects the round, rolls back, re-assigns queued offsets", async () => {
  const faulty = new FaultyObjectStore(new MemoryObjectStore());
  const gated = new GatedObjectStore(faulty);
  const h = await harness({ objectStore: gated });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    gated.hold();
    faulty.failNext("put");
    const failed = append(log, batch(["doomed", "doomed"]), { acks: 1 });
    h.clock.advance(FLUSH_INTERVAL_MS);
    await settle();
    const queued = append(log, batch(["queued"]), { acks: 1 });
    assert.equal(log.logEndOffset, 3);
    gated.release();
    await assert.rejects(
      failed,
      (e) => e instanceof LogError && e.code === LOG_ERROR_CODE.KAFKA_STORAGE_ERROR,
    );
    assert.equal(log.highWatermark, 0);
    assert.equal(log.logEndOffset, 1, "rolled back; the queued append now starts at 0");
    await h.flush();
    assert.deepEqual(await queued, { baseOffset: 0, logStartOffset: 0 });
    assert.deepEqual(decode((await log.read(0, 1 << 20)).chunks), [[0, "queued"]]);
    assert.equal(h.manager.loadedPartition(TOPIC, 0), log, "still owned after a write failure");
  } finally {
    gated.release();
    await h.close();
  }
});

Deno.test("failure: an orphan left by a failed seal does not block the retry", async () => {
  const faulty = new FaultyObjectStore(new MemoryObjectStore());
  const h = await harness({ objectStore: faulty });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await appendAcked(h, log, batch(["kept"]));
    // The segment put lands, then reports failure: an orphan at base offset 0.
    faulty.failNext("put", "after");
    await assert.rejects(log.seal({ segmentBytes: 1 << 20 }), LogError);
    const key = segmentObjectKey("default", TOPIC, 0, 0, "kfs");
    assert.ok(await faulty.get(key), "orphan exists");
    assert.equal(log.sealedEnd, 0, "nothing sealed");
    assert.deepEqual(decode((await log.read(0, 1 << 20)).chunks), [[0, "kept"]]);
    assert.equal(await log.seal({ segmentBytes: 1 << 20 }), true);
    assert.equal(log.sealedEnd, 1);
    const reloaded = await (await h.newManager()).partition(TOPIC, 0);
    assert.deepEqual(decode((await reloaded.read(0, 1 << 20)).chunks), [[0, "kept"]]);
  } finally {
    await h.close();
  }
});

// A topic deleted (or the partition handed over) while its segment was being written: the seal
// used to wait for a flush round that never takes a closed log, so it never settled. The seal
// pass then never ended: no partition of the broker was sealed again, and the stop hung.
Deno.test("failure: a seal whose log shuts down while its segment is written rejects", async () => {
  const gated = new GatedObjectStore(new MemoryObjectStore());
  const h = await harness({ objectStore: gated });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await appendAcked(h, log, batch(["kept"]));
    gated.hold();
    const sealing = log.seal({ segmentBytes: 1 << 20 });
    await eventually(() => gated.waiting > 0, "the segment put reached the gate");
    log.shutdown(LogError.notLeader("handed over"));
    gated.release();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      sealing.then(() => "sealed", (e) => e instanceof LogError ? "rejected" : String(e)),
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve("still pending"), 2_000))),
    ]);
    clearTimeout(timer);
    assert.equal(outcome, "rejected");
    assert.equal(await isSettled(log.idleReads()), true, "nothing left in flight");
    const reloaded = await (await h.newManager()).partition(TOPIC, 0);
    assert.equal(reloaded.sealedEnd, 0, "the segment was not committed");
    assert.deepEqual(decode((await reloaded.read(0, 1 << 20)).chunks), [[0, "kept"]]);
  } finally {
    gated.release();
    await h.close();
  }
});

// The same for a transaction marker: appendMarker loads the producer state first (an await);
// a log shut down meanwhile used to get the marker queued where no round takes it, so the
// coordinator's marker write never ended.
Deno.test("failure: a marker whose log shuts down while the producer state loads rejects", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const marker = log.appendMarker(7, 0, true, 1);
    log.shutdown(LogError.notLeader("handed over"));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      marker.then(() => "appended", (e) => e instanceof LogError ? "rejected" : String(e)),
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve("still pending"), 2_000))),
    ]);
    clearTimeout(timer);
    assert.equal(outcome, "rejected");
  } finally {
    await h.close();
  }
});

Deno.test("failure: a conflicting segment found mid-seal is cleaned after an ownership check", async () => {
  const objectStore = new MemoryObjectStore();
  const h = await harness({ objectStore });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    // An object at the next sealed base offset appears behind the log's back
    // (a stalled former owner's late seal).
    await objectStore.put(segmentObjectKey("default", TOPIC, 0, 0, "kfs"), new Uint8Array(8));
    await appendAcked(h, log, batch(["mine"]));
    await sealAll(log);
    assert.equal(log.sealedEnd, 1);
    const reloaded = await (await h.newManager()).partition(TOPIC, 0);
    assert.deepEqual(decode((await reloaded.read(0, 1 << 20)).chunks), [[0, "mine"]]);
  } finally {
    await h.close();
  }
});

Deno.test("append: the write buffer bound rejects with a retriable error", async () => {
  const gated = new GatedObjectStore(new MemoryObjectStore());
  const h = await harness({
    objectStore: gated,
    config: { pendingBytesMax: 3_000, flushBytes: 100_000 },
  });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await append(log, bigBatch("a", 2_000), { acks: 0 });
    await assert.rejects(
      append(log, bigBatch("b", 2_000), { acks: 1 }),
      (e) => e instanceof LogError && e.code === LOG_ERROR_CODE.KAFKA_STORAGE_ERROR,
    );
    assert.equal(log.logEndOffset, 1, "the rejected append took no offset");
    await h.flush();
  } finally {
    await h.close();
  }
});

Deno.test("failure: orphan segments are cleaned even without conditional puts", async () => {
  // Without if-none-match nothing conflicts, so only the pre-seal cleanup
  // stops an orphan at a base offset inside a later committed segment from
  // looking committed to the next owner.
  const faulty = new FaultyObjectStore(new MemoryObjectStore({ supportsConditionalPut: false }));
  const h = await harness({ objectStore: faulty });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    for (let i = 0; i < 3; i++) await appendAcked(h, log, bigBatch(`d${i}`, 1_500));
    faulty.failNext("put", "after"); // the .kfs lands, reported failed
    await assert.rejects(log.seal({ segmentBytes: 2_048 }), LogError);
    assert.ok((await faulty.list("default/t/0/")).length >= 1, "orphan at 0");
    await sealAll(log, 1 << 20);
    const reloaded = await (await h.newManager()).partition(TOPIC, 0);
    assert.deepEqual(reloaded.segments.map((s) => [s.baseOffset, s.lastOffset]), [[0, 2]]);
    assert.deepEqual(decode((await reloaded.read(0, 1 << 20)).chunks).map(([o]) => o), [0, 1, 2]);
  } finally {
    await h.close();
  }
});

// librdkafka test 0041 (10 KB records, then 500 KB records, fetch.message.max.bytes=100000):
// a ranged read that had to skip large batches after a sparse index entry gave up after 8
// GETs and answered an empty read with no error, forever. Reads must reach the batch holding
// the offset whatever the record sizes, and return it even when it exceeds the budget (KIP-74).
Deno.test("read: ranged reads reach the batch holding the offset past any number of large batches (librdkafka 0041)", async () => {
  const store = new CountingObjectStore(new MemoryObjectStore());
  // Segments over 1 MiB (cacheBytesMax / 4) are read by index + ranged GETs.
  const h = await harness({
    objectStore: store,
    config: { cacheBytesMax: 4 * 1024 * 1024, segmentBytesMax: 64 * 1024 * 1024 },
  });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const sizes = [...Array(5).fill(10_000), ...Array(24).fill(500_000)];
    const acks = sizes.map((size, i) => append(log, bigBatch(`r${i}`, size), { acks: 1 }));
    await h.flush();
    await Promise.all(acks);
    await sealAll(log);
    assert.equal(log.segments.length, 1, "one large segment");
    // No index (as after a crash, or as sparse as an old segment's): reads scan from the start.
    const key = segmentObjectKey("default", TOPIC, 0, 0, "index");
    await store.delete(key);
    h.manager.cache.clear();
    for (const offset of [0, 4, 5, 6, 17, 28]) {
      const read = await log.read(offset, 100_000, { minOneBatch: true });
      const got = decode(read.chunks);
      assert.ok(got.length >= 1, `offset ${offset}: at least one batch`);
      assert.equal(got[0][0], offset, `offset ${offset}: the batch holding it comes first`);
      assert.equal(got[0][1].slice(0, `r${offset}`.length), `r${offset}`);
    }
    // A budget smaller than the batch without minOneBatch returns nothing, but does not fail.
    const none = await log.read(20, 100_000);
    assert.equal(none.bytes, 0);
  } finally {
    await h.close();
  }
});

// Ranged reads do not check batch CRCs (clients do), and a batch's base offset is not covered by
// its CRC: a flipped bit there served a CRC-valid batch at offsets its records never had.
Deno.test("read: a ranged read serves the batches before one whose base offset does not follow, and refuses that one (damage at rest)", async () => {
  const store = new MemoryObjectStore();
  // Segments over 2 KiB (cacheBytesMax / 4) are read by index + ranged GETs.
  const h = await harness({ objectStore: store, config: { cacheBytesMax: 8 * 1024 } });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const acks = [0, 1, 2, 3].map((i) => append(log, bigBatch(`b${i}`, 1_000), { acks: 1 }));
    await h.flush();
    await Promise.all(acks);
    await sealAll(log);
    assert.equal(log.segments.length, 1);
    const key = segmentObjectKey("default", TOPIC, 0, 0, "kfs");
    const pristine = (await store.get(key))!;
    assert.ok(pristine.byteLength > 2 * 1024, "read by ranges");
    /** Byte position of batch `n` in the segment (32-byte header, then batches). */
    const batchAt = (bytes: Uint8Array, n: number) => {
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      let at = 32;
      for (let i = 0; i < n; i++) at += 12 + view.getInt32(at + 8);
      return at;
    };
    const values = async (offset: number) =>
      decode((await log.read(offset, 1 << 20, { minOneBatch: true })).chunks).map(([o]) => o);
    assert.deepEqual(await values(0), [0, 1, 2, 3]);

    for (const [batch, offset] of [[1, 0], [2, 7], [3, 1_000_000]]) {
      const damaged = pristine.slice();
      new DataView(damaged.buffer).setBigInt64(batchAt(damaged, batch), BigInt(offset));
      await store.put(key, damaged);
      h.manager.cache.clear();
      // The batches before the damaged one are served; a read from the damaged one fails.
      assert.deepEqual(await values(0), [...Array(batch).keys()], `batch ${batch}`);
      await assert.rejects(
        () => log.read(batch, 1 << 20, { minOneBatch: true }),
        (e) => e instanceof LogError && e.code === LOG_ERROR_CODE.KAFKA_STORAGE_ERROR,
        `batch ${batch} claiming offset ${offset}`,
      );
    }
    // Batch 2 claiming offset 3 (bit 0 flipped): a read from offset 2 does not get it as 2-or-3.
    const damaged = pristine.slice();
    new DataView(damaged.buffer).setBigInt64(batchAt(damaged, 2), 3n);
    await store.put(key, damaged);
    h.manager.cache.clear();
    await assert.rejects(() => log.read(2, 1 << 20, { minOneBatch: true }), LogError);
    await store.put(key, pristine);
    h.manager.cache.clear();
    assert.deepEqual(await values(2), [2, 3]);
  } finally {
    await h.close();
  }
});

/** One sealed segment of four batches of four ~400-byte records: offsets 0-3, 4-7, 8-11, 12-15. */
async function fourByFour(h: Harness) {
  const log = await h.manager.partition(TOPIC, 0);
  const acks = [0, 1, 2, 3].map((b) =>
    append(log, batch([0, 1, 2, 3].map((r) => `b${b}-r${r}-`.padEnd(400, "x"))), { acks: 1 })
  );
  await h.flush();
  await Promise.all(acks);
  await sealAll(log);
  return log;
}

// A read that starts inside a segment (a consumer's committed offset) has no batch before the
// damaged one in its response to compare with: the scan still knows, from the index entry (or the
// segment's base offset) and every batch it skips, where the next batch must start.
Deno.test("read: a ranged read from inside a segment refuses a batch whose base offset moved back to cover the offset", async () => {
  const store = new MemoryObjectStore();
  const h = await harness({ objectStore: store, config: { cacheBytesMax: 8 * 1024 } });
  try {
    const log = await fourByFour(h);
    assert.equal(log.segments.length, 1);
    const key = segmentObjectKey("default", TOPIC, 0, 0, "kfs");
    const pristine = (await store.get(key))!;
    assert.ok(pristine.byteLength > 2 * 1024, "read by ranges");
    const view = new DataView(pristine.buffer, pristine.byteOffset);
    let at = 32;
    for (let i = 0; i < 2; i++) at += 12 + view.getInt32(at + 8);
    assert.equal(view.getBigInt64(at), 8n, "batch 2 starts at offset 8");
    // Batch 2 claims offsets 7-10 (bit 0 of its base offset cleared): it covers offset 8.
    const damaged = pristine.slice();
    new DataView(damaged.buffer).setBigInt64(at, 7n);
    await store.put(key, damaged);
    h.manager.cache.clear();
    // A budget of one batch (the batch after would not show the damage) and a large one.
    for (const offset of [8, 9, 10]) {
      for (const budget of [1, 1 << 20]) {
        await assert.rejects(
          () => log.read(offset, budget, { minOneBatch: true }),
          (e) => e instanceof LogError && e.code === LOG_ERROR_CODE.KAFKA_STORAGE_ERROR,
          `read from ${offset}, budget ${budget}`,
        );
      }
    }
    // From before the damage: the batches up to it.
    const from5 = decode((await log.read(5, 1 << 20, { minOneBatch: true })).chunks);
    assert.deepEqual(from5.map(([o]) => o), [4, 5, 6, 7]);
  } finally {
    await h.close();
  }
});

// Indexes are written without fsync, so one can be torn over a sound segment: an entry whose
// offset disagrees with its batch sends the read back to the segment's start, not to an error.
Deno.test("read: an index entry whose offset disagrees with its batch is read past from the segment's start", async () => {
  const store = new MemoryObjectStore();
  const h = await harness({ objectStore: store, config: { cacheBytesMax: 8 * 1024 } });
  try {
    const log = await fourByFour(h);
    const indexKey = segmentObjectKey("default", TOPIC, 0, 0, "index");
    const index = (await store.get(indexKey))!.slice();
    const view = new DataView(index.buffer);
    const count = view.getInt32(6);
    assert.ok(count >= 1);
    // The last entry claims one offset more than its batch's base offset (still increasing).
    const at = 16 + (count - 1) * 12;
    const base = Number(view.getBigInt64(at));
    view.setBigInt64(at, BigInt(base + 1));
    await store.put(indexKey, index);
    h.manager.cache.clear();
    const read = decode((await log.read(base + 1, 1 << 20, { minOneBatch: true })).chunks);
    assert.deepEqual(
      read.map(([o]) => o),
      [...Array(16 - base).keys()].map((i) => base + i),
    );
    assert.equal(read[1][1], `b${base / 4}-r1-`.padEnd(400, "x"));
  } finally {
    await h.close();
  }
});

// The fallback above is for damaged bytes only: a read the store fails is not repeated from the
// segment's start (on S3 that would double every failing GET during an outage, each with a warning).
Deno.test("read: a ranged read the store fails is not retried from the segment's start", async () => {
  let failing = false;
  let reads = 0;
  const store = new (class extends MemoryObjectStore {
    override getRange(key: string, start: number, end: number): Promise<Uint8Array | null> {
      if (!failing) return super.getRange(key, start, end);
      reads++;
      return Promise.reject(new Error("injected: connection reset"));
    }
  })();
  const h = await harness({ objectStore: store, config: { cacheBytesMax: 8 * 1024 } });
  try {
    const log = await fourByFour(h);
    const index = (await store.get(segmentObjectKey("default", TOPIC, 0, 0, "index")))!;
    const count = new DataView(index.buffer, index.byteOffset).getInt32(6);
    const lastEntry = Number(
      new DataView(index.buffer, index.byteOffset).getBigInt64(16 + (count - 1) * 12),
    );
    assert.ok(lastEntry > 0, "the read below starts from an index entry past the segment's start");
    h.manager.cache.clear();
    await log.read(lastEntry, 1 << 20, { minOneBatch: true }); // the index is cached now
    failing = true;
    await assert.rejects(
      () => log.read(lastEntry, 1 << 20, { minOneBatch: true }),
      (e) => e instanceof LogError && e.code === LOG_ERROR_CODE.KAFKA_STORAGE_ERROR,
    );
    assert.equal(reads, 1, "one failed GET, not a second one from the segment's start");
  } finally {
    await h.close();
  }
});

Deno.test("invariants: a second flush of a partition, or a commit without its chunk, goes to the policy", async () => {
  const broken: unknown[] = [];
  const h = await harness({ onBrokenInvariant: (error) => void broken.push(error) });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    append(log, batch(["a"]), { acks: 0 });
    const first = log.takeFlush()!;
    append(log, batch(["b"]), { acks: 0 });
    assert.throws(() => log.takeFlush(), InvariantError);
    assert.equal(broken.length, 1);
    assert.match(String(broken[0]), /two flushes of one partition/);
    // The round "committed" without saying where the chunk went.
    assert.throws(() => first.committed(1, null), InvariantError);
    assert.equal(broken.length, 2);
    assert.match(String(broken[1]), /committed without its chunk/);
  } finally {
    await h.close();
  }
});

// On a local disk small chunks are read synchronously; resolved reads chain as microtasks, so a
// seal that never gave the loop back held every produce behind it (~30 ms per 64 MiB segment).
Deno.test("seal: on a local disk a seal streams its ranges and lets the event loop turn about once per SEAL_YIELD_BYTES read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "partition_log_seal_yield_" });
  let turns = 0;
  // Bytes the seal handed to the store within one turn of the event loop, at most.
  let lastTurn = -1;
  let sinceTurn = 0;
  let mostWithoutTurn = 0;
  let groups = 0;
  class ProbeStore extends LocalObjectStore {
    override putStream(
      key: string,
      source: AsyncIterable<Uint8Array[]>,
      options?: PutOptions,
    ): Promise<void> {
      if (!key.endsWith(".kfs")) return super.putStream(key, source, options);
      async function* probe() {
        for await (const group of source) {
          if (turns !== lastTurn) {
            lastTurn = turns;
            sinceTurn = 0;
          }
          for (const part of group) sinceTurn += part.byteLength;
          mostWithoutTurn = Math.max(mostWithoutTurn, sinceTurn);
          groups++;
          yield group;
        }
      }
      return super.putStream(key, probe(), options);
    }
  }
  const chunk = 64 * 1024; // read synchronously (at most WAL_BLOCK_READ_MAX)
  const rounds = 4 * SEAL_YIELD_BYTES / chunk;
  // A cache too small to hold the chunks: the seal reads them back from the files. Segment
  // writes are not paced, so the store writes in big pieces and gives few turns of its own.
  const h = await harness({
    objectStore: new ProbeStore(dir),
    config: { cacheBytesMax: 64 * 1024, segmentBytesMax: 64 * 1024 * 1024 },
  });
  let ticking = true;
  try {
    const log = await h.manager.partition(TOPIC, 0);
    for (let i = 0; i < rounds; i++) await appendAcked(h, log, bigBatch(`c${i}`, chunk - 200));
    h.manager.cache.clear();
    const tick = () => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    await sealAll(log, 64 * 1024 * 1024);
    assert.equal(log.segments.length, 1);
    // Header, one group per range, footer: streamed, not gathered into one segment first.
    assert.equal(groups, rounds + 2);
    assert.ok(
      mostWithoutTurn <= SEAL_YIELD_BYTES + chunk,
      `read without a turn of the event loop: ${mostWithoutTurn} bytes`,
    );
    assert.equal(decode((await log.read(0, 64 << 20)).chunks).length, rounds);
  } finally {
    ticking = false;
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
});

// A seal reads its ranges once more and then drops them; caching them evicted the newest data,
// which tail readers are about to ask for (on S3, one GET per miss).
Deno.test("seal: the ranges a seal reads back do not push the tail out of the cache", async () => {
  const store = new CountingObjectStore(new MemoryObjectStore());
  const h = await harness({
    objectStore: store,
    config: { cacheBytesMax: 1_500_000, segmentBytesMax: 64 * 1024 * 1024 },
  });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    // One range each, bigger than WAL_BLOCK_READ_MAX: read on their own, not through blocks.
    for (let i = 0; i < 4; i++) await appendAcked(h, log, bigBatch(`r${i}`, 600_000));
    h.manager.cache.clear();
    const tail = async () => decode((await log.read(3, 1 << 20)).chunks).map(([o]) => o);
    assert.deepEqual(await tail(), [3]);
    const readsBefore = store.counts.get + store.counts.getRange;
    assert.deepEqual(await tail(), [3], "cached");
    assert.equal(store.counts.get + store.counts.getRange, readsBefore);
    // Seals the three older ranges (1.8 MB, more than the whole cache).
    assert.equal(await log.seal({ segmentBytes: 1_900_000 }), true);
    assert.equal(log.sealedEnd, 3);
    const sealReads = store.counts.get + store.counts.getRange - readsBefore;
    assert.equal(sealReads, 3, "the seal read each older range once");
    assert.deepEqual(await tail(), [3]);
    assert.equal(
      store.counts.get + store.counts.getRange - readsBefore,
      sealReads,
      "the tail is still cached after the seal",
    );
  } finally {
    await h.close();
  }
});
