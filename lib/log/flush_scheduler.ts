/**
 * Group commit for all partitions of one LogManager (DESIGN invariant 2).
 *
 * A flush round takes everything pending in every partition, writes each
 * partition's segment and index objects concurrently (at most
 * `writeConcurrency` partitions at a time), then commits ALL their new end
 * offsets in one `commitPartitions` call, and only then tells each partition
 * how its flush ended (which resolves producers and wakes fetch long-polls).
 * Appends arriving during a round go to the next round; one round is in
 * flight at a time.
 *
 * Triggers: pending bytes >= `flushBytes`, or `flushIntervalMs` after the
 * first pending append (a timer on the injected clock, so a quiet partition
 * is flushed without waiting for another append), or `drain()`.
 *
 * Knows nothing about segment bytes: partitions implement `FlushSource`.
 */

import type { ClusterMetadata, PartitionCommit } from "../metadata/cluster_metadata.ts";
import type { Clock, TimerHandle } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import { mapBounded } from "./bounded.ts";
import { LogError } from "./log_error.ts";

/** Default bound on partitions writing their objects at once within a round. */
export const FLUSH_WRITE_CONCURRENCY = 16;
/** Bound on rounds `drain()` runs before giving up (only reached if appends never stop). */
export const DRAIN_ROUNDS_MAX = 1_000;

/** One partition's share of a flush round. */
export interface PreparedFlush {
  /** Writes the segment and index objects; rejects (preferably with LogError) on failure. */
  write(): Promise<void>;
  /** The end-offset commit to make once `write` succeeded. Read after `write`. */
  commit(): PartitionCommit;
  /** The commit succeeded with this state revision. */
  committed(revision: number): void;
  /**
   * The write or the commit failed; nothing of this flush may be acknowledged.
   * `phase: "commit"` means the outcome of the commit is unknown.
   */
  failed(error: LogError, phase: "write" | "commit"): void;
}

export interface FlushSource {
  /** Moves everything pending into a flush (synchronously), or returns null. */
  takeFlush(): PreparedFlush | null;
}

export interface FlushSchedulerOptions {
  clock: Clock;
  logger: Logger;
  metadata: ClusterMetadata;
  flushBytes: number;
  flushIntervalMs: number;
  writeConcurrency?: number;
  /** Called right before the commit; throws LogError to abort it (e.g. lease deadline passed). */
  beforeCommit?: () => void;
}

export interface FlushStats {
  rounds: number;
  flushes: number;
  failedFlushes: number;
  /** Summed wall time of the write phase and of the commit phase, in ms. */
  writeMs: number;
  commitMs: number;
}

export function toLogError(error: unknown, what: string): LogError {
  if (error instanceof LogError) return error;
  return LogError.storage(
    `${what}: ${error instanceof Error ? error.message : String(error)}`,
    error,
  );
}

