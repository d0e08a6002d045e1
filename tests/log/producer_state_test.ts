/**
 * The idempotent producers' state: the pure rules and table (lib/log/producer_state.ts), then
 * the partition log's use of it — check and record atomic with offsets, roll back with a failed
 * flush, duplicates of pending appends waiting for durability, rebuild from the log tail on
 * acquisition, and expiry.
 */
import assert from "node:assert/strict";
import {
  applyBatch,
  checkBatch,
  inSequence,
  lastSequence,
  PRODUCER_BATCHES_RETAINED,
  PRODUCER_ERROR_CODE,
  type ProducerBatchHeader,
  type ProducerEntry,
  ProducerStateError,
  ProducerStateTable,
  SEQUENCE_MAX,
} from "../../lib/log/producer_state.ts";
import { PRODUCER_STATE_SCAN_SEGMENTS_MAX } from "../../lib/log/partition_log.ts";
import { LOG_ERROR_CODE, LogError } from "../../lib/log/log_error.ts";
import { validateBatches } from "../../lib/protocol/record_batch.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { FaultyObjectStore } from "../../lib/storage/faulty_object_store.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import {
  append,
  decode,
  GatedObjectStore,
  harness,
  isSettled,
  sealAll,
  settle,
  type TestBatch,
  TOPIC,
} from "./log_fixture.ts";

const PID = 1000;

function header(
  baseSequence: number,
  records = 1,
  options: { producerId?: number; producerEpoch?: number; baseOffset?: number } = {},
): ProducerBatchHeader {
  return {
    producerId: options.producerId ?? PID,
    producerEpoch: options.producerEpoch ?? 0,
    baseSequence,
    lastOffsetDelta: records - 1,
    baseOffset: options.baseOffset ?? 0,
  };
}

function entryWith(batches: [number, number, number][], producerEpoch = 0): ProducerEntry {
  let entry: ProducerEntry | undefined;
  for (const [seq, records, offset] of batches) {
    entry = applyBatch(entry, header(seq, records, { producerEpoch, baseOffset: offset }), 0);
  }
  return entry!;
}

function code(verdict: ReturnType<typeof checkBatch>): number | string {
  return verdict.outcome === "rejected" ? verdict.code : verdict.outcome;
}

// ---- pure rules --------------------------------------------------------------------

Deno.test("sequences: last sequence and succession wrap at 2^31 - 1", () => {
  assert.equal(lastSequence(0, 0), 0);
  assert.equal(lastSequence(10, 4), 14);
  assert.equal(lastSequence(SEQUENCE_MAX, 0), SEQUENCE_MAX);
  assert.equal(lastSequence(SEQUENCE_MAX, 1), 0);
  assert.equal(lastSequence(SEQUENCE_MAX - 1, 3), 1);
  assert.ok(inSequence(4, 5));
  assert.ok(inSequence(SEQUENCE_MAX, 0));
  assert.ok(!inSequence(4, 6));
  assert.ok(!inSequence(4, 4));
});

Deno.test("check: an unknown producer must start at sequence 0 (KIP-360)", () => {
  assert.equal(code(checkBatch(undefined, header(0, 5))), "append");
  assert.equal(code(checkBatch(undefined, header(0, 5, { producerEpoch: 7 }))), "append");
  assert.equal(
    code(checkBatch(undefined, header(42))),
    PRODUCER_ERROR_CODE.UNKNOWN_PRODUCER_ID,
  );
});

Deno.test("check: in-sequence batches append; gaps and old sequences are out of order", () => {
  const entry = entryWith([[0, 5, 100]]);
  assert.equal(code(checkBatch(entry, header(5, 3))), "append");
  assert.equal(
    code(checkBatch(entry, header(6, 1))),
    PRODUCER_ERROR_CODE.OUT_OF_ORDER_SEQUENCE_NUMBER,
  );
  assert.equal(
    code(checkBatch(entry, header(2, 1))),
    PRODUCER_ERROR_CODE.OUT_OF_ORDER_SEQUENCE_NUMBER,
    "an overlapping range that is not a stored batch is not a duplicate",
  );
});

