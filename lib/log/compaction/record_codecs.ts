/**
 * Codec table of the compactor: Kafka codec id -> adapter. The only place
 * that knows which adapter serves which attribute value.
 */

import { COMPRESSION, COMPRESSION_NAMES } from "../../protocol/record_batch.ts";
import { GZIP_CODEC } from "./gzip_codec.ts";
import { LZ4_CODEC } from "./lz4_codec.ts";
import { CodecError, type RecordCodec } from "./record_codec.ts";
import { SNAPPY_CODEC } from "./snappy_codec.ts";
import { ZSTD_CODEC } from "./zstd_codec.ts";

const CODECS: Readonly<Record<number, RecordCodec>> = {
  [COMPRESSION.gzip]: GZIP_CODEC,
  [COMPRESSION.snappy]: SNAPPY_CODEC,
  [COMPRESSION.lz4]: LZ4_CODEC,
  [COMPRESSION.zstd]: ZSTD_CODEC,
};

/** The adapter for a compressed codec id (1-4). Throws CodecError for any other id. */
export function codecFor(compression: number): RecordCodec {
  const codec = CODECS[compression];
  if (codec === undefined) {
    const name = COMPRESSION_NAMES[compression] ?? `codec id ${compression}`;
    throw new CodecError(`No compression adapter for "${name}"`);
  }
  return codec;
}

/** Inflates a batch's records section; `none` (0) returns the bytes as they are. */
export function decompressRecords(
  compression: number,
  payload: Uint8Array,
  maxBytes: number,
): Uint8Array {
  if (compression === COMPRESSION.none) return payload;
  return codecFor(compression).decompress(payload, maxBytes);
}

/**
 * Deflates a records section with `compression`; `like` is the payload being
 * replaced (see RecordCodec.compress). `none` returns the bytes as they are.
 */
export function compressRecords(
  compression: number,
  data: Uint8Array,
  like?: Uint8Array,
): Uint8Array {
  if (compression === COMPRESSION.none) return data;
  return codecFor(compression).compress(data, like);
}
