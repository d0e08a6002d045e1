/**
 * recoverPartition's deletion rule for segments at or beyond the committed end (issue 17): in a
 * state written since the write-ahead stream they mean the metadata lost records, so the
 * partition refuses to open and nothing is deleted; in a state from before it (no sealed end)
 * they are flushes that never committed, deleted as they always were.
 */
import assert from "node:assert/strict";
import { recoverPartition } from "../../lib/log/recovery.ts";
import { partitionObjectPrefix, segmentObjectKey } from "../../lib/log/segment_format.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { silentLogger } from "../../lib/util/logger.ts";

const prefix = partitionObjectPrefix("default", "t", 0);
const key = (base: number) => segmentObjectKey("default", "t", 0, base, "kfs");

async function storeWith(...bases: number[]): Promise<MemoryObjectStore> {
  const store = new MemoryObjectStore();
  for (const base of bases) await store.put(key(base), new Uint8Array(64));
  return store;
}

Deno.test("recovery: beyond the committed end, a legacy state deletes the unacknowledged flush", async () => {
  const store = await storeWith(0, 5);
  const out = await recoverPartition({
    objectStore: store,
    prefix,
    state: { endOffset: 5, logStartOffset: 0, epoch: 1 },
    logger: silentLogger,
  });
  assert.deepEqual(out.segments.map((s) => s.baseOffset), [0]);
  assert.equal(await store.get(key(5)), null);
});

Deno.test("recovery: beyond the committed end, a current state refuses and deletes nothing", async () => {
  const store = await storeWith(0, 5);
  await assert.rejects(
    () =>
      recoverPartition({
        objectStore: store,
        prefix,
        state: { endOffset: 5, logStartOffset: 0, epoch: 1, sealedEnd: 5 },
        logger: silentLogger,
      }),
    /the metadata store is behind the data/,
  );
  assert.ok(await store.get(key(5)));
  assert.ok(await store.get(key(0)));
});
