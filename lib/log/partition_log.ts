/**
 * One partition's log while this broker owns it: offset assignment, the
 * write buffer, its share of each group-commit flush round, the unsealed
 * ranges it has in the write-ahead stream, sealing them into segments,
 * reads, long-poll wake-ups and timestamp lookups.
 *
 * Layout (DESIGN "Storage"): offsets below `sealedEnd` are in sealed
 * KafScale-format segments (`#segments`); [sealedEnd, committed end) are
 * chunks of write-ahead objects (`#ranges`), written by flush rounds and
 * copied into a segment by `seal()`.
 *
 * Invariants (DESIGN "Durability and ownership invariants"):
 * - An append with acks 1/-1 resolves only after its round's write-ahead
 *   write is durable AND the new end offset is committed (1). A failed round
 *   rejects every append in it with a retriable LogError, rolls the
 *   in-memory end offset back to the committed one and re-assigns offsets to
 *   the appends queued behind it (they were never visible nor acknowledged).
 * - Offsets are never reused: write-ahead objects have unique names, and a
 *   failed commit ends this ownership (a new acquisition reloads the truth)
 *   (3, 4). Segment objects are written create-only; one at or beyond
 *   `sealedEnd` is an orphan of a seal that did not commit, deleted by this
 *   owner after it re-checked its ownership, before it seals there again.
 * - Readers see committed data only: the high watermark is the committed end
 *   offset; ranges and segments enter the log only once committed (5).
 * - Acknowledged data is readable at once: a round's chunks enter the cache
 *   before their appends resolve (6).
 *
 * Must not touch sockets or know about Kafka requests; takes its stores,
 * clock and logger through `LogContext`.
 */

import type {
  AcquiredPartition,
  ClusterMetadata,
  CompactionState,
} from "../metadata/cluster_metadata.ts";
import {
  assignOffsets,
  BATCH_HEADER_BYTES,
  type BatchInfo,
  LOG_OVERHEAD,
  readBaseOffset,
  readBatchInfo,
  readBatchSize,
  scanBatches,
  setLogAppendTime,
  setPartitionLeaderEpoch,
} from "../protocol/record_batch.ts";
import { epochEndOffset, type EpochEntry, epochForOffset } from "../metadata/leader_epochs.ts";
import { type ObjectStore, PreconditionFailedError } from "../storage/object_store.ts";
import type { Clock, TimerHandle } from "../util/clock.ts";
import { InvariantError, type InvariantPolicy } from "../util/assert.ts";
import type { Logger } from "../util/logger.ts";
import { firstRejection, mapBounded } from "./bounded.ts";
import {
  cleanablePoint,
  type CompactionStats,
  compactSegments,
  type SegmentInput,
} from "./compaction/compactor.ts";
import {
  type CompactionLimits,
  type CompactionPolicy,
  isEmptyCompactionState,
  nextCompactionState,
  recheckMs,
  REPLACED_SEGMENT_GRACE_MS,
  segmentDirtyRatio,
} from "./compaction/schedule.ts";
import type {
  FlushScheduler,
  FlushSource,
  PreparedFlush,
  WrittenChunk,
} from "./flush_scheduler.ts";
import { toLogError } from "./flush_scheduler.ts";
import { LOG_ERROR_CODE, LogError } from "./log_error.ts";
import {
  isIdempotent,
  type ProducerCheck,
  type ProducerEntry,
  ProducerStateError,
  ProducerStateTable,
} from "./producer_state.ts";
import {
  DELETE_CONCURRENCY,
  type RecoveredPartition,
  type SegmentMeta,
  type WalRange,
} from "./recovery.ts";
import type { SegmentCache } from "./segment_cache.ts";
import {
  encodeSegmentParts,
  lookupIndex,
  type ParsedIndex,
  parseIndex,
  parseSegmentHeader,
  parseSegmentObjectKey,
  partitionObjectPrefix,
  SEGMENT_FOOTER_BYTES,
  SEGMENT_HEADER_BYTES,
  type SegmentBatchInput,
  SegmentFormatError,
  segmentObjectKey,
  type SegmentParts,
  SegmentStreamEncoder,
} from "./segment_format.ts";
import {
  findMaxTimestamp,
  findTimestamp,
  type SegmentView,
  selectBatches,
  viewFromBatchBytes,
  viewFromEncoded,
  viewFromObject,
  viewFromWritten,
  viewMaxTimestamp,
} from "./segment_view.ts";
import {
  WAL_CHUNK_FIXED_BYTES,
  type WalChunkInput,
  walChunkPayload,
  WalFormatError,
} from "./wal_format.ts";
import { joinAdjacent, ReadSlab, WAL_BLOCK_READ_MAX, type WalReader } from "./wal_reader.ts";
import {
  type AbortedTxn,
  abortedTxnsIn,
  applyTxnBatches,
  isStaleMarker,
  lastStableOffset,
  type MarkerInfo,
  type OpenTxn,
  pruneTxnSnapshot,
  storedTxnState,
  type TxnSnapshot,
  txnSnapshotFromStored,
} from "./txn_state.ts";
import { encodeRecordBatch } from "../protocol/records.ts";
import { setImmediate } from "node:timers";
import { joinBytes } from "../util/bytes.ts";

/** Bound on write-ahead chunks (or segments) one seal (or compaction run) reads at once. */
export const SEAL_LOAD_CONCURRENCY = 8;
/**
 * The same bound on a local directory (a store with positioned reads), where a read costs no
 * round trip to hide. Each read allocates its buffer, and V8 zeroes it on the event loop (page
 * faults included): eight multi-MiB reads finishing together held the loop ~30 ms at a time.
 */
export const SEAL_LOAD_CONCURRENCY_LOCAL = 1;
/**
 * A seal lets other work run after reading about this many bytes. On a local directory small
 * chunks are read synchronously (`WalReader.read`), and resolved reads chain as microtasks: a
 * seal of a 64 MiB segment would otherwise hold the event loop for ~30 ms in one go, and every
 * produce waiting on a flush round with it (p99 spikes once per sealed segment after a burst).
 */
export const SEAL_YIELD_BYTES = 1024 * 1024;
/**
 * Unsealed ranges after which a partition seals whatever their size: bounds
 * the partition's bookkeeping when a trickle of appends makes one tiny range
 * per flush round.
 */
export const UNSEALED_RANGES_MAX = 1_024;
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
/** Big unsealed ranges a cold read fetches ahead, and their bytes at most. */
export const READ_AHEAD_RANGES_MAX = 4;
/** Most unsealed ranges whose blocks one read starts loading at once (stores read by blocks). */
export const PREFETCH_RANGES_MAX = 64;
/** Unsealed ranges bigger than this are read in parts where the store has positioned reads. */
export const WAL_SCAN_MIN_BYTES = 1024 * 1024;
export const RANGE_READ_AHEAD_BYTES_MAX = 4 * 1024 * 1024;
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
  /** Default size at which unsealed data is sealed into a segment (topic `segment.bytes`). */
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
  /** Local write-ahead file size after which a new file is started (default 64 MiB). */
  walFileBytes?: number;
  /**
   * Whether the next local write-ahead file is made ready in the background before it is needed
   * (default true; tests that count files turn it off).
   */
  walPrepareNextFile?: boolean;
  /**
   * Longest data stays unsealed, whatever the topic's `segment.ms` (default
   * 10 minutes): bounds how long write-ahead objects are kept.
   */
  sealMaxAgeMs?: number;
  /** How often partitions are checked for sealing (default 1 s). */
  sealCheckIntervalMs?: number;
  /** How often fully sealed write-ahead objects are looked for and deleted (default 30 s). */
  walGcIntervalMs?: number;
  /** Age before an unreferenced write-ahead object may be deleted (default 10 minutes). */
  walOrphanGraceMs?: number;
  /** Idle time after which a producer's state is forgotten (default 1 day). */
  producerIdExpirationMs?: number;
  /** Bound on producers remembered per partition (default 10 000). */
  producersPerPartitionMax?: number;
  /** How often compacted partitions are checked for a compaction run (default 5 s). */
  compactionCheckIntervalMs?: number;
  /** Compaction key map bound (log.cleaner.dedupe.buffer.size; default 32 MiB). */
  compactionDedupeBufferBytes?: number;
  /** Sealed bytes one compaction run reads (default 64 MiB). */
  compactionInputBytesMax?: number;
  /**
   * Lowest pace, in bytes per second, of segment writes (sealing, compaction) to a local disk;
   * they go at max(this, 2 x the write-ahead rate) (`WritePacer`). 0 or unset: full speed.
   */
  segmentWriteRateMin?: number;
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
  /** The last stable offset: transactions open at or above it are undecided. */
  lastStableOffset: number;
  /**
   * The read ended before the high watermark because the next batch did not fit the budget (or
   * a per-read bound was reached): there is more to read at the offset after `chunks`.
   */
  stoppedShort: boolean;
}

export interface ReadOptions {
  minOneBatch?: boolean;
  /** read_committed: nothing at or beyond the last stable offset. */
  readCommitted?: boolean;
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
  /** Counts objects created in the object store (metrics: objects written per second). */
  noteObjectsWritten(count: number): void;
  /** Paces segment writes (`PutOptions.pace`); absent: full speed. */
  paceSegmentWrite?: (bytes: number) => Promise<void>;
  /** Reads write-ahead chunks back, small ones through cached blocks. */
  walReader: WalReader;
  /** The policy for broken invariants (production: log and stop the process). */
  onBrokenInvariant: InvariantPolicy;
  /** Counts a committed seal: segment bytes and how long it took. */
  noteSeal(bytes: number, elapsedMs: number): void;
  /** Counts a compaction run (committed or with nothing to commit) and how long it took. */
  noteCompaction?(stats: CompactionStats, elapsedMs: number): void;
  /** Throws LogError when `bytes` more pending bytes would exceed the write buffer bound. */
  reservePending(bytes: number): void;
  /** The log stopped (fenced, lease lost, deleted, shut down): forget it. */
  onClosed(log: PartitionLog): void;
}

interface PendingAppend {
  records: Uint8Array;
  batches: BatchInfo[];
  /** Set for a transaction marker (one control batch). */
  marker?: MarkerInfo;
  baseOffset: number;
  nextOffset: number;
  bytes: number;
  resolve?: (result: AppendResult) => void;
  reject?: (error: LogError) => void;
}

interface FlushState {
  entries: PendingAppend[];
  chunk: WalChunkInput | null;
  endOffset: number;
  /** The log start offset this flush commits (advanced by `advanceLogStartOffset`). */
  logStartOffset: number;
  advance: StartAdvance | null;
  /** The sealed end this flush commits. */
  sealedEnd: number;
  seal: SealAdvance | null;
  compact: CompactAdvance | null;
  /** The compaction state this flush commits. */
  compaction: CompactionState;
  /** The transactions this flush commits. */
  txn: TxnSnapshot;
  expectedRevision: number;
}

