import assert from "node:assert/strict";
import { type RetentionPolicy, retentionTarget, RetentionTask } from "../../lib/log/retention.ts";
import type { SegmentMeta } from "../../lib/log/recovery.ts";
import { LOG_ERROR_CODE, LogError } from "../../lib/log/log_error.ts";
import { segmentObjectKey } from "../../lib/log/segment_format.ts";
import type { LogManager, PartitionLog } from "../../lib/log/log_manager.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { scanBatches } from "../../lib/protocol/record_batch.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import {
  append,
  appendAcked,
  appendSealed,
  batch,
  decode,
  eventually,
  GatedObjectStore,
  type Harness,
  harness,
  sealAll,
  settle,
  TOPIC,
} from "./log_fixture.ts";

/** Record ages in the tests are multiples of this (short, so the lease survives clock moves). */
const HOUR = 60_000;
/** Largest single clock step: keep-alives (every leaseTtlMs / 3) must get a turn to run. */
const STEP_MS = 10_000;
const NO_LIMIT: RetentionPolicy = { retentionMs: -1, retentionBytes: -1 };

function segment(baseOffset: number, lastOffset: number, size: number, ts: number): SegmentMeta {
  return { baseOffset, lastOffset, size, hasIndex: true, maxTimestamp: ts };
}

const byMeta = (s: SegmentMeta) => Promise.resolve(s.maxTimestamp!);

Deno.test("retentionTarget: the time rule deletes segments whose newest record is too old", async () => {
  const segs = [
    segment(0, 9, 100, 1_000),
    segment(10, 19, 100, 5_000),
    segment(20, 29, 100, 9_000),
  ];
  assert.equal(
    await retentionTarget(segs, { ...NO_LIMIT, retentionMs: 4_000 }, 10_000, byMeta),
    20,
  );
  // Exactly retention.ms old is kept (Kafka deletes only when strictly older).
  assert.equal(
    await retentionTarget(segs, { ...NO_LIMIT, retentionMs: 5_000 }, 10_000, byMeta),
    10,
  );
  assert.equal(await retentionTarget(segs, { ...NO_LIMIT, retentionMs: 0 }, 10_000, byMeta), 30);
  assert.equal(await retentionTarget(segs, NO_LIMIT, 10_000, byMeta), null);
  assert.equal(await retentionTarget([], { ...NO_LIMIT, retentionMs: 0 }, 10_000, byMeta), null);
});

Deno.test("retentionTarget: the size rule keeps at least retention.bytes", async () => {
  const segs = [segment(0, 9, 100, 0), segment(10, 19, 150, 0), segment(20, 29, 100, 0)];
  const size = (retentionBytes: number) =>
    retentionTarget(segs, { retentionMs: -1, retentionBytes }, 0, byMeta);
  assert.equal(await size(350), null);
  assert.equal(await size(349), null); // Deleting 100 would leave 250 < 349.
  assert.equal(await size(250), 10);
  assert.equal(await size(100), 20);
  assert.equal(await size(0), 30);
  // Both rules: time deletes the first, size then counts only what is left.
  const both = await retentionTarget(
    segs,
    { retentionMs: 10, retentionBytes: 100 },
    100,
    (s) => Promise.resolve(s.baseOffset === 0 ? 0 : 100),
  );
  assert.equal(both, 20);
});

Deno.test("retentionTarget: asks only for the timestamps the time rule needs", async () => {
  const segs = [segment(0, 9, 1, 0), segment(10, 19, 1, 95), segment(20, 29, 1, 99)];
  const asked: number[] = [];
  await retentionTarget(segs, { ...NO_LIMIT, retentionMs: 10 }, 100, (s) => {
    asked.push(s.baseOffset);
    return Promise.resolve(s.maxTimestamp!);
  });
  assert.deepEqual(asked, [0, 10]);
});

/** Three sealed segments with record timestamps now-3h, now-2h, now-1h (2 records each). */
async function threeSegments(h: Harness): Promise<PartitionLog> {
  const log = await h.manager.partition(TOPIC, 0);
  const now = h.clock.now();
  for (let i = 3; i >= 1; i--) {
    await appendSealed(h, log, batch([`a${i}`, `b${i}`], { timestamp: now - i * HOUR }));
  }
  assert.equal(log.segments.length, 3);
  return log;
}

/** Moves the clock in steps, letting lease keep-alives complete in between. */
async function pass(h: Harness, ms: number): Promise<void> {
  for (let left = ms; left > 0; left -= STEP_MS) {
    h.clock.advance(Math.min(STEP_MS, left));
    await settle(5);
  }
}

function task(h: Harness, policy: Partial<RetentionPolicy>, manager?: LogManager): RetentionTask {
  return new RetentionTask({
    logs: manager ?? h.manager,
    metadata: h.metadata,
    clock: h.clock,
    logger: silentLogger,
    brokerId: 1,
    policyFor: (t) => (t.name === TOPIC ? { ...NO_LIMIT, ...policy } : NO_LIMIT),
    intervalMs: 60_000,
  });
}

