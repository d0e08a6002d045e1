/**
 * zstd for Kafka batches (codec id 4, KIP-110), through `node:zlib`, which
 * Deno implements natively (zstdCompressSync / zstdDecompressSync), so no
 * outside library and nothing for `deno compile` to miss. Level 3 is
 * zstd's and Kafka's default (compression.zstd.level).
 */

import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { codecFailure, type RecordCodec } from "./record_codec.ts";

/** Kafka's default compression.zstd.level. */
const ZSTD_LEVEL = 3;

export const ZSTD_CODEC: RecordCodec = {
  name: "zstd",
  decompress(payload: Uint8Array, maxBytes: number): Uint8Array {
    try {
      return new Uint8Array(zstdDecompressSync(payload, { maxOutputLength: maxBytes }));
    } catch (e) {
      throw codecFailure("zstd", "inflate", e);
    }
  },
  compress(data: Uint8Array): Uint8Array {
    return new Uint8Array(
      zstdCompressSync(data, { params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } }),
    );
  },
};
