import assert from "node:assert/strict";
import { crc32, crc32c } from "../../lib/protocol/crc32c.ts";

const ascii = (s: string) => new TextEncoder().encode(s);

/** Bit-at-a-time reflected CRC: slow, obviously right, the oracle for the tables. */
function referenceCrc(poly: number, data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of data) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ poly : crc >>> 1;
  }
  return ~crc >>> 0;
}
const refCrc32c = (d: Uint8Array) => referenceCrc(0x82f63b78, d);
const refCrc32 = (d: Uint8Array) => referenceCrc(0xedb88320, d);

/** Seeded xorshift32, so a failure replays. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

Deno.test("crc32c matches the published check values", () => {
  assert.equal(crc32c(ascii("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // RFC 3720 (iSCSI) appendix B.4 vectors.
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
});

Deno.test("crc32 (IEEE) matches the published check value", () => {
  assert.equal(crc32(ascii("123456789")), 0xcbf43926);
  assert.equal(crc32(ascii("The quick brown fox jumps over the lazy dog")), 0x414fa339);
});

Deno.test("crc32c and crc32 agree with the bitwise reference on random data, lengths and alignments", () => {
  const next = prng(0xc0ffee);
  const backing = new Uint8Array(4096 + 16);
  for (let i = 0; i < backing.length; i++) backing[i] = next() & 0xff;
  const lengths = [0, 1, 3, 7, 8, 9, 15, 16, 63, 64, 65, 100, 1000, 4096];
  for (let round = 0; round < 200; round++) lengths.push(next() % 4097);
  for (const length of lengths) {
    const shift = next() % 16; // misaligned views exercise the head loop
    const data = backing.subarray(shift, shift + length);
    assert.equal(crc32c(data), refCrc32c(data), `crc32c length ${length} shift ${shift}`);
    assert.equal(crc32(data), refCrc32(data), `crc32 length ${length} shift ${shift}`);
  }
});

Deno.test("crc32c covers exactly [start, end) and chains through the seed", () => {
  const next = prng(7);
  const data = Uint8Array.from({ length: 777 }, () => next() & 0xff);
  for (let round = 0; round < 100; round++) {
    const a = next() % data.length;
    const b = a + (next() % (data.length - a + 1));
    assert.equal(crc32c(data, a, b), refCrc32c(data.slice(a, b)), `range [${a}, ${b})`);
    const mid = a + Math.floor((b - a) / 2);
    assert.equal(crc32c(data, mid, b, crc32c(data, a, mid)), crc32c(data, a, b));
    assert.equal(crc32(data, mid, b, crc32(data, a, mid)), crc32(data, a, b));
  }
});

Deno.test("crc32c rejects a range outside the data", () => {
  const data = new Uint8Array(10);
  assert.throws(() => crc32c(data, 0, 11), RangeError);
  assert.throws(() => crc32c(data, 5, 4), RangeError);
  assert.throws(() => crc32c(data, -1, 4), RangeError);
  assert.throws(() => crc32(data, 0.5, 4), RangeError);
});
