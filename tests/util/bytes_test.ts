import assert from "node:assert/strict";
import { coalesceWrites, joinBytes } from "../../lib/util/bytes.ts";

const bytesOf = (...values: number[]) => new Uint8Array(values);

Deno.test("joinBytes: the chunks in order in one new buffer", () => {
  const chunks = [bytesOf(1, 2), bytesOf(), bytesOf(3)];
  const joined = joinBytes(chunks, 3);
  assert.deepEqual(joined, bytesOf(1, 2, 3));
  assert.ok(chunks.every((c) => c.buffer !== joined.buffer), "a copy");
  assert.deepEqual(joinBytes([], 0), bytesOf());
});

Deno.test("coalesceWrites: every byte in order; small runs joined up to the bound, large chunks and lone small ones as they are", () => {
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
    return seed % n;
  };
  const smallMax = 100;
  for (const joinMax of [100, 250, 1_000]) {
    for (let trial = 0; trial < 200; trial++) {
      const chunks = Array.from({ length: random(30) }, () => {
        const sizes = [0, 1, 40, smallMax, smallMax + 1, 3 * joinMax];
        const chunk = new Uint8Array(sizes[random(sizes.length)]);
        for (let i = 0; i < chunk.length; i++) chunk[i] = random(256);
        return chunk;
      });
      const writes = [...coalesceWrites(chunks, smallMax, joinMax)];
      const total = chunks.reduce((n, c) => n + c.length, 0);
      assert.deepEqual(joinBytes(writes, total), joinBytes(chunks, total), `trial ${trial}`);
      // Where each write starts, and the chunk there (empty chunks skipped).
      const starts: number[] = [];
      for (let at = 0, i = 0; i < chunks.length; at += chunks[i].length, i++) starts.push(at);
      const chunkAt = (at: number) => chunks.find((c, i) => starts[i] === at && c.length > 0)!;
      let at = 0;
      writes.forEach((write, w) => {
        assert.ok(write.length > 0, "no empty write");
        const own = chunks.find((c) => c.buffer === write.buffer);
        if (own) {
          assert.equal(own, write, "a chunk as it is, whole");
        } else {
          assert.ok(write.length <= joinMax, `a joined write of ${write.length}`);
          assert.ok(chunkAt(at).length < write.length, "a joined write joins two chunks or more");
        }
        // A run ends only where the next chunk is large or would pass the bound.
        const next = writes[w + 1];
        if (next && write.length <= joinMax && (!own || own.length <= smallMax)) {
          const following = chunkAt(at + write.length);
          assert.ok(
            following.length > smallMax || write.length + following.length > joinMax,
            `write ${w} of ${write.length} could have taken the next ${following.length}`,
          );
        }
        at += write.length;
      });
    }
  }
});

Deno.test("coalesceWrites: 1,000 small chunks are a few writes", () => {
  const chunks = Array.from({ length: 1_000 }, (_, i) => new Uint8Array(100).fill(i & 0xff));
  const writes = [...coalesceWrites(chunks, 64 * 1024, 256 * 1024)];
  assert.deepEqual(writes.map((w) => w.length), [100_000]);
});
