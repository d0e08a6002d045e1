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
 *   (DESIGN invariant 5): deleted, but only once the committed write-ahead
 *   ranges are seen to cover [sealedEnd, endOffset) with their objects
 *   present, so the orphan's data is known to be held elsewhere. Nothing a
 *   committed state references is ever deleted here: the sealed end only
 *   moves after the segment holding the data below it was written, and
 *   write-ahead objects are not touched.
 * - A seal only copies committed data, so a segment that starts at or beyond
 *   the committed END offset cannot be an orphan of a seal: it holds
 *   acknowledged records the metadata store no longer knows of (a truncated,
 *   damaged or restored metadata log). (Before the write-ahead stream a crash
 *   mid-flush could leave one holding unacknowledged data; that cannot be told
 *   apart, so it is treated the same.)
 *   Deleting it would delete acknowledged data, so the partition refuses to
 *   open (KAFKA_STORAGE_ERROR to clients, an error in the log) and nothing is
 *   deleted; the rule is: recovery never deletes what a committed record may
 *   have referenced.
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
import {
  parseSegmentFooter,
  parseSegmentObjectKey,
  SEGMENT_FOOTER_BYTES,
} from "./segment_format.ts";
import { WAL_CHUNK_FIXED_BYTES } from "./wal_format.ts";
import { LogError } from "./log_error.ts";

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
  /** Segments of other generations than the committed one, by base offset. */
  const otherGenerations = new Map<number, string[]>();
  for (const object of objects) {
    const parsed = parseSegmentObjectKey(object.key);
    if (!parsed || object.key.slice(prefix.length).includes("/")) continue;
    if (parsed.generation !== (generations[String(parsed.baseOffset)]?.[0] ?? 0)) {
      otherGenerations.set(parsed.baseOffset, [
        ...(otherGenerations.get(parsed.baseOffset) ?? []),
        object.key,
      ]);
      continue;
    }
    const entry = bases.get(parsed.baseOffset) ?? {};
    if (parsed.kind === "kfs") entry.kfs = { key: object.key, size: object.size };
    else entry.index = object.key;
    bases.set(parsed.baseOffset, entry);
  }

  const beyond = [...bases.keys()].filter((b) => b >= state.endOffset).sort((a, b) => a - b);
  if (beyond.length > 0) {
    refuse(
      logger,
      prefix,
      state,
      `segment objects start at offsets ${beyond.slice(0, 5).join(", ")}` +
        `${beyond.length > 5 ? ", ..." : ""}, at or beyond the committed end offset ` +
        `${state.endOffset}`,
    );
  }

  // Other generations of a segment go only while the committed generation is there to serve
  // its offsets (a rollback of the metadata could name a generation already deleted).
  for (const [baseOffset, keys] of otherGenerations) {
    if (baseOffset < sealedEnd && !bases.get(baseOffset)?.kfs) {
      refuse(
        logger,
        prefix,
        state,
        `the committed generation of segment ${baseOffset} is missing while ${keys.length} ` +
          `other generation(s) exist`,
      );
    }
    doomed.push(...keys);
  }

  const ranges = chainRanges(
    input.walRanges ?? [],
    state,
    input.nowMs ?? Date.now(),
    logger,
    prefix,
  );
  const committed: { baseOffset: number; key: string; size: number; hasIndex: boolean }[] = [];
  const sealOrphans: string[] = [];
  const orphanSegments: { key: string; size: number }[] = [];
  for (const [baseOffset, entry] of bases) {
    const keys = [entry.kfs?.key, entry.index].filter((k): k is string => k !== undefined);
    if (baseOffset >= sealedEnd) {
      sealOrphans.push(...keys);
      if (entry.kfs) orphanSegments.push(entry.kfs);
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

  // Also for states without a sealed end: such a state is either a fresh partition's (a metadata
  // log cut back to the topic's creation looks the same) or one written before the write-ahead
  // stream, whose orphan would be an unacknowledged flush; the two cannot be told apart, so
  // nothing is deleted there either (the message says how to tell and what to do).
  if (sealOrphans.length > 0) {
    // A seal's orphan holds committed data that the write-ahead stream also holds: it may go
    // only when the committed ranges cover [sealedEnd, endOffset) and their objects exist.
    const covered = ranges.length > 0 && ranges[0].baseOffset <= sealedEnd &&
      ranges[ranges.length - 1].lastOffset + 1 === state.endOffset;
    const objectsThere = covered &&
      (await Promise.all(
        [...new Set(ranges.map((r) => r.object))].map(async (key) =>
          (await objectStore.list(key)).some((o) => o.key === key)
        ),
      )).every((present) => present);
    if (!objectsThere) {
      refuse(
        logger,
        prefix,
        state,
        `segment objects at or beyond the sealed end ${sealedEnd} hold data the write-ahead ` +
          `stream no longer has`,
      );
    }
    // And only when it ends inside the committed range (its footer says where it ends): more
    // would be acknowledged data the metadata lost.
    for (const orphan of orphanSegments) {
      const lastOffset = await orphanLastOffset(objectStore, orphan);
      if (lastOffset === null || lastOffset >= state.endOffset) {
        refuse(
          logger,
          prefix,
          state,
          `segment "${orphan.key}" beyond the sealed end ` +
            (lastOffset === null
              ? "has no readable footer"
              : `ends at offset ${lastOffset}, beyond the committed end ${state.endOffset}`),
        );
      }
    }
  }
  doomed.push(...sealOrphans);

  const results = await mapBounded(doomed, DELETE_CONCURRENCY, (key) => objectStore.delete(key));
  const undeleted = doomed.filter((_, i) => results[i].status === "rejected");
  if (undeleted.length > 0) {
    logger.warn("Cannot delete stale segment objects; will retry before the next write", {
      prefix,
      count: undeleted.length,
    });
  }
  return { segments, sealedEnd, ranges, undeleted, deleted: doomed.length - undeleted.length };
}

/** The last offset a segment's footer names, or null when the footer cannot be read. */
async function orphanLastOffset(
  objectStore: ObjectStore,
  segment: { key: string; size: number },
): Promise<number | null> {
  if (segment.size < SEGMENT_FOOTER_BYTES) return null;
  try {
    const footer = await objectStore.getRange(
      segment.key,
      segment.size - SEGMENT_FOOTER_BYTES,
      segment.size,
    );
    return footer ? parseSegmentFooter(footer).lastOffset : null;
  } catch {
    return null;
  }
}

/**
 * Stops the load of a partition whose objects say the metadata store is behind the data: an
 * error in the log and a storage error to clients, and nothing deleted.
 */
function refuse(logger: Logger, prefix: string, state: PartitionState, why: string): never {
  const message = `Partition objects under "${prefix}": ${why}: the metadata store is behind ` +
    `the data (a truncated, damaged or restored metadata log?). Nothing was deleted; the ` +
    `partition stays offline until the metadata is restored (see "kafscale metadata check") ` +
    `or those objects are moved away (a data directory written before the write-ahead stream ` +
    `that crashed mid-flush leaves one such segment, holding unacknowledged data)`;
  logger.error("Refusing to open a partition whose data is beyond its metadata", {
    prefix,
    endOffset: state.endOffset,
    sealedEnd: sealedEndOf(state),
    why,
  });
  throw LogError.storage(message);
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
