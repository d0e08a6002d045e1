/**
 * Kafka wire primitives: a bounds-checked `Reader` and a growable, chunked `Writer` for the
 * fixed-width integers, varints, strings, bytes, UUIDs and array lengths of the Kafka protocol.
 *
 * Owns: byte-level encoding rules only. Must not import anything outside `lib/protocol/` and must
 * not do I/O. Decoders throw `DecodeError` and nothing else on bad input; every length read from
 * the wire is checked against the bytes that remain BEFORE anything is allocated for it.
 *
 * int64 values are JavaScript numbers: exact for |v| <= 2^53 (every offset, timestamp and producer
 * id a real cluster produces); larger values decode to the nearest double instead of failing.
 */

/** The only error a decoder throws on malformed input. Callers map it to INVALID_REQUEST / close. */
export class DecodeError extends Error {
  override name = "DecodeError";
}

/** Largest payload a Writer accepts: Kafka frames carry an int32 size. */
export const WRITER_MAX_BYTES = 0x7fffffff;
/** Default first buffer of a Writer; it doubles on growth. */
export const WRITER_INITIAL_BYTES = 256;
/** Payloads at least this long are referenced by `bytesRef` instead of copied. */
export const WRITER_REF_MIN_BYTES = 4096;
/** Longest unsigned varint (32-bit) in bytes. */
const UVARINT_MAX_BYTES = 5;
/** Longest unsigned varlong (64-bit) in bytes. */
const UVARLONG_MAX_BYTES = 10;
/** Random UUID draws before giving up (each draw is reserved with probability ~2^-120). */
const RANDOM_UUID_MAX_ATTEMPTS = 16;

const TWO_POW_32 = 4294967296;
const TWO_POW_27 = 134217728;

const TEXT_DECODER = new TextDecoder("utf-8", { fatal: false });
const TEXT_ENCODER = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// UUIDs: Kafka prints them as URL-safe base64 of the 16 bytes, without padding (22 characters).

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64URL_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < B64URL.length; i++) B64URL_VALUE[B64URL.charCodeAt(i)] = i;

/** The all-zero UUID, Kafka's "no topic id". */
export const ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA";
/** Kafka reserves UUID 0:1 for the metadata topic; random UUIDs never return it. */
const METADATA_TOPIC_UUID = "AAAAAAAAAAAAAAAAAAAAAQ";

/** Encodes 16 bytes (at `offset`) as Kafka's 22-character base64url UUID string. */
export function bytesToUuid(b: Uint8Array, offset = 0): string {
  let s = "";
  let i = offset;
  for (let k = 0; k < 5; k++, i += 3) {
    const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    s += B64URL[n >>> 18] + B64URL[(n >>> 12) & 63] + B64URL[(n >>> 6) & 63] + B64URL[n & 63];
  }
  const last = b[i];
  return s + B64URL[last >>> 2] + B64URL[(last & 3) << 4];
}

/** Parses Kafka's 22-character base64url UUID form; throws `TypeError` on anything else. */
export function uuidToBytes(
  uuid: string,
  out: Uint8Array = new Uint8Array(16),
  offset = 0,
): Uint8Array {
  if (uuid.length !== 22) throw invalidUuid(uuid);
  let j = offset;
  for (let i = 0; i < 20; i += 4) {
    const n = (b64(uuid, i) << 18) | (b64(uuid, i + 1) << 12) | (b64(uuid, i + 2) << 6) |
      b64(uuid, i + 3);
    out[j++] = n >>> 16;
    out[j++] = (n >>> 8) & 255;
    out[j++] = n & 255;
  }
  const a = b64(uuid, 20);
  const c = b64(uuid, 21);
  // The last character carries 2 data bits; non-zero padding bits mean a non-canonical string.
  if ((c & 15) !== 0) throw invalidUuid(uuid);
  out[j] = (a << 2) | (c >>> 4);
  return out;
}

