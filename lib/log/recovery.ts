/**
 * Loading a partition on acquisition: from the committed state, a listing
 * of the partition's segment objects and the cluster's write-ahead index,
 * without reading any object body (fast start).
 *
 * - Sealed segments hold offsets below the state's sealed end (for states
 *   written before the write-ahead stream: the end offset). Each one's last
 *   offset is the next segment's base - 1; the last one ends at sealedEnd - 1.
 * - Segment objects with base offset >= the sealed end are orphans of a seal
 *   (or, before the write-ahead stream, a flush) that never committed
 *   (DESIGN invariant 5): deleted. Nothing a committed state references is
 *   ever deleted here: the sealed end only moves after the segment holding
 *   the data below it was written, and write-ahead objects are not touched.
 * - Segments wholly below the log start offset (retention leftovers): deleted.
 * - Compaction rewrites a segment under a new generation key; the committed state names the
 *   current generation of each rewritten base (`compaction.segments`). Other generations are
 *   either replaced ones whose deletion did not happen, or rewrites whose commit never did:
 *   neither is referenced by the committed state, so they are deleted, and exactly one
 *   generation of each segment is ever served.
 * - [sealedEnd, endOffset) is served from write-ahead ranges: walking up from
 *   the sealed end, the range starting at each offset with the highest owner
 *   epoch (a range of a lower epoch at the same offset was written by an
 *   owner whose commit failed, and its successor rewrote those offsets).
 */

import {
  type PartitionState,
  sealedEndOf,
  type WalRangeRecord,
} from "../metadata/cluster_metadata.ts";
import type { ObjectStore } from "../storage/object_store.ts";
import type { Logger } from "../util/logger.ts";
import { mapBounded } from "./bounded.ts";
import { parseSegmentObjectKey } from "./segment_format.ts";
import { WAL_CHUNK_FIXED_BYTES } from "./wal_format.ts";

/** Bound on deletes in flight while cleaning up a partition's objects. */
export const DELETE_CONCURRENCY = 16;

/** A committed segment as the partition log tracks it. */
export interface SegmentMeta {
  baseOffset: number;
  lastOffset: number;
  /** Size of the `.kfs` object in bytes. */
  size: number;
  hasIndex: boolean;
  /** Largest batch max timestamp, or null until the segment was read. */
  maxTimestamp: number | null;
  /** Compaction rewrites: 0 (or absent) as sealed, n for `segment-<base>.g<n>.kfs`. */
  generation?: number;
}

/** A range of a write-ahead index record, with the object it is in. */
export type LocatedWalRange = WalRangeRecord & { object: string };

/** A committed range of the partition in a write-ahead object, not sealed yet. */
export interface WalRange {
  baseOffset: number;
  lastOffset: number;
  /** The write-ahead object's key, and where the range's chunk lies in it (header included). */
  object: string;
  position: number;
  length: number;
  /** Owner epoch of the writer. */
  epoch: number;
  /** Bytes of its record batches. */
  size: number;
  /** Largest batch max timestamp, or null until the range was read. */
  maxTimestamp: number | null;
  /** When this broker committed or found the range (wall clock): its age for `segment.ms`. */
  createdMs: number;
  /** Where a positioned read of the range last ended: offset and object position (a hint). */
  scanHint?: { offset: number; position: number };
}

export interface RecoveredPartition {
  segments: SegmentMeta[];
  sealedEnd: number;
  ranges: WalRange[];
  /** Keys of orphans and expired segments that could not be deleted (retry later). */
  undeleted: string[];
  deleted: number;
}

