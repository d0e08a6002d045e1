import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { crc32 } from "../../lib/protocol/crc32c.ts";
import {
  convertLegacyMessageSet,
  LEGACY_MAX_DECOMPRESSED_BYTES,
  type LegacyConversion,
} from "../../lib/protocol/legacy_message_set.ts";
import { readBatchInfo, validateBatches } from "../../lib/protocol/record_batch.ts";
import { decodeRecordBatches } from "../../lib/protocol/records.ts";

const CORRUPT_MESSAGE = 2;
const UNSUPPORTED_COMPRESSION_TYPE = 76;
const NOW = 1_750_000_000_000;

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

interface MessageSpec {
  magic: 0 | 1;
  offset?: number;
  attributes?: number;
  timestamp?: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
}

/**
 * One legacy message, laid out by hand: offset i64, messageSize i32, crc u32 (IEEE over
 * magic..end), magic i8, attributes i8, [timestamp i64 if magic 1], key, value (i32 lengths).
 */
function message(spec: MessageSpec): Uint8Array {
  const keyLength = spec.key?.length ?? 0;
  const valueLength = spec.value?.length ?? 0;
  const bodySize = 2 + (spec.magic === 1 ? 8 : 0) + 4 + keyLength + 4 + valueLength;
  const out = new Uint8Array(12 + 4 + bodySize);
  const view = new DataView(out.buffer);
  view.setBigInt64(0, BigInt(spec.offset ?? 0));
  view.setInt32(8, 4 + bodySize);
  let pos = 16;
  view.setInt8(pos++, spec.magic);
  view.setInt8(pos++, spec.attributes ?? 0);
  if (spec.magic === 1) {
    view.setBigInt64(pos, BigInt(spec.timestamp ?? -1));
    pos += 8;
  }
  for (const field of [spec.key, spec.value]) {
    view.setInt32(pos, field === null ? -1 : field.length);
    pos += 4;
    if (field !== null) {
      out.set(field, pos);
      pos += field.length;
    }
  }
  view.setUint32(12, crc32(out, 16, out.length));
  return out;
}

/** A gzip wrapper around `inner`, as old producers send compressed message sets. */
function gzipWrapper(magic: 0 | 1, inner: Uint8Array[], timestamp = -1, attributes = 1) {
  return message({
    magic,
    offset: inner.length - 1,
    attributes,
    timestamp,
    key: null,
    value: new Uint8Array(gzipSync(concat(...inner))),
  });
}

function okConversion(result: LegacyConversion): { batch: Uint8Array; count: number } {
  if (!result.ok) assert.fail(`expected ok, got ${result.errorCode}: ${result.message}`);
  return result;
}

/** Converts, checks the batch passes produce validation, and decodes it. */
function convertAndDecode(set: Uint8Array) {
  const { batch, count } = okConversion(convertLegacyMessageSet(set, NOW));
  const validation = validateBatches(batch, { maxBatchBytes: 1 << 26, maxBatches: 1 });
  assert.ok(validation.ok, validation.ok ? "" : validation.message);
  const info = readBatchInfo(batch, 0);
  assert.deepEqual(
    [info.baseOffset, info.compression, info.producerId, info.producerEpoch, info.baseSequence],
    [0, 0, -1, -1, -1],
  );
  const { records } = decodeRecordBatches(batch);
  assert.equal(records.length, count);
  return records.map((r) => [r.offset, r.timestamp, text(r.key), text(r.value)]);
}

const V0_MESSAGES = () => [
  message({ magic: 0, offset: 0, key: utf8("k1"), value: utf8("v1") }),
  message({ magic: 0, offset: 1, key: null, value: utf8("hello") }),
  message({ magic: 0, offset: 2, key: utf8("k3"), value: null }),
];
const V1_MESSAGES = () => [
  message({ magic: 1, offset: 0, timestamp: 1000, key: utf8("k1"), value: utf8("v1") }),
  message({ magic: 1, offset: 1, timestamp: -1, key: null, value: utf8("hello") }),
  message({ magic: 1, offset: 2, timestamp: 900, key: utf8("k3"), value: null }),
];
const V0_EXPECTED = [
  [0, NOW, "k1", "v1"],
  [1, NOW, null, "hello"],
  [2, NOW, "k3", null],
];
const V1_EXPECTED = [
  [0, 1000, "k1", "v1"],
  [1, NOW, null, "hello"],
  [2, 900, "k3", null],
];

