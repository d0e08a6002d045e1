import assert from "node:assert/strict";
import { crc32c, crc32cCombine } from "../../lib/protocol/crc32c.ts";

Deno.test("crc32cCombine equals the CRC of the concatenation", () => {
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296;
  for (const [la, lb] of [[0, 0], [0, 7], [9, 0], [1, 1], [21, 65_515], [1000, 3], [4096, 4096]]) {
    const a = Uint8Array.from({ length: la }, () => Math.floor(rand() * 256));
    const b = Uint8Array.from({ length: lb }, () => Math.floor(rand() * 256));
    const ab = new Uint8Array(la + lb);
    ab.set(a);
    ab.set(b, la);
    assert.equal(crc32cCombine(crc32c(a), crc32c(b), lb), crc32c(ab), `${la}+${lb}`);
  }
});

Deno.test("crc32cCombine folds many pieces like one pass", () => {
  const data = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 31 + 7) & 0xff);
  let acc = 0;
  for (let pos = 0; pos < data.length;) {
    const len = Math.min(data.length - pos, 1 + ((pos * 13) % 977));
    acc = crc32cCombine(acc, crc32c(data, pos, pos + len), len);
    pos += len;
  }
  assert.equal(acc, crc32c(data));
});
