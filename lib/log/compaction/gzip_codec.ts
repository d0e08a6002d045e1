/**
 * gzip for Kafka batches (codec id 1), through `node:zlib`, which Deno
 * implements natively, so `deno compile` embeds it. Java writes one gzip
 * member (GZIPOutputStream); gunzip also accepts concatenated members.
 */

import { gunzipSync, gzipSync } from "node:zlib";
import { codecFailure, type RecordCodec } from "./record_codec.ts";

export const GZIP_CODEC: RecordCodec = {
  name: "gzip",
  decompress(payload: Uint8Array, maxBytes: number): Uint8Array {
    try {
      return new Uint8Array(gunzipSync(payload, { maxOutputLength: maxBytes }));
    } catch (e) {
      // zlib's message says which: bad data, or past maxOutputLength.
      throw codecFailure("gzip", "inflate", e);
    }
  },
  compress(data: Uint8Array): Uint8Array {
    return new Uint8Array(gzipSync(data));
  },
};
