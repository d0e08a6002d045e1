import assert from "node:assert/strict";
import { crc32c } from "../../lib/protocol/crc32c.ts";
import {
  assignOffsets,
  BATCH_HEADER_BYTES,
  type BatchInfo,
  type BatchValidation,
  computeBatchCrc,
  CRC_OFFSET,
  isBatchCrcValid,
  lastOffset,
  nextOffset,
  readBaseOffset,
  readBatchInfo,
  readBatchSize,
  readMagic,
  readStoredCrc,
  readVarint,
  readVarlong,
  RecordFormatError,
  scanBatches,
  setLogAppendTime,
  validateBatches,
} from "../../lib/protocol/record_batch.ts";
import { decodeRecordBatches, encodeRecordBatch } from "../../lib/protocol/records.ts";

const LIMITS = { maxBatchBytes: 1 << 20 };
const CORRUPT_MESSAGE = 2;
const MESSAGE_TOO_LARGE = 10;
const INVALID_TIMESTAMP = 32;
const UNSUPPORTED_COMPRESSION_TYPE = 76;
const INVALID_RECORD = 87;

const utf8 = (s: string) => new TextEncoder().encode(s);
const unhex = (s: string) =>
  Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!, (x) => parseInt(x, 16));
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
};

/** Copy of `batch` with `edit` applied, the CRC recomputed so later checks are reached. */
function mutate(batch: Uint8Array, edit: (b: Uint8Array, view: DataView) => void): Uint8Array {
  const copy = batch.slice();
  const view = new DataView(copy.buffer);
  edit(copy, view);
  view.setUint32(CRC_OFFSET, computeBatchCrc(copy, 0, copy.length));
  return copy;
}

function expectError(result: BatchValidation, errorCode: number, pattern: RegExp): void {
  assert.equal(result.ok, false, "expected validation to fail");
  if (result.ok) return;
  assert.equal(result.errorCode, errorCode, result.message);
  assert.match(result.message, pattern);
}

function okBatches(result: BatchValidation): BatchInfo[] {
  if (!result.ok) assert.fail(`expected ok, got ${result.errorCode}: ${result.message}`);
  return result.batches;
}

// Golden batch, produced by Apache Kafka 4.1.0's MemoryRecords.builder (magic 2, no
// compression, CreateTime, baseOffset 0, producerId -1) appending
//   (1700000000000, "k1", "v1"), (1700000000005, null, "hello", [h="x", n=null]),
//   (1699999999990, "k3", null)
// and annotated by hand against the KIP-98 layout.
const GOLDEN_V2 = [
  "0000000000000000", // @0  baseOffset 0
  "00000058", //         @8  batchLength 88 (batch is 100 bytes)
  "ffffffff", //         @12 partitionLeaderEpoch -1
  "02", //               @16 magic 2
  "2e087a10", //         @17 crc: CRC32C of bytes 21..99
  "0000", //             @21 attributes: no codec, CreateTime, not transactional, not control
  "00000002", //         @23 lastOffsetDelta 2
  "0000018bcfe56800", // @27 baseTimestamp 1700000000000
  "0000018bcfe56805", // @35 maxTimestamp 1700000000005
  "ffffffffffffffff", // @43 producerId -1
  "ffff", //             @51 producerEpoch -1
  "ffffffff", //         @53 baseSequence -1
  "00000003", //         @57 recordsCount 3
  // @61 record 0: length 10 (zigzag 0x14), attributes 0, timestampDelta 0, offsetDelta 0,
  //     key length 2 "k1", value length 2 "v1", 0 headers
  "14 00 00 00 04 6b31 04 7631 00",
  // @72 record 1: length 18, attributes 0, timestampDelta 5 (0x0a), offsetDelta 1 (0x02),
  //     key null (-1 = 0x01), value length 5 "hello", 2 headers:
  //     "h" (len 1 = 0x02) = "x", "n" = null
  "24 00 0a 02 01 0a 68656c6c6f 04 02 68 02 78 02 6e 01",
  // @91 record 2: length 8, attributes 0, timestampDelta -10 (0x13), offsetDelta 2,
  //     key "k3", value null, 0 headers
  "10 00 13 04 04 6b33 01 00",
].join("");