Deno.test("check: epochs fence older instances; a new epoch restarts at sequence 0", () => {
  const entry = entryWith([[0, 5, 100]], 3);
  assert.equal(
    code(checkBatch(entry, header(5, 1, { producerEpoch: 2 }))),
    PRODUCER_ERROR_CODE.INVALID_PRODUCER_EPOCH,
  );
  assert.equal(code(checkBatch(entry, header(0, 1, { producerEpoch: 4 }))), "append");
  assert.equal(
    code(checkBatch(entry, header(5, 1, { producerEpoch: 4 }))),
    PRODUCER_ERROR_CODE.OUT_OF_ORDER_SEQUENCE_NUMBER,
  );
  const bumped = applyBatch(entry, header(0, 2, { producerEpoch: 4, baseOffset: 200 }), 0);
  assert.equal(bumped.producerEpoch, 4);
  assert.deepEqual(bumped.batches, [{
    firstSeq: 0,
    lastSeq: 1,
    firstOffset: 200,
    lastOffset: 201,
  }]);
});

Deno.test("check: a retry of one of the last 5 batches is a duplicate with its offsets", () => {
  let entry: ProducerEntry | undefined;
  for (let b = 0; b < 7; b++) {
    entry = applyBatch(entry, header(b * 10, 10, { baseOffset: 1000 + b * 10 }), 0);
  }
  assert.equal(entry!.batches.length, PRODUCER_BATCHES_RETAINED);
  assert.deepEqual(checkBatch(entry, header(60, 10)), {
    outcome: "duplicate",
    batchIndex: 0,
    firstOffset: 1060,
    lastOffset: 1069,
  });
  assert.deepEqual(checkBatch(entry, header(20, 10)), {
    outcome: "duplicate",
    batchIndex: 0,
    firstOffset: 1020,
    lastOffset: 1029,
  });
  // Older than the retained batches: no longer provable, refused rather than stored twice.
  assert.equal(
    code(checkBatch(entry, header(10, 10))),
    PRODUCER_ERROR_CODE.OUT_OF_ORDER_SEQUENCE_NUMBER,
  );
  // Same sequence, other epoch: not a duplicate.
  assert.equal(
    code(checkBatch(entry, header(60, 10, { producerEpoch: 1 }))),
    PRODUCER_ERROR_CODE.OUT_OF_ORDER_SEQUENCE_NUMBER,
  );
});

Deno.test("check: a sequence that wraps past 2^31 - 1 continues at 0", () => {
  const entry = entryWith([[SEQUENCE_MAX - 4, 5, 0]]);
  assert.equal(entry.batches[0].lastSeq, SEQUENCE_MAX);
  assert.equal(code(checkBatch(entry, header(0, 3))), "append");
  const wrapped = entryWith([[SEQUENCE_MAX - 1, 4, 0]]);
  assert.equal(wrapped.batches[0].lastSeq, 1);
  assert.equal(code(checkBatch(wrapped, header(2, 1))), "append");
  assert.equal(checkBatch(wrapped, header(SEQUENCE_MAX - 1, 4)).outcome, "duplicate");
});

// ---- the table ---------------------------------------------------------------------

Deno.test("table: pending appends are checked against, committed by commit, undone by rollback", () => {
  const table = new ProducerStateTable();
  const first = header(0, 2, { baseOffset: 0 });
  assert.equal(table.check([first]).outcome, "append");
  table.record([first], 1);
  assert.equal(table.committed(PID), undefined);
  assert.equal(table.get(PID)?.batches.length, 1);
  // The next batch follows the pending one; a retry of it is a duplicate while still pending.
  assert.equal(table.check([header(2, 1)]).outcome, "append");
  assert.equal(table.check([header(0, 2)]).outcome, "duplicate");
  const second = header(2, 1, { baseOffset: 2 });
  table.record([second], 2);
  table.commit([first], 2, 3);
  assert.equal(table.committed(PID)?.batches.length, 1, "only the first batch is committed");
  assert.equal(table.get(PID)?.batches.length, 2, "the second is still pending");
  table.rollback();
  assert.equal(table.get(PID)?.batches.length, 1, "rolled back to the committed state");
  assert.equal(table.check([header(2, 1)]).outcome, "append");
  assert.equal(table.check([header(3, 1)]).outcome, "rejected");
  table.record([second], 4);
  table.commit([second], 3, 5);
  assert.deepEqual(table.committed(PID), table.get(PID));
  assert.equal(table.committed(PID)?.lastTimestampMs, 5);
});

Deno.test("table: batches without a producer id bypass the state", () => {
  const table = new ProducerStateTable();
  const plain = header(-1, 3, { producerId: -1, producerEpoch: -1 });
  assert.equal(table.check([plain]).outcome, "append");
  table.record([plain], 1);
  table.commit([plain], 3, 1);
  assert.equal(table.size, 0);
});

