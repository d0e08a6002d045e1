/**
 * The in-memory `MetadataStore` and the key-value state machine it shares
 * with the embedded (durable) store.
 *
 * `KvStateMachine` is pure and synchronous: entries, revisions, compares and
 * the resolution of operations into changes. `MemoryMetadataStore` adds
 * leases (TTL on the injected clock), watches and the write pipeline; the
 * embedded store extends it and only adds persistence through the
 * `persist` / `waitDurable` hooks, so the semantics cannot drift apart.
 *
 * Semantics (etcd's): one global revision, incremented once per write that
 * changes something (a delete of a missing key changes nothing); an entry
 * carries createRevision, modRevision, version (writes since creation) and
 * its lease. A transaction evaluates its compares and applies the success or
 * the failure branch atomically; like etcd, a branch may not write the same
 * key twice. A put that names a missing lease fails with `LeaseExpiredError`
 * and applies nothing. Revoking an unknown lease is a no-op.
 *
 * Ordering: writes are evaluated and applied in call order, synchronously
 * when called, so concurrent compare-and-swaps on one key have exactly one
 * winner. A read or a write's result is returned only once every write it
 * may have observed is durable. Watch events are delivered in revision
 * order, after the write is durable and before the write's promise
 * resolves (in this in-memory store that is synchronously, inside the
 * call); a failed write delivers nothing. A watcher sees every write that
 * becomes visible after `watch` returns. Exceptions thrown by a watcher are
 * logged and swallowed.
 *
 * Must not import anything that knows about Kafka messages.
 */

import { type Clock, SystemClock, type TimerHandle } from "../util/clock.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import {
  type Compare,
  type KvEntry,
  type Lease,
  LeaseExpiredError,
  type MetadataStore,
  MetadataStoreError,
  type Operation,
  type TxnResult,
  validateTxnBranch,
  type WatchEvent,
} from "./metadata_store.ts";

export { MAX_TXN_BYTES, MAX_TXN_OPERATIONS } from "./metadata_store.ts";
/** Longest lease TTL accepted. */
export const MAX_LEASE_TTL_MS = 24 * 60 * 60 * 1000;
/** Rough per-entry overhead used to estimate the live state size. */
const ENTRY_OVERHEAD_BYTES = 48;

/** One resolved change of a committed write: what the log records and recovery replays. */
export type KvChange =
  | { kind: "put"; key: string; value: Uint8Array; lease: number }
  | { kind: "delete"; key: string };

/** An entry as stored; `value` is owned by the state machine and never handed out. */
export interface StoredEntry {
  value: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
}

/** Keys, values and revisions; no clock, no I/O, no leases' timing. */
export class KvStateMachine {
  #revision = 0;
  readonly #entries = new Map<string, StoredEntry>();
  /** Every key, sorted, so prefix ranges cost O(log n + k). */
  readonly #sortedKeys: string[] = [];
  readonly #leaseKeys = new Map<number, Set<string>>();
  #liveBytes = 0;
  #maxLeaseId = 0;

  get revision(): number {
    return this.#revision;
  }
  /** Estimated bytes of the live state (keys, values, per-entry overhead). */
  get liveBytes(): number {
    return this.#liveBytes;
  }
  get size(): number {
    return this.#entries.size;
  }
  /** Highest lease id any applied put referenced. */
  get maxLeaseId(): number {
    return this.#maxLeaseId;
  }

  /** A copy of the entry, or null. */
  entry(key: string): KvEntry | null {
    const stored = this.#entries.get(key);
    return stored ? toKvEntry(key, stored) : null;
  }

