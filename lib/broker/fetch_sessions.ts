/**
 * Incremental fetch sessions (KIP-227): the broker remembers, per session,
 * which partitions a consumer reads, from which offset and what it last told
 * the consumer about each (high watermark, last stable offset, log start).
 * An incremental request then names only the partitions whose fetch position
 * changed, and the response leaves out every partition with nothing new.
 *
 * The protocol, as Kafka serves it:
 * - `sessionEpoch` -1 (final): no session; a non-zero `sessionId` is closed.
 * - `sessionEpoch` 0 (initial): a full fetch that opens a new session (a
 *   non-zero `sessionId` is closed first). The answer names the new id, or 0
 *   when no slot can be had; the consumer then simply sends full fetches.
 * - `sessionEpoch` > 0: incremental. An unknown id answers
 *   FETCH_SESSION_ID_NOT_FOUND, a wrong epoch INVALID_FETCH_SESSION_EPOCH, and
 *   a session opened with topic names used with topic ids (or the reverse)
 *   FETCH_SESSION_TOPIC_ID_ERROR; the consumer then starts over with a full
 *   fetch. The epoch advances as the request is accepted, before any read, so
 *   a duplicate of the request is refused.
 *
 * Slots are bounded (`--fetch-session-cache-slots`, Kafka's
 * max.incremental.fetch.session.cache.slots, default 1000). When they are all
 * taken, a new session evicts the least recently used session idle for longer
 * than the eviction interval (Kafka's min.incremental.fetch.session.eviction.ms,
 * 120 s); failing that, the smallest session older than that interval, if the
 * new one has more partitions. Otherwise the new session is not created.
 *
 * Pure bookkeeping: no I/O, time from the injected clock.
 */
import type { Clock } from "../util/clock.ts";

/** Kafka's max.incremental.fetch.session.cache.slots default. */
export const DEFAULT_FETCH_SESSION_SLOTS = 1_000;
/** Kafka's min.incremental.fetch.session.eviction.ms default. */
export const FETCH_SESSION_EVICTION_MS = 120_000;

export const INITIAL_EPOCH = 0;
export const FINAL_EPOCH = -1;

/** One partition a session reads, and what the consumer was last told about it. */
export interface SessionPartition {
  topic: string;
  topicId: string;
  partition: number;
  fetchOffset: number;
  maxBytes: number;
  currentLeaderEpoch: number;
  /** Values last sent for this partition; -2 before any was sent. */
  sentHighWatermark: number;
  sentLastStableOffset: number;
  sentLogStartOffset: number;
}

export class FetchSession {
  readonly id: number;
  /** Whether the session addresses topics by id (Fetch v13+) or by name. */
  readonly usesTopicIds: boolean;
  readonly createdMs: number;
  /** The epoch the next incremental request must carry. */
  epoch = 1;
  lastUsedMs: number;
  /** In response order; partitions that returned data move to the end (fairness). */
  readonly partitions: Map<string, SessionPartition> = new Map();

  constructor(id: number, usesTopicIds: boolean, nowMs: number) {
    this.id = id;
    this.usesTopicIds = usesTopicIds;
    this.createdMs = nowMs;
    this.lastUsedMs = nowMs;
  }

  static key(usesTopicIds: boolean, topic: string, topicId: string, partition: number): string {
    return `${usesTopicIds ? topicId : topic}\u0000${partition}`;
  }

  /** Adds or updates a partition from a request (only the request moves fetch positions). */
  upsert(
    p: Omit<SessionPartition, "sentHighWatermark" | "sentLastStableOffset" | "sentLogStartOffset">,
  ): SessionPartition {
    const key = FetchSession.key(this.usesTopicIds, p.topic, p.topicId, p.partition);
    const existing = this.partitions.get(key);
    if (existing) {
      existing.fetchOffset = p.fetchOffset;
      existing.maxBytes = p.maxBytes;
      existing.currentLeaderEpoch = p.currentLeaderEpoch;
      return existing;
    }
    const added = {
      ...p,
      sentHighWatermark: -2,
      sentLastStableOffset: -2,
      sentLogStartOffset: -2,
    };
    this.partitions.set(key, added);
    return added;
  }

  forget(topic: string, topicId: string, partition: number): void {
    this.partitions.delete(FetchSession.key(this.usesTopicIds, topic, topicId, partition));
  }

