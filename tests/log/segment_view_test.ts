import assert from "node:assert/strict";
import { encodeSegment, SegmentFormatError } from "../../lib/log/segment_format.ts";
import {
  findBatch,
  findMaxTimestamp,
  findTimestamp,
  selectBatches,
  viewFromEncoded,
  viewFromObject,
  viewFromWritten,
} from "../../lib/log/segment_view.ts";
import { crc32c } from "../../lib/protocol/crc32c.ts";
import { assignOffsets } from "../../lib/protocol/record_batch.ts";
import { batch, decode } from "./log_fixture.ts";

/** A segment of three batches at offsets 10-11, 12, 13-15 (timestamps 100.., 50, 300..). */
function build() {
  const parts = [
    batch(["a", "b"], { timestamp: 100 }),
    batch(["c"], { timestamp: 50 }),
    batch(["d", "e", "f"], { timestamp: 300 }),
  ];
  let next = 10;
  for (const p of parts) next = assignOffsets(p.records, p.batches, next);
  const infos = parts.map((p) => p.batches[0]);
  const encoded = encodeSegment(
    parts.map((p, i) => ({
      bytes: p.records,
      baseOffset: infos[i].baseOffset,
      lastOffsetDelta: infos[i].lastOffsetDelta,
      recordsCount: infos[i].recordsCount,
    })),
    { createdMs: 0, indexIntervalMessages: 1 },
  );
  return { encoded, infos };
}

Deno.test("segment view: parsed and encoded views agree", () => {
  const { encoded, infos } = build();
  const fromObject = viewFromObject(encoded.segment, { expectedBaseOffset: 10, checkCrc: true });
  const fromEncoded = viewFromEncoded(encoded, infos);
  for (const view of [fromObject, fromEncoded]) {
    assert.equal(view.count, 3);
    assert.equal(view.baseOffset, 10);
    assert.equal(view.lastOffset, 15);
    assert.deepEqual([...view.baseOffsets], [10, 12, 13]);
    assert.deepEqual([...view.lastOffsets], [11, 12, 15]);
    assert.deepEqual([...view.maxTimestamps], [101, 50, 302]);
    assert.deepEqual([...view.starts], [...fromObject.starts]);
  }
});

Deno.test("segment view: batch selection and timestamp lookups", () => {
  const view = viewFromObject(build().encoded.segment, { expectedBaseOffset: 10, checkCrc: true });
  assert.equal(findBatch(view, 0), 0);
  assert.equal(findBatch(view, 12), 1);
  assert.equal(findBatch(view, 14), 2);
  assert.equal(findBatch(view, 16), 3);
  const all = selectBatches(view, 11, 1 << 20, false);
  assert.equal(all.reachedEnd, true);
  assert.deepEqual(decode([all.chunk!]).map(([o]) => o), [10, 11, 12, 13, 14, 15]);
  const none = selectBatches(view, 12, 1, false);
  assert.deepEqual(none, { chunk: null, reachedEnd: false });
  const one = selectBatches(view, 12, 1, true);
  assert.deepEqual(decode([one.chunk!]).map(([o]) => o), [12]);
  assert.equal(one.reachedEnd, false);

  assert.deepEqual(findTimestamp(view, 101), { offset: 11, timestamp: 101 });
  assert.deepEqual(findTimestamp(view, 102), { offset: 13, timestamp: 300 });
  assert.equal(findTimestamp(view, 303), null);
  assert.deepEqual(findMaxTimestamp(view), { offset: 15, timestamp: 302 });
});

Deno.test("segment view: structural corruption is rejected even with a valid CRC", () => {
  const { encoded } = build();
  // Footer says a different last offset than the batches reach.
  const wrongFooter = encoded.segment.slice();
  new DataView(wrongFooter.buffer).setBigInt64(wrongFooter.length - 12, 99n);
  assert.throws(
    () => viewFromObject(wrongFooter, { expectedBaseOffset: 10, checkCrc: true }),
    /footer says 99/,
  );
  // A batch with the wrong base offset (outside the batch CRC; the footer CRC
  // is recomputed, as a buggy writer would have).
  const gap = encoded.segment.slice();
  const view = new DataView(gap.buffer);
  view.setBigInt64(encoded.batchPositions[1], 50n);
  view.setUint32(gap.length - 16, crc32c(gap, 32, gap.length - 16));
  assert.throws(
    () => viewFromObject(gap, { expectedBaseOffset: 10, checkCrc: true }),
    (e) => e instanceof SegmentFormatError && /expected 12/.test(e.message),
  );
});

Deno.test("views: the five arrays share one buffer without overlapping, for 1 to 9 batches", () => {
  for (let count = 1; count <= 9; count++) {
    const sizes = Array.from({ length: count }, (_, i) => 61 + i);
    const bytes = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
    const view = viewFromWritten(
      bytes,
      sizes.map((size, i) => ({
        baseOffset: 1_000_000_000_000 + 2 * i,
        lastOffsetDelta: 1,
        maxTimestamp: 1_700_000_000_000 + i,
        attributes: -1 - i,
        size,
      })),
    );
    const arrays = [view.starts, view.baseOffsets, view.lastOffsets, view.maxTimestamps];
    for (const a of [...arrays, view.attributes]) assert.equal(a.buffer, view.starts.buffer);
    // Every value written survives the writes to the other arrays.
    let at = 0;
    for (let i = 0; i < count; i++) {
      assert.equal(view.starts[i], at);
      at += sizes[i];
      assert.equal(view.baseOffsets[i], 1_000_000_000_000 + 2 * i);
      assert.equal(view.lastOffsets[i], 1_000_000_000_001 + 2 * i);
      assert.equal(view.maxTimestamps[i], 1_700_000_000_000 + i);
      assert.equal(view.attributes[i], -1 - i);
    }
    assert.equal(view.starts[count], at);
  }
});
