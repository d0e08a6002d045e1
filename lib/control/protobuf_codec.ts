/**
 * A protobuf (proto3) binary codec driven by a message descriptor: the few field kinds the
 * control service uses (string, bool, int32, int64, double, nested messages, repeated messages,
 * `map<string, double>`). The descriptor is a TypeScript constant (control_proto.ts), so
 * `deno compile` needs no `.proto` file at run time and no protobuf library is loaded.
 *
 * Encoding follows the proto3 rules: default values (0, "", false, empty) are not written;
 * negative int32/int64 are ten-byte varints; unknown fields are skipped when decoding (a newer
 * client's extra fields do not break us). Malformed input throws `ProtobufDecodeError`.
 */

export type ScalarType = "string" | "bool" | "int32" | "int64" | "double";

export type FieldType =
  | ScalarType
  | { message: string }
  | { map: "string_double" };

export interface FieldSpec {
  /** The proto field name (snake_case), as in the `.proto` file. */
  proto: string;
  /** The property name in TypeScript values (camelCase, protobuf's JSON name). */
  name: string;
  number: number;
  type: FieldType;
  repeated?: boolean;
}

export type MessageSpecs = Record<string, readonly FieldSpec[]>;

/** Bound on nesting, so a hostile frame cannot recurse without limit. */
const NESTING_MAX = 16;
/** Bound on the elements of one repeated field or map in a decoded message. */
export const REPEATED_MAX = 100_000;

export class ProtobufDecodeError extends Error {
  override name = "ProtobufDecodeError";
}

const WIRE = { VARINT: 0, I64: 1, LEN: 2, I32: 5 } as const;

// ---- writer ---------------------------------------------------------------------------------

class Writer {
  #buf = new Uint8Array(64);
  #len = 0;

  #ensure(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  varint(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    this.#ensure(10);
    while (v >= 0x80n) {
      this.#buf[this.#len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.#buf[this.#len++] = Number(v);
  }

  tag(number: number, wire: number): void {
    this.varint(BigInt((number << 3) | wire));
  }

  bytes(data: Uint8Array): void {
    this.varint(BigInt(data.length));
    this.#ensure(data.length);
    this.#buf.set(data, this.#len);
    this.#len += data.length;
  }

  double(value: number): void {
    this.#ensure(8);
    new DataView(this.#buf.buffer).setFloat64(this.#len, value, true);
    this.#len += 8;
  }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

const TEXT_ENCODER = new TextEncoder();
const TEXT_DECODER = new TextDecoder("utf-8", { fatal: true });

/** Proto3 leaves default scalars and empty repeated fields out; message fields are written. */
function isDefault(value: unknown): boolean {
  return value === undefined || value === null || value === 0 || value === "" ||
    value === false || (Array.isArray(value) && value.length === 0);
}

function writeScalar(w: Writer, field: FieldSpec, type: ScalarType, value: unknown): void {
  switch (type) {
    case "string":
      w.tag(field.number, WIRE.LEN);
      w.bytes(TEXT_ENCODER.encode(String(value)));
      return;
    case "bool":
      w.tag(field.number, WIRE.VARINT);
      w.varint(value ? 1n : 0n);
      return;
    case "int32":
      w.tag(field.number, WIRE.VARINT);
      w.varint(BigInt(Math.trunc(Number(value)) | 0));
      return;
    case "int64":
      w.tag(field.number, WIRE.VARINT);
      w.varint(BigInt(Math.trunc(Number(value))));
      return;
    case "double":
      w.tag(field.number, WIRE.I64);
      w.double(Number(value));
      return;
  }
}

/** Encodes `value` (camelCase properties) as the message `type` of `specs`. */
export function encodeMessage(specs: MessageSpecs, type: string, value: object): Uint8Array {
  const fields = specs[type];
  if (!fields) throw new TypeError(`Unknown protobuf message "${type}"`);
  const w = new Writer();
  const record = value as Record<string, unknown>;
  for (const field of fields) {
    const v = record[field.name];
    if (isDefault(v)) continue;
    const t = field.type;
    if (typeof t === "object" && "map" in t) {
      for (const [key, num] of Object.entries(v as Record<string, number>)) {
        const entry = new Writer();
        if (key !== "") {
          entry.tag(1, WIRE.LEN);
          entry.bytes(TEXT_ENCODER.encode(key));
        }
        if (num !== 0) {
          entry.tag(2, WIRE.I64);
          entry.double(num);
        }
        w.tag(field.number, WIRE.LEN);
        w.bytes(entry.finish());
      }
    } else if (typeof t === "object") {
      const items = field.repeated ? (v as object[]) : [v as object];
      for (const item of items) {
        w.tag(field.number, WIRE.LEN);
        w.bytes(encodeMessage(specs, t.message, item));
      }
    } else if (field.repeated) {
      for (const item of v as unknown[]) writeScalar(w, field, t, item);
    } else {
      writeScalar(w, field, t, v);
    }
  }
  return w.finish();
}

// ---- reader ---------------------------------------------------------------------------------

class Reader {
  readonly #buf: Uint8Array;
  pos = 0;
  constructor(buf: Uint8Array, readonly type: string) {
    this.#buf = buf;
  }

  get done(): boolean {
    return this.pos >= this.#buf.length;
  }

  varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.#buf.length) this.#fail("a varint runs past the end");
      const b = this.#buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
    }
    this.#fail("a varint is longer than ten bytes");
  }

