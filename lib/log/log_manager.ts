/**
 * The partition log layer's entry point: owns this broker's session lease,
 * the partitions it has acquired, the shared flush scheduler (group commit)
 * with this broker's write-ahead stream, the background tasks that seal
 * unsealed data into segments and delete write-ahead objects once nothing in
 * them is needed, and the shared segment cache.
 *
 * Ownership (DESIGN invariants 3 and 4): `partition()` acquires the
 * partition in the metadata store on first use (bumping its epoch), reloads
 * it from the stores, and caches it until it is fenced, its lease is lost,
 * it is dropped, or the manager closes. The lease is kept alive every
 * `leaseTtlMs / 3`; writes stop once `leaseTtlMs - LEASE_SAFETY_MARGIN` has
 * passed since the last successful keep-alive was sent, so a stalled broker
 * stops before another can take over.
 *
 * Owns lib/log/*; must not touch sockets or import from lib/broker,
 * lib/server, lib/coordinator or lib/control.
 */

import {
  type ClusterMetadata,
  type PartitionState,
  sealedEndOf,
  type WalIndexEntry,
  type WalRangeRecord,
} from "../metadata/cluster_metadata.ts";
import { LeaseExpiredError } from "../metadata/metadata_store.ts";
import type { ObjectStore } from "../storage/object_store.ts";
import type { Clock, TimerHandle } from "../util/clock.ts";
import { InvariantError, type InvariantPolicy, throwBrokenInvariant } from "../util/assert.ts";
import type { Logger } from "../util/logger.ts";
import { watchStopStep } from "../util/stop_step.ts";
import { firstRejection, mapBounded } from "./bounded.ts";
import {
  type CompactionLimits,
  type CompactionPolicy,
  DEFAULT_COMPACTION_LIMITS,
} from "./compaction/schedule.ts";
import { FlushScheduler, type FlushStats, toLogError } from "./flush_scheduler.ts";
import { LogError } from "./log_error.ts";
import { type LogConfig, type LogContext, PartitionLog, type SealPolicy } from "./partition_log.ts";
import { DELETE_CONCURRENCY, type LocatedWalRange, recoverPartition } from "./recovery.ts";
import { type WalChunkHeader, walObjectCreatedMs, walObjectPrefix } from "./wal_format.ts";
import { scanWalObject, WalReader } from "./wal_reader.ts";
import { mergedWalIndexId, WalWriter, type WalWriterStats } from "./wal_writer.ts";
import { WritePacer } from "./write_pacer.ts";
import { SegmentCache } from "./segment_cache.ts";
import { partitionObjectPrefix } from "./segment_format.ts";

export type {
  AppendOptions,
  AppendResult,
  LogConfig,
  ReadResult,
  SealPolicy,
  TimestampAndOffset,
} from "./partition_log.ts";
export { PartitionLog } from "./partition_log.ts";
export { LOG_ERROR_CODE, LogError } from "./log_error.ts";

/** Fraction of the lease TTL kept as a margin: writes stop this long before the lease could expire. */
export const LEASE_SAFETY_MARGIN_FRACTION = 0.25;
/** Keep-alives per lease TTL. */
export const KEEPALIVES_PER_TTL = 3;
/** Default bound on pending (not yet flushed) bytes, when the config does not name one. */
export const DEFAULT_PENDING_BYTES_MAX = 64 * 1024 * 1024;
/** Defaults of the write-ahead settings in LogConfig. */
export const DEFAULT_WAL_FILE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_SEAL_CHECK_INTERVAL_MS = 1_000;
export const DEFAULT_WAL_GC_INTERVAL_MS = 30_000;
/**
 * Unsealed ranges over all loaded partitions above which the partitions with the most are
 * sealed early: each range is a small in-memory record, and this bounds their memory.
 */
export const UNSEALED_RANGES_TOTAL_MAX = 200_000;
/**
 * A write-ahead object no index record references is deleted only once it is this old (by the
 * time in its name): younger, it can belong to a round whose commit has not landed yet.
 */
export const WAL_ORPHAN_GRACE_MS = 10 * 60 * 1000;
/**
 * The grace of this broker's own write-ahead files on a local disk (file mode), when it is
 * shorter than the configured one. Flush rounds run one at a time, and the writer moves to a new
 * file only when a round starts, after the previous one's commit ended: a file that is not the
 * one being appended to has no commit pending. What is left is a commit whose outcome was
 * unknown (a timeout) and that a metadata store applies late; the two passes a deletion needs
 * (`DEFAULT_WAL_GC_INTERVAL_MS` apart) cover that, and this grace (counted from the file's
 * creation) adds to it. With the 10-minute grace every file stayed 10 minutes: at 50 MB/s of
 * produce, 30 GB of disk.
 */
export const OWN_WAL_FILE_GRACE_MS = 60 * 1000;
/**
 * Bound on a merged index record's size (`runWalGc`), by `walMergedRangeBytes`, so that its
 * transaction stays under etcd's default 1.5 MiB request limit whatever the topic names.
 */
export const WAL_MERGED_RECORD_BYTES_MAX = 1024 * 1024;

/**
 * At least what a range takes in a stored index record (JSON: the topic name in UTF-8, its id,
 * six numbers of up to 16 digits, punctuation).
 */
export function walMergedRangeBytes(r: WalRangeRecord): number {
  return 3 * r.topic.length + r.topicId.length + 120;
}
/** Merge transactions in flight during a collection pass. */
const WAL_MERGE_CONCURRENCY = 4;
/** Partitions sealing at once. */
export const SEAL_CONCURRENCY = 1;
/** Longest `close()` spends sealing before it stops (what is left stays in the write-ahead stream). */
export const CLOSE_SEAL_BUDGET_MS = 3_000;

export const DEFAULT_LOG_CONFIG: Readonly<LogConfig> = Object.freeze({
  namespace: "default",
  segmentBytesMax: 64 * 1024 * 1024,
  flushIntervalMs: 2,
  flushBytes: 4 * 1024 * 1024,
  cacheBytesMax: 256 * 1024 * 1024,
  indexIntervalMessages: 100,
  leaseTtlMs: 10_000,
});

export interface LogManagerDeps {
  objectStore: ObjectStore;
  metadata: ClusterMetadata;
  clock: Clock;
  logger: Logger;
  brokerId: number;
  config: LogConfig;
  /** A topic's sealing policy (its segment.bytes and segment.ms); defaults to segmentBytesMax. */
  sealPolicyFor?: (topic: string) => SealPolicy | undefined;
  /**
   * What a broken invariant does (`serve`: log and stop the process, `exitOnBrokenInvariant`);
   * by default it is rethrown outside any caller, so it is never swallowed.
   */
  onBrokenInvariant?: InvariantPolicy;
}

