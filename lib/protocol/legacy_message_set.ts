/**
 * Legacy message sets (magic 0 and 1), as Produce v0-v2 carry them, turned
 * into one uncompressed magic 2 record batch so the log only ever stores v2
 * batches.
 *
 * Message layout, big-endian:
 *
 * | pos | field       | type  | notes                                    |
 * | --- | ----------- | ----- | ---------------------------------------- |
 * |   0 | offset      | i64   | ignored; the broker assigns offsets       |
 * |   8 | messageSize | i32   | bytes after this field                   |
 * |  12 | crc         | u32   | CRC-32 (IEEE) of bytes 16..end           |
 * |  16 | magic       | i8    | 0 or 1                                   |
 * |  17 | attributes  | i8    | codec in bits 0-2, timestamp type bit 3  |
 * |  18 | timestamp   | i64   | magic 1 only                             |
 * |     | key         | bytes | i32 length, -1 = null                    |
 * |     | value       | bytes | i32 length, -1 = null                    |
 *
 * A compressed message is a wrapper whose value is a compressed message set
 * (inner offsets are relative for magic 1). Only gzip wrappers are unpacked
 * here, through node:zlib; snappy and lz4 wrappers are refused with
 * UNSUPPORTED_COMPRESSION_TYPE because decoding them would need a codec
 * library for clients old enough to speak Produce v0-v2 (those clients can
 * use gzip or no compression, or upgrade to Produce v3+ where any codec
 * passes through untouched).
 *
 * Error codes: CRC mismatches and broken framing answer CORRUPT_MESSAGE,
 * which every legacy client knows (INVALID_RECORD only exists since Kafka
 * 2.4, newer than any client that still sends magic 0/1).
 */

import { gunzipSync } from "node:zlib";
import { crc32 } from "./crc32c.ts";
import { encodeRecordBatch, type ProducerRecord } from "./records.ts";

/** Most bytes all gzip wrappers of one message set may inflate to, together. */
export const LEGACY_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024;
/** Most messages one message set may hold, counting inner messages of wrappers. */
export const LEGACY_MAX_MESSAGES = 1 << 20;

// Kafka error codes (see Kafka's Errors.java).
const CORRUPT_MESSAGE = 2; // CORRUPT_MESSAGE
const UNSUPPORTED_COMPRESSION_TYPE = 76; // UNSUPPORTED_COMPRESSION_TYPE

const LEGACY_LOG_OVERHEAD = 12; // offset + messageSize
const CRC_POS = 12;
const MAGIC_POS = 16;
const ATTRIBUTES_POS = 17;
const TIMESTAMP_POS = 18;
/** crc + magic + attributes + key length + value length. */
const MIN_MESSAGE_SIZE_V0 = 14;
/** The v0 minimum plus the 8-byte timestamp. */
const MIN_MESSAGE_SIZE_V1 = 22;
const CODEC_MASK = 0x07;
const TIMESTAMP_TYPE_FLAG = 0x08;
const CODEC_GZIP = 1;
const CODEC_NAMES: readonly string[] = ["none", "gzip", "snappy", "lz4"];
const TWO_POW_32 = 4294967296;

export type LegacyConversion =
  | { ok: true; batch: Uint8Array; count: number }
  | { ok: false; errorCode: number; message: string };

class LegacyError extends Error {
  constructor(readonly errorCode: number, message: string) {
    super(message);
  }
}

interface ParseState {
  nowMs: number;
  records: ProducerRecord[];
  inflatedBytes: number;
}

/**
 * Converts a magic 0/1 message set into one uncompressed v2 batch with
 * baseOffset 0, producerId/epoch/sequence -1 and records in message order.
 * Timestamps come from magic 1 messages (a wrapper's LogAppendTime timestamp
 * applies to its inner messages); magic 0 messages and timestamps of -1 get
 * `nowMs`. (Kafka keeps -1 there; a real time keeps time-based retention and
 * ListOffsets by time meaningful.)
 *
 * Every message must be complete and pass its CRC (CORRUPT_MESSAGE).
 * An empty message set converts to `{ ok: true, count: 0 }` with an empty
 * batch: nothing to append, which Kafka answers with NONE and offset -1.
 */
export function convertLegacyMessageSet(buf: Uint8Array, nowMs: number): LegacyConversion {
  const state: ParseState = { nowMs, records: [], inflatedBytes: 0 };
  try {
    parseMessageSet(buf, state, null);
  } catch (e) {
    if (e instanceof LegacyError) return { ok: false, errorCode: e.errorCode, message: e.message };
    throw e;
  }
  if (state.records.length === 0) return { ok: true, batch: new Uint8Array(0), count: 0 };
  return {
    ok: true,
    batch: encodeRecordBatch(state.records),
    count: state.records.length,
  };
}

interface Wrapper {
  magic: number;
  /** The wrapper's timestamp when it says LogAppendTime, else null. */
  logAppendTime: number | null;
}

function readInt64(view: DataView, pos: number): number {
  return view.getInt32(pos) * TWO_POW_32 + view.getUint32(pos + 4);
}

