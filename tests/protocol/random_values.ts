/**
 * Test helper: seeded random values for any generated Kafka message, built straight from the JSON
 * schemas (independently of scripts/gen_protocol.ts's code model), together with the value a
 * decoder must return after a round trip at a given version (absent fields -> schema defaults,
 * unknown tagged fields only in flexible versions).
 */

import { fileURLToPath } from "node:url";
import { defaultNewerSchemasDir, loadSchemaSet } from "../../scripts/gen_protocol.ts";
import { bytesToUuid, ZERO_UUID } from "../../lib/protocol/primitives.ts";

export const SCHEMAS_DIR = fileURLToPath(
  new URL("../../../shared/kafka-protocol/messages", import.meta.url),
);
/** Kafka 4.4 schemas, merged over SCHEMAS_DIR as the generator does. */
export const NEWER_SCHEMAS_DIR = defaultNewerSchemasDir();

/** Largest array the generator builds (keeps values small and the tests fast). */
const MAX_ARRAY_ITEMS = 3;
/** Largest string length in UTF-16 units. */
const MAX_STRING_CHARS = 12;
/** Records payloads are sometimes this big, to exercise Writer.bytesRef chunks. */
const BIG_RECORDS_BYTES = 5000;
/** Unknown tagged fields use tags from here up, clear of every known tag. */
const UNKNOWN_TAG_BASE = 1000;

export interface RawField {
  name: string;
  type: string;
  versions?: string;
  nullableVersions?: string;
  taggedVersions?: string;
  tag?: number;
  flexibleVersions?: string;
  default?: string | number | boolean;
  fields?: RawField[];
}

export interface Schema {
  name: string;
  apiKey?: number;
  type: string;
  validVersions: string;
  flexibleVersions: string;
  fields: RawField[];
  structs: Map<string, RawField[]>;
}

/** mulberry32: small, fast, seedable. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }
}

export function loadSchemas(
  dir = SCHEMAS_DIR,
  newerDir: string | undefined = NEWER_SCHEMAS_DIR,
): Map<string, Schema> {
  const out = new Map<string, Schema>();
  for (const { raw: r } of loadSchemaSet(dir, newerDir).raws.values()) {
    const raw = r as unknown as Schema & { commonStructs?: { name: string; fields: RawField[] }[] };
    const structs = new Map<string, RawField[]>();
    const collect = (fields: RawField[]) => {
      for (const f of fields) {
        if (f.fields !== undefined) {
          structs.set(f.type.replace(/^\[\]/, ""), f.fields);
          collect(f.fields);
        }
      }
    };
    collect(raw.fields);
    for (const c of raw.commonStructs ?? []) {
      structs.set(c.name, c.fields);
      collect(c.fields);
    }
    out.set(raw.name, { ...raw, structs });
  }
  return out;
}

/** Whether `v` is in a Kafka version spec ("3+", "0-2", "5", "none"). */
export function inVersions(spec: string | undefined, v: number): boolean {
  if (spec === undefined || spec === "none" || spec === "") return false;
  let m = /^(\d+)\+$/.exec(spec);
  if (m) return v >= +m[1];
  m = /^(\d+)-(\d+)$/.exec(spec);
  if (m) return v >= +m[1] && v <= +m[2];
  return v === +spec;
}

export function versionRange(spec: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(spec);
  if (!m) throw new Error(`Bad validVersions "${spec}"`);
  return [+m[1], m[2] === undefined ? +m[1] : +m[2]];
}

function camel(name: string): string {
  return name[0].toLowerCase() + name.slice(1);
}

const PRIMITIVE = new Set([
  "int8",
  "int16",
  "int32",
  "int64",
  "uint16",
  "float64",
  "bool",
  "string",
  "bytes",
  "records",
  "uuid",
]);

/** Kafka's default for a field (org.apache.kafka.message.FieldSpec semantics). */
export function fieldDefault(schema: Schema, f: RawField): unknown {
  const d = f.default;
  if (f.type.startsWith("[]")) return d === "null" ? null : [];
  if (!PRIMITIVE.has(f.type)) {
    return d === "null" ? null : structDefault(schema, f.type);
  }
  switch (f.type) {
    case "bool":
      return d === true || d === "true";
    case "string":
      return d === "null" ? null : d === undefined ? "" : String(d);
    case "uuid":
      return d === undefined || d === "" ? ZERO_UUID : String(d);
    case "bytes":
      return d === "null" ? null : new Uint8Array(0);
    case "records":
      return null;
    default:
      if (d === undefined || d === "") return 0;
      if (typeof d === "number") return d;
      return /^-?0x/i.test(String(d)) ? Number.parseInt(String(d), 16) : Number(d);
  }
}

function structDefault(schema: Schema, name: string): Record<string, unknown> {
  const fields = schema.structs.get(name);
  if (fields === undefined) throw new Error(`Unknown struct "${name}" in ${schema.name}`);
  const o: Record<string, unknown> = {};
  for (const f of fields) o[camel(f.name)] = fieldDefault(schema, f);
  return o;
}

