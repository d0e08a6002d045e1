/**
 * Crash simulation of the two-tier log: a broker process "dies" right after one step of a
 * flush round or of sealing has taken effect in the stores — after the write-ahead write,
 * after the metadata commit, after the segment PUT, after the index PUT, after the seal's
 * commit, after a write-ahead object's deletion, after its index records' deletion, after a
 * merge of index records — and a new process with the same broker id takes over the same
 * stores and goes on. Seeded, on in-memory stores, for every step and several seeds (which
 * occurrence of the step dies varies).
 *
 * A dead process never touches the stores again (every call it makes fails before reaching
 * them), like a killed one. At the end a fresh process reads everything: every acknowledged
 * record is there exactly once at its acknowledged offset, offsets are contiguous, a record
 * whose append failed is there at most once, and once everything is sealed and collected no
 * write-ahead object or index record is left.
 */
import assert from "node:assert/strict";
import { LogError, LogManager } from "../../lib/log/log_manager.ts";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { ManualClock } from "../../lib/util/clock.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import { batch, decode, FLUSH_INTERVAL_MS, settle, TEST_CONFIG, TOPIC } from "./log_fixture.ts";
import {
  Process,
  ProcessMetadataStore,
  ProcessObjectStore,
  type Step,
  STEPS,
} from "./process_stores.ts";

async function run(step: Step, seed: number): Promise<void> {
  const clock = new ManualClock();
  const objects = new MemoryObjectStore();
  const meta = new MemoryMetadataStore({ clock });
  await new ClusterMetadata(meta).createTopic({ name: TOPIC, partitions: 2 });
  let rng = seed;
  const random = () => ((rng = (Math.imul(rng, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const managers: LogManager[] = [];
  const start = async (dieAt: Process["dieAt"]) => {
    const process = new Process(dieAt);
    const manager = new LogManager({
      objectStore: new ProcessObjectStore(objects, process),
      // One commit per transaction: a death between them leaves a round indexed for some of
      // its partitions and committed for others (rewritten later at a higher owner epoch).
      metadata: new ClusterMetadata(new ProcessMetadataStore(meta, process), { txnOpsMax: 2 }),
      clock,
      logger: silentLogger,
      brokerId: 1,
      // No grace for unreferenced objects: a round's object and its commit are never apart
      // here for long (the processes share one clock that barely moves).
      config: {
        ...TEST_CONFIG,
        walFileBytes: 2_048,
        segmentBytesMax: 1_024,
        walOrphanGraceMs: 0,
        walPrepareNextFile: true,
      },
    });
    managers.push(manager);
    await manager.start();
    return { manager, process };
  };

  const acked = new Map<string, [number, number]>();
  const failed = new Set<string>();
  let current = await start({ step, occurrence: 1 + Math.floor(random() * 3) });
  let crashes = 0;
  for (let round = 0; round < 40; round++) {
    const { manager, process } = current;
    const appends: Promise<void>[] = [];
    for (let p = 0; p < 2; p++) {
      let log;
      try {
        log = await manager.partition(TOPIC, p);
      } catch (error) {
        assert.ok(error instanceof LogError, String(error));
        continue;
      }
      const count = 1 + Math.floor(random() * 3);
      for (let i = 0; i < count; i++) {
        const value = `r${round}-p${p}-${i}`;
        const b = batch([value]);
        appends.push(
          log.append(b.records, b.batches, { acks: -1 }).then(
            (r) => void acked.set(value, [p, r.baseOffset]),
            (e) => {
              assert.ok(e instanceof LogError, String(e));
              failed.add(value);
            },
          ),
        );
      }
    }
    clock.advance(FLUSH_INTERVAL_MS);
    await Promise.all(appends);
    // Seal now and then (segments of ~1 KiB), sometimes one partition only (its rounds' index
    // records then name ranges of both, and collection merges them), and collect twice in a row.
    if (random() < 0.4) {
      const only = random() < 0.5 ? Math.floor(random() * 2) : null;
      if (only === null) await manager.runSealPass().catch(() => {});
      for (const log of manager.loadedPartitions()) {
        if (only !== null && log.partition !== only) continue;
        await log.seal({ segmentBytes: 1_024 }).catch(() => {});
      }
    }
    if (random() < 0.3) {
      await manager.runWalGc().catch(() => {});
      await manager.runWalGc().catch(() => {});
    }
    if (process.dead) {
      crashes++;
      // The next process may die at the same step again, later on.
      const again = random() < 0.5 ? { step, occurrence: 1 + Math.floor(random() * 3) } : null;
      current = await start(again);
    }
  }
  await settle();
  const stats = managers.reduce(
    (n, m) => ({
      sealed: n.sealed + m.sealStats.segments,
      deleted: n.deleted + m.walGcStats.objectsDeleted,
    }),
    { sealed: 0, deleted: 0 },
  );
  assert.ok(crashes > 0, `the process died after ${step} at least once`);
  assert.ok(
    stats.sealed > 0 && stats.deleted > 0,
    `sealing and collection ran: ${JSON.stringify(stats)}`,
  );
  assert.ok(acked.size > 0, "some appends were acknowledged");

  // A fresh process: everything acknowledged is there, once, where it was acknowledged.
  const reader = await start(null);
  for (let p = 0; p < 2; p++) {
    const log = await reader.manager.partition(TOPIC, p);
    const records = decode((await log.read(0, 1 << 30)).chunks);
    assert.deepEqual(
      records.map(([o]) => o),
      Array.from({ length: log.highWatermark }, (_, i) => i),
      `partition ${p}: offsets contiguous`,
    );
    const at = new Map<string, number[]>();
    for (const [offset, value] of records) at.set(value, [...(at.get(value) ?? []), offset]);
    for (const [value, [partition, offset]] of acked) {
      if (partition !== p) continue;
      assert.deepEqual(at.get(value), [offset], `acked "${value}" once at ${p}/${offset}`);
    }
    for (const value of failed) {
      assert.ok((at.get(value)?.length ?? 0) <= 1, `failed "${value}" at most once`);
    }
    // Seal everything and collect: nothing of the write-ahead stream is left.
    while (log.unsealedBytes > 0) await log.seal({ segmentBytes: 1 << 20 });
    assert.deepEqual(decode((await log.read(0, 1 << 30)).chunks), records);
  }
  await reader.manager.close();
  const collector = await start(null);
  await collector.manager.runWalGc();
  await collector.manager.runWalGc();
  const left = (await objects.list("default/~wal/")).map((o) => o.key);
  // Only the collector's own (empty) current file may remain.
  assert.ok(left.length <= 1, `write-ahead objects left: ${left.join(", ")}`);
  assert.deepEqual(await new ClusterMetadata(meta).listWalIndex(), []);
  for (const m of managers) await m.close().catch(() => {});
  await meta.close();
}

for (const step of STEPS) {
  for (const seed of [3, 11, 29]) {
    Deno.test(`wal simulation: a crash right after ${step} loses and duplicates nothing (seed ${seed})`, async () => {
      await run(step, seed);
    });
  }
}
