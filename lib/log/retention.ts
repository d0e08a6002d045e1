/**
 * Retention: a background task on the injected clock that enforces each
 * topic's `retention.ms` and `retention.bytes` by deleting whole segments
 * from the oldest and advancing the partition's log start offset.
 *
 * Rules (Kafka's, on whole segments; KIP-32 for the time rule):
 * - time: a segment whose largest record timestamp is more than
 *   `retention.ms` before now is deleted (-1: no limit);
 * - size: while the partition's segments total more than `retention.bytes`,
 *   the oldest segment whose removal keeps the total at or above the limit is
 *   deleted (-1: no limit).
 * Every segment is immutable once flushed, so the newest one may go too: the
 * log start offset then equals the high watermark and the partition is empty.
 * Undecided data stays: no segment holding offsets at or past the last stable
 * offset (an open transaction's records) is deleted until the transaction ends.
 *
 * The new start offset is committed through the partition log
 * (`advanceLogStartOffset`), so it is a compare-and-swap on the partition's
 * epoch like every end-offset commit; objects are deleted after the commit.
 * The task covers partitions this broker has loaded, and loads (acquires)
 * partitions that hold data and that no other broker owns.
 *
 * Must not import lib/broker: the topic's policy comes from `policyFor`.
 */

import type { ClusterMetadata, TopicRecord } from "../metadata/cluster_metadata.ts";
import type { Clock, TimerHandle } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import type { LogManager, PartitionLog } from "./log_manager.ts";
import type { SegmentMeta } from "./recovery.ts";

/** Kafka's `log.retention.check.interval.ms` default. */
export const DEFAULT_RETENTION_CHECK_INTERVAL_MS = 300_000;
/** Bound on partitions one pass examines; the rest wait for the next pass. */
export const RETENTION_PARTITIONS_PER_PASS_MAX = 100_000;

export interface RetentionPolicy {
  /** -1: keep forever. */
  retentionMs: number;
  /** -1: no size limit. */
  retentionBytes: number;
}

export interface RetentionPassStats {
  partitionsChecked: number;
  segmentsDeleted: number;
  bytesDeleted: number;
  errors: number;
}

export interface RetentionDeps {
  logs: LogManager;
  metadata: ClusterMetadata;
  clock: Clock;
  logger: Logger;
  brokerId: number;
  /** The effective retention settings of a topic (its configs over the broker defaults). */
  policyFor(topic: TopicRecord): RetentionPolicy;
  intervalMs?: number;
}

/**
 * The new log start offset the policy asks for: the end of the last segment
 * to delete, or null when nothing expires. `maxTimestampOf` is asked only
 * for segments the time rule needs, oldest first.
 */
export async function retentionTarget(
  segments: readonly SegmentMeta[],
  policy: RetentionPolicy,
  nowMs: number,
  maxTimestampOf: (segment: SegmentMeta) => Promise<number>,
): Promise<number | null> {
  let deleteCount = 0;
  if (policy.retentionMs >= 0) {
    while (deleteCount < segments.length) {
      const maxTimestamp = await maxTimestampOf(segments[deleteCount]);
      if (nowMs - maxTimestamp <= policy.retentionMs) break;
      deleteCount++;
    }
  }
  if (policy.retentionBytes >= 0) {
    let total = 0;
    for (let i = deleteCount; i < segments.length; i++) total += segments[i].size;
    let excess = total - policy.retentionBytes;
    while (deleteCount < segments.length && excess - segments[deleteCount].size >= 0) {
      excess -= segments[deleteCount].size;
      deleteCount++;
    }
  }
  return deleteCount === 0 ? null : segments[deleteCount - 1].lastOffset + 1;
}

export class RetentionTask {
  readonly #deps: RetentionDeps;
  readonly #intervalMs: number;
  #timer: TimerHandle | null = null;
  #running: Promise<RetentionPassStats> | null = null;
  #started = false;
  #stopped = false;

