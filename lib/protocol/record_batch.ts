/**
 * Kafka v2 record batches (magic 2, KIP-98) at the byte level: the header
 * view, produce-side validation, in-place offset assignment and the
 * LogAppendTime rewrite.
 *
 * Design rule: batches are never decompressed or re-encoded. The broker
 * validates the header and CRC32C, walks uncompressed records to check their
 * framing, and stores the bytes as produced; only the 8-byte baseOffset (not
 * covered by the CRC) and, for LogAppendTime topics, the attributes and
 * maxTimestamp (followed by a CRC rewrite) are ever changed.
 *
 * Batch layout, big-endian, positions relative to the batch start:
 *
 * | pos | field                | type  | notes                                   |
 * | --- | -------------------- | ----- | --------------------------------------- |
 * |   0 | baseOffset           | i64   | 0 from producers; set by the broker     |
 * |   8 | batchLength          | i32   | bytes after this field (size - 12)      |
 * |  12 | partitionLeaderEpoch | i32   | -1 from producers                       |
 * |  16 | magic                | i8    | 2                                       |
 * |  17 | crc                  | u32   | CRC32C of bytes 21..end                 |
 * |  21 | attributes           | i16   | codec 0-2, tsType 3, txn 4, control 5   |
 * |  23 | lastOffsetDelta      | i32   | recordsCount - 1 for producer batches   |
 * |  27 | baseTimestamp        | i64   |                                         |
 * |  35 | maxTimestamp         | i64   |                                         |
 * |  43 | producerId           | i64   | -1 when not idempotent                  |
 * |  51 | producerEpoch        | i16   |                                         |
 * |  53 | baseSequence         | i32   |                                         |
 * |  57 | recordsCount         | i32   |                                         |
 * |  61 | records              | bytes | possibly compressed                     |
 *
 * Owns: the layout constants, `BatchInfo`, validation, offset and timestamp
 * rewrites, and the varint readers the record walk needs. Must not import
 * anything outside lib/protocol, and does no I/O.
 */

import { crc32c } from "./crc32c.ts";

// ---------------------------------------------------------------------------
// Layout

export const BASE_OFFSET_OFFSET = 0;
export const BATCH_LENGTH_OFFSET = 8;
export const PARTITION_LEADER_EPOCH_OFFSET = 12;
export const MAGIC_OFFSET = 16;
export const CRC_OFFSET = 17;
export const ATTRIBUTES_OFFSET = 21;
export const LAST_OFFSET_DELTA_OFFSET = 23;
export const BASE_TIMESTAMP_OFFSET = 27;
export const MAX_TIMESTAMP_OFFSET = 35;
export const PRODUCER_ID_OFFSET = 43;
export const PRODUCER_EPOCH_OFFSET = 51;
export const BASE_SEQUENCE_OFFSET = 53;
export const RECORDS_COUNT_OFFSET = 57;
/** Header bytes before the first record; the smallest possible batch. */
export const BATCH_HEADER_BYTES = 61;
/** baseOffset + batchLength: the bytes a batch has beyond its batchLength. */
export const LOG_OVERHEAD = 12;
/** Bytes needed to read a batch's (or legacy message's) magic byte. */
export const HEADER_BYTES_UP_TO_MAGIC = MAGIC_OFFSET + 1;
/** The smallest valid batchLength: a header with no records. */
export const MIN_BATCH_LENGTH = BATCH_HEADER_BYTES - LOG_OVERHEAD;
/**
 * Smallest encoded record: length, attributes, timestampDelta, offsetDelta,
 * key length, value length and header count, one byte each. Bounds the
 * record count an uncompressed batch of a given size can hold.
 */
export const MIN_RECORD_BYTES = 7;

export const MAGIC_V2 = 2;

export const COMPRESSION_CODEC_MASK = 0x07;
export const TIMESTAMP_TYPE_FLAG = 0x08;
export const TRANSACTIONAL_FLAG = 0x10;
export const CONTROL_FLAG = 0x20;
export const DELETE_HORIZON_FLAG = 0x40;

