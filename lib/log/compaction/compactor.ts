/**
 * Log compaction (`cleanup.policy=compact`) as one pure function over a
 * partition's sealed segments: Kafka's LogCleaner, minus the I/O.
 *
 * Given the segments' batches in offset order, `compactSegments` returns new
 * batches per segment so that, below the cleanable point, only the latest
 * record of every key remains, and tombstones go once they have been visible
 * for `delete.retention.ms`. The caller (the sealing pipeline) reads the
 * segments, calls this, writes the changed segments create-only and swaps
 * them in with an epoch-checked metadata commit (README, "Compaction").
 *
 * Rules, with Kafka's names (LogCleaner.scala, MemoryRecords.filterTo):
 * - Key map. Records with a key, from `firstDirtyOffset` up to the cleanable
 *   point, go into a bounded map key -> latest offset (dedupe buffer). When a
 *   new key does not fit, the pass ends at that record's offset ("partially
 *   mapped"); the filter then runs over everything before that offset, and
 *   the next pass starts a fresh map there. Passes repeat until the whole
 *   cleanable range has been mapped.
 * - Filter, for records below the pass's map end (later records stay):
 *   a record whose key has a later offset in the map goes; a record without
 *   a key goes (Kafka counts it as invalid: a compacted topic needs keys);
 *   a tombstone that is the latest for its key goes only when its segment
 *   was first cleaned at least `deleteRetentionMs` ago (Kafka before KIP-534
 *   kept this horizon per segment, from the segment's last-modified time; KIP-534
 *   moved it into the batch, which would mean rewriting batches that lose
 *   nothing, and we keep those byte for byte). Everything else stays.
 * - The cleanable point (first offset that must not change: the unsealed
 *   head, or the first batch within `min.compaction.lag.ms`, whichever is
 *   lower; see {@link cleanablePoint}) bounds the map and the filter: batches
 *   that reach it are neither read nor rewritten.
 * - Batches: one that loses no record keeps its bytes; one that loses some
 *   is rewritten (batch_records.ts: offsets, attributes, producer fields
 *   kept, CRC recomputed, same codec); one that loses all is dropped, except
 *   the last batch of a producer id, which stays as an empty batch
 *   (Kafka's BatchRetention.RETAIN_EMPTY) so the producer's last sequence and
 *   offset survive for idempotence after a reload. Such an empty batch goes
 *   in a later run once it is no longer its producer's last.
 * - Transactions (with `abortedTransactions`, the partition's aborted ranges; the caller
 *   caps the cleanable point at the last stable offset, so nothing undecided is read):
 *   committed transactional data is compacted like any other; data of an aborted
 *   transaction is dropped and never feeds the map (an aborted value must not remove the
 *   committed one before it); control batches (COMMIT/ABORT markers) are kept as they are,
 *   so readers still see every transaction end. Without `abortedTransactions`,
 *   transactional batches pass through untouched and hold back tombstone removal.
 *   A batch that cannot be read below the cleanable point holds back tombstone removal
 *   for the run too: an older value kept inside it would come back.
 *
 * Pure: no I/O, no clock (`nowMs` is an input), input bytes never mutated.
 */

import {
  type BatchInfo,
  isBatchCrcValid,
  lastOffset,
  readBatchInfo,
  scanBatches,
} from "../../protocol/record_batch.ts";
import { MAX_DECOMPRESSED_BATCH_BYTES } from "../../protocol/records.ts";
import {
  type BatchRecords,
  BatchRecordsError,
  emptyBatchLike,
  readBatchRecords,
  rewriteBatch,
} from "./batch_records.ts";
import { DEFAULT_DEDUPE_BUFFER_BYTES, KeyOffsetMap } from "./key_offset_map.ts";

/** One sealed segment as the compactor sees it. */
export interface SegmentInput {
  /** The segment's base offset (from its object key / header). */
  baseOffset: number;
  /** The segment body: its v2 batches, concatenated, with broker-assigned base offsets. */
  batches: Uint8Array;
  /**
   * When the segment was first compacted (unix ms), as returned in
   * {@link SegmentOutput.cleanedAtMs} by an earlier run; null if never. Its
   * tombstones are removed from `cleanedAtMs + deleteRetentionMs` on.
   */
  cleanedAtMs: number | null;
}

