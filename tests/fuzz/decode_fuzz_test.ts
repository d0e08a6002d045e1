/**
 * Fuzzes the request decoders the way the broker uses them: request header, then the body codec
 * for the header's API key and version. Inputs are seeded random bytes and mutations (bit flips,
 * truncation, corrupted length fields, inserted and deleted bytes) of valid encodings of every
 * request in every version. Only DecodeError may come out, and nothing decoded may be larger than
 * the input (so allocation is bounded by the frame size).
 */

import assert from "node:assert/strict";
import { API_SCHEMA_LIST, apiSchema } from "../../lib/protocol/generated/apis.ts";
import { readRequestHeader, writeRequestHeader } from "../../lib/protocol/headers.ts";
import { DecodeError, Reader, Writer } from "../../lib/protocol/primitives.ts";
import { loadSchemas, randomMessage, Rng } from "../protocol/random_values.ts";

/** Total fuzz cases (bounded, seeded: a failure replays exactly). */
const ITERATIONS = 20_000;
/** Valid samples per request API and version in the seed corpus. */
const SAMPLES_PER_VERSION = 2;
const SEED = 0x6b616673;
/** Largest purely random input. */
const MAX_RANDOM_BYTES = 96;

interface Frame {
  bytes: Uint8Array;
  /** Where the body starts (after the request header). */
  bodyStart: number;
}

function buildCorpus(rng: Rng): Frame[] {
  const schemas = loadSchemas();
  const corpus: Frame[] = [];
  for (const api of API_SCHEMA_LIST) {
    const schema = schemas.get(api.request.name);
    assert.ok(schema, api.request.name);
    for (let v = api.minVersion; v <= api.maxVersion; v++) {
      for (let i = 0; i < SAMPLES_PER_VERSION; i++) {
        const w = new Writer();
        writeRequestHeader(w, {
          requestApiKey: api.apiKey,
          requestApiVersion: v,
          correlationId: rng.int(0, 1000),
          clientId: rng.chance(0.2) ? null : "fuzz",
        });
        const bodyStart = w.length;
        api.request.write(w, randomMessage(schema, v, rng).value, v);
        corpus.push({ bytes: w.finishBytes().slice(), bodyStart });
      }
    }
  }
  return corpus;
}

/** What the broker does with a frame: header, then the body if the API and version are known. */
function decodeFrame(frame: Uint8Array): unknown[] {
  const r = new Reader(frame);
  const header = readRequestHeader(r);
  const api = apiSchema(header.requestApiKey);
  if (
    api === undefined || header.requestApiVersion < api.minVersion ||
    header.requestApiVersion > api.maxVersion
  ) {
    return [header];
  }
  return [header, api.request.read(r, header.requestApiVersion)];
}

const UUID_TEXT_LENGTH = 22;

/** Asserts no array, byte array or string in `value` is longer than `limit`. */
function assertBounded(value: unknown, limit: number, path = "$", depth = 0): void {
  assert.ok(depth < 32, `${path}: nesting too deep`);
  if (value === null || typeof value !== "object") {
    // A UUID absent at the decoded version is the zero UUID's 22 characters, whatever the input.
    const max = Math.max(limit, UUID_TEXT_LENGTH);
    if (typeof value === "string") assert.ok(value.length <= max, `${path}: string too long`);
    return;
  }
  if (value instanceof Uint8Array) {
    assert.ok(value.length <= limit, `${path}: ${value.length} bytes from a ${limit}-byte input`);
    return;
  }
  if (Array.isArray(value)) {
    assert.ok(value.length <= limit, `${path}: ${value.length} items from a ${limit}-byte input`);
    value.forEach((v, i) => assertBounded(v, limit, `${path}[${i}]`, depth + 1));
    return;
  }
  for (const [k, v] of Object.entries(value)) assertBounded(v, limit, `${path}.${k}`, depth + 1);
}

const LENGTH_PATTERNS: readonly number[][] = [
  [0xff, 0xff, 0xff, 0xff],
  [0x7f, 0xff, 0xff, 0xff],
  [0x80, 0x00, 0x00, 0x00],
  [0x00, 0x00, 0xff, 0xff],
  [0x7f, 0xff],
  [0xff, 0xfe],
  [0xff, 0xff, 0xff, 0xff, 0x0f],
  [0xfe, 0xff, 0xff, 0xff, 0x07],
  [0x00],
  [0x01],
];

