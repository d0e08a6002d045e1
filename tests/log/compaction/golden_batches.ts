/**
 * Compressed v2 record batches captured from real clients and Apache Kafka
 * (tests/fixtures/golden/<client>/Produce_* and Fetch_* frames), found by
 * scanning each frame for a batch header whose CRC32C checks out: the frame
 * codecs are not needed to locate them, and a false positive would need a
 * 32-bit CRC collision.
 */

import {
  BATCH_HEADER_BYTES,
  type BatchInfo,
  computeBatchCrc,
  LOG_OVERHEAD,
  MAGIC_V2,
  MIN_BATCH_LENGTH,
  readBatchInfo,
  readStoredCrc,
} from "../../../lib/protocol/record_batch.ts";

const GOLDEN_DIR = new URL("../../fixtures/golden/", import.meta.url);

export interface GoldenBatch {
  /** "<client dir>/<file>" */
  source: string;
  /** The frame the batch sits in; `batch.position` is relative to it. */
  frame: Uint8Array;
  batch: BatchInfo;
}

/** Every CRC-valid v2 batch in the captured Produce and Fetch frames. */
export function goldenBatches(): GoldenBatch[] {
  const found: GoldenBatch[] = [];
  const clients = [...Deno.readDirSync(GOLDEN_DIR)].filter((d) => d.isDirectory).map((d) => d.name)
    .sort();
  for (const client of clients) {
    const dir = new URL(`${client}/`, GOLDEN_DIR);
    const files = [...Deno.readDirSync(dir)].map((f) => f.name).filter((n) =>
      /^(Produce|Fetch)_/.test(n)
    ).sort();
    for (const file of files) {
      const frame = Deno.readFileSync(new URL(file, dir));
      const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
      for (let pos = 0; pos + BATCH_HEADER_BYTES <= frame.length; pos++) {
        if (frame[pos + 16] !== MAGIC_V2) continue;
        const length = view.getInt32(pos + 8);
        if (length < MIN_BATCH_LENGTH || pos + LOG_OVERHEAD + length > frame.length) continue;
        const batch = readBatchInfo(frame, pos);
        if (readStoredCrc(frame, pos) !== computeBatchCrc(frame, pos, batch.size)) continue;
        found.push({ source: `${client}/${file}`, frame, batch });
        pos += batch.size - 1;
      }
    }
  }
  return found;
}
