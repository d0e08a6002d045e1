/**
 * Record-level reading and rewriting of Kafka v2 record batches, for the
 * compactor only: the broker's produce and fetch paths never look inside a
 * batch (see lib/protocol/record_batch.ts).
 *
 * A rewrite keeps what Kafka's MemoryRecords.filterTo keeps
 * (buildRetainedRecordsInto + overrideLastOffset): the base offset,
 * lastOffsetDelta (so the producer's last sequence survives and offsets
 * stay where they were: the gaps are the removed records), attributes
 * (codec, timestamp type, transactional, control), producer id, epoch and
 * base sequence, partition leader epoch. Kept records are copied byte for
 * byte, offset and timestamp deltas included, so baseTimestamp is kept too;
 * maxTimestamp is recomputed from the kept records for CreateTime batches
 * (LogAppendTime batches keep theirs: it is every record's timestamp).
 * recordsCount, batchLength and the CRC32C follow the new records section,
 * which is recompressed with the batch's codec.
 *
 * Owns: `readBatchRecords`, `rewriteBatch`, `emptyBatchLike`.
 * Pure: no I/O. Imports lib/protocol and this folder's codec table only.
 */

import {
  ATTRIBUTES_OFFSET,
  BASE_TIMESTAMP_OFFSET,
  BATCH_HEADER_BYTES,
  BATCH_LENGTH_OFFSET,
  type BatchInfo,
  type ByteCursor,
  COMPRESSION,
  COMPRESSION_CODEC_MASK,
  computeBatchCrc,
  CONTROL_FLAG,
  CRC_OFFSET,
  LOG_OVERHEAD,
  MAX_TIMESTAMP_OFFSET,
  MIN_RECORD_BYTES,
  readVarint,
  readVarlong,
  RecordFormatError,
  RECORDS_COUNT_OFFSET,
  TIMESTAMP_TYPE,
  TIMESTAMP_TYPE_FLAG,
  TRANSACTIONAL_FLAG,
} from "../../protocol/record_batch.ts";
import { MAX_DECOMPRESSED_BATCH_BYTES } from "../../protocol/records.ts";
import { CodecError } from "./record_codec.ts";
import { compressRecords, decompressRecords } from "./record_codecs.ts";

/** One record of a batch, as a view into the batch's uncompressed records section. */
export interface RecordView {
  /** Offset of the record: the batch's baseOffset + offsetDelta. */
  offset: number;
  offsetDelta: number;
  /** The record's timestamp as a consumer sees it (LogAppendTime: the batch's maxTimestamp). */
  timestamp: number;
  /** View of the key bytes; null for a record without a key. */
  key: Uint8Array | null;
  /** View of the value bytes; null for a tombstone. */
  value: Uint8Array | null;
  /** True for a tombstone (null value). */
  valueIsNull: boolean;
  /** Byte range of the whole record, its length varint included, in `section`. */
  start: number;
  end: number;
}

/** A batch opened for filtering. */
export interface BatchRecords {
  batch: BatchInfo;
  /** The uncompressed records section. */
  section: Uint8Array;
  records: RecordView[];
}

/** A batch whose records cannot be read: bad codec payload or malformed records. */
export class BatchRecordsError extends Error {
  override name = "BatchRecordsError";
}

/** The batch's bytes in `buf`, as a view (no copy). */
export function batchBytes(buf: Uint8Array, batch: BatchInfo): Uint8Array {
  return buf.subarray(batch.position, batch.position + batch.size);
}

/**
 * Opens the batch at `batch.position` in `buf`: inflates its records section
 * (at most `maxBytes`) and walks every record the way Kafka's
 * DefaultRecord.readFrom does. Offset deltas must increase strictly and stay
 * within lastOffsetDelta, as they do in batches that producers wrote and in
 * batches that compaction rewrote. Throws BatchRecordsError naming the batch.
 */
