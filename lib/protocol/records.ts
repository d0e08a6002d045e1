/**
 * Building and reading whole v2 record batches, records included: the
 * encoder our Kafka client, the CLI and the tests produce with, and the
 * decoder they consume Fetch responses with. Not the broker hot path: the
 * broker never decodes records (see record_batch.ts).
 *
 * Codecs: none and gzip (through node:zlib, pure computation). Decoding a
 * snappy, lz4 or zstd batch throws a RecordsDecodeError naming the codec.
 */

import { gunzipSync, gzipSync } from "node:zlib";
import {
  ATTRIBUTES_OFFSET,
  BASE_OFFSET_OFFSET,
  BASE_SEQUENCE_OFFSET,
  BASE_TIMESTAMP_OFFSET,
  BATCH_HEADER_BYTES,
  BATCH_LENGTH_OFFSET,
  type BatchInfo,
  type ByteCursor,
  COMPRESSION,
  COMPRESSION_NAMES,
  computeBatchCrc,
  CONTROL_FLAG,
  CRC_OFFSET,
  HEADER_BYTES_UP_TO_MAGIC,
  LAST_OFFSET_DELTA_OFFSET,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  MAGIC_V2,
  MAX_TIMESTAMP_OFFSET,
  MIN_BATCH_LENGTH,
  PARTITION_LEADER_EPOCH_OFFSET,
  PRODUCER_EPOCH_OFFSET,
  PRODUCER_ID_OFFSET,
  readBatchInfo,
  readStoredCrc,
  readVarint,
  readVarlong,
  RecordFormatError,
  RECORDS_COUNT_OFFSET,
  TIMESTAMP_TYPE,
  TRANSACTIONAL_FLAG,
} from "./record_batch.ts";

/**
 * Largest records section a compressed batch may inflate to while decoding.
 * Guards the client against a decompression bomb in a Fetch response.
 */
export const MAX_DECOMPRESSED_BATCH_BYTES = 64 * 1024 * 1024;

/** Kafka's "no timestamp" value. */
export const NO_TIMESTAMP = -1;

export interface RecordHeader {
  key: string;
  value: Uint8Array | null;
}

export interface ProducerRecord {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers?: RecordHeader[];
  /** Create time in ms; defaults to the batch's baseTimestamp. */
  timestamp?: number;
}

export interface EncodeBatchOptions {
  /** Written to the header; producers send 0 and the broker assigns offsets. */
  baseOffset?: number;
  /**
   * Defaults to the first record's timestamp, or -1 (no timestamp) when no
   * record has one. Callers that want "now" pass their clock's time: this
   * module reads no clock.
   */
  baseTimestamp?: number;
  compression?: "none" | "gzip";
  /**
   * Any other codec: its attribute id (1-4) and a function that compresses the records
   * section (the broker never needs this; clients pass codecs they carry).
   */
  codec?: { id: number; compress(records: Uint8Array): Uint8Array };
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  transactional?: boolean;
  /** A control batch (transaction markers; brokers write them, never producers). */
  control?: boolean;
  /** Defaults to -1, as producers send. */
  partitionLeaderEpoch?: number;
}

export interface ConsumedRecord {
  offset: number;
  timestamp: number;
  /** 0 create time, 1 log append time. */
  timestampType: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
}

/** Raised by {@link decodeRecordBatches} for bytes it cannot or will not decode. */
export class RecordsDecodeError extends Error {
  override name = "RecordsDecodeError";
}

const TWO_POW_32 = 4294967296;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

// ---------------------------------------------------------------------------
// Encoding

function varintSize(value: number): number {
  let v = ((value << 1) ^ (value >> 31)) >>> 0;
  let n = 1;
  while (v >= 0x80) {
    v >>>= 7;
    n++;
  }
  return n;
}