Deno.test("retention: retention.ms deletes old segments and advances the log start offset", async () => {
  const h = await harness();
  try {
    const log = await threeSegments(h);
    const oldKey = segmentObjectKey("default", TOPIC, 0, 0, "kfs");
    assert.ok(await h.objectStore.get(oldKey));
    const stats = await task(h, { retentionMs: 2.5 * HOUR }).runOnce();
    assert.equal(stats.segmentsDeleted, 1);
    assert.equal(log.logStartOffset, 2);
    assert.equal(log.highWatermark, 6);
    // Committed in the metadata store with the partition's epoch, objects gone.
    const { state } = await h.metadata.getPartitionState(TOPIC, 0);
    assert.deepEqual(state, {
      endOffset: 6,
      logStartOffset: 2,
      epoch: log.leaderEpoch,
      epochs: [[log.leaderEpoch, 0]],
      sealedEnd: 6,
    });
    assert.equal(await h.objectStore.get(oldKey), null);
    assert.equal(await h.objectStore.get(segmentObjectKey("default", TOPIC, 0, 0, "index")), null);
    // Readers see the new start: below it is out of range, from it the data is intact.
    assert.equal((await log.read(0, 1 << 20)).outOfRange, true);
    const read = await log.read(2, 1 << 20);
    assert.equal(read.logStartOffset, 2);
    assert.deepEqual(decode(read.chunks).map(([o]) => o), [2, 3, 4, 5]);
    // Time passes: everything expires; the log is empty but offsets are never reused.
    await pass(h, HOUR);
    await task(h, { retentionMs: 2.5 * HOUR }).runOnce();
    assert.equal(log.logStartOffset, 4);
    await pass(h, 2 * HOUR);
    await task(h, { retentionMs: 2.5 * HOUR }).runOnce();
    assert.equal(log.logStartOffset, 6);
    assert.deepEqual(log.segments, []);
    assert.equal((await h.objectStore.list("default/t/0/")).length, 0);
    const ack = await appendAcked(h, log, batch(["after"], { timestamp: h.clock.now() }));
    assert.deepEqual(ack, { baseOffset: 6, logStartOffset: 6 });
  } finally {
    await h.close();
  }
});

Deno.test("retention: retention.bytes keeps the newest segments within the limit", async () => {
  const h = await harness();
  try {
    const log = await threeSegments(h);
    const [first, second, third] = log.segments;
    await task(h, { retentionBytes: second.size + third.size }).runOnce();
    assert.equal(log.logStartOffset, first.lastOffset + 1);
    await task(h, { retentionBytes: third.size }).runOnce();
    assert.equal(log.logStartOffset, second.lastOffset + 1);
    assert.equal((await task(h, { retentionBytes: third.size }).runOnce()).segmentsDeleted, 0);
  } finally {
    await h.close();
  }
});

Deno.test("retention: the start offset survives a restart and recovery", async () => {
  const objectStore = new MemoryObjectStore();
  const h = await harness({ objectStore });
  try {
    await threeSegments(h);
    await task(h, { retentionMs: 1.5 * HOUR }).runOnce();
    await h.manager.close();
    const next = await h.newManager();
    const log = await next.partition(TOPIC, 0);
    assert.equal(log.logStartOffset, 4);
    assert.equal(log.highWatermark, 6);
    assert.deepEqual(log.segments.map((s) => s.baseOffset), [4]);
    assert.deepEqual(decode((await log.read(4, 1 << 20)).chunks).map(([o]) => o), [4, 5]);
  } finally {
    await h.close();
  }
});

Deno.test("retention: the timer runs passes on the injected clock until stopped", async () => {
  const h = await harness();
  const retention = task(h, { retentionMs: 3.5 * HOUR });
  try {
    const log = await threeSegments(h);
    retention.start();
    await settle();
    assert.equal(log.logStartOffset, 0, "no pass before the first interval");
    await pass(h, 60_000);
    await eventually(() => log.logStartOffset === 2, "the first timed pass");
    await pass(h, HOUR);
    await eventually(() => log.logStartOffset === 4, "the second timed pass");
    await retention.stop();
    await pass(h, 10 * HOUR);
    await settle();
    assert.equal(log.logStartOffset, 4, "no pass after stop");
  } finally {
    await retention.stop();
    await h.close();
  }
});

