/**
 * One partition's log while this broker owns it: offset assignment, the
 * write buffer, its share of each group-commit flush, reads, long-poll
 * wake-ups and timestamp lookups.
 *
 * Invariants (DESIGN "Durability and ownership invariants"):
 * - An append with acks 1/-1 resolves only after its segment and index
 *   objects are written AND the new end offset is committed (1). A failed
 *   round rejects every append in it with a retriable LogError, rolls the
 *   in-memory end offset back to the committed one and re-assigns offsets to
 *   the appends queued behind it (they were never visible nor acknowledged).
 * - Offsets are never reused: objects left by a failed round (base offset >=
 *   the committed end) are deleted by this owner, after it re-checked its
 *   ownership, before it writes at that offset again (3, 4).
 * - Readers see committed data only: the high watermark is the committed end
 *   offset, and segments enter `#segments` only once committed (5).
 * - Acknowledged data is readable at once: flushed segments enter the cache
 *   before their appends resolve (6).
 *
 * Must not touch sockets or know about Kafka requests; takes its stores,
 * clock and logger through `LogContext`.
 */

import type { AcquiredPartition, ClusterMetadata } from "../metadata/cluster_metadata.ts";
import {
  assignOffsets,
  BATCH_HEADER_BYTES,
  type BatchInfo,
  LOG_OVERHEAD,
  readBatchInfo,
  readBatchSize,
  scanBatches,
  setLogAppendTime,
} from "../protocol/record_batch.ts";
import { type ObjectStore, PreconditionFailedError } from "../storage/object_store.ts";
import type { Clock, TimerHandle } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import { firstRejection, mapBounded } from "./bounded.ts";
import type { FlushScheduler, FlushSource, PreparedFlush } from "./flush_scheduler.ts";
import { toLogError } from "./flush_scheduler.ts";
import { LOG_ERROR_CODE, LogError } from "./log_error.ts";
import {
  isIdempotent,
  type ProducerCheck,
  type ProducerEntry,
  ProducerStateError,
  ProducerStateTable,
} from "./producer_state.ts";
import { DELETE_CONCURRENCY, type RecoveredPartition, type SegmentMeta } from "./recovery.ts";
import type { SegmentCache } from "./segment_cache.ts";
import {
  type EncodedSegment,
  encodeSegment,
  lookupIndex,
  type ParsedIndex,
  parseIndex,
  parseSegmentHeader,
  parseSegmentObjectKey,
  partitionObjectPrefix,
  SEGMENT_FOOTER_BYTES,
  SEGMENT_HEADER_BYTES,
  SEGMENT_OVERHEAD_BYTES,
  type SegmentBatchInput,
  SegmentFormatError,
  segmentObjectKey,
} from "./segment_format.ts";
import {
  findMaxTimestamp,
  findTimestamp,
  type SegmentView,
  selectBatches,
  viewFromEncoded,
  viewFromObject,
  viewMaxTimestamp,
} from "./segment_view.ts";

/** Bound on object puts of one partition's flush in flight at once. */
export const SEGMENT_PUT_CONCURRENCY = 8;
/** Bound on segments one read walks through. */
export const READ_SEGMENTS_MAX = 64;
/** Bound on ranged GETs that return data in one segment read (skipping is bounded by the segment). */
export const RANGE_READS_MAX = 8;
/** Smallest ranged GET, so small budgets do not cost one request per batch. */
export const RANGE_READ_MIN_BYTES = 64 * 1024;
/** Extra bytes a first ranged GET reads to get from the index entry to the wanted batch. */
export const RANGE_SKIP_BYTES = 256 * 1024;
/** Segments at most this big are read whole (and cached); bigger ones by index + range. */
export const FULL_GET_BYTES_MAX = 8 * 1024 * 1024;
/**
 * Read-ahead: when a fetch has to go to the store, the next segments are
 * fetched in the background (at most this many, and this many bytes), so a
 * consumer reading through the log waits for one round trip, not one per
 * segment.
 */
export const READ_AHEAD_SEGMENTS_MAX = 4;
export const READ_AHEAD_BYTES_MAX = 16 * 1024 * 1024;
/** Bound on fetch long-polls parked on one partition; more resolve at once. */
export const DATA_WAITERS_MAX = 10_000;
/**
 * Bounds on the log tail read to rebuild the producer state when a partition
 * is acquired (the newest segment is always read). Only batches whose
 * acknowledgement may have been lost need to be found, and those are in the
 * last flush rounds before a crash or handover; a producer older than the
 * tail gets UNKNOWN_PRODUCER_ID and restarts its sequence (KIP-360).
 */
export const PRODUCER_STATE_SCAN_SEGMENTS_MAX = 64;
export const PRODUCER_STATE_SCAN_BYTES_MAX = 32 * 1024 * 1024;
/** Bound on segment reads in flight while rebuilding the producer state. */
export const PRODUCER_STATE_SCAN_CONCURRENCY = 8;

export interface LogConfig {
  /** Object key prefix of this cluster's segments ("default"). */
  namespace: string;
  /** Largest segment object one flush writes; a bigger flush is split. */
  segmentBytesMax: number;
  /** Longest a pending append waits before a flush starts. */
  flushIntervalMs: number;
  /** Pending bytes (all partitions) that start a flush at once. */
  flushBytes: number;
  /** Bound on the segment cache. */
  cacheBytesMax: number;
  /** Messages between sparse index entries. */
  indexIntervalMessages: number;
  /** TTL of the broker's session lease, which partition ownership hangs on. */
  leaseTtlMs: number;
  /** Bound on appended bytes waiting for a flush (default: max(4 x flushBytes, 64 MiB)). */
  pendingBytesMax?: number;
  /** Bound on partitions writing objects at once in a flush round. */
  flushConcurrency?: number;
  /** Idle time after which a producer's state is forgotten (default 1 day). */
  producerIdExpirationMs?: number;
  /** Bound on producers remembered per partition (default 10 000). */
  producersPerPartitionMax?: number;
}

