/**
 * Loading a partition on acquisition: from the committed state and a listing
 * of the partition's objects, without reading any object body (fast start).
 *
 * - Objects with base offset >= the committed end offset are orphans of a
 *   failed or fenced flush (DESIGN invariant 5): deleted.
 * - Segments wholly below the log start offset (retention leftovers): deleted.
 * - Each committed segment's last offset is the next segment's base - 1; the
 *   last one ends at endOffset - 1.
 */

import type { PartitionState } from "../metadata/cluster_metadata.ts";
import type { ObjectStore } from "../storage/object_store.ts";
import type { Logger } from "../util/logger.ts";
import { mapBounded } from "./bounded.ts";
import { parseSegmentObjectKey } from "./segment_format.ts";

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
}

export interface RecoveredPartition {
  segments: SegmentMeta[];
  /** Keys of orphans and expired segments that could not be deleted (retry later). */
  undeleted: string[];
  deleted: number;
}

export async function recoverPartition(input: {
  objectStore: ObjectStore;
  prefix: string;
  state: PartitionState;
  logger: Logger;
}): Promise<RecoveredPartition> {
  const { objectStore, prefix, state, logger } = input;
  const objects = await objectStore.list(prefix);
  const bases = new Map<number, { kfs?: { key: string; size: number }; index?: string }>();
  for (const object of objects) {
    const parsed = parseSegmentObjectKey(object.key);
    if (!parsed || object.key.slice(prefix.length).includes("/")) continue;
    const entry = bases.get(parsed.baseOffset) ?? {};
    if (parsed.kind === "kfs") entry.kfs = { key: object.key, size: object.size };
    else entry.index = object.key;
    bases.set(parsed.baseOffset, entry);
  }

  const doomed: string[] = [];
  const committed: { baseOffset: number; key: string; size: number; hasIndex: boolean }[] = [];
  for (const [baseOffset, entry] of bases) {
    const keys = [entry.kfs?.key, entry.index].filter((k): k is string => k !== undefined);
    if (baseOffset >= state.endOffset) {
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
    const lastOffset = i + 1 < committed.length
      ? committed[i + 1].baseOffset - 1
      : state.endOffset - 1;
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
    });
  }
  const first = segments[0];
  if (
    state.endOffset > state.logStartOffset && (!first || first.baseOffset > state.logStartOffset)
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
  return { segments, undeleted, deleted: doomed.length - undeleted.length };
}