const SAMPLE_CHARS = ["a", "Z", "0", "-", "_", " ", "é", "ß", "中", "😀", "\u0000", "/"];

function randomString(rng: Rng): string {
  const n = rng.int(0, MAX_STRING_CHARS);
  let s = "";
  for (let i = 0; i < n; i++) s += rng.pick(SAMPLE_CHARS);
  return s;
}

const INT64_EDGES = [
  0,
  -1,
  1,
  Number.MAX_SAFE_INTEGER,
  -Number.MAX_SAFE_INTEGER,
  2 ** 32,
  -(2 ** 32),
];

function randomScalar(rng: Rng, type: string): unknown {
  switch (type) {
    case "int8":
      return rng.int(-128, 127);
    case "int16":
      return rng.int(-32768, 32767);
    case "uint16":
      return rng.int(0, 65535);
    case "int32":
      return rng.chance(0.2) ? rng.pick([0, -1, 2147483647, -2147483648]) : rng.int(-2e9, 2e9);
    case "int64":
      return rng.chance(0.3)
        ? rng.pick(INT64_EDGES)
        : rng.int(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    case "float64":
      return rng.chance(0.2) ? rng.pick([0, -1.5, 1e300, Number.EPSILON]) : rng.next() * 1e6;
    case "bool":
      return rng.chance(0.5);
    case "string":
      return randomString(rng);
    case "uuid":
      return rng.chance(0.2) ? ZERO_UUID : bytesToUuid(rng.bytes(16));
    case "bytes":
      return rng.bytes(rng.int(0, 16));
    case "records":
      return rng.bytes(rng.chance(0.1) ? BIG_RECORDS_BYTES : rng.int(0, 40));
  }
  throw new Error(`Unknown type "${type}"`);
}

/** A random value for a message (`value`) and what decoding its encoding must give (`expected`). */
export interface Sample {
  value: Record<string, unknown>;
  expected: Record<string, unknown>;
}

export function randomMessage(schema: Schema, version: number, rng: Rng): Sample {
  return randomStruct(schema, schema.fields, version, rng);
}

function isFlexible(schema: Schema, version: number): boolean {
  return inVersions(schema.flexibleVersions, version);
}

function randomStruct(schema: Schema, fields: RawField[], version: number, rng: Rng): Sample {
  const value: Record<string, unknown> = {};
  const expected: Record<string, unknown> = {};
  for (const f of fields) {
    const prop = camel(f.name);
    const present = inVersions(f.versions, version);
    const tagged = inVersions(f.taggedVersions, version);
    if (!present) {
      // Writers must ignore fields absent in the version; readers fill in the default.
      if (rng.chance(0.5)) value[prop] = randomField(schema, f, version, rng, true).value;
      expected[prop] = fieldDefault(schema, f);
      continue;
    }
    if (tagged && rng.chance(0.3)) {
      // Left out (undefined) or explicitly the default: both mean "not sent".
      if (rng.chance(0.5)) value[prop] = fieldDefault(schema, f);
      expected[prop] = fieldDefault(schema, f);
      continue;
    }
    const s = randomField(schema, f, version, rng, false);
    value[prop] = s.value;
    expected[prop] = s.expected;
  }
  if (isFlexible(schema, version) && rng.chance(0.3)) {
    const unknown = [];
    let tag = UNKNOWN_TAG_BASE + rng.int(0, 5);
    for (let i = rng.int(1, 2); i > 0; i--) {
      unknown.push({ tag, data: rng.bytes(rng.int(0, 6)) });
      tag += rng.int(1, 100);
    }
    value._unknownTaggedFields = unknown;
    expected._unknownTaggedFields = unknown;
  }
  return { value, expected };
}

function randomField(
  schema: Schema,
  f: RawField,
  version: number,
  rng: Rng,
  anyNull: boolean,
): { value: unknown; expected: unknown } {
  const nullable = anyNull ? f.nullableVersions !== undefined : inVersions(
    f.nullableVersions,
    version,
  );
  if (nullable && rng.chance(0.2)) return { value: null, expected: null };
  if (f.type.startsWith("[]")) {
    const elem = f.type.slice(2);
    const value: unknown[] = [];
    const expected: unknown[] = [];
    for (let i = rng.int(0, MAX_ARRAY_ITEMS); i > 0; i--) {
      if (PRIMITIVE.has(elem)) {
        const v = randomScalar(rng, elem);
        value.push(v);
        expected.push(v);
      } else {
        const s = randomStruct(schema, structFields(schema, elem), version, rng);
        value.push(s.value);
        expected.push(s.expected);
      }
    }
    return { value, expected };
  }
  if (PRIMITIVE.has(f.type)) {
    const v = randomScalar(rng, f.type);
    return { value: v, expected: v };
  }
  return randomStruct(schema, structFields(schema, f.type), version, rng);
}

function structFields(schema: Schema, name: string): RawField[] {
  const fields = schema.structs.get(name);
  if (fields === undefined) throw new Error(`Unknown struct "${name}" in ${schema.name}`);
  return fields;
}