  /** Copies of the entries under `prefix`, sorted by key. */
  range(prefix: string): KvEntry[] {
    return this.keysWithPrefix(prefix).map((key) => toKvEntry(key, this.#entries.get(key)!));
  }

  keysWithPrefix(prefix: string): string[] {
    const keys = this.#sortedKeys;
    const out: string[] = [];
    for (let i = lowerBound(keys, prefix); i < keys.length && keys[i].startsWith(prefix); i++) {
      out.push(keys[i]);
    }
    return out;
  }

  keysOfLease(leaseId: number): string[] {
    return [...(this.#leaseKeys.get(leaseId) ?? [])].sort();
  }

  /** Every stored entry in key order (snapshots). The entries must not be modified. */
  *storedEntries(): Generator<[string, StoredEntry]> {
    for (const key of this.#sortedKeys) yield [key, this.#entries.get(key)!];
  }

  holds(compare: Compare): boolean {
    const stored = this.#entries.get(compare.key);
    switch (compare.target) {
      case "modRevision":
        return (stored?.modRevision ?? 0) === compare.equals;
      case "version":
        return (stored?.version ?? 0) === compare.equals;
      case "value":
        return stored !== undefined && bytesEqual(stored.value, compare.equals);
      case "exists":
        return (stored !== undefined) === compare.equals;
    }
  }

  /**
   * Resolves operations into changes against the current state without
   * applying them. Values are copied, so callers may reuse their buffers.
   */
  plan(operations: readonly Operation[]): KvChange[] {
    const changes: KvChange[] = [];
    for (const op of operations) {
      switch (op.op) {
        case "put":
          changes.push({ kind: "put", key: op.key, value: op.value.slice(), lease: op.lease ?? 0 });
          break;
        case "delete":
          if (this.#entries.has(op.key)) changes.push({ kind: "delete", key: op.key });
          break;
        case "deletePrefix":
          for (const key of this.keysWithPrefix(op.prefix)) changes.push({ kind: "delete", key });
          break;
      }
    }
    return changes;
  }

  /**
   * Applies the changes of the write with `revision` (the next revision) and
   * returns its watch events. Recovery replays logged changes through here.
   */
  apply(revision: number, changes: readonly KvChange[]): WatchEvent[] {
    if (revision !== this.#revision + 1 || changes.length === 0) {
      throw new Error(
        `Broken invariant: applying revision ${revision} with ${changes.length} changes ` +
          `at revision ${this.#revision}`,
      );
    }
    this.#revision = revision;
    const events: WatchEvent[] = [];
    /** Keys this write deleted that are still in #sortedKeys: removed in one pass at the end. */
    const unsorted = new Set<string>();
    for (const change of changes) {
      if (change.kind === "put") {
        const stored = this.#put(revision, change.key, change.value, change.lease, unsorted);
        // Shares the stored value: stored values are never mutated, and
        // watchers receive copies.
        events.push({ type: "put", entry: { key: change.key, ...stored } });
      } else if (this.#delete(change.key, unsorted)) {
        events.push({ type: "delete", key: change.key, modRevision: revision });
      }
    }
    this.#unsort(unsorted);
    return events;
  }

  /** Restores one entry from a snapshot; `revision` is set separately. */
  load(key: string, stored: StoredEntry): void {
    if (this.#entries.has(key)) throw new Error(`Broken invariant: snapshot repeats key "${key}"`);
    this.#insertKey(key);
    this.#entries.set(key, stored);
    this.#attach(key, stored.lease);
    this.#liveBytes += key.length + stored.value.length + ENTRY_OVERHEAD_BYTES;
  }

  /** Sets the revision after loading a snapshot. */
  restoreRevision(revision: number): void {
    if (revision < this.#revision) {
      throw new Error(`Broken invariant: revision ${revision} is below ${this.#revision}`);
    }
    this.#revision = revision;
  }

  #put(
    revision: number,
    key: string,
    value: Uint8Array,
    lease: number,
    unsorted: Set<string>,
  ): StoredEntry {
    const previous = this.#entries.get(key);
    if (previous) {
      this.#detach(key, previous.lease);
      this.#liveBytes += value.length - previous.value.length;
    } else {
      // A key deleted earlier in the same write is still in #sortedKeys.
      if (!unsorted.delete(key)) this.#insertKey(key);
      this.#liveBytes += key.length + value.length + ENTRY_OVERHEAD_BYTES;
    }
    const stored: StoredEntry = {
      value,
      createRevision: previous?.createRevision ?? revision,
      modRevision: revision,
      version: (previous?.version ?? 0) + 1,
      lease,
    };
    this.#entries.set(key, stored);
    this.#attach(key, lease);
    return stored;
  }

  /** The key stays in #sortedKeys until `#unsort`: it is added to `unsorted`. */
  #delete(key: string, unsorted: Set<string>): boolean {
    const previous = this.#entries.get(key);
    if (!previous) return false;
    this.#entries.delete(key);
    this.#detach(key, previous.lease);
    unsorted.add(key);
    this.#liveBytes -= key.length + previous.value.length + ENTRY_OVERHEAD_BYTES;
    return true;
  }

  /**
   * Removes deleted keys from #sortedKeys: one splice for a single key, else one pass over the
   * array from the first of them. A splice per key moved the rest of the array each time: with
   * ~60,000 keys, transactions that each delete 127 write-ahead index records took 37% of a
   * broker's CPU while its collection merged records.
   */
  #unsort(keys: Set<string>): void {
    if (keys.size === 0) return;
    const sorted = this.#sortedKeys;
    if (keys.size === 1) {
      const [key] = keys;
      sorted.splice(lowerBound(sorted, key), 1);
      return;
    }
    let first = sorted.length;
    for (const key of keys) first = Math.min(first, lowerBound(sorted, key));
    let kept = first;
    for (let i = first; i < sorted.length; i++) {
      if (!keys.has(sorted[i])) sorted[kept++] = sorted[i];
    }
    sorted.length = kept;
  }

  #insertKey(key: string): void {
    this.#sortedKeys.splice(lowerBound(this.#sortedKeys, key), 0, key);
  }

  #attach(key: string, lease: number): void {
    if (lease === 0) return;
    if (lease > this.#maxLeaseId) this.#maxLeaseId = lease;
    let keys = this.#leaseKeys.get(lease);
    if (!keys) this.#leaseKeys.set(lease, keys = new Set());
    keys.add(key);
  }

  #detach(key: string, lease: number): void {
    if (lease === 0) return;
    const keys = this.#leaseKeys.get(lease);
    keys?.delete(key);
    if (keys?.size === 0) this.#leaseKeys.delete(lease);
  }
}

export interface MemoryMetadataStoreOptions {
  clock?: Clock;
  logger?: Logger;
}

interface LeaseState {
  id: number;
  ttlMs: number;
  /** Monotonic deadline. */
  deadline: number;
  timer: TimerHandle;
}

interface Watcher {
  prefix: string;
  onEvent: (event: WatchEvent) => void;
  /** Only events of later revisions are delivered. */
  after: number;
  active: boolean;
}

interface WriteOutcome {
  succeeded: boolean;
  revision: number;
  changed: number;
}

export class MemoryMetadataStore implements MetadataStore {
  readonly #state: KvStateMachine;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #leases = new Map<number, LeaseState>();
  readonly #watchers = new Set<Watcher>();
  readonly #eventQueue: { revision: number; events: WatchEvent[] }[] = [];
  #delivering = false;
  /** Revision of the newest write whose events were published. */
  #visibleRevision: number;
  #nextLeaseId: number;
  #closed = false;
  #failure: MetadataStoreError | null = null;

  /** `state` lets a subclass start from recovered state. */
  constructor(options: MemoryMetadataStoreOptions = {}, state = new KvStateMachine()) {
    this.#clock = options.clock ?? new SystemClock();
    this.#logger = options.logger ?? silentLogger;
    this.#state = state;
    this.#visibleRevision = state.revision;
    this.#nextLeaseId = state.maxLeaseId + 1;
  }

  async get(key: string): Promise<KvEntry | null> {
    this.#checkUsable();
    const entry = this.#state.entry(key);
    await this.waitDurable(this.#state.revision);
    return entry;
  }

  async list(prefix: string): Promise<KvEntry[]> {
    this.#checkUsable();
    const entries = this.#state.range(prefix);
    await this.waitDurable(this.#state.revision);
    return entries;
  }

  async put(key: string, value: Uint8Array, options: { lease?: number } = {}): Promise<number> {
    const op: Operation = { op: "put", key, value, lease: options.lease };
    return (await this.#write([], [op], [])).revision;
  }

  async delete(key: string): Promise<boolean> {
    return (await this.#write([], [{ op: "delete", key }], [])).changed > 0;
  }

  async deletePrefix(prefix: string): Promise<number> {
    return (await this.#write([], [{ op: "deletePrefix", prefix }], [])).changed;
  }

  async txn(
    compares: Compare[],
    success: Operation[],
    failure: Operation[] = [],
  ): Promise<TxnResult> {
    const { succeeded, revision } = await this.#write(compares, success, failure);
    return { succeeded, revision };
  }

  grantLease(ttlMs: number): Promise<Lease> {
    try {
      this.#checkUsable();
    } catch (error) {
      return Promise.reject(error);
    }
    if (!(Number.isInteger(ttlMs) && ttlMs > 0 && ttlMs <= MAX_LEASE_TTL_MS)) {
      return Promise.reject(
        new RangeError(
          `Lease TTL must be an integer between 1 and ${MAX_LEASE_TTL_MS} ms, got ${ttlMs}`,
        ),
      );
    }
    const id = this.#nextLeaseId++;
    const lease: LeaseState = {
      id,
      ttlMs,
      deadline: this.#clock.monotonic() + ttlMs,
      timer: this.#clock.setTimeout(() => this.#onLeaseTimer(id), ttlMs),
    };
    this.#leases.set(id, lease);
    return Promise.resolve({ id, ttlMs });
  }

  keepAlive(leaseId: number): Promise<void> {
    try {
      this.#checkUsable();
      const lease = this.#liveLease(leaseId);
      lease.deadline = this.#clock.monotonic() + lease.ttlMs;
      // The timer re-arms itself for the new deadline when it fires.
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async revokeLease(leaseId: number): Promise<void> {
    this.#checkUsable();
    const lease = this.#leases.get(leaseId);
    if (!lease) return;
    await this.#endLease(lease);
  }

  watch(prefix: string, onEvent: (event: WatchEvent) => void): () => void {
    this.#checkUsable();
    const watcher: Watcher = { prefix, onEvent, after: this.#visibleRevision, active: true };
    this.#watchers.add(watcher);
    return () => {
      watcher.active = false;
      this.#watchers.delete(watcher);
    };
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const lease of this.#leases.values()) lease.timer.cancel();
    this.#leases.clear();
    for (const watcher of this.#watchers) watcher.active = false;
    this.#watchers.clear();
    return Promise.resolve();
  }

  /**
   * Persistence hook, called once per write after it was applied in memory,
   * in revision order. Returns a promise that resolves when the write is
   * durable (rejecting with `MetadataStoreError` if it cannot be), or
   * undefined when it is durable already.
   */
  protected persist(_revision: number, _changes: readonly KvChange[]): Promise<void> | undefined {
    return undefined;
  }

  /** Resolves once every write up to `revision` is durable and its events published. */
  protected waitDurable(_revision: number): Promise<void> | undefined {
    return undefined;
  }

  /** The state machine, for subclasses that snapshot it. */
  protected get state(): KvStateMachine {
    return this.#state;
  }

  protected get isClosed(): boolean {
    return this.#closed;
  }

  /** Puts the store in a failed state: every later call throws `error`. */
  protected fail(error: MetadataStoreError): void {
    this.#failure ??= error;
  }

  protected get logger(): Logger {
    return this.#logger;
  }

  async #write(
    compares: readonly Compare[],
    success: readonly Operation[],
    failure: readonly Operation[],
  ): Promise<WriteOutcome> {
    this.#checkUsable();
    validateTxnBranch(success);
    validateTxnBranch(failure);
    const succeeded = compares.every((compare) => this.#state.holds(compare));
    const operations = succeeded ? success : failure;
    for (const op of operations) {
      if (op.op === "put" && op.lease) this.#liveLease(op.lease);
    }
    const changes = this.#state.plan(operations);
    if (changes.length === 0) {
      // Nothing to write, but the compares may have observed writes that are not durable yet.
      const revision = this.#state.revision;
      await this.waitDurable(revision);
      return { succeeded, revision, changed: 0 };
    }
    const revision = await this.#commit(changes);
    return { succeeded, revision, changed: changes.length };
  }

  #commit(changes: readonly KvChange[]): Promise<number> {
    const revision = this.#state.revision + 1;
    const events = this.#state.apply(revision, changes);
    const durable = this.persist(revision, changes);
    if (!durable) {
      this.#publish(revision, events);
      return Promise.resolve(revision);
    }
    return durable.then(() => {
      this.#publish(revision, events);
      return revision;
    });
  }

  /** The lease, expiring it first if its deadline passed before its timer fired. */
  #liveLease(leaseId: number): LeaseState {
    const lease = this.#leases.get(leaseId);
    if (!lease) throw new LeaseExpiredError(leaseId);
    if (this.#clock.monotonic() >= lease.deadline) {
      this.#expire(lease);
      throw new LeaseExpiredError(leaseId);
    }
    return lease;
  }

  #onLeaseTimer(leaseId: number): void {
    const lease = this.#leases.get(leaseId);
    if (!lease) return;
    const remaining = lease.deadline - this.#clock.monotonic();
    if (remaining > 0) {
      lease.timer = this.#clock.setTimeout(() => this.#onLeaseTimer(leaseId), remaining);
      return;
    }
    this.#expire(lease);
  }

  #expire(lease: LeaseState): void {
    this.#logger.debug("Lease expired", { leaseId: lease.id, ttlMs: lease.ttlMs });
    this.#endLease(lease).catch((error) => {
      this.#logger.error("Cannot delete the keys of an expired lease", {
        leaseId: lease.id,
        error: String(error),
      });
    });
  }

  /** Forgets the lease and deletes its keys as one write. */
  async #endLease(lease: LeaseState): Promise<void> {
    this.#leases.delete(lease.id);
    lease.timer.cancel();
    if (this.#closed || this.#failure) return;
    const changes: KvChange[] = this.#state.keysOfLease(lease.id).map((key) => ({
      kind: "delete",
      key,
    }));
    if (changes.length > 0) await this.#commit(changes);
  }

