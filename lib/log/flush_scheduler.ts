/**
 * Group commit for all partitions of one LogManager (DESIGN invariant 2).
 *
 * A flush round takes everything pending in every partition, writes ALL of
 * it as one write-ahead write (one append + fdatasync to the local file, or
 * one PUT on S3: `WalWriter`), then commits every touched partition's new
 * state together with the round's write-ahead index record in one
 * `commitPartitions` call, and only then tells each partition how its flush
 * ended (which resolves producers and wakes fetch long-polls). Objects
 * written per round do not grow with the number of partitions. Appends
 * arriving during a round go to the next round; one round is in flight at a
 * time.
 *
 * Triggers: pending bytes >= `flushBytes`, or `flushIntervalMs` after the
 * first pending append (a timer on the injected clock, so a quiet partition
 * is flushed without waiting for another append; with 0, the next turn of
 * the event loop), or `drain()`.
 *
 * Knows nothing about segment bytes: partitions implement `FlushSource`.
 */

import { clearImmediate, setImmediate } from "node:timers";
import type {
  ClusterMetadata,
  PartitionCommit,
  WalIndexEntry,
} from "../metadata/cluster_metadata.ts";
import type { Clock, TimerHandle } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import type { InvariantPolicy } from "../util/assert.ts";
import { LogError } from "./log_error.ts";
import type { EncodedChunk, WalChunkInput } from "./wal_format.ts";
import type { WalWriter } from "./wal_writer.ts";

/** Bound on rounds `drain()` runs before giving up (only reached if appends never stop). */
export const DRAIN_ROUNDS_MAX = 1_000;

/** Where a partition's chunk of a round went. */
export interface WrittenChunk extends EncodedChunk {
  object: string;
}

/** One partition's share of a flush round. */
export interface PreparedFlush {
  /** The data to write ahead, or null when only the partition's state changes. */
  readonly chunk: WalChunkInput | null;
  /** The state commit to make once the round's write succeeded. */
  commit(): PartitionCommit;
  /** The commit succeeded with this state revision; `written` says where the chunk is. */
  committed(revision: number, written: WrittenChunk | null): void;
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
  wal: WalWriter;
  flushBytes: number;
  flushIntervalMs: number;
  /** Called before the write and before the commit; throws LogError to stop (lease deadline passed). */
  beforeCommit?: () => void;
  /** Where an exception escaping a round or an outcome callback goes: a bug, never swallowed. */
  onBrokenInvariant: InvariantPolicy;
}

export interface FlushStats {
  rounds: number;
  flushes: number;
  failedFlushes: number;
  /** Summed wall time of the write phase and of the commit phase, in ms. */
  writeMs: number;
  commitMs: number;
  /** Rounds in a row in which every flush failed (0 after any success), and the last error. */
  failingRounds: number;
  lastError: string | null;
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
    failingRounds: 0,
    lastError: null,
  };

  constructor(options: FlushSchedulerOptions) {
    this.#options = options;
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
      const due = () => {
        this.#timer = null;
        this.#request();
      };
      // No window (local disk): the round starts once this turn of the event loop has read
      // what arrived with it, so appends of requests read together share the round. A zero
      // timer would do the same ~2 ms later (Deno's timers are that coarse); setImmediate
      // takes microseconds.
      if (this.#options.flushIntervalMs === 0) {
        const immediate = setImmediate(due);
        this.#timer = { cancel: () => clearImmediate(immediate) };
      } else {
        this.#timer = this.#options.clock.setTimeout(due, this.#options.flushIntervalMs);
      }
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
      // #runRound handles every operating failure itself; reaching here is a bug, and the
      // partitions of this round may be stuck with a flush in flight: stop (DESIGN invariant 7).
      this.#options.onBrokenInvariant(error);
    } finally {
      this.#round = null;
    }
  }

  /**
   * Runs one partition's outcome callback. One that throws is a bug (its partition's state is
   * unknown now): the policy stops the process; the other partitions are still told first.
   */
  #tell(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      queueMicrotask(() => this.#options.onBrokenInvariant(error));
    }
  }

  /** Counts a round's outcome for readiness: `failed` of `total` flushes failed. */
  #noteOutcome(failed: number, total: number, error: LogError | null): void {
    if (total > 0 && failed === total) {
      this.#stats.failingRounds++;
      this.#stats.lastError = error?.message ?? this.#stats.lastError;
    } else if (total > 0) {
      this.#stats.failingRounds = 0;
      this.#stats.lastError = null;
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

    const withChunk = flushes.filter((f) => f.chunk !== null);
    let ready = flushes;
    let written: WrittenChunk[] = [];
    let index: WalIndexEntry | undefined;
    if (withChunk.length > 0) {
      const writeStart = clock.monotonic();
      try {
        this.#options.beforeCommit?.();
        const chunks = withChunk.map((f) => f.chunk!);
        const write = await this.#options.wal.write(chunks);
        written = write.chunks.map((c) => ({ ...c, object: write.object }));
        index = {
          id: write.indexId,
          record: {
            object: write.object,
            ranges: chunks.map((c, i) => ({
              topic: c.topic,
              topicId: c.topicId,
              partition: c.partition,
              epoch: c.epoch,
              baseOffset: c.baseOffset,
              endOffset: c.endOffset,
              position: write.chunks[i].position,
              length: write.chunks[i].length,
            })),
          },
        };
      } catch (error) {
        const logError = toLogError(error, "Cannot write ahead");
        this.#stats.failedFlushes += withChunk.length;
        for (const f of withChunk) this.#tell(() => f.failed(logError, "write"));
        ready = flushes.filter((f) => f.chunk === null);
        if (ready.length === 0) this.#noteOutcome(withChunk.length, withChunk.length, logError);
      } finally {
        this.#stats.writeMs += clock.monotonic() - writeStart;
      }
    }
    if (ready.length === 0) return;
    const where = new Map<PreparedFlush, WrittenChunk>();
    withChunk.forEach((f, i) => {
      if (written[i]) where.set(f, written[i]);
    });

    const commitStart = clock.monotonic();
    let results;
    try {
      this.#options.beforeCommit?.();
      results = await this.#options.metadata.commitPartitions(
        ready.map((f) => f.commit()),
        index,
      );
    } catch (error) {
      const logError = toLogError(error, "Cannot commit end offsets");
      this.#stats.failedFlushes += ready.length;
      for (const f of ready) this.#tell(() => f.failed(logError, "commit"));
      this.#noteOutcome(flushes.length, flushes.length, logError);
      return;
    } finally {
      this.#stats.commitMs += clock.monotonic() - commitStart;
    }
    const fenced = results.filter((r) => r === "fenced").length;
    this.#noteOutcome(fenced + flushes.length - ready.length, flushes.length, null);
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
        this.#tell(() => ready[i].committed(result, where.get(ready[i]) ?? null));
      }
    });
  }
}
