import assert from "node:assert/strict";
import {
  buildIndexEntries,
  encodeIndex,
  encodeSegment,
  encodeSegmentFooter,
  encodeSegmentHeader,
  encodeSegmentParts,
  INDEX_INTERVAL_BYTES,
  lookupIndex,
  parseIndex,
  parseSegmentFooter,
  parseSegmentHeader,
  parseSegmentObjectKey,
  partitionObjectPrefix,
  SEGMENT_FLAG_COMPACTED,
  SEGMENT_FOOTER_BYTES,
  SEGMENT_HEADER_BYTES,
  SegmentFormatError,
  segmentObjectKey,
  SegmentStreamEncoder,
  validateSegment,
} from "../../lib/log/segment_format.ts";
import { viewFromObject } from "../../lib/log/segment_view.ts";
import { validateBatches } from "../../lib/protocol/record_batch.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { joinBytes } from "../../lib/util/bytes.ts";

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const ascii = (s: string) => new TextEncoder().encode(s);

/** A fake one-record "batch" whose body is the CRC check string, for golden bytes. */
function goldenSegment() {
  return encodeSegment(
    [{ bytes: ascii("123456789"), baseOffset: 5, lastOffsetDelta: 0, recordsCount: 1 }],
    { createdMs: 0x0102030405, indexIntervalMessages: 100 },
  );
}

Deno.test("segment format: golden bytes of header, body, footer and index", () => {
  const s = goldenSegment();
  assert.equal(
    hex(s.segment),
    // KAFS, version 1, flags 0, base 5, count 1, created 0x0102030405, zero
    "4b414653" + "0001" + "0000" + "0000000000000005" + "00000001" + "0000000102030405" +
      "00000000" +
      hex(ascii("123456789")) +
      // CRC32C("123456789") = 0xe3069283 (the standard check value), last offset 5, END!
      "e3069283" + "0000000000000005" + "454e4421",
  );
  assert.equal(
    hex(s.index),
    // IDX\0, version 1, one entry, interval 100, zero, then (offset 5, position 32)
    "49445800" + "0001" + "00000001" + "00000064" + "0000" + "0000000000000005" + "00000020",
  );
  assert.equal(s.baseOffset, 5);
  assert.equal(s.lastOffset, 5);
  assert.equal(s.messageCount, 1);
  assert.deepEqual(s.batchPositions, [32]);
});

Deno.test("segment format: header and footer encode and parse back", () => {
  const header = {
    flags: 0,
    baseOffset: 2 ** 40 + 7,
    messageCount: 123,
    createdMs: 1_700_000_000_123,
  };
  assert.deepEqual(parseSegmentHeader(encodeSegmentHeader(header)), header);
  const footer = { crc: 0xfffffffe, lastOffset: 2 ** 50 };
  assert.deepEqual(parseSegmentFooter(encodeSegmentFooter(footer)), footer);
});