function b64(s: string, i: number): number {
  const code = s.charCodeAt(i);
  const v = code < 128 ? B64URL_VALUE[code] : -1;
  if (v < 0) throw invalidUuid(s);
  return v;
}

function invalidUuid(s: string): TypeError {
  return new TypeError(
    `Invalid UUID "${s}": expected 22 base64url characters (Kafka's Uuid.toString form)`,
  );
}

/** A random version-4 UUID in Kafka's string form, never the zero or metadata-topic UUID. */
export function randomUuid(): string {
  const b = new Uint8Array(16);
  for (let attempt = 0; attempt < RANDOM_UUID_MAX_ATTEMPTS; attempt++) {
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const s = bytesToUuid(b);
    // Kafka (KAFKA-13455) avoids ids starting with "-" so they are not read as CLI flags.
    if (s !== ZERO_UUID && s !== METADATA_TOPIC_UUID && s[0] !== "-") return s;
  }
  throw new Error(
    "Random UUID generation kept producing reserved ids: check crypto.getRandomValues",
  );
}

// ---------------------------------------------------------------------------------------------

/** Number of UTF-8 bytes `TextEncoder` produces for `s` (lone surrogates become U+FFFD). */
export function utf8Length(s: string): number {
  let n = 0;
  const len = s.length;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < len) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else {
        n += 3;
      }
    } else n += 3;
  }
  return n;
}

/** Bounds-checked reader over one Uint8Array; `offset` is the next byte to read. */
export class Reader {
  offset: number;
  readonly #buf: Uint8Array;
  readonly #view: DataView;

