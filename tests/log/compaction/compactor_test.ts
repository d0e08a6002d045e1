/**
 * The compactor's rules, one scenario each: latest value per key, the
 * cleanable point, the tombstone horizon, keyless records, empty batches for
 * a producer's last sequence, transactional and control batches, unreadable
 * batches, bad input, the bounded key map, and the cleanable-point helper.
 */

import assert from "node:assert/strict";
import {
  CRC_OFFSET,
  isBatchCrcValid,
  readBatchInfo,
  scanBatches,
} from "../../../lib/protocol/record_batch.ts";
import type { ProducerRecord } from "../../../lib/protocol/records.ts";
import {
  cleanablePoint,
  CompactionInputError,
  type CompactionOptions,
  compactSegments,
  dirtyRatio,
  type SegmentInput,
} from "../../../lib/log/compaction/compactor.ts";
import { bytes, concat, makeBatch, readRecords } from "./support.ts";

const T0 = 1_700_000_000_000;
const DAY_MS = 86_400_000;

function rec(key: string | null, value: string | null, ts = T0): ProducerRecord {
  return {
    key: key === null ? null : bytes(key),
    value: value === null ? null : bytes(value),
    timestamp: ts,
  };
}

/** Segments from lists of batches; each batch a list of [key, value] pairs, offsets consecutive. */
function log(
  segments: [string | null, string | null][][][],
  spec: { compression?: number } = {},
): SegmentInput[] {
  let offset = 0;
  return segments.map((batches) => {
    const baseOffset = offset;
    const parts = batches.map((records) => {
      const batch = makeBatch(records.map(([k, v]) => rec(k, v)), {
        baseOffset: offset,
        compression: spec.compression,
      });
      offset += records.length;
      return batch;
    });
    return { baseOffset, batches: concat(parts), cleanedAtMs: null };
  });
}

function options(over: Partial<CompactionOptions> = {}): CompactionOptions {
  return { cleanablePoint: 1_000_000, nowMs: T0, deleteRetentionMs: DAY_MS, ...over };
}

function kv(body: Uint8Array): [number, string | null, string | null][] {
  return readRecords(body).map((r) => [r.offset, r.key, r.value]);
}

Deno.test("keeps only the latest record per key; untouched batches keep their bytes", () => {
  for (const compression of [0, 1, 2, 3, 4]) {
    const input = log([
      [[["a", "1"], ["b", "1"]], [["c", "1"]]],
      [[["a", "2"], ["d", "1"]], [["e", "1"]]],
    ], { compression });
    const { segments, stats } = compactSegments(input, options());
    assert.deepEqual(kv(segments[0].batches), [[1, "b", "1"], [2, "c", "1"]]);
    assert.deepEqual(kv(segments[1].batches), [[3, "a", "2"], [4, "d", "1"], [5, "e", "1"]]);
    assert.equal(segments[0].changed, true);
    assert.equal(segments[1].changed, false);
    assert.equal(segments[1].batches, input[1].batches, "unchanged segment is the input");
    // The untouched second batch of segment 0 is byte-identical.
    const second = scanBatches(segments[0].batches).batches[1];
    assert.deepEqual(
      segments[0].batches.subarray(second.position),
      input[0].batches.subarray(scanBatches(input[0].batches).batches[1].position),
    );
    for (const s of segments) {
      for (const b of scanBatches(s.batches).batches) assert.ok(isBatchCrcValid(s.batches, b));
    }
    assert.equal(stats.supersededRemoved, 1);
    assert.equal(stats.recordsRemoved, 1);
    assert.equal(stats.batchesRewritten, 1);
    assert.equal(segments[0].lastOffset, 2);
    assert.equal(segments[0].recordCount, 2);
    assert.deepEqual(
      segments[0].batchList.map((b) => [b.baseOffset, b.lastOffsetDelta, b.recordsCount]),
      [[0, 1, 1], [2, 0, 1]],
    );
    assert.deepEqual(concat(segments[0].batchList.map((b) => b.bytes)), segments[0].batches);
    assert.equal(segments[0].maxTimestamp, T0);
    assert.equal(stats.bytesIn, input[0].batches.length + input[1].batches.length);
    assert.equal(stats.bytesOut, segments[0].batches.length + segments[1].batches.length);
  }
});

