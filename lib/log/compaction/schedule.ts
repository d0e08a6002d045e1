/**
 * When a compacted partition is compacted, and over what: the policy from the
 * topic's configs and the pure decisions the partition log and the log
 * manager take with it (README "Compaction"). No I/O.
 */

import type { CompactionState } from "../../metadata/cluster_metadata.ts";

/** A compacted topic's cleaner settings (Kafka's topic configs of the same names). */
export interface CompactionPolicy {
  /** min.compaction.lag.ms: records younger than this are never removed. */
  minCompactionLagMs: number;
  /** max.compaction.lag.ms: dirty data that waited this long is compacted whatever the ratio. */
  maxCompactionLagMs: number;
  /** delete.retention.ms: how long a tombstone stays after its segment was first cleaned. */
  deleteRetentionMs: number;
  /** min.cleanable.dirty.ratio: compact once dirty bytes / all sealed bytes reach it. */
  minCleanableDirtyRatio: number;
}

/** Bounds of one compaction run, broker-wide settings. */
export interface CompactionLimits {
  /** Key map bound (Kafka's log.cleaner.dedupe.buffer.size); more keys mean more passes. */
  dedupeBufferBytes: number;
  /**
   * Sealed bytes read by one run: the oldest segments up to this (at least one). Later
   * segments are compacted by later runs, once the earlier ones are clean.
   */
  inputBytesMax: number;
}

/**
 * Defaults: a 32 MiB key map and 64 MiB of segments read per run (the run holds them in
 * memory while it compacts them).
 */
export const DEFAULT_COMPACTION_LIMITS: CompactionLimits = Object.freeze({
  dedupeBufferBytes: 32 * 1024 * 1024,
  inputBytesMax: 64 * 1024 * 1024,
});

/**
 * Longest a compacted partition with nothing new sealed waits before it is compacted again,
 * so tombstones past delete.retention.ms and records past min.compaction.lag.ms go.
 */
export const COMPACTION_RECHECK_MAX_MS = 60 * 60 * 1000;
/** Shortest such wait (a run re-reads the partition's sealed segments). */
export const COMPACTION_RECHECK_MIN_MS = 1_000;

/** How long replaced segment objects stay readable for reads already under way. */
export const REPLACED_SEGMENT_GRACE_MS = 30_000;

/** The segments' share of bytes not yet deduplicated (from `cleanedThrough` on), 0 when none. */
export function segmentDirtyRatio(
  segments: readonly { baseOffset: number; lastOffset: number; size: number }[],
  cleanedThrough: number,
): number {
  let total = 0;
  let dirty = 0;
  for (const s of segments) {
    total += s.size;
    if (s.lastOffset >= cleanedThrough) dirty += s.size;
  }
  return total === 0 ? 0 : dirty / total;
}

/** How long an unchanged compacted partition waits before its next run. */
export function recheckMs(policy: CompactionPolicy): number {
  const waits = [policy.deleteRetentionMs];
  if (policy.minCompactionLagMs > 0) waits.push(policy.minCompactionLagMs);
  const wait = Math.min(...waits);
  return Math.min(COMPACTION_RECHECK_MAX_MS, Math.max(COMPACTION_RECHECK_MIN_MS, wait));
}

/**
 * The committed compaction state after a run (or a retention step), keeping only entries of
 * segments that remain: `replaced` gives new generations, `cleaned` first-cleaned times, and
 * `live` says which base offsets still have a segment.
 */
export function nextCompactionState(
  current: CompactionState,
  change: {
    generations: ReadonlyMap<number, number>;
    cleanedAtMs: ReadonlyMap<number, number>;
    cleanedThrough: number;
  } | null,
  live: (baseOffset: number) => boolean,
): CompactionState {
  const segments: Record<string, [number, number]> = {};
  for (const [base, entry] of Object.entries(current.segments)) {
    if (live(Number(base))) segments[base] = [entry[0], entry[1]];
  }
  if (change) {
    for (const [base, generation] of change.generations) {
      if (!live(base)) continue;
      segments[String(base)] = [generation, segments[String(base)]?.[1] ?? -1];
    }
    for (const [base, at] of change.cleanedAtMs) {
      if (!live(base)) continue;
      const entry = segments[String(base)] ?? [0, -1];
      segments[String(base)] = [entry[0], entry[1] >= 0 ? entry[1] : at];
    }
  }
  return {
    segments,
    cleanedThrough: Math.max(current.cleanedThrough, change?.cleanedThrough ?? 0),
  };
}

/** A state with no entry and nothing cleaned is not written (older states stay as they were). */
export function isEmptyCompactionState(state: CompactionState): boolean {
  return state.cleanedThrough === 0 && Object.keys(state.segments).length === 0;
}
