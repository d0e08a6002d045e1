import assert from "node:assert/strict";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { objectStoreConformance } from "./object_store_conformance.ts";

objectStoreConformance("MemoryObjectStore", () => {
  const store = new MemoryObjectStore();
  return Promise.resolve({ store, cleanup: () => store.close() });
});

objectStoreConformance("MemoryObjectStore without conditional put", () => {
  const store = new MemoryObjectStore({ supportsConditionalPut: false });
  return Promise.resolve({ store, cleanup: () => store.close() });
});

Deno.test("MemoryObjectStore keeps its data across close, for restart simulations", async () => {
  const store = new MemoryObjectStore();
  await store.put("k", new Uint8Array([1, 2, 3]));
  await store.close();
  assert.deepEqual(await store.get("k"), new Uint8Array([1, 2, 3]));
  assert.equal(store.size, 1);
});