  constructor(buf: Uint8Array, offset = 0) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.offset = offset;
  }

  /** The underlying bytes (the whole input, not only what remains). */
  get buffer(): Uint8Array {
    return this.#buf;
  }

  remaining(): number {
    return this.#buf.length - this.offset;
  }

  #need(n: number): number {
    const o = this.offset;
    if (n > this.#buf.length - o) {
      throw new DecodeError(
        `Truncated input: need ${n} bytes at offset ${o}, only ${this.#buf.length - o} remain`,
      );
    }
    this.offset = o + n;
    return o;
  }

  int8(): number {
    return this.#view.getInt8(this.#need(1));
  }

  int16(): number {
    return this.#view.getInt16(this.#need(2));
  }

  uint16(): number {
    return this.#view.getUint16(this.#need(2));
  }

  int32(): number {
    return this.#view.getInt32(this.#need(4));
  }

  uint32(): number {
    return this.#view.getUint32(this.#need(4));
  }

  /** Signed 64-bit big-endian; exact for |v| <= 2^53, nearest double beyond. */
  int64(): number {
    const o = this.#need(8);
    return this.#view.getInt32(o) * TWO_POW_32 + this.#view.getUint32(o + 4);
  }

  float64(): number {
    return this.#view.getFloat64(this.#need(8));
  }

  bool(): boolean {
    return this.#buf[this.#need(1)] !== 0;
  }

  /** Unsigned 32-bit varint (at most 5 bytes), as written by Kafka's ByteUtils. */
  uvarint(): number {
    const buf = this.#buf;
    let o = this.offset;
    let b = o < buf.length ? buf[o++] : this.#truncatedVarint();
    if (b < 0x80) {
      this.offset = o;
      return b;
    }
    let v = b & 0x7f;
    let mul = 128;
    for (let i = 1; i < UVARINT_MAX_BYTES; i++) {
      b = o < buf.length ? buf[o++] : this.#truncatedVarint();
      v += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (v > 0xffffffff) break;
        this.offset = o;
        return v;
      }
      mul *= 128;
    }
    throw new DecodeError(`Varint at offset ${this.offset} is longer than 32 bits`);
  }

  #truncatedVarint(): never {
    throw new DecodeError(`Truncated varint at offset ${this.offset}`);
  }

  /** Zigzag-encoded signed 32-bit varint. */
  varint(): number {
    const u = this.uvarint();
    return (u >>> 1) ^ -(u & 1);
  }

  /** Zigzag-encoded signed 64-bit varint (at most 10 bytes); exact for |v| <= 2^53. */
  varlong(): number {
    const buf = this.#buf;
    const start = this.offset;
    let o = start;
    // The low 28 bits (4 bytes) are accumulated as an integer so the zigzag sign bit and the
    // halving stay exact; higher groups are added in floating point (exact up to 2^53).
    let lo = 0;
    let hi = 0;
    let mul = 1;
    for (let i = 0; i < UVARLONG_MAX_BYTES; i++) {
      if (o >= buf.length) throw new DecodeError(`Truncated varlong at offset ${start}`);
      const b = buf[o++];
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else {
        hi += (b & 0x7f) * mul;
        mul *= 128;
      }
      if (b < 0x80) {
        this.offset = o;
        const mag = (lo >>> 1) + hi * TWO_POW_27;
        return (lo & 1) === 0 ? mag : -mag - 1;
      }
    }
    throw new DecodeError(`Varlong at offset ${start} is longer than 10 bytes`);
  }

  /** 16 bytes as Kafka's base64url UUID string ("AAAAAAAAAAAAAAAAAAAAAA" for zero). */
  uuid(): string {
    return bytesToUuid(this.#buf, this.#need(16));
  }

  /** A zero-copy view of the next `n` bytes (it shares memory with the input). */
  raw(n: number): Uint8Array {
    const o = this.#need(n);
    return this.#buf.subarray(o, o + n);
  }

  skip(n: number): void {
    this.#need(n);
  }

  #text(n: number): string {
    const o = this.#need(n);
    return TEXT_DECODER.decode(this.#buf.subarray(o, o + n));
  }

  #nonNull(what: string): never {
    throw new DecodeError(`Non-nullable ${what} at offset ${this.offset} was encoded as null`);
  }

  /** int16 length + UTF-8. */
  string(): string {
    const n = this.int16();
    if (n < 0) this.#nonNull("string");
    return this.#text(n);
  }

  nullableString(): string | null {
    const n = this.int16();
    return n < 0 ? null : this.#text(n);
  }

  /** Unsigned varint (length + 1) + UTF-8. */
  compactString(): string {
    const n = this.uvarint() - 1;
    if (n < 0) this.#nonNull("compact string");
    return this.#text(n);
  }

  compactNullableString(): string | null {
    const n = this.uvarint() - 1;
    return n < 0 ? null : this.#text(n);
  }

  /** int32 length + bytes, copied out of the input. */
  bytes(): Uint8Array {
    const n = this.int32();
    if (n < 0) this.#nonNull("bytes");
    return this.raw(n).slice();
  }

  nullableBytes(): Uint8Array | null {
    const n = this.int32();
    return n < 0 ? null : this.raw(n).slice();
  }

  compactBytes(): Uint8Array {
    const n = this.uvarint() - 1;
    if (n < 0) this.#nonNull("compact bytes");
    return this.raw(n).slice();
  }

  compactNullableBytes(): Uint8Array | null {
    const n = this.uvarint() - 1;
    return n < 0 ? null : this.raw(n).slice();
  }

  /** Like `bytes()` but a zero-copy view (records, zeroCopy fields). */
  bytesView(): Uint8Array {
    const n = this.int32();
    if (n < 0) this.#nonNull("bytes");
    return this.raw(n);
  }

  nullableBytesView(): Uint8Array | null {
    const n = this.int32();
    return n < 0 ? null : this.raw(n);
  }

  compactBytesView(): Uint8Array {
    const n = this.uvarint() - 1;
    if (n < 0) this.#nonNull("compact bytes");
    return this.raw(n);
  }

  compactNullableBytesView(): Uint8Array | null {
    const n = this.uvarint() - 1;
    return n < 0 ? null : this.raw(n);
  }

  #checkCount(n: number, start: number): number {
    // Every array element takes at least one byte, so a count above the remaining bytes is a
    // lie; rejecting it here bounds any allocation by the input size.
    if (n > this.#buf.length - this.offset) {
      throw new DecodeError(
        `Array length ${n} at offset ${start} exceeds the ${this.remaining()} bytes that remain`,
      );
    }
    return n;
  }

  /** int32 array length; -1 means null. */
  arrayLength(): number {
    const start = this.offset;
    const n = this.int32();
    return n < 0 ? -1 : this.#checkCount(n, start);
  }

  /** Unsigned varint (length + 1) array length; -1 means null. */
  compactArrayLength(): number {
    const start = this.offset;
    const n = this.uvarint() - 1;
    return n < 0 ? -1 : this.#checkCount(n, start);
  }

  /** Number of tagged fields; each takes at least 2 bytes (tag and size). */
  taggedFieldCount(): number {
    const start = this.offset;
    const n = this.uvarint();
    if (n * 2 > this.remaining()) {
      throw new DecodeError(
        `Tagged field count ${n} at offset ${start} exceeds the ${this.remaining()} bytes left`,
      );
    }
    return n;
  }

  /** Reads a tagged field's size and returns the offset where its data ends. */
  taggedFieldEnd(): number {
    const n = this.uvarint();
    if (n > this.remaining()) {
      throw new DecodeError(
        `Tagged field size ${n} at offset ${this.offset} exceeds the ${this.remaining()} bytes left`,
      );
    }
    return this.offset + n;
  }

  /** Moves to the end of a known tagged field; reading past it is corruption. */
  endTaggedField(end: number): void {
    if (this.offset > end) {
      throw new DecodeError(`Tagged field overran its size: ended at ${this.offset}, not ${end}`);
    }
    this.offset = end;
  }
}