/** Compaction runs of this broker since start (README "Compaction", /metrics). */
export interface CompactionTotals {
  runs: number;
  failures: number;
  /** Bytes of the batches the runs read, and of what they kept. */
  bytesIn: number;
  bytesOut: number;
  recordsRemoved: number;
  totalMs: number;
}

/** Partitions compacted at once (each run holds its input segments in memory). */
export const COMPACTION_CONCURRENCY = 1;
/** How often compacted partitions are checked by default. */
export const DEFAULT_COMPACTION_CHECK_INTERVAL_MS = 5_000;

export interface SealStats {
  /** Segments sealed, their bytes, and the summed time from the first read to the commit. */
  segments: number;
  bytes: number;
  totalMs: number;
  failures: number;
}

export interface WalGcStats {
  passes: number;
  objectsDeleted: number;
  /** Index records replaced by merged ones. */
  recordsMerged: number;
  /** Index records listed at the last pass, and the ranges they named. */
  indexRecords: number;
  indexRanges: number;
  /** Write-ahead objects still referenced at the last pass, and the bytes of their ranges. */
  objectsOutstanding: number;
  bytesOutstanding: number;
}

interface SessionLease {
  id: number;
  /** Monotonic time after which this broker must not write. */
  deadline: number;
  /** The keep-alive in flight, if any (one at a time). */
  keepAlive: Promise<void> | null;
  timer: TimerHandle | null;
}

function validateConfig(config: LogConfig): void {
  const positive = (name: keyof LogConfig, min = 1) => {
    const value = config[name];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
      throw new RangeError(
        `Invalid log config "${name}": expected an integer >= ${min}, got ${value}`,
      );
    }
  };
  positive("segmentBytesMax", 1024);
  positive("flushIntervalMs", 0);
  positive("flushBytes");
  positive("cacheBytesMax", 0);
  positive("indexIntervalMessages");
  positive("leaseTtlMs", 3);
  if (config.pendingBytesMax !== undefined) positive("pendingBytesMax");
  if (config.walFileBytes !== undefined) positive("walFileBytes");
  if (config.sealMaxAgeMs !== undefined) positive("sealMaxAgeMs");
  if (config.segmentWriteRateMin !== undefined) positive("segmentWriteRateMin", 0);
  if (config.sealCheckIntervalMs !== undefined) positive("sealCheckIntervalMs");
  if (config.walGcIntervalMs !== undefined) positive("walGcIntervalMs");
  if (config.walOrphanGraceMs !== undefined) positive("walOrphanGraceMs", 0);
  if (!/^[A-Za-z0-9._-]+$/.test(config.namespace)) {
    throw new RangeError(
      `Invalid log config "namespace": letters, digits, ".", "_" and "-" only, got "${config.namespace}"`,
    );
  }
}

/** Ranges of a write-ahead index listing by "topic/partition", each with its object. */
function rangesByPartition(entries: WalIndexEntry[]): Map<string, LocatedWalRange[]> {
  const out = new Map<string, LocatedWalRange[]>();
  for (const entry of entries) {
    for (const r of entry.record.ranges) {
      const key = `${r.topic}/${r.partition}`;
      const list = out.get(key) ?? [];
      list.push({ ...r, object: entry.record.object });
      out.set(key, list);
    }
  }
  return out;
}

