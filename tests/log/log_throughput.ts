/**
 * Throughput probe for the partition log (a script, not a test):
 *
 *   deno run -A tests/log/log_throughput.ts [totalMiB=200] [partitions=8] [inFlight=5]
 *
 * Appends `totalMiB` of 64 KiB batches (1 KiB records) with acks=1 through a
 * LogManager on LocalObjectStore + EmbeddedMetadataStore in a temp dir, each
 * partition keeping `inFlight` appends outstanding (like a producer's
 * max.in.flight), then reports MB/s, flush rounds and where the time went.
 */
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { EmbeddedMetadataStore } from "../../lib/metadata/embedded_metadata_store.ts";
import { LogManager } from "../../lib/log/log_manager.ts";
import { encodeSegment } from "../../lib/log/segment_format.ts";
import { crc32c } from "../../lib/protocol/crc32c.ts";
import { type BatchInfo, validateBatches } from "../../lib/protocol/record_batch.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { LocalObjectStore } from "../../lib/storage/local_object_store.ts";
import { SystemClock } from "../../lib/util/clock.ts";
import { silentLogger } from "../../lib/util/logger.ts";

const MIB = 1024 * 1024;
const totalMiB = Number(Deno.args[0] ?? 200);
const partitions = Number(Deno.args[1] ?? 8);
const inFlight = Number(Deno.args[2] ?? 5);
const RECORD_BYTES = 1024;
const RECORDS_PER_BATCH = 63; // 63 x ~1 KiB + headers just under 64 KiB

const template = encodeRecordBatch(
  Array.from({ length: RECORDS_PER_BATCH }, (_, i) => ({
    key: null,
    value: new Uint8Array(RECORD_BYTES).fill(i),
    timestamp: 1_700_000_000_000 + i,
  })),
);
const batchCount = Math.ceil((totalMiB * MIB) / template.length);
console.log(
  `batch ${template.length} B, ${batchCount} batches, ${partitions} partitions, ` +
    `${inFlight} in flight per partition`,
);

// Producer-side work (copies, produce validation incl. CRC) is done up front
// so the timing below is the log's.
let t = performance.now();
const prepared: { records: Uint8Array; batches: BatchInfo[] }[] = [];
for (let i = 0; i < batchCount; i++) {
  const records = template.slice();
  const v = validateBatches(records, { maxBatchBytes: 1 * MIB });
  if (!v.ok) throw new Error(v.message);
  prepared.push({ records, batches: v.batches });
}
const validateMs = performance.now() - t;

const dir = await Deno.makeTempDir({ prefix: "kafscale_log_throughput_" });
const clock = new SystemClock();
const objectStore = new LocalObjectStore(`${dir}/data`);
const metadataStore = await EmbeddedMetadataStore.open(`${dir}/meta`, { clock });
const metadata = new ClusterMetadata(metadataStore);
await metadata.createTopic({ name: "bench", partitions });
const manager = new LogManager({
  objectStore,
  metadata,
  clock,
  logger: silentLogger,
  brokerId: 1,
  config: {
    namespace: "default",
    segmentBytesMax: 64 * MIB,
    flushIntervalMs: 2,
    flushBytes: 4 * MIB,
    cacheBytesMax: 256 * MIB,
    indexIntervalMessages: 100,
    leaseTtlMs: 10_000,
  },
});
await manager.start();
const logs = await Promise.all(
  Array.from({ length: partitions }, (_, p) => manager.partition("bench", p)),
);

const latencies: number[] = [];
let next = 0;
t = performance.now();
await Promise.all(logs.flatMap((log) =>
  Array.from({ length: inFlight }, async () => {
    // Bounded by batchCount: each iteration takes one prepared batch.
    while (next < prepared.length) {
      const b = prepared[next++];
      const start = performance.now();
      await log.append(b.records, b.batches, { acks: 1 });
      latencies.push(performance.now() - start);
    }
  })
));
const elapsedMs = performance.now() - t;
const bytes = batchCount * template.length;
const stats = manager.flushStats;
latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
console.log(
  `appended ${(bytes / MIB).toFixed(0)} MiB in ${(elapsedMs / 1000).toFixed(2)} s: ` +
    `${(bytes / MIB / (elapsedMs / 1000)).toFixed(1)} MiB/s, ` +
    `${((batchCount * RECORDS_PER_BATCH) / (elapsedMs / 1000)).toFixed(0)} records/s`,
);
console.log(
  `ack latency ms: p50 ${pct(0.5).toFixed(1)} p99 ${pct(0.99).toFixed(1)} max ` +
    `${latencies[latencies.length - 1].toFixed(1)}`,
);
console.log(
  `rounds ${stats.rounds}, partition flushes ${stats.flushes} ` +
    `(${(bytes / MIB / stats.rounds).toFixed(2)} MiB/round), failed ${stats.failedFlushes}`,
);
console.log(
  `round time: write phase ${stats.writeMs.toFixed(0)} ms (encode + put), ` +
    `commit phase ${stats.commitMs.toFixed(0)} ms, of ${elapsedMs.toFixed(0)} ms wall`,
);
console.log(`metadata store: ${JSON.stringify(metadataStore.stats)}`);

// Where the write phase goes: the pieces measured alone on the same data.
const sample = prepared.slice(0, 64).map((b, i) => ({
  bytes: b.records,
  baseOffset: i * RECORDS_PER_BATCH,
  lastOffsetDelta: RECORDS_PER_BATCH - 1,
  recordsCount: RECORDS_PER_BATCH,
}));
const sampleBytes = sample.reduce((n, s) => n + s.bytes.length, 0);
t = performance.now();
for (let i = 0; i < 10; i++) encodeSegment(sample, { createdMs: 0, indexIntervalMessages: 100 });
const encodeMiBs = (10 * sampleBytes) / MIB / ((performance.now() - t) / 1000);
const big = new Uint8Array(64 * MIB);
t = performance.now();
crc32c(big);
const crcMiBs = 64 / ((performance.now() - t) / 1000);
const segment = encodeSegment(sample, { createdMs: 0, indexIntervalMessages: 100 }).segment;
t = performance.now();
for (let i = 0; i < 10; i++) {
  await objectStore.put(`probe/p${i}.kfs`, segment, { ifNoneMatch: true });
}
const putMs = (performance.now() - t) / 10;
t = performance.now();
for (let i = 0; i < 50; i++) await metadataStore.put("/probe", new Uint8Array(8));
const commitMs = (performance.now() - t) / 50;
console.log(
  `alone: encodeSegment (copy + CRC32C) ${encodeMiBs.toFixed(0)} MiB/s, CRC32C ` +
    `${crcMiBs.toFixed(0)} MiB/s, LocalObjectStore put of ${
      (segment.length / MIB).toFixed(1)
    } MiB ` +
    `${putMs.toFixed(1)} ms (${(segment.length / MIB / (putMs / 1000)).toFixed(0)} MiB/s), ` +
    `embedded metadata put ${commitMs.toFixed(2)} ms`,
);
console.log(
  `(producer-side validation of the batches took ${validateMs.toFixed(0)} ms, not counted)`,
);

await manager.close();
await metadataStore.close();
await objectStore.close();
await Deno.remove(dir, { recursive: true });