  bytes(): Uint8Array {
    const n = Number(this.varint());
    if (n > this.#buf.length - this.pos) this.#fail("a length-delimited field runs past the end");
    const out = this.#buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  fixed(n: 4 | 8): DataView {
    if (n > this.#buf.length - this.pos) this.#fail("a fixed-width field runs past the end");
    const view = new DataView(this.#buf.buffer, this.#buf.byteOffset + this.pos, n);
    this.pos += n;
    return view;
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE.VARINT:
        this.varint();
        return;
      case WIRE.I64:
        this.fixed(8);
        return;
      case WIRE.LEN:
        this.bytes();
        return;
      case WIRE.I32:
        this.fixed(4);
        return;
      default:
        this.#fail(`unsupported wire type ${wire}`);
    }
  }

  #fail(why: string): never {
    throw new ProtobufDecodeError(`Cannot decode "${this.type}": ${why}`);
  }
}

function readScalar(r: Reader, type: ScalarType, wire: number, what: string): unknown {
  const expected = type === "string" ? WIRE.LEN : type === "double" ? WIRE.I64 : WIRE.VARINT;
  if (wire !== expected) {
    throw new ProtobufDecodeError(
      `Cannot decode "${what}": wire type ${wire}, expected ${expected}`,
    );
  }
  switch (type) {
    case "string":
      try {
        return TEXT_DECODER.decode(r.bytes());
      } catch (err) {
        if (err instanceof ProtobufDecodeError) throw err;
        throw new ProtobufDecodeError(`Cannot decode "${what}": a string is not UTF-8`);
      }
    case "bool":
      return r.varint() !== 0n;
    case "int32":
      return Number(BigInt.asIntN(32, r.varint()));
    case "int64":
      return Number(BigInt.asIntN(64, r.varint()));
    case "double":
      return r.fixed(8).getFloat64(0, true);
  }
}

function defaultOf(field: FieldSpec): unknown {
  const t = field.type;
  if (field.repeated) return [];
  if (typeof t === "object") return "map" in t ? {} : null;
  return t === "string" ? "" : t === "bool" ? false : 0;
}

function decodeMapEntry(bytes: Uint8Array, what: string): [string, number] {
  const r = new Reader(bytes, what);
  let key = "";
  let value = 0;
  while (!r.done) {
    const tag = Number(r.varint());
    const number = tag >>> 3;
    const wire = tag & 7;
    if (number === 1) key = readScalar(r, "string", wire, what) as string;
    else if (number === 2) value = readScalar(r, "double", wire, what) as number;
    else r.skip(wire);
  }
  return [key, value];
}

/** Decodes the message `type`; every field is present in the result (defaults when absent). */
export function decodeMessage<T>(
  specs: MessageSpecs,
  type: string,
  bytes: Uint8Array,
  depth = 0,
): T {
  const fields = specs[type];
  if (!fields) throw new TypeError(`Unknown protobuf message "${type}"`);
  if (depth > NESTING_MAX) {
    throw new ProtobufDecodeError(`Cannot decode "${type}": nested deeper than ${NESTING_MAX}`);
  }
  const out: Record<string, unknown> = {};
  for (const field of fields) out[field.name] = defaultOf(field);
  const byNumber = new Map(fields.map((f) => [f.number, f]));
  const r = new Reader(bytes, type);
  while (!r.done) {
    const tag = Number(r.varint());
    const number = tag >>> 3;
    const wire = tag & 7;
    const field = byNumber.get(number);
    if (!field) {
      r.skip(wire);
      continue;
    }
    const what = `${type}.${field.proto}`;
    const t = field.type;
    if (typeof t === "object") {
      if (wire !== WIRE.LEN) {
        throw new ProtobufDecodeError(`Cannot decode "${what}": wire type ${wire}, expected 2`);
      }
      if ("map" in t) {
        const map = out[field.name] as Record<string, number>;
        if (Object.keys(map).length >= REPEATED_MAX) {
          throw new ProtobufDecodeError(
            `Cannot decode "${what}": more than ${REPEATED_MAX} entries`,
          );
        }
        const [key, value] = decodeMapEntry(r.bytes(), what);
        map[key] = value;
      } else {
        const item = decodeMessage(specs, t.message, r.bytes(), depth + 1);
        if (field.repeated) {
          const list = out[field.name] as unknown[];
          if (list.length >= REPEATED_MAX) {
            throw new ProtobufDecodeError(
              `Cannot decode "${what}": more than ${REPEATED_MAX} elements`,
            );
          }
          list.push(item);
        } else {
          out[field.name] = item;
        }
      }
    } else if (field.repeated) {
      (out[field.name] as unknown[]).push(readScalar(r, t, wire, what));
    } else {
      out[field.name] = readScalar(r, t, wire, what);
    }
  }
  return out as T;
}