Deno.test("magic 0 message set converts to one v2 batch with nowMs timestamps", () => {
  assert.deepEqual(convertAndDecode(concat(...V0_MESSAGES())), V0_EXPECTED);
});

Deno.test("magic 1 message set keeps its timestamps; -1 becomes nowMs", () => {
  assert.deepEqual(convertAndDecode(concat(...V1_MESSAGES())), V1_EXPECTED);
});

Deno.test("gzip wrappers unpack for magic 0 and magic 1 (relative inner offsets)", () => {
  assert.deepEqual(convertAndDecode(gzipWrapper(0, V0_MESSAGES())), V0_EXPECTED);
  assert.deepEqual(convertAndDecode(gzipWrapper(1, V1_MESSAGES(), 1000)), V1_EXPECTED);
});

Deno.test("a magic 1 LogAppendTime wrapper's timestamp applies to its inner messages", () => {
  const set = gzipWrapper(1, V1_MESSAGES(), 4242, 1 | 0x08);
  assert.deepEqual(convertAndDecode(set).map((r) => r[1]), [4242, 4242, 4242]);
});

Deno.test("plain messages and wrappers mix in order", () => {
  const [a, b, c] = V0_MESSAGES();
  const set = concat(a, gzipWrapper(0, [b, c]), message({ magic: 0, key: null, value: utf8("z") }));
  assert.deepEqual(convertAndDecode(set).map((r) => r[3]), ["v1", "hello", null, "z"]);
});

Deno.test("message sets from Kafka's own builder convert to the same records", () => {
  // Apache Kafka 4.1.0 MemoryRecords.builder, magic 0 and 1, none and gzip, appending
  // (1700000000000, "k1", "v1"), (1700000000005, null, "hello"), (1699999999990, "k3", null).
  const sets = {
    v0_none:
      "00000000000000000000001257e7496e0000000000026b31000000027631000000000000000100000013" +
      "87a77ab20000ffffffff0000000568656c6c6f000000000000000200000010b643ca6a0000000000026b33ffffffff",
    v0_gzip:
      "0000000000000002000000577939e7e60001ffffffff000000491f8b08000000000000ff63608003a1f0" +
      "e79e79601653b621882c3384ca3002b170fbf2aa4d0c0cff8100c863cd48cdc9c9874a3301b1c036e7535950cd" +
      "c6204500626632d559000000",
    v1_none: "00000000000000000000001aa5da6a6201000000018bcfe56800000000026b31000000027631000000" +
      "00000000010000001b0a4065d701000000018bcfe56805ffffffff0000000568656c6c6f0000000000000002000000" +
      "18836ba30d01000000018bcfe567f6000000026b33ffffffff",
    v1_gzip:
      "00000000000000020000006c534dce1d01010000018bcfe56805ffffffff000000561f8b0800000000000" +
      "0ff63608003a9a5b7b29218810cc6eef34f3340224cd98620b2cc10aa022429cde5907a1dae8af53f100039ac" +
      "19a93939f950654c402cd19cbd9817a62cfd1bd8306390620048fd58dd71000000",
  };
  const values = [["k1", "v1"], [null, "hello"], ["k3", null]];
  for (const [name, hexSet] of Object.entries(sets)) {
    const decoded = convertAndDecode(unhex(hexSet));
    const timestamps = name.startsWith("v1")
      ? [1700000000000, 1700000000005, 1699999999990]
      : [NOW, NOW, NOW];
    assert.deepEqual(decoded, values.map(([k, v], i) => [i, timestamps[i], k, v]), name);
  }
});