Deno.test("table: several batches in one request are checked in order", () => {
  const table = new ProducerStateTable();
  assert.equal(table.check([header(0, 2), header(2, 2)]).outcome, "append");
  assert.equal(table.check([header(0, 2), header(3, 2)]).outcome, "rejected");
  const other = header(0, 1, { producerId: PID + 1 });
  assert.equal(table.check([header(0, 2), other]).outcome, "append");
  assert.equal(table.check([header(0, 2), header(0, 2)]).outcome, "rejected", "same batch twice");
  const stored = header(0, 2, { baseOffset: 7 });
  table.record([stored], 1);
  table.commit([stored], 9, 1);
  const again = table.check([header(2, 1), header(0, 2)]);
  assert.equal(again.outcome, "rejected", "a duplicate mixed with new data is refused");
  assert.deepEqual(table.check([header(0, 2)]), {
    outcome: "duplicate",
    batchIndex: 0,
    firstOffset: 7,
    lastOffset: 8,
  });
});

Deno.test("table: idle producers expire; the least recently written go past the bound", () => {
  const table = new ProducerStateTable({ expirationMs: 1_000, producersMax: 3 });
  const write = (producerId: number, nowMs: number) => {
    const b = header(0, 1, { producerId });
    table.record([b], nowMs);
    table.commit([b], 1, nowMs);
  };
  write(1, 0);
  write(2, 100);
  write(3, 200);
  write(1, 300); // Producer 1 is now the most recently written.
  write(4, 400); // Over the bound: producer 2, the least recently written, goes.
  assert.deepEqual([1, 2, 3, 4].map((id) => table.get(id) !== undefined), [
    true,
    false,
    true,
    true,
  ]);
  assert.equal(table.expire(1_199), 0);
  assert.equal(table.expire(1_200), 1, "producer 3 idle for 1000 ms");
  assert.equal(table.get(3), undefined);
  // A producer with a pending append never expires under it.
  table.record([header(1, 1, { producerId: 4, baseOffset: 5 })], 1_300);
  assert.equal(table.expire(5_000), 1, "producer 1 expires, producer 4 is pending");
  assert.ok(table.get(4));
  assert.equal(table.size, 1);
});

Deno.test("table: load() rebuilds what commits built", () => {
  const batches = [
    header(0, 3, { baseOffset: 0 }),
    header(0, 1, { producerId: 7, baseOffset: 3 }),
    header(3, 2, { baseOffset: 4 }),
    header(0, 1, { producerEpoch: 1, producerId: 7, baseOffset: 6 }),
  ];
  const live = new ProducerStateTable();
  for (const b of batches) live.record([b], 10);
  live.commit(batches, 7, 10);
  const loaded = new ProducerStateTable();
  for (const b of batches) loaded.load(b, 10);
  for (const id of [PID, 7]) assert.deepEqual(loaded.get(id), live.get(id));
  assert.equal(loaded.get(7)?.producerEpoch, 1);
});

Deno.test("table: rejects bad limits", () => {
  assert.throws(() => new ProducerStateTable({ expirationMs: 0 }), RangeError);
  assert.throws(() => new ProducerStateTable({ producersMax: 0 }), RangeError);
});

// ---- the partition log -------------------------------------------------------------

const enc = new TextEncoder();

/** An idempotent batch as a producer sends it. */
function idem(
  values: string[],
  baseSequence: number,
  options: { producerId?: number; producerEpoch?: number } = {},
): TestBatch {
  const records = encodeRecordBatch(
    values.map((v, i) => ({ key: null, value: enc.encode(v), timestamp: 1_000 + i })),
    {
      producerId: options.producerId ?? PID,
      producerEpoch: options.producerEpoch ?? 0,
      baseSequence,
    },
  );
  const v = validateBatches(records, { maxBatchBytes: 1 << 20 });
  assert.ok(v.ok);
  return { records, batches: v.batches };
}

function producerError(code: number) {
  return (e: unknown) => e instanceof ProducerStateError && e.code === code;
}

