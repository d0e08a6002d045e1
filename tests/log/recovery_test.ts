/**
 * recoverPartition's rule for segments at or beyond the committed end (issue 17): they mean the
 * metadata lost records (a seal copies only committed data), so the partition refuses to open
 * and nothing is deleted. A state without a sealed end is refused the same way: a metadata log
 * cut back to the topic's creation looks exactly like it, so its segments may be acknowledged
 * data (for a data directory from before the write-ahead stream it may be a crashed flush's; the
 * message says so).
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

Deno.test("recovery: beyond the committed end, a state without a sealed end refuses too", async () => {
  const store = await storeWith(0, 5);
  await assert.rejects(
    () =>
      recoverPartition({
        objectStore: store,
        prefix,
        state: { endOffset: 0, logStartOffset: 0, epoch: 1 },
        logger: silentLogger,
      }),
    /before the write-ahead stream that crashed mid-flush/,
  );
  assert.ok(await store.get(key(0)));
  assert.ok(await store.get(key(5)));
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
