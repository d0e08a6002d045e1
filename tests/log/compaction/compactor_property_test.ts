/**
 * Property test of the compactor over seeded random histories of keys,
 * values and tombstones (plus a few keyless records), in every codec, with
 * idempotent and plain producers, LogAppendTime batches, random segment
 * cuts, cleanable points (on and inside batches), dedupe buffers from tiny to
 * unbounded, and three runs in a row on a log that grows between them, each
 * fed the previous run's output, cleaned-at times and checkpoint, on an
 * advancing clock.
 *
 * After every run:
 * - a reader from the start sees, per key, exactly the input's latest record
 *   (same offset, same bytes), unless that record is an expired tombstone,
 *   in which case the key is gone entirely;
 * - every surviving record is byte-identical to the input record at its offset;
 * - offsets strictly increase over all batches and records; every batch has
 *   a valid CRC32C and keeps its input's base and last offset;
 * - every record at or after the cleanable point is there, and every batch
 *   reaching it is byte-identical;
 * - below it, each key has one record, no keyless record remains, and
 *   an empty batch stands only for its producer's last batch.
 * Seeds: KAFSCALE_COMPACTION_SEEDS (count, default 60) from a fixed start;
 * a failure names its seed.
 */

import assert from "node:assert/strict";
import {
  type BatchInfo,
  isBatchCrcValid,
  lastOffset,
  scanBatches,
} from "../../../lib/protocol/record_batch.ts";
import type { ProducerRecord } from "../../../lib/protocol/records.ts";
import {
  compactSegments,
  type SegmentInput,
  type SegmentOutput,
} from "../../../lib/log/compaction/compactor.ts";
import { bytes, concat, makeBatch, mulberry32, type ReadRecord, readRecords } from "./support.ts";

const SEED_COUNT = Number(Deno.env.get("KAFSCALE_COMPACTION_SEEDS") ?? "60");
const FIRST_SEED = 20_260_312;
const RUNS = 3;
const T0 = 1_700_000_000_000;

interface History {
  segments: SegmentInput[];
  headOffset: number;
}

function generate(random: () => number): History {
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const keyCount = int(1, 40);
  const recordCount = int(1, 300);
  const tombstoneRate = random() * 0.4;
  const segments: SegmentInput[] = [];
  let batches: Uint8Array[] = [];
  let segmentBase = 0;
  let offset = 0;
  const sequences = new Map<number, number>();
  let time = T0 - 10 * 86_400_000;
  while (offset < recordCount) {
    const size = Math.min(int(1, 8), recordCount - offset);
    const records: ProducerRecord[] = [];
    for (let i = 0; i < size; i++) {
      time += int(0, 60_000);
      const keyless = random() < 0.02;
      const tombstone = random() < tombstoneRate;
      records.push({
        key: keyless ? null : bytes(`k${int(0, keyCount - 1)}`),
        value: tombstone ? null : bytes(`v${offset + i}-${"p".repeat(int(0, 30))}`),
        headers: random() < 0.1 ? [{ key: "h", value: bytes(String(offset + i)) }] : [],
        timestamp: time,
      });
    }
    const producerId = random() < 0.5 ? -1 : int(1, 3);
    const baseSequence = producerId < 0 ? -1 : sequences.get(producerId) ?? 0;
    if (producerId >= 0) sequences.set(producerId, baseSequence + size);
    batches.push(makeBatch(records, {
      baseOffset: offset,
      compression: int(0, 4),
      producerId,
      producerEpoch: producerId < 0 ? -1 : 0,
      baseSequence,
      logAppendTimeMs: random() < 0.15 ? time + 5 : undefined,
    }));
    offset += size;
    if (random() < 0.25 || offset >= recordCount) {
      segments.push({ baseOffset: segmentBase, batches: concat(batches), cleanedAtMs: null });
      batches = [];
      segmentBase = offset;
    }
  }
  return { segments, headOffset: offset };
}

interface Batch {
  info: BatchInfo;
  bytes: Uint8Array;
}

function batchesOf(segments: readonly { batches: Uint8Array }[]): Batch[] {
  return segments.flatMap((s) =>
    scanBatches(s.batches).batches.map((info) => ({
      info,
      bytes: s.batches.subarray(info.position, info.position + info.size),
    }))
  );
}