Deno.test("segment format: real batches round-trip through segment and index", () => {
  const batches = [1, 3, 2, 5, 1].map((n, i) =>
    encodeRecordBatch(
      Array.from({ length: n }, (_, r) => ({ key: null, value: ascii(`v${i}-${r}`) })),
      { baseTimestamp: 1000 + i },
    )
  );
  let offset = 10;
  const inputs = batches.map((bytes) => {
    const v = validateBatches(bytes, { maxBatchBytes: 1 << 20 });
    assert.ok(v.ok);
    const info = v.batches[0];
    const input = {
      bytes,
      baseOffset: offset,
      lastOffsetDelta: info.lastOffsetDelta,
      recordsCount: info.recordsCount,
    };
    offset += info.lastOffsetDelta + 1;
    return input;
  });
  const s = encodeSegment(inputs, { createdMs: 42, indexIntervalMessages: 4 });
  assert.equal(s.baseOffset, 10);
  assert.equal(s.lastOffset, 10 + 12 - 1);
  assert.equal(s.messageCount, 12);
  const { header, footer } = validateSegment(s.segment, { expectedBaseOffset: 10 });
  assert.deepEqual(header, { flags: 0, baseOffset: 10, messageCount: 12, createdMs: 42 });
  assert.equal(footer.lastOffset, 21);
  // Body is the batches, byte for byte.
  let at = SEGMENT_HEADER_BYTES;
  for (const [i, input] of inputs.entries()) {
    assert.equal(s.batchPositions[i], at);
    assert.deepEqual(s.segment.subarray(at, at + input.bytes.length), input.bytes);
    at += input.bytes.length;
  }
  assert.equal(at, s.segment.length - SEGMENT_FOOTER_BYTES);
  // Index: first batch, then once >= 4 messages were written since the last entry:
  // counts 1,3 -> 4 at batch 2; 2,5 -> 7 at batch 4.
  const parsed = parseIndex(s.index);
  assert.equal(parsed.intervalMessages, 4);
  assert.deepEqual(parsed.entries, [
    { offset: 10, position: s.batchPositions[0] },
    { offset: 14, position: s.batchPositions[2] },
    { offset: 21, position: s.batchPositions[4] },
  ]);
  assert.deepEqual(parsed.entries, s.indexEntries);
});

Deno.test("segment format: index interval 1 indexes every batch; first batch always", () => {
  const batches = [5, 1, 1].map((n, i) => ({
    baseOffset: i * 10,
    position: 32 + i,
    recordsCount: n,
  }));
  assert.equal(buildIndexEntries(batches, 1).length, 3);
  assert.deepEqual(buildIndexEntries(batches, 1_000), [{ offset: 0, position: 32 }]);
  assert.deepEqual(buildIndexEntries([], 10), []);
});

Deno.test("segment format: large batches are indexed every INDEX_INTERVAL_BYTES, whatever the count", () => {
  // One record per 500 KB batch: by message count alone, one entry per 100 batches (50 MB).
  const batches = Array.from({ length: 10 }, (_, i) => ({
    baseOffset: i,
    position: 32 + i * 500_000,
    recordsCount: 1,
  }));
  assert.equal(buildIndexEntries(batches, 100).length, 10);
  const small = Array.from({ length: 10 }, (_, i) => ({
    baseOffset: i,
    position: 32 + i * 100,
    recordsCount: 1,
  }));
  assert.equal(buildIndexEntries(small, 100, INDEX_INTERVAL_BYTES).length, 1);
});

Deno.test("segment format: lookupIndex finds the entry at or before an offset", () => {
  const entries = [{ offset: 10, position: 32 }, { offset: 20, position: 100 }, {
    offset: 30,
    position: 200,
  }];
  assert.equal(lookupIndex(entries, 5)?.offset, 10);
  assert.equal(lookupIndex(entries, 10)?.offset, 10);
  assert.equal(lookupIndex(entries, 29)?.offset, 20);
  assert.equal(lookupIndex(entries, 1_000)?.offset, 30);
  assert.equal(lookupIndex([], 1), null);
});

Deno.test("segment format: corruption is detected", () => {
  const good = goldenSegment().segment;
  const mutate = (at: number, value: number) => {
    const copy = good.slice();
    copy[at] = value;
    return copy;
  };
  assert.throws(() => validateSegment(mutate(40, 0)), /CRC32C/);
  assert.throws(() => validateSegment(mutate(0, 0x41)), /magic/);
  assert.throws(() => validateSegment(mutate(5, 2)), /version 2/);
  assert.throws(() => validateSegment(mutate(7, 2)), /flags/);
  assert.throws(() => validateSegment(mutate(good.length - 1, 0)), /footer magic/);
  assert.throws(() => validateSegment(good.subarray(0, good.length - 3)), SegmentFormatError);
  assert.throws(() => validateSegment(good.subarray(0, 20)), /shorter than header/);
  assert.throws(() => validateSegment(good, { expectedBaseOffset: 6 }), /does not match/);
  // CRC checking can be skipped (ranged reads trust the batch CRCs instead).
  validateSegment(mutate(40, 0), { checkCrc: false });
});