Deno.test("records at or after the cleanable point stay, and do not supersede older ones", () => {
  const input = log([[[["a", "1"]], [["a", "2"]], [["b", "1"]]], [[["a", "3"], ["b", "2"]]]]);
  const { segments, cleanedThroughOffset } = compactSegments(
    input,
    options({ cleanablePoint: 3 }),
  );
  assert.deepEqual(kv(segments[0].batches), [[1, "a", "2"], [2, "b", "1"]]);
  assert.equal(segments[1].batches, input[1].batches);
  assert.equal(cleanedThroughOffset, 3);
  // A batch that straddles the cleanable point is left whole.
  const straddle = compactSegments(
    log([[[["a", "1"], ["a", "2"], ["a", "3"]]]]),
    options({ cleanablePoint: 2 }),
  );
  assert.equal(straddle.segments[0].changed, false);
});

Deno.test("tombstones: kept on the first cleaning, removed delete.retention.ms after it", () => {
  const input = log([[[["a", "1"], ["b", "1"]], [["a", null]]], [[["c", "1"]]]]);
  const opts = options({ cleanablePoint: 4 });
  const first = compactSegments(input, opts);
  assert.deepEqual(kv(first.segments[0].batches), [[1, "b", "1"], [2, "a", null]]);
  assert.equal(first.segments[0].cleanedAtMs, T0);
  assert.equal(first.segments[1].cleanedAtMs, T0);
  const again = first.segments.map((s) => ({
    baseOffset: s.baseOffset,
    batches: s.batches,
    cleanedAtMs: s.cleanedAtMs,
  }));
  const early = compactSegments(again, { ...opts, nowMs: T0 + DAY_MS - 1 });
  assert.deepEqual(kv(early.segments[0].batches), [[1, "b", "1"], [2, "a", null]]);
  assert.equal(early.segments[0].changed, false);
  const late = compactSegments(again, { ...opts, nowMs: T0 + DAY_MS });
  assert.deepEqual(kv(late.segments[0].batches), [[1, "b", "1"]]);
  assert.equal(late.stats.tombstonesRemoved, 1);
  assert.equal(late.segments[0].cleanedAtMs, T0, "the horizon is kept across runs");
  assert.equal(late.segments[0].lastOffset, 2, "the segment still spans its offsets");
});

Deno.test("tombstones in a segment that reaches the cleanable point are never removed", () => {
  const input = log([[[["a", null]], [["b", "1"]]]]).map((s) => ({ ...s, cleanedAtMs: 0 }));
  const { segments } = compactSegments(input, options({ cleanablePoint: 1, nowMs: T0 * 2 }));
  assert.equal(segments[0].changed, false);
});

Deno.test("records without a key are removed below the cleanable point, as Kafka's cleaner does", () => {
  const input = log([[[[null, "x"], ["a", "1"]], [[null, "y"]]]]);
  const { segments, stats } = compactSegments(input, options({ cleanablePoint: 2 }));
  assert.deepEqual(kv(segments[0].batches), [[1, "a", "1"], [2, null, "y"]]);
  assert.equal(stats.keylessRemoved, 1);
});

function idempotentLog(): SegmentInput[] {
  // producer 5: offsets 0-1 then 3; producer 6: offset 2; plain batch offset 4; then newer values.
  const b = (offset: number, records: ProducerRecord[], producerId = -1, baseSequence = -1) =>
    makeBatch(records, {
      baseOffset: offset,
      producerId,
      producerEpoch: producerId < 0 ? -1 : 2,
      baseSequence,
    });
  return [{
    baseOffset: 0,
    cleanedAtMs: null,
    batches: concat([
      b(0, [rec("a", "1"), rec("b", "1")], 5, 0),
      b(2, [rec("c", "1")], 6, 0),
      b(3, [rec("d", "1")], 5, 2),
      b(4, [rec("e", "1")]),
      b(5, [rec("a", "2"), rec("b", "2"), rec("c", "2"), rec("d", "2"), rec("e", "2")]),
    ]),
  }];
}

Deno.test("an emptied batch stays as an empty header when it is its producer's last", () => {
  const { segments, stats } = compactSegments(idempotentLog(), options());
  const batches = scanBatches(segments[0].batches).batches;
  assert.deepEqual(
    batches.map((b) => [b.baseOffset, b.lastOffsetDelta, b.recordsCount, b.producerId]),
    [[2, 0, 0, 6], [3, 0, 0, 5], [5, 4, 5, -1]],
  );
  assert.equal(batches[1].baseSequence, 2);
  assert.equal(stats.emptyBatchesKept, 2);
  assert.equal(stats.batchesRemoved, 2);
  for (const b of batches) assert.ok(isBatchCrcValid(segments[0].batches, b));
});

Deno.test("the producer state decides which emptied batches stay, when the caller passes it", () => {
  const { segments } = compactSegments(
    idempotentLog(),
    options({ producerLastOffsets: new Map([[5, 99]]) }), // producer 5 wrote later; 6 expired
  );
  assert.deepEqual(scanBatches(segments[0].batches).batches.map((b) => b.baseOffset), [5]);
});

