import assert from "node:assert/strict";
import { type CachedObject, cachedObjectBytes, SegmentCache } from "../../lib/log/segment_cache.ts";
import { encodeSegment } from "../../lib/log/segment_format.ts";
import { viewFromEncoded } from "../../lib/log/segment_view.ts";

function segment(baseOffset: number, bodyBytes: number): CachedObject {
  const encoded = encodeSegment(
    [{ bytes: new Uint8Array(bodyBytes), baseOffset, lastOffsetDelta: 0, recordsCount: 1 }],
    { createdMs: 0, indexIntervalMessages: 1 },
  );
  return {
    kind: "segment",
    view: viewFromEncoded(encoded, [{ lastOffsetDelta: 0, maxTimestamp: 0, attributes: 0 }]),
  };
}

Deno.test("segment cache: LRU eviction keeps the byte bound", () => {
  const one = cachedObjectBytes(segment(0, 1_000));
  const cache = new SegmentCache(3 * one);
  cache.set("a", segment(0, 1_000));
  cache.set("b", segment(1, 1_000));
  cache.set("c", segment(2, 1_000));
  assert.equal(cache.bytes, 3 * one);
  assert.ok(cache.get("a")); // a is now the most recent
  cache.set("d", segment(3, 1_000));
  assert.equal(cache.get("b"), undefined, "least recently used evicted");
  assert.ok(cache.get("a"));
  assert.ok(cache.get("c"));
  assert.ok(cache.get("d"));
  assert.equal(cache.bytes, 3 * one);
  assert.equal(cache.stats.evictions, 1);
});

Deno.test("segment cache: an object bigger than the cache is not kept", () => {
  const cache = new SegmentCache(500);
  cache.set("big", segment(0, 1_000));
  assert.equal(cache.size, 0);
  assert.equal(cache.bytes, 0);
});

Deno.test("segment cache: replace, delete, deletePrefix and clear account bytes", () => {
  const cache = new SegmentCache(1 << 20);
  cache.set("ns/t/0/a", segment(0, 100));
  cache.set("ns/t/0/a", segment(0, 200));
  assert.equal(cache.bytes, cachedObjectBytes(segment(0, 200)));
  cache.set("ns/t/1/a", segment(0, 100));
  cache.set("ns/t/10/a", segment(0, 100));
  cache.deletePrefix("ns/t/1/");
  assert.equal(cache.get("ns/t/1/a"), undefined);
  assert.ok(cache.get("ns/t/10/a"), "prefix ends at the slash");
  cache.delete("ns/t/0/a");
  assert.equal(cache.bytes, cachedObjectBytes(segment(0, 100)));
  cache.clear();
  assert.equal(cache.bytes, 0);
  assert.throws(() => new SegmentCache(-1), RangeError);
});

Deno.test("segment cache: views of one buffer charge it once, whole, until the last goes", () => {
  // Two blocks viewing halves of one 100 KB round buffer, and a block with its own buffer.
  const round = new Uint8Array(100_000);
  const half = (i: number): CachedObject => ({
    kind: "block",
    bytes: round.subarray(i * 50_000, (i + 1) * 50_000),
  });
  const cache = new SegmentCache(250_000);
  cache.set("a", half(0));
  assert.equal(cache.bytes, 64 + 100_000, "the whole buffer, not the 50 KB shown");
  cache.set("b", half(1));
  assert.equal(cache.bytes, 2 * 64 + 100_000, "charged once");
  cache.delete("a");
  assert.equal(cache.bytes, 64 + 100_000, "still kept alive by b");
  cache.delete("b");
  assert.equal(cache.bytes, 0);
  // Eviction goes on until the buffers really go: three 100 KB rounds do not fit in 250 KB.
  for (const name of ["r1", "r2", "r3"]) {
    const buffer = new Uint8Array(100_000);
    cache.set(`${name}-x`, { kind: "block", bytes: buffer.subarray(0, 10) });
    cache.set(`${name}-y`, { kind: "block", bytes: buffer.subarray(10, 20) });
  }
  assert.ok(cache.bytes <= 250_000, `bytes ${cache.bytes}`);
  assert.equal(cache.get("r1-x"), undefined);
  assert.equal(cache.get("r1-y"), undefined);
  assert.ok(cache.get("r3-y"));
  cache.clear();
  assert.equal(cache.bytes, 0);
});

Deno.test("segment cache: eviction order matches a reference LRU over 20,000 random operations", () => {
  const one = cachedObjectBytes(segment(0, 1_000));
  const capacity = 50;
  const cache = new SegmentCache(capacity * one);
  // The reference: an array in recency order (least recent first).
  let model: string[] = [];
  let seed = 12345;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let i = 0; i < 20_000; i++) {
    const key = `k${random(120)}`;
    const op = random(10);
    if (op < 5) {
      cache.set(key, segment(i, 1_000));
      model = model.filter((k) => k !== key);
      model.push(key);
      if (model.length > capacity) model.shift();
    } else if (op < 8) {
      const hit = cache.get(key) !== undefined;
      assert.equal(hit, model.includes(key), `get ${key} at step ${i}`);
      if (hit) model = [...model.filter((k) => k !== key), key];
    } else if (op < 9) {
      cache.delete(key);
      model = model.filter((k) => k !== key);
    } else if (random(200) === 0) {
      cache.clear();
      model = [];
    }
    assert.equal(cache.size, model.length, `size at step ${i}`);
    assert.equal(cache.bytes, model.length * one, `bytes at step ${i}`);
  }
  // Every key the model holds is there, and nothing else.
  for (let k = 0; k < 120; k++) {
    assert.equal(cache.peek(`k${k}`) !== undefined, model.includes(`k${k}`), `k${k}`);
  }
});
