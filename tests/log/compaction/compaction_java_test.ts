/**
 * Apache Kafka's own client code reads what the compactor writes: batches
 * rewritten in every codec (xerial and raw snappy, LZ4 frames, zstd, gzip),
 * with offset gaps, LogAppendTime, and empty batches kept for a producer's
 * sequence, pass Kafka's CRC and record checks (ensureValid) and decode to
 * the same offsets, timestamps, keys and values our reader sees.
 *
 * Runs ReadBatches.java (kafka-clients 4.1 from .tools/kafka-ref, installed
 * by scripts/setup.sh) with `java`; skipped where either is missing.
 */

import assert from "node:assert/strict";
import { COMPRESSION, scanBatches } from "../../../lib/protocol/record_batch.ts";
import { readBatchRecords, rewriteBatch } from "../../../lib/log/compaction/batch_records.ts";
import { compactSegments, type SegmentInput } from "../../../lib/log/compaction/compactor.ts";
import { goldenBatches } from "./golden_batches.ts";
import { bytes, concat, makeBatch } from "./support.ts";

const KAFKA_LIBS = new URL("../../../.tools/kafka-ref/libs-4.1.0/", import.meta.url);
const READER = new URL("./ReadBatches.java", import.meta.url);
const CODEC_NAMES: Record<number, string> = {
  0: "none",
  1: "gzip",
  2: "snappy",
  3: "lz4",
  4: "zstd",
};

function javaAvailable(): boolean {
  try {
    Deno.statSync(new URL("kafka-clients-4.1.0.jar", KAFKA_LIBS));
    return new Deno.Command("java", { args: ["-version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

function hex(data: Uint8Array | null): string {
  if (data === null) return "null";
  return "x" + [...data].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** What Kafka should print for `body`, from our own reader. */
function expectedLines(body: Uint8Array): string[] {
  const lines: string[] = [];
  for (const batch of scanBatches(body).batches) {
    lines.push(
      `batch ${batch.baseOffset} ${batch.baseOffset + batch.lastOffsetDelta} ` +
        `${batch.recordsCount} ${CODEC_NAMES[batch.compression]} ${batch.producerId} ` +
        `${batch.baseSequence}`,
    );
    for (const r of readBatchRecords(body, batch).records) {
      lines.push(`record ${r.offset} ${r.timestamp} ${hex(r.key)} ${hex(r.value)}`);
    }
  }
  return lines;
}

function compactedLog(): Uint8Array {
  const T0 = 1_700_000_000_000;
  const parts: Uint8Array[] = [];
  let offset = 0;
  let sequence = 0;
  for (const compression of [0, 1, 2, 3, 4]) {
    for (const logAppendTimeMs of [undefined, T0 + 999]) {
      const records = Array.from({ length: 6 }, (_, i) => ({
        key: bytes(`k${compression}${logAppendTimeMs ? "L" : ""}-${i % 3}`),
        value: i === 4 ? null : bytes(`v${offset + i}-${"z".repeat(i * 30)}`),
        headers: [{ key: "h", value: bytes(String(i)) }],
        timestamp: T0 + offset + i,
      }));
      parts.push(makeBatch(records, {
        baseOffset: offset,
        compression,
        producerId: 42,
        producerEpoch: 0,
        baseSequence: sequence,
        logAppendTimeMs,
      }));
      offset += 6;
      sequence += 6;
    }
  }
  // The producer's last batch loses every record (newer values follow from a
  // plain producer): it stays as an empty batch.
  parts.push(makeBatch([{ key: bytes("only"), value: bytes("old") }], {
    baseOffset: offset,
    producerId: 42,
    producerEpoch: 0,
    baseSequence: sequence,
    compression: COMPRESSION.zstd,
  }));
  parts.push(makeBatch([{ key: bytes("only"), value: bytes("new") }], { baseOffset: offset + 1 }));
  const segments: SegmentInput[] = [{ baseOffset: 0, batches: concat(parts), cleanedAtMs: null }];
  const { segments: out, stats } = compactSegments(segments, {
    cleanablePoint: offset + 2,
    nowMs: T0,
    deleteRetentionMs: 0,
  });
  assert.ok(stats.batchesRewritten >= 10 && stats.emptyBatchesKept === 1);
  return out[0].batches;
}

/**
 * Every compressed batch captured from real clients (Java, librdkafka's raw
 * snappy and zstd, kafkajs), each rewritten without its first record.
 */
function rewrittenGolden(): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const { frame, batch } of goldenBatches()) {
    if (batch.isControl || batch.compression === COMPRESSION.none) continue;
    if (batch.recordsCount < 2) continue;
    const opened = readBatchRecords(frame, batch);
    const out = rewriteBatch(frame, opened, opened.records.map((_, i) => i).slice(1));
    parts.push(out);
  }
  return concat(parts);
}

Deno.test({
  name: "Kafka's own reader (kafka-clients 4.1) validates and decodes compacted batches",
  ignore: !javaAvailable(),
  fn() {
    // One file, one JVM: Kafka's reader does not need offsets to increase across batches.
    for (const body of [concat([compactedLog(), rewrittenGolden()])]) {
      const file = Deno.makeTempFileSync({ suffix: ".batches" });
      try {
        Deno.writeFileSync(file, body);
        const result = new Deno.Command("java", {
          args: ["-cp", `${KAFKA_LIBS.pathname}*`, READER.pathname, file],
          stdout: "piped",
          stderr: "piped",
        }).outputSync();
        const stderr = new TextDecoder().decode(result.stderr);
        assert.ok(result.success, `ReadBatches failed: ${stderr}`);
        const lines = new TextDecoder().decode(result.stdout).trimEnd().split("\n");
        assert.deepEqual(lines, expectedLines(body));
      } finally {
        Deno.removeSync(file);
      }
    }
  },
});