Deno.test("retention: an advance waits for the flush in flight and both commit", async () => {
  const gated = new GatedObjectStore(new MemoryObjectStore());
  const h = await harness({ objectStore: gated });
  try {
    const log = await threeSegments(h);
    gated.hold();
    const produced = append(log, batch(["new"], { timestamp: h.clock.now() }), { acks: 1 });
    h.clock.advance(10);
    await eventually(() => gated.waiting > 0, "the flush to reach the store");
    const pass = task(h, { retentionMs: 1.5 * HOUR }).runOnce();
    await settle();
    gated.release();
    const [ack, stats] = await Promise.all([produced, pass]);
    assert.deepEqual(ack, { baseOffset: 6, logStartOffset: 0 });
    assert.equal(stats.segmentsDeleted, 2);
    assert.equal(log.closed, false, "not fenced by its own commits");
    assert.equal(log.logStartOffset, 4);
    assert.equal(log.highWatermark, 7);
    const { state } = await h.metadata.getPartitionState(TOPIC, 0);
    assert.equal(state.logStartOffset, 4);
    assert.equal(state.endOffset, 7);
  } finally {
    gated.release();
    await h.close();
  }
});

Deno.test("retention: a fenced owner does not advance or delete anything", async () => {
  const h = await harness();
  try {
    const log = await threeSegments(h);
    // Another broker takes the partition over (our lease is gone in its view).
    await h.metadata.releasePartition(TOPIC, 0, { brokerId: 1, epoch: log.leaderEpoch });
    const other = await h.newManager({ brokerId: 2 });
    const taken = await other.partition(TOPIC, 0);
    await assert.rejects(
      log.advanceLogStartOffset(2),
      (e) => e instanceof LogError && e.code === LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER,
    );
    assert.equal(taken.logStartOffset, 0);
    assert.equal((await h.metadata.getPartitionState(TOPIC, 0)).state.logStartOffset, 0);
    assert.ok(await h.objectStore.get(segmentObjectKey("default", TOPIC, 0, 0, "kfs")));
  } finally {
    await h.close();
  }
});

Deno.test("retention: loads idle partitions with data, skips ones another broker owns", async () => {
  const h = await harness({ partitions: 2 });
  try {
    const now = h.clock.now();
    const log0 = await h.manager.partition(TOPIC, 0);
    await appendAcked(h, log0, batch(["x"], { timestamp: now - 3 * HOUR }));
    const other = await h.newManager({ brokerId: 2 });
    const log1 = await other.partition(TOPIC, 1);
    await appendAcked(h, log1, batch(["y"], { timestamp: now - 3 * HOUR }));
    // Broker 1 restarts: partition 0 is no longer loaded, nobody owns it.
    await h.manager.close();
    const restarted = await h.newManager();
    assert.equal(restarted.loadedPartition(TOPIC, 0), undefined);
    const stats = await task(h, { retentionMs: HOUR }, restarted).runOnce();
    assert.equal(stats.segmentsDeleted, 1);
    assert.equal((await h.metadata.getPartitionState(TOPIC, 0)).state.logStartOffset, 1);
    assert.equal((await h.metadata.getPartitionState(TOPIC, 1)).state.logStartOffset, 0);
    assert.equal(log1.logStartOffset, 0);
    assert.equal(restarted.loadedPartition(TOPIC, 2), undefined);
  } finally {
    await h.close();
  }
});

Deno.test("advanceLogStartOffset: refuses offsets beyond the high watermark", async () => {
  const h = await harness();
  try {
    const log = await threeSegments(h);
    await assert.rejects(log.advanceLogStartOffset(7), RangeError);
    assert.deepEqual(await log.advanceLogStartOffset(0), []);
    // Inside a segment: the segments wholly below go, the one holding the offset stays.
    const removed = await log.advanceLogStartOffset(3);
    assert.deepEqual(removed.map((s) => s.baseOffset), [0]);
    assert.deepEqual(log.segments.map((s) => s.baseOffset), [2, 4]);
    assert.equal((await log.read(2, 1 << 20)).outOfRange, true);
    assert.equal((await log.read(3, 1 << 20)).outOfRange, false);
  } finally {
    await h.close();
  }
});

Deno.test("retention: segments holding an open transaction's records stay until it ends", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await log.loadProducerState();
    const old = h.clock.now() - 3 * HOUR;
    await appendSealed(h, log, batch(["plain"], { timestamp: old })); // offset 0
    const txn = encodeRecordBatch([{
      key: null,
      value: new TextEncoder().encode("t"),
      timestamp: old,
    }], {
      producerId: 9,
      producerEpoch: 0,
      baseSequence: 0,
      transactional: true,
    });
    await appendSealed(h, log, { records: txn, batches: scanBatches(txn).batches }); // offset 1
    await appendSealed(h, log, batch(["later"], { timestamp: old })); // offset 2
    assert.equal(log.lastStableOffset, 1);
    // Every segment is past retention.ms, but only the one below the open transaction goes.
    await task(h, { retentionMs: HOUR }).runOnce();
    assert.equal(log.logStartOffset, 1);
    const marker = log.appendMarker(9, 0, false, 1);
    await settle();
    await h.flush();
    await marker;
    await sealAll(log);
    assert.equal(log.lastStableOffset, 4);
    await task(h, { retentionMs: HOUR }).runOnce();
    assert.equal(log.logStartOffset, 3, "the transaction ended: its segments go");
  } finally {
    await h.close();
  }
});
