import assert from "node:assert/strict";
import {
  bytesToUuid,
  DecodeError,
  randomUuid,
  Reader,
  utf8Length,
  uuidToBytes,
  Writer,
  WRITER_REF_MIN_BYTES,
  ZERO_UUID,
} from "../../lib/protocol/primitives.ts";

function bytesOf(write: (w: Writer) => void, initial?: number): Uint8Array {
  const w = new Writer(initial);
  write(w);
  return w.finishBytes();
}

function readerOf(bytes: number[] | Uint8Array): Reader {
  return new Reader(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes));
}

Deno.test("fixed-width integers are big-endian and round-trip at their limits", () => {
  const b = bytesOf((w) => {
    w.int8(-128);
    w.int8(127);
    w.int16(-32768);
    w.int16(32767);
    w.uint16(65535);
    w.int32(-2147483648);
    w.int32(2147483647);
    w.uint32(4294967295);
  });
  assert.deepStrictEqual(
    b,
    Uint8Array.from([
      0x80,
      0x7f,
      0x80,
      0,
      0x7f,
      0xff,
      0xff,
      0xff,
      0x80,
      0,
      0,
      0,
      0x7f,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
    ]),
  );
  const r = readerOf(b);
  assert.equal(r.int8(), -128);
  assert.equal(r.int8(), 127);
  assert.equal(r.int16(), -32768);
  assert.equal(r.int16(), 32767);
  assert.equal(r.uint16(), 65535);
  assert.equal(r.int32(), -2147483648);
  assert.equal(r.int32(), 2147483647);
  assert.equal(r.uint32(), 4294967295);
  assert.equal(r.remaining(), 0);
});

Deno.test("int64 is exact within ±2^53", () => {
  const values = [
    0,
    1,
    -1,
    2 ** 31,
    -(2 ** 31) - 1,
    2 ** 32,
    2 ** 32 + 1,
    -(2 ** 32) - 1,
    Number.MAX_SAFE_INTEGER,
    -Number.MAX_SAFE_INTEGER,
    2 ** 53,
    -(2 ** 53),
  ];
  for (const v of values) {
    const b = bytesOf((w) => w.int64(v));
    assert.equal(b.length, 8);
    assert.equal(new DataView(b.buffer).getBigInt64(0), BigInt(v), `encode ${v}`);
    assert.equal(readerOf(b).int64(), v, `decode ${v}`);
  }
  // Beyond 2^53 the value is the nearest double, never an error.
  const big = new Uint8Array(8);
  new DataView(big.buffer).setBigInt64(0, 2n ** 62n + 1n);
  assert.equal(readerOf(big).int64(), 2 ** 62);
  new DataView(big.buffer).setBigInt64(0, -(2n ** 63n));
  assert.equal(readerOf(big).int64(), -(2 ** 63));
});

Deno.test("float64 and bool", () => {
  const b = bytesOf((w) => {
    w.float64(-1.5);
    w.float64(Number.NaN);
    w.bool(true);
    w.bool(false);
  });
  const r = readerOf(b);
  assert.equal(r.float64(), -1.5);
  assert.ok(Number.isNaN(r.float64()));
  assert.equal(r.bool(), true);
  assert.equal(r.bool(), false);
  assert.equal(readerOf([2]).bool(), true, "any non-zero byte is true");
});