  /** Moves a partition that just returned data behind the others. */
  rotate(p: SessionPartition): void {
    const key = FetchSession.key(this.usesTopicIds, p.topic, p.topicId, p.partition);
    if (this.partitions.delete(key)) this.partitions.set(key, p);
  }
}

export type SessionLookup =
  | { ok: true; session: FetchSession }
  | {
    ok: false;
    errorCode:
      | "FETCH_SESSION_ID_NOT_FOUND"
      | "INVALID_FETCH_SESSION_EPOCH"
      | "FETCH_SESSION_TOPIC_ID_ERROR";
  };

export class FetchSessionCache {
  readonly #clock: Clock;
  readonly #maxSlots: number;
  readonly #evictionMs: number;
  readonly #sessions = new Map<number, FetchSession>();
  #evictions = 0;

  constructor(
    clock: Clock,
    maxSlots = DEFAULT_FETCH_SESSION_SLOTS,
    evictionMs = FETCH_SESSION_EVICTION_MS,
  ) {
    this.#clock = clock;
    this.#maxSlots = Math.max(0, maxSlots);
    this.#evictionMs = evictionMs;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Sessions evicted to make room for new ones, since start. */
  get evictions(): number {
    return this.#evictions;
  }

  /** Partitions held across all sessions. */
  partitionCount(): number {
    let n = 0;
    for (const s of this.#sessions.values()) n += s.partitions.size;
    return n;
  }

  close(id: number): void {
    this.#sessions.delete(id);
  }

  /**
   * Accepts an incremental request: checks id, epoch and addressing, then
   * advances the epoch (so a replay of the same request is refused).
   */
  acquire(id: number, epoch: number, usesTopicIds: boolean): SessionLookup {
    const session = this.#sessions.get(id);
    if (!session) return { ok: false, errorCode: "FETCH_SESSION_ID_NOT_FOUND" };
    if (session.epoch !== epoch) return { ok: false, errorCode: "INVALID_FETCH_SESSION_EPOCH" };
    if (session.usesTopicIds !== usesTopicIds) {
      return { ok: false, errorCode: "FETCH_SESSION_TOPIC_ID_ERROR" };
    }
    session.epoch = nextEpoch(session.epoch);
    session.lastUsedMs = this.#clock.monotonic();
    return { ok: true, session };
  }

  /**
   * Opens a session for `partitionCount` partitions, evicting one if every
   * slot is taken and one may go. Null when there is no room: the consumer
   * then sends full fetches (session id 0 in the answer).
   */
  create(usesTopicIds: boolean, partitionCount: number): FetchSession | null {
    if (this.#maxSlots === 0 || partitionCount === 0) return null;
    const now = this.#clock.monotonic();
    if (this.#sessions.size >= this.#maxSlots && !this.#evictOne(now, partitionCount)) return null;
    const session = new FetchSession(this.#newId(), usesTopicIds, now);
    this.#sessions.set(session.id, session);
    return session;
  }

  #evictOne(now: number, newSize: number): boolean {
    let stale: FetchSession | null = null;
    let smallest: FetchSession | null = null;
    for (const s of this.#sessions.values()) {
      if (now - s.lastUsedMs > this.#evictionMs && (!stale || s.lastUsedMs < stale.lastUsedMs)) {
        stale = s;
      }
      if (now - s.createdMs > this.#evictionMs) {
        if (
          !smallest || s.partitions.size < smallest.partitions.size ||
          (s.partitions.size === smallest.partitions.size && s.lastUsedMs < smallest.lastUsedMs)
        ) smallest = s;
      }
    }
    const victim = stale ?? (smallest && smallest.partitions.size < newSize ? smallest : null);
    if (!victim) return false;
    this.#sessions.delete(victim.id);
    this.#evictions++;
    return true;
  }

  #newId(): number {
    for (;;) {
      const id = crypto.getRandomValues(new Uint32Array(1))[0] & 0x7fffffff;
      if (id !== 0 && !this.#sessions.has(id)) return id;
    }
  }
}

/** Session epochs count up from 1 and wrap to 1 after int32's maximum (as Kafka's do). */
export function nextEpoch(epoch: number): number {
  return epoch >= 0x7fffffff ? 1 : epoch + 1;
}