export function readBatchRecords(
  buf: Uint8Array,
  batch: BatchInfo,
  maxBytes: number = MAX_DECOMPRESSED_BATCH_BYTES,
): BatchRecords {
  const at = `Record batch at offset ${batch.baseOffset}`;
  const payload = buf.subarray(batch.position + BATCH_HEADER_BYTES, batch.position + batch.size);
  let section: Uint8Array;
  try {
    section = decompressRecords(batch.compression, payload, maxBytes);
  } catch (e) {
    if (e instanceof CodecError) throw new BatchRecordsError(`${at}: ${e.message}`);
    throw e;
  }
  try {
    return { batch, section, records: walk(section, batch) };
  } catch (e) {
    if (e instanceof RecordFormatError) throw new BatchRecordsError(`${at}: ${e.message}`);
    throw e;
  }
}

function readKey(section: Uint8Array, cursor: ByteCursor, end: number): Uint8Array | null {
  const length = readVarint(section, cursor, end);
  if (length === -1) return null;
  if (length < 0 || length > end - cursor.pos) {
    throw new RecordFormatError(`Key at byte ${cursor.pos} has invalid length ${length}`);
  }
  const key = section.subarray(cursor.pos, cursor.pos + length);
  cursor.pos += length;
  return key;
}

function walk(section: Uint8Array, batch: BatchInfo): RecordView[] {
  const count = batch.recordsCount;
  if (count < 0 || count > section.length / MIN_RECORD_BYTES) {
    throw new RecordFormatError(`recordsCount ${count} does not fit ${section.length} bytes`);
  }
  const logAppendTime = batch.timestampType === TIMESTAMP_TYPE.logAppendTime;
  const records: RecordView[] = [];
  const cursor: ByteCursor = { pos: 0 };
  const end = section.length;
  let previousDelta = -1;
  // Bounded by count, checked against the section size above.
  for (let i = 0; i < count; i++) {
    const start = cursor.pos;
    const bodyLength = readVarint(section, cursor, end);
    if (bodyLength < 1 || bodyLength > end - cursor.pos) {
      throw new RecordFormatError(`Record ${i} at byte ${start} has invalid length ${bodyLength}`);
    }
    const bodyEnd = cursor.pos + bodyLength;
    cursor.pos++; // attributes: unused in v2
    const timestampDelta = readVarlong(section, cursor, bodyEnd);
    const offsetDelta = readVarint(section, cursor, bodyEnd);
    if (offsetDelta <= previousDelta || offsetDelta > batch.lastOffsetDelta) {
      throw new RecordFormatError(
        `Record ${i} has offsetDelta ${offsetDelta} after ${previousDelta}; ` +
          `deltas must increase and stay within lastOffsetDelta ${batch.lastOffsetDelta}`,
      );
    }
    previousDelta = offsetDelta;
    const key = readKey(section, cursor, bodyEnd);
    const valueLength = readVarint(section, cursor, bodyEnd);
    if (valueLength < -1 || valueLength > bodyEnd - cursor.pos) {
      throw new RecordFormatError(`Record ${i} has invalid value length ${valueLength}`);
    }
    const value = valueLength === -1
      ? null
      : section.subarray(cursor.pos, cursor.pos + valueLength);
    // Headers are carried inside the record's bytes; the compactor never reads them.
    cursor.pos = bodyEnd;
    records.push({
      offset: batch.baseOffset + offsetDelta,
      offsetDelta,
      timestamp: logAppendTime ? batch.maxTimestamp : batch.baseTimestamp + timestampDelta,
      key,
      value,
      valueIsNull: value === null,
      start,
      end: bodyEnd,
    });
  }
  if (cursor.pos !== end) {
    throw new RecordFormatError(`${end - cursor.pos} bytes remain after the last record`);
  }
  return records;
}

function setInt64(view: DataView, pos: number, value: number): void {
  view.setBigInt64(pos, BigInt(value));
}

