/** The compactor's bounded key map: exact byte keys, the byte budget, progress with a tiny budget. */

import assert from "node:assert/strict";
import {
  KEY_MAP_ENTRY_OVERHEAD_BYTES,
  KeyOffsetMap,
} from "../../../lib/log/compaction/key_offset_map.ts";

Deno.test("keys are compared byte for byte, long and high-byte keys included", () => {
  const map = new KeyOffsetMap(1 << 20);
  const keys = [
    new Uint8Array([]),
    new Uint8Array([0]),
    new Uint8Array([0, 0]),
    new Uint8Array([0x80, 0xff]),
    new Uint8Array([0xff, 0x80]),
    new Uint8Array(100).fill(0xc3),
    new Uint8Array(20_000).fill(7),
    (() => {
      const k = new Uint8Array(20_000).fill(7);
      k[19_999] = 8;
      return k;
    })(),
  ];
  keys.forEach((k, i) => assert.ok(map.put(k, i)));
  assert.equal(map.size, keys.length);
  keys.forEach((k, i) => assert.equal(map.get(k.slice()), i));
  assert.equal(map.get(new Uint8Array([0x80])), undefined);
  map.put(keys[3], 99);
  assert.equal(map.get(keys[3]), 99);
  assert.equal(map.size, keys.length);
});

Deno.test("the byte budget: key bytes plus the entry overhead; a full map refuses new keys only", () => {
  const cost = 3 + KEY_MAP_ENTRY_OVERHEAD_BYTES;
  const map = new KeyOffsetMap(cost * 2);
  assert.ok(map.put(new Uint8Array([1, 1, 1]), 1));
  assert.ok(map.put(new Uint8Array([2, 2, 2]), 2));
  assert.equal(map.usedBytes, cost * 2);
  assert.equal(map.put(new Uint8Array([3, 3, 3]), 3), false);
  assert.ok(map.put(new Uint8Array([1, 1, 1]), 4), "an existing key is updated when full");
  assert.equal(map.get(new Uint8Array([1, 1, 1])), 4);
  map.clear();
  assert.equal(map.size, 0);
  assert.equal(map.usedBytes, 0);
});

Deno.test("one key is always admitted, so a pass always makes progress", () => {
  const map = new KeyOffsetMap(1);
  assert.ok(map.put(new Uint8Array(1000), 0));
  assert.equal(map.put(new Uint8Array(1), 1), false);
  assert.throws(() => new KeyOffsetMap(0), RangeError);
});