// The same builder with producerId 4242, epoch 3, baseSequence 17 (only @17 crc and @43..56 differ).
const GOLDEN_V2_IDEMPOTENT =
  "000000000000000000000058ffffffff023fd32d880000000000020000018bcfe568000000018bcfe568050000" +
  "0000000010920003000000110000000314000000046b310476310024000a02010a68656c6c6f0402680278026e01" +
  "10001304046b330100";

// GOLDEN_V2 after Kafka's DefaultRecordBatch.setLastOffset(41) (baseOffset 39) and
// setMaxTimestamp(LOG_APPEND_TIME, 1800000000000): what the broker stores for a
// LogAppendTime topic.
const GOLDEN_V2_LOG_APPEND_TIME =
  "000000000000002700000058ffffffff026d39aa570008000000020000018bcfe56800000001a3185c5000ffff" +
  "ffffffffffffffffffffffff0000000314000000046b310476310024000a02010a68656c6c6f0402680278026e01" +
  "10001304046b330100";

const GOLDEN_RECORDS = [
  { key: utf8("k1"), value: utf8("v1"), timestamp: 1700000000000 },
  {
    key: null,
    value: utf8("hello"),
    timestamp: 1700000000005,
    headers: [{ key: "h", value: utf8("x") }, { key: "n", value: null }],
  },
  { key: utf8("k3"), value: null, timestamp: 1699999999990 },
];

Deno.test("golden Kafka batch: header fields decode at their KIP-98 positions", () => {
  const bytes = unhex(GOLDEN_V2);
  assert.equal(bytes.length, 100);
  const info = readBatchInfo(bytes, 0);
  assert.deepEqual(info, {
    position: 0,
    size: 100,
    baseOffset: 0,
    partitionLeaderEpoch: -1,
    magic: 2,
    lastOffsetDelta: 2,
    recordsCount: 3,
    attributes: 0,
    compression: 0,
    timestampType: 0,
    isTransactional: false,
    isControl: false,
    baseTimestamp: 1700000000000,
    maxTimestamp: 1700000000005,
    producerId: -1,
    producerEpoch: -1,
    baseSequence: -1,
  });
  assert.equal(readStoredCrc(bytes, 0), 0x2e087a10);
  assert.equal(crc32c(bytes, 21, 100), 0x2e087a10);
  assert.equal(readBaseOffset(bytes, 0), 0);
  assert.equal(readBatchSize(bytes, 0), 100);
  assert.equal(readMagic(bytes, 0), 2);
  assert.equal(lastOffset(info), 2);
  assert.equal(nextOffset(info), 3);
  assert.ok(isBatchCrcValid(bytes, info));
});

Deno.test("golden Kafka batches: encodeRecordBatch reproduces them byte for byte", () => {
  assert.equal(hex(encodeRecordBatch(GOLDEN_RECORDS)), hex(unhex(GOLDEN_V2)));
  const idempotent = encodeRecordBatch(GOLDEN_RECORDS, {
    producerId: 4242,
    producerEpoch: 3,
    baseSequence: 17,
  });
  assert.equal(hex(idempotent), GOLDEN_V2_IDEMPOTENT);
  const info = readBatchInfo(idempotent, 0);
  assert.equal(info.producerId, 4242);
  assert.equal(info.producerEpoch, 3);
  assert.equal(info.baseSequence, 17);
});