/** Codec ids in the low three attribute bits. */
export const COMPRESSION = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
export type CompressionId = (typeof COMPRESSION)[keyof typeof COMPRESSION];
/** Names by codec id, for messages. */
export const COMPRESSION_NAMES: readonly string[] = ["none", "gzip", "snappy", "lz4", "zstd"];

export const TIMESTAMP_TYPE = { createTime: 0, logAppendTime: 1 } as const;
export type TimestampType = (typeof TIMESTAMP_TYPE)[keyof typeof TIMESTAMP_TYPE];

// Kafka error codes returned by validation (see Kafka's Errors.java).
const CORRUPT_MESSAGE = 2; // CORRUPT_MESSAGE (CorruptRecordException)
const MESSAGE_TOO_LARGE = 10; // MESSAGE_TOO_LARGE (RecordTooLargeException)
const INVALID_TIMESTAMP = 32; // INVALID_TIMESTAMP
const UNSUPPORTED_COMPRESSION_TYPE = 76; // UNSUPPORTED_COMPRESSION_TYPE
const INVALID_RECORD = 87; // INVALID_RECORD (org.apache.kafka.common.InvalidRecordException)

const TWO_POW_32 = 4294967296;

// ---------------------------------------------------------------------------
// Header view

/** A decoded v2 batch header plus where the batch sits in its buffer. */
export interface BatchInfo {
  /** Byte position of the batch start (its baseOffset field) in the buffer. */
  position: number;
  /** Total bytes of the batch: batchLength + LOG_OVERHEAD. */
  size: number;
  baseOffset: number;
  partitionLeaderEpoch: number;
  magic: number;
  lastOffsetDelta: number;
  recordsCount: number;
  attributes: number;
  /** 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd (see {@link COMPRESSION}). */
  compression: number;
  /** 0 create time, 1 log append time (see {@link TIMESTAMP_TYPE}). */
  timestampType: TimestampType;
  isTransactional: boolean;
  isControl: boolean;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
}

