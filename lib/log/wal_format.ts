/**
 * The write-ahead stream's byte format and object keys (ours; documented in
 * the README next to the segment format).
 *
 * A flush round writes ONE write-ahead object (S3) or ONE append to the
 * current write-ahead file (local directory) holding every partition's
 * share of the round as a chunk. Chunks are self-describing, so a file can
 * be checked or rebuilt without the metadata store. Big-endian:
 *
 * ```
 *  0  4  magic "KWAL"
 *  4  4  u32 length of the rest of the chunk (after this field)
 *  8  4  u32 CRC32C of the rest of the chunk (after this field)
 * 12  2  u16 version = 1
 * 14  2  u16 topic name length N
 * 16  4  i32 partition
 * 20  4  i32 owner epoch of the writer
 * 24  8  i64 base offset
 * 32  8  i64 end offset (exclusive)
 * 40 16  topic id (UUID)
 * 56  N  topic name (UTF-8)
 * 56+N   Kafka v2 record batches, exactly as stored in segments
 * ```
 *
 * Object keys: `<namespace>/~wal/<brokerId>/<fileId>.wal` (`~` cannot appear
 * in a topic name, so the folder never collides with a topic's).
 *
 * Pure: no I/O.
 */

import { crc32c, crc32cCombine } from "../protocol/crc32c.ts";
import { batchCrc } from "./segment_format.ts";

export const WAL_MAGIC = "KWAL";
export const WAL_VERSION = 1;
/** Fixed part of a chunk header, before the topic name. */
export const WAL_CHUNK_FIXED_BYTES = 56;
/** Bytes before the CRC-covered part (magic, length, CRC). */
const CRC_START = 12;
export const WAL_FOLDER = "~wal";

export class WalFormatError extends Error {
  override name = "WalFormatError";
}

/** One partition's share of a flush round. */
export interface WalChunkInput {
  topic: string;
  /** Base64url topic id (22 characters). */
  topicId: string;
  partition: number;
  epoch: number;
  baseOffset: number;
  /** Exclusive. */
  endOffset: number;
  /** Whole v2 batches in offset order. */
  batches: Uint8Array[];
}

export interface WalChunkHeader {
  topic: string;
  topicId: string;
  partition: number;
  epoch: number;
  baseOffset: number;
  endOffset: number;
  /** Bytes of the whole chunk (header included). */
  chunkBytes: number;
  /** Bytes of the header (where the batches start). */
  headerBytes: number;
}

