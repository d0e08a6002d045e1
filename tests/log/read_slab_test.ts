import assert from "node:assert/strict";
import {
  joinAdjacent,
  READ_SLAB_BYTES_MAX,
  READ_SLAB_BYTES_MIN,
  ReadSlab,
} from "../../lib/log/wal_reader.ts";

Deno.test("read slab: pieces are disjoint, back to back, in buffers that double up to the cap", () => {
  const slab = new ReadSlab();
  const pieces: Uint8Array[] = [];
  for (let i = 0; i < 2_000; i++) pieces.push(slab.take(1_000 + (i % 7)));
  const sizes = [...new Set(pieces.map((p) => p.buffer))].map((b) => b.byteLength);
  assert.equal(sizes[0], READ_SLAB_BYTES_MIN);
  for (let i = 1; i < sizes.length; i++) {
    assert.equal(sizes[i], Math.min(2 * sizes[i - 1], READ_SLAB_BYTES_MAX));
  }
  // Writing each piece leaves the others intact: no two overlap.
  pieces.forEach((p, i) => p.fill(i & 0xff));
  pieces.forEach((p, i) => assert.ok(p.every((b) => b === (i & 0xff)), `piece ${i}`));
  const used = pieces.reduce((n, p) => n + p.byteLength, 0);
  const allocated = sizes.reduce((n, s) => n + s, 0);
  assert.ok(allocated < 2 * used + READ_SLAB_BYTES_MAX, `${allocated} allocated for ${used}`);
});

Deno.test("read slab: a big piece gets a buffer of its own; one bigger than the next buffer fits", () => {
  const slab = new ReadSlab();
  const big = slab.take(READ_SLAB_BYTES_MAX / 2);
  assert.equal(big.buffer.byteLength, READ_SLAB_BYTES_MAX / 2);
  const first = slab.take(100);
  assert.equal(first.buffer.byteLength, READ_SLAB_BYTES_MIN);
  const wide = slab.take(READ_SLAB_BYTES_MIN * 4);
  assert.equal(wide.byteLength, READ_SLAB_BYTES_MIN * 4);
  assert.notEqual(wide.buffer, first.buffer);
});

Deno.test("read slab: a hint sizes the first buffer; keep moves payloads back to back; joinAdjacent merges them", () => {
  const slab = new ReadSlab(3 * 10_000);
  const header = 40;
  const payloads: Uint8Array[] = [];
  for (let i = 0; i < 3; i++) {
    const piece = slab.take(10_000);
    assert.equal(piece.buffer.byteLength, 30_000, "the hinted buffer");
    piece.fill(0xee, 0, header); // a header, dropped by keep
    piece.fill(i + 1, header);
    payloads.push(slab.keep(piece, piece.subarray(header)));
  }
  const chunks: Uint8Array[] = [];
  for (const p of payloads) joinAdjacent(chunks, p);
  assert.equal(chunks.length, 1, "one view of the three payloads");
  assert.equal(chunks[0].byteLength, 3 * (10_000 - header));
  for (let i = 0; i < 3; i++) {
    const part = chunks[0].subarray(i * (10_000 - header), (i + 1) * (10_000 - header));
    assert.ok(part.every((b) => b === i + 1), `payload ${i} intact after the moves`);
  }
  // Only the last piece taken is moved; an older one keeps its place.
  const a = slab.take(100);
  const b = slab.take(100);
  assert.equal(slab.keep(a, a.subarray(10)).byteOffset, a.byteOffset + 10);
  assert.equal(slab.keep(b, b.subarray(10)).byteOffset, b.byteOffset);
  // Views of different buffers, or with a gap, stay separate.
  const other: Uint8Array[] = [];
  joinAdjacent(other, new Uint8Array(8));
  joinAdjacent(other, new Uint8Array(8));
  const shared = new Uint8Array(32);
  joinAdjacent(other, shared.subarray(0, 8));
  joinAdjacent(other, shared.subarray(9, 16));
  assert.equal(other.length, 4);
});