Deno.test("validateBatches accepts single, multiple, gzip, idempotent and transactional batches", () => {
  const golden = unhex(GOLDEN_V2);
  const gzip = encodeRecordBatch(GOLDEN_RECORDS, { compression: "gzip" });
  const txn = encodeRecordBatch([{ key: null, value: utf8("t") }], {
    producerId: 9,
    producerEpoch: 0,
    baseSequence: 0,
    transactional: true,
  });
  const result = validateBatches(concat(golden, gzip, txn), LIMITS);
  const batches = okBatches(result);
  assert.ok(result.ok);
  assert.equal(result.totalRecords, 7);
  assert.deepEqual(batches.map((b) => b.position), [0, 100, 100 + gzip.length]);
  assert.deepEqual(batches.map((b) => b.compression), [0, 1, 0]);
  assert.equal(batches[2].isTransactional, true);
  okBatches(validateBatches(unhex(GOLDEN_V2_IDEMPOTENT), { ...LIMITS, maxBatches: 1 }));
});

Deno.test("validateBatches: empty record data is INVALID_RECORD, as Kafka answers Produce v3+", () => {
  expectError(validateBatches(new Uint8Array(0), LIMITS), INVALID_RECORD, /at least one batch/);
});

Deno.test("validateBatches rejects a CRC mismatch with CORRUPT_MESSAGE", () => {
  const bad = unhex(GOLDEN_V2);
  bad[80] ^= 0x01; // inside record 0's value... covered by the CRC
  expectError(
    validateBatches(bad, LIMITS),
    CORRUPT_MESSAGE,
    /CRC32C 0x[0-9a-f]{8} but .*0x2e087a10/,
  );
  const badCrcField = unhex(GOLDEN_V2);
  badCrcField[CRC_OFFSET] ^= 0x80;
  expectError(validateBatches(badCrcField, LIMITS), CORRUPT_MESSAGE, /CRC32C/);
});

Deno.test("validateBatches rejects truncated data with CORRUPT_MESSAGE", () => {
  const golden = unhex(GOLDEN_V2);
  for (const cut of [1, 12, 16]) {
    expectError(validateBatches(golden.subarray(0, cut), LIMITS), CORRUPT_MESSAGE, /too few/);
  }
  expectError(validateBatches(golden.subarray(0, 40), LIMITS), CORRUPT_MESSAGE, /truncated/);
  expectError(validateBatches(golden.subarray(0, 99), LIMITS), CORRUPT_MESSAGE, /declares 100/);
  // A complete batch followed by the start of another.
  expectError(
    validateBatches(concat(golden, golden.subarray(0, 70)), LIMITS),
    CORRUPT_MESSAGE,
    /byte 100/,
  );
  const shortLength = mutate(golden, (_, v) => v.setInt32(8, 48));
  expectError(validateBatches(shortLength, LIMITS), CORRUPT_MESSAGE, /batchLength 48/);
});

Deno.test("validateBatches flags legacy magic 0/1 and rejects unknown or mixed magic", () => {
  const golden = unhex(GOLDEN_V2);
  for (const magic of [0, 1] as const) {
    const legacy = golden.slice();
    legacy[16] = magic;
    const result = validateBatches(legacy, LIMITS);
    assert.equal(result.ok, false);
    if (result.ok) continue;
    assert.equal(result.legacyMagic, magic);
    assert.equal(result.errorCode, INVALID_RECORD);
  }
  for (const magic of [3, 0x7f, 0xff]) {
    const wrong = golden.slice();
    wrong[16] = magic;
    const result = validateBatches(wrong, LIMITS);
    expectError(result, CORRUPT_MESSAGE, /invalid magic/);
    assert.equal(!result.ok && result.legacyMagic, undefined);
  }
  const second = golden.slice();
  second[16] = 1;
  expectError(validateBatches(concat(golden, second), LIMITS), INVALID_RECORD, /magic 1, unlike/);
});

Deno.test("validateBatches rejects a batch over maxBatchBytes with MESSAGE_TOO_LARGE", () => {
  const golden = unhex(GOLDEN_V2);
  okBatches(validateBatches(golden, { maxBatchBytes: 100 }));
  expectError(validateBatches(golden, { maxBatchBytes: 99 }), MESSAGE_TOO_LARGE, /100 bytes/);
});