function recordsOf(segments: readonly { batches: Uint8Array }[]): ReadRecord[] {
  return segments.flatMap((s) => readRecords(s.batches));
}

function checkRun(
  seed: number,
  run: number,
  input: SegmentInput[],
  output: SegmentOutput[],
  cp: number,
  nowMs: number,
  deleteRetentionMs: number,
): void {
  const where = `seed ${seed}, run ${run}, cleanable point ${cp}`;
  const inBatches = batchesOf(input);
  const outBatches = batchesOf(output);
  const inRecords = recordsOf(input);
  const outRecords = recordsOf(output);

  // Segment outputs agree with their batches and keep their offset span.
  output.forEach((s, i) => {
    assert.equal(s.baseOffset, input[i].baseOffset, `${where}: segment base`);
    const inLast = batchesOf([input[i]]).at(-1);
    assert.equal(s.lastOffset, inLast === undefined ? -1 : lastOffset(inLast.info));
    assert.deepEqual(concat(s.batchList.map((b) => b.bytes)), s.batches, `${where}: batchList`);
    assert.equal(s.recordCount, s.batchList.reduce((n, b) => n + b.recordsCount, 0));
    if (!s.changed) assert.equal(s.batches, input[i].batches, `${where}: unchanged segment`);
  });

  // Batches: valid, in order, each keeping an input batch's offsets.
  const inByBase = new Map(inBatches.map((b) => [b.info.baseOffset, b]));
  let previousLast = -1;
  for (const b of outBatches) {
    assert.ok(isBatchCrcValid(b.bytes, { ...b.info, position: 0 }), `${where}: CRC`);
    assert.ok(b.info.baseOffset > previousLast, `${where}: batch order`);
    previousLast = lastOffset(b.info);
    const was = inByBase.get(b.info.baseOffset);
    assert.ok(was !== undefined, `${where}: batch ${b.info.baseOffset} not in the input`);
    assert.equal(lastOffset(b.info), lastOffset(was.info), `${where}: last offset`);
    if (lastOffset(was.info) >= cp) {
      assert.deepEqual(b.bytes, was.bytes, `${where}: batch at ${b.info.baseOffset} reaches cp`);
    }
    if (b.info.recordsCount === 0 && lastOffset(b.info) < cp) {
      const later = inBatches.some((o) =>
        o.info.producerId === b.info.producerId && o.info.baseOffset > b.info.baseOffset
      );
      assert.ok(b.info.producerId >= 0 && !later, `${where}: empty batch ${b.info.baseOffset}`);
    }
  }
  for (const b of inBatches) {
    if (lastOffset(b.info) >= cp) {
      assert.ok(
        outBatches.some((o) => o.info.baseOffset === b.info.baseOffset),
        `${where}: batch ${b.info.baseOffset} reaching cp was removed`,
      );
    }
  }

  // Records: strictly increasing, each identical to the input record at its offset.
  const inByOffset = new Map(inRecords.map((r) => [r.offset, r]));
  let previous = -1;
  for (const r of outRecords) {
    assert.ok(r.offset > previous, `${where}: record order at ${r.offset}`);
    previous = r.offset;
    const was = inByOffset.get(r.offset);
    assert.ok(was !== undefined, `${where}: record ${r.offset} not in the input`);
    assert.deepEqual(r.raw, was.raw, `${where}: record ${r.offset} bytes`);
    assert.equal(r.timestamp, was.timestamp, `${where}: record ${r.offset} timestamp`);
  }
  const outOffsets = new Set(outRecords.map((r) => r.offset));
  for (const r of inRecords) {
    if (r.offset >= cp) assert.ok(outOffsets.has(r.offset), `${where}: record ${r.offset} >= cp`);
  }

  // Which input records are expired tombstones: segment cleaned long enough ago, all below cp.
  const expiredSegment = input.map((s) => {
    const last = batchesOf([s]).at(-1);
    return s.cleanedAtMs !== null && last !== undefined && lastOffset(last.info) < cp &&
      nowMs >= s.cleanedAtMs + deleteRetentionMs;
  });
  const segmentOf = (offset: number) => {
    let index = -1;
    input.forEach((s, i) => {
      if (s.baseOffset <= offset) index = i;
    });
    return index;
  };

  // The reader's view: latest record per key.
  const latestIn = new Map<string, ReadRecord>();
  for (const r of inRecords) if (r.key !== null) latestIn.set(r.key, r);
  const latestOut = new Map<string, ReadRecord>();
  for (const r of outRecords) if (r.key !== null) latestOut.set(r.key, r);
  for (const [key, r] of latestIn) {
    const expired = r.value === null && r.offset < cp && expiredSegment[segmentOf(r.offset)];
    if (expired) {
      assert.ok(!latestOut.has(key), `${where}: expired tombstone for ${key} still has records`);
    } else {
      assert.equal(latestOut.get(key)?.offset, r.offset, `${where}: latest of ${key}`);
    }
  }
  for (const key of latestOut.keys()) assert.ok(latestIn.has(key), `${where}: new key ${key}`);

  // Completeness below the cleanable point (batches entirely below it).
  const seen = new Set<string>();
  for (const b of outBatches) {
    if (lastOffset(b.info) >= cp) continue;
    for (const r of readRecords(b.bytes)) {
      assert.ok(r.key !== null, `${where}: keyless record ${r.offset} below cp`);
      assert.ok(!seen.has(r.key), `${where}: key ${r.key} twice below cp`);
      seen.add(r.key);
    }
  }
}

