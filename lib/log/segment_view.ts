/**
 * A segment held in memory with its batch boundaries: what the segment cache
 * stores and reads are served from as zero-copy subarrays. Pure: builds views
 * from a freshly encoded segment or from a `.kfs` object, selects batch
 * ranges, and answers timestamp questions. No I/O.
 */

import {
  BASE_TIMESTAMP_OFFSET,
  BATCH_HEADER_BYTES,
  type ByteCursor,
  COMPRESSION,
  COMPRESSION_CODEC_MASK,
  readVarint,
  readVarlong,
  RECORDS_COUNT_OFFSET,
  scanBatches,
  TIMESTAMP_TYPE_FLAG,
} from "../protocol/record_batch.ts";
import {
  type EncodedSegment,
  SEGMENT_FLAG_COMPACTED,
  SEGMENT_FOOTER_BYTES,
  SEGMENT_HEADER_BYTES,
  SegmentFormatError,
  validateSegment,
} from "./segment_format.ts";

export interface SegmentView {
  baseOffset: number;
  lastOffset: number;
  /** The whole `.kfs` object. */
  bytes: Uint8Array;
  count: number;
  /** Absolute batch starts in `bytes`; `starts[count]` is the end of the body. */
  starts: Int32Array;
  baseOffsets: Float64Array;
  lastOffsets: Float64Array;
  maxTimestamps: Float64Array;
  attributes: Int16Array;
}

/** Rough per-batch bookkeeping bytes of a view, for cache accounting. */
const VIEW_BYTES_PER_BATCH = 30;
/** The view object, its typed arrays and its cache entry, as V8 allocates them (measured). */
const VIEW_FIXED_BYTES = 1088;

/** Memory a view holds, for the cache bound. */
export function viewBytes(view: SegmentView): number {
  return view.bytes.byteLength + VIEW_FIXED_BYTES + view.count * VIEW_BYTES_PER_BATCH;
}

/** The view of a segment this broker just encoded. */
export function viewFromEncoded(
  encoded: EncodedSegment,
  batches: { lastOffsetDelta: number; maxTimestamp: number; attributes: number }[],
): SegmentView {
  const count = batches.length;
  const view = allocate(encoded.segment, count);
  for (let i = 0; i < count; i++) {
    view.starts[i] = encoded.batchPositions[i];
    const base = i === 0 ? encoded.baseOffset : view.lastOffsets[i - 1] + 1;
    view.baseOffsets[i] = base;
    view.lastOffsets[i] = base + batches[i].lastOffsetDelta;
    view.maxTimestamps[i] = batches[i].maxTimestamp;
    view.attributes[i] = batches[i].attributes;
  }
  view.starts[count] = encoded.segment.byteLength - SEGMENT_FOOTER_BYTES;
  view.baseOffset = encoded.baseOffset;
  view.lastOffset = encoded.lastOffset;
  return view;
}

/**
 * The view of batches this broker just wrote ahead: `bytes` is their
 * concatenation in offset order, `batches` their headers (offsets assigned).
 */
export function viewFromWritten(
  bytes: Uint8Array,
  batches: {
    baseOffset: number;
    lastOffsetDelta: number;
    maxTimestamp: number;
    attributes: number;
    size: number;
  }[],
): SegmentView {
  const count = batches.length;
  const view = allocate(bytes, count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const b = batches[i];
    view.starts[i] = at;
    view.baseOffsets[i] = b.baseOffset;
    view.lastOffsets[i] = b.baseOffset + b.lastOffsetDelta;
    view.maxTimestamps[i] = b.maxTimestamp;
    view.attributes[i] = b.attributes;
    at += b.size;
  }
  view.starts[count] = at;
  view.baseOffset = count > 0 ? view.baseOffsets[0] : 0;
  view.lastOffset = count > 0 ? view.lastOffsets[count - 1] : -1;
  return view;
}

/**
 * Parses whole batches read back from a write-ahead chunk and checks they
 * hold exactly offsets [baseOffset, endOffset). Throws SegmentFormatError.
 */