export interface CompactionOptions {
  /**
   * First offset that must not change. Records at or after it are never
   * removed, and batches that reach it are left as they are.
   */
  cleanablePoint: number;
  /** The caller's clock, for tombstone expiry. */
  nowMs: number;
  /** The topic's delete.retention.ms (Kafka's default: 86,400,000). */
  deleteRetentionMs: number;
  /**
   * Where the key map starts: the `cleanedThroughOffset` of the previous run
   * (Kafka's cleaner checkpoint). Records before it are taken as already
   * deduplicated among themselves. Default: the first offset of the input.
   */
  firstDirtyOffset?: number;
  /** Bound of the key map (log.cleaner.dedupe.buffer.size). Default 128 MiB. */
  dedupeBufferBytes?: number;
  /**
   * Producer id -> offset of its last record, from the partition's producer
   * state. A batch emptied by compaction is kept as an empty batch when its
   * last offset is its producer's. Default: each producer id's last batch
   * within the input.
   */
  producerLastOffsets?: ReadonlyMap<number, number>;
  /** Largest records section a batch may inflate to. Default 64 MiB. */
  maxDecompressedBatchBytes?: number;
  /**
   * A batch ending at this offset is kept as an empty batch rather than dropped when it loses
   * every record. The partition log passes the last offset of the input, so the log never ends
   * in a gap: a consumer fetching inside it gets that batch and moves to the high watermark
   * instead of fetching the same offset forever.
   */
  retainBatchEndingAt?: number;
  /**
   * The partition's aborted transactions (producer id, first offset, ABORT marker offset).
   * Given, committed transactional data is compacted and aborted data dropped; absent,
   * transactional batches are left alone.
   */
  abortedTransactions?: readonly { producerId: number; firstOffset: number; lastOffset: number }[];
}

/**
 * One batch of a compacted segment, with the header fields the segment
 * writer and the read path's segment view need (a structural superset of
 * segment_format.ts's SegmentBatchInput).
 */
export interface CompactedBatch {
  /** The batch's bytes: a view of the input when it kept all its records. */
  bytes: Uint8Array;
  baseOffset: number;
  lastOffsetDelta: number;
  recordsCount: number;
  maxTimestamp: number;
  attributes: number;
}

/** One segment after compaction, in the order of the input. */
export interface SegmentOutput {
  baseOffset: number;
  /**
   * The input segment's last offset (its last batch's last offset, gaps
   * included), or -1 for an empty segment. Compaction never changes the
   * offsets a segment spans; write this in the segment footer.
   */
  lastOffset: number;
  /** The batches that remain, concatenated (possibly none). */
  batches: Uint8Array;
  /**
   * The same batches one by one, in order. Offsets have gaps where batches
   * went: `baseOffset` of one batch is above the previous batch's last offset
   * + 1 there, never equal or below.
   */
  batchList: CompactedBatch[];
  /** Largest maxTimestamp of the remaining batches, or -1 if none remain. */
  maxTimestamp: number;
  /** False when every batch kept its bytes: nothing to rewrite. */
  changed: boolean;
  /** Records in `batches` (sum of recordsCount), for the segment header. */
  recordCount: number;
  /** Persist with the segment: set on the first run that cleaned all of it. */
  cleanedAtMs: number | null;
  bytesIn: number;
  bytesOut: number;
}

export interface CompactionStats {
  bytesIn: number;
  bytesOut: number;
  /** Records removed, all causes. */
  recordsRemoved: number;
  /** ... because a later record has the same key. */
  supersededRemoved: number;
  /** ... because they were tombstones past delete.retention.ms. */
  tombstonesRemoved: number;
  /** ... because they belonged to aborted transactions. */
  abortedRemoved: number;
  /** ... because they had no key. */
  keylessRemoved: number;
  batchesRewritten: number;
  batchesRemoved: number;
  /** Batches emptied but kept as a header for their producer's sequence. */
  emptyBatchesKept: number;
  /** Key-map passes run (more than one when the keys exceed the dedupe buffer). */
  passes: number;
  /** Most distinct keys the map held in one pass. */
  mapKeysMax: number;
  /** Batches below the cleanable point that were left alone because they cannot be read. */
  unreadableBatches: { baseOffset: number; reason: string }[];
  /** Why tombstones were not removed in this run, or null. */
  tombstonesHeldBecause: string | null;
}