Deno.test("transactional and control batches pass through, and hold tombstone removal back", () => {
  const txn = makeBatch([rec("a", "t")], {
    baseOffset: 1,
    producerId: 9,
    producerEpoch: 0,
    baseSequence: 0,
    transactional: true,
  });
  const marker = makeBatch([{ key: new Uint8Array([0, 0, 0, 1]), value: new Uint8Array(6) }], {
    baseOffset: 2,
    producerId: 9,
    producerEpoch: 0,
    baseSequence: -1,
    transactional: true,
    control: true,
  });
  const batches = concat([
    makeBatch([rec("a", "1")], { baseOffset: 0 }),
    txn,
    marker,
    makeBatch([rec("a", null)], { baseOffset: 3 }),
    makeBatch([rec("b", "1")], { baseOffset: 4 }),
  ]);
  const { segments, stats } = compactSegments(
    [{ baseOffset: 0, batches, cleanedAtMs: 0 }],
    options({ nowMs: T0 * 2 }),
  );
  const out = scanBatches(segments[0].batches).batches;
  assert.deepEqual(out.map((b) => b.baseOffset), [1, 2, 3, 4]);
  assert.deepEqual(
    segments[0].batches.subarray(out[0].position, out[1].position + out[1].size),
    concat([txn, marker]),
  );
  assert.match(stats.tombstonesHeldBecause ?? "", /transactional batch at offset 1/);
  assert.equal(stats.tombstonesRemoved, 0);
});

Deno.test("with the aborted ranges: committed transactional data is compacted, aborted data dropped, markers kept", () => {
  const txn = (baseOffset: number, key: string, value: string) =>
    makeBatch([rec(key, value)], {
      baseOffset,
      producerId: 7,
      producerEpoch: 0,
      baseSequence: baseOffset,
      transactional: true,
    });
  const marker = (baseOffset: number, commit: boolean) =>
    makeBatch([{ key: new Uint8Array([0, 0, 0, commit ? 1 : 0]), value: new Uint8Array(6) }], {
      baseOffset,
      producerId: 7,
      producerEpoch: 0,
      baseSequence: -1,
      transactional: true,
      control: true,
    });
  const batches = concat([
    txn(0, "k", "a"), // committed
    marker(1, true),
    txn(2, "k", "b"), // aborted: must not remove "a"
    marker(3, false),
    txn(4, "k2", "x"), // committed, superseded by the plain record at 6
    marker(5, true),
    makeBatch([rec("k2", "y")], { baseOffset: 6 }),
    makeBatch([rec("z", "1")], { baseOffset: 7 }),
  ]);
  const input = [{ baseOffset: 0, batches, cleanedAtMs: null }];
  const { segments, stats } = compactSegments(
    input,
    options({ abortedTransactions: [{ producerId: 7, firstOffset: 2, lastOffset: 3 }] }),
  );
  assert.deepEqual(
    kv(segments[0].batches).filter(([o]) => ![1, 3, 5].includes(o)),
    [
      [0, "k", "a"],
      [6, "k2", "y"],
      [7, "z", "1"],
    ],
  );
  const out = scanBatches(segments[0].batches).batches;
  assert.deepEqual(out.filter((b) => b.isControl).map((b) => b.baseOffset), [1, 3, 5]);
  assert.equal(stats.abortedRemoved, 1);
  assert.equal(stats.supersededRemoved, 1);
  assert.equal(stats.tombstonesHeldBecause, null);
  // Without the ranges nothing transactional is touched (the caller does not know them).
  const plain = compactSegments(input, options());
  assert.equal(plain.stats.abortedRemoved, 0);
  assert.deepEqual(
    kv(plain.segments[0].batches).filter(([, k]) => k === "k").map(([o]) => o),
    [0, 2],
  );
});

Deno.test("a batch that cannot be read is left alone and reported", () => {
  const bad = makeBatch([rec("a", "0")], { baseOffset: 0 });
  bad[CRC_OFFSET] ^= 0xff;
  const batches = concat([
    bad,
    makeBatch([rec("a", "1")], { baseOffset: 1 }),
    makeBatch([rec("a", "2"), rec("b", null)], { baseOffset: 2 }),
  ]);
  const { segments, stats } = compactSegments(
    [{ baseOffset: 0, batches, cleanedAtMs: 0 }],
    options({ nowMs: T0 * 2 }),
  );
  assert.deepEqual(kv(segments[0].batches), [[0, "a", "0"], [2, "a", "2"], [3, "b", null]]);
  assert.deepEqual(stats.unreadableBatches.map((u) => u.baseOffset), [0]);
  assert.match(stats.unreadableBatches[0].reason, /CRC32C/);
  assert.match(stats.tombstonesHeldBecause ?? "", /cannot be read/);
});