Deno.test("validateBatches rejects header fields Kafka's LogValidator rejects", () => {
  const golden = unhex(GOLDEN_V2);
  const cases: [string, (b: Uint8Array, v: DataView) => void, number, RegExp][] = [
    ["non-zero baseOffset", (_, v) => v.setInt32(4, 5), INVALID_RECORD, /baseOffset 5/],
    [
      "count above lastOffsetDelta + 1",
      (_, v) => v.setInt32(57, 4),
      INVALID_RECORD,
      /recordsCount 4/,
    ],
    [
      "count below lastOffsetDelta + 1",
      (_, v) => v.setInt32(57, 2),
      INVALID_RECORD,
      /recordsCount 2/,
    ],
    [
      "zero count",
      (_, v) => {
        v.setInt32(57, 0);
        v.setInt32(23, -1);
      },
      INVALID_RECORD,
      /recordsCount 0/,
    ],
    [
      "negative lastOffsetDelta",
      (_, v) => v.setInt32(23, -3),
      INVALID_RECORD,
      /lastOffsetDelta -3/,
    ],
    ["control batch", (_, v) => v.setInt16(21, 0x20), INVALID_RECORD, /control/],
    [
      "producerId without sequence",
      (_, v) => {
        v.setInt32(43, 0);
        v.setInt32(47, 7);
      },
      INVALID_RECORD,
      /producerId 7 but baseSequence -1/,
    ],
    [
      "LogAppendTime from a producer",
      (_, v) => v.setInt16(21, 0x08),
      INVALID_TIMESTAMP,
      /LogAppendTime/,
    ],
    ["unknown codec", (_, v) => v.setInt16(21, 5), UNSUPPORTED_COMPRESSION_TYPE, /codec id 5/],
  ];
  for (const [name, edit, code, pattern] of cases) {
    const result = validateBatches(mutate(golden, edit), LIMITS);
    assert.equal(result.ok, false, name);
    if (!result.ok) {
      assert.equal(result.errorCode, code, `${name}: ${result.message}`);
      assert.match(result.message, pattern, name);
    }
  }
});

Deno.test("validateBatches enforces maxBatches and allowZstd", () => {
  const golden = unhex(GOLDEN_V2);
  expectError(
    validateBatches(concat(golden, golden), { ...LIMITS, maxBatches: 1 }),
    INVALID_RECORD,
    /more than 1 record batch/,
  );
  // A zstd batch is only checked at the header level, so a fake body is fine.
  const zstd = mutate(golden, (_, v) => v.setInt16(21, 4));
  okBatches(validateBatches(zstd, LIMITS));
  expectError(
    validateBatches(zstd, { ...LIMITS, allowZstd: false }),
    UNSUPPORTED_COMPRESSION_TYPE,
    /zstd/,
  );
});

Deno.test("validateBatches walks uncompressed records and rejects bad framing with INVALID_RECORD", () => {
  // One record, key "k", value "v": @61 len 8 (0x10), attrs, tsDelta, offsetDelta,
  // key len (0x02) "k", value len (0x02) "v", header count.
  const one = encodeRecordBatch([{ key: utf8("k"), value: utf8("v"), timestamp: 5 }]);
  assert.equal(hex(one.subarray(61)), "10000000026b027600");
  okBatches(validateBatches(one, LIMITS));
  const cases: [string, (b: Uint8Array, v: DataView) => void, RegExp][] = [
    ["offsetDelta not its index", (b) => (b[64] = 0x02), /offsetDelta 1; expected 0/],
    ["record longer than the batch", (b) => (b[61] = 0x12), /declares 9 bytes but 8 remain/],
    ["record shorter than its fields", (b) => (b[61] = 0x0e), /truncated|invalid|fields use/],
    ["key length -2", (b) => (b[65] = 0x03), /Key of record 0 .* invalid length -2/],
    ["value past the record", (b) => (b[67] = 0x06), /Value of record 0 .* declares 3 bytes/],
    ["negative header count", (b) => (b[69] = 0x01), /invalid header count -1/],
    ["header count past the record", (b) => (b[69] = 0x02), /invalid header count 1/],
    ["timestampDelta swallowing the next field", (b) => (b[63] = 0xff), /malformed record/],
    ["record count beyond the data", (_, v) => {
      v.setInt32(57, 2);
      v.setInt32(23, 1);
    }, /room for at most 1/],
  ];
  for (const [name, edit, pattern] of cases) {
    const result = validateBatches(mutate(one, edit), LIMITS);
    assert.equal(result.ok, false, name);
    if (!result.ok) {
      assert.equal(result.errorCode, INVALID_RECORD, `${name}: ${result.message}`);
      assert.match(result.message, pattern, `${name}: ${result.message}`);
    }
  }
});