function zigzag64(value: number): number {
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

function varlongSize(value: number): number {
  let v = zigzag64(value);
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

class ByteWriter {
  pos = 0;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }
  varint(value: number): void {
    let v = ((value << 1) ^ (value >> 31)) >>> 0;
    while (v >= 0x80) {
      this.bytes[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.bytes[this.pos++] = v;
  }
  varlong(value: number): void {
    let v = zigzag64(value);
    while (v >= 0x80) {
      this.bytes[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.bytes[this.pos++] = v;
  }
  raw(data: Uint8Array): void {
    this.bytes.set(data, this.pos);
    this.pos += data.length;
  }
}

function setInt64(view: DataView, pos: number, value: number): void {
  const hi = Math.floor(value / TWO_POW_32);
  view.setInt32(pos, hi);
  view.setUint32(pos + 4, value - hi * TWO_POW_32);
}

interface PreparedRecord {
  record: ProducerRecord;
  timestampDelta: number;
  headerKeys: Uint8Array[];
  bodySize: number;
}

function prepare(record: ProducerRecord, index: number, timestampDelta: number): PreparedRecord {
  const headers = record.headers ?? [];
  const headerKeys = headers.map((h) => textEncoder.encode(h.key));
  let size = 1 + varlongSize(timestampDelta) + varintSize(index);
  size += record.key === null ? varintSize(-1) : varintSize(record.key.length) + record.key.length;
  size += record.value === null
    ? varintSize(-1)
    : varintSize(record.value.length) + record.value.length;
  size += varintSize(headers.length);
  for (let h = 0; h < headers.length; h++) {
    size += varintSize(headerKeys[h].length) + headerKeys[h].length;
    const value = headers[h].value;
    size += value === null ? varintSize(-1) : varintSize(value.length) + value.length;
  }
  return { record, timestampDelta, headerKeys, bodySize: size };
}

function encodeRecordsSection(prepared: PreparedRecord[]): Uint8Array {
  let total = 0;
  for (const p of prepared) total += varintSize(p.bodySize) + p.bodySize;
  const w = new ByteWriter(total);
  for (let i = 0; i < prepared.length; i++) {
    const { record, timestampDelta, headerKeys, bodySize } = prepared[i];
    w.varint(bodySize);
    w.bytes[w.pos++] = 0; // record attributes: unused in v2
    w.varlong(timestampDelta);
    w.varint(i);
    for (const field of [record.key, record.value]) {
      if (field === null) w.varint(-1);
      else {
        w.varint(field.length);
        w.raw(field);
      }
    }
    const headers = record.headers ?? [];
    w.varint(headers.length);
    for (let h = 0; h < headers.length; h++) {
      w.varint(headerKeys[h].length);
      w.raw(headerKeys[h]);
      const value = headers[h].value;
      if (value === null) w.varint(-1);
      else {
        w.varint(value.length);
        w.raw(value);
      }
    }
  }
  return w.bytes;
}

/**
 * Encodes `records` as one magic 2 record batch, byte-for-byte as Kafka's
 * MemoryRecordsBuilder does for the same inputs (uncompressed), CRC32C
 * included. Throws RangeError for no records or a timestamp that is not a
 * safe integer.
 */
export function encodeRecordBatch(
  records: ProducerRecord[],
  opts: EncodeBatchOptions = {},
): Uint8Array {
  if (records.length === 0) {
    throw new RangeError("Cannot encode an empty record batch: pass at least one record");
  }
  const baseTimestamp = opts.baseTimestamp ??
    records.find((r) => r.timestamp !== undefined)?.timestamp ?? NO_TIMESTAMP;
  let maxTimestamp = Number.NEGATIVE_INFINITY;
  const prepared: PreparedRecord[] = [];
  for (let i = 0; i < records.length; i++) {
    const timestamp = records[i].timestamp ?? baseTimestamp;
    if (!Number.isSafeInteger(timestamp)) {
      throw new RangeError(`Record ${i} has timestamp ${timestamp}; use integer milliseconds`);
    }
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
    prepared.push(prepare(records[i], i, timestamp - baseTimestamp));
  }
  const compression = opts.compression ?? "none";
  let body = encodeRecordsSection(prepared);
  let attributes = 0;
  if (opts.codec && opts.codec.id !== COMPRESSION.none) {
    body = opts.codec.compress(body);
    attributes |= opts.codec.id;
  } else if (compression === "gzip") {
    body = new Uint8Array(gzipSync(body));
    attributes |= COMPRESSION.gzip;
  }
  if (opts.transactional) attributes |= TRANSACTIONAL_FLAG;
  if (opts.control) attributes |= CONTROL_FLAG;

  const size = BATCH_HEADER_BYTES + body.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  setInt64(view, BASE_OFFSET_OFFSET, opts.baseOffset ?? 0);
  view.setInt32(BATCH_LENGTH_OFFSET, size - LOG_OVERHEAD);
  view.setInt32(PARTITION_LEADER_EPOCH_OFFSET, opts.partitionLeaderEpoch ?? -1);
  view.setInt8(MAGIC_OFFSET, MAGIC_V2);
  view.setInt16(ATTRIBUTES_OFFSET, attributes);
  view.setInt32(LAST_OFFSET_DELTA_OFFSET, records.length - 1);
  setInt64(view, BASE_TIMESTAMP_OFFSET, baseTimestamp);
  setInt64(view, MAX_TIMESTAMP_OFFSET, maxTimestamp);
  setInt64(view, PRODUCER_ID_OFFSET, opts.producerId ?? -1);
  view.setInt16(PRODUCER_EPOCH_OFFSET, opts.producerEpoch ?? -1);
  view.setInt32(BASE_SEQUENCE_OFFSET, opts.baseSequence ?? -1);
  view.setInt32(RECORDS_COUNT_OFFSET, records.length);
  out.set(body, BATCH_HEADER_BYTES);
  view.setUint32(CRC_OFFSET, computeBatchCrc(out, 0, size));
  return out;
}

// ---------------------------------------------------------------------------
// Decoding

function readBytesField(buf: Uint8Array, cursor: ByteCursor, end: number): Uint8Array | null {
  const at = cursor.pos;
  const length = readVarint(buf, cursor, end);
  if (length === -1) return null;
  if (length < 0 || length > end - cursor.pos) {
    throw new RecordFormatError(`Field at byte ${at} has invalid length ${length}`);
  }
  const out = buf.slice(cursor.pos, cursor.pos + length);
  cursor.pos += length;
  return out;
}

function decodeRecords(
  buf: Uint8Array,
  start: number,
  end: number,
  batch: BatchInfo,
  out: ConsumedRecord[],
): void {
  const cursor: ByteCursor = { pos: start };
  const logAppendTime = batch.timestampType === TIMESTAMP_TYPE.logAppendTime;
  // Bounded by recordsCount; each record consumes at least one byte or throws.
  for (let i = 0; i < batch.recordsCount; i++) {
    const bodyLength = readVarint(buf, cursor, end);
    const bodyStart = cursor.pos;
    if (bodyLength < 1 || bodyLength > end - bodyStart) {
      throw new RecordFormatError(`Record ${i} has invalid length ${bodyLength}`);
    }
    const bodyEnd = bodyStart + bodyLength;
    cursor.pos++; // attributes
    const timestampDelta = readVarlong(buf, cursor, bodyEnd);
    const offsetDelta = readVarint(buf, cursor, bodyEnd);
    const key = readBytesField(buf, cursor, bodyEnd);
    const value = readBytesField(buf, cursor, bodyEnd);
    const headerCount = readVarint(buf, cursor, bodyEnd);
    if (headerCount < 0 || headerCount * 2 > bodyEnd - cursor.pos) {
      throw new RecordFormatError(`Record ${i} has invalid header count ${headerCount}`);
    }
    const headers: RecordHeader[] = [];
    for (let h = 0; h < headerCount; h++) {
      const headerKey = readBytesField(buf, cursor, bodyEnd);
      if (headerKey === null) throw new RecordFormatError(`Record ${i} has a null header key`);
      headers.push({
        key: textDecoder.decode(headerKey),
        value: readBytesField(buf, cursor, bodyEnd),
      });
    }
    if (cursor.pos !== bodyEnd) {
      throw new RecordFormatError(`Record ${i} does not end where its length says`);
    }
    out.push({
      offset: batch.baseOffset + offsetDelta,
      timestamp: logAppendTime ? batch.maxTimestamp : batch.baseTimestamp + timestampDelta,
      timestampType: batch.timestampType,
      key,
      value,
      headers,
    });
  }
}

function inflate(batch: BatchInfo, data: Uint8Array): Uint8Array {
  if (batch.compression === COMPRESSION.gzip) {
    try {
      return new Uint8Array(gunzipSync(data, { maxOutputLength: MAX_DECOMPRESSED_BATCH_BYTES }));
    } catch (e) {
      throw new RecordsDecodeError(
        `Cannot gunzip record batch at offset ${batch.baseOffset}: ${(e as Error).message}`,
      );
    }
  }
  const name = COMPRESSION_NAMES[batch.compression] ?? `codec id ${batch.compression}`;
  throw new RecordsDecodeError(
    `Record batch at offset ${batch.baseOffset} uses "${name}" compression, which this client ` +
      'cannot decode; only "none" and "gzip" are supported',
  );
}

/**
 * Decodes concatenated v2 batches (a Fetch response's records). A partial
 * trailing batch, which Fetch may return when cut at maxBytes, is ignored.
 * Control batches appear in `batches` but not in `records`. Throws
 * RecordsDecodeError for a CRC mismatch, a magic other than 2, an
 * unsupported codec or malformed records.
 */
export function decodeRecordBatches(
  buf: Uint8Array,
  options: {
    /** Inflates codecs other than gzip (clients that carry them); throw to refuse. */
    inflate?: (compression: number, payload: Uint8Array) => Uint8Array;
  } = {},
): { records: ConsumedRecord[]; batches: BatchInfo[] } {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const records: ConsumedRecord[] = [];
  const batches: BatchInfo[] = [];
  let pos = 0;
  // Bounded: every iteration advances pos by at least BATCH_HEADER_BYTES.
  while (buf.length - pos >= HEADER_BYTES_UP_TO_MAGIC) {
    const batchLength = view.getInt32(pos + BATCH_LENGTH_OFFSET);
    const magic = view.getInt8(pos + MAGIC_OFFSET);
    if (magic !== MAGIC_V2) {
      throw new RecordsDecodeError(
        `Record batch at byte ${pos} has magic ${magic}; only magic 2 batches are supported`,
      );
    }
    if (batchLength < MIN_BATCH_LENGTH) {
      throw new RecordsDecodeError(`Record batch at byte ${pos} has batchLength ${batchLength}`);
    }
    if (batchLength + LOG_OVERHEAD > buf.length - pos) break; // partial trailing batch
    const batch = readBatchInfo(buf, pos);
    const stored = readStoredCrc(buf, pos);
    const actual = computeBatchCrc(buf, pos, batch.size);
    if (stored !== actual) {
      throw new RecordsDecodeError(
        `Record batch at offset ${batch.baseOffset} fails its CRC32C check ` +
          `(stored ${stored}, computed ${actual})`,
      );
    }
    batches.push(batch);
    if (!batch.isControl) {
      let data = buf;
      let start = pos + BATCH_HEADER_BYTES;
      let end = pos + batch.size;
      if (batch.compression !== COMPRESSION.none) {
        const payload = buf.subarray(start, end);
        if (options.inflate && batch.compression !== COMPRESSION.gzip) {
          try {
            data = options.inflate(batch.compression, payload);
          } catch (e) {
            throw new RecordsDecodeError(
              `Cannot inflate record batch at offset ${batch.baseOffset}: ${(e as Error).message}`,
            );
          }
        } else {
          data = inflate(batch, payload);
        }
        start = 0;
        end = data.length;
      }
      try {
        decodeRecords(data, start, end, batch, records);
      } catch (e) {
        if (!(e instanceof RecordFormatError)) throw e;
        throw new RecordsDecodeError(
          `Record batch at offset ${batch.baseOffset} is malformed: ${e.message}`,
        );
      }
    }
    pos += batch.size;
  }
  return { records, batches };
}
