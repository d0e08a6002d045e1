/**
 * Test helpers for the compactor: a seeded PRNG, batch builders for every
 * codec and flag combination, and a record-level reader of segment bodies.
 */

import {
  ATTRIBUTES_OFFSET,
  BATCH_HEADER_BYTES,
  BATCH_LENGTH_OFFSET,
  COMPRESSION_CODEC_MASK,
  computeBatchCrc,
  CONTROL_FLAG,
  CRC_OFFSET,
  LOG_OVERHEAD,
  readBatchInfo,
  scanBatches,
  setLogAppendTime,
} from "../../../lib/protocol/record_batch.ts";
import { encodeRecordBatch, type ProducerRecord } from "../../../lib/protocol/records.ts";
import { readBatchRecords } from "../../../lib/log/compaction/batch_records.ts";
import { compressRecords } from "../../../lib/log/compaction/record_codecs.ts";

/** Mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

export function text(data: Uint8Array | null): string | null {
  return data === null ? null : decoder.decode(data);
}

export interface BatchSpec {
  baseOffset: number;
  /** Codec id 0-4. */
  compression?: number;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  partitionLeaderEpoch?: number;
  transactional?: boolean;
  control?: boolean;
  /** Stamp the batch LogAppendTime with this time. */
  logAppendTimeMs?: number;
}

/** A v2 batch with `records`, as a producer would send it and the broker store it. */
export function makeBatch(records: ProducerRecord[], spec: BatchSpec): Uint8Array {
  let batch = encodeRecordBatch(records, {
    baseOffset: spec.baseOffset,
    producerId: spec.producerId,
    producerEpoch: spec.producerEpoch,
    baseSequence: spec.baseSequence,
    transactional: spec.transactional,
    partitionLeaderEpoch: spec.partitionLeaderEpoch ?? 3,
  });
  const compression = spec.compression ?? 0;
  if (compression !== 0 || spec.control) {
    const section = batch.subarray(BATCH_HEADER_BYTES);
    const payload = compressRecords(compression, section);
    const out = new Uint8Array(BATCH_HEADER_BYTES + payload.length);
    out.set(batch.subarray(0, BATCH_HEADER_BYTES));
    out.set(payload, BATCH_HEADER_BYTES);
    const view = new DataView(out.buffer);
    view.setInt32(BATCH_LENGTH_OFFSET, out.length - LOG_OVERHEAD);
    let attributes = (view.getInt16(ATTRIBUTES_OFFSET) & ~COMPRESSION_CODEC_MASK) | compression;
    if (spec.control) attributes |= CONTROL_FLAG;
    view.setInt16(ATTRIBUTES_OFFSET, attributes);
    view.setUint32(CRC_OFFSET, computeBatchCrc(out, 0, out.length));
    batch = out;
  }
  if (spec.logAppendTimeMs !== undefined) {
    setLogAppendTime(batch, readBatchInfo(batch, 0), spec.logAppendTimeMs);
  }
  return batch;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const part of parts) {
    out.set(part, pos);
    pos += part.length;
  }
  return out;
}

export interface ReadRecord {
  offset: number;
  key: string | null;
  value: string | null;
  timestamp: number;
  /** The record's bytes as stored (length varint to last header byte). */
  raw: Uint8Array;
  batchBaseOffset: number;
}

/** Every data record in a segment body, in order (control batches skipped). */
export function readRecords(body: Uint8Array): ReadRecord[] {
  const out: ReadRecord[] = [];
  for (const batch of scanBatches(body).batches) {
    if (batch.isControl) continue;
    const opened = readBatchRecords(body, batch);
    for (const r of opened.records) {
      out.push({
        offset: r.offset,
        key: text(r.key),
        value: text(r.value),
        timestamp: r.timestamp,
        raw: opened.section.subarray(r.start, r.end),
        batchBaseOffset: batch.baseOffset,
      });
    }
  }
  return out;
}