Deno.test("validateBatches rejects bytes left after the last record", () => {
  const one = encodeRecordBatch([{ key: utf8("k"), value: utf8("v"), timestamp: 5 }]);
  // Grow the batch by 9 bytes of a second record the count does not cover.
  const grown = concat(one, unhex("10000000026b027600"));
  const fixed = mutate(grown, (_, v) => v.setInt32(8, grown.length - 12));
  expectError(validateBatches(fixed, LIMITS), INVALID_RECORD, /9 bytes remain after the last/);
});

Deno.test("validateBatches checks only header and CRC of compressed batches", () => {
  const gzip = encodeRecordBatch(GOLDEN_RECORDS, { compression: "gzip" });
  // Garbage inside the compressed body passes once the CRC matches: never decompressed.
  const garbled = mutate(gzip, (b) => b.fill(0xee, 61));
  okBatches(validateBatches(garbled, LIMITS));
  const corrupted = gzip.slice();
  corrupted[70] ^= 0xff;
  expectError(validateBatches(corrupted, LIMITS), CORRUPT_MESSAGE, /CRC32C/);
});

Deno.test("validateBatches never throws on mutated or truncated input", () => {
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const base = concat(unhex(GOLDEN_V2), encodeRecordBatch(GOLDEN_RECORDS, { compression: "gzip" }));
  let accepted = 0;
  for (let round = 0; round < 3000; round++) {
    const input = base.slice(0, next() % 4 === 0 ? next() % (base.length + 1) : base.length);
    const flips = 1 + (next() % 4);
    for (let f = 0; f < flips && input.length > 0; f++) {
      input[next() % input.length] = next() & 0xff;
    }
    // Half the time repair the first batch's CRC so the record walk sees the damage.
    if (round % 2 === 0 && input.length >= 100) {
      new DataView(input.buffer).setUint32(CRC_OFFSET, computeBatchCrc(input, 0, 100));
    }
    const result = validateBatches(input, LIMITS);
    if (result.ok) accepted++;
    else assert.equal(typeof result.errorCode, "number");
  }
  assert.ok(accepted < 3000);
});

Deno.test("assignOffsets rewrites only bytes 0-7 of each batch and keeps CRCs valid", () => {
  const a = encodeRecordBatch(GOLDEN_RECORDS);
  const b = encodeRecordBatch([{ key: null, value: utf8("x") }, { key: null, value: utf8("y") }]);
  const records = concat(a, b);
  const before = records.slice();
  const batches = okBatches(validateBatches(records, LIMITS));
  const firstOffset = 2 ** 40 + 5; // needs the high word
  assert.equal(assignOffsets(records, batches, firstOffset), firstOffset + 5);
  assert.equal(readBaseOffset(records, 0), firstOffset);
  assert.equal(readBaseOffset(records, a.length), firstOffset + 3);
  assert.deepEqual(batches.map((x) => x.baseOffset), [firstOffset, firstOffset + 3]);
  assert.equal(nextOffset(batches[1]), firstOffset + 5);
  for (let i = 0; i < records.length; i++) {
    const inOffsetField = i < 8 || (i >= a.length && i < a.length + 8);
    if (!inOffsetField) assert.equal(records[i], before[i], `byte ${i} changed`);
  }
  assert.ok(batches.every((x) => isBatchCrcValid(records, x)));
  const decoded = decodeRecordBatches(records).records.map((r) => r.offset);
  assert.deepEqual(decoded, [0, 1, 2, 3, 4].map((d) => firstOffset + d));
  assert.throws(() => assignOffsets(records, batches, -1), RangeError);
});

