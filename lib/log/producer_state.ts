/**
 * Per-partition state of idempotent producers (KIP-98, KIP-360): for each
 * producer id, its epoch and the sequence ranges of its last
 * `PRODUCER_BATCHES_RETAINED` batches with the offsets they were stored at.
 *
 * The partition log asks `check()` before it assigns offsets to an append
 * and calls `record()` right after, in the same synchronous step, so the
 * check and the offsets can never disagree. Appends not yet committed live in
 * an overlay: `commit()` folds a committed flush into the committed table,
 * and `rollback()` drops the overlay when a flush fails, exactly as the log
 * rolls its end offset back.
 *
 * The rules, as Kafka's ProducerStateManager applies them to client appends:
 * - a batch whose epoch and sequence range match one of the retained batches
 *   is a duplicate: the caller answers with the original offsets and stores
 *   nothing;
 * - an epoch older than the producer's is INVALID_PRODUCER_EPOCH;
 * - a newer epoch must start at sequence 0 (else OUT_OF_ORDER_SEQUENCE_NUMBER);
 * - in the same epoch the first sequence must follow the last one, wrapping
 *   from 2^31 - 1 to 0 (else OUT_OF_ORDER_SEQUENCE_NUMBER);
 * - a producer with no state here (new, expired, or older than the scanned
 *   tail after a restart) must start at sequence 0, else UNKNOWN_PRODUCER_ID:
 *   the client bumps its epoch and restarts at 0 (KIP-360), instead of the
 *   broker guessing whether a retried batch was already stored.
 *
 * Memory is bounded: a producer's state expires `expirationMs` after its last
 * write (Kafka's producer.id.expiration.ms), and at most `producersMax`
 * producers are kept per partition (the least recently written is forgotten
 * first). The committed table is a Map in least-recently-written order, so
 * both bounds cost O(1) per write.
 *
 * Pure: no I/O, no clock (callers pass times). Must not import anything but
 * lib/protocol's batch header type.
 */

import type { BatchInfo } from "../protocol/record_batch.ts";

/** Largest sequence number; the next one is 0 (Kafka's DefaultRecordBatch.incrementSequence). */
export const SEQUENCE_MAX = 2_147_483_647;
/** Batches remembered per producer: Kafka's NUM_BATCHES_TO_RETAIN, the clients' in-flight limit. */
export const PRODUCER_BATCHES_RETAINED = 5;
/** Default lifetime of a producer's state after its last write: Kafka's producer.id.expiration.ms. */
export const DEFAULT_PRODUCER_ID_EXPIRATION_MS = 86_400_000;
/** Default bound on producers remembered per partition. */
export const DEFAULT_PRODUCERS_PER_PARTITION_MAX = 10_000;

/** Kafka error codes of rejected appends (numbers from Kafka's Errors.java). */
export const PRODUCER_ERROR_CODE = {
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  INVALID_PRODUCER_EPOCH: 47,
  UNKNOWN_PRODUCER_ID: 59,
} as const;

export type ProducerErrorCode = (typeof PRODUCER_ERROR_CODE)[keyof typeof PRODUCER_ERROR_CODE];

/** An append refused by the producer state; the produce handler answers with `code`. */
export class ProducerStateError extends Error {
  override name = "ProducerStateError";
  constructor(
    readonly code: ProducerErrorCode,
    message: string,
    /** The partition's log start offset, which clients read with UNKNOWN_PRODUCER_ID. */
    readonly logStartOffset = -1,
  ) {
    super(message);
  }
}

/** The batch header fields the producer state reads. */
export type ProducerBatchHeader =
  & Pick<
    BatchInfo,
    "producerId" | "producerEpoch" | "baseSequence" | "lastOffsetDelta" | "baseOffset"
  >
  & { readonly isControl?: boolean };

/** One retained batch: its sequence range and where it was stored. */
export interface ProducerBatch {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
}