Deno.test("segment format: index corruption is detected", () => {
  const index = encodeIndex([{ offset: 1, position: 32 }, { offset: 5, position: 90 }], 2);
  assert.equal(parseIndex(index).entries.length, 2);
  assert.throws(() => parseIndex(index.subarray(0, index.length - 1)), /claims 2 entries/);
  assert.throws(() => parseIndex(index.subarray(0, 10)), /truncated/);
  const badMagic = index.slice();
  badMagic[3] = 1;
  assert.throws(() => parseIndex(badMagic), /magic/);
  assert.throws(
    () => parseIndex(encodeIndex([{ offset: 5, position: 32 }, { offset: 5, position: 90 }], 1)),
    /does not increase/,
  );
  assert.throws(() => parseIndex(encodeIndex([{ offset: 5, position: 8 }], 1)), /header/);
});

Deno.test("segment format: object keys", () => {
  assert.equal(partitionObjectPrefix("default", "orders", 3), "default/orders/3/");
  const key = segmentObjectKey("default", "orders", 3, 1234, "kfs");
  assert.equal(key, "default/orders/3/segment-00000000000000001234.kfs");
  assert.deepEqual(parseSegmentObjectKey(key), { baseOffset: 1234, kind: "kfs", generation: 0 });
  assert.deepEqual(
    parseSegmentObjectKey(segmentObjectKey("ns", "t", 0, 0, "index")),
    { baseOffset: 0, kind: "index", generation: 0 },
  );
  // Compaction rewrites: a generation suffix.
  const rewritten = segmentObjectKey("default", "orders", 3, 1234, "kfs", 7);
  assert.equal(rewritten, "default/orders/3/segment-00000000000000001234.g7.kfs");
  assert.deepEqual(parseSegmentObjectKey(rewritten), {
    baseOffset: 1234,
    kind: "kfs",
    generation: 7,
  });
  assert.equal(parseSegmentObjectKey("default/orders/3/segment-00000000000000001234.g0.kfs"), null);
  assert.equal(parseSegmentObjectKey("default/orders/3/segment-12.kfs"), null);
  assert.equal(parseSegmentObjectKey("default/orders/3/other.txt"), null);
});

Deno.test("segment format: a compacted segment keeps gaps, may be empty, and says so in its flags", () => {
  const b = (baseOffset: number, values: string[]) => {
    const bytes = encodeRecordBatch(
      values.map((v) => ({ key: null, value: new TextEncoder().encode(v) })),
    );
    new DataView(bytes.buffer, bytes.byteOffset).setBigInt64(0, BigInt(baseOffset));
    return { bytes, baseOffset, lastOffsetDelta: values.length - 1, recordsCount: values.length };
  };
  const span = { baseOffset: 100, lastOffset: 120 };
  const parts = encodeSegmentParts([b(103, ["x", "y"]), b(110, ["z"])], {
    createdMs: 1,
    indexIntervalMessages: 1,
    compactedSpan: span,
  });
  const bytes = joinBytes(parts.parts, parts.size);
  const { header, footer } = validateSegment(bytes, { expectedBaseOffset: 100 });
  assert.equal(header.flags, SEGMENT_FLAG_COMPACTED);
  assert.equal(footer.lastOffset, 120);
  const view = viewFromObject(bytes, { expectedBaseOffset: 100, checkCrc: true });
  assert.deepEqual([...view.baseOffsets], [103, 110]);
  assert.equal(view.lastOffset, 120);
  const empty = encodeSegmentParts([], {
    createdMs: 1,
    indexIntervalMessages: 1,
    compactedSpan: span,
  });
  const emptyView = viewFromObject(joinBytes(empty.parts, empty.size), {
    expectedBaseOffset: 100,
    checkCrc: true,
  });
  assert.equal(emptyView.count, 0);
  assert.equal(emptyView.lastOffset, 120);
  // Batches outside the span, or out of order, are refused.
  assert.throws(
    () =>
      encodeSegmentParts([b(99, ["x"])], {
        createdMs: 1,
        indexIntervalMessages: 1,
        compactedSpan: span,
      }),
    /outside/,
  );
  assert.throws(
    () =>
      encodeSegmentParts([b(110, ["x"]), b(105, ["y"])], {
        createdMs: 1,
        indexIntervalMessages: 1,
        compactedSpan: span,
      }),
    /offset order/,
  );
  // Without the flag, the same gap is corruption.
  const plain = bytes.slice();
  plain[7] = 0;
  assert.throws(
    () => viewFromObject(plain, { expectedBaseOffset: 100, checkCrc: false }),
    /expected/,
  );
});

