/**
 * Reading unsealed data back from the write-ahead stream the way consumers of many partitions
 * do: large ranges read in parts — with positioned reads on a local directory, with ranged
 * GETs from where the last read ended on other stores — returning exactly what a whole-range
 * read returns.
 */
import assert from "node:assert/strict";
import { LocalObjectStore } from "../../lib/storage/local_object_store.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import type { ObjectStore } from "../../lib/storage/object_store.ts";
import { WAL_SCAN_MIN_BYTES } from "../../lib/log/partition_log.ts";
import { append, batch, decode, type Harness, harness, TOPIC } from "./log_fixture.ts";

/** 40 batches of 4 records of ~16 KiB: one flush round, one range of ~2.5 MiB. */
async function bigRange(h: Harness) {
  const log = await h.manager.partition(TOPIC, 0);
  const acks = [];
  for (let b = 0; b < 40; b++) {
    acks.push(append(log, batch([0, 1, 2, 3].map((i) => `b${b}-r${i}-`.padEnd(16_000, "x"))), {
      acks: 1,
    }));
  }
  await h.flush();
  await Promise.all(acks);
  assert.equal(log.unsealedRangeCount, 1);
  assert.ok(log.unsealedRanges[0].length > WAL_SCAN_MIN_BYTES);
  return log;
}

async function withStores(fn: (local: Harness, memory: Harness) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-walread-" });
  const local = await harness({ objectStore: new LocalObjectStore(dir) });
  const memory = await harness({ objectStore: new MemoryObjectStore() });
  try {
    await fn(local, memory);
  } finally {
    await local.close();
    await memory.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("wal read: a large range is read in parts on a local directory, with the same result", async () => {
  await withStores(async (localH, memoryH) => {
    const local = await bigRange(localH);
    const memory = await bigRange(memoryH);
    // Committed ranges are cached as they are written: read them back from the stores.
    localH.manager.cache.clear();
    memoryH.manager.cache.clear();
    // The local store reads by position (no whole-range load); the memory store loads the
    // whole range. Every (offset, budget) gives the same batches.
    assert.ok((localH.objectStore as ObjectStore).readRangeSync);
    assert.equal((memoryH.objectStore as ObjectStore).readRangeSync, undefined);
    for (const offset of [0, 1, 5, 77, 158, 159]) {
      for (const budget of [0, 1_000, 64_000, 300_000, 10 << 20]) {
        for (const minOneBatch of [false, true]) {
          const a = await local.read(offset, budget, { minOneBatch });
          const b = await memory.read(offset, budget, { minOneBatch });
          assert.deepEqual(
            decode(a.chunks),
            decode(b.chunks),
            `${offset}/${budget}/${minOneBatch}`,
          );
          assert.equal(a.bytes, b.bytes);
        }
      }
    }
    // A consumer going forward 64 KB at a time reads everything once, in order.
    const seen: number[] = [];
    let offset = 0;
    for (let i = 0; i < 200 && offset < local.highWatermark; i++) {
      const records = decode((await local.read(offset, 64_000, { minOneBatch: true })).chunks);
      assert.ok(records.length > 0);
      for (const [o] of records) if (o >= offset) seen.push(o);
      offset = records[records.length - 1][0] + 1;
    }
    assert.deepEqual(seen, Array.from({ length: 160 }, (_, i) => i));
  });
});

Deno.test("wal read: a truncated write-ahead file is an error, not wrong data", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-walread-" });
  const h = await harness({ objectStore: new LocalObjectStore(dir) });
  try {
    const log = await bigRange(h);
    const range = log.unsealedRanges[0];
    await Deno.truncate(`${dir}/${range.object}`, range.position + range.length / 2);
    h.manager.cache.clear();
    await assert.rejects(log.read(150, 100_000), /shorter|missing|corrupt/);
  } finally {
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
});