Deno.test("log: a retried batch is answered with its original offset and not stored", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await log.loadProducerState();
    const e1 = { producerEpoch: 1 };
    const a = append(log, idem(["a0", "a1"], 0, e1), { acks: -1 });
    const b = append(log, idem(["b0"], 2, e1), { acks: -1 });
    await h.flush();
    assert.deepEqual(await a, { baseOffset: 0, logStartOffset: 0 });
    assert.deepEqual(await b, { baseOffset: 2, logStartOffset: 0 });
    const retry = await append(log, idem(["a0", "a1"], 0, e1), { acks: -1 });
    assert.deepEqual(retry, { baseOffset: 0, logStartOffset: 0, duplicate: true });
    assert.equal(log.logEndOffset, 3, "nothing appended");
    await assert.rejects(
      append(log, idem(["gap"], 4, e1), { acks: -1 }),
      producerError(PRODUCER_ERROR_CODE.OUT_OF_ORDER_SEQUENCE_NUMBER),
    );
    await assert.rejects(
      append(log, idem(["old"], 3, { producerEpoch: 0 }), { acks: -1 }),
      producerError(PRODUCER_ERROR_CODE.INVALID_PRODUCER_EPOCH),
    );
    const stranger = append(log, idem(["x"], 9, { producerId: 5 }), { acks: -1 });
    await assert.rejects(stranger, (e) =>
      e instanceof ProducerStateError &&
      e.code === PRODUCER_ERROR_CODE.UNKNOWN_PRODUCER_ID && e.logStartOffset === 0);
    const next = append(log, idem(["c0"], 3, e1), { acks: -1 });
    await h.flush();
    assert.deepEqual(await next, { baseOffset: 3, logStartOffset: 0 });
    assert.deepEqual(decode((await log.read(0, 1 << 20)).chunks).map(([, v]) => v), [
      "a0",
      "a1",
      "b0",
      "c0",
    ]);
  } finally {
    await h.close();
  }
});

Deno.test("log: appends with a producer id wait for the producer state to load", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await assert.rejects(
      append(log, idem(["early"], 0), { acks: -1 }),
      (e) => e instanceof LogError && e.code === LOG_ERROR_CODE.KAFKA_STORAGE_ERROR,
    );
    assert.equal(log.logEndOffset, 0);
    await log.loadProducerState();
    const ok = append(log, idem(["early"], 0), { acks: -1 });
    await h.flush();
    assert.deepEqual(await ok, { baseOffset: 0, logStartOffset: 0 });
  } finally {
    await h.close();
  }
});

Deno.test("log: a duplicate of a pending batch is answered only once the original is durable", async () => {
  const faulty = new FaultyObjectStore(new MemoryObjectStore());
  const gated = new GatedObjectStore(faulty);
  const h = await harness({ objectStore: gated });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await log.loadProducerState();
    // Success: the retry resolves with the original's offset after its flush.
    gated.hold();
    const original = append(log, idem(["p0"], 0), { acks: -1 });
    const retry = append(log, idem(["p0"], 0), { acks: -1 });
    assert.equal(log.logEndOffset, 1);
    h.clock.advance(10);
    await settle();
    assert.equal(await isSettled(retry), false, "no answer before the flush is durable");
    gated.release();
    await settle();
    assert.deepEqual(await original, { baseOffset: 0, logStartOffset: 0 });
    assert.deepEqual(await retry, { baseOffset: 0, logStartOffset: 0, duplicate: true });

    // Failure: the retry fails with the original.
    gated.hold();
    faulty.failNext("put");
    const doomed = append(log, idem(["p1"], 1), { acks: -1 });
    const doomedRetry = append(log, idem(["p1"], 1), { acks: -1 });
    h.clock.advance(10);
    await settle();
    gated.release();
    await assert.rejects(doomed, LogError);
    await assert.rejects(doomedRetry, LogError);
    assert.equal(log.highWatermark, 1);
  } finally {
    gated.release();
    await h.close();
  }
});

Deno.test("log: a failed flush rolls the producer state back with the offsets", async () => {
  const faulty = new FaultyObjectStore(new MemoryObjectStore());
  const gated = new GatedObjectStore(faulty);
  const h = await harness({ objectStore: gated });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await log.loadProducerState();
    gated.hold();
    faulty.failNext("put");
    const failed = append(log, idem(["f0", "f1"], 0), { acks: -1 });
    h.clock.advance(10);
    await settle();
    // Queued behind the failing round: its sequence follows a batch that will not exist.
    const follower = append(log, idem(["f2"], 2), { acks: -1 });
    // Another producer's queued append is unaffected and keeps its place.
    const bystander = append(log, idem(["o0"], 0, { producerId: 77 }), { acks: -1 });
    assert.equal(log.logEndOffset, 4);
    gated.release();
    await assert.rejects(failed, LogError);
    await assert.rejects(
      follower,
      (e) => e instanceof LogError && e.code === LOG_ERROR_CODE.KAFKA_STORAGE_ERROR,
    );
    assert.equal(log.logEndOffset, 1, "only the other producer's append is still queued");
    assert.equal(log.producerState(PID), undefined, "the failed producer has no state again");
    // The client resends both, in order, with the same sequences.
    const resent = append(log, idem(["f0", "f1"], 0), { acks: -1 });
    const resentFollower = append(log, idem(["f2"], 2), { acks: -1 });
    await h.flush();
    assert.deepEqual(await bystander, { baseOffset: 0, logStartOffset: 0 });
    assert.deepEqual(await resent, { baseOffset: 1, logStartOffset: 0 });
    assert.deepEqual(await resentFollower, { baseOffset: 3, logStartOffset: 0 });
    assert.deepEqual(decode((await log.read(0, 1 << 20)).chunks).map(([, v]) => v), [
      "o0",
      "f0",
      "f1",
      "f2",
    ]);
  } finally {
    gated.release();
    await h.close();
  }
});