Deno.test("assignOffsets then setLogAppendTime matches Kafka's in-place rewrite byte for byte", () => {
  const records = unhex(GOLDEN_V2);
  const [batch] = okBatches(validateBatches(records, LIMITS));
  assignOffsets(records, [batch], 39);
  setLogAppendTime(records, batch, 1800000000000);
  assert.equal(hex(records), GOLDEN_V2_LOG_APPEND_TIME);
});

Deno.test("setLogAppendTime sets the flag and maxTimestamp, keeps baseTimestamp and a valid CRC", () => {
  for (const compression of ["none", "gzip"] as const) {
    const records = encodeRecordBatch(GOLDEN_RECORDS, { compression });
    const [batch] = okBatches(validateBatches(records, LIMITS));
    setLogAppendTime(records, batch, 1800000000123);
    assert.ok(isBatchCrcValid(records, batch), compression);
    const info = readBatchInfo(records, 0);
    assert.equal(info.timestampType, 1);
    assert.equal(info.compression, compression === "gzip" ? 1 : 0);
    assert.equal(info.maxTimestamp, 1800000000123);
    assert.equal(info.baseTimestamp, 1700000000000);
    assert.deepEqual(info, batch);
    const decoded = decodeRecordBatches(records).records;
    assert.deepEqual(decoded.map((r) => [r.timestamp, r.timestampType]), [
      [1800000000123, 1],
      [1800000000123, 1],
      [1800000000123, 1],
    ]);
  }
});

Deno.test("scanBatches lists complete batches and stops at a partial one", () => {
  const a = unhex(GOLDEN_V2);
  const b = encodeRecordBatch([{ key: null, value: utf8("z") }]);
  const { batches, validBytes } = scanBatches(concat(a, b, a.subarray(0, 50)));
  assert.deepEqual(batches.map((x) => [x.position, x.size]), [[0, 100], [100, b.length]]);
  assert.equal(validBytes, 100 + b.length);
  assert.equal(scanBatches(a.subarray(0, 99)).batches.length, 0);
  assert.equal(BATCH_HEADER_BYTES, 61);
});

Deno.test("readVarint and readVarlong follow Kafka's zigzag encoding and limits", () => {
  const read = (bytes: number[], long = false) => {
    const buf = Uint8Array.from(bytes);
    const cursor = { pos: 0 };
    const value = long ? readVarlong(buf, cursor, buf.length) : readVarint(buf, cursor, buf.length);
    return [value, cursor.pos];
  };
  assert.deepEqual(read([0x00]), [0, 1]);
  assert.deepEqual(read([0x01]), [-1, 1]);
  assert.deepEqual(read([0x02]), [1, 1]);
  assert.deepEqual(read([0xd8, 0x04]), [300, 2]);
  assert.deepEqual(read([0xfe, 0xff, 0xff, 0xff, 0x0f]), [2147483647, 5]);
  assert.deepEqual(read([0xff, 0xff, 0xff, 0xff, 0x0f]), [-2147483648, 5]);
  assert.throws(() => read([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), RecordFormatError);
  assert.throws(() => read([0x80]), RecordFormatError);
  assert.deepEqual(read([0x13], true), [-10, 1]);
  // 1700000000000 * 2, as a 6-byte varlong.
  assert.deepEqual(read([0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62], true), [1700000000000, 6]);
  assert.throws(() => read(new Array(11).fill(0x80), true), RecordFormatError);
  assert.throws(() => read([0xff, 0xff], true), RecordFormatError);
});