Deno.test(`property: ${SEED_COUNT} random histories, ${RUNS} runs each on a growing log`, () => {
  let removed = 0;
  let tombstonesRemoved = 0;
  let multiPass = 0;
  let emptiedLater = 0;
  for (let seed = FIRST_SEED; seed < FIRST_SEED + SEED_COUNT; seed++) {
    const random = mulberry32(seed);
    const history = generate(random);
    // Run k sees the first ceil(n * (k + 1) / RUNS) segments: the log grows
    // between runs, and producers write again after their batches were emptied.
    const visibleAt = (run: number) => Math.ceil(history.segments.length * (run + 1) / RUNS);
    let segments: SegmentInput[] = [];
    let firstDirtyOffset: number | undefined = undefined;
    let nowMs = T0;
    const deleteRetentionMs = Math.floor(random() * 3) * 3_600_000;
    for (let run = 0; run < RUNS; run++) {
      segments = segments.concat(history.segments.slice(segments.length, visibleAt(run)));
      const last = batchesOf(segments).at(-1);
      const headOffset = last === undefined ? 0 : lastOffset(last.info) + 1;
      const cp = random() < 0.3 ? headOffset : Math.floor(random() * (headOffset + 1));
      const dedupeBufferBytes = random() < 0.5 ? 1 + Math.floor(random() * 1500) : undefined;
      const result = compactSegments(segments, {
        cleanablePoint: cp,
        nowMs,
        deleteRetentionMs,
        firstDirtyOffset,
        dedupeBufferBytes,
      });
      checkRun(seed, run, segments, result.segments, cp, nowMs, deleteRetentionMs);
      removed += result.stats.recordsRemoved;
      tombstonesRemoved += result.stats.tombstonesRemoved;
      if (result.stats.passes > 1) multiPass++;
      const emptyBefore = batchesOf(segments).filter((b) => b.info.recordsCount === 0).length;
      if (emptyBefore > 0 && result.stats.batchesRemoved > 0) emptiedLater++;
      // The next run starts from this one's output, checkpoint and cleaned-at
      // times. A later run may use a lower cleanable point (min.compaction.lag.ms
      // can grow): the compactor must cope with a checkpoint above it.
      segments = result.segments.map((s) => ({
        baseOffset: s.baseOffset,
        batches: s.batches,
        cleanedAtMs: s.cleanedAtMs,
      }));
      firstDirtyOffset = result.cleanedThroughOffset;
      nowMs += Math.floor(random() * 3) * 3_600_000;
    }
  }
  // The generator must exercise what it claims to.
  assert.ok(
    removed > 0 && tombstonesRemoved > 0 && multiPass > 0 && emptiedLater > 0,
    `removed ${removed}, tombstones ${tombstonesRemoved}, multi-pass runs ${multiPass}, ` +
      `runs after an emptied batch ${emptiedLater}`,
  );
});