function readBytes(
  buf: Uint8Array,
  view: DataView,
  pos: number,
  end: number,
  what: string,
): { value: Uint8Array | null; next: number } {
  if (end - pos < 4) throw corrupt(`${what} length at byte ${pos} runs past the message end`);
  const length = view.getInt32(pos);
  if (length === -1) return { value: null, next: pos + 4 };
  if (length < 0 || length > end - pos - 4) {
    throw corrupt(`${what} at byte ${pos} has invalid length ${length}`);
  }
  return { value: buf.slice(pos + 4, pos + 4 + length), next: pos + 4 + length };
}

function corrupt(message: string): LegacyError {
  return new LegacyError(CORRUPT_MESSAGE, `Legacy message set is corrupt: ${message}`);
}

/** Parses one message set; `wrapper` is set for the inner set of a compressed message. */
function parseMessageSet(buf: Uint8Array, state: ParseState, wrapper: Wrapper | null): void {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  // Bounded: each message is at least LEGACY_LOG_OVERHEAD + MIN_MESSAGE_SIZE_V0 bytes,
  // and the message count is capped by LEGACY_MAX_MESSAGES.
  while (pos < buf.length) {
    const remaining = buf.length - pos;
    if (remaining < LEGACY_LOG_OVERHEAD + MIN_MESSAGE_SIZE_V0) {
      throw corrupt(`${remaining} trailing bytes at byte ${pos} are too few for a message`);
    }
    const messageSize = view.getInt32(pos + 8);
    if (messageSize < MIN_MESSAGE_SIZE_V0 || messageSize > remaining - LEGACY_LOG_OVERHEAD) {
      throw corrupt(
        `message at byte ${pos} declares size ${messageSize} with ${
          remaining - LEGACY_LOG_OVERHEAD
        } bytes left`,
      );
    }
    const end = pos + LEGACY_LOG_OVERHEAD + messageSize;
    const magic = view.getInt8(pos + MAGIC_POS);
    if (magic !== 0 && magic !== 1) {
      throw corrupt(`message at byte ${pos} has magic ${magic}; expected 0 or 1`);
    }
    const storedCrc = view.getUint32(pos + CRC_POS);
    const actualCrc = crc32(buf, pos + MAGIC_POS, end);
    if (storedCrc !== actualCrc) {
      throw corrupt(
        `message at byte ${pos} has CRC ${actualCrc} but says ${storedCrc}; retry the produce`,
      );
    }
    if (wrapper !== null && magic !== wrapper.magic) {
      throw corrupt(`inner message magic ${magic} differs from its wrapper's ${wrapper.magic}`);
    }
    if (magic === 1 && messageSize < MIN_MESSAGE_SIZE_V1) {
      throw corrupt(`magic 1 message at byte ${pos} is only ${messageSize} bytes`);
    }
    const attributes = view.getInt8(pos + ATTRIBUTES_POS);
    let fieldPos = pos + TIMESTAMP_POS;
    let timestamp = -1;
    if (magic === 1) {
      timestamp = readInt64(view, fieldPos);
      fieldPos += 8;
    }
    const key = readBytes(buf, view, fieldPos, end, "key");
    const value = readBytes(buf, view, key.next, end, "value");
    if (value.next !== end) {
      throw corrupt(`message at byte ${pos} has ${end - value.next} bytes after its value`);
    }
    const codec = attributes & CODEC_MASK;
    if (codec === 0) {
      if (state.records.length >= LEGACY_MAX_MESSAGES) {
        throw corrupt(`more than ${LEGACY_MAX_MESSAGES} messages; send smaller requests`);
      }
      if (wrapper?.logAppendTime != null) timestamp = wrapper.logAppendTime;
      state.records.push({
        key: key.value,
        value: value.value,
        timestamp: timestamp >= 0 ? timestamp : state.nowMs,
      });
    } else if (wrapper !== null) {
      throw corrupt(`inner message at byte ${pos} is compressed again; nesting is not allowed`);
    } else if (codec === CODEC_GZIP) {
      const inner = inflate(value.value, pos, state);
      parseMessageSet(inner, state, {
        magic,
        logAppendTime: magic === 1 && (attributes & TIMESTAMP_TYPE_FLAG) ? timestamp : null,
      });
    } else {
      const name = CODEC_NAMES[codec] ?? `codec id ${codec}`;
      throw new LegacyError(
        UNSUPPORTED_COMPRESSION_TYPE,
        `Legacy magic ${magic} message at byte ${pos} uses "${name}" compression, which this ` +
          "broker only accepts in record batches; use gzip or no compression, or a client " +
          "that sends Produce v3+",
      );
    }
    pos = end;
  }
}

function inflate(data: Uint8Array | null, pos: number, state: ParseState): Uint8Array {
  if (data === null) throw corrupt(`compressed message at byte ${pos} has a null value`);
  const budget = LEGACY_MAX_DECOMPRESSED_BYTES - state.inflatedBytes;
  let inner: Uint8Array;
  try {
    inner = new Uint8Array(gunzipSync(data, { maxOutputLength: Math.max(budget, 1) }));
  } catch (e) {
    if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw corrupt(
        `gzip messages inflate to more than ${LEGACY_MAX_DECOMPRESSED_BYTES} bytes; ` +
          "send smaller requests",
      );
    }
    throw corrupt(`cannot gunzip message at byte ${pos}: ${(e as Error).message}`);
  }
  state.inflatedBytes += inner.length;
  return inner;
}
