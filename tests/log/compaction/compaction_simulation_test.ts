/**
 * Crash simulation of compaction: a broker process dies right after one step of a compaction
 * run has taken effect in the stores — after a rewritten segment's PUT, after its index PUT,
 * after the commit that makes the new generation current, after the deletion of a replaced
 * (or orphaned) segment object — and a new process takes over the same stores and goes on
 * appending, sealing and compacting. Seeded, on in-memory stores, for several seeds.
 *
 * At the end a fresh process reads everything. Nothing acknowledged is lost: every key's
 * latest acknowledged record, or a later record of that key, is there. Nothing is duplicated
 * or moved: offsets strictly increase, no record appears twice, and every acknowledged record
 * that is there is at its acknowledged offset. So exactly one of a segment's old and new
 * generations is served at any time. A last compaction leaves one record per key.
 */
import assert from "node:assert/strict";
import { LogError, LogManager, type PartitionLog } from "../../../lib/log/log_manager.ts";
import { ClusterMetadata } from "../../../lib/metadata/cluster_metadata.ts";
import { MemoryMetadataStore } from "../../../lib/metadata/memory_metadata_store.ts";
import { MemoryObjectStore } from "../../../lib/storage/memory_object_store.ts";
import { ManualClock } from "../../../lib/util/clock.ts";
import { silentLogger } from "../../../lib/util/logger.ts";
import { FLUSH_INTERVAL_MS, settle, TEST_CONFIG, TOPIC } from "../log_fixture.ts";
import { Process, ProcessMetadataStore, ProcessObjectStore, type Step } from "../process_stores.ts";
import { mulberry32 } from "./support.ts";
import { decodeKeyed, keyed, POLICY } from "./keyed_records.ts";

const STEPS: Step[] = ["compacted-put", "compacted-index-put", "seal-commit", "segment-delete"];
const KEYS = 5;
const LIMITS = { dedupeBufferBytes: 1 << 20, inputBytesMax: 1 << 20 };

async function run(step: Step, seed: number): Promise<void> {
  const clock = new ManualClock();
  const objects = new MemoryObjectStore();
  const meta = new MemoryMetadataStore({ clock });
  await new ClusterMetadata(meta).createTopic({ name: TOPIC, partitions: 1 });
  const random = mulberry32(seed);
  const managers: LogManager[] = [];
  const start = async (dieAt: Process["dieAt"]) => {
    const process = new Process(dieAt);
    const manager = new LogManager({
      objectStore: new ProcessObjectStore(objects, process),
      metadata: new ClusterMetadata(new ProcessMetadataStore(meta, process)),
      clock,
      logger: silentLogger,
      brokerId: 1,
      config: { ...TEST_CONFIG, segmentBytesMax: 1_024, walOrphanGraceMs: 0 },
    });
    managers.push(manager);
    await manager.start();
    return { manager, process };
  };

  /** value -> [key, acknowledged offset] */
  const acked = new Map<string, [string, number]>();
  let current = await start({ step, occurrence: 1 + Math.floor(random() * 3) });
  let crashes = 0;
  let rewritten = 0;
  for (let round = 0; round < 60; round++) {
    const { manager, process } = current;
    let log: PartitionLog | null = null;
    try {
      log = await manager.partition(TOPIC, 0);
    } catch (error) {
      assert.ok(error instanceof LogError, String(error));
    }
    if (log) {
      const appends: Promise<void>[] = [];
      const count = 1 + Math.floor(random() * 3);
      for (let i = 0; i < count; i++) {
        const key = `k${Math.floor(random() * KEYS)}`;
        const value = `r${round}-${i}`;
        const b = keyed([[key, value]], clock.now());
        appends.push(
          log.append(b.records, b.batches, { acks: -1 }).then(
            (r) => void acked.set(value, [key, r.baseOffset]),
            (e) => assert.ok(e instanceof LogError, String(e)),
          ),
        );
      }
      clock.advance(FLUSH_INTERVAL_MS);
      await Promise.all(appends);
      if (random() < 0.6) await log.seal({ segmentBytes: 256 }).catch(() => {});
      if (random() < 0.5) {
        const outcome = await log.compact(POLICY, LIMITS).catch(() => null);
        rewritten += outcome?.segmentsRewritten ?? 0;
      }
      if (random() < 0.5) await log.deleteReplaced(true).catch(() => {});
    }
    if (process.dead) {
      crashes++;
      const again = random() < 0.5 ? { step, occurrence: 1 + Math.floor(random() * 3) } : null;
      current = await start(again);
    }
  }
  await settle();
  assert.ok(crashes > 0, `the process died after ${step} at least once`);
  assert.ok(rewritten > 0, "compaction rewrote segments");

  const reader = await start(null);
  const log = await reader.manager.partition(TOPIC, 0);
  const records = decodeKeyed((await log.read(0, 1 << 30)).chunks);
  const check = (what: string, rows: [number, string, string | null][]) => {
    for (let i = 1; i < rows.length; i++) {
      assert.ok(rows[i][0] > rows[i - 1][0], `${what}: offsets increase at ${rows[i][0]}`);
    }
    const seen = new Set<string>();
    for (const [offset, key, value] of rows) {
      assert.ok(value !== null && !seen.has(value), `${what}: "${value}" once`);
      seen.add(value!);
      const ack = acked.get(value!);
      if (ack) assert.deepEqual([key, offset], ack, `${what}: "${value}" where it was acked`);
    }
    const latest = new Map<string, number>();
    for (const [key, offset] of acked.values()) {
      latest.set(key, Math.max(latest.get(key) ?? -1, offset));
    }
    for (const [key, offset] of latest) {
      const present = rows.filter((r) => r[1] === key).map((r) => r[0]);
      assert.ok(
        present.length > 0 && Math.max(...present) >= offset,
        `${what}: key ${key}'s latest acked record (offset ${offset}) or a later one is there`,
      );
    }
  };
  check("after the crashes", records);
  // Everything sealed and compacted once more: one record per key, the same latest ones.
  for (let i = 0; i < 100 && log.unsealedBytes > 0; i++) await log.seal({ segmentBytes: 1 << 20 });
  await log.compact(POLICY, LIMITS);
  const compacted = decodeKeyed((await log.read(0, 1 << 30)).chunks);
  check("after a final compaction", compacted);
  const lastPerKey = new Map(records.map((r) => [r[1], r[2]]));
  assert.deepEqual(new Map(compacted.map((r) => [r[1], r[2]])), lastPerKey);
  assert.equal(compacted.length, lastPerKey.size);
  for (const m of managers) await m.close().catch(() => {});
  await meta.close();
}

for (const step of STEPS) {
  for (const seed of [5, 17, 41]) {
    Deno.test(`compaction simulation: a crash right after ${step} loses and duplicates nothing (seed ${seed})`, async () => {
      await run(step, seed);
    });
  }
}