Deno.test("log: the producer state is rebuilt from the log when another owner takes over", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await log.loadProducerState();
    const a = append(log, idem(["a"], 0), { acks: -1 });
    const b = append(log, idem(["b0", "b1"], 1), { acks: -1 });
    const other = append(log, idem(["o"], 0, { producerId: 9, producerEpoch: 2 }), { acks: -1 });
    await h.flush();
    await Promise.all([a, b, other]);
    await h.manager.close();

    const next = await h.newManager({ brokerId: 2 });
    const moved = await next.partition(TOPIC, 0);
    await moved.loadProducerState();
    assert.deepEqual(moved.producerState(PID)?.batches, [
      { firstSeq: 0, lastSeq: 0, firstOffset: 0, lastOffset: 0 },
      { firstSeq: 1, lastSeq: 2, firstOffset: 1, lastOffset: 2 },
    ]);
    assert.equal(moved.producerState(9)?.producerEpoch, 2);
    // The retry of the last batch, whose answer the old owner never sent, is recognised.
    assert.deepEqual(await append(moved, idem(["b0", "b1"], 1), { acks: -1 }), {
      baseOffset: 1,
      logStartOffset: 0,
      duplicate: true,
    });
    await assert.rejects(
      append(moved, idem(["o"], 0, { producerId: 9, producerEpoch: 1 }), { acks: -1 }),
      producerError(PRODUCER_ERROR_CODE.INVALID_PRODUCER_EPOCH),
    );
    const c = append(moved, idem(["c"], 3), { acks: -1 });
    h.clock.advance(10);
    await settle();
    assert.deepEqual(await c, { baseOffset: 4, logStartOffset: 0 });
  } finally {
    await h.close();
  }
});

Deno.test("log: the rebuild reads a bounded tail; older producers must restart at 0", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await log.loadProducerState();
    const early = append(log, idem(["early"], 0, { producerId: 1 }), { acks: -1 });
    await h.flush();
    await early;
    await sealAll(log);
    // One sealed segment per flush round: push producer 1 out of the scanned tail.
    for (let i = 0; i < PRODUCER_STATE_SCAN_SEGMENTS_MAX; i++) {
      const ack = append(log, idem([`n${i}`], i, { producerId: 2 }), { acks: -1 });
      await h.flush();
      await ack;
      await sealAll(log);
    }
    assert.equal(log.segments.length, PRODUCER_STATE_SCAN_SEGMENTS_MAX + 1);
    await h.manager.close();
    const moved = await (await h.newManager({ brokerId: 2 })).partition(TOPIC, 0);
    await moved.loadProducerState();
    assert.equal(moved.producerState(1), undefined);
    assert.ok(moved.producerState(2));
    await assert.rejects(
      append(moved, idem(["late"], 1, { producerId: 1 }), { acks: -1 }),
      producerError(PRODUCER_ERROR_CODE.UNKNOWN_PRODUCER_ID),
    );
  } finally {
    await h.close();
  }
});

Deno.test("log: an idle producer's state expires after producerIdExpirationMs", async () => {
  // Short enough that the clock stays within the broker's lease while it advances.
  const h = await harness({ config: { producerIdExpirationMs: 5_000 } });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await log.loadProducerState();
    const first = append(log, idem(["a"], 0), { acks: -1 });
    await h.flush();
    await first;
    h.clock.advance(4_000);
    const second = append(log, idem(["b"], 1), { acks: -1 });
    await h.flush();
    await second;
    h.clock.advance(5_000);
    await assert.rejects(
      append(log, idem(["c"], 2), { acks: -1 }),
      producerError(PRODUCER_ERROR_CODE.UNKNOWN_PRODUCER_ID),
    );
    assert.equal(log.producerState(PID), undefined);
    // KIP-360: the client bumps its epoch and starts over at 0.
    const restarted = append(log, idem(["c"], 0, { producerEpoch: 1 }), { acks: -1 });
    await h.flush();
    assert.deepEqual(await restarted, { baseOffset: 2, logStartOffset: 0 });
  } finally {
    await h.close();
  }
});