export interface CompactionResult {
  segments: SegmentOutput[];
  stats: CompactionStats;
  /**
   * The offset everything before which is now clean: pass it as
   * `firstDirtyOffset` next time (and use it for the dirty ratio).
   */
  cleanedThroughOffset: number;
}

/** Bad input: the caller handed over bytes that are not a sealed log. */
export class CompactionInputError extends Error {
  override name = "CompactionInputError";
}

interface Entry {
  segment: number;
  /** The batch's bytes (a view of the input until rewritten). */
  bytes: Uint8Array;
  /** Header, with position 0 in `bytes`. */
  info: BatchInfo;
  cleanable: boolean;
  /** Data of an aborted transaction: dropped, never mapped. */
  aborted: boolean;
}

/**
 * The cleanable point for a partition: the lower of `headOffset` (the first
 * offset not in a sealed segment) and the base offset of the first batch
 * whose maxTimestamp is within `minCompactionLagMs` of `nowMs` — Kafka's
 * min.compaction.lag.ms, at batch rather than segment granularity.
 */
export function cleanablePoint(
  segments: readonly SegmentInput[],
  headOffset: number,
  nowMs: number,
  minCompactionLagMs: number,
): number {
  if (minCompactionLagMs <= 0) return headOffset;
  const newestAllowed = nowMs - minCompactionLagMs;
  for (const segment of segments) {
    for (const batch of scanBatches(segment.batches).batches) {
      if (batch.baseOffset >= headOffset) return headOffset;
      if (batch.maxTimestamp > newestAllowed) return batch.baseOffset;
    }
  }
  return headOffset;
}

/**
 * Kafka's cleanable ratio (LogCleanerManager): the bytes of batches from
 * `firstDirtyOffset` on, over the bytes of all batches, counting only
 * batches entirely before `cleanablePointOffset`. 0 when none are. The
 * scheduler compares it with min.cleanable.dirty.ratio; /metrics shows it.
 * Reads batch headers only.
 */
export function dirtyRatio(
  segments: readonly SegmentInput[],
  firstDirtyOffset: number,
  cleanablePointOffset: number,
): number {
  let total = 0;
  let dirty = 0;
  for (const segment of segments) {
    for (const batch of scanBatches(segment.batches).batches) {
      if (lastOffset(batch) >= cleanablePointOffset) continue;
      total += batch.size;
      if (lastOffset(batch) >= firstDirtyOffset) dirty += batch.size;
    }
  }
  return total === 0 ? 0 : dirty / total;
}

function loadEntries(
  segments: readonly SegmentInput[],
  cleanablePointOffset: number,
  isAborted: ((info: BatchInfo) => boolean) | null,
): Entry[] {
  const entries: Entry[] = [];
  let previousLast = -1;
  segments.forEach((segment, index) => {
    const { batches, validBytes } = scanBatches(segment.batches);
    if (validBytes !== segment.batches.length) {
      throw new CompactionInputError(
        `Segment ${segment.baseOffset} has ${segment.batches.length - validBytes} bytes ` +
          `after its last whole batch (at byte ${validBytes}); compact only sealed, verified segments`,
      );
    }
    for (const info of batches) {
      if (info.baseOffset <= previousLast || info.baseOffset < segment.baseOffset) {
        throw new CompactionInputError(
          `Batch at offset ${info.baseOffset} in segment ${segment.baseOffset} does not follow ` +
            `offset ${previousLast}; pass the segments in offset order`,
        );
      }
      previousLast = lastOffset(info);
      const bytes = segment.batches.subarray(info.position, info.position + info.size);
      const aborted = info.isTransactional && !info.isControl && isAborted !== null &&
        isAborted(info);
      entries.push({
        segment: index,
        bytes,
        info: readBatchInfo(bytes, 0),
        cleanable: !info.isControl && (!info.isTransactional || isAborted !== null) &&
          lastOffset(info) < cleanablePointOffset,
        aborted,
      });
    }
  });
  return entries;
}

