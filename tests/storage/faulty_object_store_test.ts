import assert from "node:assert/strict";
import { FaultyObjectStore } from "../../lib/storage/faulty_object_store.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { ObjectStoreError, PreconditionFailedError } from "../../lib/storage/object_store.ts";
import { ManualClock } from "../../lib/util/clock.ts";
import { objectStoreConformance } from "./object_store_conformance.ts";

const one = new Uint8Array([1]);

// With no faults configured the wrapper must be transparent.
objectStoreConformance("FaultyObjectStore without faults", () => {
  const store = new FaultyObjectStore(new MemoryObjectStore());
  return Promise.resolve({ store, cleanup: () => store.close() });
});

Deno.test("FaultyObjectStore: fail before does not apply, fail after does", async () => {
  const inner = new MemoryObjectStore();
  const store = new FaultyObjectStore(inner);
  store.failNext("put", "before");
  await assert.rejects(() => store.put("a", one), ObjectStoreError);
  assert.equal(await inner.get("a"), null);
  store.failNext("put", "after");
  await assert.rejects(() => store.put("a", one), ObjectStoreError);
  assert.deepEqual(await inner.get("a"), one);
  store.failNext("delete", "after");
  await assert.rejects(() => store.delete("a"), ObjectStoreError);
  assert.equal(await inner.get("a"), null);
  assert.deepEqual(store.stats, { calls: 3, failedBefore: 1, failedAfter: 2 });
});

Deno.test("FaultyObjectStore: setDown fails every call until cleared", async () => {
  const store = new FaultyObjectStore(new MemoryObjectStore());
  await store.put("a", one);
  store.setDown(true);
  await assert.rejects(() => store.get("a"), ObjectStoreError);
  await assert.rejects(() => store.getRange("a", 0, 1), ObjectStoreError);
  await assert.rejects(() => store.put("b", one), ObjectStoreError);
  await assert.rejects(() => store.list(""), ObjectStoreError);
  await assert.rejects(() => store.delete("a"), ObjectStoreError);
  store.setDown(false);
  assert.deepEqual(await store.list(""), [{ key: "a", size: 1 }]);
});

Deno.test("FaultyObjectStore: the same seed replays the same faults", async () => {
  const run = async (seed: number) => {
    const store = new FaultyObjectStore(new MemoryObjectStore(), {
      seed,
      failBeforeRate: 0.3,
      failAfterRate: 0.3,
    });
    const outcomes: string[] = [];
    for (let i = 0; i < 200; i++) {
      const op = i % 3 === 0 ? store.get(`k${i % 7}`) : store.put(`k${i % 7}`, one);
      outcomes.push(await op.then(() => "ok", (e) => e.message));
    }
    return { outcomes, stats: store.stats };
  };
  const a = await run(7);
  const b = await run(7);
  const c = await run(8);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.outcomes, c.outcomes);
  assert.ok(a.stats.failedBefore > 20 && a.stats.failedAfter > 10, JSON.stringify(a.stats));
});

Deno.test("FaultyObjectStore: only the chosen operations fault; preconditions pass through", async () => {
  const store = new FaultyObjectStore(new MemoryObjectStore(), {
    failBeforeRate: 1,
    operations: ["get"],
  });
  await store.put("a", one, { ifNoneMatch: true });
  await assert.rejects(() => store.put("a", one, { ifNoneMatch: true }), PreconditionFailedError);
  await assert.rejects(() => store.get("a"), ObjectStoreError);
  store.setFaultRates({ failBeforeRate: 0 });
  assert.deepEqual(await store.get("a"), one);
});

Deno.test("FaultyObjectStore: latency waits on the injected clock", async () => {
  const clock = new ManualClock();
  const store = new FaultyObjectStore(new MemoryObjectStore(), {
    latency: { clock, minMs: 10, maxMs: 10 },
  });
  let done = false;
  const put = store.put("a", one).then(() => (done = true));
  await Promise.resolve();
  assert.equal(done, false);
  assert.equal(clock.pendingTimers(), 1);
  clock.advance(10);
  await put;
  assert.equal(done, true);
});