export function viewFromBatchBytes(
  bytes: Uint8Array,
  baseOffset: number,
  endOffset: number,
): SegmentView {
  const { batches, validBytes } = scanBatches(bytes);
  if (validBytes !== bytes.byteLength || batches.length === 0) {
    throw new SegmentFormatError(
      `Chunk of offsets ${baseOffset}-${endOffset - 1} has torn batches`,
    );
  }
  const view = allocate(bytes, batches.length);
  let expected = baseOffset;
  for (let i = 0; i < batches.length; i++) {
    const b = batches[i];
    if (b.baseOffset !== expected) {
      throw new SegmentFormatError(
        `Chunk batch ${i} has base offset ${b.baseOffset}, expected ${expected}`,
      );
    }
    view.starts[i] = b.position;
    view.baseOffsets[i] = b.baseOffset;
    view.lastOffsets[i] = b.baseOffset + b.lastOffsetDelta;
    view.maxTimestamps[i] = b.maxTimestamp;
    view.attributes[i] = b.attributes;
    expected = b.baseOffset + b.lastOffsetDelta + 1;
  }
  if (expected !== endOffset) {
    throw new SegmentFormatError(`Chunk ends at offset ${expected - 1}, expected ${endOffset - 1}`);
  }
  view.starts[batches.length] = bytes.byteLength;
  view.baseOffset = baseOffset;
  view.lastOffset = endOffset - 1;
  return view;
}

/**
 * Parses and validates a whole `.kfs` object (header, footer, CRC32C when
 * `checkCrc`, batch framing, contiguous offsets matching header and footer).
 * Throws SegmentFormatError.
 */
export function viewFromObject(
  bytes: Uint8Array,
  options: { expectedBaseOffset: number; checkCrc: boolean },
): SegmentView {
  const { header, footer } = validateSegment(bytes, {
    expectedBaseOffset: options.expectedBaseOffset,
    checkCrc: options.checkCrc,
  });
  const bodyEnd = bytes.byteLength - SEGMENT_FOOTER_BYTES;
  const body = bytes.subarray(SEGMENT_HEADER_BYTES, bodyEnd);
  const { batches, validBytes } = scanBatches(body);
  if (validBytes !== body.byteLength) {
    throw new SegmentFormatError(
      `Segment ${header.baseOffset} has ${body.byteLength - validBytes} bytes after its last ` +
        `whole batch`,
    );
  }
  // A compacted segment keeps its batches' offsets: gaps, and possibly no batch at all.
  const compacted = header.flags === SEGMENT_FLAG_COMPACTED;
  if (batches.length === 0 && !compacted) {
    throw new SegmentFormatError(`Segment ${header.baseOffset} is empty`);
  }
  const view = allocate(bytes, batches.length);
  let expected = header.baseOffset;
  for (let i = 0; i < batches.length; i++) {
    const b = batches[i];
    if (compacted ? b.baseOffset < expected : b.baseOffset !== expected) {
      throw new SegmentFormatError(
        `Segment ${header.baseOffset} batch ${i} has base offset ${b.baseOffset}, ` +
          `expected ${compacted ? "at least " : ""}${expected}`,
      );
    }
    view.starts[i] = SEGMENT_HEADER_BYTES + b.position;
    view.baseOffsets[i] = b.baseOffset;
    view.lastOffsets[i] = b.baseOffset + b.lastOffsetDelta;
    view.maxTimestamps[i] = b.maxTimestamp;
    view.attributes[i] = b.attributes;
    expected = b.baseOffset + b.lastOffsetDelta + 1;
  }
  if (compacted ? expected - 1 > footer.lastOffset : expected - 1 !== footer.lastOffset) {
    throw new SegmentFormatError(
      `Segment ${header.baseOffset} ends at offset ${
        expected - 1
      }, footer says ${footer.lastOffset}`,
    );
  }
  view.starts[batches.length] = bodyEnd;
  view.baseOffset = header.baseOffset;
  view.lastOffset = footer.lastOffset;
  return view;
}

/**
 * A view with its five arrays over one buffer. The view of a one-batch write-ahead range is
 * mostly bookkeeping: cached with its key, it measured ~1.43 KB of heap with a buffer per array
 * and ~1.05 KB with one (~1.08 KB with the cache's recency links; see `VIEW_FIXED_BYTES`).
 */
function allocate(bytes: Uint8Array, count: number): SegmentView {
  const float64s = 3 * count * 8;
  const int32s = (count + 1) * 4;
  const shared = new ArrayBuffer(float64s + int32s + count * 2);
  return {
    baseOffset: 0,
    lastOffset: -1,
    bytes,
    count,
    baseOffsets: new Float64Array(shared, 0, count),
    lastOffsets: new Float64Array(shared, count * 8, count),
    maxTimestamps: new Float64Array(shared, 2 * count * 8, count),
    starts: new Int32Array(shared, float64s, count + 1),
    attributes: new Int16Array(shared, float64s + int32s, count),
  };
}