/** Whether a transactional batch lies in one of its producer's aborted ranges. */
function abortedLookup(
  aborted: CompactionOptions["abortedTransactions"],
): ((info: BatchInfo) => boolean) | null {
  if (aborted === undefined) return null;
  const byProducer = new Map<number, { firstOffset: number; lastOffset: number }[]>();
  for (const a of aborted) {
    const list = byProducer.get(a.producerId) ?? [];
    list.push(a);
    byProducer.set(a.producerId, list);
  }
  return (info) =>
    (byProducer.get(info.producerId) ?? []).some((a) =>
      a.firstOffset <= info.baseOffset && info.baseOffset < a.lastOffset
    );
}

function producerLastOffsetsOf(entries: readonly Entry[]): Map<number, number> {
  const last = new Map<number, number>();
  for (const { info } of entries) {
    if (info.producerId >= 0) last.set(info.producerId, lastOffset(info));
  }
  return last;
}

function emptyStats(): CompactionStats {
  return {
    bytesIn: 0,
    bytesOut: 0,
    recordsRemoved: 0,
    supersededRemoved: 0,
    tombstonesRemoved: 0,
    abortedRemoved: 0,
    keylessRemoved: 0,
    batchesRewritten: 0,
    batchesRemoved: 0,
    emptyBatchesKept: 0,
    passes: 0,
    mapKeysMax: 0,
    unreadableBatches: [],
    tombstonesHeldBecause: null,
  };
}

/**
 * Opens every cleanable batch once up front to find the unreadable ones
 * (bad CRC, codec or record framing): they are left alone from then on.
 */
function setAsideUnreadable(entries: Entry[], maxBytes: number, stats: CompactionStats): void {
  for (const entry of entries) {
    if (!entry.cleanable) continue;
    let reason: string | null = null;
    if (!isBatchCrcValid(entry.bytes, entry.info)) reason = "CRC32C mismatch";
    else {
      try {
        readBatchRecords(entry.bytes, entry.info, maxBytes);
      } catch (e) {
        if (!(e instanceof BatchRecordsError)) throw e;
        reason = e.message;
      }
    }
    if (reason !== null) {
      entry.cleanable = false;
      stats.unreadableBatches.push({ baseOffset: entry.info.baseOffset, reason });
    }
  }
}

function tombstoneHold(
  entries: readonly Entry[],
  cleanablePointOffset: number,
  stats: CompactionStats,
): string | null {
  if (stats.unreadableBatches.length > 0) {
    return `batch at offset ${stats.unreadableBatches[0].baseOffset} cannot be read`;
  }
  const txn = entries.find((e) =>
    e.info.isTransactional && !e.info.isControl && !e.cleanable &&
    e.info.baseOffset < cleanablePointOffset
  );
  return txn === undefined
    ? null
    : `transactional batch at offset ${txn.info.baseOffset} (transactions are not compacted yet)`;
}

/**
 * Fills `map` from the cleanable records at or after `dirtyStart`, in
 * offset order. Returns the offset where the map stopped (the first record
 * whose new key did not fit), or null when every record fitted.
 */
function buildMap(
  entries: readonly Entry[],
  dirtyStart: number,
  map: KeyOffsetMap,
  maxBytes: number,
): number | null {
  map.clear();
  for (const entry of entries) {
    if (!entry.cleanable || entry.aborted || lastOffset(entry.info) < dirtyStart) continue;
    for (const record of readBatchRecords(entry.bytes, entry.info, maxBytes).records) {
      if (record.offset < dirtyStart || record.key === null) continue;
      if (!map.put(record.key, record.offset)) return record.offset;
    }
  }
  return null;
}

interface FilterContext {
  map: KeyOffsetMap;
  mapEnd: number;
  tombstonesExpire: (segment: number) => boolean;
  stats: CompactionStats;
}