/** A compaction run's rewritten segments, waiting for a flush round to commit them. */
interface CompactAdvance {
  /** New metas (new generations) of rewritten segments, by base offset. */
  replaced: Map<number, SegmentMeta>;
  /** The generation each rewritten segment had when it was read. */
  readGenerations: Map<number, number>;
  /** First-cleaned times of segments cleaned whole by the run. */
  cleanedAtMs: Map<number, number>;
  cleanedThrough: number;
  resolve: () => void;
  reject: (error: LogError) => void;
}

/** What one compaction run did. */
export interface CompactionOutcome {
  stats: CompactionStats;
  /** Segments read, and those rewritten under a new generation. */
  segmentsRead: number;
  segmentsRewritten: number;
  cleanedThrough: number;
}

/** When a partition's unsealed data is sealed (the topic's segment.bytes and segment.ms). */
export interface SealPolicy {
  segmentBytes: number;
  segmentMs: number;
  /** Set when the topic's cleanup.policy includes "compact". */
  compaction?: CompactionPolicy;
}

/** A segment for `#putSegment`: encoded whole, or streamed by a seal (`putStream`). */
type SegmentSource = { kind: "parts"; segment: SegmentParts } | StreamedSegment;
interface StreamedSegment {
  kind: "stream";
  baseOffset: number;
  /** A fresh source of the `.kfs` object's bytes (each attempt reads afresh). */
  open: () => AsyncIterable<Uint8Array[]>;
  /** The `.index` object, once the source is done. */
  index: () => Uint8Array;
}