  #publish(revision: number, events: WatchEvent[]): void {
    this.#visibleRevision = revision;
    if (this.#watchers.size === 0) return;
    this.#eventQueue.push({ revision, events });
    // A watcher that writes from its callback re-enters here; the outer
    // loop delivers that write's events after the current ones.
    if (this.#delivering) return;
    this.#delivering = true;
    try {
      for (let next = this.#eventQueue.shift(); next; next = this.#eventQueue.shift()) {
        this.#deliver(next.revision, next.events);
      }
    } finally {
      this.#delivering = false;
    }
  }

  #deliver(revision: number, events: WatchEvent[]): void {
    for (const watcher of [...this.#watchers]) {
      if (revision <= watcher.after) continue;
      for (const event of events) {
        if (!watcher.active) break;
        const key = event.type === "put" ? event.entry.key : event.key;
        if (!key.startsWith(watcher.prefix)) continue;
        try {
          watcher.onEvent(copyEvent(event));
        } catch (error) {
          this.#logger.error("Metadata watcher threw; event dropped for it", {
            prefix: watcher.prefix,
            key,
            error: String(error),
          });
        }
      }
    }
  }

  #checkUsable(): void {
    if (this.#failure) throw this.#failure;
    if (this.#closed) {
      throw new MetadataStoreError("Metadata store is closed; open a new one to continue");
    }
  }
}

function toKvEntry(key: string, stored: StoredEntry): KvEntry {
  return {
    key,
    value: stored.value.slice(),
    createRevision: stored.createRevision,
    modRevision: stored.modRevision,
    version: stored.version,
    lease: stored.lease,
  };
}

function copyEvent(event: WatchEvent): WatchEvent {
  if (event.type === "delete") return { ...event };
  return { type: "put", entry: { ...event.entry, value: event.entry.value.slice() } };
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** First index whose key is >= `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