function viewOf(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Reads a big-endian i64 as a number. Exact for |n| <= 2^53, which covers
 * every offset, timestamp and producer id Kafka hands out in practice.
 */
function getInt64(view: DataView, pos: number): number {
  return view.getInt32(pos) * TWO_POW_32 + view.getUint32(pos + 4);
}

function setInt64(view: DataView, pos: number, value: number): void {
  const hi = Math.floor(value / TWO_POW_32);
  view.setInt32(pos, hi);
  view.setUint32(pos + 4, value - hi * TWO_POW_32);
}

function readInfo(view: DataView, position: number): BatchInfo {
  const attributes = view.getInt16(position + ATTRIBUTES_OFFSET);
  return {
    position,
    size: view.getInt32(position + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD,
    baseOffset: getInt64(view, position + BASE_OFFSET_OFFSET),
    partitionLeaderEpoch: view.getInt32(position + PARTITION_LEADER_EPOCH_OFFSET),
    magic: view.getInt8(position + MAGIC_OFFSET),
    lastOffsetDelta: view.getInt32(position + LAST_OFFSET_DELTA_OFFSET),
    recordsCount: view.getInt32(position + RECORDS_COUNT_OFFSET),
    attributes,
    compression: attributes & COMPRESSION_CODEC_MASK,
    timestampType: attributes & TIMESTAMP_TYPE_FLAG
      ? TIMESTAMP_TYPE.logAppendTime
      : TIMESTAMP_TYPE.createTime,
    isTransactional: (attributes & TRANSACTIONAL_FLAG) !== 0,
    isControl: (attributes & CONTROL_FLAG) !== 0,
    baseTimestamp: getInt64(view, position + BASE_TIMESTAMP_OFFSET),
    maxTimestamp: getInt64(view, position + MAX_TIMESTAMP_OFFSET),
    producerId: getInt64(view, position + PRODUCER_ID_OFFSET),
    producerEpoch: view.getInt16(position + PRODUCER_EPOCH_OFFSET),
    baseSequence: view.getInt32(position + BASE_SEQUENCE_OFFSET),
  };
}

/**
 * Decodes the 61-byte header of the batch at `position`. No validation: the
 * caller knows the bytes are a v2 batch (validated on produce, or read back
 * from a segment). Throws RangeError if the header runs past the buffer.
 */
export function readBatchInfo(buf: Uint8Array, position: number): BatchInfo {
  return readInfo(viewOf(buf), position);
}

/** The baseOffset field of the batch at `position`. */
export function readBaseOffset(buf: Uint8Array, position: number): number {
  return getInt64(viewOf(buf), position + BASE_OFFSET_OFFSET);
}

/** Total size (batchLength + 12) of the batch at `position`. */
export function readBatchSize(buf: Uint8Array, position: number): number {
  return viewOf(buf).getInt32(position + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
}

/** The magic byte of the batch (or legacy message) at `position`. */
export function readMagic(buf: Uint8Array, position: number): number {
  return viewOf(buf).getInt8(position + MAGIC_OFFSET);
}

/** The CRC stored in the header of the batch at `position`. */
export function readStoredCrc(buf: Uint8Array, position: number): number {
  return viewOf(buf).getUint32(position + CRC_OFFSET);
}

/** CRC32C of the batch's bytes from its attributes to its end, as the header should store it. */
export function computeBatchCrc(buf: Uint8Array, position: number, size: number): number {
  return crc32c(buf, position + ATTRIBUTES_OFFSET, position + size);
}

/** True when the stored CRC matches the batch bytes. */
export function isBatchCrcValid(buf: Uint8Array, batch: BatchInfo): boolean {
  return readStoredCrc(buf, batch.position) === computeBatchCrc(buf, batch.position, batch.size);
}

/** Offset of the batch's last record (baseOffset + lastOffsetDelta). */
export function lastOffset(batch: BatchInfo): number {
  return batch.baseOffset + batch.lastOffsetDelta;
}

/** The offset after the batch: where the next batch starts. */
export function nextOffset(batch: BatchInfo): number {
  return batch.baseOffset + batch.lastOffsetDelta + 1;
}

/**
 * Header views of the complete v2 batches at the start of `buf`, in order.
 * Stops at the first incomplete batch, bad length or non-2 magic, without
 * checking CRCs: for walking bytes the broker itself stored (segment bodies,
 * fetch ranges). `validBytes` is where the walk stopped.
 */
export function scanBatches(buf: Uint8Array): { batches: BatchInfo[]; validBytes: number } {
  const view = viewOf(buf);
  const batches: BatchInfo[] = [];
  let pos = 0;
  // Bounded: every iteration advances pos by at least BATCH_HEADER_BYTES.
  while (buf.length - pos >= BATCH_HEADER_BYTES) {
    const batchLength = view.getInt32(pos + BATCH_LENGTH_OFFSET);
    if (batchLength < MIN_BATCH_LENGTH || view.getInt8(pos + MAGIC_OFFSET) !== MAGIC_V2) break;
    if (batchLength + LOG_OVERHEAD > buf.length - pos) break;
    const info = readInfo(view, pos);
    batches.push(info);
    pos += info.size;
  }
  return { batches, validBytes: pos };
}

// ---------------------------------------------------------------------------
// Varints (Kafka's zigzag varint / varlong, as in ByteUtils)

/** Read position shared by the varint readers; one per walk, never shared. */
export interface ByteCursor {
  pos: number;
}

/** Malformed record bytes met by the varint readers or the record walk. */
export class RecordFormatError extends Error {
  override name = "RecordFormatError";
}

/**
 * Reads a zigzag varint (at most 5 bytes) at `cursor.pos`, not reading at or
 * past `end`, and advances the cursor. Mirrors Kafka's ByteUtils.readVarint:
 * a fifth byte contributes only its low four bits.
 */
export function readVarint(buf: Uint8Array, cursor: ByteCursor, end: number): number {
  let pos = cursor.pos;
  let value = 0;
  for (let shift = 0;; shift += 7) {
    if (pos >= end) throw new RecordFormatError(`Varint at byte ${cursor.pos} is truncated`);
    const b = buf[pos++];
    if (shift === 28) {
      if (b & 0x80) throw new RecordFormatError(`Varint at byte ${cursor.pos} is over 5 bytes`);
      value |= b << 28;
      break;
    }
    value |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) break;
  }
  cursor.pos = pos;
  return (value >>> 1) ^ -(value & 1);
}

/**
 * Reads a zigzag varlong (at most 10 bytes) as a number and advances the
 * cursor. Values beyond ±2^53 lose precision; timestamps and their deltas
 * never get there.
 */
export function readVarlong(buf: Uint8Array, cursor: ByteCursor, end: number): number {
  let pos = cursor.pos;
  let value = 0;
  let scale = 1;
  for (let i = 0;; i++) {
    if (i === 10) throw new RecordFormatError(`Varlong at byte ${cursor.pos} is over 10 bytes`);
    if (pos >= end) throw new RecordFormatError(`Varlong at byte ${cursor.pos} is truncated`);
    const b = buf[pos++];
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) break;
    scale *= 128;
  }
  cursor.pos = pos;
  return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
}

/** Skips a varint-length-prefixed byte field (-1 = null allowed when `nullable`). */
function skipBytesField(
  buf: Uint8Array,
  cursor: ByteCursor,
  end: number,
  what: string,
  nullable: boolean,
): void {
  const at = cursor.pos;
  const length = readVarint(buf, cursor, end);
  if (length < (nullable ? -1 : 0)) {
    throw new RecordFormatError(`${what} at byte ${at} has invalid length ${length}`);
  }
  if (length > 0) {
    if (length > end - cursor.pos) {
      throw new RecordFormatError(
        `${what} at byte ${at} declares ${length} bytes but only ${end - cursor.pos} remain`,
      );
    }
    cursor.pos += length;
  }
}

/**
 * Walks the `count` uncompressed records in `buf[start, end)` the way Kafka's
 * DefaultRecord.readFrom does, checking each record's framing, that its
 * offsetDelta equals its index (the broker never rewrites records, so the
 * deltas must already be 0..count-1), and that the last record ends exactly
 * at `end`. Throws RecordFormatError with the first problem found.
 */
export function walkRecords(buf: Uint8Array, start: number, end: number, count: number): void {
  const cursor: ByteCursor = { pos: start };
  // Bounded by count, which the caller checked against the batch size.
  for (let i = 0; i < count; i++) {
    const recordAt = cursor.pos;
    const bodyLength = readVarint(buf, cursor, end);
    if (bodyLength < 0 || bodyLength > end - cursor.pos) {
      throw new RecordFormatError(
        `Record ${i} at byte ${recordAt} declares ${bodyLength} bytes but ${
          end - cursor.pos
        } remain in the batch`,
      );
    }
    const bodyStart = cursor.pos;
    const bodyEnd = bodyStart + bodyLength;
    if (bodyLength < 1) throw new RecordFormatError(`Record ${i} at byte ${recordAt} is empty`);
    cursor.pos++; // attributes: unused in v2
    readVarlong(buf, cursor, bodyEnd); // timestampDelta
    const deltaAt = cursor.pos;
    const offsetDelta = readVarint(buf, cursor, bodyEnd);
    if (offsetDelta !== i) {
      throw new RecordFormatError(
        `Record ${i} at byte ${deltaAt} has offsetDelta ${offsetDelta}; expected ${i}`,
      );
    }
    skipBytesField(buf, cursor, bodyEnd, `Key of record ${i}`, true);
    skipBytesField(buf, cursor, bodyEnd, `Value of record ${i}`, true);
    const headersAt = cursor.pos;
    const headerCount = readVarint(buf, cursor, bodyEnd);
    // Each header needs at least two bytes (two length varints).
    if (headerCount < 0 || headerCount * 2 > bodyEnd - cursor.pos) {
      throw new RecordFormatError(
        `Record ${i} at byte ${headersAt} has invalid header count ${headerCount}`,
      );
    }
    for (let h = 0; h < headerCount; h++) {
      skipBytesField(buf, cursor, bodyEnd, `Header ${h} key of record ${i}`, false);
      skipBytesField(buf, cursor, bodyEnd, `Header ${h} value of record ${i}`, true);
    }
    if (cursor.pos !== bodyEnd) {
      throw new RecordFormatError(
        `Record ${i} at byte ${recordAt} declares ${bodyLength} body bytes ` +
          `but its fields use ${cursor.pos - bodyStart}`,
      );
    }
  }
  if (cursor.pos !== end) {
    throw new RecordFormatError(
      `Batch declares ${count} records but ${end - cursor.pos} bytes remain after the last one`,
    );
  }
}

// ---------------------------------------------------------------------------
// Validation (produce path)

/** Limits for {@link validateBatches}. */
export interface BatchLimits {
  /** Largest batch accepted, in bytes including the 12-byte log overhead (max.message.bytes). */
  maxBatchBytes: number;
  /**
   * Most batches accepted per partition. Kafka accepts exactly one batch per
   * partition from Produce v3+ (ProduceRequest.validateRecords and
   * LogValidator); pass 1 to match it. Default: no limit beyond the bytes.
   */
  maxBatches?: number;
  /** False for Produce v3-v6, which may not carry zstd batches (KIP-110). Default true. */
  allowZstd?: boolean;
}

export type BatchValidation =
  | { ok: true; batches: BatchInfo[]; totalRecords: number }
  | {
    ok: false;
    errorCode: number;
    message: string;
    /**
     * Set when the first entry is a legacy magic 0/1 message rather than a
     * batch. Produce v0-v2 callers then use convertLegacyMessageSet; for v3+
     * the errorCode (INVALID_RECORD, as Kafka answers) stands.
     */
    legacyMagic?: 0 | 1;
  };

function fail(errorCode: number, message: string): BatchValidation {
  return { ok: false, errorCode, message };
}

/**
 * Validates the concatenated record batches a producer sent for one
 * partition, the way Kafka's UnifiedLog.analyzeAndValidateRecords and
 * LogValidator do for a client append, without decompressing anything.
 *
 * Checks, in Kafka's order, answering with Kafka's error code:
 * - no bytes at all: INVALID_RECORD (Kafka: "must have at least one record batch");
 * - bytes that do not end on a batch boundary (partial header or batch):
 *   CORRUPT_MESSAGE. Kafka silently trims a partial trailing batch; we
 *   reject it, since a well-formed producer never sends one;
 * - magic outside 0..2: CORRUPT_MESSAGE; magic 0/1 first: `legacyMagic`;
 *   later batch with another magic: INVALID_RECORD;
 * - batchLength below the 49-byte header: CORRUPT_MESSAGE;
 * - baseOffset not 0: INVALID_RECORD;
 * - size over `maxBatchBytes`: MESSAGE_TOO_LARGE;
 * - CRC32C mismatch: CORRUPT_MESSAGE;
 * - codec id 5-7, or zstd when not allowed: UNSUPPORTED_COMPRESSION_TYPE;
 * - LogAppendTime set by the producer: INVALID_TIMESTAMP (Kafka rejects or
 *   rewrites it depending on the topic; we never rewrite on the way in);
 * - lastOffsetDelta < 0, recordsCount <= 0, recordsCount != lastOffsetDelta + 1,
 *   a control batch, or a producerId without a baseSequence: INVALID_RECORD;
 * - uncompressed batches only: every record's framing, offsetDelta == index,
 *   and the records ending exactly at the batch end: INVALID_RECORD (Kafka's
 *   DefaultRecord.readFrom raises InvalidRecordException for all of these).
 */
export function validateBatches(records: Uint8Array, limits: BatchLimits): BatchValidation {
  if (records.length === 0) {
    return fail(
      INVALID_RECORD,
      "Produce request has no record batch for the partition; send at least one batch",
    );
  }
  const maxBatches = limits.maxBatches ?? Number.POSITIVE_INFINITY;
  const allowZstd = limits.allowZstd ?? true;
  const view = viewOf(records);
  const batches: BatchInfo[] = [];
  let totalRecords = 0;
  let pos = 0;
  // Bounded: every iteration advances pos by at least BATCH_HEADER_BYTES.
  while (pos < records.length) {
    const remaining = records.length - pos;
    if (remaining < HEADER_BYTES_UP_TO_MAGIC) {
      return fail(
        CORRUPT_MESSAGE,
        `Record data ends with ${remaining} bytes at byte ${pos}, too few for a batch header; ` +
          "the producer sent a truncated batch",
      );
    }
    const magic = view.getInt8(pos + MAGIC_OFFSET);
    if (magic !== MAGIC_V2) {
      if (magic < 0 || magic > MAGIC_V2) {
        return fail(CORRUPT_MESSAGE, `Record batch at byte ${pos} has invalid magic ${magic}`);
      }
      if (pos === 0) {
        return {
          ok: false,
          errorCode: INVALID_RECORD,
          message: `Record data holds legacy magic ${magic} messages; ` +
            "Produce v3 and later only accept magic 2 record batches",
          legacyMagic: magic as 0 | 1,
        };
      }
      return fail(
        INVALID_RECORD,
        `Record batch at byte ${pos} has magic ${magic}, unlike the first batch's magic 2`,
      );
    }
    if (batches.length >= maxBatches) {
      return fail(
        INVALID_RECORD,
        `Produce request carries more than ${maxBatches} record batch(es) for one partition; ` +
          "send one batch per partition",
      );
    }
    if (remaining < BATCH_HEADER_BYTES) {
      return fail(
        CORRUPT_MESSAGE,
        `Record batch at byte ${pos} is truncated: ${remaining} bytes left, ` +
          `the header alone needs ${BATCH_HEADER_BYTES}`,
      );
    }
    const batchLength = view.getInt32(pos + BATCH_LENGTH_OFFSET);
    if (batchLength < MIN_BATCH_LENGTH) {
      return fail(
        CORRUPT_MESSAGE,
        `Record batch at byte ${pos} has batchLength ${batchLength}, ` +
          `below the ${MIN_BATCH_LENGTH}-byte minimum`,
      );
    }
    const size = batchLength + LOG_OVERHEAD;
    if (size > remaining) {
      return fail(
        CORRUPT_MESSAGE,
        `Record batch at byte ${pos} declares ${size} bytes but only ${remaining} remain; ` +
          "the producer sent a truncated batch",
      );
    }
    const info = readInfo(view, pos);
    const problem = checkBatch(records, view, info, limits.maxBatchBytes, allowZstd);
    if (problem !== null) return problem;
    batches.push(info);
    totalRecords += info.recordsCount;
    pos += size;
  }
  return { ok: true, batches, totalRecords };
}

function checkBatch(
  records: Uint8Array,
  view: DataView,
  info: BatchInfo,
  maxBatchBytes: number,
  allowZstd: boolean,
): BatchValidation | null {
  const at = `Record batch at byte ${info.position}`;
  if (info.baseOffset !== 0) {
    return fail(INVALID_RECORD, `${at} has baseOffset ${info.baseOffset}; producers must send 0`);
  }
  if (info.size > maxBatchBytes) {
    return fail(
      MESSAGE_TOO_LARGE,
      `${at} is ${info.size} bytes, over the ${maxBatchBytes}-byte limit (max.message.bytes); ` +
        "send smaller batches or raise the topic's limit",
    );
  }
  const storedCrc = view.getUint32(info.position + CRC_OFFSET);
  const actualCrc = computeBatchCrc(records, info.position, info.size);
  if (storedCrc !== actualCrc) {
    return fail(
      CORRUPT_MESSAGE,
      `${at} has CRC32C 0x${hex32(actualCrc)} but its header says 0x${hex32(storedCrc)}; ` +
        "the data was corrupted in transit, retry the produce",
    );
  }
  if (info.compression > COMPRESSION.zstd) {
    return fail(UNSUPPORTED_COMPRESSION_TYPE, `${at} uses unknown codec id ${info.compression}`);
  }
  if (info.compression === COMPRESSION.zstd && !allowZstd) {
    return fail(
      UNSUPPORTED_COMPRESSION_TYPE,
      `${at} uses "zstd", which needs Produce v7 or later; upgrade the client or change codec`,
    );
  }
  if (info.timestampType === TIMESTAMP_TYPE.logAppendTime) {
    return fail(
      INVALID_TIMESTAMP,
      `${at} has timestamp type LogAppendTime; producers must send CreateTime`,
    );
  }
  const count = info.recordsCount;
  if (info.lastOffsetDelta < 0 || count <= 0 || count !== info.lastOffsetDelta + 1) {
    return fail(
      INVALID_RECORD,
      `${at} has recordsCount ${count} and lastOffsetDelta ${info.lastOffsetDelta}; ` +
        "a producer batch needs recordsCount >= 1 and lastOffsetDelta = recordsCount - 1",
    );
  }
  if (info.isControl) {
    return fail(INVALID_RECORD, `${at} is a control batch; clients may not write control records`);
  }
  if (info.producerId >= 0 && info.baseSequence < 0) {
    return fail(
      INVALID_RECORD,
      `${at} has producerId ${info.producerId} but baseSequence ${info.baseSequence}`,
    );
  }
  if (info.compression === COMPRESSION.none) {
    const recordsStart = info.position + BATCH_HEADER_BYTES;
    const recordsEnd = info.position + info.size;
    if (count > (recordsEnd - recordsStart) / MIN_RECORD_BYTES) {
      return fail(
        INVALID_RECORD,
        `${at} declares ${count} records but has room for at most ${
          Math.floor((recordsEnd - recordsStart) / MIN_RECORD_BYTES)
        }`,
      );
    }
    try {
      walkRecords(records, recordsStart, recordsEnd, count);
    } catch (e) {
      if (!(e instanceof RecordFormatError)) throw e;
      return fail(INVALID_RECORD, `${at} has a malformed record: ${e.message}`);
    }
  }
  return null;
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, "0");
}