export class LogManager {
  readonly #deps: LogManagerDeps;
  readonly #config: LogConfig;
  readonly #cache: SegmentCache;
  readonly #scheduler: FlushScheduler;
  readonly #wal: WalWriter;
  readonly #context: LogContext;
  #objectsWritten = 0;
  readonly #sealStats: SealStats = { segments: 0, bytes: 0, totalMs: 0, failures: 0 };
  readonly #gcStats: WalGcStats = {
    passes: 0,
    objectsDeleted: 0,
    recordsMerged: 0,
    indexRecords: 0,
    indexRanges: 0,
    objectsOutstanding: 0,
    bytesOutstanding: 0,
  };
  #sealTimer: TimerHandle | null = null;
  /** Seals with a deadline running (`#sealFully`): segment writes are not paced meanwhile. */
  #deadlineSeals = 0;
  /** Paces segment writes to a local disk (`segmentWriteRateMin`), or null. */
  #pacer: WritePacer | null = null;
  #sealPass: Promise<void> | null = null;
  readonly #compactionTotals: CompactionTotals = {
    runs: 0,
    failures: 0,
    bytesIn: 0,
    bytesOut: 0,
    recordsRemoved: 0,
    totalMs: 0,
  };
  #compactionTimer: TimerHandle | null = null;
  #compactionPass: Promise<void> | null = null;
  #gcTimer: TimerHandle | null = null;
  #gcPass: Promise<void> | null = null;
  /** Write-ahead objects found unneeded by the last GC pass: deleted if the next agrees. */
  #gcCandidates = new Set<string>();
  /** Unreferenced objects kept for holding data beyond its partition's end: when last checked. */
  readonly #keptOrphans = new Map<string, number>();
  /** Completed acquisitions, and the write-ahead index listing shared by concurrent loads. */
  #acquisitions = 0;
  #walListing: {
    afterAcquisition: number;
    users: number;
    ranges: Promise<Map<string, LocatedWalRange[]>>;
  } | null = null;
  readonly #pendingBytesMax: number;
  /** Loads in progress and loaded logs, by "topic/partition". */
  readonly #logs = new Map<string, Promise<PartitionLog>>();
  readonly #live = new Map<string, PartitionLog>();
  #lease: SessionLease | null = null;
  #leaseGrant: Promise<SessionLease> | null = null;
  #state: "new" | "started" | "closing" | "closed" = "new";

  constructor(deps: LogManagerDeps) {
    validateConfig(deps.config);
    this.#deps = deps;
    this.#config = { ...deps.config };
    this.#pendingBytesMax = deps.config.pendingBytesMax ??
      Math.max(4 * deps.config.flushBytes, DEFAULT_PENDING_BYTES_MAX);
    this.#cache = new SegmentCache(deps.config.cacheBytesMax);
    this.#wal = new WalWriter({
      objectStore: deps.objectStore,
      namespace: deps.config.namespace,
      brokerId: deps.brokerId,
      clock: deps.clock,
      fileBytesMax: deps.config.walFileBytes ?? DEFAULT_WAL_FILE_BYTES,
      prepareNextFile: deps.config.walPrepareNextFile ?? true,
    });
    this.#scheduler = new FlushScheduler({
      clock: deps.clock,
      logger: deps.logger,
      metadata: deps.metadata,
      wal: this.#wal,
      flushBytes: deps.config.flushBytes,
      flushIntervalMs: deps.config.flushIntervalMs,
      beforeCommit: () => this.#assertWritable(),
      onBrokenInvariant: deps.onBrokenInvariant ?? throwBrokenInvariant,
    });
    const rateMin = deps.config.segmentWriteRateMin ?? 0;
    const pacer = rateMin > 0
      ? new WritePacer({
        clock: deps.clock,
        floorBytesPerSecond: rateMin,
        ingestedBytes: () => this.#wal.stats.bytes,
        // Sealing at close or at a handover has a deadline: what is left stays in the
        // write-ahead stream, so it goes at full speed.
        bypass: () => this.#state !== "started" || this.#deadlineSeals > 0,
      })
      : null;
    this.#pacer = pacer;
    this.#context = {
      objectStore: deps.objectStore,
      metadata: deps.metadata,
      clock: deps.clock,
      logger: deps.logger,
      config: this.#config,
      cache: this.#cache,
      scheduler: this.#scheduler,
      assertWritable: () => this.#assertWritable(),
      reservePending: (bytes) => this.#reservePending(bytes),
      onClosed: (log) => this.#forget(log),
      onBrokenInvariant: deps.onBrokenInvariant ?? throwBrokenInvariant,
      walReader: new WalReader(deps.objectStore, this.#cache),
      ...(pacer ? { paceSegmentWrite: (bytes: number) => pacer.pace(bytes) } : {}),
      noteObjectsWritten: (count) => {
        this.#objectsWritten += count;
      },
      noteSeal: (bytes, elapsedMs) => {
        this.#sealStats.segments++;
        this.#sealStats.bytes += bytes;
        this.#sealStats.totalMs += elapsedMs;
      },
      noteCompaction: (stats, elapsedMs) => {
        this.#compactionTotals.runs++;
        this.#compactionTotals.bytesIn += stats.bytesIn;
        this.#compactionTotals.bytesOut += stats.bytesOut;
        this.#compactionTotals.recordsRemoved += stats.recordsRemoved;
        this.#compactionTotals.totalMs += elapsedMs;
      },
    };
  }

  /** The current session lease id (0 before start or after the lease was lost). */
  get leaseId(): number {
    return this.#lease?.id ?? 0;
  }
  get cache(): SegmentCache {
    return this.#cache;
  }
  get flushStats(): Readonly<FlushStats> {
    return this.#scheduler.stats;
  }
  /** Rounds and bytes written ahead, and write-ahead objects (files or S3 objects) created. */
  get walStats(): Readonly<WalWriterStats> {
    return this.#wal.stats;
  }
  /** Whether rounds append to a local file ("file") or each make an object ("object"). */
  get walMode(): "file" | "object" {
    return this.#wal.mode;
  }
  /** Objects created in the object store: write-ahead objects plus sealed segments and indexes. */
  get objectsWritten(): number {
    return this.#objectsWritten + this.#wal.stats.objectsCreated;
  }
  /** Compaction runs, failures and bytes since start. */
  get compactionStats(): Readonly<CompactionTotals> {
    return { ...this.#compactionTotals };
  }
  get sealStats(): Readonly<SealStats> {
    return { ...this.#sealStats };
  }
  get walGcStats(): Readonly<WalGcStats> {
    return { ...this.#gcStats };
  }
  /** Record bytes committed and not yet sealed, over the loaded partitions. */
  get unsealedBytes(): number {
    let bytes = 0;
    for (const log of this.#live.values()) bytes += log.unsealedBytes;
    return bytes;
  }
  /** Bytes appended and not yet taken by a flush (for back-pressure). */
  get pendingBytes(): number {
    return this.#scheduler.pendingBytes;
  }
  /** The partitions currently loaded and owned. */
  loadedPartitions(): PartitionLog[] {
    return [...this.#live.values()];
  }

  /**
   * The session lease id, granted again when it was lost (the group coordinator hangs its
   * group owner keys on it too). Rejects with a LogError when not started or the store refuses.
   */
  async sessionLease(): Promise<number> {
    if (this.#state !== "started") {
      throw LogError.notLeader(`Log manager is ${this.#state}; it has no session lease`);
    }
    return (await this.#ensureLease()).id;
  }

  /** Grants the broker session lease and starts keeping it alive. */
  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error(`LogManager.start() called when ${this.#state}`);
    this.#state = "started";
    await this.#ensureLease();
    this.#scheduleSealPass();
    this.#scheduleCompactionPass();
    this.#scheduleGc();
  }

  /** The partition's log: acquired and loaded on first use, cached after. */
  partition(topic: string, partition: number): Promise<PartitionLog> {
    if (this.#state !== "started") {
      return Promise.reject(
        LogError.notLeader(`Log manager is ${this.#state}; cannot serve "${topic}-${partition}"`),
      );
    }
    const key = `${topic}/${partition}`;
    const existing = this.#logs.get(key);
    if (existing) return existing;
    const loading = this.#load(topic, partition);
    this.#logs.set(key, loading);
    loading.then(
      (log) => {
        if (this.#logs.get(key) !== loading) return;
        // A log closed before this ran (lease lost mid-load) must not stay cached.
        if (log.closed) this.#logs.delete(key);
        else this.#live.set(key, log);
      },
      () => {
        if (this.#logs.get(key) === loading) this.#logs.delete(key);
      },
    );
    return loading;
  }

  /**
   * What `partition()` would resolve to at once: the log when it is loaded and this manager is
   * started, else undefined (then call `partition()`). Saves a request over many partitions a
   * promise per partition.
   */
  livePartition(topic: string, partition: number): PartitionLog | undefined {
    return this.#state === "started" ? this.loadedPartition(topic, partition) : undefined;
  }

  /** The log if it is loaded, without acquiring anything. */
  loadedPartition(topic: string, partition: number): PartitionLog | undefined {
    return this.#live.get(`${topic}/${partition}`);
  }

  /**
   * Forgets the partition and deletes all its objects (topic deletion). Its
   * queued appends fail with UNKNOWN_TOPIC_OR_PARTITION.
   */
  async dropPartition(topic: string, partition: number): Promise<void> {
    const key = `${topic}/${partition}`;
    const loading = this.#logs.get(key);
    this.#logs.delete(key);
    const log = this.#live.get(key) ?? (await loading?.catch(() => undefined));
    this.#live.delete(key);
    log?.shutdown(LogError.unknownPartition(`Partition "${topic}-${partition}" was deleted`));
    // A round in flight may still write this partition's objects: let it end first.
    await this.#scheduler.idle();
    const prefix = partitionObjectPrefix(this.#config.namespace, topic, partition);
    this.#cache.deletePrefix(prefix);
    const { objectStore } = this.#deps;
    let objects;
    try {
      objects = await objectStore.list(prefix);
    } catch (error) {
      throw toLogError(error, `Cannot list objects of "${topic}-${partition}"`);
    }
    const results = await mapBounded(objects, DELETE_CONCURRENCY, (o) => objectStore.delete(o.key));
    const failed = results.find((r) => r.status === "rejected") as
      | PromiseRejectedResult
      | undefined;
    if (failed) throw toLogError(failed.reason, `Cannot delete objects of "${topic}-${partition}"`);
  }

  /**
   * Hands the partition over (drain): new appends are refused with
   * NOT_LEADER_OR_FOLLOWER, everything already appended is flushed (and
   * acknowledged) and sealed, then the log closes and its owner key is deleted, so
   * another broker acquires it at once instead of waiting for the lease to
   * expire. Resolves false when this broker did not own the partition. A
   * later request for it acquires it again: callers that drain keep clients
   * away (Metadata) first.
   */
  async releasePartition(topic: string, partition: number): Promise<boolean> {
    const key = `${topic}/${partition}`;
    const log = this.#live.get(key) ?? (await this.#logs.get(key)?.catch(() => undefined));
    if (!log || log.closed) return false;
    const moved = LogError.notLeader(
      `Partition "${topic}-${partition}" is moving to another broker; refresh metadata and retry`,
    );
    log.refuseAppends(moved);
    await this.#scheduler.drain();
    await this.#scheduler.idle();
    // Seal what is unsealed, so the next owner starts from segments; if that
    // fails, the next owner serves (and seals) the write-ahead ranges itself.
    await this.#sealFully(log, this.#deps.clock.monotonic() + CLOSE_SEAL_BUDGET_MS);
    const epoch = log.leaderEpoch;
    log.shutdown(moved);
    await log.idleReads();
    try {
      await this.#deps.metadata.releasePartition(topic, partition, {
        brokerId: this.#deps.brokerId,
        epoch,
      });
    } catch (error) {
      throw toLogError(error, `Cannot release "${topic}-${partition}"`);
    }
    this.#deps.logger.info("Released partition", { topic, partition, epoch });
    return true;
  }

  /**
   * Flushes everything pending (acks=0 data included), stops timers, and
   * releases ownership by revoking the session lease.
   */
  /**
   * Flushes everything appended so far (acks=0 data included) without
   * waiting for the flush interval, and resolves when no flush is pending.
   * Used at shutdown so in-flight produce requests are answered before the
   * connections close.
   */
  async flushPending(): Promise<void> {
    if (this.#state !== "started") return;
    await this.#scheduler.drain();
  }

  async close(): Promise<void> {
    if (this.#state === "closed" || this.#state === "closing") return;
    const wasStarted = this.#state === "started";
    this.#state = "closing";
    // Paced segment writes go at full speed from now on (the pacer's bypass), waiting ones too.
    this.#pacer?.releaseWaiting();
    this.#sealTimer?.cancel();
    this.#compactionTimer?.cancel();
    this.#gcTimer?.cancel();
    // Each step says so when it takes long, so a close that hangs names where.
    const step = (name: string, run: () => Promise<unknown> | unknown) =>
      watchStopStep(this.#deps.logger, `partition logs: ${name}`, run);
    await step("the running seal pass", () => this.#sealPass);
    await step("the running compaction pass", () => this.#compactionPass);
    await step("the running write-ahead collection", () => this.#gcPass);
    if (wasStarted) {
      await step("flush", () => this.#scheduler.drain());
      await step(
        "sealing",
        () => this.#sealAll(this.#deps.clock.monotonic() + CLOSE_SEAL_BUDGET_MS),
      );
      await step("flush after sealing", () => this.#scheduler.drain());
    }
    this.#scheduler.close();
    const live = [...this.#live.values()];
    for (const log of live) {
      log.shutdown(
        LogError.notLeader(`Broker is shutting down; "${log.topic}-${log.partition}" moves`),
      );
    }
    await step("partitions loading", () => Promise.allSettled([...this.#logs.values()]));
    await step("reads in progress", () => Promise.all(live.map((log) => log.idleReads())));
    // Nothing reads these logs any more: replaced compaction generations can go now.
    await step(
      "replaced compaction generations",
      () => Promise.all(live.map((log) => log.deleteReplaced(true))),
    );
    this.#logs.clear();
    this.#live.clear();
    await step("write-ahead file", () => this.#wal.close());
    await step("lease grant", () => this.#leaseGrant?.catch(() => undefined));
    const lease = this.#lease;
    this.#lease = null;
    if (lease) {
      lease.timer?.cancel();
      try {
        await step("lease revocation", () => this.#deps.metadata.revokeLease(lease.id));
      } catch (error) {
        this.#deps.logger.warn("Cannot revoke the session lease; it will expire", {
          leaseId: lease.id,
          error: String(error),
        });
      }
    }
    this.#cache.clear();
    this.#state = "closed";
  }

  // ---- loading ---------------------------------------------------------------

  async #load(topic: string, partition: number): Promise<PartitionLog> {
    const { metadata, objectStore, brokerId, logger } = this.#deps;
    let acquired;
    // Two attempts: the first may find the session lease expired in the store.
    for (let attempt = 0;; attempt++) {
      const lease = await this.#confirmedLease();
      try {
        acquired = await metadata.acquirePartition(topic, partition, brokerId, lease.id);
        break;
      } catch (error) {
        if (error instanceof LeaseExpiredError && attempt === 0) {
          this.#leaseLost(lease);
          continue;
        }
        throw toLogError(error, `Cannot acquire "${topic}-${partition}"`);
      }
    }
    if (acquired === "owned-by-other") {
      throw LogError.notLeader(
        `Partition "${topic}-${partition}" is owned by another broker; refresh metadata and retry`,
      );
    }
    if (acquired === "unknown-partition") {
      throw LogError.unknownPartition(`Partition "${topic}-${partition}" does not exist`);
    }
    const acquisition = ++this.#acquisitions;
    const prefix = partitionObjectPrefix(this.#config.namespace, topic, partition);
    // Never trust a cache from an earlier ownership (invariant 3).
    this.#cache.deletePrefix(prefix);
    let recovered;
    try {
      const walRanges = sealedEndOf(acquired.state) < acquired.state.endOffset
        ? await this.#walRangesFor(topic, partition, acquired.topicId, acquisition)
        : [];
      recovered = await recoverPartition({
        objectStore,
        prefix,
        state: acquired.state,
        logger,
        walRanges,
        nowMs: this.#deps.clock.now(),
      });
    } catch (error) {
      throw toLogError(error, `Cannot load "${topic}-${partition}"`);
    }
    if (this.#state !== "started") {
      throw LogError.notLeader(
        `Log manager is ${this.#state}; cannot serve "${topic}-${partition}"`,
      );
    }
    logger.info("Acquired partition", {
      topic,
      partition,
      epoch: acquired.epoch,
      endOffset: acquired.state.endOffset,
      segments: recovered.segments.length,
      unsealedRanges: recovered.ranges.length,
      deletedObjects: recovered.deleted,
    });
    return new PartitionLog(this.#context, topic, partition, acquired, recovered);
  }

  /**
   * The write-ahead ranges of a partition, from a listing of the index made
   * after its acquisition committed (every round the previous owner
   * committed is in it: the index record is written no later than the state
   * that points into it). Loads running at the same time share one listing.
   */
  async #walRangesFor(
    topic: string,
    partition: number,
    topicId: string,
    acquisition: number,
  ): Promise<LocatedWalRange[]> {
    let listing = this.#walListing;
    if (!listing || listing.afterAcquisition < acquisition) {
      listing = {
        afterAcquisition: this.#acquisitions,
        users: 0,
        ranges: this.#deps.metadata.listWalIndex().then(rangesByPartition),
      };
      this.#walListing = listing;
    }
    listing.users++;
    try {
      const ranges = await listing.ranges;
      return (ranges.get(`${topic}/${partition}`) ?? []).filter((r) => r.topicId === topicId);
    } finally {
      // The listing can be large: keep it only while loads still need it.
      if (--listing.users === 0 && this.#walListing === listing) this.#walListing = null;
    }
  }

  // ---- sealing and write-ahead garbage collection -------------------------------

  #policyFor(topic: string): SealPolicy {
    return this.#deps.sealPolicyFor?.(topic) ?? {
      segmentBytes: this.#config.segmentBytesMax,
      segmentMs: Number.POSITIVE_INFINITY,
    };
  }

  #scheduleSealPass(): void {
    const interval = this.#config.sealCheckIntervalMs ?? DEFAULT_SEAL_CHECK_INTERVAL_MS;
    this.#sealTimer = this.#deps.clock.setTimeout(() => {
      this.#sealTimer = null;
      if (this.#state !== "started") return;
      this.#sealPass = this.runSealPass().finally(() => {
        this.#sealPass = null;
        if (this.#state === "started") this.#scheduleSealPass();
      });
    }, interval);
  }

  #scheduleCompactionPass(): void {
    const interval = this.#config.compactionCheckIntervalMs ?? DEFAULT_COMPACTION_CHECK_INTERVAL_MS;
    this.#compactionTimer = this.#deps.clock.setTimeout(() => {
      this.#compactionTimer = null;
      if (this.#state !== "started") return;
      this.#compactionPass = this.runCompactionPass().finally(() => {
        this.#compactionPass = null;
        if (this.#state === "started") this.#scheduleCompactionPass();
      });
    }, interval);
  }

  /**
   * Deletes segment objects replaced by earlier runs once their grace has passed, then
   * compacts every loaded partition of a compacted topic whose run is due.
   */
  async runCompactionPass(): Promise<void> {
    const live = [...this.#live.values()];
    await mapBounded(live, DELETE_CONCURRENCY, (log) => log.deleteReplaced());
    const limits: CompactionLimits = {
      dedupeBufferBytes: this.#config.compactionDedupeBufferBytes ??
        DEFAULT_COMPACTION_LIMITS.dedupeBufferBytes,
      inputBytesMax: this.#config.compactionInputBytesMax ??
        DEFAULT_COMPACTION_LIMITS.inputBytesMax,
    };
    const due: { log: PartitionLog; policy: CompactionPolicy }[] = [];
    for (const log of live) {
      const policy = this.#policyFor(log.topic).compaction;
      if (policy && log.compactionDue(policy)) due.push({ log, policy });
    }
    await mapBounded(due, COMPACTION_CONCURRENCY, async ({ log, policy }) => {
      try {
        await log.compact(policy, limits);
      } catch (error) {
        if (log.closed || error instanceof InvariantError) return; // The policy has it already.
        this.#compactionTotals.failures++;
        this.#deps.logger.warn("Cannot compact; the old segments stay and it is retried", {
          partition: `${log.topic}-${log.partition}`,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    });
  }

  /** Seals every loaded partition whose unsealed data is due (size, age or range count). */
  async runSealPass(): Promise<void> {
    const live = [...this.#live.values()];
    const due = new Set(live.filter((log) => log.sealDue(this.#policyFor(log.topic))));
    // Over the broker-wide bound on unsealed ranges (many partitions, each with a range per
    // round), the partitions with the most ranges are sealed too, until back under it.
    let ranges = 0;
    for (const log of live) ranges += log.unsealedRangeCount;
    const byCount = live.filter((log) => !due.has(log) && log.unsealedRangeCount > 0)
      .sort((a, b) => b.unsealedRangeCount - a.unsealedRangeCount);
    for (const log of due) ranges -= log.unsealedRangeCount;
    for (const log of byCount) {
      if (ranges <= UNSEALED_RANGES_TOTAL_MAX) break;
      due.add(log);
      ranges -= log.unsealedRangeCount;
    }
    await mapBounded([...due], SEAL_CONCURRENCY, (log) => this.#sealOne(log));
  }

  async #sealOne(log: PartitionLog): Promise<void> {
    try {
      await log.seal(this.#policyFor(log.topic));
    } catch (error) {
      if (log.closed || error instanceof InvariantError) return; // The policy has it already.
      this.#sealStats.failures++;
      this.#deps.logger.warn(
        "Cannot seal; the data stays in the write-ahead stream and is retried",
        {
          partition: `${log.topic}-${log.partition}`,
          error: error instanceof Error ? error.message : String(error),
        },
      );
    }
  }

  /** Seals everything unsealed of `log` (several segments if needed), until `deadline`. */
  async #sealFully(log: PartitionLog, deadline: number): Promise<void> {
    this.#deadlineSeals++;
    this.#pacer?.releaseWaiting();
    try {
      // Bounded: each successful seal removes at least one range.
      for (let i = 0; i < 10_000 && log.unsealedBytes > 0 && !log.closed; i++) {
        if (this.#deps.clock.monotonic() >= deadline) return;
        const before = log.sealedEnd;
        await this.#sealOne(log);
        if (log.sealedEnd === before) return;
      }
    } finally {
      this.#deadlineSeals--;
    }
  }

  /** Clean shutdown: seal what every loaded partition has unsealed, within the deadline. */
  async #sealAll(deadline: number): Promise<void> {
    const live = [...this.#live.values()].filter((log) => log.unsealedBytes > 0);
    await mapBounded(live, SEAL_CONCURRENCY, (log) => this.#sealFully(log, deadline));
  }

  #scheduleGc(): void {
    const interval = this.#config.walGcIntervalMs ?? DEFAULT_WAL_GC_INTERVAL_MS;
    this.#gcTimer = this.#deps.clock.setTimeout(() => {
      this.#gcTimer = null;
      if (this.#state !== "started") return;
      this.#gcPass = this.runWalGc().catch((error) => {
        this.#deps.logger.warn("Write-ahead garbage collection failed; retrying later", {
          error: error instanceof Error ? error.message : String(error),
        });
      }).finally(() => {
        this.#gcPass = null;
        if (this.#state === "started") this.#scheduleGc();
      });
    }, interval);
  }

  /**
   * Deletes write-ahead index records and objects that nothing needs any more. A range is no
   * longer needed once the committed state of its partition says it is sealed (sealed end at
   * or past its end), below the log start, or of a deleted topic; or when it was never
   * committed (it starts at or beyond the committed end, written by an older owner epoch).
   * Those facts come from epoch-checked commits, so a stalled former owner running this deletes
   * nothing that is needed (DESIGN invariant 4).
   *
   * - An index record whose ranges are all unneeded is deleted, even when its object is still
   *   in use (the local file being appended to lives for many rounds).
   * - An object no remaining record references is deleted, unless this broker's writer holds
   *   it (the file it appends to, or the one made ready for its next round), or it is younger
   *   than `WAL_ORPHAN_GRACE_MS` by the time in its name (a round whose object is written and
   *   whose commit has not landed yet; or an orphan of a failed round, which this also
   *   collects).
   * Nothing is deleted before two passes in a row found it unneeded, so a read that started just
   * before the last range was sealed finishes.
   * - Index records of one object that still name needed ranges are merged into one record
   *   naming only the ranges not known to be done (`#mergeWalIndex`). Each flush round writes a
   *   record, and one naming a few partitions stays until the last of them seals: without this,
   *   one-record rounds over 1,000 partitions kept ~90,000 records naming ~590,000 ranges.
   */
  async runWalGc(): Promise<void> {
    const { metadata, objectStore, logger } = this.#deps;
    const [entries, states, topics, objects] = await Promise.all([
      metadata.listWalIndex(),
      metadata.listPartitionStates(),
      metadata.listTopics(),
      objectStore.list(walObjectPrefix(this.#config.namespace)),
    ]);
    const topicIds = new Map(
      topics.filter((t) => t.state === "active").map((t) => [t.name, t.topicId]),
    );
    /** The committed state of a range's partition, if its topic is listed active with its id. */
    const stateOf = (r: WalRangeRecord): PartitionState | undefined =>
      topicIds.get(r.topic) === r.topicId ? states.get(`${r.topic}/${r.partition}`) : undefined;
    /** Sealed, below the log start, or never committed (an older owner's, beyond the end). */
    const finished = (r: WalRangeRecord, state: PartitionState): boolean =>
      r.endOffset <= Math.max(sealedEndOf(state), state.logStartOffset) ||
      (r.baseOffset >= state.endOffset && r.epoch < state.epoch);
    const needed = (r: WalRangeRecord): boolean => {
      const state = stateOf(r);
      return state !== undefined && !finished(r, state);
    };
    /**
     * Whether a range is done by committed facts alone: `finished` by its partition's state, its
     * topic listed active with its id. Those only become true as commits land, so this still
     * holds when a merge based on it runs. A range of a topic missing from the listing is not
     * done (the topic may be newer than the listing), though it is not `needed` either.
     */
    const done = (r: WalRangeRecord): boolean => {
      const state = stateOf(r);
      return state !== undefined && finished(r, state);
    };
    const previous = this.#gcCandidates;
    const candidates = new Set<string>();
    const doneRecords: string[] = [];
    const referenced = new Set<string>();
    const mergeable = new Map<string, WalIndexEntry[]>();
    let outstandingBytes = 0;
    for (const entry of entries) {
      if (entry.record.ranges.some(needed)) {
        referenced.add(entry.record.object);
        for (const r of entry.record.ranges) outstandingBytes += r.length;
        const group = mergeable.get(entry.record.object);
        if (group) group.push(entry);
        else mergeable.set(entry.record.object, [entry]);
        continue;
      }
      candidates.add(`record:${entry.id}`);
      if (previous.has(`record:${entry.id}`)) doneRecords.push(entry.id);
    }
    const now = this.#deps.clock.now();
    const doomedObjects: string[] = [];
    const orphanGraceMs = this.#config.walOrphanGraceMs ?? WAL_ORPHAN_GRACE_MS;
    const ownFiles = this.#wal.mode === "file"
      ? `${walObjectPrefix(this.#config.namespace)}${this.#deps.brokerId}/`
      : null;
    const sizes = new Map<string, number>();
    for (const { key, size } of objects) {
      if (referenced.has(key) || this.#wal.holds(key)) continue;
      sizes.set(key, size);
      const createdMs = walObjectCreatedMs(key);
      const graceMs = ownFiles !== null && key.startsWith(ownFiles)
        ? Math.min(orphanGraceMs, OWN_WAL_FILE_GRACE_MS)
        : orphanGraceMs;
      if (createdMs === null || now - createdMs < graceMs) continue;
      candidates.add(`object:${key}`);
      if (previous.has(`object:${key}`)) doomedObjects.push(key);
    }
    this.#gcCandidates = candidates;
    const deletes = await mapBounded(doomedObjects, DELETE_CONCURRENCY, async (key) => {
      if (await this.#holdsDataBeyondTheEnd(key, sizes.get(key)!, states, topicIds)) return false;
      // A local write-ahead file may be kept for reuse: the next file overwrites its blocks.
      if (objectStore.retireAppendable) await objectStore.retireAppendable(key);
      else await objectStore.delete(key);
      this.#gcCandidates.delete(`object:${key}`);
      return true;
    });
    const deleted = deletes.filter((r) => r.status === "fulfilled" && r.value).length;
    const failure = firstRejection(deletes);
    if (doneRecords.length > 0) {
      await metadata.deleteWalIndex(doneRecords);
      for (const id of doneRecords) this.#gcCandidates.delete(`record:${id}`);
    }
    const merged = await this.#mergeWalIndex(mergeable, done);
    this.#gcStats.passes++;
    this.#gcStats.objectsDeleted += deleted;
    this.#gcStats.indexRecords = entries.length;
    this.#gcStats.indexRanges = entries.reduce((n, e) => n + e.record.ranges.length, 0);
    for (const key of this.#keptOrphans.keys()) {
      if (!candidates.has(`object:${key}`)) this.#keptOrphans.delete(key);
    }
    this.#gcStats.objectsOutstanding = objects.length - deleted;
    this.#gcStats.bytesOutstanding = outstandingBytes;
    if (deleted > 0 || doneRecords.length > 0 || merged.replaced > 0) {
      logger.debug("Collected the write-ahead stream", {
        objects: deleted,
        records: doneRecords.length,
        mergedRecords: merged.replaced,
        intoRecords: merged.written,
      });
    }
    if (failure !== undefined) throw toLogError(failure, "Cannot delete write-ahead objects");
    if (merged.failure !== undefined) {
      throw toLogError(merged.failure, "Cannot merge write-ahead index records");
    }
  }

  /**
   * Merges the index records of each object (`byObject`, as listed, oldest first) into records
   * naming only the ranges that are not `done`, when some are done and there are at least two
   * records, or at least half of a lone record's ranges are done. Each merge is one
   * transaction: put the merged record under a new id, delete the sources, only if no source
   * changed since the listing (`ClusterMetadata.replaceWalIndex`). A range is dropped only for
   * committed facts, so a stalled broker running this drops nothing a later owner needs (DESIGN
   * invariant 4); objects are not touched here.
   */
  async #mergeWalIndex(
    byObject: Map<string, WalIndexEntry[]>,
    done: (r: WalRangeRecord) => boolean,
  ): Promise<{ replaced: number; written: number; failure?: unknown }> {
    const { metadata } = this.#deps;
    const sourcesMax = metadata.walIndexReplaceMax;
    const merges: { sources: WalIndexEntry[]; ranges: WalRangeRecord[] }[] = [];
    for (const group of byObject.values()) {
      let dropped = 0;
      const kepts = group.map((entry) => {
        const kept = entry.record.ranges.filter((r) => !done(r));
        dropped += entry.record.ranges.length - kept.length;
        return kept;
      });
      if (dropped === 0 || (group.length < 2 && dropped < kepts[0].length)) continue;
      let sources: WalIndexEntry[] = [];
      let ranges: WalRangeRecord[] = [];
      let bytes = 0;
      const cut = () => {
        if (sources.length > 1 || ranges.length < sources[0].record.ranges.length) {
          merges.push({ sources, ranges });
        }
        sources = [];
        ranges = [];
        bytes = 0;
      };
      group.forEach((entry, i) => {
        const more = kepts[i].reduce((n, r) => n + walMergedRangeBytes(r), 0);
        const full = sources.length === sourcesMax || bytes + more > WAL_MERGED_RECORD_BYTES_MAX;
        if (sources.length > 0 && full) cut();
        sources.push(entry);
        for (const r of kepts[i]) ranges.push(r);
        bytes += more;
      });
      cut();
    }
    let replaced = 0;
    let written = 0;
    const results = await mapBounded(merges, WAL_MERGE_CONCURRENCY, async ({ sources, ranges }) => {
      const id = mergedWalIndexId(sources[sources.length - 1].id);
      const object = sources[0].record.object;
      if (await metadata.replaceWalIndex(sources, { id, record: { object, ranges } })) {
        replaced += sources.length;
        written++;
      }
    });
    this.#gcStats.recordsMerged += replaced;
    return { replaced, written, failure: firstRejection(results) };
  }

  /**
   * Whether an object no index record references still holds chunks its partition's committed
   * state has not reached, written by its current owner epoch or a later one. A round that
   * failed before its commit leaves such a chunk only until the partition writes past it (or a
   * new owner, with a higher epoch, takes over). Otherwise the metadata is behind the data it
   * acknowledged: restored from a backup, or repaired after damage. Deleting the object would
   * lose those records for good, so it is kept and reported (DESIGN invariant 4: deletions
   * follow from committed facts only). Checked again after `WAL_ORPHAN_GRACE_MS`.
   */
  async #holdsDataBeyondTheEnd(
    key: string,
    size: number,
    states: Map<string, PartitionState>,
    topicIds: Map<string, string>,
  ): Promise<boolean> {
    const now = this.#deps.clock.now();
    const checked = this.#keptOrphans.get(key);
    const graceMs = this.#config.walOrphanGraceMs ?? WAL_ORPHAN_GRACE_MS;
    if (checked !== undefined && now - checked < graceMs) return true;
    const isBeyond = (c: WalChunkHeader): boolean => {
      if (topicIds.get(c.topic) !== c.topicId) return false;
      const state = states.get(`${c.topic}/${c.partition}`);
      return state !== undefined && c.endOffset > state.endOffset && c.epoch >= state.epoch;
    };
    const beyond: WalChunkHeader[] = [];
    await scanWalObject(this.#deps.objectStore, key, size, (c) => {
      if (isBeyond(c)) beyond.push(c);
    });
    if (beyond.length === 0) {
      this.#keptOrphans.delete(key);
      return false;
    }
    if (checked === undefined) {
      this.#deps.logger.warn(
        "Kept a write-ahead object no metadata references: it holds records beyond the " +
          "committed end of their partitions, by their current owner. A round whose commit " +
          "failed leaves this until the partition writes past it; otherwise the metadata is " +
          "behind what it acknowledged (restored or repaired?)",
        {
          object: key,
          partitions: [...new Set(beyond.map((c) => `${c.topic}-${c.partition}`))].slice(0, 10)
            .join(","),
          offsets: beyond.slice(0, 3).map((c) => `${c.baseOffset}-${c.endOffset - 1}`).join(","),
        },
      );
    }
    this.#keptOrphans.set(key, now);
    return true;
  }

  #forget(log: PartitionLog): void {
    const key = `${log.topic}/${log.partition}`;
    if (this.#live.get(key) === log) {
      this.#live.delete(key);
      this.#logs.delete(key);
    }
  }

  #reservePending(bytes: number): void {
    if (this.#state !== "started") {
      throw LogError.notLeader(`Log manager is ${this.#state}; appends are refused`);
    }
    if (this.#scheduler.pendingBytes + bytes > this.#pendingBytesMax) {
      this.#scheduler.flushNow();
      throw LogError.storage(
        `Write buffer is full (${this.#scheduler.pendingBytes} of ${this.#pendingBytesMax} bytes ` +
          `waiting for the object store); retry`,
      );
    }
  }

  // ---- lease -------------------------------------------------------------------

  /**
   * Whether this broker holds a session lease it knows to be live (granted, and its deadline not
   * passed). False before the first grant and once keep-alives have failed past the deadline:
   * the broker's partitions may belong to another broker by then.
   */
  get leaseHeld(): boolean {
    const lease = this.#lease;
    return lease !== null && this.#deps.clock.monotonic() < lease.deadline;
  }

  /**
   * Whether the session lease may still be live in the store: until a whole TTL has passed since
   * the last keep-alive known to have succeeded was sent (the store counts from when it got it,
   * later). Until then no other broker can acquire this broker's partitions, even past the
   * write deadline (`leaseHeld`); Metadata goes by this, so a short store outage does not point
   * clients at another broker and back.
   */
  get leaseMayBeLive(): boolean {
    const lease = this.#lease;
    return lease !== null &&
      this.#deps.clock.monotonic() <
        lease.deadline + this.#config.leaseTtlMs * LEASE_SAFETY_MARGIN_FRACTION;
  }

  #assertWritable(): void {
    const lease = this.#lease;
    if (!lease || this.#deps.clock.monotonic() >= lease.deadline) {
      // Renew now rather than at the next periodic keep-alive: writing resumes as soon as the
      // store answers.
      if (lease) this.#startKeepAlive(lease);
      throw LogError.notLeader(
        "This broker's lease may have expired; it stopped writing until the lease is renewed",
      );
    }
  }

  /**
   * The session lease, known to be live. One whose deadline passed is renewed first (or its
   * keep-alive in flight awaited); if that fails, NOT_LEADER_OR_FOLLOWER. Acquiring a partition
   * under it otherwise would take a new epoch that cannot write until the renewal, and every
   * retry would take another (clients then see the leader epoch climb for nothing).
   */
  async #confirmedLease(): Promise<SessionLease> {
    const lease = await this.#ensureLease();
    if (this.#deps.clock.monotonic() < lease.deadline) return lease;
    await this.#startKeepAlive(lease);
    // Found expired meanwhile (LeaseExpiredError): a new one is granted.
    if (this.#lease !== lease) return await this.#ensureLease();
    if (this.#deps.clock.monotonic() < lease.deadline) return lease;
    throw LogError.notLeader(
      "This broker's lease may have expired and could not be renewed; retry",
    );
  }

  #ensureLease(): Promise<SessionLease> {
    if (this.#lease) return Promise.resolve(this.#lease);
    if (this.#leaseGrant) return this.#leaseGrant;
    const { metadata, clock } = this.#deps;
    const ttl = this.#config.leaseTtlMs;
    const sentAt = clock.monotonic();
    const grant = metadata.grantLease(ttl).then((granted) => {
      const lease: SessionLease = {
        id: granted.id,
        deadline: sentAt + ttl * (1 - LEASE_SAFETY_MARGIN_FRACTION),
        keepAlive: null,
        timer: null,
      };
      if (this.#state === "closing" || this.#state === "closed") {
        metadata.revokeLease(lease.id).catch(() => undefined);
        throw LogError.notLeader("Log manager closed while granting its lease");
      }
      this.#lease = lease;
      this.#scheduleKeepAlive(lease);
      return lease;
    }, (error) => {
      throw toLogError(error, "Cannot grant the broker session lease");
    }).finally(() => {
      this.#leaseGrant = null;
    });
    this.#leaseGrant = grant;
    return grant;
  }

  #scheduleKeepAlive(lease: SessionLease): void {
    const interval = Math.max(1, Math.floor(this.#config.leaseTtlMs / KEEPALIVES_PER_TTL));
    lease.timer = this.#deps.clock.setTimeout(() => {
      lease.timer = null;
      if (this.#lease !== lease) return;
      // Re-arm first, so keep-alives stay periodic even while one is slow.
      this.#scheduleKeepAlive(lease);
      this.#startKeepAlive(lease);
    }, interval);
  }

  /** Starts a keep-alive unless one is in flight; resolves when that one ends (never rejects). */
  #startKeepAlive(lease: SessionLease): Promise<void> {
    lease.keepAlive ??= this.#keepAlive(lease).finally(() => {
      lease.keepAlive = null;
    });
    return lease.keepAlive;
  }

  async #keepAlive(lease: SessionLease): Promise<void> {
    const { metadata, clock, logger } = this.#deps;
    const sentAt = clock.monotonic();
    try {
      await metadata.keepAlive(lease.id);
      const deadline = sentAt + this.#config.leaseTtlMs * (1 - LEASE_SAFETY_MARGIN_FRACTION);
      lease.deadline = Math.max(lease.deadline, deadline);
    } catch (error) {
      if (error instanceof LeaseExpiredError) {
        this.#leaseLost(lease);
      } else {
        logger.warn("Lease keep-alive failed; retrying", {
          leaseId: lease.id,
          error: String(error),
        });
      }
    }
  }

  /** The lease is gone: every partition hung on it is someone else's to take now. */
  #leaseLost(lease: SessionLease): void {
    if (this.#lease !== lease) return;
    this.#deps.logger.warn("Broker session lease expired; releasing all partitions", {
      leaseId: lease.id,
    });
    this.#lease = null;
    lease.timer?.cancel();
    for (const log of [...this.#live.values()]) {
      log.shutdown(
        LogError.notLeader(`Lost ownership of "${log.topic}-${log.partition}": lease expired`),
      );
    }
  }
}