Deno.test("segment format: encodeSegment rejects gaps between batches", () => {
  const b = (baseOffset: number) => ({
    bytes: ascii("x"),
    baseOffset,
    lastOffsetDelta: 0,
    recordsCount: 1,
  });
  assert.throws(
    () => encodeSegment([b(0), b(2)], { createdMs: 0, indexIntervalMessages: 1 }),
    /not contiguous/,
  );
  assert.throws(() => encodeSegment([], { createdMs: 0, indexIntervalMessages: 1 }), /without/);
});

Deno.test("segment stream: the streamed segment is byte for byte the one encodeSegmentParts gives", () => {
  const batch = (baseOffset: number, count: number, seed: number) => {
    const bytes = encodeRecordBatch(
      Array.from({ length: count }, (_, i) => ({
        key: null,
        value: new TextEncoder().encode(`v${seed}-${i}`.repeat(1 + (i % 5))),
      })),
    );
    new DataView(bytes.buffer, bytes.byteOffset).setBigInt64(0, BigInt(baseOffset));
    return { bytes, baseOffset, lastOffsetDelta: count - 1, recordsCount: count };
  };
  const batches = [batch(40, 3, 1), batch(43, 1, 2), batch(44, 7, 3), batch(51, 2, 4)];
  const options = { createdMs: 1_700_000_000_000, indexIntervalMessages: 4 };
  const whole = encodeSegmentParts(batches, options);
  const encoder = new SegmentStreamEncoder({ baseOffset: 40, lastOffset: 52 }, options);
  const streamed: Uint8Array[] = [encoder.header];
  for (const b of batches) {
    encoder.add(b.bytes, b);
    streamed.push(b.bytes);
  }
  const end = encoder.finish();
  streamed.push(end.footer);
  assert.equal(end.size, whole.size);
  assert.deepEqual(joinBytes(streamed, end.size), joinBytes(whole.parts, whole.size));
  assert.deepEqual(end.index, whole.index);
  validateSegment(joinBytes(streamed, end.size), { expectedBaseOffset: 40 });
});

Deno.test("segment stream: a gap, an overlap, a batch past the span or a short stream is refused", () => {
  const options = { createdMs: 1, indexIntervalMessages: 1 };
  const fake = (baseOffset: number, recordsCount: number, lastOffsetDelta = recordsCount - 1) => ({
    baseOffset,
    recordsCount,
    lastOffsetDelta,
  });
  const bytes = new Uint8Array(70);
  const open = () => new SegmentStreamEncoder({ baseOffset: 10, lastOffset: 19 }, options);
  assert.throws(() => open().add(bytes, fake(11, 2)), /not contiguous/);
  const overlap = open();
  overlap.add(bytes, fake(10, 5));
  assert.throws(() => overlap.add(bytes, fake(14, 2)), /not contiguous/);
  // A compacted batch (fewer records than its offset span) cannot be streamed: the header's
  // message count would be wrong.
  assert.throws(() => open().add(bytes, fake(10, 2, 4)), /only producer batches/);
  assert.throws(() => open().add(bytes, fake(10, 11)), /past the segment's last offset/);
  const short = open();
  short.add(bytes, fake(10, 9));
  assert.throws(() => short.finish(), /up to 18 only/);
  assert.throws(
    () => new SegmentStreamEncoder({ baseOffset: 10, lastOffset: 9 }, options),
    /Cannot stream/,
  );
});