export interface ProducerEntry {
  readonly producerId: number;
  readonly producerEpoch: number;
  /** Oldest first, at most PRODUCER_BATCHES_RETAINED. */
  readonly batches: readonly ProducerBatch[];
  /** Broker time of the last write, for expiry. */
  readonly lastTimestampMs: number;
}

export type ProducerCheck =
  | { readonly outcome: "append" }
  | {
    readonly outcome: "duplicate";
    /** Which batch of the append repeats a stored one. */
    readonly batchIndex: number;
    readonly firstOffset: number;
    readonly lastOffset: number;
  }
  | { readonly outcome: "rejected"; readonly code: ProducerErrorCode; readonly message: string };

export interface ProducerStateConfig {
  expirationMs: number;
  producersMax: number;
}

/** The sequence of the batch's last record, wrapping past SEQUENCE_MAX. */
export function lastSequence(baseSequence: number, lastOffsetDelta: number): number {
  return baseSequence > SEQUENCE_MAX - lastOffsetDelta
    ? lastOffsetDelta - (SEQUENCE_MAX - baseSequence) - 1
    : baseSequence + lastOffsetDelta;
}

/** Whether `next` directly follows `last` (Kafka's ProducerAppendInfo.inSequence). */
export function inSequence(last: number, next: number): boolean {
  return next === last + 1 || (next === 0 && last === SEQUENCE_MAX);
}

/** Whether the batch carries a producer id (idempotent); others bypass the producer state. */
export function isIdempotent(batch: Pick<BatchInfo, "producerId">): boolean {
  return batch.producerId >= 0;
}

/** The verdict for one batch against the producer's current entry. */
export function checkBatch(
  entry: ProducerEntry | undefined,
  batch: ProducerBatchHeader,
): ProducerCheck {
  const { producerId, producerEpoch, baseSequence } = batch;
  const lastSeq = lastSequence(baseSequence, batch.lastOffsetDelta);
  if (entry === undefined) {
    if (baseSequence === 0) return APPEND;
    return reject(
      PRODUCER_ERROR_CODE.UNKNOWN_PRODUCER_ID,
      `No state for producer ${producerId} on this partition (new, expired or older than the ` +
        `scanned log tail) and its batch starts at sequence ${baseSequence}, not 0; bump the ` +
        "epoch and restart at sequence 0",
    );
  }
  if (producerEpoch < entry.producerEpoch) {
    return reject(
      PRODUCER_ERROR_CODE.INVALID_PRODUCER_EPOCH,
      `Producer ${producerId} sent epoch ${producerEpoch}, older than its current epoch ` +
        `${entry.producerEpoch}: a newer instance or epoch bump fenced it`,
    );
  }
  if (producerEpoch > entry.producerEpoch) {
    if (baseSequence === 0) return APPEND;
    return reject(
      PRODUCER_ERROR_CODE.OUT_OF_ORDER_SEQUENCE_NUMBER,
      `Producer ${producerId} started epoch ${producerEpoch} at sequence ${baseSequence}; a new ` +
        "epoch must start at sequence 0",
    );
  }
  for (const b of entry.batches) {
    if (b.firstSeq === baseSequence && b.lastSeq === lastSeq) {
      return {
        outcome: "duplicate",
        batchIndex: 0,
        firstOffset: b.firstOffset,
        lastOffset: b.lastOffset,
      };
    }
  }
  const last = entry.batches[entry.batches.length - 1];
  if (last === undefined || inSequence(last.lastSeq, baseSequence)) return APPEND;
  return reject(
    PRODUCER_ERROR_CODE.OUT_OF_ORDER_SEQUENCE_NUMBER,
    `Producer ${producerId} epoch ${producerEpoch} sent sequence ${baseSequence}-${lastSeq} ` +
      `after ${last.lastSeq}; expected ${last.lastSeq === SEQUENCE_MAX ? 0 : last.lastSeq + 1}`,
  );
}

