/** Keyed record batches for the compaction tests of the partition log, and a default policy. */
import assert from "node:assert/strict";
import type { CompactionPolicy } from "../../../lib/log/compaction/schedule.ts";
import { validateBatches } from "../../../lib/protocol/record_batch.ts";
import { decodeRecordBatches, encodeRecordBatch } from "../../../lib/protocol/records.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const POLICY: CompactionPolicy = {
  minCompactionLagMs: 0,
  maxCompactionLagMs: Number.MAX_SAFE_INTEGER,
  deleteRetentionMs: 86_400_000,
  minCleanableDirtyRatio: 0.5,
};

/** One batch of keyed records; a null value is a tombstone. */
export function keyed(records: [string, string | null][], timestamp = 1_000) {
  const bytes = encodeRecordBatch(records.map(([k, v], i) => ({
    key: encoder.encode(k),
    value: v === null ? null : encoder.encode(v),
    timestamp: timestamp + i,
  })));
  const v = validateBatches(bytes, { maxBatchBytes: 1 << 26 });
  assert.ok(v.ok);
  return { records: bytes, batches: v.batches };
}

/** Decodes read chunks into [offset, key, value]. */
export function decodeKeyed(chunks: Uint8Array[]): [number, string, string | null][] {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return decodeRecordBatches(all).records.map((r) => [
    r.offset,
    decoder.decode(r.key!),
    r.value === null ? null : decoder.decode(r.value),
  ]);
}
