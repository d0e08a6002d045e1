/**
 * snappy for Kafka batches (codec id 2), on the pure-JS `snappyjs` (raw
 * snappy blocks), the only file that imports it.
 *
 * Two framings occur in real logs:
 * - xerial (Java kafka-clients, through snappy-java's SnappyOutputStream, and
 *   kafkajs/sarama in "xerial" mode): a 16-byte header — 0x82 "SNAPPY" 0x00,
 *   i32 version, i32 minimum compatible version (both 1) — then chunks of
 *   i32 big-endian compressed length + one raw snappy block, each block
 *   holding at most 32 KiB of input;
 * - raw (librdkafka since 0.11 for magic 2, franz-go): one snappy block.
 * Readers of both (Java's SnappyInputStream, librdkafka's
 * rd_kafka_snappy_java_uncompress) accept either, so we decode both and
 * re-encode in the framing the original payload used.
 */

import snappyjs from "snappyjs";
import { joinBytes } from "../../util/bytes.ts";
import { CodecError, codecFailure, type RecordCodec } from "./record_codec.ts";

interface SnappyJs {
  uncompress(data: Uint8Array, maxLength?: number): Uint8Array;
  compress(data: Uint8Array): Uint8Array;
}
const snappy = snappyjs as unknown as SnappyJs;

/** 0x82 "SNAPPY" 0x00: the start of snappy-java's stream header. */
export const XERIAL_MAGIC: readonly number[] = [0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00];
/** Magic (8) + version (4) + minimum compatible version (4). */
const XERIAL_HEADER_BYTES = 16;
const XERIAL_VERSION = 1;
/** snappy-java's default block size (SnappyOutputStream.DEFAULT_BLOCK_SIZE). */
const XERIAL_BLOCK_BYTES = 32 * 1024;

/** True when `payload` starts with snappy-java's stream header. */
export function isXerialFramed(payload: Uint8Array): boolean {
  if (payload.length < XERIAL_HEADER_BYTES) return false;
  for (let i = 0; i < XERIAL_MAGIC.length; i++) if (payload[i] !== XERIAL_MAGIC[i]) return false;
  return true;
}

function uncompressBlock(block: Uint8Array, maxBytes: number): Uint8Array {
  try {
    return snappy.uncompress(block, maxBytes);
  } catch (e) {
    throw codecFailure("snappy", "inflate", e);
  }
}

function decompressXerial(payload: Uint8Array, maxBytes: number): Uint8Array {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const parts: Uint8Array[] = [];
  let total = 0;
  let pos = XERIAL_HEADER_BYTES;
  // Bounded: each chunk advances pos by at least 4 bytes.
  while (pos < payload.length) {
    if (payload.length - pos < 4) {
      throw new CodecError(`Cannot inflate "snappy" payload: truncated chunk length at ${pos}`);
    }
    const length = view.getInt32(pos);
    pos += 4;
    if (length < 0 || length > payload.length - pos) {
      throw new CodecError(
        `Cannot inflate "snappy" payload: chunk at ${pos - 4} of ${length} bytes`,
      );
    }
    const part = uncompressBlock(payload.subarray(pos, pos + length), maxBytes - total);
    parts.push(part);
    total += part.length;
    pos += length;
  }
  return joinBytes(parts, total);
}

function compressXerial(data: Uint8Array): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (let pos = 0; pos < data.length; pos += XERIAL_BLOCK_BYTES) {
    blocks.push(snappy.compress(data.subarray(pos, pos + XERIAL_BLOCK_BYTES)));
  }
  let size = XERIAL_HEADER_BYTES;
  for (const block of blocks) size += 4 + block.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(XERIAL_MAGIC, 0);
  view.setInt32(8, XERIAL_VERSION);
  view.setInt32(12, XERIAL_VERSION);
  let pos = XERIAL_HEADER_BYTES;
  for (const block of blocks) {
    view.setInt32(pos, block.length);
    out.set(block, pos + 4);
    pos += 4 + block.length;
  }
  return out;
}

export const SNAPPY_CODEC: RecordCodec = {
  name: "snappy",
  decompress(payload: Uint8Array, maxBytes: number): Uint8Array {
    return isXerialFramed(payload)
      ? decompressXerial(payload, maxBytes)
      : uncompressBlock(payload, maxBytes);
  },
  compress(data: Uint8Array, like?: Uint8Array): Uint8Array {
    // Java's framing unless the original was a raw block: Java, librdkafka
    // and kafkajs all read xerial, which is what most snappy batches carry.
    if (like !== undefined && !isXerialFramed(like)) return snappy.compress(data);
    return compressXerial(data);
  },
};