/**
 * The batch re-encoded with only the records at `keep` (indexes into
 * `opened.records`, increasing). Keeping every record returns the original
 * bytes, never a re-encoding. Keeping none is the caller's choice between
 * dropping the batch and {@link emptyBatchLike}; it throws RangeError here.
 */
export function rewriteBatch(
  buf: Uint8Array,
  opened: BatchRecords,
  keep: readonly number[],
): Uint8Array {
  const { batch, section, records } = opened;
  if (keep.length === records.length) return batchBytes(buf, batch);
  if (keep.length === 0) {
    throw new RangeError(
      `Cannot rewrite batch at offset ${batch.baseOffset} without records: ` +
        "drop it or use emptyBatchLike",
    );
  }
  let sectionBytes = 0;
  let maxTimestamp = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < keep.length; k++) {
    if (k > 0 && keep[k] <= keep[k - 1]) throw new RangeError("Kept record indexes must increase");
    const record = records[keep[k]];
    sectionBytes += record.end - record.start;
    if (record.timestamp > maxTimestamp) maxTimestamp = record.timestamp;
  }
  const kept = new Uint8Array(sectionBytes);
  let pos = 0;
  for (const index of keep) {
    const record = records[index];
    kept.set(section.subarray(record.start, record.end), pos);
    pos += record.end - record.start;
  }
  const original = buf.subarray(batch.position + BATCH_HEADER_BYTES, batch.position + batch.size);
  const payload = compressRecords(batch.compression, kept, original);
  const size = BATCH_HEADER_BYTES + payload.length;
  const out = new Uint8Array(size);
  out.set(buf.subarray(batch.position, batch.position + BATCH_HEADER_BYTES), 0);
  out.set(payload, BATCH_HEADER_BYTES);
  const view = new DataView(out.buffer);
  view.setInt32(BATCH_LENGTH_OFFSET, size - LOG_OVERHEAD);
  view.setInt32(RECORDS_COUNT_OFFSET, keep.length);
  if (batch.timestampType === TIMESTAMP_TYPE.createTime) {
    setInt64(view, MAX_TIMESTAMP_OFFSET, maxTimestamp);
  }
  view.setUint32(CRC_OFFSET, computeBatchCrc(out, 0, size));
  return out;
}

/**
 * A record-less batch standing for `batch`, as Kafka's
 * DefaultRecordBatch.writeEmptyHeader writes one when the cleaner empties the
 * last batch of a live producer (BatchRetention.RETAIN_EMPTY): same base
 * offset, lastOffsetDelta, producer id, epoch, base sequence and partition
 * leader epoch, so the producer's last sequence and the batch's last offset
 * survive; no codec (there is nothing to compress); the timestamp type,
 * transactional and control flags kept; both timestamps set to the batch's
 * maxTimestamp; recordsCount 0.
 */
export function emptyBatchLike(buf: Uint8Array, batch: BatchInfo): Uint8Array {
  const out = new Uint8Array(BATCH_HEADER_BYTES);
  out.set(buf.subarray(batch.position, batch.position + BATCH_HEADER_BYTES), 0);
  const view = new DataView(out.buffer);
  view.setInt32(BATCH_LENGTH_OFFSET, BATCH_HEADER_BYTES - LOG_OVERHEAD);
  const attributes = (batch.attributes & ~COMPRESSION_CODEC_MASK) &
    (TIMESTAMP_TYPE_FLAG | TRANSACTIONAL_FLAG | CONTROL_FLAG);
  view.setInt16(ATTRIBUTES_OFFSET, attributes | COMPRESSION.none);
  setInt64(view, BASE_TIMESTAMP_OFFSET, batch.maxTimestamp);
  setInt64(view, MAX_TIMESTAMP_OFFSET, batch.maxTimestamp);
  view.setInt32(RECORDS_COUNT_OFFSET, 0);
  view.setUint32(CRC_OFFSET, computeBatchCrc(out, 0, BATCH_HEADER_BYTES));
  return out;
}