function mutate(rng: Rng, frame: Frame): Uint8Array {
  const b = frame.bytes.slice();
  const kind = rng.int(0, 5);
  // Mostly mutate the body so the header still routes to a body decoder.
  const pos = () =>
    b.length === 0
      ? 0
      : rng.chance(0.9) && frame.bodyStart < b.length
      ? rng.int(frame.bodyStart, b.length - 1)
      : rng.int(0, b.length - 1);
  switch (kind) {
    case 0: { // bit flips
      for (let i = rng.int(1, 4); i > 0 && b.length > 0; i--) b[pos()] ^= 1 << rng.int(0, 7);
      return b;
    }
    case 1: // truncation
      return b.subarray(0, rng.int(0, b.length));
    case 2: { // corrupted length field
      const pattern = rng.pick(LENGTH_PATTERNS);
      const at = pos();
      for (let i = 0; i < pattern.length && at + i < b.length; i++) b[at + i] = pattern[i];
      return b;
    }
    case 3: { // inserted bytes
      const at = pos();
      const extra = rng.bytes(rng.int(1, 8));
      const out = new Uint8Array(b.length + extra.length);
      out.set(b.subarray(0, at));
      out.set(extra, at);
      out.set(b.subarray(at), at + extra.length);
      return out;
    }
    case 4: { // deleted bytes
      if (b.length === 0) return b;
      const at = pos();
      const n = rng.int(1, Math.min(8, b.length - at));
      const out = new Uint8Array(b.length - n);
      out.set(b.subarray(0, at));
      out.set(b.subarray(at + n), at);
      return out;
    }
    default: { // random bytes behind a valid header
      const tail = rng.bytes(rng.int(0, MAX_RANDOM_BYTES));
      const out = new Uint8Array(frame.bodyStart + tail.length);
      out.set(b.subarray(0, frame.bodyStart));
      out.set(tail, frame.bodyStart);
      return out;
    }
  }
}

Deno.test("fuzz: valid corpus decodes cleanly", () => {
  const corpus = buildCorpus(new Rng(SEED));
  assert.ok(corpus.length > 300);
  for (const frame of corpus) {
    const decoded = decodeFrame(frame.bytes);
    assert.equal(decoded.length, 2, "header and body");
    assertBounded(decoded, frame.bytes.length);
  }
});

Deno.test(`fuzz: ${ITERATIONS} mutated and random request frames`, () => {
  const rng = new Rng(SEED + 1);
  const corpus = buildCorpus(rng);
  let rejected = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const input = rng.chance(0.05)
      ? rng.bytes(rng.int(0, MAX_RANDOM_BYTES))
      : mutate(rng, rng.pick(corpus));
    try {
      assertBounded(decodeFrame(input), input.length);
    } catch (err) {
      if (err instanceof DecodeError) {
        rejected++;
        continue;
      }
      const hex = Array.from(input, (x) => x.toString(16).padStart(2, "0")).join("");
      throw new Error(`Case ${i} threw ${(err as Error).stack}\ninput: ${hex}`);
    }
  }
  // Sanity: the mutations do hit the error paths (and not only them).
  assert.ok(rejected > ITERATIONS / 10, `only ${rejected} inputs were rejected`);
  assert.ok(rejected < ITERATIONS, "every input was rejected");
});

Deno.test("fuzz: bodies fed to every decoder at every version, including unknown ones", () => {
  const rng = new Rng(SEED + 2);
  for (const api of API_SCHEMA_LIST) {
    for (const codec of [api.request, api.response]) {
      for (let v = -1; v <= api.maxVersion + 1; v++) {
        for (let i = 0; i < 20; i++) {
          const input = rng.bytes(rng.int(0, 48));
          try {
            assertBounded(codec.read(new Reader(input), v), input.length);
          } catch (err) {
            if (!(err instanceof DecodeError)) throw err;
          }
        }
      }
    }
  }
});
