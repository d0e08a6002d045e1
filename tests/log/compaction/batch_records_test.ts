/**
 * Record-level batch rewrites: survivors keep their bytes, rewritten batches
 * keep offsets, attributes and producer fields, carry a correct CRC32C and
 * stay readable by an independent decoder, in every codec.
 */

import assert from "node:assert/strict";
import {
  BATCH_HEADER_BYTES,
  COMPRESSION,
  isBatchCrcValid,
  readBatchInfo,
} from "../../../lib/protocol/record_batch.ts";
import { decodeRecordBatches, type ProducerRecord } from "../../../lib/protocol/records.ts";
import {
  BatchRecordsError,
  emptyBatchLike,
  readBatchRecords,
  rewriteBatch,
} from "../../../lib/log/compaction/batch_records.ts";
import { isXerialFramed } from "../../../lib/log/compaction/snappy_codec.ts";
import { goldenBatches } from "./golden_batches.ts";
import { bytes, makeBatch, mulberry32, text } from "./support.ts";

const CODECS = [
  COMPRESSION.none,
  COMPRESSION.gzip,
  COMPRESSION.snappy,
  COMPRESSION.lz4,
  COMPRESSION.zstd,
];

function fiveRecords(): ProducerRecord[] {
  return [0, 1, 2, 3, 4].map((i) => ({
    key: bytes(`k${i % 3}`),
    value: i === 3 ? null : bytes(`value-${i}-${"x".repeat(i * 40)}`),
    headers: i === 2 ? [{ key: "h", value: bytes("hv") }, { key: "n", value: null }] : [],
    timestamp: 1_700_000_000_000 + [5, 1, 9, 3, 7][i],
  }));
}

const SPEC = {
  baseOffset: 1000,
  producerId: 77,
  producerEpoch: 4,
  baseSequence: 120,
  partitionLeaderEpoch: 9,
};

for (const compression of CODECS) {
  Deno.test(`rewrite (codec ${compression}): keeps offsets, header fields and record bytes; CRC valid`, () => {
    const original = makeBatch(fiveRecords(), { ...SPEC, compression });
    const before = readBatchInfo(original, 0);
    const opened = readBatchRecords(original, before);
    const rewritten = rewriteBatch(original, opened, [0, 2, 4]);
    const after = readBatchInfo(rewritten, 0);

    assert.ok(isBatchCrcValid(rewritten, after));
    assert.equal(after.size, rewritten.length);
    for (
      const field of [
        "baseOffset",
        "lastOffsetDelta",
        "attributes",
        "compression",
        "partitionLeaderEpoch",
        "producerId",
        "producerEpoch",
        "baseSequence",
        "baseTimestamp",
      ] as const
    ) {
      assert.equal(after[field], before[field], field);
    }
    assert.equal(after.recordsCount, 3);
    assert.equal(after.maxTimestamp, 1_700_000_000_000 + 9); // max of kept 5, 9, 7

    const reread = readBatchRecords(rewritten, after);
    assert.deepEqual(reread.records.map((r) => r.offset), [1000, 1002, 1004]);
    for (const [i, index] of [0, 2, 4].entries()) {
      const was = opened.records[index];
      const now = reread.records[i];
      assert.deepEqual(
        reread.section.subarray(now.start, now.end),
        opened.section.subarray(was.start, was.end),
      );
      assert.equal(now.timestamp, was.timestamp);
    }
  });

  Deno.test(`rewrite (codec ${compression}): keeping every record returns the input bytes`, () => {
    const original = makeBatch(fiveRecords(), { ...SPEC, compression });
    const opened = readBatchRecords(original, readBatchInfo(original, 0));
    const same = rewriteBatch(original, opened, [0, 1, 2, 3, 4]);
    assert.equal(same.buffer, original.buffer);
    assert.equal(same.byteOffset, original.byteOffset);
    assert.equal(same.length, original.length);
  });

  Deno.test(`rewrite (codec ${compression}): a rewritten batch rewrites again (gaps in offset deltas)`, () => {
    const original = makeBatch(fiveRecords(), { ...SPEC, compression });
    const once = rewriteBatch(
      original,
      readBatchRecords(original, readBatchInfo(original, 0)),
      [1, 3, 4],
    );
    const twice = rewriteBatch(once, readBatchRecords(once, readBatchInfo(once, 0)), [1]);
    const info = readBatchInfo(twice, 0);
    assert.ok(isBatchCrcValid(twice, info));
    assert.deepEqual(readBatchRecords(twice, info).records.map((r) => r.offset), [1003]);
    assert.equal(info.lastOffsetDelta, 4);
  });
}

Deno.test("rewrite: the client decoder (records.ts) reads a compacted gzip batch with its gaps", () => {
  const original = makeBatch(fiveRecords(), { ...SPEC, compression: COMPRESSION.gzip });
  const rewritten = rewriteBatch(
    original,
    readBatchRecords(original, readBatchInfo(original, 0)),
    [1, 3],
  );
  const { records } = decodeRecordBatches(rewritten);
  assert.deepEqual(records.map((r) => [r.offset, text(r.key), text(r.value)]), [
    [1001, "k1", `value-1-${"x".repeat(40)}`],
    [1003, "k0", null],
  ]);
  assert.deepEqual(records.map((r) => r.timestamp), [1_700_000_000_001, 1_700_000_000_003]);
});