Deno.test("bad input: batches out of order or a partial batch are a CompactionInputError", () => {
  const one = makeBatch([rec("a", "1")], { baseOffset: 5 });
  const two = makeBatch([rec("a", "1")], { baseOffset: 5 });
  assert.throws(
    () =>
      compactSegments(
        [{ baseOffset: 5, batches: concat([one, two]), cleanedAtMs: null }],
        options(),
      ),
    CompactionInputError,
  );
  assert.throws(
    () =>
      compactSegments([{
        baseOffset: 5,
        batches: one.subarray(0, one.length - 1),
        cleanedAtMs: null,
      }], options()),
    CompactionInputError,
  );
});

Deno.test("the input bytes are never modified", () => {
  const input = log([[[["a", "1"], ["a", "2"]], [["a", "3"]]]], { compression: 3 });
  const copy = input.map((s) => s.batches.slice());
  compactSegments(input, options());
  input.forEach((s, i) => assert.deepEqual(s.batches, copy[i]));
});

Deno.test("more distinct keys than the dedupe buffer holds: several passes, same result", () => {
  // 400 keys written three times in the same order, over 6 segments.
  const keys = Array.from({ length: 400 }, (_, i) => `key-${i}`);
  const rounds = [0, 1, 2].flatMap((round) =>
    keys.map((k, i) => [k, `${round}-${i}`] as [string, string])
  );
  const segs: [string, string][][][] = [];
  for (let i = 0; i < rounds.length; i += 200) {
    const seg = rounds.slice(i, i + 200);
    segs.push([seg.slice(0, 100), seg.slice(100)]);
  }
  const input = log(segs, { compression: 4 });
  const unbounded = compactSegments(input, options());
  const bounded = compactSegments(input, options({ dedupeBufferBytes: 50 * (64 + 7) }));
  assert.equal(unbounded.stats.passes, 1);
  // 50 keys a pass, and every run of 50 records brings 50 keys the map has
  // not seen in that pass: 1,200 records, 24 passes.
  assert.equal(bounded.stats.passes, 24);
  assert.ok(bounded.stats.mapKeysMax <= 50);
  assert.deepEqual(
    bounded.segments.map((s) => kv(s.batches)),
    unbounded.segments.map((s) => kv(s.batches)),
  );
  const all = bounded.segments.flatMap((s) => kv(s.batches));
  assert.equal(all.length, 400);
  assert.ok(all.every(([, , v]) => v?.startsWith("2-")));
});

Deno.test("cleanablePoint: the head, or the first batch within min.compaction.lag.ms", () => {
  const batches = concat([
    makeBatch([rec("a", "1", T0)], { baseOffset: 0 }),
    makeBatch([rec("a", "1", T0 + 10_000)], { baseOffset: 1 }),
    makeBatch([rec("a", "1", T0 + 20_000)], { baseOffset: 2 }),
  ]);
  const segs = [{ baseOffset: 0, batches, cleanedAtMs: null }];
  assert.equal(cleanablePoint(segs, 3, T0 + 30_000, 0), 3);
  assert.equal(cleanablePoint(segs, 3, T0 + 30_000, 15_000), 2);
  assert.equal(cleanablePoint(segs, 3, T0 + 30_000, 25_000), 1);
  assert.equal(cleanablePoint(segs, 2, T0 + 30_000, 5_000), 2);
  assert.equal(readBatchInfo(batches, 0).baseOffset, 0);
});

Deno.test("dirtyRatio: dirty bytes over all bytes before the cleanable point", () => {
  const input = log([[[["a", "1"]], [["b", "1"]]], [[["c", "1"]], [["d", "1"]]]]);
  const sizes = input.flatMap((s) => scanBatches(s.batches).batches.map((b) => b.size));
  const before = (n: number) => sizes.slice(0, n).reduce((a, b) => a + b, 0);
  assert.equal(dirtyRatio(input, 0, 4), 1);
  assert.equal(dirtyRatio(input, 2, 4), (before(4) - before(2)) / before(4));
  assert.equal(dirtyRatio(input, 1, 3), (before(3) - before(1)) / before(3));
  assert.equal(dirtyRatio(input, 0, 0), 0);
  const { cleanedThroughOffset } = compactSegments(input, options({ cleanablePoint: 3 }));
  assert.equal(dirtyRatio(input, cleanedThroughOffset, 3), 0);
});