Deno.test("unsigned varints: encodings and the 32-bit maximum", () => {
  const cases: [number, number[]][] = [
    [0, [0]],
    [1, [1]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [300, [0xac, 0x02]],
    [16383, [0xff, 0x7f]],
    [16384, [0x80, 0x80, 0x01]],
    [2147483647, [0xff, 0xff, 0xff, 0xff, 0x07]],
    [4294967295, [0xff, 0xff, 0xff, 0xff, 0x0f]],
  ];
  for (const [v, enc] of cases) {
    assert.deepStrictEqual(bytesOf((w) => w.uvarint(v)), Uint8Array.from(enc), `encode ${v}`);
    const r = readerOf(enc);
    assert.equal(r.uvarint(), v, `decode ${v}`);
    assert.equal(r.remaining(), 0);
  }
  assert.throws(() => readerOf([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).uvarint(), DecodeError);
  assert.throws(() => readerOf([0xff, 0xff, 0xff, 0xff, 0x1f]).uvarint(), DecodeError);
  assert.throws(() => readerOf([0x80, 0x80]).uvarint(), DecodeError);
  assert.throws(() => readerOf([]).uvarint(), DecodeError);
});

Deno.test("zigzag varints: negative values and int32 limits", () => {
  const cases: [number, number[]][] = [
    [0, [0]],
    [-1, [1]],
    [1, [2]],
    [-2, [3]],
    [-64, [0x7f]],
    [64, [0x80, 0x01]],
    [2147483647, [0xfe, 0xff, 0xff, 0xff, 0x0f]],
    [-2147483648, [0xff, 0xff, 0xff, 0xff, 0x0f]],
  ];
  for (const [v, enc] of cases) {
    assert.deepStrictEqual(bytesOf((w) => w.varint(v)), Uint8Array.from(enc), `encode ${v}`);
    assert.equal(readerOf(enc).varint(), v, `decode ${v}`);
  }
});

Deno.test("zigzag varlongs are exact within ±2^53", () => {
  const values = [
    0,
    -1,
    1,
    63,
    -64,
    64,
    2 ** 31,
    -(2 ** 31) - 1,
    2 ** 35 + 3,
    -(2 ** 40) + 7,
    Number.MAX_SAFE_INTEGER,
    -Number.MAX_SAFE_INTEGER,
    -(2 ** 53),
  ];
  for (const v of values) {
    const b = bytesOf((w) => w.varlong(v));
    // Reference zigzag encoding with BigInt.
    let z = BigInt(v) >= 0n ? BigInt(v) << 1n : ((-BigInt(v)) << 1n) - 1n;
    const ref: number[] = [];
    while (z >= 0x80n) {
      ref.push(Number(z & 0x7fn) | 0x80);
      z >>= 7n;
    }
    ref.push(Number(z));
    assert.deepStrictEqual(b, Uint8Array.from(ref), `encode ${v}`);
    const r = readerOf(b);
    assert.equal(r.varlong(), v, `decode ${v}`);
    assert.equal(r.remaining(), 0);
  }
  // Long.MIN_VALUE (10 bytes) decodes to the nearest double.
  const min = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
  assert.equal(readerOf(min).varlong(), -(2 ** 63));
  assert.throws(() => readerOf([...min.slice(0, 9).map(() => 0xff), 0xff, 0x01]).varlong(), {
    name: "DecodeError",
  });
  assert.throws(() => readerOf([0x80]).varlong(), DecodeError);
});

Deno.test("strings: classic, compact, nullable, empty and multi-byte", () => {
  const b = bytesOf((w) => {
    w.string("");
    w.string("héllo 😀");
    w.nullableString(null);
    w.nullableString("x");
    w.compactString("");
    w.compactString("中文");
    w.compactNullableString(null);
    w.compactNullableString("y");
  });
  const r = readerOf(b);
  assert.equal(r.string(), "");
  assert.equal(r.string(), "héllo 😀");
  assert.equal(r.nullableString(), null);
  assert.equal(r.nullableString(), "x");
  assert.equal(r.compactString(), "");
  assert.equal(r.compactString(), "中文");
  assert.equal(r.compactNullableString(), null);
  assert.equal(r.compactNullableString(), "y");
  assert.equal(r.remaining(), 0);
  assert.deepStrictEqual(bytesOf((w) => w.string("ab")), Uint8Array.from([0, 2, 0x61, 0x62]));
  assert.deepStrictEqual(bytesOf((w) => w.nullableString(null)), Uint8Array.from([0xff, 0xff]));
  assert.deepStrictEqual(bytesOf((w) => w.compactString("ab")), Uint8Array.from([3, 0x61, 0x62]));
  assert.deepStrictEqual(bytesOf((w) => w.compactNullableString(null)), Uint8Array.from([0]));
  // Non-nullable readers reject a null length.
  assert.throws(() => readerOf([0xff, 0xff]).string(), DecodeError);
  assert.throws(() => readerOf([0]).compactString(), DecodeError);
  assert.throws(() => bytesOf((w) => w.string("x".repeat(0x8000))), RangeError);
});

Deno.test("utf8Length matches TextEncoder, lone surrogates included", () => {
  for (const s of ["", "abc", "é", "中", "😀", "a\ud800b", "\udc00", "x\ud83d", "\u0000"]) {
    assert.equal(utf8Length(s), new TextEncoder().encode(s).length, JSON.stringify(s));
    assert.equal(
      readerOf(bytesOf((w) => w.string(s))).string(),
      new TextDecoder().decode(
        new TextEncoder().encode(s),
      ),
    );
  }
});

Deno.test("bytes: copies by default, views on request", () => {
  const b = bytesOf((w) => {
    w.bytes(Uint8Array.from([1, 2]));
    w.nullableBytes(null);
    w.compactBytes(new Uint8Array(0));
    w.compactNullableBytes(null);
    w.nullableBytesRef(Uint8Array.from([9]));
    w.compactNullableBytesRef(null);
  });
  const r = readerOf(b);
  const copied = r.bytes();
  assert.deepStrictEqual(copied, Uint8Array.from([1, 2]));
  assert.notEqual(copied.buffer, b.buffer);
  assert.equal(r.nullableBytes(), null);
  assert.deepStrictEqual(r.compactBytes(), new Uint8Array(0));
  assert.equal(r.compactNullableBytes(), null);
  const view = r.nullableBytesView();
  assert.deepStrictEqual(view, Uint8Array.from([9]));
  assert.equal(view?.buffer, b.buffer);
  assert.equal(r.compactNullableBytesView(), null);
  assert.equal(r.remaining(), 0);
  const raw = readerOf(b).raw(3);
  assert.equal(raw.buffer, b.buffer, "raw() is a view");
});

Deno.test("uuids: Kafka's base64url form", () => {
  assert.equal(ZERO_UUID, "AAAAAAAAAAAAAAAAAAAAAA");
  assert.equal(bytesToUuid(new Uint8Array(16)), ZERO_UUID);
  const one = new Uint8Array(16);
  one[15] = 1;
  assert.equal(bytesToUuid(one), "AAAAAAAAAAAAAAAAAAAAAQ");
  const ff = new Uint8Array(16).fill(0xff);
  assert.equal(bytesToUuid(ff), "_____________________w");
  assert.deepStrictEqual(uuidToBytes("_____________________w"), ff);
  for (let i = 0; i < 50; i++) {
    const u = randomUuid();
    assert.equal(u.length, 22);
    assert.notEqual(u[0], "-");
    assert.equal(bytesToUuid(uuidToBytes(u)), u);
    const r = readerOf(bytesOf((w) => w.uuid(u)));
    assert.equal(r.uuid(), u);
  }
  for (
    const bad of ["", "AAAA", "AAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAB", "é".repeat(22)]
  ) {
    assert.throws(() => uuidToBytes(bad), TypeError, bad);
  }
  assert.throws(() => readerOf(new Uint8Array(15)).uuid(), DecodeError);
});

Deno.test("array lengths: null, compact, and counts larger than the input", () => {
  const b = bytesOf((w) => {
    w.arrayLength(-1);
    w.arrayLength(0);
    w.compactArrayLength(-1);
    w.compactArrayLength(2);
    w.int8(0);
    w.int8(0);
  });
  const r = readerOf(b);
  assert.equal(r.arrayLength(), -1);
  assert.equal(r.arrayLength(), 0);
  assert.equal(r.compactArrayLength(), -1);
  assert.equal(r.compactArrayLength(), 2);
  // A count above the remaining bytes is rejected before anything is allocated.
  assert.throws(() => readerOf([0x7f, 0xff, 0xff, 0xff]).arrayLength(), DecodeError);
  assert.throws(() => readerOf([0xff, 0xff, 0xff, 0xff, 0x0f]).compactArrayLength(), DecodeError);
  assert.throws(() => readerOf([0, 0, 0, 2, 0]).arrayLength(), DecodeError);
});

Deno.test("huge declared lengths fail fast without allocating", () => {
  const before = Deno.memoryUsage().rss;
  for (let i = 0; i < 1000; i++) {
    assert.throws(() => readerOf([0x7f, 0xff, 0xff, 0xff]).bytes(), DecodeError);
    assert.throws(() => readerOf([0x7f, 0xff]).string(), DecodeError);
    assert.throws(() => readerOf([0xff, 0xff, 0xff, 0xff, 0x07]).compactBytes(), DecodeError);
    assert.throws(() => readerOf([0xff, 0xff, 0xff, 0xff, 0x07]).compactString(), DecodeError);
    assert.throws(() => readerOf([0xff, 0xff, 0xff, 0xff, 0x07]).taggedFieldCount(), DecodeError);
  }
  // 1000 allocations of 2 GiB would be impossible; allow generous noise.
  assert.ok(Deno.memoryUsage().rss - before < 256 * 1024 * 1024);
});

Deno.test("truncation anywhere throws DecodeError, never RangeError", () => {
  const full = bytesOf((w) => {
    w.int8(1);
    w.int16(2);
    w.int32(3);
    w.int64(4);
    w.uuid(randomUuid());
    w.string("abc");
    w.compactString("abc");
    w.bytes(Uint8Array.from([1, 2, 3]));
    w.varlong(-12345678901);
    w.float64(1.25);
  });
  const readAll = (r: Reader) => {
    r.int8();
    r.int16();
    r.int32();
    r.int64();
    r.uuid();
    r.string();
    r.compactString();
    r.bytes();
    r.varlong();
    r.float64();
  };
  readAll(readerOf(full));
  for (let n = 0; n < full.length; n++) {
    assert.throws(() => readAll(readerOf(full.subarray(0, n))), DecodeError, `cut at ${n}`);
  }
});

Deno.test("tagged field sizes are bounded by the input", () => {
  const r = readerOf([5, 1, 2]);
  assert.throws(() => r.taggedFieldEnd(), DecodeError);
  const ok = readerOf([2, 9, 9]);
  const end = ok.taggedFieldEnd();
  assert.equal(end, 3);
  ok.int8();
  ok.endTaggedField(end);
  assert.equal(ok.remaining(), 0);
  const over = readerOf([1, 9, 9]);
  const overEnd = over.taggedFieldEnd();
  over.int16();
  assert.throws(() => over.endTaggedField(overEnd), DecodeError);
});

Deno.test("Writer grows, chunks large payloads by reference and patches reserved sizes", () => {
  const w = new Writer(16);
  const size = w.reserveInt32();
  for (let i = 0; i < 100; i++) w.int32(i);
  const big = new Uint8Array(WRITER_REF_MIN_BYTES).fill(3);
  w.bytesRef(big);
  const small = Uint8Array.from([1, 2, 3]);
  w.bytesRef(small);
  w.int16(-1);
  w.patchInt32(size, w.length - 4);
  const chunks = w.finish();
  assert.equal(chunks.length, 3);
  assert.equal(chunks[1], big, "large payload referenced, not copied");
  assert.equal(w.length, 4 + 400 + big.length + 3 + 2);
  const all = w.finishBytes();
  assert.equal(all.length, w.length);
  const r = new Reader(all);
  assert.equal(r.int32(), w.length - 4);
  for (let i = 0; i < 100; i++) assert.equal(r.int32(), i);
  assert.deepStrictEqual(r.raw(big.length), big);
  assert.deepStrictEqual(r.raw(3), small);
  assert.equal(r.int16(), -1);
  // Patching a position that is now in an earlier chunk still works.
  w.patchInt32(4, 0x01020304);
  assert.deepStrictEqual(w.finishBytes().subarray(4, 8), Uint8Array.from([1, 2, 3, 4]));
  assert.throws(() => w.patchInt32(w.length - 2, 0), RangeError);
});

Deno.test("Writer output is independent of its initial size", () => {
  const write = (w: Writer) => {
    for (let i = 0; i < 300; i++) {
      w.compactString(`s${i}`);
      w.varlong(i * 1e9);
      w.uvarint(i * 1000);
    }
  };
  assert.deepStrictEqual(bytesOf(write, 16), bytesOf(write, 1 << 16));
});
