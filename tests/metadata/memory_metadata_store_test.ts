import assert from "node:assert/strict";
import {
  type KvChange,
  KvStateMachine,
  MemoryMetadataStore,
} from "../../lib/metadata/memory_metadata_store.ts";
import { MetadataStoreError } from "../../lib/metadata/metadata_store.ts";
import { ManualClock } from "../../lib/util/clock.ts";
import { metadataStoreConformance } from "./metadata_store_conformance.ts";

metadataStoreConformance("MemoryMetadataStore", (clock) => {
  const store = new MemoryMetadataStore({ clock });
  return Promise.resolve({ store, cleanup: () => store.close() });
});

Deno.test("MemoryMetadataStore: watch events arrive synchronously, before the write resolves", async () => {
  const store = new MemoryMetadataStore({ clock: new ManualClock() });
  const seen: number[] = [];
  store.watch("", (e) => seen.push(e.type === "put" ? e.entry.modRevision : e.modRevision));
  const pending = store.put("k", new Uint8Array([1]));
  assert.deepEqual(seen, [1], "delivered inside the call");
  assert.equal(await pending, 1);
  await store.close();
});

Deno.test("MemoryMetadataStore: close cancels lease timers and rejects later calls", async () => {
  const clock = new ManualClock();
  const store = new MemoryMetadataStore({ clock });
  await store.grantLease(1_000);
  await store.grantLease(2_000);
  assert.equal(clock.pendingTimers(), 2);
  await store.close();
  assert.equal(clock.pendingTimers(), 0);
  await assert.rejects(() => store.get("k"), MetadataStoreError);
  await assert.rejects(() => store.put("k", new Uint8Array()), MetadataStoreError);
  await assert.rejects(() => store.grantLease(10), MetadataStoreError);
  await store.close(); // idempotent
});

Deno.test("MemoryMetadataStore: a throwing watcher does not break the store or other watchers", async () => {
  const store = new MemoryMetadataStore({ clock: new ManualClock() });
  let calls = 0;
  store.watch("", () => {
    throw new Error("boom");
  });
  store.watch("", () => calls++);
  await store.put("a", new Uint8Array([1]));
  await store.put("b", new Uint8Array([2]));
  assert.equal(calls, 2);
  await store.close();
});

Deno.test("MemoryMetadataStore: lease TTL is validated", async () => {
  const store = new MemoryMetadataStore({ clock: new ManualClock() });
  await assert.rejects(() => store.grantLease(0), RangeError);
  await assert.rejects(() => store.grantLease(1.5), RangeError);
  await store.close();
});

Deno.test("MemoryMetadataStore: a lease past its deadline is expired on use even before its timer fires", async () => {
  // A clock whose timers never fire models a late timer on a busy event loop.
  let now = 0;
  const lateClock = {
    now: () => now,
    monotonic: () => now,
    setTimeout: () => ({ cancel() {} }),
  };
  const store = new MemoryMetadataStore({ clock: lateClock });
  const lease = await store.grantLease(100);
  await store.put("k", new Uint8Array([1]), { lease: lease.id });
  now = 100;
  await assert.rejects(() => store.keepAlive(lease.id));
  assert.equal(await store.get("k"), null);
  await store.close();
});

Deno.test("KvStateMachine: keys stay sorted and complete through random writes of many deletes", () => {
  let seed = 7;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const state = new KvStateMachine();
  const model = new Map<string, string>();
  const value = (text: string) => new TextEncoder().encode(text);
  for (let revision = 1; revision <= 400; revision++) {
    const changes: KvChange[] = [];
    const count = 1 + Math.floor(random() * 40);
    for (let i = 0; i < count; i++) {
      const key = `k/${String(Math.floor(random() * 300)).padStart(3, "0")}`;
      // Replayed logs may name a key twice in one write (a delete, then a put): both apply.
      if (random() < 0.5) {
        changes.push({ kind: "delete", key });
        model.delete(key);
      } else {
        changes.push({ kind: "put", key, value: value(`${revision}`), lease: 0 });
        model.set(key, `${revision}`);
      }
    }
    state.apply(revision, changes);
    const expected = [...model.keys()].sort();
    assert.deepEqual(state.keysWithPrefix("k/"), expected, `keys after revision ${revision}`);
    assert.equal(state.size, model.size);
  }
  assert.deepEqual(
    state.range("k/").map((e) => [e.key, new TextDecoder().decode(e.value)]),
    [...model].sort(([a], [b]) => (a < b ? -1 : 1)),
  );
});
