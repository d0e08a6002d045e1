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