Deno.test("rewrite: transactional flag, LogAppendTime and its maxTimestamp are kept", () => {
  const original = makeBatch(fiveRecords(), {
    ...SPEC,
    compression: COMPRESSION.lz4,
    transactional: true,
    logAppendTimeMs: 1_800_000_000_000,
  });
  const before = readBatchInfo(original, 0);
  const rewritten = rewriteBatch(original, readBatchRecords(original, before), [4]);
  const after = readBatchInfo(rewritten, 0);
  assert.ok(isBatchCrcValid(rewritten, after));
  assert.equal(after.attributes, before.attributes);
  assert.ok(after.isTransactional);
  assert.equal(after.timestampType, 1);
  assert.equal(after.maxTimestamp, 1_800_000_000_000);
  assert.equal(readBatchRecords(rewritten, after).records[0].timestamp, 1_800_000_000_000);
});

Deno.test("rewrite: snappy keeps the framing of the original payload (xerial or raw)", () => {
  const xerial = makeBatch(fiveRecords(), { ...SPEC, compression: COMPRESSION.snappy });
  assert.ok(isXerialFramed(xerial.subarray(BATCH_HEADER_BYTES)));
  const out = rewriteBatch(xerial, readBatchRecords(xerial, readBatchInfo(xerial, 0)), [0]);
  assert.ok(isXerialFramed(out.subarray(BATCH_HEADER_BYTES)));
  // librdkafka writes one raw block: find such a golden batch and rewrite it.
  const raw = goldenBatches().find((g) =>
    g.batch.compression === COMPRESSION.snappy && g.batch.recordsCount > 1 &&
    !isXerialFramed(g.frame.subarray(g.batch.position + BATCH_HEADER_BYTES))
  );
  assert.ok(raw !== undefined, "no raw snappy batch from librdkafka in the golden captures");
  {
    const batch = raw.frame.slice(raw.batch.position, raw.batch.position + raw.batch.size);
    const info = readBatchInfo(batch, 0);
    const again = rewriteBatch(batch, readBatchRecords(batch, info), [1]);
    assert.ok(!isXerialFramed(again.subarray(BATCH_HEADER_BYTES)), raw.source);
  }
});

Deno.test("emptyBatchLike: Kafka's empty header keeps the offsets and the producer's sequence", () => {
  const original = makeBatch(fiveRecords(), { ...SPEC, compression: COMPRESSION.zstd });
  const before = readBatchInfo(original, 0);
  const empty = emptyBatchLike(original, before);
  const after = readBatchInfo(empty, 0);
  assert.equal(empty.length, BATCH_HEADER_BYTES);
  assert.ok(isBatchCrcValid(empty, after));
  assert.equal(after.recordsCount, 0);
  assert.equal(after.compression, COMPRESSION.none);
  assert.equal(after.baseOffset, 1000);
  assert.equal(after.lastOffsetDelta, 4);
  assert.equal(after.producerId, 77);
  assert.equal(after.producerEpoch, 4);
  assert.equal(after.baseSequence, 120);
  assert.equal(after.partitionLeaderEpoch, 9);
  assert.equal(after.baseTimestamp, before.maxTimestamp);
  assert.equal(after.maxTimestamp, before.maxTimestamp);
  assert.deepEqual(readBatchRecords(empty, after).records, []);
  assert.deepEqual(decodeRecordBatches(empty).records, []);
});

Deno.test("golden: batches from real clients, every codec, rewrite without their first record", () => {
  let rewritten = 0;
  for (const { source, frame, batch } of goldenBatches()) {
    if (batch.isControl || batch.recordsCount < 2) continue;
    const opened = readBatchRecords(frame, batch);
    const keep = opened.records.map((_, i) => i).slice(1);
    const out = rewriteBatch(frame, opened, keep);
    const info = readBatchInfo(out, 0);
    assert.ok(isBatchCrcValid(out, info), source);
    assert.equal(info.attributes, batch.attributes, source);
    assert.equal(info.lastOffsetDelta, batch.lastOffsetDelta, source);
    const reread = readBatchRecords(out, info);
    assert.deepEqual(
      reread.records.map((r) => [r.offset, text(r.key), text(r.value)]),
      opened.records.slice(1).map((r) => [r.offset, text(r.key), text(r.value)]),
      source,
    );
    rewritten++;
  }
  assert.ok(rewritten > 10, `only ${rewritten} golden batches with 2+ records`);
});

Deno.test("fuzz: mutated record sections in every codec fail only with BatchRecordsError", () => {
  const random = mulberry32(4242);
  const originals = CODECS.map((compression) => makeBatch(fiveRecords(), { ...SPEC, compression }));
  for (const golden of goldenBatches()) {
    if (golden.batch.isControl) continue;
    originals.push(
      golden.frame.slice(golden.batch.position, golden.batch.position + golden.batch.size),
    );
  }
  let failures = 0;
  for (let round = 0; round < 3000; round++) {
    const batch = originals[round % originals.length].slice();
    const flips = 1 + Math.floor(random() * 4);
    for (let f = 0; f < flips; f++) {
      const at = BATCH_HEADER_BYTES + Math.floor(random() * (batch.length - BATCH_HEADER_BYTES));
      batch[at] = Math.floor(random() * 256);
    }
    try {
      readBatchRecords(batch, readBatchInfo(batch, 0), 1 << 20);
    } catch (e) {
      assert.ok(e instanceof BatchRecordsError, `round ${round}: ${e}`);
      failures++;
    }
  }
  assert.ok(failures > 0);
});
