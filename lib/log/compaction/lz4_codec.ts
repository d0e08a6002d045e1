/**
 * LZ4 for Kafka batches (codec id 3), on the pure-JS `lz4js` (block codec and
 * xxHash32), the only file that imports it. The frame layer is ours, because
 * Kafka's readers are stricter than lz4js's frame writer.
 *
 * Kafka stores the LZ4 *frame* format (magic 0x184D2204), as Java's
 * KafkaLZ4BlockOutputStream and librdkafka (liblz4's LZ4F) write it. For
 * magic 2 batches the header checksum is the standard one (KAFKA-3160 fixed
 * the old, magic 0/1 variant). We read every frame option readers meet —
 * block checksums, content size, content checksum, 64 KiB to 4 MiB blocks —
 * and write what Java writes: version 1, independent blocks, no checksums,
 * 64 KiB blocks, a block stored uncompressed when LZ4 does not shrink it.
 * Java's reader decodes every block on its own, so we never write linked
 * blocks (lz4js's own frame writer can); we do read them.
 */

import lz4js from "lz4js";
import xxh32js from "lz4js/xxh32.js";
import { CodecError, codecFailure, type RecordCodec } from "./record_codec.ts";

interface Lz4Js {
  compressBound(n: number): number;
  compressBlock(
    src: Uint8Array,
    dst: Uint8Array,
    sIndex: number,
    sLength: number,
    hashTable: Uint32Array,
  ): number;
  decompressBlock(
    src: Uint8Array,
    dst: Uint8Array,
    sIndex: number,
    sLength: number,
    dIndex: number,
  ): number;
}
const lz4 = lz4js as unknown as Lz4Js;
const xxh32 = xxh32js as unknown as {
  hash(seed: number, src: Uint8Array, index: number, length: number): number;
};

export const LZ4_FRAME_MAGIC = 0x184d2204;
const FLG_VERSION_MASK = 0xc0;
const FLG_VERSION_1 = 0x40;
const FLG_BLOCK_INDEPENDENT = 0x20;
const FLG_BLOCK_CHECKSUM = 0x10;
const FLG_CONTENT_SIZE = 0x08;
const FLG_CONTENT_CHECKSUM = 0x04;
const FLG_RESERVED = 0x02;
const FLG_DICT_ID = 0x01;
const BLOCK_UNCOMPRESSED_BIT = 0x80000000;
/** Block maximum sizes by the BD byte's 3-bit code (4..7). */
const BLOCK_MAX_BYTES: Readonly<Record<number, number>> = {
  4: 64 * 1024,
  5: 256 * 1024,
  6: 1024 * 1024,
  7: 4 * 1024 * 1024,
};
/** What Java's KafkaLZ4BlockOutputStream writes: 64 KiB blocks (BD code 4). */
const WRITE_BLOCK_CODE = 4;
const WRITE_BLOCK_BYTES = BLOCK_MAX_BYTES[WRITE_BLOCK_CODE];
/** lz4js hashes 4-byte sequences into 2^16 slots. */
const HASH_TABLE_SLOTS = 1 << 16;

function fail(message: string): CodecError {
  return new CodecError(`Cannot inflate "lz4" payload: ${message}`);
}

function headerChecksum(frame: Uint8Array, start: number, end: number): number {
  return (xxh32.hash(0, frame, start, end - start) >>> 8) & 0xff;
}