Deno.test("an empty message set converts to nothing", () => {
  const result = okConversion(convertLegacyMessageSet(new Uint8Array(0), NOW));
  assert.equal(result.count, 0);
  assert.equal(result.batch.length, 0);
});

function expectFailure(set: Uint8Array, errorCode: number, pattern: RegExp): void {
  const result = convertLegacyMessageSet(set, NOW);
  assert.equal(result.ok, false, "expected conversion to fail");
  if (result.ok) return;
  assert.equal(result.errorCode, errorCode, result.message);
  assert.match(result.message, pattern);
}

Deno.test("corrupt legacy messages answer CORRUPT_MESSAGE", () => {
  const good = concat(...V1_MESSAGES());
  const badCrc = good.slice();
  badCrc[30] ^= 1;
  expectFailure(badCrc, CORRUPT_MESSAGE, /CRC/);
  expectFailure(good.subarray(0, good.length - 1), CORRUPT_MESSAGE, /declares size/);
  expectFailure(good.subarray(0, 20), CORRUPT_MESSAGE, /too few/);
  const tooShort = message({ magic: 0, key: null, value: null }).slice();
  new DataView(tooShort.buffer).setInt32(8, 13);
  expectFailure(tooShort, CORRUPT_MESSAGE, /declares size 13/);
  // Key length pointing past the message (CRC fixed so the field check is reached).
  const badKey = message({ magic: 0, key: utf8("abc"), value: null });
  new DataView(badKey.buffer).setInt32(18, 50);
  new DataView(badKey.buffer).setUint32(12, crc32(badKey, 16, badKey.length));
  expectFailure(badKey, CORRUPT_MESSAGE, /key at byte 18 has invalid length 50/);
  const magic2 = message({ magic: 0, key: null, value: utf8("x") });
  magic2[16] = 2;
  expectFailure(magic2, CORRUPT_MESSAGE, /magic 2/);
});

Deno.test("wrapper problems answer CORRUPT_MESSAGE", () => {
  const nested = gzipWrapper(0, [gzipWrapper(0, V0_MESSAGES())]);
  expectFailure(nested, CORRUPT_MESSAGE, /compressed again/);
  const mixedMagic = gzipWrapper(1, V0_MESSAGES(), 5);
  expectFailure(mixedMagic, CORRUPT_MESSAGE, /inner message magic 0 differs/);
  const notGzip = message({ magic: 0, attributes: 1, key: null, value: utf8("not gzip") });
  expectFailure(notGzip, CORRUPT_MESSAGE, /cannot gunzip/);
  const nullValue = message({ magic: 0, attributes: 1, key: null, value: null });
  expectFailure(nullValue, CORRUPT_MESSAGE, /null value/);
});

Deno.test("snappy and lz4 wrappers answer UNSUPPORTED_COMPRESSION_TYPE", () => {
  for (const [codec, name] of [[2, "snappy"], [3, "lz4"]] as const) {
    const wrapper = message({
      magic: 1,
      attributes: codec,
      timestamp: 1,
      key: null,
      value: utf8("x"),
    });
    expectFailure(wrapper, UNSUPPORTED_COMPRESSION_TYPE, new RegExp(`"${name}"`));
  }
});

Deno.test("gzip wrappers may not inflate past LEGACY_MAX_DECOMPRESSED_BYTES in total", () => {
  // Two wrappers of 40 MiB each: each alone fits, together they do not.
  const half = message({ magic: 0, key: null, value: new Uint8Array(40 * 1024 * 1024) });
  const wrapper = gzipWrapper(0, [half]);
  assert.ok(2 * half.length > LEGACY_MAX_DECOMPRESSED_BYTES);
  assert.equal(okConversion(convertLegacyMessageSet(wrapper, NOW)).count, 1);
  expectFailure(concat(wrapper, wrapper), CORRUPT_MESSAGE, /inflate to more than/);
});