export class FlushScheduler {
  readonly #options: FlushSchedulerOptions;
  readonly #writeConcurrency: number;
  readonly #dirty = new Set<FlushSource>();
  #pendingBytes = 0;
  #timer: TimerHandle | null = null;
  #round: Promise<void> | null = null;
  #again = false;
  #closed = false;
  readonly #stats: FlushStats = {
    rounds: 0,
    flushes: 0,
    failedFlushes: 0,
    writeMs: 0,
    commitMs: 0,
  };

  constructor(options: FlushSchedulerOptions) {
    this.#options = options;
    this.#writeConcurrency = options.writeConcurrency ?? FLUSH_WRITE_CONCURRENCY;
  }

  /** Bytes appended and not yet taken by a round. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  get roundInFlight(): boolean {
    return this.#round !== null;
  }

  get stats(): Readonly<FlushStats> {
    return { ...this.#stats };
  }

  /** Records an append of `bytes` to `source` and triggers a round when due. */
  notePending(source: FlushSource, bytes: number): void {
    if (this.#closed) return;
    this.#dirty.add(source);
    this.#pendingBytes += bytes;
    if (this.#pendingBytes >= this.#options.flushBytes) {
      this.#request();
    } else if (this.#timer === null) {
      this.#timer = this.#options.clock.setTimeout(() => {
        this.#timer = null;
        this.#request();
      }, this.#options.flushIntervalMs);
    }
  }

  /** Forgets pending bytes a source dropped without flushing (it was fenced or deleted). */
  discard(source: FlushSource, bytes: number): void {
    if (this.#dirty.delete(source)) this.#pendingBytes = Math.max(0, this.#pendingBytes - bytes);
  }

  /** Starts a round now (or right after the one in flight). */
  flushNow(): void {
    this.#request();
  }

  /** Resolves when no round is in flight. */
  async idle(): Promise<void> {
    // Bounded: a new round only starts on a request; each wait ends one.
    for (let i = 0; i < DRAIN_ROUNDS_MAX && this.#round; i++) await this.#round;
  }

  /** Runs rounds until nothing is pending and no round is in flight. */
  async drain(): Promise<void> {
    for (let i = 0; i < DRAIN_ROUNDS_MAX; i++) {
      if (this.#round) {
        await this.#round;
        continue;
      }
      if (this.#dirty.size === 0) return;
      this.#request();
    }
    this.#options.logger.warn("Flush drain gave up: appends kept arriving", {
      rounds: DRAIN_ROUNDS_MAX,
    });
  }

  /** Stops the timer; later appends are not scheduled. Call after `drain()`. */
  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = null;
  }

  #request(): void {
    if (this.#round) {
      this.#again = true;
      return;
    }
    // Started in a microtask: appends made in the same tick join this round,
    // and append() never runs segment encoding on its caller's stack.
    this.#round = Promise.resolve().then(() => this.#loop());
  }

  async #loop(): Promise<void> {
    try {
      // Runs while rounds keep being requested; each needs new appends, whose
      // volume the partitions bound (pendingBytesMax).
      for (;;) {
        this.#again = false;
        await this.#runRound();
        if (!this.#again && this.#pendingBytes < this.#options.flushBytes) break;
      }
    } catch (error) {
      // #runRound handles every failure itself; reaching here is a bug.
      this.#options.logger.error("Flush round crashed", { error: String(error) });
    } finally {
      this.#round = null;
    }
  }

  /** Runs one partition's outcome callback; a bug in one must not strand the others. */
  #tell(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.#options.logger.error("Flush outcome handler failed", { error: String(error) });
    }
  }

  async #runRound(): Promise<void> {
    const flushes: PreparedFlush[] = [];
    for (const source of this.#dirty) {
      const flush = source.takeFlush();
      if (flush) flushes.push(flush);
    }
    this.#dirty.clear();
    this.#pendingBytes = 0;
    this.#timer?.cancel();
    this.#timer = null;
    if (flushes.length === 0) return;
    this.#stats.rounds++;
    this.#stats.flushes += flushes.length;
    const { clock } = this.#options;

    const writeStart = clock.monotonic();
    const written = await mapBounded(flushes, this.#writeConcurrency, (f) => f.write());
    this.#stats.writeMs += clock.monotonic() - writeStart;
    const ready: PreparedFlush[] = [];
    written.forEach((result, i) => {
      if (result.status === "fulfilled") {
        ready.push(flushes[i]);
      } else {
        this.#stats.failedFlushes++;
        this.#tell(() => flushes[i].failed(toLogError(result.reason, "Cannot write"), "write"));
      }
    });
    if (ready.length === 0) return;

    const commitStart = clock.monotonic();
    let results;
    try {
      this.#options.beforeCommit?.();
      results = await this.#options.metadata.commitPartitions(ready.map((f) => f.commit()));
    } catch (error) {
      const logError = toLogError(error, "Cannot commit end offsets");
      this.#stats.failedFlushes += ready.length;
      for (const f of ready) this.#tell(() => f.failed(logError, "commit"));
      return;
    } finally {
      this.#stats.commitMs += clock.monotonic() - commitStart;
    }
    results.forEach((result, i) => {
      if (result === "fenced") {
        this.#stats.failedFlushes++;
        const c = ready[i].commit();
        const error = LogError.notLeader(
          `Partition "${c.topic}-${c.partition}" was taken over by another owner; ` +
            `refresh metadata and retry`,
        );
        this.#tell(() => ready[i].failed(error, "commit"));
      } else {
        this.#tell(() => ready[i].committed(result));
      }
    });
  }
}