/** Where one chunk of an encoded round lies, and its batches as a view of the round. */
export interface EncodedChunk {
  position: number;
  length: number;
  payload: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function walObjectKey(namespace: string, brokerId: number, fileId: string): string {
  return `${namespace}/${WAL_FOLDER}/${brokerId}/${fileId}.wal`;
}

/**
 * When a write-ahead object was created, from its name (`<ms>-<random>.wal`, see WalWriter), or
 * null for a key that is not one.
 */
export function walObjectCreatedMs(key: string): number | null {
  const match = /\/~wal\/\d+\/(\d{13})-[0-9a-f]+\.wal$/.exec(key);
  return match ? Number(match[1]) : null;
}

/** `<namespace>/~wal/`: every write-ahead object of the namespace starts with it. */
export function walObjectPrefix(namespace: string): string {
  return `${namespace}/${WAL_FOLDER}/`;
}

/**
 * Encodes a round's chunks into one buffer (each batch copied once), with
 * the CRC of each chunk combined from the batches' own validated CRCs so the
 * batch bytes are not read twice.
 */
export function encodeWalRound(
  chunks: WalChunkInput[],
): { bytes: Uint8Array; chunks: EncodedChunk[] } {
  const names = chunks.map((c) => encoder.encode(c.topic));
  let total = 0;
  chunks.forEach((c, i) => {
    total += WAL_CHUNK_FIXED_BYTES + names[i].byteLength;
    for (const b of c.batches) total += b.byteLength;
  });
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  const out: EncodedChunk[] = [];
  let at = 0;
  chunks.forEach((c, i) => {
    const start = at;
    const name = names[i];
    if (name.byteLength > 0xffff) throw new WalFormatError(`Topic name too long: "${c.topic}"`);
    writeAscii(bytes, at, WAL_MAGIC);
    view.setUint16(at + 12, WAL_VERSION);
    view.setUint16(at + 14, name.byteLength);
    view.setInt32(at + 16, c.partition);
    view.setInt32(at + 20, c.epoch);
    view.setBigInt64(at + 24, BigInt(c.baseOffset));
    view.setBigInt64(at + 32, BigInt(c.endOffset));
    bytes.set(topicIdBytes(c.topicId), at + 40);
    bytes.set(name, at + WAL_CHUNK_FIXED_BYTES);
    at += WAL_CHUNK_FIXED_BYTES + name.byteLength;
    let crc = crc32c(bytes, start + CRC_START, at);
    const payloadStart = at;
    for (const b of c.batches) {
      bytes.set(b, at);
      crc = crc32cCombine(crc, batchCrc(b), b.byteLength);
      at += b.byteLength;
    }
    view.setUint32(start + 4, at - start - 8);
    view.setUint32(start + 8, crc >>> 0);
    out.push({ position: start, length: at - start, payload: bytes.subarray(payloadStart, at) });
  });
  return { bytes, chunks: out };
}

/**
 * Parses the chunk at the start of `bytes` (its header, and with
 * `checkCrc` its CRC, which needs the whole chunk). Throws WalFormatError.
 */
export function parseWalChunkHeader(bytes: Uint8Array, checkCrc: boolean): WalChunkHeader {
  if (bytes.byteLength < WAL_CHUNK_FIXED_BYTES) {
    throw new WalFormatError(
      `Chunk header needs ${WAL_CHUNK_FIXED_BYTES} bytes, got ${bytes.byteLength}`,
    );
  }
  if (readAscii(bytes, 0, 4) !== WAL_MAGIC) throw new WalFormatError("Chunk has no KWAL magic");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunkBytes = view.getUint32(4) + 8;
  const version = view.getUint16(12);
  if (version !== WAL_VERSION) throw new WalFormatError(`Unknown chunk version ${version}`);
  const nameBytes = view.getUint16(14);
  const headerBytes = WAL_CHUNK_FIXED_BYTES + nameBytes;
  if (chunkBytes < headerBytes || bytes.byteLength < headerBytes) {
    throw new WalFormatError(`Chunk of ${chunkBytes} bytes is shorter than its header`);
  }
  if (checkCrc) {
    if (bytes.byteLength < chunkBytes) {
      throw new WalFormatError(`Chunk of ${chunkBytes} bytes is truncated at ${bytes.byteLength}`);
    }
    const crc = crc32c(bytes, CRC_START, chunkBytes);
    if (crc >>> 0 !== view.getUint32(8)) throw new WalFormatError("Chunk CRC32C mismatch");
  }
  return {
    topic: decoder.decode(bytes.subarray(WAL_CHUNK_FIXED_BYTES, headerBytes)),
    topicId: topicIdText(bytes.subarray(40, 56)),
    partition: view.getInt32(16),
    epoch: view.getInt32(20),
    baseOffset: safeInt(view.getBigInt64(24)),
    endOffset: safeInt(view.getBigInt64(32)),
    chunkBytes,
    headerBytes,
  };
}

/**
 * The batches of a whole chunk, after a cheap check of its header against what the index says
 * (magic, version, length, partition, offsets; no CRC, no name decoding): the hot read path.
 * Throws WalFormatError.
 */
export function walChunkPayload(
  bytes: Uint8Array,
  expect: { partition: number; baseOffset: number; endOffset: number },
): Uint8Array {
  if (bytes.byteLength < WAL_CHUNK_FIXED_BYTES || readAscii(bytes, 0, 4) !== WAL_MAGIC) {
    throw new WalFormatError("Chunk has no KWAL header");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = WAL_CHUNK_FIXED_BYTES + view.getUint16(14);
  if (
    view.getUint32(4) + 8 !== bytes.byteLength || view.getUint16(12) !== WAL_VERSION ||
    headerBytes > bytes.byteLength || view.getInt32(16) !== expect.partition ||
    Number(view.getBigInt64(24)) !== expect.baseOffset ||
    Number(view.getBigInt64(32)) !== expect.endOffset
  ) {
    throw new WalFormatError(
      `Chunk header does not match its index (partition ${expect.partition}, offsets ` +
        `${expect.baseOffset}-${expect.endOffset - 1})`,
    );
  }
  return bytes.subarray(headerBytes);
}

/** The chunks of a whole write-ahead object or file, stopping at a torn tail. */
export function scanWalChunks(
  bytes: Uint8Array,
): { chunks: (WalChunkHeader & { position: number })[]; validBytes: number } {
  const { chunks, scanned } = scanWalWindow(bytes, bytes.byteLength);
  return { chunks, validBytes: scanned };
}

/**
 * The whole chunks at the start of `bytes`, a window of a write-ahead object read from a
 * chunk's start with `objectBytesLeft` bytes of the object from there (for reading an object
 * piece by piece). `scanned` is where the chunks found end. The scan stops at a chunk the window
 * does not hold whole, with `need` its length (read it again from `scanned`, at least that
 * long), or at a torn chunk or the object's end, without `need`: a chunk is torn when it has no
 * magic, claims more bytes than the object has left, or fails its checks (CRC32C included).
 */
export function scanWalWindow(
  bytes: Uint8Array,
  objectBytesLeft: number,
): { chunks: (WalChunkHeader & { position: number })[]; scanned: number; need?: number } {
  const chunks: (WalChunkHeader & { position: number })[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at < objectBytesLeft) {
    const rest = bytes.byteLength - at;
    if (rest >= 4 && readAscii(bytes, at, 4) !== WAL_MAGIC) break;
    const chunkBytes = rest >= 8 ? view.getUint32(at + 4) + 8 : 8;
    if (chunkBytes > objectBytesLeft - at) break;
    if (chunkBytes > rest) return { chunks, scanned: at, need: chunkBytes };
    let header: WalChunkHeader;
    try {
      header = parseWalChunkHeader(bytes.subarray(at, at + chunkBytes), true);
    } catch (error) {
      if (error instanceof WalFormatError) break;
      throw error;
    }
    chunks.push({ ...header, position: at });
    at += chunkBytes;
  }
  return { chunks, scanned: at };
}

function topicIdBytes(topicId: string): Uint8Array {
  const out = new Uint8Array(16);
  if (topicId === "") return out;
  const binary = atob(topicId.replaceAll("-", "+").replaceAll("_", "/"));
  if (binary.length !== 16) throw new WalFormatError(`Invalid topic id "${topicId}"`);
  for (let i = 0; i < 16; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function topicIdText(bytes: Uint8Array): string {
  if (bytes.every((b) => b === 0)) return "";
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function writeAscii(bytes: Uint8Array, at: number, text: string): void {
  for (let i = 0; i < text.length; i++) bytes[at + i] = text.charCodeAt(i);
}

function readAscii(bytes: Uint8Array, at: number, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += String.fromCharCode(bytes[at + i]);
  return out;
}

function safeInt(value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new WalFormatError(`Offset ${value} is beyond 2^53`);
  }
  return Number(value);
}