/** A sealed segment written and waiting for a flush round to commit `sealedEnd` past it. */
interface SealAdvance {
  meta: SegmentMeta;
  /** The sealed segment's view for the cache, when its bytes were joined. */
  view: SegmentView | null;
  resolve: () => void;
  reject: (error: LogError) => void;
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
  /** Leader epoch history as acquired (this owner's epoch is its last entry). */
  readonly #epochs: EpochEntry[];
  #stateRevision: number;
  #committedEnd: number;
  #logStartOffset: number;
  #nextOffset: number;
  readonly topicId: string;
  /** UTF-8 length of the topic name (write-ahead chunk headers hold it). */
  readonly #topicNameBytes: number;
  /** Sealed segments, oldest first: offsets below `#sealedEnd`. */
  readonly #segments: SegmentMeta[];
  #sealedEnd: number;
  /** Unsealed write-ahead ranges, oldest first: [#sealedEnd, #committedEnd). */
  #ranges: WalRange[];
  #rangesBytes: number;
  #pending: PendingAppend[] = [];
  #pendingBytes = 0;
  #inFlight: FlushState | null = null;
  /** Segment objects at or beyond `#sealedEnd` may exist: clean before the next seal. */
  #storeDirty: boolean;
  #sealing: Promise<boolean> | null = null;
  #sealAdvance: SealAdvance | null = null;
  /** Committed compaction state (generations of rewritten segments, cleaner checkpoint). */
  #compaction: CompactionState;
  #compacting: Promise<CompactionOutcome | null> | null = null;
  #compactAdvance: CompactAdvance | null = null;
  /** Wall-clock time of the last compaction run's end, or null (none since acquisition). */
  #lastCompactionMs: number | null = null;
  /** The sealed end when the last run started: nothing new to compact while it is the same. */
  #compactedSealedEnd = -1;
  /** Since when (wall clock) sealed data has been waiting for compaction, or null. */
  #dirtySinceMs: number | null = null;
  /** Replaced segment objects, deleted once reads under way are done (`deleteReplaced`). */
  #replaced: { keys: string[]; dueMs: number }[] = [];
  /** Segment objects being written and not committed yet: never orphans to delete. */
  readonly #writing = new Set<string>();
  #closedError: LogError | null = null;
  /** Set while the partition is being handed over: new appends are refused with it. */
  #appendsRefused: LogError | null = null;
  #startAdvance: StartAdvance | null = null;
  readonly #waiters = new Set<DataWaiter>();
  /** Loads in flight, by segment object key or range cache key. */
  readonly #loading = new Map<string, Promise<SegmentView>>();
  /** Idempotent producers' sequences (KIP-98); rebuilt from the log tail by loadProducerState. */
  readonly #producers: ProducerStateTable;
  #producersLoaded = false;
  #producersLoading: Promise<void> | null = null;
  /** Committed transactions (open ones, aborted ranges), as of `#committedEnd`. */
  #txn: TxnSnapshot;
  /** The same with pending and in-flight appends applied (what appends are checked against). */
  #txnLatest: TxnSnapshot;

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
    this.#epochs = acquired.state.epochs ?? [[acquired.epoch, acquired.state.endOffset]];
    this.#stateRevision = acquired.stateRevision;
    this.#committedEnd = acquired.state.endOffset;
    this.#logStartOffset = acquired.state.logStartOffset;
    this.#nextOffset = acquired.state.endOffset;
    this.topicId = acquired.topicId;
    this.#topicNameBytes = new TextEncoder().encode(topic).byteLength;
    this.#segments = recovered.segments;
    this.#sealedEnd = recovered.sealedEnd;
    this.#ranges = recovered.ranges;
    this.#rangesBytes = 0;
    for (const r of this.#ranges) this.#rangesBytes += r.size;
    this.#storeDirty = recovered.undeleted.length > 0;
    this.#compaction = acquired.state.compaction ?? { segments: {}, cleanedThrough: 0 };
    if (this.#segments.some((s) => s.lastOffset >= this.#compaction.cleanedThrough)) {
      this.#dirtySinceMs = ctx.clock.now();
    }
    this.#producers = new ProducerStateTable({
      expirationMs: ctx.config.producerIdExpirationMs,
      producersMax: ctx.config.producersPerPartitionMax,
    });
    this.#txn = txnSnapshotFromStored(acquired.state.txn);
    this.#txnLatest = this.#txn;
  }

  /** The last stable offset: the first offset of the oldest open transaction, or the HW. */
  get lastStableOffset(): number {
    return lastStableOffset(this.#txn, this.#committedEnd);
  }

  /** Committed open transactions, by producer id. */
  get openTransactions(): ReadonlyMap<number, OpenTxn> {
    return this.#txn.open;
  }

  /** The producer's open transaction here, pending appends included (undefined: none). */
  pendingTransactionOf(producerId: number): OpenTxn | undefined {
    return this.#txnLatest.open.get(producerId);
  }

  /** Aborted transactions overlapping [from, to] (Fetch's `aborted_transactions`). */
  abortedTransactions(from: number, to: number): AbortedTxn[] {
    return abortedTxnsIn(this.#txn, from, to);
  }

  /** Committed transaction state (open, aborted, markers), for compaction and tests. */
  get txnState(): TxnSnapshot {
    return this.#txn;
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
  /** The ownership epoch, which is the leader epoch: bumped each time a broker acquires the partition. */
  get leaderEpoch(): number {
    return this.#epoch;
  }

  /** OffsetForLeaderEpoch's answer for `requested` (lib/metadata/leader_epochs.ts). */
  endOffsetForEpoch(requested: number): { leaderEpoch: number; endOffset: number } {
    return epochEndOffset(this.#epochs, this.#epoch, this.#committedEnd, requested);
  }

  /** The leader epoch `offset` was written in (UNDEFINED_EPOCH when older than the history). */
  epochOf(offset: number): number {
    return epochForOffset(this.#epochs, offset);
  }
  get closed(): boolean {
    return this.#closedError !== null;
  }
  /** The sealed segments, oldest first (a copy). */
  get segments(): SegmentMeta[] {
    return this.#segments.map((s) => ({ ...s }));
  }
  /** Offsets below this are in sealed segments. */
  get sealedEnd(): number {
    return this.#sealedEnd;
  }
  /** The unsealed write-ahead ranges, oldest first (a copy). */
  get unsealedRanges(): WalRange[] {
    return this.#ranges.map((r) => ({ ...r }));
  }
  /** How many unsealed ranges the partition has (one per flush round that touched it). */
  get unsealedRangeCount(): number {
    return this.#ranges.length;
  }
  /** Record bytes committed and not sealed yet. */
  get unsealedBytes(): number {
    return this.#rangesBytes;
  }
  /** Bytes of the sealed segment objects. */
  get sealedBytes(): number {
    let bytes = 0;
    for (const s of this.#segments) bytes += s.size;
    return bytes;
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
      return Promise.reject(this.#broken("append without batches"));
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
    setPartitionLeaderEpoch(records, batches, this.#epoch);
    if (opts.logAppendTimeMs !== undefined) {
      for (const b of batches) setLogAppendTime(records, b, opts.logAppendTimeMs);
    }
    this.#nextOffset = nextOffset;
    if (idempotent) this.#producers.record(batches, this.#ctx.clock.now());
    this.#txnLatest = applyTxnBatches(this.#txnLatest, batches.map((batch) => ({ batch })));
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
        this.#broken(
          `producer state of "${this.#name()}" names pending offset ` +
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
   * Appends a transaction's COMMIT or ABORT marker (a control batch, KIP-98) for `producerId`
   * at `producerEpoch`, through the same flush as data (acks=all). `decision` is the
   * coordinator's number for this decision: a marker this partition already holds for that
   * decision or a newer one is not appended again (`appended: false`), so a retried or late
   * marker never closes the producer's next transaction.
   */
  async appendMarker(
    producerId: number,
    producerEpoch: number,
    commit: boolean,
    decision: number,
  ): Promise<{ appended: boolean; offset: number }> {
    if (this.#closedError) throw this.#closedError;
    if (this.#appendsRefused) throw this.#appendsRefused;
    await this.loadProducerState();
    // Checked again: shut down while the producer state loaded, the marker would be queued on a
    // log no round takes any more, and its acknowledgement would never come.
    if (this.#closedError) throw this.#closedError;
    if (this.#appendsRefused) throw this.#appendsRefused;
    if (isStaleMarker(this.#txnLatest, producerId, decision)) {
      return { appended: false, offset: -1 };
    }
    const records = encodeMarkerBatch(
      producerId,
      producerEpoch,
      commit,
      decision,
      this.#ctx.clock.now(),
    );
    const batches = scanBatches(records).batches;
    const marker: MarkerInfo = { commit, coordinatorEpoch: decision };
    const bytes = records.byteLength;
    this.#ctx.reservePending(bytes);
    const baseOffset = this.#nextOffset;
    this.#nextOffset = assignOffsets(records, batches, baseOffset);
    setPartitionLeaderEpoch(records, batches, this.#epoch);
    this.#producers.record(batches, this.#ctx.clock.now());
    this.#txnLatest = applyTxnBatches(this.#txnLatest, [{ batch: batches[0], marker }]);
    const entry: PendingAppend = {
      records,
      batches,
      marker,
      baseOffset,
      nextOffset: this.#nextOffset,
      bytes,
    };
    const acked = new Promise<AppendResult>((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    this.#pending.push(entry);
    this.#pendingBytes += bytes;
    this.#ctx.scheduler.notePending(this, bytes);
    const result = await acked;
    return { appended: true, offset: result.baseOffset };
  }

  /** Whether idempotent producers' state is loaded (`loadProducerState`). */
  get producerStateLoaded(): boolean {
    return this.#producersLoaded;
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

  /**
   * The producers this partition remembers (DescribeProducers): epoch, last sequence and write
   * time, the decision number of their last marker here, and where their open transaction starts.
   */
  activeProducers(): {
    producerId: number;
    producerEpoch: number;
    lastSequence: number;
    lastTimestampMs: number;
    lastDecision: number;
    openTxnFirstOffset: number;
  }[] {
    const txn = this.#txnLatest;
    return this.#producers.entries().map((e) => ({
      producerId: e.producerId,
      producerEpoch: e.producerEpoch,
      lastSequence: e.batches.at(-1)?.lastSeq ?? -1,
      lastTimestampMs: e.lastTimestampMs,
      lastDecision: txn.markers.get(e.producerId) ?? -1,
      openTxnFirstOffset: txn.open.get(e.producerId)?.firstOffset ?? -1,
    }));
  }

  /** The producer's state on this partition (pending appends included), for tests and tools. */
  producerState(producerId: number): ProducerEntry | undefined {
    return this.#producers.get(producerId);
  }

  async #scanProducerState(): Promise<void> {
    const extents: Extent[] = [
      ...this.#segments.map((meta): Extent => ({ kind: "segment", meta })),
      ...this.#ranges.map((range): Extent => ({ kind: "wal", range })),
    ];
    let first = extents.length;
    let bytes = 0;
    while (first > 0 && extents.length - first < PRODUCER_STATE_SCAN_SEGMENTS_MAX) {
      const size = extentSize(extents[first - 1]);
      if (first < extents.length && bytes + size > PRODUCER_STATE_SCAN_BYTES_MAX) break;
      bytes += size;
      first--;
    }
    const tail = extents.slice(first);
    const views = await mapBounded(
      tail,
      PRODUCER_STATE_SCAN_CONCURRENCY,
      (extent) => this.#viewOfExtent(extent),
    );
    const failure = firstRejection(views);
    if (failure !== undefined) {
      throw toLogError(failure, `Cannot read the producer state of "${this.#name()}"`);
    }
    let batches = 0;
    views.forEach((result, i) => {
      const view = (result as PromiseFulfilledResult<SegmentView>).value;
      const extent = tail[i];
      const writtenMs = extent.kind === "segment"
        ? parseSegmentHeader(view.bytes).createdMs
        : extent.range.createdMs;
      for (let j = 0; j < view.count; j++) {
        this.#producers.load(readBatchInfo(view.bytes, view.starts[j]), writtenMs);
        batches++;
      }
    });
    this.#producers.expire(this.#ctx.clock.now());
    this.#ctx.logger.debug("Loaded producer state", {
      partition: this.#name(),
      extents: tail.length,
      batches,
      producers: this.#producers.size,
    });
  }

  // ---- flush (called by the scheduler) -------------------------------------

  takeFlush(): PreparedFlush | null {
    if (
      this.#closedError ||
      (this.#pending.length === 0 && !this.#startAdvance && !this.#sealAdvance &&
        !this.#compactAdvance)
    ) {
      return null;
    }
    if (this.#inFlight) throw this.#broken("two flushes of one partition at once");
    const entries = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    const advance = this.#startAdvance;
    this.#startAdvance = null;
    let seal = this.#sealAdvance;
    this.#sealAdvance = null;
    if (seal && !this.#sealFits(seal.meta)) {
      // The log start moved past the sealed data while the segment was written (DeleteRecords):
      // it is not committed; its objects are orphans below the log start (deleted below).
      seal.reject(LogError.storage(`Seal of "${this.#name()}" overtaken by a log start advance`));
      this.#deleteAbandoned(seal.meta);
      seal = null;
    }
    const compact = this.#compactAdvance;
    this.#compactAdvance = null;
    const endOffset = entries.length > 0
      ? entries[entries.length - 1].nextOffset
      : this.#committedEnd;
    const flush: FlushState = {
      entries,
      chunk: entries.length === 0 ? null : {
        topic: this.topic,
        topicId: this.topicId,
        partition: this.partition,
        epoch: this.#epoch,
        baseOffset: entries[0].baseOffset,
        endOffset,
        batches: entries.flatMap((e) =>
          e.batches.map((b) => e.records.subarray(b.position, b.position + b.size))
        ),
      },
      endOffset,
      logStartOffset: Math.max(this.#logStartOffset, advance?.offset ?? 0),
      advance,
      sealedEnd: seal ? seal.meta.lastOffset + 1 : this.#sealedEnd,
      seal,
      compact,
      compaction: this.#compaction,
      txn: applyTxnBatches(
        this.#txn,
        entries.flatMap((e) => e.batches.map((batch) => ({ batch, marker: e.marker }))),
      ),
      expectedRevision: this.#stateRevision,
    };
    if (advance) flush.txn = pruneTxnSnapshot(flush.txn, flush.logStartOffset);
    if (compact || advance) {
      // Entries of segments this flush removes (retention) go with them.
      const logStart = flush.logStartOffset;
      const live = (base: number) =>
        this.#segments.some((s) => s.baseOffset === base && s.lastOffset >= logStart);
      flush.compaction = nextCompactionState(
        this.#compaction,
        compact
          ? {
            generations: new Map(
              [...compact.replaced].map(([base, meta]) => [base, meta.generation ?? 0]),
            ),
            cleanedAtMs: compact.cleanedAtMs,
            cleanedThrough: compact.cleanedThrough,
          }
          : null,
        live,
      );
    }
    this.#inFlight = flush;
    return {
      chunk: flush.chunk,
      commit: () => ({
        topic: this.topic,
        partition: this.partition,
        expectedRevision: flush.expectedRevision,
        state: {
          endOffset: flush.endOffset,
          logStartOffset: flush.logStartOffset,
          epoch: this.#epoch,
          epochs: this.#epochs,
          sealedEnd: flush.sealedEnd,
          ...(isEmptyCompactionState(flush.compaction) ? {} : { compaction: flush.compaction }),
          ...txnField(flush.txn),
        },
      }),
      committed: (revision, written) => this.#flushCommitted(flush, revision, written),
      failed: (error, phase) => this.#flushFailed(flush, error, phase),
    };
  }

  #flushCommitted(flush: FlushState, revision: number, written: WrittenChunk | null): void {
    this.#inFlight = null;
    this.#stateRevision = revision;
    if (flush.chunk) {
      if (!written) {
        throw this.#broken(`flush of "${this.#name()}" committed without its chunk`);
      }
      const batches = flush.entries.flatMap((e) => e.batches);
      const view = viewFromWritten(written.payload, batches);
      const range: WalRange = {
        baseOffset: flush.chunk.baseOffset,
        lastOffset: flush.endOffset - 1,
        object: written.object,
        position: written.position,
        length: written.length,
        epoch: this.#epoch,
        size: written.payload.byteLength,
        maxTimestamp: viewMaxTimestamp(view),
        createdMs: this.#ctx.clock.now(),
      };
      const last = this.#ranges[this.#ranges.length - 1];
      const expectedBase = last ? last.lastOffset + 1 : this.#committedEnd;
      if (range.baseOffset !== expectedBase) {
        throw this.#broken(
          `range ${range.baseOffset} of "${this.#name()}" does not follow ` +
            `${expectedBase - 1}`,
        );
      }
      this.#ranges.push(range);
      this.#rangesBytes += range.size;
      this.#ctx.cache.set(rangeCacheKey(range), { kind: "segment", view });
    }
    this.#committedEnd = flush.endOffset;
    this.#txn = flush.txn;
    if (this.#pending.length === 0) this.#txnLatest = this.#txn;
    this.#producers.commit(
      flush.entries.flatMap((e) => e.batches),
      flush.endOffset,
      this.#ctx.clock.now(),
    );
    if (flush.seal) this.#applySeal(flush.seal);
    if (flush.compact) this.#applyCompaction(flush.compact);
    this.#compaction = flush.compaction;
    const removed = this.#applyLogStartOffset(flush.logStartOffset);
    flush.advance?.resolve(removed);
    const result = { logStartOffset: this.#logStartOffset };
    for (const entry of flush.entries) entry.resolve?.({ baseOffset: entry.baseOffset, ...result });
    this.#wakeWaiters();
  }

  /** Whether a written segment still starts at the sealed end and ends at a range boundary. */
  #sealFits(meta: SegmentMeta): boolean {
    if (meta.baseOffset !== this.#sealedEnd) return false;
    return this.#ranges.some((r) => r.lastOffset === meta.lastOffset);
  }

  /** Deletes the objects of a segment that was written but never committed (best effort). */
  #deleteAbandoned(meta: SegmentMeta): void {
    for (const kind of ["kfs", "index"] as const) {
      const key = this.#segmentKey(meta, kind);
      this.#writing.delete(key);
      this.#ctx.objectStore.delete(key).catch(() => {
        this.#storeDirty = true; // recovery or the next seal's orphan pass deletes it
      });
    }
  }

  /** A committed seal: the segment replaces the ranges it holds. */
  #applySeal(seal: SealAdvance): void {
    const { meta, view } = seal;
    if (meta.baseOffset !== this.#sealedEnd) {
      throw this.#broken(
        `sealed segment ${meta.baseOffset} of "${this.#name()}" does not ` +
          `start at the sealed end ${this.#sealedEnd}`,
      );
    }
    let count = 0;
    while (count < this.#ranges.length && this.#ranges[count].lastOffset <= meta.lastOffset) {
      count++;
    }
    if (count === 0 || this.#ranges[count - 1].lastOffset !== meta.lastOffset) {
      throw this.#broken(
        `sealed segment ${meta.baseOffset}-${meta.lastOffset} of ` +
          `"${this.#name()}" does not end at a range boundary`,
      );
    }
    for (const r of this.#ranges.splice(0, count)) {
      this.#rangesBytes -= r.size;
      this.#ctx.cache.delete(rangeCacheKey(r));
    }
    this.#segments.push(meta);
    this.#sealedEnd = meta.lastOffset + 1;
    this.#dirtySinceMs ??= this.#ctx.clock.now();
    if (view) {
      this.#ctx.cache.set(this.#segmentKey(meta, "kfs"), { kind: "segment", view });
    }
    seal.resolve();
  }

  /**
   * Moves the start offset up; forgets (and uncaches) the segments and
   * ranges wholly below it. Write-ahead objects are deleted by the manager's
   * garbage collection once nothing in them is needed.
   */
  #applyLogStartOffset(offset: number): SegmentMeta[] {
    if (offset <= this.#logStartOffset) return [];
    this.#logStartOffset = offset;
    let count = 0;
    while (count < this.#segments.length && this.#segments[count].lastOffset < offset) count++;
    const removed = this.#segments.splice(0, count);
    for (const s of removed) {
      this.#ctx.cache.delete(this.#segmentKey(s, "kfs"));
      this.#ctx.cache.delete(this.#segmentKey(s, "index"));
    }
    while (this.#ranges.length > 0 && this.#ranges[0].lastOffset < offset) {
      const r = this.#ranges.shift()!;
      this.#rangesBytes -= r.size;
      this.#ctx.cache.delete(rangeCacheKey(r));
    }
    // A start beyond the sealed end (DeleteRecords into unsealed data): what lay between is
    // gone, so the sealed end moves to the first range left (committed by the next round).
    if (offset > this.#sealedEnd) {
      this.#sealedEnd = this.#ranges[0]?.baseOffset ?? this.#committedEnd;
    }
    return removed;
  }

  #flushFailed(flush: FlushState, error: LogError, phase: "write" | "commit"): void {
    this.#inFlight = null;
    flush.advance?.reject(error);
    flush.seal?.reject(error);
    if (flush.compact) {
      // Its new objects are not referenced: deleted before the next write (or by recovery).
      this.#storeDirty = true;
      flush.compact.reject(error);
    }
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
    this.#nextOffset = this.#committedEnd;
    // Pending producer state rolls back with the offsets. A queued append
    // whose sequence followed a rejected one no longer fits: it fails too
    // (retriable), and the client resends both in order.
    this.#producers.rollback();
    this.#txnLatest = this.#txn;
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
      this.#txnLatest = applyTxnBatches(
        this.#txnLatest,
        entry.batches.map((batch) => ({ batch, marker: entry.marker })),
      );
      kept.push(entry);
    }
    this.#pending = kept;
  }

  // ---- sealing ------------------------------------------------------------------

  /**
   * Whether the unsealed data is due for sealing: it reached the topic's
   * `segment.bytes`, its oldest range is older than `segment.ms` (capped by
   * the broker's `sealMaxAgeMs`), or there are too many ranges to track.
   */
  sealDue(policy: SealPolicy): boolean {
    if (this.#closedError || this.#sealing || this.#ranges.length === 0) return false;
    if (this.#rangesBytes >= policy.segmentBytes) return true;
    if (this.#ranges.length >= UNSEALED_RANGES_MAX) return true;
    const ageMs = this.#ctx.clock.now() - this.#ranges[0].createdMs;
    return ageMs >= Math.min(policy.segmentMs, this.#sealMaxAgeMs());
  }

  /**
   * Copies the oldest unsealed ranges (up to `segmentBytes`, at least one)
   * into one sealed segment: reads them (cache, else ranged GETs of the
   * write-ahead objects), writes the `.kfs` and `.index` objects create-only,
   * and commits the new sealed end through the next flush round (an epoch
   * compare-and-swap like every commit). Resolves true when a segment was
   * sealed, false when there was nothing to seal. One seal at a time.
   */
  seal(policy: Pick<SealPolicy, "segmentBytes">): Promise<boolean> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    this.#sealing ??= this.#sealOnce(policy).finally(() => {
      this.#sealing = null;
    });
    return this.#sealing;
  }

  /** How many chunks or segments a seal or compaction run reads at once. */
  #loadConcurrency(): number {
    return this.#ctx.objectStore.readRangeSync
      ? SEAL_LOAD_CONCURRENCY_LOCAL
      : SEAL_LOAD_CONCURRENCY;
  }

  async #sealOnce(policy: Pick<SealPolicy, "segmentBytes">): Promise<boolean> {
    const chosen: WalRange[] = [];
    let bytes = 0;
    for (const r of this.#ranges) {
      if (chosen.length > 0 && bytes + r.size > policy.segmentBytes) break;
      chosen.push(r);
      bytes += r.size;
    }
    if (chosen.length === 0) return false;
    const started = this.#ctx.clock.monotonic();
    const startBefore = this.#logStartOffset;
    if (this.#ctx.objectStore.putStream) return this.#sealStreaming(chosen, started, startBefore);
    let sinceYield = 0;
    const views = await mapBounded(chosen, this.#loadConcurrency(), async (range) => {
      sinceYield += range.length;
      if (sinceYield >= SEAL_YIELD_BYTES) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
      return this.#viewOfExtent({ kind: "wal", range }, { cache: false });
    });
    const failure = firstRejection(views);
    if (failure !== undefined) throw toLogError(failure, `Cannot seal "${this.#name()}"`);
    const inputs: SegmentBatchInput[] = [];
    const batches: { lastOffsetDelta: number; maxTimestamp: number; attributes: number }[] = [];
    let maxTimestamp = -1;
    for (const result of views) {
      const view = (result as PromiseFulfilledResult<SegmentView>).value;
      for (let i = 0; i < view.count; i++) {
        const info = readBatchInfo(view.bytes, view.starts[i]);
        inputs.push({
          bytes: view.bytes.subarray(view.starts[i], view.starts[i + 1]),
          baseOffset: info.baseOffset,
          lastOffsetDelta: info.lastOffsetDelta,
          recordsCount: info.recordsCount,
        });
        batches.push({
          lastOffsetDelta: info.lastOffsetDelta,
          maxTimestamp: info.maxTimestamp,
          attributes: info.attributes,
        });
        maxTimestamp = Math.max(maxTimestamp, info.maxTimestamp);
      }
    }
    if (this.#closedError) throw this.#closedError;
    if (chosen[0].baseOffset !== this.#sealedEnd) {
      // DeleteRecords moved the log start past these ranges while they were read: nothing to
      // seal any more. Anything else moving them is a broken invariant.
      if (this.#logStartOffset !== startBefore) return false;
      throw this.#broken(`unsealed ranges of "${this.#name()}" moved while sealing`);
    }
    const parts = encodeSegmentParts(inputs, {
      createdMs: this.#ctx.clock.now(),
      indexIntervalMessages: this.#ctx.config.indexIntervalMessages,
    });
    // Stores that write pieces get the batches as they are (no 64 MiB copy on the event loop);
    // otherwise the joined object also becomes the cached view.
    const joined = await this.#putSegment({ kind: "parts", segment: parts });
    const meta: SegmentMeta = {
      baseOffset: parts.baseOffset,
      lastOffset: parts.lastOffset,
      size: parts.size,
      hasIndex: true,
      maxTimestamp,
    };
    const view = joined ? viewFromEncoded({ ...parts, segment: joined }, batches) : null;
    await this.#commitSeal(meta, view);
    this.#ctx.noteSeal(parts.size, this.#ctx.clock.monotonic() - started);
    return true;
  }

  /**
   * A seal on a store that writes as it is given data (`putStream`, a local directory): the
   * chosen ranges are read one at a time and their batches go to the store as they come, so a
   * seal holds about one range, never a whole segment. Read whole, a 64 MiB segment's buffers
   * made the collector run at once (external memory pressure) and held the event loop for
   * 10-20 ms as each seal started, with every produce waiting on a flush round behind it.
   */
  async #sealStreaming(chosen: WalRange[], started: number, startBefore: number): Promise<boolean> {
    const span = {
      baseOffset: chosen[0].baseOffset,
      lastOffset: chosen[chosen.length - 1].lastOffset,
    };
    const createdMs = this.#ctx.clock.now();
    // Filled by the source once it has read every range (each attempt starts afresh).
    const out: { end?: ReturnType<SegmentStreamEncoder["finish"]>; maxTimestamp: number } = {
      maxTimestamp: -1,
    };
    const open = () => {
      out.end = undefined;
      out.maxTimestamp = -1;
      const encoder = new SegmentStreamEncoder(span, {
        createdMs,
        indexIntervalMessages: this.#ctx.config.indexIntervalMessages,
      });
      return this.#streamRanges(chosen, encoder, out);
    };
    await this.#putSegment({
      kind: "stream",
      baseOffset: span.baseOffset,
      open,
      index: () => out.end!.index,
    });
    const meta: SegmentMeta = {
      baseOffset: span.baseOffset,
      lastOffset: span.lastOffset,
      size: out.end!.size,
      hasIndex: true,
      maxTimestamp: out.maxTimestamp,
    };
    if (this.#closedError) {
      this.#writing.delete(this.#segmentKey(meta, "kfs"));
      this.#writing.delete(this.#segmentKey(meta, "index"));
      throw this.#closedError;
    }
    if (chosen[0].baseOffset !== this.#sealedEnd) {
      // DeleteRecords moved the log start past these ranges while they were written: the
      // segment is not needed. Anything else moving them is a broken invariant.
      if (this.#logStartOffset !== startBefore) {
        this.#deleteAbandoned(meta);
        return false;
      }
      throw this.#broken(`unsealed ranges of "${this.#name()}" moved while sealing`);
    }
    await this.#commitSeal(meta, null);
    this.#ctx.noteSeal(meta.size, this.#ctx.clock.monotonic() - started);
    return true;
  }

  /** The batches of `chosen`, read one range at a time, framed by `encoder` (see `#sealStreaming`). */
  async *#streamRanges(
    chosen: WalRange[],
    encoder: SegmentStreamEncoder,
    out: { end?: ReturnType<SegmentStreamEncoder["finish"]>; maxTimestamp: number },
  ): AsyncGenerator<Uint8Array[]> {
    yield [encoder.header];
    let sinceYield = 0;
    for (const range of chosen) {
      if (this.#closedError) throw this.#closedError;
      // Small ranges are read synchronously (local directory): let other work in between.
      sinceYield += range.length;
      if (sinceYield >= SEAL_YIELD_BYTES) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
      let view: SegmentView;
      try {
        view = await this.#viewOfExtent({ kind: "wal", range }, { cache: false });
      } catch (error) {
        throw toLogError(error, `Cannot seal "${this.#name()}"`);
      }
      for (let i = 0; i < view.count; i++) {
        const info = readBatchInfo(view.bytes, view.starts[i]);
        encoder.add(view.bytes.subarray(view.starts[i], view.starts[i + 1]), info);
        if (info.maxTimestamp > out.maxTimestamp) out.maxTimestamp = info.maxTimestamp;
      }
      if (view.count > 0) yield [view.bytes.subarray(view.starts[0], view.starts[view.count])];
    }
    const end = encoder.finish();
    out.end = end;
    yield [end.footer];
  }

  /** Hands a written segment to the next flush round, which commits the sealed end past it. */
  async #commitSeal(meta: SegmentMeta, view: SegmentView | null): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) => {
        // Shut down while the segment was written (topic deleted, partition handed over): no
        // round takes a closed log, so the seal ends here. The segment is not committed; the
        // next owner's recovery deletes its objects as orphans.
        if (this.#closedError) return reject(this.#closedError);
        this.#sealAdvance = { meta, view, resolve, reject };
        this.#ctx.scheduler.notePending(this, 0);
        this.#ctx.scheduler.flushNow();
      });
    } finally {
      this.#writing.delete(this.#segmentKey(meta, "kfs"));
      this.#writing.delete(this.#segmentKey(meta, "index"));
    }
  }

  // ---- compaction ----------------------------------------------------------------

  /** The share of sealed bytes not deduplicated yet (by segment, from the cleaner checkpoint). */
  get dirtyRatio(): number {
    return segmentDirtyRatio(this.#segments, this.#compaction.cleanedThrough);
  }
  /** When the last compaction run of this ownership ended (wall clock), or null. */
  get lastCompactionMs(): number | null {
    return this.#lastCompactionMs;
  }
  /**
   * Whether a compaction run is due (the topic is compacted; the caller checks that): sealed
   * data arrived since the last run and the dirty ratio reached min.cleanable.dirty.ratio or
   * dirty data waited max.compaction.lag.ms; or the last run is long enough ago that
   * tombstones or lagging records may have become removable (`recheckMs`).
   */
  compactionDue(policy: CompactionPolicy): boolean {
    if (this.#closedError || this.#compacting || this.#segments.length === 0) return false;
    const now = this.#ctx.clock.now();
    if (this.#sealedEnd !== this.#compactedSealedEnd) {
      if (this.dirtyRatio >= policy.minCleanableDirtyRatio) return true;
      if (this.#dirtySinceMs !== null && now - this.#dirtySinceMs >= policy.maxCompactionLagMs) {
        return true;
      }
    }
    return this.#lastCompactionMs !== null && now - this.#lastCompactionMs >= recheckMs(policy);
  }

  /**
   * One compaction run over the oldest sealed segments (up to `limits.inputBytesMax`): reads
   * them, keeps the latest record per key below the cleanable point (compactor.ts), writes
   * each changed segment create-only under its next generation, and commits the new
   * generations through the next flush round (epoch compare-and-swap, like a seal). Until that
   * commit the old segments are served; from it the new ones; the replaced objects are deleted
   * after a grace for reads under way (`deleteReplaced`). One run at a time.
   */
  compact(policy: CompactionPolicy, limits: CompactionLimits): Promise<CompactionOutcome | null> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    this.#compacting ??= this.#compactOnce(policy, limits).finally(() => {
      this.#compacting = null;
      this.#lastCompactionMs = this.#ctx.clock.now();
    });
    return this.#compacting;
  }

  async #compactOnce(
    policy: CompactionPolicy,
    limits: CompactionLimits,
  ): Promise<CompactionOutcome | null> {
    const started = this.#ctx.clock.monotonic();
    const nowMs = this.#ctx.clock.now();
    this.#compactedSealedEnd = this.#sealedEnd;
    const chosen: SegmentMeta[] = [];
    let bytes = 0;
    for (const segment of this.#segments) {
      if (chosen.length > 0 && bytes + segment.size > limits.inputBytesMax) break;
      chosen.push(segment);
      bytes += segment.size;
    }
    if (chosen.length === 0) return null;
    const loaded = await mapBounded(
      chosen,
      this.#loadConcurrency(),
      (segment) => this.#compactionInput(segment),
    );
    const failure = firstRejection(loaded);
    if (failure !== undefined) throw toLogError(failure, `Cannot compact "${this.#name()}"`);
    const inputs = loaded.map((r) => (r as PromiseFulfilledResult<SegmentInput>).value);
    const head = chosen[chosen.length - 1].lastOffset + 1;
    // Nothing undecided is cleaned: the cleanable point stops at the last stable offset, and
    // the aborted ranges say which transactional data to drop (the snapshot is the committed
    // one; ranges aborted later are below the LSO only once committed).
    const txn = this.#txn;
    const result = compactSegments(inputs, {
      cleanablePoint: Math.min(
        cleanablePoint(inputs, head, nowMs, policy.minCompactionLagMs),
        lastStableOffset(txn, this.#committedEnd),
      ),
      abortedTransactions: txn.aborted,
      nowMs,
      deleteRetentionMs: policy.deleteRetentionMs,
      firstDirtyOffset: Math.max(this.#compaction.cleanedThrough, chosen[0].baseOffset),
      dedupeBufferBytes: limits.dedupeBufferBytes,
      // While nothing follows it, the input's last batch stays (emptied if need be): a log
      // ending in a gap would leave consumers fetching an offset below the high watermark
      // that no batch holds. A later run drops it once newer data follows.
      retainBatchEndingAt: head - 1,
    });
    const replaced = new Map<number, SegmentMeta>();
    const readGenerations = new Map<number, number>();
    const cleanedAtMs = new Map<number, number>();
    try {
      for (let i = 0; i < chosen.length; i++) {
        const meta = chosen[i];
        const out = result.segments[i];
        if (out.cleanedAtMs !== null && inputs[i].cleanedAtMs === null) {
          cleanedAtMs.set(meta.baseOffset, out.cleanedAtMs);
        }
        if (!out.changed) continue;
        if (this.#closedError) throw this.#closedError;
        const generation = (meta.generation ?? 0) + 1;
        const parts = encodeSegmentParts(
          out.batchList.map((b) => ({
            bytes: b.bytes,
            baseOffset: b.baseOffset,
            lastOffsetDelta: b.lastOffsetDelta,
            recordsCount: b.recordsCount,
          })),
          {
            createdMs: nowMs,
            indexIntervalMessages: this.#ctx.config.indexIntervalMessages,
            compactedSpan: { baseOffset: meta.baseOffset, lastOffset: meta.lastOffset },
          },
        );
        await this.#putSegment({ kind: "parts", segment: parts }, generation);
        replaced.set(meta.baseOffset, {
          baseOffset: meta.baseOffset,
          lastOffset: meta.lastOffset,
          size: parts.size,
          hasIndex: true,
          maxTimestamp: out.maxTimestamp,
          generation,
        });
        readGenerations.set(meta.baseOffset, meta.generation ?? 0);
      }
      const cleanedThrough = Math.max(
        this.#compaction.cleanedThrough,
        result.cleanedThroughOffset,
      );
      if (
        replaced.size > 0 || cleanedAtMs.size > 0 ||
        cleanedThrough !== this.#compaction.cleanedThrough
      ) {
        if (this.#closedError) throw this.#closedError;
        await new Promise<void>((resolve, reject) => {
          this.#compactAdvance = {
            replaced,
            readGenerations,
            cleanedAtMs,
            cleanedThrough,
            resolve,
            reject,
          };
          this.#ctx.scheduler.notePending(this, 0);
          this.#ctx.scheduler.flushNow();
        });
      }
    } catch (error) {
      // Rewrites written and not committed are orphans: deleted before the next write.
      if (replaced.size > 0) this.#storeDirty = true;
      throw error;
    } finally {
      for (const meta of replaced.values()) {
        this.#writing.delete(this.#segmentKey(meta, "kfs"));
        this.#writing.delete(this.#segmentKey(meta, "index"));
      }
    }
    if (!this.#segments.some((s) => s.lastOffset >= this.#compaction.cleanedThrough)) {
      this.#dirtySinceMs = null;
    }
    this.#ctx.noteCompaction?.(result.stats, this.#ctx.clock.monotonic() - started);
    return {
      stats: result.stats,
      segmentsRead: chosen.length,
      segmentsRewritten: replaced.size,
      cleanedThrough: this.#compaction.cleanedThrough,
    };
  }

  /** A sealed segment's batches for the compactor (from the cache, else a verified GET). */
  async #compactionInput(segment: SegmentMeta): Promise<SegmentInput> {
    const key = this.#segmentKey(segment, "kfs");
    const cached = this.#ctx.cache.get(key);
    const view = cached?.kind === "segment" ? cached.view : await this.#fetchView(segment, key);
    const entry = this.#compaction.segments[String(segment.baseOffset)];
    return {
      baseOffset: segment.baseOffset,
      batches: view.bytes.subarray(view.starts[0], view.starts[view.count]),
      cleanedAtMs: entry && entry[1] >= 0 ? entry[1] : null,
    };
  }

  /** A committed compaction: the rewritten segments replace the ones they were made from. */
  #applyCompaction(compact: CompactAdvance): void {
    const retired: string[] = [];
    for (const [base, meta] of compact.replaced) {
      const i = this.#segments.findIndex((s) => s.baseOffset === base);
      const old = i >= 0 ? this.#segments[i] : null;
      if (!old || (old.generation ?? 0) !== compact.readGenerations.get(base)) {
        // Removed since the run read it (retention): the rewrite is not referenced.
        retired.push(this.#segmentKey(meta, "kfs"), this.#segmentKey(meta, "index"));
        continue;
      }
      if (old.lastOffset !== meta.lastOffset) {
        throw this.#broken(
          `compacted segment ${base} of "${this.#name()}" ends at ${meta.lastOffset}, ` +
            `the segment it replaces at ${old.lastOffset}`,
        );
      }
      this.#segments[i] = meta;
      for (const kind of ["kfs", "index"] as const) {
        const key = this.#segmentKey(old, kind);
        this.#ctx.cache.delete(key);
        retired.push(key);
      }
    }
    if (retired.length > 0) {
      this.#replaced.push({
        keys: retired,
        dueMs: this.#ctx.clock.now() + REPLACED_SEGMENT_GRACE_MS,
      });
    }
    compact.resolve();
  }

  /**
   * Deletes segment objects replaced by compaction once their grace for reads under way has
   * passed (all of them with `force`, when nothing reads this log any more). A failed delete is
   * left to recovery, which deletes every generation the committed state does not name.
   */
  async deleteReplaced(force = false): Promise<number> {
    const now = this.#ctx.clock.now();
    const due = this.#replaced.filter((r) => force || r.dueMs <= now);
    if (due.length === 0) return 0;
    this.#replaced = this.#replaced.filter((r) => !due.includes(r));
    const keys = due.flatMap((r) => r.keys);
    const { objectStore } = this.#ctx;
    const results = await mapBounded(keys, DELETE_CONCURRENCY, (key) => objectStore.delete(key));
    const failure = firstRejection(results);
    if (failure !== undefined) {
      this.#ctx.logger.warn("Cannot delete replaced segments; recovery deletes them later", {
        partition: this.#name(),
        error: String(failure),
      });
    }
    return keys.length;
  }

  #sealMaxAgeMs(): number {
    return this.#ctx.config.sealMaxAgeMs ?? DEFAULT_SEAL_MAX_AGE_MS;
  }

  /**
   * Writes the segment's objects create-only (`putParts` where the store has it; then it
   * returns null, else the joined `.kfs` bytes). A key that already exists is an orphan of a
   * seal that did not commit — or a newer owner's object: after checking that we still own the
   * partition, orphans are deleted and the puts retried once.
   */
  async #putSegment(source: SegmentSource, generation = 0): Promise<Uint8Array | null> {
    if (this.#storeDirty) await this.#deleteOrphans();
    const { objectStore } = this.#ctx;
    const baseOffset = source.kind === "parts" ? source.segment.baseOffset : source.baseOffset;
    const kfsKey = this.#segmentKey({ baseOffset, generation }, "kfs");
    const indexKey = this.#segmentKey({ baseOffset, generation }, "index");
    // Until the caller's commit settles (it removes them), these are not orphans.
    this.#writing.add(kfsKey);
    this.#writing.add(indexKey);
    const segment = source.kind === "parts" ? source.segment : null;
    const joined = segment && !objectStore.putParts ? joinBytes(segment.parts, segment.size) : null;
    const kfsOptions = { ifNoneMatch: true, pace: this.#ctx.paceSegmentWrite };
    const putKfs = () =>
      !segment
        ? objectStore.putStream!(kfsKey, (source as StreamedSegment).open(), kfsOptions)
        : joined
        ? objectStore.put(kfsKey, joined, kfsOptions)
        : objectStore.putParts!(kfsKey, segment.parts, kfsOptions);
    // The index is derivable from its segment, so it is not flushed to stable storage:
    // readers fall back to scanning when it is missing or torn.
    const putIndex = () =>
      objectStore.put(indexKey, segment ? segment.index : (source as StreamedSegment).index(), {
        ifNoneMatch: true,
        durable: false,
      });
    // A streamed segment's index is known once its object is written.
    const putBoth = async (): Promise<PromiseSettledResult<void>[]> => {
      if (segment) return await Promise.allSettled([putKfs(), putIndex()]);
      const [kfs] = await Promise.allSettled([putKfs()]);
      return kfs.status === "rejected" ? [kfs] : [kfs, ...await Promise.allSettled([putIndex()])];
    };
    const released = () => {
      this.#writing.delete(kfsKey);
      this.#writing.delete(indexKey);
    };
    try {
      for (let attempt = 0;; attempt++) {
        this.#ctx.assertWritable();
        const results = await putBoth();
        this.#ctx.noteObjectsWritten(results.filter((r) => r.status === "fulfilled").length);
        const rejected = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
        if (rejected.length === 0) return joined;
        const onlyConflicts = rejected.every((r) => r.reason instanceof PreconditionFailedError);
        if (!onlyConflicts || attempt > 0) {
          this.#storeDirty = true;
          const reason = rejected.find((r) => !(r.reason instanceof PreconditionFailedError))
            ?.reason ?? rejected[0].reason;
          throw toLogError(reason, `Cannot write segment of "${this.#name()}"`);
        }
        await this.#verifyOwnership();
        // The keys taken are orphans (ours from an earlier attempt, or a stale owner's).
        released();
        await this.#deleteOrphans();
        this.#writing.add(kfsKey);
        this.#writing.add(indexKey);
      }
    } catch (error) {
      released();
      throw error;
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

  /** Deletes this partition's segment objects at or beyond the sealed end (uncommitted seals). */
  async #deleteOrphans(): Promise<void> {
    this.#ctx.assertWritable();
    const { objectStore } = this.#ctx;
    let doomed: string[];
    try {
      doomed = (await objectStore.list(this.#prefix))
        .map((o) => o.key)
        .filter((key) => {
          if (this.#writing.has(key)) return false;
          const parsed = parseSegmentObjectKey(key);
          if (parsed === null) return false;
          if (parsed.baseOffset >= this.#sealedEnd) return true;
          // A rewrite newer than the committed generation: its compaction never committed.
          const current = this.#compaction.segments[String(parsed.baseOffset)]?.[0] ?? 0;
          return parsed.generation > current;
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

  /**
   * Refuses every later append with `error` (a hand-over has begun); what is
   * already pending still flushes. Reads keep working until `shutdown`.
   */
  refuseAppends(error: LogError): void {
    this.#appendsRefused ??= error;
  }

  /** Resolves when no segment load (a fetch's or a read-ahead's) and no seal is in flight. */
  async idleReads(): Promise<void> {
    await Promise.allSettled([...this.#loading.values(), this.#sealing, this.#compacting]);
  }

  /**
   * Ends this ownership: rejects queued appends with `error`, wakes long
   * polls, and tells the manager to forget this log. A flush in flight still
   * completes (and acknowledges its appends if its commit succeeds).
   */
  shutdown(error: LogError): void {
    if (this.#closedError) return;
    this.#closedError = error;
    this.#startAdvance?.reject(error);
    this.#startAdvance = null;
    this.#sealAdvance?.reject(error);
    this.#sealAdvance = null;
    this.#compactAdvance?.reject(error);
    this.#compactAdvance = null;
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
    if (!Number.isSafeInteger(offset) || offset > this.#committedEnd) {
      throw new RangeError(
        `Log start offset ${offset} of "${this.#name()}" is beyond the high watermark ` +
          `${this.#committedEnd}`,
      );
    }
    if (offset <= this.#logStartOffset) return [];
    const pending = this.#startAdvance;
    if (pending) {
      // Retention and DeleteRecords at once: one advance to the higher offset, committed by
      // the next flush round; the caller that asked first deletes the removed segments.
      pending.offset = Math.max(pending.offset, offset);
      return await new Promise<SegmentMeta[]>((resolve, reject) => {
        const { resolve: first, reject: firstReject } = pending;
        pending.resolve = (removed) => {
          first(removed);
          resolve(removed);
        };
        pending.reject = (error) => {
          firstReject(error);
          reject(error);
        };
      });
    }
    const removed = await new Promise<SegmentMeta[]>((resolve, reject) => {
      this.#startAdvance = { offset, resolve, reject };
      this.#ctx.scheduler.notePending(this, 0);
      this.#ctx.scheduler.flushNow();
    });
    const keys = removed.flatMap((s) => [
      this.#segmentKey(s, "kfs"),
      this.#segmentKey(s, "index"),
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
   * What `read` answers with no budget and no minimum batch, synchronously and whatever the
   * isolation level: no records, the offsets, and whether `fetchOffset` is out of range.
   */
  position(fetchOffset: number): ReadResult {
    if (this.#closedError) throw this.#closedError;
    return {
      chunks: [],
      bytes: 0,
      highWatermark: this.#committedEnd,
      logStartOffset: this.#logStartOffset,
      outOfRange: fetchOffset < this.#logStartOffset || fetchOffset > this.#committedEnd,
      lastStableOffset: lastStableOffset(this.#txn, this.#committedEnd),
      stoppedShort: false,
    };
  }

  /**
   * Whole batches from the one containing `fetchOffset`, up to `maxBytes`
   * (at least one batch when `minOneBatch`), never beyond the high watermark.
   */
  async read(
    fetchOffset: number,
    maxBytes: number,
    opts: ReadOptions = {},
  ): Promise<ReadResult> {
    if (this.#closedError) throw this.#closedError;
    const lso = lastStableOffset(this.#txn, this.#committedEnd);
    // The result starts as `position(fetchOffset)`: its last stable offset is `lso`.
    const result = await this.#readUpTo(
      fetchOffset,
      maxBytes,
      opts,
      opts.readCommitted ? lso : this.#committedEnd,
    );
    if (opts.readCommitted && lso < result.highWatermark && result.bytes > 0) {
      trimChunksAt(result, lso);
    }
    return result;
  }

  async #readUpTo(
    fetchOffset: number,
    maxBytes: number,
    opts: ReadOptions,
    highWatermark: number,
  ): Promise<ReadResult> {
    const result = this.position(fetchOffset);
    // No room left (a fetch whose response budget went to earlier partitions): nothing to read.
    if (result.outOfRange || (maxBytes <= 0 && !opts.minOneBatch)) return result;
    let offset = fetchOffset;
    // Extents that hold nothing at or after `offset` (compacted segments that lost their
    // tail) do not count against READ_SEGMENTS_MAX: a read never ends empty before the high
    // watermark because of them. Bounded: every step moves `offset` past one extent.
    const stepsMax = READ_SEGMENTS_MAX + this.#segments.length + this.#ranges.length;
    let prefetched = false;
    let slab: ReadSlab | undefined;
    for (let i = 0, steps = 0; i < READ_SEGMENTS_MAX && offset < highWatermark; steps++) {
      if (steps >= stepsMax) break;
      const minOne = (opts.minOneBatch ?? false) && result.bytes === 0;
      let part: { chunks: Uint8Array[]; reachedEnd: boolean };
      let next: number;
      if (offset < this.#sealedEnd) {
        const segment = this.#segmentFor(offset);
        if (!segment) {
          throw LogError.storage(
            `No segment of "${this.#name()}" holds offset ${offset}: committed data is ` +
              `missing from the object store`,
          );
        }
        part = await this.#readSegment(segment, offset, maxBytes - result.bytes, minOne);
        next = segment.lastOffset + 1;
      } else {
        const index = this.#rangeIndex(offset);
        if (index < 0) {
          throw LogError.storage(
            `No write-ahead range of "${this.#name()}" holds offset ${offset}: committed ` +
              `data is missing`,
          );
        }
        const range = this.#ranges[index];
        if (!prefetched) {
          prefetched = true;
          this.#prefetchBlocks(index, maxBytes - result.bytes);
        }
        next = range.lastOffset + 1;
        // A large range not in the cache is read in parts: always on a local directory
        // (positioned reads are cheap; a whole-range load would be cached and churn the cache),
        // elsewhere when the fetch takes only part of it.
        const scanned = range.length > WAL_SCAN_MIN_BYTES &&
            !this.#ctx.cache.get(rangeCacheKey(range)) &&
            (this.#ctx.objectStore.readRangeSync !== undefined ||
              range.size > maxBytes - result.bytes)
          ? await this.#scanReadRange(range, offset, maxBytes - result.bytes, minOne)
          : null;
        if (scanned) {
          part = scanned;
        } else if (offset === range.baseOffset && range.size <= maxBytes - result.bytes) {
          // The whole range fits: its batches as they are, no per-batch work (with many
          // partitions a consumer reads a great many small ranges).
          // Small chunks read from a local file share buffers (the response drops them all).
          slab ??= new ReadSlab(this.#slabHint(index, maxBytes - result.bytes));
          part = { chunks: [await this.#rangePayload(range, slab)], reachedEnd: true };
        } else {
          const cached = this.#ctx.cache.get(rangeCacheKey(range));
          if (!cached) this.#readAheadRanges(index + 1);
          const view = cached?.kind === "segment"
            ? cached.view
            : await this.#viewOfExtent({ kind: "wal", range });
          const budget = maxBytes - result.bytes;
          const { chunk, reachedEnd } = selectBatches(view, offset, budget, minOne);
          part = { chunks: chunk ? [chunk] : [], reachedEnd };
        }
      }
      for (const chunk of part.chunks) {
        joinAdjacent(result.chunks, chunk);
        result.bytes += chunk.byteLength;
      }
      if (part.chunks.length > 0) i++;
      if (!part.reachedEnd) {
        result.stoppedShort = true;
        break;
      }
      offset = next;
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
    for (const extent of this.#extents()) {
      const known = extent.kind === "segment"
        ? extent.meta.maxTimestamp
        : extent.range.maxTimestamp;
      if (known !== null && known < timestampMs) continue;
      const found = findTimestamp(await this.#viewOfExtent(extent), timestampMs);
      if (found) {
        return { offset: Math.max(found.offset, this.#logStartOffset), timestamp: found.timestamp };
      }
    }
    return null;
  }

  /** The record with the largest timestamp (ListOffsets -3, KIP-734), or null when empty. */
  async maxTimestamp(): Promise<TimestampAndOffset | null> {
    if (this.#closedError) throw this.#closedError;
    let best: Extent | null = null;
    let bestTimestamp = -1;
    for (const extent of this.#extents()) {
      if (extent.kind === "segment" && extent.meta.maxTimestamp === null) {
        await this.#viewOfExtent(extent);
      }
      const ts =
        (extent.kind === "segment" ? extent.meta.maxTimestamp : extent.range.maxTimestamp) ??
          -1;
      if (best === null || ts > bestTimestamp) {
        best = extent;
        bestTimestamp = ts;
      }
    }
    if (best === null) return null;
    const found = findMaxTimestamp(await this.#viewOfExtent(best));
    if (!found) return null;
    return { offset: Math.max(found.offset, this.#logStartOffset), timestamp: found.timestamp };
  }

  /** Sealed segments then unsealed ranges, oldest first (a snapshot). */
  #extents(): Extent[] {
    return [
      ...this.#segments.map((meta): Extent => ({ kind: "segment", meta })),
      ...this.#ranges.map((range): Extent => ({ kind: "wal", range })),
    ];
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

  /** Index of the unsealed range holding `offset`, or -1. */
  #rangeIndex(offset: number): number {
    const ranges = this.#ranges;
    let lo = 0;
    let hi = ranges.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (ranges[mid].baseOffset <= offset) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 || ranges[found].lastOffset < offset ? -1 : found;
  }

  /**
   * Starts background loads of the big unsealed ranges from `index` on that are not cached (a
   * few, a few MiB: with many partitions a larger read-ahead per partition only churns the
   * cache). Small ranges are read through blocks, which the block reader fetches ahead itself.
   */
  #readAheadRanges(index: number): void {
    let bytes = 0;
    let started = 0;
    const budget = Math.min(
      RANGE_READ_AHEAD_BYTES_MAX,
      Math.floor(this.#ctx.config.cacheBytesMax / 4),
    );
    for (let i = index; i < this.#ranges.length && started < READ_AHEAD_RANGES_MAX; i++) {
      const range = this.#ranges[i];
      if (range.length <= WAL_BLOCK_READ_MAX) continue;
      if (bytes + range.length > budget) break;
      bytes += range.length;
      const key = rangeCacheKey(range);
      if (this.#ctx.cache.get(key) || this.#loading.has(key)) continue;
      started++;
      // A failed read-ahead is only a missed optimisation (see #readAhead).
      this.#viewOfExtent({ kind: "wal", range }).catch(() => {});
    }
  }

  /**
   * On stores read through blocks (S3), starts loading the blocks of the small unsealed ranges
   * from `index` on that this read may reach (up to `budget` bytes, at most
   * PREFETCH_RANGES_MAX ranges): with many partitions each flush round is its own object, so
   * a partition's consecutive ranges lie in different objects, and loading their blocks one
   * after another made a 1 MiB read wait for dozens of GETs in a row.
   */
  #prefetchBlocks(index: number, budget: number): void {
    if (this.#ctx.objectStore.readRangeSync) return;
    let bytes = 0;
    for (let i = index; i < this.#ranges.length && i < index + PREFETCH_RANGES_MAX; i++) {
      const range = this.#ranges[i];
      if (bytes > budget) break;
      bytes += range.size;
      if (this.#ctx.cache.peek(rangeCacheKey(range))) continue;
      this.#ctx.walReader.prefetch(range.object, range.position, range.length);
    }
  }

  /**
   * The view of a segment or range: cached, or loaded (once, however many readers wait).
   * `cache: false` (a seal: the range is read once more, then sealed) leaves a loaded range out
   * of the cache, so sealing a backlog does not evict what tail readers need.
   */
  #viewOfExtent(extent: Extent, options: { cache?: boolean } = {}): Promise<SegmentView> {
    if (extent.kind === "segment") return this.#viewOf(extent.meta);
    const range = extent.range;
    const key = rangeCacheKey(range);
    const cached = options.cache === false ? this.#ctx.cache.peek(key) : this.#ctx.cache.get(key);
    if (cached?.kind === "segment") return Promise.resolve(cached.view);
    let loading = this.#loading.get(key);
    if (!loading) {
      loading = this.#loadRangeView(range, key, options.cache !== false)
        .finally(() => this.#loading.delete(key));
      this.#loading.set(key, loading);
    }
    return loading;
  }

  /**
   * Bytes of the small uncached ranges from `index` on that a read with `budget` left takes
   * whole: how big a read's slab should start, so their payloads share one buffer.
   */
  #slabHint(index: number, budget: number): number {
    let bytes = 0;
    for (let i = index; i < this.#ranges.length; i++) {
      const range = this.#ranges[i];
      if (bytes + range.length > budget || range.length > WAL_BLOCK_READ_MAX) break;
      if (this.#ctx.cache.peek(rangeCacheKey(range))) continue; // served from the cache
      bytes += range.length;
    }
    return bytes;
  }

  /**
   * A whole range's batches: the cached view's bytes, or (small chunks) a view of a cached
   * block after a cheap header check, or the loaded and cached view.
   */
  async #rangePayload(range: WalRange, slab: ReadSlab): Promise<Uint8Array> {
    const cached = this.#ctx.cache.get(rangeCacheKey(range));
    if (cached?.kind === "segment") return cached.view.bytes;
    if (range.length > WAL_BLOCK_READ_MAX) {
      return (await this.#viewOfExtent({ kind: "wal", range })).bytes;
    }
    let read: { bytes: Uint8Array | null; shared: boolean; inSlab?: boolean };
    try {
      read = await this.#ctx.walReader.read(range.object, range.position, range.length, slab);
    } catch (error) {
      throw toLogError(error, `Cannot read write-ahead object "${range.object}"`);
    }
    if (!read.bytes) {
      throw LogError.storage(
        `Write-ahead object "${range.object}" is missing or shorter than its index says`,
      );
    }
    try {
      const payload = walChunkPayload(read.bytes, {
        partition: this.partition,
        baseOffset: range.baseOffset,
        endOffset: range.lastOffset + 1,
      });
      // Read into the slab: the payload moves over its header, next to the previous payload.
      return read.inSlab ? slab.keep(read.bytes, payload) : payload;
    } catch (error) {
      if (!(error instanceof WalFormatError)) throw error;
      throw LogError.storage(
        `Write-ahead object "${range.object}" is corrupt for "${this.#name()}": ${error.message}`,
        error,
      );
    }
  }

  /**
   * Reads a write-ahead chunk back (through the shared block reader), checks its header against
   * the index and its batch framing, and caches its batches unless they are a view of a cached
   * block. No CRC here, as on Kafka's fetch path: a CRC over a chunk would hold the event loop
   * for about a millisecond per MiB; the batches keep their own CRCs, which consumers check and
   * a sealed segment's CRC is combined from; the chunk CRC is for tools (`scanWalChunks`).
   */
  async #loadRangeView(range: WalRange, key: string, cache: boolean): Promise<SegmentView> {
    let read: { bytes: Uint8Array | null; shared: boolean };
    try {
      read = await this.#ctx.walReader.read(range.object, range.position, range.length);
    } catch (error) {
      throw toLogError(error, `Cannot read write-ahead object "${range.object}"`);
    }
    const bytes = read.bytes;
    if (!bytes) {
      throw LogError.storage(
        `Write-ahead object "${range.object}" is missing or shorter than its index says`,
      );
    }
    let view: SegmentView;
    try {
      const payload = walChunkPayload(bytes, {
        partition: this.partition,
        baseOffset: range.baseOffset,
        endOffset: range.lastOffset + 1,
      });
      view = viewFromBatchBytes(payload, range.baseOffset, range.lastOffset + 1);
    } catch (error) {
      if (!(error instanceof WalFormatError || error instanceof SegmentFormatError)) throw error;
      throw LogError.storage(
        `Write-ahead object "${range.object}" is corrupt for "${this.#name()}": ${error.message}`,
        error,
      );
    }
    range.maxTimestamp = viewMaxTimestamp(view);
    if (cache && !read.shared) this.#ctx.cache.set(key, { kind: "segment", view });
    return view;
  }

  async #readSegment(
    segment: SegmentMeta,
    offset: number,
    budget: number,
    minOne: boolean,
  ): Promise<{ chunks: Uint8Array[]; reachedEnd: boolean }> {
    const key = this.#segmentKey(segment, "kfs");
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
      const key = this.#segmentKey(next, "kfs");
      if (this.#ctx.cache.get(key) || this.#loading.has(key)) continue;
      started++;
      // A failed read-ahead is only a missed optimisation: the fetch that needs
      // the segment reads it again and reports the error then.
      this.#viewOf(next).catch(() => {});
    }
  }

  /** The segment's view from the cache or a whole-object GET (cached when it fits). */
  #viewOf(segment: SegmentMeta): Promise<SegmentView> {
    const key = this.#segmentKey(segment, "kfs");
    const cached = this.#ctx.cache.get(key);
    if (cached?.kind === "segment") return Promise.resolve(cached.view);
    let loading = this.#loading.get(key);
    if (!loading) {
      loading = this.#loadView(segment, key).finally(() => this.#loading.delete(key));
      this.#loading.set(key, loading);
    }
    return loading;
  }

  async #loadView(segment: SegmentMeta, key: string): Promise<SegmentView> {
    const view = await this.#fetchView(segment, key);
    segment.maxTimestamp = viewMaxTimestamp(view);
    this.#ctx.cache.set(key, { kind: "segment", view });
    return view;
  }

  /** GETs and verifies a whole segment object (CRC, offsets against its meta); no caching. */
  async #fetchView(segment: SegmentMeta, key: string): Promise<SegmentView> {
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
    return view;
  }

  async #loadIndex(segment: SegmentMeta): Promise<ParsedIndex> {
    const key = this.#segmentKey(segment, "index");
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
    const entry = lookupIndex(index.entries, offset);
    const bodyEnd = segment.size - SEGMENT_FOOTER_BYTES;
    // A compaction rewrite (generation > 0) has gaps between its batches; a sealed one has none.
    /** Scans from `position`, where the batch with base offset `from` starts. */
    const scanFrom = (position: number, from: number) =>
      this.#scanRead(key, position, bodyEnd, offset, budget, minOne, {
        first: segment.baseOffset,
        last: segment.lastOffset,
        contiguous: (segment.generation ?? 0) === 0,
        from,
      });
    const fromStart = () => scanFrom(SEGMENT_HEADER_BYTES, segment.baseOffset);
    if (!entry) return await fromStart();
    try {
      return await scanFrom(entry.position, entry.offset);
    } catch (error) {
      // Indexes are written without fsync: an entry whose offset disagrees with its batch may be
      // a torn index over a sound segment. Scanning from the start tells which one is damaged.
      // A failed read of the store is not damage: it is not repeated here.
      const atStart = entry.position === SEGMENT_HEADER_BYTES &&
        entry.offset === segment.baseOffset;
      if (!isDamage(error) || atStart) throw error;
      this.#ctx.logger.warn("Segment read from its index failed; reading from the start", {
        key,
        offset,
        reason: error.message,
      });
      return await fromStart();
    }
  }

  /**
   * Reads what a fetch needs of a large unsealed range: windows from where the last read of the
   * range ended (or the chunk's first batch), as for big segments, instead of loading the whole
   * range per fetch (with many partitions the ranges did not stay cached, and a multi-MiB range
   * was read again for every 1 MiB a consumer took).
   */
  async #scanReadRange(
    range: WalRange,
    offset: number,
    budget: number,
    minOne: boolean,
  ): Promise<{ chunks: Uint8Array[]; reachedEnd: boolean }> {
    const hint = range.scanHint && range.scanHint.offset <= offset ? range.scanHint : null;
    const start = hint?.position ?? range.position + WAL_CHUNK_FIXED_BYTES + this.#topicNameBytes;
    const end = range.position + range.length;
    const span = {
      first: range.baseOffset,
      last: range.lastOffset,
      contiguous: true,
      from: hint?.offset ?? range.baseOffset,
    };
    const read = await this.#scanRead(range.object, start, end, offset, budget, minOne, span);
    if (read.last) range.scanHint = read.last;
    return read;
  }

  /**
   * The batches from the one holding `offset` within [pos, bodyEnd) of an object, by ranged
   * GETs: skips the batches before it by reading only their headers, then GETs windows and keeps
   * whole batches while they fit the budget (the first one regardless when `minOne`, KIP-74).
   * Every GET moves forward by at least one batch, so a read always reaches the batch holding
   * `offset`, whatever the record sizes. `last` says where the returned batches end.
   *
   * Batch CRCs are not checked here (as in Kafka, clients check them), but a batch's base offset
   * is outside what its CRC covers: every batch the scan passes or returns must lie within
   * `span` and follow the one before, the first one starting at `span.from` (the base offset of
   * the batch at `pos`: an index entry's, a scan hint's, or the range's or segment's first),
   * with gaps allowed only when `span.contiguous` is false, for compacted segments. A flipped bit
   * there would otherwise serve records at offsets they were never given. The batches before a
   * damaged one are returned; a read whose first batch is damaged fails with
   * KAFKA_STORAGE_ERROR.
   */
  async #scanRead(
    key: string,
    pos: number,
    bodyEnd: number,
    offset: number,
    budget: number,
    minOne: boolean,
    span: { first: number; last: number; contiguous: boolean; from: number },
  ): Promise<
    {
      chunks: Uint8Array[];
      reachedEnd: boolean;
      last: { offset: number; position: number } | null;
    }
  > {
    let last: { offset: number; position: number } | null = null;
    const chunks: Uint8Array[] = [];
    let returned = 0;
    let started = false;
    let dataReads = 0;
    let nextBatchSize = 0;
    /** Last offset of the batch seen last (returned or skipped), to check the next follows it. */
    let prevLast = span.from - 1;
    const follows = (baseOffset: number, lastOffset: number) =>
      (span.contiguous ? baseOffset === prevLast + 1 : baseOffset > prevLast) &&
      baseOffset >= span.first && lastOffset <= span.last && lastOffset >= baseOffset;
    const damaged = (at: number, baseOffset: number, lastOffset: number) =>
      damage(
        `Object "${key}" has a batch at byte ${at} with offsets ${baseOffset}-${lastOffset}, ` +
          `which do not follow ${prevLast} within ${span.first}-${span.last}: the object is damaged`,
      );
    const fits = (size: number) => returned + size <= budget || (minOne && returned === 0);
    // Bounded by the segment: each GET advances `pos` by at least one batch header.
    const readsMax = Math.ceil((bodyEnd - pos) / BATCH_HEADER_BYTES) + 1;
    for (let reads = 0; reads < readsMax; reads++) {
      if (pos >= bodyEnd) return { chunks, reachedEnd: true, last };
      if (started && dataReads >= RANGE_READS_MAX) return { chunks, reachedEnd: false, last };
      const remaining = Math.max(0, budget - returned);
      const want = Math.max(
        started ? remaining : remaining + RANGE_SKIP_BYTES,
        RANGE_READ_MIN_BYTES,
        nextBatchSize,
      );
      const end = Math.min(bodyEnd, pos + want);
      let data: Uint8Array | null;
      try {
        // Local directory: a positioned read (microseconds from the page cache); else a GET.
        const store = this.#ctx.objectStore;
        data = store.readRangeSync
          ? store.readRangeSync(key, pos, end)
          : await store.getRange(key, pos, end);
      } catch (error) {
        throw toLogError(error, `Cannot read "${key}"`);
      }
      if (!data || data.byteLength !== end - pos) {
        throw LogError.storage(`Object "${key}" is missing or shorter than listed`);
      }
      if (started) dataReads++;
      const { batches, validBytes } = scanBatches(data);
      let chunkStart = -1;
      let chunkEnd = -1;
      let full = false;
      for (const b of batches) {
        const bLast = b.baseOffset + b.lastOffsetDelta;
        if (!follows(b.baseOffset, bLast)) {
          // The batches before the damage are served (as a Kafka consumer gets a log up to a
          // corrupt record); the read that starts at the damaged batch gets the error.
          if (returned === 0) throw damaged(pos + b.position, b.baseOffset, bLast);
          if (chunkStart >= 0) chunks.push(data.subarray(chunkStart, chunkEnd));
          return { chunks, reachedEnd: false, last };
        }
        if (!started) {
          if (bLast < offset) {
            prevLast = bLast;
            continue;
          }
          started = true;
        }
        if (!fits(b.size)) {
          full = true;
          break;
        }
        prevLast = bLast;
        if (chunkStart < 0) chunkStart = b.position;
        chunkEnd = b.position + b.size;
        returned += b.size;
        last = { offset: b.baseOffset + b.lastOffsetDelta + 1, position: pos + chunkEnd };
      }
      if (chunkStart >= 0) chunks.push(data.subarray(chunkStart, chunkEnd));
      if (full) return { chunks, reachedEnd: false, last };
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
        throw damage(`Object "${key}" has a malformed batch at byte ${pos}`);
      }
      if (!started && tail.byteLength >= BATCH_HEADER_BYTES) {
        const info = readBatchInfo(tail, 0);
        const infoLast = info.baseOffset + info.lastOffsetDelta;
        if (!follows(info.baseOffset, infoLast)) throw damaged(pos, info.baseOffset, infoLast);
        if (infoLast < offset) {
          prevLast = infoLast;
          pos += nextBatchSize;
          nextBatchSize = 0;
          continue;
        }
        started = true;
      }
      if (started && !fits(nextBatchSize)) return { chunks, reachedEnd: false, last };
    }
    throw damage(`Object "${key}" could not be read up to offset ${offset}`);
  }

  /** The object key of a segment's current generation. */
  #segmentKey(segment: { baseOffset: number; generation?: number }, kind: "kfs" | "index"): string {
    return segmentObjectKey(
      this.#ctx.config.namespace,
      this.topic,
      this.partition,
      segment.baseOffset,
      kind,
      segment.generation ?? 0,
    );
  }

  #name(): string {
    return `${this.topic}-${this.partition}`;
  }

  /** Reports a broken invariant to the manager's policy (which stops the process); returns it to throw. */
  #broken(message: string): InvariantError {
    const error = new InvariantError(`Broken invariant: ${message}`);
    this.#ctx.onBrokenInvariant(error);
    return error;
  }
}

/** A storage error for bytes that are not what the log wrote there (see `isDamage`). */
function damage(message: string): LogError {
  return LogError.storage(message, new SegmentFormatError(message));
}

/** Whether a read failed on damaged bytes, not on the store (a failed GET, a missing object). */
function isDamage(error: unknown): error is LogError {
  return error instanceof LogError && error.cause instanceof SegmentFormatError;
}

/** Longest data stays unsealed by default (LogConfig.sealMaxAgeMs). */
export const DEFAULT_SEAL_MAX_AGE_MS = 10 * 60 * 1000;

/** A piece of the log: a sealed segment or an unsealed write-ahead range. */
type Extent = { kind: "segment"; meta: SegmentMeta } | { kind: "wal"; range: WalRange };

function extentSize(extent: Extent): number {
  return extent.kind === "segment" ? extent.meta.size : extent.range.size;
}

/** Cache key of a range: chunks never change, so it is valid across ownerships. */
function rangeCacheKey(range: WalRange): string {
  return `${range.object}@${range.position}`;
}

/** The `txn` field of a partition state: absent when there is nothing to keep. */
function txnField(txn: TxnSnapshot): { txn?: ReturnType<typeof storedTxnState> } {
  const stored = storedTxnState(txn);
  return stored ? { txn: stored } : {};
}

/** Control record key (ControlRecordType v0) and value (EndTxnMarker v0) of a marker. */
function encodeMarkerBatch(
  producerId: number,
  producerEpoch: number,
  commit: boolean,
  coordinatorEpoch: number,
  nowMs: number,
): Uint8Array {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setInt16(2, commit ? 1 : 0);
  const value = new Uint8Array(6);
  new DataView(value.buffer).setInt32(2, coordinatorEpoch);
  return encodeRecordBatch([{ key, value, timestamp: nowMs }], {
    producerId,
    producerEpoch,
    baseSequence: -1,
    transactional: true,
    control: true,
  });
}

/** Drops whole batches at or beyond `limit` from a read (read_committed stops at the LSO). */
function trimChunksAt(result: ReadResult, limit: number): void {
  const kept: Uint8Array[] = [];
  let bytes = 0;
  for (const chunk of result.chunks) {
    let pos = 0;
    while (pos + BATCH_HEADER_BYTES <= chunk.byteLength) {
      if (readBaseOffset(chunk, pos) >= limit) break;
      pos += readBatchSize(chunk, pos);
    }
    if (pos > 0) {
      kept.push(pos === chunk.byteLength ? chunk : chunk.subarray(0, pos));
      bytes += pos;
    }
    if (pos < chunk.byteLength) break;
  }
  result.chunks = kept;
  result.bytes = bytes;
}