/** Indexes of the records of `opened` that stay. */
function recordsToKeep(opened: BatchRecords, segment: number, ctx: FilterContext): number[] {
  const keep: number[] = [];
  opened.records.forEach((record, index) => {
    if (record.offset >= ctx.mapEnd) {
      keep.push(index);
      return;
    }
    if (record.key === null) {
      ctx.stats.keylessRemoved++;
      return;
    }
    const latest = ctx.map.get(record.key);
    if (latest !== undefined && latest > record.offset) {
      ctx.stats.supersededRemoved++;
      return;
    }
    if (record.valueIsNull && ctx.tombstonesExpire(segment)) {
      ctx.stats.tombstonesRemoved++;
      return;
    }
    keep.push(index);
  });
  ctx.stats.recordsRemoved += opened.records.length - keep.length;
  return keep;
}

/** Runs the filter over the cleanable batches before `ctx.mapEnd`; returns the entries that stay. */
function filterPass(
  entries: readonly Entry[],
  ctx: FilterContext,
  retainEmpty: (info: BatchInfo) => boolean,
  maxBytes: number,
): Entry[] {
  const out: Entry[] = [];
  for (const entry of entries) {
    if (!entry.cleanable || entry.info.baseOffset >= ctx.mapEnd) {
      out.push(entry);
      continue;
    }
    const opened = readBatchRecords(entry.bytes, entry.info, maxBytes);
    let keep: number[];
    if (entry.aborted) {
      keep = [];
      ctx.stats.recordsRemoved += opened.records.length;
      ctx.stats.abortedRemoved += opened.records.length;
    } else {
      keep = recordsToKeep(opened, entry.segment, ctx);
    }
    if (opened.records.length === 0 && !retainEmpty(entry.info)) {
      // An empty batch left by an earlier run whose producer has written
      // since (or expired): Kafka's BatchRetention.DELETE_EMPTY.
      ctx.stats.batchesRemoved++;
    } else if (keep.length === opened.records.length) {
      out.push(entry);
    } else if (keep.length > 0 || retainEmpty(entry.info)) {
      const bytes = keep.length > 0
        ? rewriteBatch(entry.bytes, opened, keep)
        : emptyBatchLike(entry.bytes, entry.info);
      if (keep.length > 0) ctx.stats.batchesRewritten++;
      else ctx.stats.emptyBatchesKept++;
      out.push({ ...entry, bytes, info: readBatchInfo(bytes, 0) });
    } else {
      ctx.stats.batchesRemoved++;
    }
  }
  return out;
}

function bySegment(entries: readonly Entry[], count: number): Entry[][] {
  const groups: Entry[][] = Array.from({ length: count }, () => []);
  for (const entry of entries) groups[entry.segment].push(entry);
  return groups;
}

function assembleOutputs(
  segments: readonly SegmentInput[],
  original: readonly Entry[],
  kept: readonly Entry[],
  cleanablePointOffset: number,
  nowMs: number,
): SegmentOutput[] {
  const beforeBySegment = bySegment(original, segments.length);
  const afterBySegment = bySegment(kept, segments.length);
  return segments.map((segment, index) => {
    const before = beforeBySegment[index];
    const after = afterBySegment[index];
    const changed = before.length !== after.length ||
      after.some((entry, i) => entry.bytes !== before[i].bytes);
    let batches = segment.batches;
    if (changed) {
      batches = new Uint8Array(after.reduce((n, e) => n + e.bytes.length, 0));
      let pos = 0;
      for (const entry of after) {
        batches.set(entry.bytes, pos);
        pos += entry.bytes.length;
      }
    }
    const last = before.length === 0 ? -1 : lastOffset(before[before.length - 1].info);
    const fullyCleanable = last < cleanablePointOffset;
    const batchList = after.map(({ bytes, info }) => ({
      bytes,
      baseOffset: info.baseOffset,
      lastOffsetDelta: info.lastOffsetDelta,
      recordsCount: info.recordsCount,
      maxTimestamp: info.maxTimestamp,
      attributes: info.attributes,
    }));
    return {
      baseOffset: segment.baseOffset,
      lastOffset: last,
      batches,
      batchList,
      maxTimestamp: batchList.reduce((m, b) => Math.max(m, b.maxTimestamp), -1),
      changed,
      recordCount: after.reduce((n, e) => n + e.info.recordsCount, 0),
      cleanedAtMs: segment.cleanedAtMs ?? (fullyCleanable ? nowMs : null),
      bytesIn: segment.batches.length,
      bytesOut: batches.length,
    };
  });
}

