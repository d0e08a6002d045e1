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
import { DELETE_CONCURRENCY, type RecoveredPartition, type SegmentMeta } from "./recovery.ts";
import type { SegmentCache } from "./segment_cache.ts";
import {
  type EncodedSegment,
  encodeSegment,
  lookupIndex,
  type ParsedIndex,
  parseIndex,
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
/** Bound on ranged GETs one segment read issues. */
export const RANGE_READS_MAX = 8;
/** Smallest ranged GET, so small budgets do not cost one request per batch. */
export const RANGE_READ_MIN_BYTES = 64 * 1024;
/** Extra bytes a first ranged GET reads to get from the index entry to the wanted batch. */
export const RANGE_SKIP_BYTES = 256 * 1024;
/** Segments at most this big are read whole (and cached); bigger ones by index + range. */
export const FULL_GET_BYTES_MAX = 8 * 1024 * 1024;
/** Bound on fetch long-polls parked on one partition; more resolve at once. */
export const DATA_WAITERS_MAX = 10_000;

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
}

export interface AppendOptions {
  acks: 0 | 1 | -1;
  /** When set, batches become LogAppendTime with this max timestamp. */
  logAppendTimeMs?: number;
}

export interface AppendResult {
  baseOffset: number;
  logStartOffset: number;
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
  expectedRevision: number;
  segments: FlushSegment[];
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
  readonly #waiters = new Set<DataWaiter>();
  readonly #loading = new Map<number, Promise<SegmentView>>();

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
   * (keeping the caller's buffer), and resolves per `acks`.
   */
  append(records: Uint8Array, batches: BatchInfo[], opts: AppendOptions): Promise<AppendResult> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    if (batches.length === 0) {
      return Promise.reject(new Error("Broken invariant: append without batches"));
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

  // ---- flush (called by the scheduler) -------------------------------------

  takeFlush(): PreparedFlush | null {
    if (this.#closedError || this.#pending.length === 0) return null;
    if (this.#inFlight) throw new Error("Broken invariant: two flushes of one partition at once");
    const entries = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    const flush: FlushState = {
      entries,
      endOffset: entries[entries.length - 1].nextOffset,
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
          logStartOffset: this.#logStartOffset,
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
    const result = { logStartOffset: this.#logStartOffset };
    for (const entry of flush.entries) entry.resolve?.({ baseOffset: entry.baseOffset, ...result });
    this.#wakeWaiters();
  }

  #flushFailed(flush: FlushState, error: LogError, phase: "write" | "commit"): void {
    this.#inFlight = null;
    for (const entry of flush.entries) entry.reject?.(error);
    this.#ctx.logger.warn("Flush failed; its appends were rejected", {
      partition: this.#name(),
      phase,
      baseOffset: flush.entries[0].baseOffset,
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
    for (const entry of this.#pending) {
      entry.baseOffset = this.#nextOffset;
      entry.nextOffset = assignOffsets(entry.records, entry.batches, entry.baseOffset);
      this.#nextOffset = entry.nextOffset;
    }
  }

  /**
   * Ends this ownership: rejects queued appends with `error`, wakes long
   * polls, and tells the manager to forget this log. A flush in flight still
   * completes (and acknowledges its appends if its commit succeeds).
   */
  shutdown(error: LogError): void {
    if (this.#closedError) return;
    this.#closedError = error;
    const pending = this.#pending;
    this.#pending = [];
    this.#ctx.scheduler.discard(this, this.#pendingBytes);
    this.#pendingBytes = 0;
    for (const entry of pending) entry.reject?.(error);
    this.#wakeWaiters();
    this.#ctx.onClosed(this);
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
    if (found < 0 || segments[found].lastOffset < offset) return null;
    return segments[found];
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
    if (!view && (segment.size <= fullGetMax || !segment.hasIndex)) {
      view = await this.#viewOf(segment);
    }
    if (view) {
      const { chunk, reachedEnd } = selectBatches(view, offset, budget, minOne);
      return { chunks: chunk ? [chunk] : [], reachedEnd };
    }
    return await this.#rangedRead(segment, key, offset, budget, minOne);
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
   * `offset`, GETs windows and keeps the whole batches from the one holding
   * `offset` while they fit the budget.
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
    let nextBatchSize = 0;
    const fits = (size: number) => returned + size <= budget || (minOne && returned === 0);
    for (let i = 0; i < RANGE_READS_MAX; i++) {
      if (pos >= bodyEnd) return { chunks, reachedEnd: true };
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
      if (validBytes > 0) {
        pos += validBytes;
        nextBatchSize = 0;
        continue;
      }
      // The batch at `pos` is bigger than the window: size the next GET from its header.
      nextBatchSize = data.byteLength >= LOG_OVERHEAD ? readBatchSize(data, 0) : 0;
      if (nextBatchSize < BATCH_HEADER_BYTES || pos + nextBatchSize > bodyEnd) {
        throw LogError.storage(`Segment "${key}" has a malformed batch at byte ${pos}`);
      }
      if (started && !fits(nextBatchSize)) return { chunks, reachedEnd: false };
    }
    return { chunks, reachedEnd: false };
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
