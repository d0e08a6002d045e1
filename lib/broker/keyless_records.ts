/**
 * Produce to a compacted topic: a record without a key cannot be compacted,
 * so Kafka refuses the whole batch with INVALID_RECORD, names each keyless
 * record in the v8+ `recordErrors` (KIP-467) and says why in `errorMessage`
 * (LogValidator.validateKey and processRecordErrors). This does the same.
 *
 * Which batches are checked: all of them. Uncompressed ones are walked in
 * place (validateBatches already checked their framing). A compressed batch
 * is inflated with the compactor's codec adapters (gzip, snappy, lz4, zstd;
 * lib/log/compaction/record_codecs.ts), as Kafka decompresses to validate:
 * this is the one place the produce path decompresses, and only for topics
 * whose cleanup.policy contains "compact" (DESIGN.md: the broker never
 * decompresses otherwise). A batch the adapters cannot inflate is stored as
 * it came, like every compressed batch (there is no codec check on produce).
 */
import type { BatchIndexAndErrorMessage } from "../protocol/generated/produce_response.ts";
import {
  BATCH_HEADER_BYTES,
  type BatchInfo,
  COMPRESSION,
  RecordFormatError,
} from "../protocol/record_batch.ts";
import { keylessRecordIndexes } from "../protocol/record_keys.ts";
import { decompressRecords } from "../log/compaction/record_codecs.ts";
import { cleanupPolicy } from "./topic_config.ts";

/** Inflates a compressed records section (codec id 1-4) to at most `maxBytes`, or throws. */
export type RecordsInflater = (
  compression: number,
  payload: Uint8Array,
  maxBytes: number,
) => Uint8Array;

/** Largest records section a compressed batch may inflate to for the key check. */
export const MAX_INFLATED_RECORDS_BYTES = 64 * 1024 * 1024;
/** Kafka lists at most this many record errors in the top-level message. */
const ERRORS_IN_MESSAGE = 3;

export interface KeylessRefusal {
  errorMessage: string;
  recordErrors: BatchIndexAndErrorMessage[];
}

/**
 * The refusal for `records` (already validated into `batches`) produced to
 * partition `partition` of a topic with these configs, or null when the
 * topic is not compacted or every checked record has a key.
 */
export function keylessRecordsRefusal(
  topic: string,
  configs: Record<string, string>,
  partition: number,
  records: Uint8Array,
  batches: readonly BatchInfo[],
  inflate: RecordsInflater = decompressRecords,
): KeylessRefusal | null {
  if (!cleanupPolicy(configs).compact) return null;
  const why = `Compacted topic cannot accept message without key in topic partition ` +
    `${topic}-${partition}.`;
  const recordErrors: BatchIndexAndErrorMessage[] = [];
  // batchIndex counts records across the partition's batches (Produce v3+ sends one batch).
  let firstIndex = 0;
  for (const batch of batches) {
    for (const i of keylessIn(records, batch, inflate)) {
      recordErrors.push({ batchIndex: firstIndex + i, batchIndexErrorMessage: why });
    }
    firstIndex += batch.recordsCount;
  }
  if (recordErrors.length === 0) return null;
  const shown = recordErrors.slice(0, ERRORS_IN_MESSAGE).map((e) =>
    `RecordError(batchIndex=${e.batchIndex}, message='${why}')`
  );
  return {
    errorMessage: `One or more records have been rejected due to ${recordErrors.length} record ` +
      `errors in total, and only showing the first three errors at most: [${shown.join(", ")}]`,
    recordErrors,
  };
}

function keylessIn(
  records: Uint8Array,
  batch: BatchInfo,
  inflate: RecordsInflater,
): number[] {
  const start = batch.position + BATCH_HEADER_BYTES;
  const end = batch.position + batch.size;
  if (batch.compression === COMPRESSION.none) {
    return keylessRecordIndexes(records, start, end, batch.recordsCount);
  }
  let section: Uint8Array;
  try {
    section = inflate(batch.compression, records.subarray(start, end), MAX_INFLATED_RECORDS_BYTES);
  } catch {
    // Not decodable: stored as it came, like every compressed batch (no codec check on produce).
    return [];
  }
  try {
    return keylessRecordIndexes(section, 0, section.length, batch.recordsCount);
  } catch (e) {
    if (e instanceof RecordFormatError) return [];
    throw e;
  }
}