/**
 * Growable big-endian writer. Output is a list of chunks: the writer's own buffers plus, for
 * `bytesRef` payloads of at least WRITER_REF_MIN_BYTES, the caller's arrays themselves (zero
 * copy: do not mutate them until the output is sent).
 */
export class Writer {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;
  /** Start in #buf of the bytes not yet moved to #chunks. */
  #chunkStart = 0;
  #chunks: Uint8Array[] = [];
  /** Total bytes in #chunks. */
  #flushed = 0;

  constructor(initialBytes = WRITER_INITIAL_BYTES) {
    this.#buf = new Uint8Array(Math.max(16, initialBytes));
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#flushed + this.#pos - this.#chunkStart;
  }

  #ensure(n: number): number {
    const p = this.#pos;
    if (n > this.#buf.length - p) this.#grow(n);
    return this.#pos;
  }

  #grow(n: number): void {
    const used = this.#pos - this.#chunkStart;
    if (this.#flushed + used + n > WRITER_MAX_BYTES) {
      throw new RangeError(
        `Cannot write ${n} more bytes: the output would exceed ${WRITER_MAX_BYTES} bytes`,
      );
    }
    let size = this.#buf.length * 2;
    while (size < used + n) size *= 2;
    const next = new Uint8Array(Math.min(size, WRITER_MAX_BYTES));
    next.set(this.#buf.subarray(this.#chunkStart, this.#pos));
    // Earlier chunks keep pointing into the old buffer, which is never written again.
    this.#buf = next;
    this.#view = new DataView(next.buffer);
    this.#chunkStart = 0;
    this.#pos = used;
  }

  int8(v: number): void {
    const p = this.#ensure(1);
    this.#view.setInt8(p, v);
    this.#pos = p + 1;
  }

  int16(v: number): void {
    const p = this.#ensure(2);
    this.#view.setInt16(p, v);
    this.#pos = p + 2;
  }

  uint16(v: number): void {
    const p = this.#ensure(2);
    this.#view.setUint16(p, v);
    this.#pos = p + 2;
  }