function decompressFrame(frame: Uint8Array, maxBytes: number): Uint8Array {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (frame.length < 7 || view.getUint32(0, true) !== LZ4_FRAME_MAGIC) {
    throw fail("no LZ4 frame magic");
  }
  const flg = frame[4];
  const bd = frame[5];
  if ((flg & FLG_VERSION_MASK) !== FLG_VERSION_1 || (flg & FLG_RESERVED) !== 0) {
    throw fail(`unsupported frame descriptor 0x${flg.toString(16)}`);
  }
  if ((flg & FLG_DICT_ID) !== 0) throw fail("dictionaries are not supported");
  const blockMax = BLOCK_MAX_BYTES[(bd >> 4) & 0x07];
  if (blockMax === undefined || (bd & 0x8f) !== 0) {
    throw fail(`unsupported block descriptor 0x${bd.toString(16)}`);
  }
  let pos = 6 + ((flg & FLG_CONTENT_SIZE) !== 0 ? 8 : 0);
  if (pos >= frame.length) throw fail("truncated frame header");
  if (frame[pos] !== headerChecksum(frame, 4, pos)) throw fail("frame header checksum mismatch");
  pos++;
  const blockChecksums = (flg & FLG_BLOCK_CHECKSUM) !== 0;
  // Every block is decoded into one growing buffer, so linked blocks (whose
  // matches reach into earlier blocks) decode as well as independent ones.
  let out = new Uint8Array(Math.min(blockMax, maxBytes + 1));
  let total = 0;
  // Bounded: each block advances pos by at least 4 bytes; the end mark stops it.
  for (;;) {
    if (frame.length - pos < 4) throw fail("truncated block header");
    const word = view.getUint32(pos, true);
    pos += 4;
    if (word === 0) break;
    const size = word & ~BLOCK_UNCOMPRESSED_BIT;
    if (size > frame.length - pos - (blockChecksums ? 4 : 0)) throw fail("truncated block");
    if (total + blockMax > out.length) {
      if (total >= maxBytes) throw fail(`more than ${maxBytes} bytes`);
      const grown = new Uint8Array(Math.max(out.length * 2, total + blockMax));
      grown.set(out.subarray(0, total));
      out = grown;
    }
    let produced: number;
    if ((word & BLOCK_UNCOMPRESSED_BIT) !== 0) {
      if (size > blockMax) throw fail(`stored block of ${size} bytes`);
      out.set(frame.subarray(pos, pos + size), total);
      produced = size;
    } else {
      try {
        produced = lz4.decompressBlock(frame, out, pos, size, total) - total;
      } catch (e) {
        throw codecFailure("lz4", "inflate", e);
      }
      // lz4js does not bound-check: writes past the buffer are dropped, so a
      // count beyond the block maximum means a corrupt or oversized block.
      if (produced > blockMax) throw fail(`block inflates past ${blockMax} bytes`);
    }
    pos += size + (blockChecksums ? 4 : 0);
    total += produced;
    if (total > maxBytes) throw fail(`more than ${maxBytes} bytes`);
  }
  const content = out.slice(0, total);
  if ((flg & FLG_CONTENT_CHECKSUM) !== 0) {
    if (frame.length - pos < 4) throw fail("truncated content checksum");
    if (view.getUint32(pos, true) !== (xxh32.hash(0, content, 0, content.length) >>> 0)) {
      throw fail("content checksum mismatch");
    }
  }
  return content;
}

function compressFrame(data: Uint8Array): Uint8Array {
  const bound = lz4.compressBound(WRITE_BLOCK_BYTES);
  const hashTable = new Uint32Array(HASH_TABLE_SLOTS);
  const blocks: { stored: boolean; bytes: Uint8Array }[] = [];
  for (let pos = 0; pos < data.length; pos += WRITE_BLOCK_BYTES) {
    const input = data.subarray(pos, pos + WRITE_BLOCK_BYTES);
    // A fresh table per block keeps every match inside its block (independent blocks).
    hashTable.fill(0);
    const dst = new Uint8Array(bound);
    const size = lz4.compressBlock(input, dst, 0, input.length, hashTable);
    blocks.push(
      size === 0 || size >= input.length
        ? { stored: true, bytes: input }
        : { stored: false, bytes: dst.subarray(0, size) },
    );
  }
  let size = 7 + 4;
  for (const block of blocks) size += 4 + block.bytes.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, LZ4_FRAME_MAGIC, true);
  out[4] = FLG_VERSION_1 | FLG_BLOCK_INDEPENDENT;
  out[5] = WRITE_BLOCK_CODE << 4;
  out[6] = headerChecksum(out, 4, 6);
  let pos = 7;
  for (const block of blocks) {
    view.setUint32(pos, (block.stored ? BLOCK_UNCOMPRESSED_BIT : 0) | block.bytes.length, true);
    out.set(block.bytes, pos + 4);
    pos += 4 + block.bytes.length;
  }
  view.setUint32(pos, 0, true); // end mark
  return out;
}

export const LZ4_CODEC: RecordCodec = {
  name: "lz4",
  decompress: decompressFrame,
  compress(data: Uint8Array): Uint8Array {
    return compressFrame(data);
  },
};