/**
 * The entry after storing `batch` (at its assigned offsets); never mutates `entry`. A
 * transaction marker (control batch) carries no sequence: it only raises the epoch (a marker
 * written with a bumped epoch fences the producer's older batches, KIP-890), keeping the
 * retained batches when the epoch stays.
 */
export function applyBatch(
  entry: ProducerEntry | undefined,
  batch: ProducerBatchHeader,
  nowMs: number,
): ProducerEntry {
  if (batch.isControl) {
    const epoch = Math.max(entry?.producerEpoch ?? -1, batch.producerEpoch);
    return {
      producerId: batch.producerId,
      producerEpoch: epoch,
      batches: entry !== undefined && entry.producerEpoch === epoch ? entry.batches : [],
      lastTimestampMs: nowMs,
    };
  }
  const stored: ProducerBatch = {
    firstSeq: batch.baseSequence,
    lastSeq: lastSequence(batch.baseSequence, batch.lastOffsetDelta),
    firstOffset: batch.baseOffset,
    lastOffset: batch.baseOffset + batch.lastOffsetDelta,
  };
  const kept = entry !== undefined && entry.producerEpoch === batch.producerEpoch
    ? entry.batches.slice(Math.max(0, entry.batches.length - (PRODUCER_BATCHES_RETAINED - 1)))
    : [];
  return {
    producerId: batch.producerId,
    producerEpoch: batch.producerEpoch,
    batches: [...kept, stored],
    lastTimestampMs: nowMs,
  };
}

const APPEND: ProducerCheck = { outcome: "append" };

function reject(code: ProducerErrorCode, message: string): ProducerCheck {
  return { outcome: "rejected", code, message };
}

/** An uncommitted entry and the offset of the last batch that made it. */
interface OverlayEntry {
  entry: ProducerEntry;
  lastOffset: number;
}

/** One partition's producer table: committed entries plus the overlay of pending appends. */
export class ProducerStateTable {
  readonly #config: ProducerStateConfig;
  /** Committed entries in least-recently-written order (oldest first). */
  readonly #committed = new Map<number, ProducerEntry>();
  /** Entries changed by appends not yet committed. */
  readonly #overlay = new Map<number, OverlayEntry>();

  constructor(config: Partial<ProducerStateConfig> = {}) {
    const expirationMs = config.expirationMs ?? DEFAULT_PRODUCER_ID_EXPIRATION_MS;
    const producersMax = config.producersMax ?? DEFAULT_PRODUCERS_PER_PARTITION_MAX;
    if (!Number.isSafeInteger(expirationMs) || expirationMs < 1) {
      throw new RangeError(`Producer id expiration must be >= 1 ms, got ${expirationMs}`);
    }
    if (!Number.isSafeInteger(producersMax) || producersMax < 1) {
      throw new RangeError(`Producers per partition must be >= 1, got ${producersMax}`);
    }
    this.#config = { expirationMs, producersMax };
  }

