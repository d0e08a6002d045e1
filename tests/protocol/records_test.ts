import assert from "node:assert/strict";
import {
  assignOffsets,
  computeBatchCrc,
  CRC_OFFSET,
  readBatchInfo,
  validateBatches,
} from "../../lib/protocol/record_batch.ts";
import {
  type ConsumedRecord,
  decodeRecordBatches,
  encodeRecordBatch,
  type ProducerRecord,
  RecordsDecodeError,
} from "../../lib/protocol/records.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));
const unhex = (s: string) => Uint8Array.from(s.match(/../g)!, (x) => parseInt(x, 16));
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
};

function summary(records: ConsumedRecord[]) {
  return records.map((r) => ({
    offset: r.offset,
    timestamp: r.timestamp,
    key: text(r.key),
    value: text(r.value),
    headers: r.headers.map((h) => [h.key, text(h.value)]),
  }));
}

// Kafka 4.1.0 MemoryRecords.builder output for the three records of GOLDEN_RECORDS in
// record_batch_test.ts, gzip- and snappy-compressed.
const KAFKA_GZIP_BATCH =
  "00000000000000000000006cffffffff028db860830001000000020000018bcfe568000000018bcfe56805ffff" +
  "ffffffffffffffffffffffff000000031f8b08000000000000ff1361606060c936642933645061e06262e4ca48cd" +
  "c9c96761ca60aa60ca631460106661c9366664000047de77cf27000000";
const KAFKA_SNAPPY_BATCH =
  "00000000000000000000006effffffff023f3f7c0e0002000000020000018bcfe568000000018bcfe56805ffff" +
  "ffffffffffffffffffffffff0000000382534e4150505900000000010000000100000029279814000000046b3104" +
  "76310024000a02010a68656c6c6f0402680278026e0110001304046b330100";

const SAMPLE: ProducerRecord[] = [
  { key: utf8("a"), value: utf8("first"), timestamp: 1000 },
  {
    key: null,
    value: utf8("second"),
    timestamp: 990,
    headers: [{ key: "trace-ïd", value: utf8("✓") }, { key: "", value: new Uint8Array(0) }],
  },
  { key: new Uint8Array(0), value: null, timestamp: 1234 },
];

Deno.test("encode then decode round-trips keys, values, headers and timestamps", () => {
  for (const compression of ["none", "gzip"] as const) {
    const batch = encodeRecordBatch(SAMPLE, { compression, baseOffset: 500 });
    const { records, batches } = decodeRecordBatches(batch);
    assert.equal(batches.length, 1);
    assert.equal(batches[0].compression, compression === "gzip" ? 1 : 0);
    assert.equal(batches[0].baseTimestamp, 1000);
    assert.equal(batches[0].maxTimestamp, 1234);
    assert.deepEqual(summary(records), [
      { offset: 500, timestamp: 1000, key: "a", value: "first", headers: [] },
      {
        offset: 501,
        timestamp: 990,
        key: null,
        value: "second",
        headers: [["trace-ïd", "✓"], ["", ""]],
      },
      { offset: 502, timestamp: 1234, key: "", value: null, headers: [] },
    ]);
    assert.ok(records.every((r) => r.timestampType === 0));
  }
});

Deno.test("encoded batches pass broker validation, large values included", () => {
  const big = new Uint8Array(300_000).map((_, i) => i & 0xff);
  const records: ProducerRecord[] = [];
  for (let i = 0; i < 200; i++) {
    records.push({ key: utf8(`key-${i}`), value: i === 7 ? big : utf8(`v${i}`), timestamp: i });
  }
  for (const compression of ["none", "gzip"] as const) {
    const batch = encodeRecordBatch(records, { compression, baseTimestamp: 0 });
    const result = validateBatches(batch, { maxBatchBytes: 1 << 20 });
    assert.ok(result.ok, result.ok ? "" : result.message);
    assert.equal(result.totalRecords, 200);
    const decoded = decodeRecordBatches(batch).records;
    assert.equal(decoded.length, 200);
    assert.deepEqual(decoded[7].value, big);
    assert.equal(text(decoded[199].key), "key-199");
  }
});