  int32(v: number): void {
    const p = this.#ensure(4);
    this.#view.setInt32(p, v);
    this.#pos = p + 4;
  }

  uint32(v: number): void {
    const p = this.#ensure(4);
    this.#view.setUint32(p, v);
    this.#pos = p + 4;
  }

  /** Signed 64-bit; `v` must be an integer (exact when |v| <= 2^53). */
  int64(v: number): void {
    const p = this.#ensure(8);
    const hi = Math.floor(v / TWO_POW_32);
    this.#view.setInt32(p, hi);
    this.#view.setUint32(p + 4, v - hi * TWO_POW_32);
    this.#pos = p + 8;
  }

  float64(v: number): void {
    const p = this.#ensure(8);
    this.#view.setFloat64(p, v);
    this.#pos = p + 8;
  }

  bool(v: boolean): void {
    const p = this.#ensure(1);
    this.#buf[p] = v ? 1 : 0;
    this.#pos = p + 1;
  }

  /** Unsigned 32-bit varint; `v` in [0, 2^32). */
  uvarint(v: number): void {
    let p = this.#ensure(UVARINT_MAX_BYTES);
    const buf = this.#buf;
    while (v >= 0x80) {
      buf[p++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    buf[p++] = v;
    this.#pos = p;
  }

  /** Zigzag-encoded signed 32-bit varint. */
  varint(v: number): void {
    this.uvarint(((v << 1) ^ (v >> 31)) >>> 0);
  }

  /** Zigzag-encoded signed 64-bit varint; `v` an integer with |v| <= 2^53. */
  varlong(v: number): void {
    // zigzag(v) = 2 * mag + sign; emit the first 7 bits from (mag, sign) and the rest from
    // floor(mag / 64), so no intermediate value exceeds 2^53.
    const sign = v < 0 ? 1 : 0;
    const mag = sign === 1 ? -v - 1 : v;
    let p = this.#ensure(UVARLONG_MAX_BYTES);
    const buf = this.#buf;
    const first = ((mag % 64) << 1) | sign;
    let rest = Math.floor(mag / 64);
    if (rest === 0) {
      buf[p++] = first;
    } else {
      buf[p++] = first | 0x80;
      while (rest >= 0x80) {
        buf[p++] = (rest % 128) | 0x80;
        rest = Math.floor(rest / 128);
      }
      buf[p++] = rest;
    }
    this.#pos = p;
  }

  /** Kafka's base64url UUID string to 16 bytes; throws TypeError if it is not one. */
  uuid(v: string): void {
    const p = this.#ensure(16);
    uuidToBytes(v, this.#buf, p);
    this.#pos = p + 16;
  }

  /** Copies `b` into the output. */
  raw(b: Uint8Array): void {
    const p = this.#ensure(b.length);
    this.#buf.set(b, p);
    this.#pos = p + b.length;
  }

  /** Appends `b`; payloads of WRITER_REF_MIN_BYTES or more are referenced, not copied. */
  bytesRef(b: Uint8Array): void {
    if (b.length < WRITER_REF_MIN_BYTES) {
      this.raw(b);
      return;
    }
    if (this.length + b.length > WRITER_MAX_BYTES) {
      throw new RangeError(
        `Cannot write ${b.length} more bytes: the output would exceed ${WRITER_MAX_BYTES} bytes`,
      );
    }
    if (this.#pos > this.#chunkStart) {
      this.#chunks.push(this.#buf.subarray(this.#chunkStart, this.#pos));
      this.#flushed += this.#pos - this.#chunkStart;
      this.#chunkStart = this.#pos;
    }
    this.#chunks.push(b);
    this.#flushed += b.length;
  }

  #utf8(s: string, n: number): void {
    const p = this.#ensure(n);
    const buf = this.#buf;
    if (n === s.length && n <= 32) {
      for (let i = 0; i < n; i++) buf[p + i] = s.charCodeAt(i);
    } else if (n > 0) {
      TEXT_ENCODER.encodeInto(s, buf.subarray(p, p + n));
    }
    this.#pos = p + n;
  }

  /** int16 length + UTF-8. */
  string(s: string): void {
    const n = utf8Length(s);
    if (n > 0x7fff) {
      throw new RangeError(`String of ${n} UTF-8 bytes is longer than the int16 limit (32767)`);
    }
    this.int16(n);
    this.#utf8(s, n);
  }

  nullableString(s: string | null): void {
    if (s === null) this.int16(-1);
    else this.string(s);
  }

  compactString(s: string): void {
    const n = utf8Length(s);
    this.uvarint(n + 1);
    this.#utf8(s, n);
  }

  compactNullableString(s: string | null): void {
    if (s === null) this.uvarint(0);
    else this.compactString(s);
  }

  /** int32 length + bytes (copied). */
  bytes(b: Uint8Array): void {
    this.int32(b.length);
    this.raw(b);
  }

  nullableBytes(b: Uint8Array | null): void {
    if (b === null) this.int32(-1);
    else this.bytes(b);
  }

  compactBytes(b: Uint8Array): void {
    this.uvarint(b.length + 1);
    this.raw(b);
  }

  compactNullableBytes(b: Uint8Array | null): void {
    if (b === null) this.uvarint(0);
    else this.compactBytes(b);
  }

  /** int32 length + bytes via `bytesRef` (large payloads are not copied). */
  nullableBytesRef(b: Uint8Array | null): void {
    if (b === null) {
      this.int32(-1);
      return;
    }
    this.int32(b.length);
    this.bytesRef(b);
  }

  compactNullableBytesRef(b: Uint8Array | null): void {
    if (b === null) {
      this.uvarint(0);
      return;
    }
    this.uvarint(b.length + 1);
    this.bytesRef(b);
  }

  /** int32 array length; -1 writes null. */
  arrayLength(n: number): void {
    this.int32(n);
  }

  /** Unsigned varint (length + 1); -1 writes null. */
  compactArrayLength(n: number): void {
    this.uvarint(n + 1);
  }

  /** Writes a placeholder int32 and returns its position for `patchInt32`. */
  reserveInt32(): number {
    const pos = this.length;
    this.int32(0);
    return pos;
  }

  /** Overwrites 4 bytes at absolute position `pos` (from `reserveInt32`). */
  patchInt32(pos: number, v: number): void {
    const local = pos - this.#flushed;
    if (local >= 0) {
      if (local + 4 > this.#pos - this.#chunkStart) {
        throw new RangeError(`Cannot patch int32 at ${pos}: only ${this.length} bytes written`);
      }
      this.#view.setInt32(this.#chunkStart + local, v);
      return;
    }
    let start = 0;
    for (const c of this.#chunks) {
      if (pos < start + c.length) {
        if (pos + 4 > start + c.length) {
          throw new RangeError(`Cannot patch int32 at ${pos}: it spans two chunks`);
        }
        new DataView(c.buffer, c.byteOffset, c.byteLength).setInt32(pos - start, v);
        return;
      }
      start += c.length;
    }
    throw new RangeError(`Cannot patch int32 at negative position ${pos}`);
  }

  /** The output as chunks, in order. The writer may keep writing after this. */
  finish(): Uint8Array[] {
    const out = this.#chunks.slice();
    if (this.#pos > this.#chunkStart) out.push(this.#buf.subarray(this.#chunkStart, this.#pos));
    return out;
  }

  /** The output as one array (no copy when it is a single chunk). */
  finishBytes(): Uint8Array {
    const chunks = this.finish();
    if (chunks.length === 1) return chunks[0];
    const out = new Uint8Array(this.length);
    let p = 0;
    for (const c of chunks) {
      out.set(c, p);
      p += c.length;
    }
    return out;
  }
}