  /** Producers with committed or pending state. */
  get size(): number {
    let pendingOnly = 0;
    for (const id of this.#overlay.keys()) if (!this.#committed.has(id)) pendingOnly++;
    return this.#committed.size + pendingOnly;
  }

  /** The producer's latest entry, pending appends included. */
  get(producerId: number): ProducerEntry | undefined {
    return this.#overlay.get(producerId)?.entry ?? this.#committed.get(producerId);
  }

  /** Every producer's latest entry (pending appends included), oldest write first. */
  entries(): ProducerEntry[] {
    const out = new Map<number, ProducerEntry>(this.#committed);
    for (const [id, pending] of this.#overlay) out.set(id, pending.entry);
    return [...out.values()];
  }

  /** The producer's committed entry. */
  committed(producerId: number): ProducerEntry | undefined {
    return this.#committed.get(producerId);
  }

  /**
   * The verdict for an append's batches, in order, without changing anything.
   * Kafka's rule for a request holding a duplicate: the whole request is
   * answered as that duplicate, and nothing of it is stored.
   */
  check(batches: readonly ProducerBatchHeader[]): ProducerCheck {
    // Later batches of one producer in the same append follow the earlier ones.
    let scratch: Map<number, ProducerEntry> | null = null;
    let duplicate: ProducerCheck | null = null;
    let fresh = 0;
    for (let i = 0; i < batches.length; i++) {
      const b = batches[i];
      if (!isIdempotent(b) || b.isControl) {
        fresh++;
        continue;
      }
      const pending = scratch?.get(b.producerId);
      const verdict = checkBatch(pending ?? this.get(b.producerId), b);
      if (verdict.outcome === "rejected") return verdict;
      if (verdict.outcome === "duplicate" && pending === undefined) {
        duplicate ??= { ...verdict, batchIndex: i };
        continue;
      }
      if (verdict.outcome === "duplicate") {
        return reject(
          PRODUCER_ERROR_CODE.OUT_OF_ORDER_SEQUENCE_NUMBER,
          `Producer ${b.producerId} sent sequence ${b.baseSequence} twice in one request`,
        );
      }
      fresh++;
      scratch ??= new Map();
      scratch.set(b.producerId, applyBatch(pending ?? this.get(b.producerId), b, 0));
    }
    if (duplicate === null) return APPEND;
    if (fresh === 0) return duplicate;
    // Answering the duplicate would drop the new batches; storing them would store the duplicate.
    return reject(
      PRODUCER_ERROR_CODE.OUT_OF_ORDER_SEQUENCE_NUMBER,
      "Request mixes a batch already stored with new batches; send one batch per partition",
    );
  }

  /** Records an append that `check` accepted, after offsets were assigned to its batches. */
  record(batches: readonly ProducerBatchHeader[], nowMs: number): void {
    for (const b of batches) {
      if (!isIdempotent(b)) continue;
      const entry = applyBatch(this.get(b.producerId), b, nowMs);
      this.#overlay.set(b.producerId, { entry, lastOffset: b.baseOffset + b.lastOffsetDelta });
    }
  }

  /**
   * Folds committed batches (in log order) into the committed table; pending
   * entries no later than `endOffset` are then redundant and dropped. Also
   * applies expiry and the producer bound.
   */
  commit(batches: Iterable<ProducerBatchHeader>, endOffset: number, nowMs: number): void {
    for (const b of batches) if (isIdempotent(b)) this.#applyCommitted(b, nowMs);
    for (const [id, pending] of this.#overlay) {
      if (pending.lastOffset < endOffset) this.#overlay.delete(id);
    }
    this.expire(nowMs);
  }

  /** Forgets every pending entry (a failed flush): the committed table is the state again. */
  rollback(): void {
    this.#overlay.clear();
  }

  /**
   * Rebuilds from stored batches in log order (loading a partition): the
   * same effect as committing them, timed at `writtenMs` (when they were
   * stored). Call `expire` once done.
   */
  load(batch: ProducerBatchHeader, writtenMs: number): void {
    if (isIdempotent(batch)) this.#applyCommitted(batch, writtenMs);
  }

  /**
   * Forgets committed producers idle for `expirationMs`, then the least
   * recently written ones beyond `producersMax`. Producers with pending
   * appends stay. Returns how many were forgotten.
   */
  expire(nowMs: number): number {
    let removed = 0;
    let excess = this.#committed.size - this.#config.producersMax;
    // Bounded by the table size; stops at the first producer that stays.
    for (const [id, entry] of this.#committed) {
      const expired = nowMs - entry.lastTimestampMs >= this.#config.expirationMs;
      if (!expired && excess <= 0) break;
      if (this.#overlay.has(id)) continue;
      this.#committed.delete(id);
      removed++;
      excess--;
    }
    return removed;
  }

  #applyCommitted(batch: ProducerBatchHeader, nowMs: number): void {
    const entry = applyBatch(this.#committed.get(batch.producerId), batch, nowMs);
    // Re-insert: the Map stays in least-recently-written order.
    this.#committed.delete(batch.producerId);
    this.#committed.set(batch.producerId, entry);
  }
}