  constructor(deps: RetentionDeps) {
    const intervalMs = deps.intervalMs ?? DEFAULT_RETENTION_CHECK_INTERVAL_MS;
    if (!Number.isSafeInteger(intervalMs) || intervalMs < 1) {
      throw new RangeError(
        `Retention check interval must be a positive integer, got ${intervalMs}`,
      );
    }
    this.#deps = deps;
    this.#intervalMs = intervalMs;
  }

  /** Runs a pass every interval (the first one interval after start). */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#schedule();
  }

  /** Stops the timer, ends a pass in progress early and waits for it. Final. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = null;
    await this.#running?.catch(() => undefined);
  }

  /** One pass now (or joins the one in progress). */
  runOnce(): Promise<RetentionPassStats> {
    if (this.#running) return this.#running;
    const pass = this.#pass().finally(() => {
      this.#running = null;
    });
    this.#running = pass;
    return pass;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#deps.clock.setTimeout(() => {
      this.#timer = null;
      this.runOnce().catch((error) => {
        this.#deps.logger.warn("Retention pass failed", { error: String(error) });
      }).finally(() => this.#schedule());
    }, this.#intervalMs);
  }

  async #pass(): Promise<RetentionPassStats> {
    const stats: RetentionPassStats = {
      partitionsChecked: 0,
      segmentsDeleted: 0,
      bytesDeleted: 0,
      errors: 0,
    };
    const { metadata, policyFor, logger } = this.#deps;
    const topics = (await metadata.listTopics()).filter((t) => t.state === "active");
    for (const topic of topics) {
      const policy = policyFor(topic);
      if (policy.retentionMs < 0 && policy.retentionBytes < 0) continue;
      for (let p = 0; p < topic.partitions; p++) {
        if (this.#stopped || stats.partitionsChecked >= RETENTION_PARTITIONS_PER_PASS_MAX) {
          return stats;
        }
        stats.partitionsChecked++;
        try {
          const log = await this.#logFor(topic.name, p);
          if (log) await this.#enforce(log, policy, stats);
        } catch (error) {
          stats.errors++;
          logger.warn("Retention skipped a partition", {
            partition: `${topic.name}-${p}`,
            error: error instanceof Error ? error.message : String(error),
          });
        }
      }
    }
    return stats;
  }

  /** The loaded log, or a newly loaded one when the partition has data and no other owner. */
  async #logFor(topic: string, partition: number): Promise<PartitionLog | null> {
    const { logs, metadata, brokerId } = this.#deps;
    const loaded = logs.loadedPartition(topic, partition);
    if (loaded) return loaded;
    const { state } = await metadata.getPartitionState(topic, partition);
    if (state.endOffset <= state.logStartOffset) return null;
    const owner = await metadata.getPartitionOwner(topic, partition);
    if (owner && owner.brokerId !== brokerId) return null;
    return await logs.partition(topic, partition);
  }

  async #enforce(
    log: PartitionLog,
    policy: RetentionPolicy,
    stats: RetentionPassStats,
  ): Promise<void> {
    const target = await retentionTarget(
      log.segments,
      policy,
      this.#deps.clock.now(),
      (s) => log.segmentMaxTimestamp(s.baseOffset),
    );
    if (target === null) return;
    const stable = stableTarget(log, target);
    if (stable <= log.logStartOffset) return;
    const removed = await log.advanceLogStartOffset(stable);
    const bytes = removed.reduce((sum, s) => sum + s.size, 0);
    stats.segmentsDeleted += removed.length;
    stats.bytesDeleted += bytes;
    this.#deps.logger.info("Retention deleted segments", {
      partition: `${log.topic}-${log.partition}`,
      segments: removed.length,
      bytes,
      logStartOffset: log.logStartOffset,
    });
  }
}

/** `target` lowered to the last segment boundary at or below the last stable offset. */
function stableTarget(log: PartitionLog, target: number): number {
  const lso = log.lastStableOffset;
  if (target <= lso) return target;
  let stable = log.logStartOffset;
  for (const s of log.segments) {
    const end = s.lastOffset + 1;
    if (end <= lso && end <= target) stable = Math.max(stable, end);
  }
  return stable;
}