export interface AppendOptions {
  acks: 0 | 1 | -1;
  /** When set, batches become LogAppendTime with this max timestamp. */
  logAppendTimeMs?: number;
}

export interface AppendResult {
  baseOffset: number;
  logStartOffset: number;
  /** Set when the batch repeated one already stored: nothing was appended (KIP-98). */
  duplicate?: true;
}

export interface ReadResult {
  /** Whole batches, in order, as zero-copy views of cached or fetched bytes. */
  chunks: Uint8Array[];
  bytes: number;
  highWatermark: number;
  logStartOffset: number;
  outOfRange: boolean;
}

export interface TimestampAndOffset {
  offset: number;
  timestamp: number;
}

/** What a partition log needs from its manager. */
export interface LogContext {
  objectStore: ObjectStore;
  metadata: ClusterMetadata;
  clock: Clock;
  logger: Logger;
  config: LogConfig;
  cache: SegmentCache;
  scheduler: FlushScheduler;
  /** Throws LogError (NOT_LEADER_OR_FOLLOWER) when this broker's lease may have expired. */
  assertWritable(): void;
  /** Throws LogError when `bytes` more pending bytes would exceed the write buffer bound. */
  reservePending(bytes: number): void;
  /** The log stopped (fenced, lease lost, deleted, shut down): forget it. */
  onClosed(log: PartitionLog): void;
}

interface PendingAppend {
  records: Uint8Array;
  batches: BatchInfo[];
  baseOffset: number;
  nextOffset: number;
  bytes: number;
  resolve?: (result: AppendResult) => void;
  reject?: (error: LogError) => void;
}

interface FlushSegment {
  encoded: EncodedSegment;
  batches: { lastOffsetDelta: number; maxTimestamp: number; attributes: number }[];
  maxTimestamp: number;
}

interface FlushState {
  entries: PendingAppend[];
  endOffset: number;
  /** The log start offset this flush commits (advanced by `advanceLogStartOffset`). */
  logStartOffset: number;
  advance: StartAdvance | null;
  expectedRevision: number;
  segments: FlushSegment[];
}

/** A log start offset advance (retention) waiting for a flush round to commit it. */
interface StartAdvance {
  offset: number;
  resolve: (removed: SegmentMeta[]) => void;
  reject: (error: LogError) => void;
}

interface DataWaiter {
  offset: number;
  timer: TimerHandle | null;
  wake(): void;
}

export class PartitionLog implements FlushSource {
  readonly topic: string;
  readonly partition: number;
  readonly #ctx: LogContext;
  readonly #prefix: string;
  readonly #epoch: number;
  #stateRevision: number;
  #committedEnd: number;
  #logStartOffset: number;
  #nextOffset: number;
  readonly #segments: SegmentMeta[];
  #pending: PendingAppend[] = [];
  #pendingBytes = 0;
  #inFlight: FlushState | null = null;
  /** Objects at or beyond the committed end may exist: clean before the next write. */
  #storeDirty: boolean;
  #closedError: LogError | null = null;
  /** Set while the partition is being handed over: new appends are refused with it. */
  #appendsRefused: LogError | null = null;
  #startAdvance: StartAdvance | null = null;
  readonly #waiters = new Set<DataWaiter>();
  readonly #loading = new Map<number, Promise<SegmentView>>();
  /** Idempotent producers' sequences (KIP-98); rebuilt from the log tail by loadProducerState. */
  readonly #producers: ProducerStateTable;
  #producersLoaded = false;
  #producersLoading: Promise<void> | null = null;