Deno.test("encodeRecordBatch fills producer fields and defaults timestamps", () => {
  const batch = encodeRecordBatch([{ key: null, value: utf8("x") }, {
    key: null,
    value: utf8("y"),
    timestamp: 50,
  }], {
    producerId: 77,
    producerEpoch: 2,
    baseSequence: 10,
    transactional: true,
    baseTimestamp: 40,
  });
  const info = readBatchInfo(batch, 0);
  assert.equal(info.producerId, 77);
  assert.equal(info.producerEpoch, 2);
  assert.equal(info.baseSequence, 10);
  assert.equal(info.isTransactional, true);
  assert.equal(info.partitionLeaderEpoch, -1);
  assert.deepEqual(decodeRecordBatches(batch).records.map((r) => r.timestamp), [40, 50]);
  // No timestamps anywhere: Kafka's "no timestamp", never a hidden clock read.
  const untimed = decodeRecordBatches(encodeRecordBatch([{ key: null, value: null }]));
  assert.equal(untimed.records[0].timestamp, -1);
  assert.throws(() => encodeRecordBatch([]), RangeError);
  assert.throws(() => encodeRecordBatch([{ key: null, value: null, timestamp: 1.5 }]), RangeError);
});

Deno.test("decodeRecordBatches reads Kafka's gzip batch and names unsupported codecs", () => {
  const { records } = decodeRecordBatches(unhex(KAFKA_GZIP_BATCH));
  assert.deepEqual(summary(records).map((r) => [r.offset, r.timestamp, r.key, r.value]), [
    [0, 1700000000000, "k1", "v1"],
    [1, 1700000000005, null, "hello"],
    [2, 1699999999990, "k3", null],
  ]);
  assert.throws(
    () => decodeRecordBatches(unhex(KAFKA_SNAPPY_BATCH)),
    (e) => e instanceof RecordsDecodeError && /"snappy"/.test(e.message),
  );
});

Deno.test("decodeRecordBatches ignores a partial trailing batch", () => {
  const a = encodeRecordBatch([{ key: null, value: utf8("a") }]);
  const b = encodeRecordBatch([{ key: null, value: utf8("b") }]);
  const fetched = concat(a, b);
  assignOffsets(fetched, [readBatchInfo(fetched, 0), readBatchInfo(fetched, a.length)], 10);
  for (const cut of [a.length, a.length + 5, a.length + 30, fetched.length - 1]) {
    const { records, batches } = decodeRecordBatches(fetched.subarray(0, cut));
    assert.equal(batches.length, 1, `cut ${cut}`);
    assert.deepEqual(records.map((r) => [r.offset, text(r.value)]), [[10, "a"]]);
  }
  assert.equal(decodeRecordBatches(fetched).records.length, 2);
  assert.equal(decodeRecordBatches(new Uint8Array(0)).records.length, 0);
});

Deno.test("decodeRecordBatches skips control batches but lists them", () => {
  const data = encodeRecordBatch([{ key: null, value: utf8("d") }]);
  const control = encodeRecordBatch([{ key: new Uint8Array([0, 0, 0, 1]), value: null }], {
    producerId: 5,
    producerEpoch: 0,
    baseSequence: 0,
    transactional: true,
  });
  const view = new DataView(control.buffer);
  view.setInt16(21, 0x30); // transactional + control
  view.setUint32(CRC_OFFSET, computeBatchCrc(control, 0, control.length));
  const { records, batches } = decodeRecordBatches(concat(data, control));
  assert.equal(batches.length, 2);
  assert.equal(batches[1].isControl, true);
  assert.deepEqual(records.map((r) => text(r.value)), ["d"]);
});

Deno.test("decodeRecordBatches throws RecordsDecodeError on bad CRC, legacy magic and bad records", () => {
  const good = encodeRecordBatch([{ key: utf8("k"), value: utf8("v") }]);
  const badCrc = good.slice();
  badCrc[good.length - 1] ^= 1;
  assert.throws(
    () => decodeRecordBatches(badCrc),
    (e) => e instanceof RecordsDecodeError && /CRC32C/.test(e.message),
  );
  const legacy = good.slice();
  legacy[16] = 1;
  assert.throws(
    () => decodeRecordBatches(legacy),
    (e) => e instanceof RecordsDecodeError && /magic 1/.test(e.message),
  );
  const badRecord = good.slice();
  badRecord[65] = 0x7f; // key length far past the record
  new DataView(badRecord.buffer).setUint32(
    CRC_OFFSET,
    computeBatchCrc(badRecord, 0, badRecord.length),
  );
  assert.throws(
    () => decodeRecordBatches(badRecord),
    (e) => e instanceof RecordsDecodeError && /malformed/.test(e.message),
  );
});