export async function recoverPartition(input: {
  objectStore: ObjectStore;
  prefix: string;
  state: PartitionState;
  logger: Logger;
  /** The write-ahead ranges recorded for this partition (this topic id), in any order. */
  walRanges?: LocatedWalRange[];
  nowMs?: number;
}): Promise<RecoveredPartition> {
  const { objectStore, prefix, state, logger } = input;
  const sealedEnd = sealedEndOf(state);
  const objects = await objectStore.list(prefix);
  const generations = state.compaction?.segments ?? {};
  const doomed: string[] = [];
  const bases = new Map<number, { kfs?: { key: string; size: number }; index?: string }>();
  for (const object of objects) {
    const parsed = parseSegmentObjectKey(object.key);
    if (!parsed || object.key.slice(prefix.length).includes("/")) continue;
    if (parsed.generation !== (generations[String(parsed.baseOffset)]?.[0] ?? 0)) {
      doomed.push(object.key);
      continue;
    }
    const entry = bases.get(parsed.baseOffset) ?? {};
    if (parsed.kind === "kfs") entry.kfs = { key: object.key, size: object.size };
    else entry.index = object.key;
    bases.set(parsed.baseOffset, entry);
  }

  const committed: { baseOffset: number; key: string; size: number; hasIndex: boolean }[] = [];
  for (const [baseOffset, entry] of bases) {
    const keys = [entry.kfs?.key, entry.index].filter((k): k is string => k !== undefined);
    if (baseOffset >= sealedEnd) {
      doomed.push(...keys);
    } else if (!entry.kfs) {
      logger.warn("Index without segment below the end offset; deleting it", {
        key: entry.index,
      });
      doomed.push(...keys);
    } else {
      committed.push({
        baseOffset,
        key: entry.kfs.key,
        size: entry.kfs.size,
        hasIndex: !!entry.index,
      });
    }
  }
  committed.sort((a, b) => a.baseOffset - b.baseOffset);

  const segments: SegmentMeta[] = [];
  for (let i = 0; i < committed.length; i++) {
    const c = committed[i];
    const lastOffset = i + 1 < committed.length ? committed[i + 1].baseOffset - 1 : sealedEnd - 1;
    if (lastOffset < state.logStartOffset) {
      doomed.push(c.key);
      if (c.hasIndex) doomed.push(c.key.replace(/\.kfs$/, ".index"));
      continue;
    }
    if (!c.hasIndex) logger.warn("Segment has no index; reads will scan it", { key: c.key });
    segments.push({
      baseOffset: c.baseOffset,
      lastOffset,
      size: c.size,
      hasIndex: c.hasIndex,
      maxTimestamp: null,
      generation: generations[String(c.baseOffset)]?.[0] ?? 0,
    });
  }
  const first = segments[0];
  if (
    sealedEnd > state.logStartOffset && (!first || first.baseOffset > state.logStartOffset)
  ) {
    logger.error("Committed data is missing from the object store", {
      prefix,
      logStartOffset: state.logStartOffset,
      endOffset: state.endOffset,
      firstSegment: first?.baseOffset ?? null,
    });
  }

  const results = await mapBounded(doomed, DELETE_CONCURRENCY, (key) => objectStore.delete(key));
  const undeleted = doomed.filter((_, i) => results[i].status === "rejected");
  if (undeleted.length > 0) {
    logger.warn("Cannot delete stale segment objects; will retry before the next write", {
      prefix,
      count: undeleted.length,
    });
  }
  const ranges = chainRanges(
    input.walRanges ?? [],
    state,
    input.nowMs ?? Date.now(),
    logger,
    prefix,
  );
  return { segments, sealedEnd, ranges, undeleted, deleted: doomed.length - undeleted.length };
}

/**
 * The ranges covering [max(sealedEnd, logStartOffset), endOffset), in order:
 * at each offset the range starting there with the highest epoch. A gap or
 * an overshoot means committed data is missing: logged, and reads of those
 * offsets fail with a storage error rather than return something wrong.
 */
function chainRanges(
  records: LocatedWalRange[],
  state: PartitionState,
  nowMs: number,
  logger: Logger,
  prefix: string,
): WalRange[] {
  const byBase = new Map<number, LocatedWalRange>();
  for (const r of records) {
    const other = byBase.get(r.baseOffset);
    if (!other || r.epoch > other.epoch) byBase.set(r.baseOffset, r);
  }
  const out: WalRange[] = [];
  const sealedEnd = sealedEndOf(state);
  // Ranges wholly below the log start are gone with retention; one straddling it is kept.
  let at = sealedEnd;
  if (state.logStartOffset > sealedEnd) {
    const straddling = [...byBase.values()]
      .filter((r) => r.baseOffset <= state.logStartOffset && r.endOffset > state.logStartOffset)
      .sort((a, b) => b.epoch - a.epoch)[0];
    at = straddling?.baseOffset ?? state.logStartOffset;
  }
  while (at < state.endOffset) {
    const r = byBase.get(at);
    if (!r || r.endOffset > state.endOffset || r.endOffset <= at) {
      logger.error("Committed data is missing from the write-ahead stream", {
        prefix,
        offset: at,
        endOffset: state.endOffset,
        found: r ? `${r.baseOffset}-${r.endOffset - 1}` : null,
      });
      break;
    }
    out.push({
      baseOffset: r.baseOffset,
      lastOffset: r.endOffset - 1,
      object: r.object,
      position: r.position,
      length: r.length,
      epoch: r.epoch,
      size: r.length - walHeaderBytes(r),
      maxTimestamp: null,
      createdMs: nowMs,
    });
    at = r.endOffset;
  }
  return out;
}

/** Header bytes of a range's chunk (fixed part plus the UTF-8 topic name). */
function walHeaderBytes(r: WalRangeRecord): number {
  return WAL_CHUNK_FIXED_BYTES + new TextEncoder().encode(r.topic).byteLength;
}