// ---------------------------------------------------------------------------
// In-place rewrites (after validation)

/**
 * Gives the batches consecutive offsets starting at `firstOffset` by
 * rewriting each 8-byte baseOffset in place. The CRC does not cover that
 * field, so no CRC is recomputed. Also updates `baseOffset` in the given
 * BatchInfo objects. Returns the offset after the last batch.
 */
export function assignOffsets(
  records: Uint8Array,
  batches: BatchInfo[],
  firstOffset: number,
): number {
  if (!Number.isSafeInteger(firstOffset) || firstOffset < 0) {
    throw new RangeError(`First offset must be a non-negative safe integer, got ${firstOffset}`);
  }
  const view = viewOf(records);
  let next = firstOffset;
  for (const batch of batches) {
    setInt64(view, batch.position + BASE_OFFSET_OFFSET, next);
    batch.baseOffset = next;
    next += batch.lastOffsetDelta + 1;
  }
  return next;
}

/**
 * Writes the leader epoch the batches are appended in (the broker's, as Kafka's leader does).
 * The field lies before the CRC'd part of the batch, so no CRC changes.
 */
export function setPartitionLeaderEpoch(
  records: Uint8Array,
  batches: BatchInfo[],
  epoch: number,
): void {
  const view = viewOf(records);
  for (const batch of batches) {
    view.setInt32(batch.position + PARTITION_LEADER_EPOCH_OFFSET, epoch);
    batch.partitionLeaderEpoch = epoch;
  }
}

/**
 * Marks a batch as LogAppendTime and sets its maxTimestamp to `nowMs`, then
 * rewrites its CRC, as Kafka's LogValidator does through
 * DefaultRecordBatch.setMaxTimestamp. baseTimestamp and the records stay
 * untouched: readers take every record's timestamp from maxTimestamp when
 * the type is LogAppendTime. Updates the BatchInfo to match.
 */
export function setLogAppendTime(records: Uint8Array, batch: BatchInfo, nowMs: number): void {
  const view = viewOf(records);
  const attributes = (view.getInt16(batch.position + ATTRIBUTES_OFFSET) & 0x7f) |
    TIMESTAMP_TYPE_FLAG;
  view.setInt16(batch.position + ATTRIBUTES_OFFSET, attributes);
  setInt64(view, batch.position + MAX_TIMESTAMP_OFFSET, nowMs);
  view.setUint32(batch.position + CRC_OFFSET, computeBatchCrc(records, batch.position, batch.size));
  batch.attributes = attributes;
  batch.timestampType = TIMESTAMP_TYPE.logAppendTime;
  batch.maxTimestamp = nowMs;
}