/**
 * Compacts a partition's sealed segments (see the module comment for the
 * rules). `segments` must start at the log start offset and be in offset
 * order: a prefix of the sealed log is fine (later records are just not
 * seen), a window that skips the oldest segments is not (a tombstone could
 * expire while an older value of its key sits in a skipped segment).
 * Guarantees, for the returned segments:
 * - every batch is a valid v2 batch (CRC32C correct), offsets strictly
 *   increase, and each batch keeps the base and last offset it had;
 * - a batch that lost no record is the input's bytes (same view, not a copy);
 * - no record at or after `cleanablePoint` is removed, and no batch reaching
 *   it is changed;
 * - below it, a reader from the start ends with the same latest value per
 *   key as before, except keys whose latest record is an expired tombstone,
 *   which are gone; each key keeps only its latest record (plus records in
 *   batches that are left alone: transactional, control or unreadable).
 * Throws CompactionInputError for bytes that are not whole batches in
 * offset order.
 */
export function compactSegments(
  segments: readonly SegmentInput[],
  options: CompactionOptions,
): CompactionResult {
  const cp = options.cleanablePoint;
  const maxBytes = options.maxDecompressedBatchBytes ?? MAX_DECOMPRESSED_BATCH_BYTES;
  const stats = emptyStats();
  const original = loadEntries(segments, cp, abortedLookup(options.abortedTransactions));
  setAsideUnreadable(original, maxBytes, stats);
  stats.tombstonesHeldBecause = tombstoneHold(original, cp, stats);

  const producerLast = options.producerLastOffsets ?? producerLastOffsetsOf(original);
  const retainEmpty = (info: BatchInfo) =>
    (info.producerId >= 0 && producerLast.get(info.producerId) === lastOffset(info)) ||
    lastOffset(info) === options.retainBatchEndingAt;
  const originalBySegment = bySegment(original, segments.length);
  const expired = segments.map((s, index) => {
    const batches = originalBySegment[index];
    const last = batches.length === 0 ? -1 : lastOffset(batches[batches.length - 1].info);
    return stats.tombstonesHeldBecause === null && s.cleanedAtMs !== null && last < cp &&
      options.nowMs >= s.cleanedAtMs + options.deleteRetentionMs;
  });
  const firstOffset = original.length === 0 ? 0 : original[0].info.baseOffset;
  let dirtyStart = options.firstDirtyOffset ?? firstOffset;

  const map = new KeyOffsetMap(options.dedupeBufferBytes ?? DEFAULT_DEDUPE_BUFFER_BYTES);
  let entries: Entry[] = original.slice();
  // Bounded: each pass maps at least one record past dirtyStart (the map
  // always admits one key), so passes <= records in the cleanable range + 1.
  if (original.some((e) => e.cleanable)) {
    for (;;) {
      const stoppedAt = buildMap(entries, dirtyStart, map, maxBytes);
      stats.passes++;
      stats.mapKeysMax = Math.max(stats.mapKeysMax, map.size);
      const mapEnd = stoppedAt ?? cp;
      const ctx: FilterContext = {
        map,
        mapEnd,
        tombstonesExpire: (segment) => expired[segment],
        stats,
      };
      entries = filterPass(entries, ctx, retainEmpty, maxBytes);
      if (stoppedAt === null) break;
      dirtyStart = stoppedAt;
    }
  }
  map.clear();

  const outputs = assembleOutputs(segments, original, entries, cp, options.nowMs);
  for (const out of outputs) {
    stats.bytesIn += out.bytesIn;
    stats.bytesOut += out.bytesOut;
  }
  const belowCp = original.filter((e) => lastOffset(e.info) < cp);
  const cleanedThroughOffset = belowCp.length === 0
    ? dirtyStart
    : Math.max(options.firstDirtyOffset ?? 0, lastOffset(belowCp[belowCp.length - 1].info) + 1);
  return { segments: outputs, stats, cleanedThroughOffset };
}