/** Index of the first batch whose last offset is >= `offset` (`count` when none). */
export function findBatch(view: SegmentView, offset: number): number {
  let lo = 0;
  let hi = view.count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (view.lastOffsets[mid] < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Whole batches from the one containing `offset`, while they fit in
 * `budgetBytes` (the first one regardless when `minOneBatch`), as one
 * subarray of the segment. `reachedEnd` says the selection ran to the end
 * of the segment, so a read may continue in the next one.
 */
export function selectBatches(
  view: SegmentView,
  offset: number,
  budgetBytes: number,
  minOneBatch: boolean,
): { chunk: Uint8Array | null; reachedEnd: boolean } {
  const first = findBatch(view, offset);
  let end = first;
  let bytes = 0;
  while (end < view.count) {
    const size = view.starts[end + 1] - view.starts[end];
    if (bytes + size > budgetBytes && !(minOneBatch && end === first)) break;
    bytes += size;
    end++;
  }
  const chunk = end > first ? view.bytes.subarray(view.starts[first], view.starts[end]) : null;
  return { chunk, reachedEnd: end === view.count };
}

/**
 * The first record at or after `timestampMs` in the view, or null. For
 * uncompressed CreateTime batches the record is exact; for compressed
 * batches (never decompressed) it is the batch's base offset with its max
 * timestamp; for LogAppendTime batches every record carries the batch's
 * max timestamp.
 */
export function findTimestamp(
  view: SegmentView,
  timestampMs: number,
): { offset: number; timestamp: number } | null {
  for (let i = 0; i < view.count; i++) {
    if (view.maxTimestamps[i] < timestampMs) continue;
    if (!isWalkable(view.attributes[i])) {
      return { offset: view.baseOffsets[i], timestamp: view.maxTimestamps[i] };
    }
    let found: { offset: number; timestamp: number } | null = null;
    walkRecordTimestamps(view, i, (offset, timestamp) => {
      if (timestamp >= timestampMs) {
        found = { offset, timestamp };
        return false;
      }
      return true;
    });
    return found ?? { offset: view.baseOffsets[i], timestamp: view.maxTimestamps[i] };
  }
  return null;
}

/**
 * The record with the largest timestamp (the first one among equals), as
 * ListOffsets MAX_TIMESTAMP wants (KIP-734). Compressed batches report
 * their last offset, as Kafka did before it looked inside batches.
 */
export function findMaxTimestamp(view: SegmentView): { offset: number; timestamp: number } | null {
  let best = -1;
  for (let i = 0; i < view.count; i++) {
    if (best < 0 || view.maxTimestamps[i] > view.maxTimestamps[best]) best = i;
  }
  if (best < 0) return null;
  const timestamp = view.maxTimestamps[best];
  if (!isWalkable(view.attributes[best])) {
    const logAppend = (view.attributes[best] & TIMESTAMP_TYPE_FLAG) !== 0;
    return { offset: logAppend ? view.baseOffsets[best] : view.lastOffsets[best], timestamp };
  }
  let offset = view.lastOffsets[best];
  walkRecordTimestamps(view, best, (o, t) => {
    if (t !== timestamp) return true;
    offset = o;
    return false;
  });
  return { offset, timestamp };
}

/** The largest batch max timestamp in the view (-1 when it has no timestamps). */
export function viewMaxTimestamp(view: SegmentView): number {
  let max = -1;
  for (let i = 0; i < view.count; i++) max = Math.max(max, view.maxTimestamps[i]);
  return max;
}

function isWalkable(attributes: number): boolean {
  return (attributes & COMPRESSION_CODEC_MASK) === COMPRESSION.none &&
    (attributes & TIMESTAMP_TYPE_FLAG) === 0;
}

/**
 * Calls `visit(offset, timestamp)` for each record of uncompressed batch `i`
 * until it returns false. Stops quietly at malformed bytes (the batch was
 * validated on produce; a reader must not crash the broker).
 */
function walkRecordTimestamps(
  view: SegmentView,
  i: number,
  visit: (offset: number, timestamp: number) => boolean,
): void {
  const bytes = view.bytes;
  const start = view.starts[i];
  const end = view.starts[i + 1];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const baseTimestamp = Number(dv.getBigInt64(start + BASE_TIMESTAMP_OFFSET));
  const count = dv.getInt32(start + RECORDS_COUNT_OFFSET);
  const cursor: ByteCursor = { pos: start + BATCH_HEADER_BYTES };
  try {
    for (let r = 0; r < count && cursor.pos < end; r++) {
      const length = readVarint(bytes, cursor, end);
      const next = cursor.pos + length;
      cursor.pos++; // attributes
      const timestampDelta = readVarlong(bytes, cursor, next);
      const offsetDelta = readVarint(bytes, cursor, next);
      if (!visit(view.baseOffsets[i] + offsetDelta, baseTimestamp + timestampDelta)) return;
      cursor.pos = next;
    }
  } catch {
    return;
  }
}