  constructor(
    ctx: LogContext,
    topic: string,
    partition: number,
    acquired: AcquiredPartition,
    recovered: RecoveredPartition,
  ) {
    this.#ctx = ctx;
    this.topic = topic;
    this.partition = partition;
    this.#prefix = partitionObjectPrefix(ctx.config.namespace, topic, partition);
    this.#epoch = acquired.epoch;
    this.#stateRevision = acquired.stateRevision;
    this.#committedEnd = acquired.state.endOffset;
    this.#logStartOffset = acquired.state.logStartOffset;
    this.#nextOffset = acquired.state.endOffset;
    this.#segments = recovered.segments;
    this.#storeDirty = recovered.undeleted.length > 0;
    this.#producers = new ProducerStateTable({
      expirationMs: ctx.config.producerIdExpirationMs,
      producersMax: ctx.config.producersPerPartitionMax,
    });
  }

  /** The committed end offset: nothing at or beyond it is ever visible. */
  get highWatermark(): number {
    return this.#committedEnd;
  }
  get logStartOffset(): number {
    return this.#logStartOffset;
  }
  /** The next offset to assign (includes appends not yet committed). */
  get logEndOffset(): number {
    return this.#nextOffset;
  }
  /** The ownership epoch: bumped each time a broker acquires the partition. */
  get leaderEpoch(): number {
    return this.#epoch;
  }
  get closed(): boolean {
    return this.#closedError !== null;
  }
  /** The committed segments, oldest first (a copy). */
  get segments(): SegmentMeta[] {
    return this.#segments.map((s) => ({ ...s }));
  }

  // ---- append -------------------------------------------------------------

  /**
   * Assigns offsets now (in call order), queues the bytes for the next flush
   * (keeping the caller's buffer), and resolves per `acks`. Batches with a
   * producer id are checked against the producer state first: a duplicate
   * resolves with the original offsets (`duplicate: true`) and appends
   * nothing; a sequence or epoch error rejects with a ProducerStateError.
   */
  append(records: Uint8Array, batches: BatchInfo[], opts: AppendOptions): Promise<AppendResult> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    if (this.#appendsRefused) return Promise.reject(this.#appendsRefused);
    if (batches.length === 0) {
      return Promise.reject(new Error("Broken invariant: append without batches"));
    }
    // The producer check, the offsets and the producer record happen in this
    // one synchronous step, so no other append can come between them.
    const idempotent = batches.some(isIdempotent);
    if (idempotent) {
      if (!this.#producersLoaded) {
        return Promise.reject(
          LogError.storage(
            `Producer state of "${this.#name()}" is not loaded yet; call loadProducerState() ` +
              "first, or retry",
          ),
        );
      }
      this.#producers.expire(this.#ctx.clock.now());
      const verdict = this.#producers.check(batches);
      if (verdict.outcome === "rejected") {
        return Promise.reject(
          new ProducerStateError(
            verdict.code,
            `${verdict.message} (partition "${this.#name()}")`,
            this.#logStartOffset,
          ),
        );
      }
      if (verdict.outcome === "duplicate") return this.#answerDuplicate(verdict);
    }
    let bytes = 0;
    for (const b of batches) bytes += b.size;
    try {
      this.#ctx.reservePending(bytes);
    } catch (error) {
      return Promise.reject(error);
    }
    const baseOffset = this.#nextOffset;
    const nextOffset = assignOffsets(records, batches, baseOffset);
    if (opts.logAppendTimeMs !== undefined) {
      for (const b of batches) setLogAppendTime(records, b, opts.logAppendTimeMs);
    }
    this.#nextOffset = nextOffset;
    if (idempotent) this.#producers.record(batches, this.#ctx.clock.now());
    const entry: PendingAppend = { records, batches, baseOffset, nextOffset, bytes };
    this.#pending.push(entry);
    this.#pendingBytes += bytes;
    let acked: Promise<AppendResult> | undefined;
    if (opts.acks !== 0) {
      acked = new Promise((resolve, reject) => {
        entry.resolve = resolve;
        entry.reject = reject;
      });
    }
    this.#ctx.scheduler.notePending(this, bytes);
    return acked ?? Promise.resolve({ baseOffset, logStartOffset: this.#logStartOffset });
  }

  /**
   * A retried batch that is already stored: answered with the original
   * offsets, and only once the original is durable — with the original's
   * outcome, so a retry is never acknowledged for data a failed flush drops.
   */
  #answerDuplicate(verdict: ProducerCheck & { outcome: "duplicate" }): Promise<AppendResult> {
    if (verdict.firstOffset < this.#committedEnd) {
      return Promise.resolve({
        baseOffset: verdict.firstOffset,
        logStartOffset: this.#logStartOffset,
        duplicate: true,
      });
    }
    const original = [...(this.#inFlight?.entries ?? []), ...this.#pending].find((e) =>
      e.baseOffset <= verdict.firstOffset && verdict.firstOffset < e.nextOffset
    );
    const index = original?.batches.findIndex((b) => b.baseOffset === verdict.firstOffset) ?? -1;
    if (!original || index < 0) {
      return Promise.reject(
        new Error(
          `Broken invariant: producer state of "${this.#name()}" names pending offset ` +
            `${verdict.firstOffset}, which no pending append holds`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const { resolve: resolveOriginal, reject: rejectOriginal } = original;
      original.resolve = (result) => {
        resolveOriginal?.(result);
        // Offsets of a queued append may have been re-assigned after a failed flush.
        resolve({
          baseOffset: original.batches[index].baseOffset,
          logStartOffset: result.logStartOffset,
          duplicate: true,
        });
      };
      original.reject = (error) => {
        rejectOriginal?.(error);
        reject(error);
      };
    });
  }

  /**
   * Rebuilds the idempotent producers' state from the tail of the committed
   * log: at most PRODUCER_STATE_SCAN_SEGMENTS_MAX segments and
   * PRODUCER_STATE_SCAN_BYTES_MAX bytes, the newest segment always. Appends
   * with a producer id are refused until it is done; the produce path awaits
   * it first. Shared while running; tried again after a failure.
   */
  loadProducerState(): Promise<void> {
    if (this.#producersLoaded) return Promise.resolve();
    if (this.#closedError) return Promise.reject(this.#closedError);
    this.#producersLoading ??= this.#scanProducerState().then(
      () => {
        this.#producersLoaded = true;
      },
      (error) => {
        this.#producersLoading = null;
        throw error;
      },
    );
    return this.#producersLoading;
  }

  /** The producer's state on this partition (pending appends included), for tests and tools. */
  producerState(producerId: number): ProducerEntry | undefined {
    return this.#producers.get(producerId);
  }

  async #scanProducerState(): Promise<void> {
    const segments = this.#segments;
    let first = segments.length;
    let bytes = 0;
    while (first > 0 && segments.length - first < PRODUCER_STATE_SCAN_SEGMENTS_MAX) {
      const size = segments[first - 1].size;
      if (first < segments.length && bytes + size > PRODUCER_STATE_SCAN_BYTES_MAX) break;
      bytes += size;
      first--;
    }
    const tail = segments.slice(first);
    const views = await mapBounded(
      tail,
      PRODUCER_STATE_SCAN_CONCURRENCY,
      (segment) => this.#viewOf(segment),
    );
    const failure = firstRejection(views);
    if (failure !== undefined) {
      throw toLogError(failure, `Cannot read the producer state of "${this.#name()}"`);
    }
    let batches = 0;
    for (const result of views) {
      const view = (result as PromiseFulfilledResult<SegmentView>).value;
      const writtenMs = parseSegmentHeader(view.bytes).createdMs;
      for (let i = 0; i < view.count; i++) {
        this.#producers.load(readBatchInfo(view.bytes, view.starts[i]), writtenMs);
        batches++;
      }
    }
    this.#producers.expire(this.#ctx.clock.now());
    this.#ctx.logger.debug("Loaded producer state", {
      partition: this.#name(),
      segments: tail.length,
      batches,
      producers: this.#producers.size,
    });
  }

  // ---- flush (called by the scheduler) -------------------------------------

  takeFlush(): PreparedFlush | null {
    if (this.#closedError || (this.#pending.length === 0 && !this.#startAdvance)) return null;
    if (this.#inFlight) throw new Error("Broken invariant: two flushes of one partition at once");
    const entries = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    const advance = this.#startAdvance;
    this.#startAdvance = null;
    const flush: FlushState = {
      entries,
      endOffset: entries.length > 0 ? entries[entries.length - 1].nextOffset : this.#committedEnd,
      logStartOffset: Math.max(this.#logStartOffset, advance?.offset ?? 0),
      advance,
      expectedRevision: this.#stateRevision,
      segments: [],
    };
    this.#inFlight = flush;
    return {
      write: () => this.#writeFlush(flush),
      commit: () => ({
        topic: this.topic,
        partition: this.partition,
        expectedRevision: flush.expectedRevision,
        state: {
          endOffset: flush.endOffset,
          logStartOffset: flush.logStartOffset,
          epoch: this.#epoch,
        },
      }),
      committed: (revision) => this.#flushCommitted(flush, revision),
      failed: (error, phase) => this.#flushFailed(flush, error, phase),
    };
  }

  async #writeFlush(flush: FlushState): Promise<void> {
    this.#ctx.assertWritable();
    if (this.#closedError) throw this.#closedError;
    if (this.#storeDirty) await this.#deleteOrphans();
    if (flush.entries.length === 0) return; // Only a log start offset advance to commit.
    const createdMs = this.#ctx.clock.now();
    flush.segments = this.#splitIntoSegments(flush.entries).map((group) => {
      const encoded = encodeSegment(group.inputs, {
        createdMs,
        indexIntervalMessages: this.#ctx.config.indexIntervalMessages,
      });
      let maxTimestamp = -1;
      for (const b of group.batches) maxTimestamp = Math.max(maxTimestamp, b.maxTimestamp);
      return { encoded, batches: group.batches, maxTimestamp };
    });
    await this.#putSegments(flush.segments);
  }

  #splitIntoSegments(
    entries: PendingAppend[],
  ): { inputs: SegmentBatchInput[]; batches: FlushSegment["batches"] }[] {
    const bodyMax = Math.max(1, this.#ctx.config.segmentBytesMax - SEGMENT_OVERHEAD_BYTES);
    const groups: { inputs: SegmentBatchInput[]; batches: FlushSegment["batches"] }[] = [];
    let current = { inputs: [] as SegmentBatchInput[], batches: [] as FlushSegment["batches"] };
    let currentBytes = 0;
    for (const entry of entries) {
      for (const b of entry.batches) {
        if (current.inputs.length > 0 && currentBytes + b.size > bodyMax) {
          groups.push(current);
          current = { inputs: [], batches: [] };
          currentBytes = 0;
        }
        current.inputs.push({
          bytes: entry.records.subarray(b.position, b.position + b.size),
          baseOffset: b.baseOffset,
          lastOffsetDelta: b.lastOffsetDelta,
          recordsCount: b.recordsCount,
        });
        current.batches.push({
          lastOffsetDelta: b.lastOffsetDelta,
          maxTimestamp: b.maxTimestamp,
          attributes: b.attributes,
        });
        currentBytes += b.size;
      }
    }
    groups.push(current);
    return groups;
  }

  /**
   * Writes every object create-only. A key that already exists is an orphan
   * of an earlier failed round — or a newer owner's object: after checking
   * that we still own the partition, orphans are deleted and the puts retried
   * once.
   */
  async #putSegments(segments: FlushSegment[]): Promise<void> {
    const { objectStore } = this.#ctx;
    // The index is derivable from its segment, so it is not flushed to
    // stable storage: readers fall back to scanning when it is missing or torn.
    const puts: [string, Uint8Array, boolean][] = segments.flatMap((s) => [
      [this.#objectKey(s.encoded.baseOffset, "kfs"), s.encoded.segment, true],
      [this.#objectKey(s.encoded.baseOffset, "index"), s.encoded.index, false],
    ]);
    for (let attempt = 0;; attempt++) {
      const results = await mapBounded(
        puts,
        SEGMENT_PUT_CONCURRENCY,
        ([key, data, durable]) => objectStore.put(key, data, { ifNoneMatch: true, durable }),
      );
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      if (rejected.length === 0) return;
      const onlyConflicts = rejected.every((r) => r.reason instanceof PreconditionFailedError);
      if (!onlyConflicts || attempt > 0) {
        this.#storeDirty = true;
        const reason = rejected.find((r) => !(r.reason instanceof PreconditionFailedError))
          ?.reason ?? rejected[0].reason;
        throw toLogError(reason, `Cannot write segment of "${this.#name()}"`);
      }
      await this.#verifyOwnership();
      await this.#deleteOrphans();
    }
  }

  async #verifyOwnership(): Promise<void> {
    this.#ctx.assertWritable();
    let modRevision: number;
    try {
      ({ modRevision } = await this.#ctx.metadata.getPartitionState(this.topic, this.partition));
    } catch (error) {
      throw toLogError(error, `Cannot check ownership of "${this.#name()}"`);
    }
    if (modRevision !== this.#stateRevision) {
      throw LogError.notLeader(
        `Partition "${this.#name()}" was taken over by another owner; refresh metadata and retry`,
      );
    }
  }

  /** Deletes this partition's objects at or beyond the committed end offset. */
  async #deleteOrphans(): Promise<void> {
    this.#ctx.assertWritable();
    const { objectStore } = this.#ctx;
    let doomed: string[];
    try {
      doomed = (await objectStore.list(this.#prefix))
        .map((o) => o.key)
        .filter((key) => {
          const parsed = parseSegmentObjectKey(key);
          return parsed !== null && parsed.baseOffset >= this.#committedEnd;
        });
    } catch (error) {
      throw toLogError(error, `Cannot list objects of "${this.#name()}"`);
    }
    this.#ctx.assertWritable();
    const results = await mapBounded(doomed, DELETE_CONCURRENCY, (key) => objectStore.delete(key));
    const failure = firstRejection(results);
    if (failure !== undefined) {
      throw toLogError(failure, `Cannot delete orphan objects of "${this.#name()}"`);
    }
    if (doomed.length > 0) {
      this.#ctx.logger.info("Deleted orphan segment objects", {
        partition: this.#name(),
        count: doomed.length,
      });
    }
    this.#storeDirty = false;
  }

  #flushCommitted(flush: FlushState, revision: number): void {
    this.#inFlight = null;
    this.#stateRevision = revision;
    this.#committedEnd = flush.endOffset;
    this.#producers.commit(
      flush.entries.flatMap((e) => e.batches),
      flush.endOffset,
      this.#ctx.clock.now(),
    );
    for (const s of flush.segments) {
      const last = this.#segments[this.#segments.length - 1];
      if (last && s.encoded.baseOffset !== last.lastOffset + 1) {
        throw new Error(
          `Broken invariant: segment ${s.encoded.baseOffset} of "${this.#name()}" ` +
            `does not follow ${last.lastOffset}`,
        );
      }
      this.#segments.push({
        baseOffset: s.encoded.baseOffset,
        lastOffset: s.encoded.lastOffset,
        size: s.encoded.segment.byteLength,
        hasIndex: true,
        maxTimestamp: s.maxTimestamp,
      });
      this.#ctx.cache.set(this.#objectKey(s.encoded.baseOffset, "kfs"), {
        kind: "segment",
        view: viewFromEncoded(s.encoded, s.batches),
      });
    }
    const removed = this.#applyLogStartOffset(flush.logStartOffset);
    flush.advance?.resolve(removed);
    const result = { logStartOffset: this.#logStartOffset };
    for (const entry of flush.entries) entry.resolve?.({ baseOffset: entry.baseOffset, ...result });
    this.#wakeWaiters();
  }

  /** Moves the start offset up; forgets (and uncaches) the segments wholly below it. */
  #applyLogStartOffset(offset: number): SegmentMeta[] {
    if (offset <= this.#logStartOffset) return [];
    this.#logStartOffset = offset;
    let count = 0;
    while (count < this.#segments.length && this.#segments[count].lastOffset < offset) count++;
    const removed = this.#segments.splice(0, count);
    for (const s of removed) {
      this.#ctx.cache.delete(this.#objectKey(s.baseOffset, "kfs"));
      this.#ctx.cache.delete(this.#objectKey(s.baseOffset, "index"));
    }
    return removed;
  }

  #flushFailed(flush: FlushState, error: LogError, phase: "write" | "commit"): void {
    this.#inFlight = null;
    flush.advance?.reject(error);
    for (const entry of flush.entries) entry.reject?.(error);
    this.#ctx.logger.warn("Flush failed; its appends were rejected", {
      partition: this.#name(),
      phase,
      baseOffset: flush.entries[0]?.baseOffset ?? flush.endOffset,
      endOffset: flush.endOffset,
      error: error.message,
    });
    if (phase === "commit" || error.code === LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER) {
      // Fenced, or the commit's outcome is unknown: only a reload from the
      // stores (a new acquisition) knows the true end offset.
      this.shutdown(error);
      return;
    }
    this.#storeDirty = true;
    this.#nextOffset = this.#committedEnd;
    // Pending producer state rolls back with the offsets. A queued append
    // whose sequence followed a rejected one no longer fits: it fails too
    // (retriable), and the client resends both in order.
    this.#producers.rollback();
    const kept: PendingAppend[] = [];
    const now = this.#ctx.clock.now();
    for (const entry of this.#pending) {
      const idempotent = entry.batches.some(isIdempotent);
      if (idempotent && this.#producers.check(entry.batches).outcome !== "append") {
        this.#pendingBytes -= entry.bytes;
        entry.reject?.(error);
        continue;
      }
      entry.baseOffset = this.#nextOffset;
      entry.nextOffset = assignOffsets(entry.records, entry.batches, entry.baseOffset);
      this.#nextOffset = entry.nextOffset;
      if (idempotent) this.#producers.record(entry.batches, now);
      kept.push(entry);
    }
    this.#pending = kept;
  }

  /**
   * Ends this ownership: rejects queued appends with `error`, wakes long
   * polls, and tells the manager to forget this log. A flush in flight still
   * completes (and acknowledges its appends if its commit succeeds).
   */
  /**
   * Refuses every later append with `error` (a hand-over has begun); what is
   * already pending still flushes. Reads keep working until `shutdown`.
   */
  refuseAppends(error: LogError): void {
    this.#appendsRefused ??= error;
  }

  /** Resolves when no segment load (a fetch's or a read-ahead's) is in flight. */
  async idleReads(): Promise<void> {
    await Promise.allSettled([...this.#loading.values()]);
  }

  shutdown(error: LogError): void {
    if (this.#closedError) return;
    this.#closedError = error;
    this.#startAdvance?.reject(error);
    this.#startAdvance = null;
    const pending = this.#pending;
    this.#pending = [];
    this.#ctx.scheduler.discard(this, this.#pendingBytes);
    this.#pendingBytes = 0;
    for (const entry of pending) entry.reject?.(error);
    this.#wakeWaiters();
    this.#ctx.onClosed(this);
  }

  // ---- log start offset (retention) ---------------------------------------------

  /**
   * Advances the log start offset to `offset` (at most the high watermark):
   * the new value is committed by the next flush round, with the same epoch
   * compare-and-swap as end offsets (so it never races a flush), then the
   * segments wholly below it are forgotten and their objects deleted. A
   * crash between the commit and the deletes leaves objects that recovery
   * deletes on the next acquisition. Resolves with the segments removed.
   */
  async advanceLogStartOffset(offset: number): Promise<SegmentMeta[]> {
    if (this.#closedError) throw this.#closedError;
    if (this.#startAdvance) {
      throw new Error(`Broken invariant: two log start offset advances of "${this.#name()}"`);
    }
    if (!Number.isSafeInteger(offset) || offset > this.#committedEnd) {
      throw new RangeError(
        `Log start offset ${offset} of "${this.#name()}" is beyond the high watermark ` +
          `${this.#committedEnd}`,
      );
    }
    if (offset <= this.#logStartOffset) return [];
    const removed = await new Promise<SegmentMeta[]>((resolve, reject) => {
      this.#startAdvance = { offset, resolve, reject };
      this.#ctx.scheduler.notePending(this, 0);
      this.#ctx.scheduler.flushNow();
    });
    const keys = removed.flatMap((s) => [
      this.#objectKey(s.baseOffset, "kfs"),
      this.#objectKey(s.baseOffset, "index"),
    ]);
    const { objectStore } = this.#ctx;
    const results = await mapBounded(keys, DELETE_CONCURRENCY, (key) => objectStore.delete(key));
    const failure = firstRejection(results);
    if (failure !== undefined) {
      this.#ctx.logger.warn("Cannot delete expired segments; recovery deletes them later", {
        partition: this.#name(),
        error: String(failure),
      });
    }
    return removed;
  }

  /** The largest record timestamp of a committed segment (reads it when not yet known). */
  async segmentMaxTimestamp(baseOffset: number): Promise<number> {
    if (this.#closedError) throw this.#closedError;
    const segment = this.#segments.find((s) => s.baseOffset === baseOffset);
    if (!segment) throw new RangeError(`No segment of "${this.#name()}" at ${baseOffset}`);
    if (segment.maxTimestamp === null) await this.#viewOf(segment);
    return segment.maxTimestamp ?? -1;
  }

  // ---- reads ------------------------------------------------------------------

  /**
   * Whole batches from the one containing `fetchOffset`, up to `maxBytes`
   * (at least one batch when `minOneBatch`), never beyond the high watermark.
   */
  async read(
    fetchOffset: number,
    maxBytes: number,
    opts: { minOneBatch?: boolean } = {},
  ): Promise<ReadResult> {
    if (this.#closedError) throw this.#closedError;
    const highWatermark = this.#committedEnd;
    const result: ReadResult = {
      chunks: [],
      bytes: 0,
      highWatermark,
      logStartOffset: this.#logStartOffset,
      outOfRange: false,
    };
    if (fetchOffset < this.#logStartOffset || fetchOffset > highWatermark) {
      result.outOfRange = true;
      return result;
    }
    let offset = fetchOffset;
    for (let i = 0; i < READ_SEGMENTS_MAX && offset < highWatermark; i++) {
      const segment = this.#segmentFor(offset);
      if (!segment) {
        throw LogError.storage(
          `No segment of "${this.#name()}" holds offset ${offset}: committed data is missing ` +
            `from the object store`,
        );
      }
      const minOne = (opts.minOneBatch ?? false) && result.bytes === 0;
      const part = await this.#readSegment(segment, offset, maxBytes - result.bytes, minOne);
      for (const chunk of part.chunks) {
        result.chunks.push(chunk);
        result.bytes += chunk.byteLength;
      }
      if (!part.reachedEnd) break;
      offset = segment.lastOffset + 1;
    }
    return result;
  }

  /**
   * Resolves when the high watermark passes `offset`, after `timeoutMs`, on
   * abort, or when the log closes. Woken by commits, never by polling.
   */
  waitForData(offset: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (
      this.#committedEnd > offset || this.#closedError || signal?.aborted || timeoutMs <= 0 ||
      this.#waiters.size >= DATA_WAITERS_MAX
    ) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const waiter: DataWaiter = {
        offset,
        timer: null,
        wake: () => {
          if (!this.#waiters.delete(waiter)) return;
          waiter.timer?.cancel();
          signal?.removeEventListener("abort", waiter.wake);
          resolve();
        },
      };
      this.#waiters.add(waiter);
      waiter.timer = this.#ctx.clock.setTimeout(waiter.wake, timeoutMs);
      signal?.addEventListener("abort", waiter.wake, { once: true });
    });
  }

  /** The first offset whose timestamp is >= `timestampMs` (ListOffsets), or null. */
  async offsetForTimestamp(timestampMs: number): Promise<TimestampAndOffset | null> {
    if (this.#closedError) throw this.#closedError;
    const highWatermark = this.#committedEnd;
    for (const segment of [...this.#segments]) {
      if (segment.baseOffset >= highWatermark) break;
      if (segment.maxTimestamp !== null && segment.maxTimestamp < timestampMs) continue;
      const found = findTimestamp(await this.#viewOf(segment), timestampMs);
      if (found) {
        return { offset: Math.max(found.offset, this.#logStartOffset), timestamp: found.timestamp };
      }
    }
    return null;
  }

  /** The record with the largest timestamp (ListOffsets -3, KIP-734), or null when empty. */
  async maxTimestamp(): Promise<TimestampAndOffset | null> {
    if (this.#closedError) throw this.#closedError;
    let best: SegmentMeta | null = null;
    for (const segment of [...this.#segments]) {
      if (segment.maxTimestamp === null) await this.#viewOf(segment);
      if (best === null || segment.maxTimestamp! > best.maxTimestamp!) best = segment;
    }
    if (best === null) return null;
    const found = findMaxTimestamp(await this.#viewOf(best));
    if (!found) return null;
    return { offset: Math.max(found.offset, this.#logStartOffset), timestamp: found.timestamp };
  }

  #wakeWaiters(): void {
    for (const waiter of [...this.#waiters]) {
      if (this.#closedError || this.#committedEnd > waiter.offset) waiter.wake();
    }
  }

  /** The committed segment holding `offset`, or null (a gap: data missing). */
  #segmentFor(offset: number): SegmentMeta | null {
    const found = this.#segmentIndex(offset);
    return found < 0 ? null : this.#segments[found];
  }

  /** Index of the committed segment holding `offset`, or -1. */
  #segmentIndex(offset: number): number {
    const segments = this.#segments;
    let lo = 0;
    let hi = segments.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (segments[mid].baseOffset <= offset) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 || segments[found].lastOffset < offset ? -1 : found;
  }

  async #readSegment(
    segment: SegmentMeta,
    offset: number,
    budget: number,
    minOne: boolean,
  ): Promise<{ chunks: Uint8Array[]; reachedEnd: boolean }> {
    const key = this.#objectKey(segment.baseOffset, "kfs");
    const cached = this.#ctx.cache.get(key);
    const fullGetMax = Math.min(FULL_GET_BYTES_MAX, Math.floor(this.#ctx.config.cacheBytesMax / 4));
    let view: SegmentView | null = cached?.kind === "segment" ? cached.view : null;
    if (!view) this.#readAhead(segment, fullGetMax);
    if (!view && (segment.size <= fullGetMax || !segment.hasIndex)) {
      view = await this.#viewOf(segment);
    }
    if (view) {
      const { chunk, reachedEnd } = selectBatches(view, offset, budget, minOne);
      return { chunks: chunk ? [chunk] : [], reachedEnd };
    }
    return await this.#rangedRead(segment, key, offset, budget, minOne);
  }

  /** Starts background loads of the committed segments after `segment` that are not cached. */
  #readAhead(segment: SegmentMeta, fullGetMax: number): void {
    const segments = this.#segments;
    let i = this.#segmentIndex(segment.baseOffset);
    if (i < 0) return;
    let bytes = 0;
    let started = 0;
    const budget = Math.min(READ_AHEAD_BYTES_MAX, Math.floor(this.#ctx.config.cacheBytesMax / 4));
    for (i++; i < segments.length && started < READ_AHEAD_SEGMENTS_MAX; i++) {
      const next = segments[i];
      if (next.baseOffset >= this.#committedEnd || next.size > fullGetMax) break;
      if (bytes + next.size > budget) break;
      bytes += next.size;
      const key = this.#objectKey(next.baseOffset, "kfs");
      if (this.#ctx.cache.get(key) || this.#loading.has(next.baseOffset)) continue;
      started++;
      // A failed read-ahead is only a missed optimisation: the fetch that needs
      // the segment reads it again and reports the error then.
      this.#viewOf(next).catch(() => {});
    }
  }

  /** The segment's view from the cache or a whole-object GET (cached when it fits). */
  #viewOf(segment: SegmentMeta): Promise<SegmentView> {
    const key = this.#objectKey(segment.baseOffset, "kfs");
    const cached = this.#ctx.cache.get(key);
    if (cached?.kind === "segment") return Promise.resolve(cached.view);
    let loading = this.#loading.get(segment.baseOffset);
    if (!loading) {
      loading = this.#loadView(segment, key).finally(() =>
        this.#loading.delete(segment.baseOffset)
      );
      this.#loading.set(segment.baseOffset, loading);
    }
    return loading;
  }

  async #loadView(segment: SegmentMeta, key: string): Promise<SegmentView> {
    let bytes: Uint8Array | null;
    try {
      bytes = await this.#ctx.objectStore.get(key);
    } catch (error) {
      throw toLogError(error, `Cannot read segment "${key}"`);
    }
    if (!bytes) throw LogError.storage(`Segment "${key}" is missing from the object store`);
    let view: SegmentView;
    try {
      view = viewFromObject(bytes, { expectedBaseOffset: segment.baseOffset, checkCrc: true });
    } catch (error) {
      if (!(error instanceof SegmentFormatError)) throw error;
      throw LogError.storage(`Segment "${key}" is corrupt: ${error.message}`, error);
    }
    if (view.lastOffset !== segment.lastOffset) {
      throw LogError.storage(
        `Segment "${key}" ends at offset ${view.lastOffset} but the next segment or the ` +
          `committed end says ${segment.lastOffset}`,
      );
    }
    segment.maxTimestamp = viewMaxTimestamp(view);
    this.#ctx.cache.set(key, { kind: "segment", view });
    return view;
  }

  async #loadIndex(segment: SegmentMeta): Promise<ParsedIndex> {
    const key = this.#objectKey(segment.baseOffset, "index");
    const cached = this.#ctx.cache.get(key);
    if (cached?.kind === "index") return cached.index;
    let bytes: Uint8Array | null;
    try {
      bytes = await this.#ctx.objectStore.get(key);
    } catch (error) {
      throw toLogError(error, `Cannot read index "${key}"`);
    }
    let index: ParsedIndex;
    try {
      if (!bytes) throw new SegmentFormatError("it is missing");
      index = parseIndex(bytes);
    } catch (error) {
      if (!(error instanceof SegmentFormatError)) throw error;
      // Indexes are written without fsync (they are derivable): after a
      // machine crash one can be missing or torn. Scan the segment instead.
      this.#ctx.logger.warn("Segment index unusable; reading the segment from its start", {
        key,
        reason: error.message,
      });
      index = { intervalMessages: 0, entries: [] };
    }
    this.#ctx.cache.set(key, { kind: "index", index });
    return index;
  }

  /**
   * Reads a large segment by ranges: from the index entry at or before
   * `offset`, skips the batches before the one holding `offset` by reading
   * only their headers, then GETs windows and keeps whole batches while they
   * fit the budget (the first one regardless when `minOne`, KIP-74). Every
   * GET moves forward by at least one batch, so a read always reaches the
   * batch holding `offset`, whatever the record sizes.
   */
  async #rangedRead(
    segment: SegmentMeta,
    key: string,
    offset: number,
    budget: number,
    minOne: boolean,
  ): Promise<{ chunks: Uint8Array[]; reachedEnd: boolean }> {
    const index = await this.#loadIndex(segment);
    let pos = lookupIndex(index.entries, offset)?.position ?? SEGMENT_HEADER_BYTES;
    const bodyEnd = segment.size - SEGMENT_FOOTER_BYTES;
    const chunks: Uint8Array[] = [];
    let returned = 0;
    let started = false;
    let dataReads = 0;
    let nextBatchSize = 0;
    const fits = (size: number) => returned + size <= budget || (minOne && returned === 0);
    // Bounded by the segment: each GET advances `pos` by at least one batch header.
    const readsMax = Math.ceil((bodyEnd - pos) / BATCH_HEADER_BYTES) + 1;
    for (let reads = 0; reads < readsMax; reads++) {
      if (pos >= bodyEnd) return { chunks, reachedEnd: true };
      if (started && dataReads >= RANGE_READS_MAX) return { chunks, reachedEnd: false };
      const remaining = Math.max(0, budget - returned);
      const want = Math.max(
        started ? remaining : remaining + RANGE_SKIP_BYTES,
        RANGE_READ_MIN_BYTES,
        nextBatchSize,
      );
      const end = Math.min(bodyEnd, pos + want);
      let data: Uint8Array | null;
      try {
        data = await this.#ctx.objectStore.getRange(key, pos, end);
      } catch (error) {
        throw toLogError(error, `Cannot read segment "${key}"`);
      }
      if (!data || data.byteLength !== end - pos) {
        throw LogError.storage(`Segment "${key}" is missing or shorter than listed`);
      }
      if (started) dataReads++;
      const { batches, validBytes } = scanBatches(data);
      let chunkStart = -1;
      let chunkEnd = -1;
      let full = false;
      for (const b of batches) {
        if (!started) {
          if (b.baseOffset + b.lastOffsetDelta < offset) continue;
          started = true;
        }
        if (!fits(b.size)) {
          full = true;
          break;
        }
        if (chunkStart < 0) chunkStart = b.position;
        chunkEnd = b.position + b.size;
        returned += b.size;
      }
      if (chunkStart >= 0) chunks.push(data.subarray(chunkStart, chunkEnd));
      if (full) return { chunks, reachedEnd: false };
      pos += validBytes;
      // The window ends inside a batch (or holds none): its header says how big it is
      // and, before the batch holding `offset`, whether it can be skipped unread.
      const tail = data.subarray(validBytes);
      if (tail.byteLength < LOG_OVERHEAD) {
        nextBatchSize = 0;
        continue;
      }
      nextBatchSize = readBatchSize(tail, 0);
      if (nextBatchSize < BATCH_HEADER_BYTES || pos + nextBatchSize > bodyEnd) {
        throw LogError.storage(`Segment "${key}" has a malformed batch at byte ${pos}`);
      }
      if (!started && tail.byteLength >= BATCH_HEADER_BYTES) {
        const info = readBatchInfo(tail, 0);
        if (info.baseOffset + info.lastOffsetDelta < offset) {
          pos += nextBatchSize;
          nextBatchSize = 0;
          continue;
        }
        started = true;
      }
      if (started && !fits(nextBatchSize)) return { chunks, reachedEnd: false };
    }
    throw LogError.storage(`Segment "${key}" could not be read up to offset ${offset}`);
  }

  #objectKey(baseOffset: number, kind: "kfs" | "index"): string {
    return segmentObjectKey(
      this.#ctx.config.namespace,
      this.topic,
      this.partition,
      baseOffset,
      kind,
    );
  }

  #name(): string {
    return `${this.topic}-${this.partition}`;
  }
}
