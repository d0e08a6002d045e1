import assert from "node:assert/strict";
import { READ_SLAB_BYTES_MAX, READ_SLAB_BYTES_MIN, ReadSlab } from "../../lib/log/wal_reader.ts";

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
