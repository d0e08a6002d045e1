/**
 * A `MetadataStore` on etcd v3: the metadata store of the distributed deployment. It speaks
 * etcd's JSON gateway through `etcd_http.ts` (which says why not gRPC).
 *
 * The interface is etcd's own model, so the mapping is direct: get/list are ranges (list pages
 * through the prefix at one revision), put/delete/deletePrefix are Put/DeleteRange, `txn` is a
 * Txn whose compares use mod_revision, version and value (`exists` is version > 0 / == 0), and
 * every `KvEntry` field comes from etcd's KeyValue. Keys are prefixed with `keyPrefix` (default
 * none: the cluster facade already puts everything under `/kafscale/`).
 *
 * Leases: TTLs are whole seconds in etcd, so `grantLease` rounds up and reports the TTL etcd
 * granted. Lease ids are chosen here (random, below 2^53) because etcd's own ids use all 64 bits
 * and a JavaScript number cannot hold them. `keepAlive` sends one keep-alive (a one-message
 * keep-alive stream); a lease etcd does not know (TTL 0) is `LeaseExpiredError`, and so is a put
 * that names one. Revoking an unknown lease is a no-op.
 *
 * Watches: one etcd watch stream on the whole `keyPrefix` range, started when the first watcher
 * registers at the revision this store last saw, fans events out in revision order to the
 * watchers whose prefix matches. It reconnects with backoff and resumes after the last delivered
 * revision; if etcd compacted that history away, the gap is logged and delivery resumes at the
 * compaction revision. As in the other stores, a write of this store resolves only after its
 * events reached the watchers, and a read only after the events of the entries it returns did
 * (bounded by `requestTimeoutMs`; on timeout a warning is logged and the call still resolves,
 * since the write is committed). Each call has its own HTTP connection, so without that wait a
 * read could see a write whose event the watch stream has not brought yet. Writes by other
 * clients reach watchers asynchronously, and so do deletions a read cannot name.
 *
 * Failures: every call has a deadline (`requestTimeoutMs`); every etcd or network failure is a
 * `MetadataStoreError` naming the operation and the endpoints. With several endpoints a call
 * that cannot connect to one is tried once on each other within its deadline. No retries
 * otherwise: callers retry, and a retried compare-and-swap could report failure for a write that
 * was applied.
 *
 * Limits inherited from etcd's defaults: a transaction may hold at most 128 operations
 * (`--max-txn-ops`) and 1.5 MiB (`--max-request-bytes`); etcd rejects larger ones, which surfaces
 * as `MetadataStoreError`.
 *
 * Must not import anything that knows about Kafka messages.
 */

import { EtcdHttp, type EtcdStream, EtcdUnreachableError, type Json } from "./etcd_http.ts";
import { base64ToBytes, bytesToBase64 } from "../util/base64.ts";
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

/** Bound on one call, and on a write waiting for its watch events. */
export const ETCD_REQUEST_TIMEOUT_MS_DEFAULT = 5_000;
/** Bound on the first contact in `open()`. */
export const ETCD_DIAL_TIMEOUT_MS_DEFAULT = 5_000;
/** Longest lease TTL accepted (as the other stores). */
export const ETCD_MAX_LEASE_TTL_MS = 24 * 60 * 60 * 1000;
/** Keys per range page of `list`. */
const LIST_PAGE_KEYS = 500;
/** Bound on the pages one `list` reads: 5 million keys. */
const LIST_MAX_PAGES = 10_000;
/** Tries to find an unused lease id before giving up (collisions are ~impossible). */
const MAX_LEASE_ID_ATTEMPTS = 5;
/** First and largest pause before reopening a broken watch stream. */
const WATCH_RETRY_MIN_DELAY_MS = 50;
const WATCH_RETRY_MAX_DELAY_MS = 2_000;
/** Bound on the writes waiting for their watch events at once. */
const MAX_DELIVERY_WAITERS = 100_000;
/**
 * A watch stream that says nothing for this long is reopened (resuming after what it delivered):
 * a connection that died without a word (a cut-off network) would otherwise hide every later
 * event. On a quiet cluster this costs one request per period.
 */
const WATCH_SILENCE_MAX_MS = 15_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface EtcdTlsSettings {
  /** CA bundle (PEM) that signed etcd's certificate; system roots when not set. */
  caFile?: string;
  /** Client certificate and key (PEM) for mutual TLS. */
  certFile?: string;
  keyFile?: string;
}

export interface EtcdMetadataStoreSettings {
  /** Client URLs, `http://host:2379` or `https://host:2379`. */
  endpoints: string[];
  /** etcd user; `password` is required with it. */
  username?: string;
  password?: string;
  /** TLS files; https endpoints use TLS with system roots even without them. */
  tls?: EtcdTlsSettings;
  /** Prepended to every key; listed and watched keys come back without it. Default "". */
  keyPrefix?: string;
  dialTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** A watch stream that says nothing this long is reopened. Default 15 s. */
  watchSilenceMaxMs?: number;
}

export interface EtcdMetadataStoreDeps {
  logger?: Logger;
  clock?: Clock;
}

interface Watcher {
  prefix: string;
  onEvent: (event: WatchEvent) => void;
  /** Only events of later revisions are delivered. */
  after: number;
  active: boolean;
}

interface DeliveryWaiter {
  revision: number;
  resolve: () => void;
  timer: TimerHandle;
}

export class EtcdMetadataStore implements MetadataStore {
  readonly #http: EtcdHttp;
  readonly #endpointsLabel: string;
  readonly #prefix: string;
  readonly #prefixBytes: Uint8Array;
  readonly #requestTimeoutMs: number;
  readonly #watchSilenceMaxMs: number;
  readonly #logger: Logger;
  readonly #clock: Clock;
  /** Highest store revision seen in any answer. */
  #revision = 0;
  readonly #watchers = new Set<Watcher>();
  #stream: EtcdStream | null = null;
  /** Reopens a watch stream that said nothing for `watchSilenceMaxMs`. */
  #silenceTimer: TimerHandle | null = null;
  /** A call found etcd unreachable since the last answer. */
  #unreachable = false;
  /** Whether a watch stream is open or being opened (or a reopen is scheduled). */
  #watching = false;
  /** Bumped whenever the stream is replaced, so callbacks of an old one are ignored. */
  #streamGeneration = 0;
  #reconnectTimer: TimerHandle | null = null;
  #reconnectDelayMs = WATCH_RETRY_MIN_DELAY_MS;
  /** Every event up to this revision has been dispatched to the watchers. */
  #deliveredRevision = 0;
  readonly #waiters: DeliveryWaiter[] = [];
  #closed = false;

  private constructor(
    settings: EtcdMetadataStoreSettings,
    http: EtcdHttp,
    deps: EtcdMetadataStoreDeps,
  ) {
    this.#endpointsLabel = settings.endpoints.join(",");
    this.#prefix = settings.keyPrefix ?? "";
    this.#prefixBytes = encoder.encode(this.#prefix);
    this.#requestTimeoutMs = settings.requestTimeoutMs ?? ETCD_REQUEST_TIMEOUT_MS_DEFAULT;
    this.#watchSilenceMaxMs = settings.watchSilenceMaxMs ?? WATCH_SILENCE_MAX_MS;
    this.#logger = deps.logger ?? silentLogger;
    this.#clock = deps.clock ?? new SystemClock();
    this.#http = http;
  }

  /**
   * Connects and checks that etcd answers a linearizable read within `dialTimeoutMs`; fails
   * with a message that says what to fix otherwise.
   */
  static async open(
    settings: EtcdMetadataStoreSettings,
    deps: EtcdMetadataStoreDeps = {},
  ): Promise<EtcdMetadataStore> {
    validateSettings(settings);
    const store = new EtcdMetadataStore(settings, await clientOf(settings), deps);
    try {
      await store.checkHealth(settings.dialTimeoutMs ?? ETCD_DIAL_TIMEOUT_MS_DEFAULT);
      return store;
    } catch (error) {
      await store.close();
      throw error;
    }
  }

  /** A linearizable read (it needs a leader): throws `MetadataStoreError` unless etcd serves. */
  async checkHealth(timeoutMs: number = this.#requestTimeoutMs): Promise<void> {
    this.#checkUsable();
    try {
      const response = await this.#http.call(
        "kv/range",
        { ...this.#range(""), limit: 1, keys_only: true },
        Date.now() + timeoutMs,
      );
      this.#observe(response.header);
    } catch (error) {
      throw new MetadataStoreError(
        `Cannot start: etcd at "${this.#endpointsLabel}" is not reachable: ${reasonOf(error)}; ` +
          `check "--etcd-endpoints", the credentials and TLS settings, and that etcd runs`,
        { cause: error },
      );
    }
  }

  get endpoints(): string {
    return this.#endpointsLabel;
  }

  async get(key: string): Promise<KvEntry | null> {
    const response = await this.#call(
      "read key",
      key,
      (deadline) => this.#http.call("kv/range", { key: this.#key(key) }, deadline),
    );
    const kv = response.kvs?.[0];
    if (!kv) return null;
    const entry = this.#entry(kv);
    await this.#waitDelivered(entry.modRevision);
    return entry;
  }

  async list(prefix: string): Promise<KvEntry[]> {
    const range = this.#range(prefix);
    const out: KvEntry[] = [];
    let from = range.key;
    let revision: number | undefined;
    for (let page = 0;; page++) {
      if (page >= LIST_MAX_PAGES) {
        throw new MetadataStoreError(
          `Cannot list prefix "${prefix}" in etcd: more than ${LIST_MAX_PAGES * LIST_PAGE_KEYS} ` +
            `keys; list a narrower prefix`,
        );
      }
      const response = await this.#call(
        "list prefix",
        prefix,
        (deadline) =>
          this.#http.call("kv/range", {
            key: from,
            range_end: range.range_end,
            limit: LIST_PAGE_KEYS,
            // Later pages read the first page's revision: one consistent snapshot.
            revision,
            sort_order: "ASCEND",
            sort_target: "KEY",
          }, deadline),
      );
      revision ??= Number(response.header?.revision ?? 0) || undefined;
      const kvs: Json[] = response.kvs ?? [];
      for (const kv of kvs) out.push(this.#entry(kv));
      const last = kvs.at(-1);
      if (!response.more || !last) break;
      const lastKey = gatewayBytes(last.key);
      const next = new Uint8Array(lastKey.length + 1);
      next.set(lastKey);
      from = bytesToBase64(next);
    }
    await this.#waitDelivered(out.reduce((max, e) => Math.max(max, e.modRevision), 0));
    // etcd orders by UTF-8 bytes; the interface orders as JavaScript compares strings.
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async put(key: string, value: Uint8Array, options: { lease?: number } = {}): Promise<number> {
    const lease = options.lease ?? 0;
    const response = await this.#call("write key", key, (deadline) =>
      this.#http.call(
        "kv/put",
        {
          key: this.#key(key),
          value: bytesToBase64(value),
          lease: lease === 0 ? undefined : lease,
        },
        deadline,
      ), [lease]);
    const revision = Number(response.header.revision);
    await this.#waitDelivered(revision);
    return revision;
  }

  async delete(key: string): Promise<boolean> {
    const response = await this.#call(
      "delete key",
      key,
      (deadline) => this.#http.call("kv/deleterange", { key: this.#key(key) }, deadline),
    );
    const deleted = Number(response.deleted ?? 0);
    if (deleted > 0) await this.#waitDelivered(Number(response.header.revision));
    return deleted > 0;
  }

  async deletePrefix(prefix: string): Promise<number> {
    const response = await this.#call(
      "delete prefix",
      prefix,
      (deadline) => this.#http.call("kv/deleterange", this.#range(prefix), deadline),
    );
    const deleted = Number(response.deleted ?? 0);
    if (deleted > 0) await this.#waitDelivered(Number(response.header.revision));
    return deleted;
  }

  async txn(
    compares: Compare[],
    success: Operation[],
    failure: Operation[] = [],
  ): Promise<TxnResult> {
    validateTxnBranch(success);
    validateTxnBranch(failure);
    const leases = [...success, ...failure].flatMap((op) =>
      op.op === "put" && op.lease ? [op.lease] : []
    );
    const label = compares[0]?.key ?? success[0]?.op ?? "";
    const response = await this.#call(
      "run a transaction on",
      label,
      (deadline) =>
        this.#http.call("kv/txn", {
          compare: compares.map((c) => this.#compare(c)),
          success: success.map((op) => this.#requestOp(op)),
          failure: failure.map((op) => this.#requestOp(op)),
        }, deadline),
      leases,
    );
    const revision = Number(response.header?.revision ?? 0);
    const responses: Json[] = response.responses ?? [];
    const changed = responses.some((r) =>
      r.response_put !== undefined && r.response_put !== null ||
      Number(r.response_delete_range?.deleted ?? 0) > 0
    );
    if (changed) await this.#waitDelivered(revision);
    return { succeeded: response.succeeded === true, revision };
  }

  async grantLease(ttlMs: number): Promise<Lease> {
    this.#checkUsable();
    if (!(Number.isInteger(ttlMs) && ttlMs > 0 && ttlMs <= ETCD_MAX_LEASE_TTL_MS)) {
      throw new RangeError(
        `Lease TTL must be an integer between 1 and ${ETCD_MAX_LEASE_TTL_MS} ms, got ${ttlMs}`,
      );
    }
    const ttlSeconds = Math.ceil(ttlMs / 1000);
    for (let attempt = 1;; attempt++) {
      const id = randomLeaseId();
      try {
        const response = await this.#call(
          "grant lease",
          String(id),
          (deadline) => this.#http.call("lease/grant", { TTL: ttlSeconds, ID: id }, deadline),
        );
        if (response.error) {
          throw new MetadataStoreError(`Cannot grant a lease in etcd: ${response.error}`);
        }
        return { id, ttlMs: Number(response.TTL ?? 0) * 1000 };
      } catch (error) {
        const taken = /lease already exists/.test(reasonOf(error));
        if (!taken || attempt >= MAX_LEASE_ID_ATTEMPTS) throw error;
      }
    }
  }

  async keepAlive(leaseId: number): Promise<void> {
    this.#checkUsable();
    const ttl = await this.#keepAliveOnce(leaseId);
    if (ttl <= 0) throw new LeaseExpiredError(leaseId);
  }

  async revokeLease(leaseId: number): Promise<void> {
    // Whether the revoke deletes keys of ours decides whether to wait for their events.
    const info = await this.#call(
      "read lease",
      String(leaseId),
      (deadline) => this.#http.call("lease/timetolive", { ID: leaseId, keys: true }, deadline),
    );
    if (Number(info.TTL ?? 0) < 0) return; // unknown or expired already
    const ownKeys = ((info.keys ?? []) as string[]).some((key) =>
      startsWith(gatewayBytes(key), this.#prefixBytes)
    );
    let revision: number;
    try {
      const response = await this.#call(
        "revoke lease",
        String(leaseId),
        (deadline) => this.#http.call("lease/revoke", { ID: leaseId }, deadline),
      );
      revision = Number(response.header?.revision ?? 0);
    } catch (error) {
      if (error instanceof LeaseExpiredError) return; // expired in between
      throw error;
    }
    if (ownKeys) await this.#waitDelivered(revision);
  }

  watch(prefix: string, onEvent: (event: WatchEvent) => void): () => void {
    this.#checkUsable();
    const watcher: Watcher = { prefix, onEvent, after: this.#revision, active: true };
    this.#watchers.add(watcher);
    if (!this.#watching) this.#startWatching();
    return () => {
      if (!watcher.active) return;
      watcher.active = false;
      this.#watchers.delete(watcher);
      if (this.#watchers.size === 0) this.#stopWatching();
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const watcher of this.#watchers) watcher.active = false;
    this.#watchers.clear();
    this.#stopWatching();
    this.#http.close();
    await Promise.resolve();
  }

  // ---- Calls --------------------------------------------------------------------------------

  /**
   * Runs one etcd call with a deadline; maps a missing lease (one of `leases`) to
   * `LeaseExpiredError` and every other failure to `MetadataStoreError`.
   */
  async #call<T>(
    operation: string,
    subject: string,
    fn: (deadline: number) => Promise<T>,
    leases: number[] = [],
  ): Promise<T> {
    this.#checkUsable();
    let response: T;
    try {
      response = await fn(Date.now() + this.#requestTimeoutMs);
    } catch (error) {
      if (/lease not found/.test(reasonOf(error))) {
        throw new LeaseExpiredError(await this.#missingLease(leases));
      }
      if (this.#closed) throw this.#closedError();
      if (error instanceof EtcdUnreachableError) this.#unreachable = true;
      throw new MetadataStoreError(
        `Cannot ${operation} "${subject}" in etcd at "${this.#endpointsLabel}": ` +
          `${reasonOf(error)}; check that etcd runs and is reachable, then retry`,
        { cause: error },
      );
    }
    const header = (response as { header?: Json }).header;
    if (header) this.#observe(header);
    if (this.#unreachable) {
      // etcd answers again after calls could not reach it: the watch stream's connection may
      // have died without a word (a restarted etcd behind a proxy), so it is reopened now
      // rather than after `watchSilenceMaxMs`.
      this.#unreachable = false;
      this.#reopenStream("etcd answers again after it was unreachable");
    }
    return response;
  }

  /** Which of the named leases etcd does not know (the first one, if it cannot tell). */
  async #missingLease(leases: number[]): Promise<number> {
    const distinct = [...new Set(leases)];
    if (distinct.length <= 1) return distinct[0] ?? 0;
    for (const id of distinct) {
      try {
        const info = await this.#http.call(
          "lease/timetolive",
          { ID: id },
          Date.now() + this.#requestTimeoutMs,
        );
        if (Number(info.TTL ?? 0) < 0) return id;
      } catch {
        break;
      }
    }
    return distinct[0];
  }

  /** One keep-alive round trip; returns the TTL etcd reports (0: unknown lease). */
  async #keepAliveOnce(leaseId: number): Promise<number> {
    let answer: Json;
    try {
      // A keep-alive stream of one message: etcd answers it and the stream ends.
      answer = await this.#http.call(
        "lease/keepalive",
        { ID: leaseId },
        Date.now() + this.#requestTimeoutMs,
      );
    } catch (error) {
      throw this.#keepAliveError(leaseId, error);
    }
    if (answer.error) throw this.#keepAliveError(leaseId, new Error(reasonOf(answer.error)));
    const result = answer.result ?? answer;
    this.#observe(result.header);
    return Number(result.TTL ?? 0);
  }

  #keepAliveError(leaseId: number, error: unknown): MetadataStoreError {
    if (this.#closed) return this.#closedError();
    return new MetadataStoreError(
      `Cannot keep lease ${leaseId} alive in etcd at "${this.#endpointsLabel}": ` +
        `${reasonOf(error)}; check that etcd runs and is reachable, then retry`,
      { cause: error },
    );
  }

  #observe(header: Json): void {
    const revision = Number(header?.revision ?? 0);
    if (revision > this.#revision) this.#revision = revision;
  }

  // ---- Mapping ------------------------------------------------------------------------------

  /** The key in etcd (with `keyPrefix`), base64 as the gateway takes it. */
  #key(key: string): string {
    return bytesToBase64(encoder.encode(this.#prefix + key));
  }

  /** The etcd range of every key starting with `prefix` (the whole keyspace for ""). */
  #range(prefix: string): { key: string; range_end: string } {
    const key = encoder.encode(this.#prefix + prefix);
    const zero = bytesToBase64(new Uint8Array([0]));
    if (key.length === 0) return { key: zero, range_end: zero };
    return { key: bytesToBase64(key), range_end: bytesToBase64(prefixEnd(key)) };
  }

  #entry(kv: Json): KvEntry {
    return {
      key: decoder.decode(gatewayBytes(kv.key)).slice(this.#prefix.length),
      value: gatewayBytes(kv.value),
      createRevision: Number(kv.create_revision ?? 0),
      modRevision: Number(kv.mod_revision ?? 0),
      version: Number(kv.version ?? 0),
      lease: Number(kv.lease ?? 0),
    };
  }

  #compare(compare: Compare): Json {
    const key = this.#key(compare.key);
    switch (compare.target) {
      case "modRevision":
        return { key, target: "MOD", result: "EQUAL", mod_revision: compare.equals };
      case "version":
        return { key, target: "VERSION", result: "EQUAL", version: compare.equals };
      case "value":
        return { key, target: "VALUE", result: "EQUAL", value: bytesToBase64(compare.equals) };
      case "exists":
        // A key exists while its version (writes since creation) is above 0.
        return compare.equals
          ? { key, target: "VERSION", result: "GREATER", version: 0 }
          : { key, target: "VERSION", result: "EQUAL", version: 0 };
    }
  }

  #requestOp(op: Operation): Json {
    switch (op.op) {
      case "put":
        return {
          request_put: {
            key: this.#key(op.key),
            value: bytesToBase64(op.value),
            lease: op.lease ? op.lease : undefined,
          },
        };
      case "delete":
        return { request_delete_range: { key: this.#key(op.key) } };
      case "deletePrefix":
        return { request_delete_range: this.#range(op.prefix) };
    }
  }

  // ---- Watches ------------------------------------------------------------------------------

  #startWatching(): void {
    this.#watching = true;
    this.#deliveredRevision = Math.max(this.#deliveredRevision, this.#revision);
    this.#reconnectDelayMs = WATCH_RETRY_MIN_DELAY_MS;
    this.#openStream();
  }

  #stopWatching(): void {
    this.#watching = false;
    this.#streamGeneration++;
    this.#reconnectTimer?.cancel();
    this.#reconnectTimer = null;
    this.#silenceTimer?.cancel();
    this.#silenceTimer = null;
    this.#stream?.cancel();
    this.#stream = null;
    for (const waiter of this.#waiters.splice(0)) {
      waiter.timer.cancel();
      waiter.resolve();
    }
  }

  #openStream(): void {
    const generation = ++this.#streamGeneration;
    const startRevision = this.#deliveredRevision + 1;
    this.#stream = this.#http.stream(
      "watch",
      { create_request: { ...this.#range(""), start_revision: startRevision } },
      (response) => {
        if (generation !== this.#streamGeneration) return;
        this.#armSilenceTimer(generation);
        this.#onWatchResponse(response, generation);
      },
      (error) => this.#onStreamBroken(generation, error ?? new Error("the stream ended")),
    );
    // Until etcd confirms the watch ("created", at once when it serves), the wait is one
    // request's: an etcd that is still starting can hold the request without answering.
    this.#armSilenceTimer(generation, this.#requestTimeoutMs);
  }

  /**
   * A stream with no answer for `watchSilenceMaxMs` is reopened (resuming after what it
   * delivered): a connection that died silently (a cut-off network) sends nothing, and a
   * reopened stream on a live one costs one request.
   */
  #armSilenceTimer(generation: number, silentMs = this.#watchSilenceMaxMs): void {
    this.#silenceTimer?.cancel();
    this.#silenceTimer = this.#clock.setTimeout(() => {
      this.#silenceTimer = null;
      if (generation !== this.#streamGeneration) return;
      this.#reopenStream(`the watch stream said nothing for ${silentMs} ms`);
    }, silentMs);
  }

  /** Replaces the watch stream at once (resuming after what it delivered), if one is open. */
  #reopenStream(reason: string): void {
    if (this.#closed || !this.#watching || this.#reconnectTimer !== null) return;
    this.#logger.debug("Reopening the etcd watch stream", { reason });
    this.#streamGeneration++;
    this.#silenceTimer?.cancel();
    this.#silenceTimer = null;
    this.#stream?.cancel();
    this.#stream = null;
    this.#openStream();
  }

  #onWatchResponse(response: Json, generation: number): void {
    if (response.canceled) {
      const compacted = Number(response.compact_revision ?? 0);
      if (compacted > 0) {
        this.#logger.error("etcd compacted watch history that was not delivered yet", {
          deliveredRevision: this.#deliveredRevision,
          compactRevision: compacted,
        });
        this.#deliveredRevision = Math.max(this.#deliveredRevision, compacted - 1);
      }
      this.#onStreamBroken(
        generation,
        new Error(`etcd canceled the watch: ${response.cancel_reason || "no reason given"}`),
      );
      return;
    }
    if (response.created) return;
    this.#reconnectDelayMs = WATCH_RETRY_MIN_DELAY_MS;
    const events: Json[] = response.events ?? [];
    if (events.length === 0) {
      // A progress notification: every event up to the header's revision was sent.
      this.#delivered(Number(response.header?.revision ?? 0));
      return;
    }
    let revision = this.#deliveredRevision;
    for (const event of events) {
      revision = Number(event.kv.mod_revision ?? 0);
      if (revision <= this.#deliveredRevision) continue; // replayed after a reconnect
      this.#dispatch(revision, this.#watchEvent(event.type, event.kv, revision));
    }
    this.#delivered(revision);
  }

  #watchEvent(type: string | undefined, kv: Json, revision: number): WatchEvent {
    const key = decoder.decode(gatewayBytes(kv.key)).slice(this.#prefix.length);
    // PUT is the enum's default, which the gateway leaves out.
    if (type === "DELETE") {
      return { type: "delete", key, modRevision: revision };
    }
    return { type: "put", entry: this.#entry(kv) };
  }

  #dispatch(revision: number, event: WatchEvent): void {
    const key = event.type === "put" ? event.entry.key : event.key;
    for (const watcher of [...this.#watchers]) {
      if (!watcher.active || revision <= watcher.after || !key.startsWith(watcher.prefix)) continue;
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

  #delivered(revision: number): void {
    if (revision <= this.#deliveredRevision) return;
    this.#deliveredRevision = revision;
    if (revision > this.#revision) this.#revision = revision;
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const waiter = this.#waiters[i];
      if (waiter.revision > revision) continue;
      this.#waiters.splice(i, 1);
      waiter.timer.cancel();
      waiter.resolve();
    }
  }

  #onStreamBroken(generation: number, error: unknown): void {
    if (generation !== this.#streamGeneration || this.#closed || !this.#watching) return;
    this.#streamGeneration++;
    const stream = this.#stream;
    this.#stream = null;
    stream?.cancel();
    this.#silenceTimer?.cancel();
    this.#silenceTimer = null;
    const delayMs = this.#reconnectDelayMs;
    this.#reconnectDelayMs = Math.min(WATCH_RETRY_MAX_DELAY_MS, delayMs * 2);
    this.#logger.warn("etcd watch stream broke; reopening", {
      endpoints: this.#endpointsLabel,
      resumeRevision: this.#deliveredRevision + 1,
      delayMs,
      error: reasonOf(error),
    });
    this.#reconnectTimer = this.#clock.setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#watching && !this.#closed) this.#openStream();
    }, delayMs);
  }

  /** Resolves once the watch delivered `revision` (at once when nobody watches). */
  #waitDelivered(revision: number): Promise<void> {
    if (!this.#watching || revision <= this.#deliveredRevision) return Promise.resolve();
    if (this.#waiters.length >= MAX_DELIVERY_WAITERS) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter: DeliveryWaiter = {
        revision,
        resolve,
        timer: this.#clock.setTimeout(() => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          this.#logger.warn("Watch events of a committed write are late; not waiting longer", {
            revision,
            deliveredRevision: this.#deliveredRevision,
            timeoutMs: this.#requestTimeoutMs,
          });
          // A stream that misses a committed write's events is likely dead: reopen it.
          this.#reopenStream("watch events of a committed write are late");
          resolve();
        }, this.#requestTimeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  #checkUsable(): void {
    if (this.#closed) throw this.#closedError();
  }

  #closedError(): MetadataStoreError {
    return new MetadataStoreError(
      `etcd metadata store for "${this.#endpointsLabel}" is closed; open a new one to continue`,
    );
  }
}

// ---- Helpers ----------------------------------------------------------------------------------

/** The gateway client: endpoints, credentials, and Deno's HTTP client with the TLS files. */
async function clientOf(settings: EtcdMetadataStoreSettings): Promise<EtcdHttp> {
  const tls = settings.tls;
  let client: Deno.HttpClient | undefined;
  if (tls && (tls.caFile || tls.certFile || tls.keyFile)) {
    const read = async (path: string | undefined, what: string) => {
      if (path === undefined) return undefined;
      try {
        return await Deno.readTextFile(path);
      } catch (error) {
        throw new MetadataStoreError(
          `Cannot start: cannot read the etcd TLS ${what} "${path}": ${reasonOf(error)}`,
          { cause: error },
        );
      }
    };
    const ca = await read(tls.caFile, "CA file");
    const cert = await read(tls.certFile, "certificate file");
    const key = await read(tls.keyFile, "key file");
    try {
      client = Deno.createHttpClient({
        ...(ca === undefined ? {} : { caCerts: [ca] }),
        ...(cert === undefined || key === undefined ? {} : { cert, key }),
      });
    } catch (error) {
      throw new MetadataStoreError(
        `Cannot start: the etcd TLS files are not usable: ${reasonOf(error)}; check ` +
          `"--etcd-ca-file", "--etcd-cert-file" and "--etcd-key-file"`,
        { cause: error },
      );
    }
  }
  return new EtcdHttp({
    endpoints: settings.endpoints,
    username: settings.username,
    password: settings.password,
    client,
  });
}

function validateSettings(settings: EtcdMetadataStoreSettings): void {
  if (!Array.isArray(settings.endpoints) || settings.endpoints.length === 0) {
    throw new TypeError('etcd setting "endpoints" needs at least one URL; set "--etcd-endpoints"');
  }
  for (const endpoint of settings.endpoints) {
    let url: URL | null = null;
    try {
      url = new URL(endpoint);
    } catch {
      // Reported below.
    }
    if (url === null || (url.protocol !== "http:" && url.protocol !== "https:") || !url.port) {
      throw new TypeError(
        `etcd setting "endpoints" must hold URLs like "http://127.0.0.1:2379", got "${endpoint}"`,
      );
    }
  }
  if (settings.password !== undefined && settings.username === undefined) {
    throw new TypeError('etcd setting "password" is set but "username" is not');
  }
  const tls = settings.tls;
  if (tls && (tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new TypeError('etcd TLS settings "certFile" and "keyFile" must be set together');
  }
  for (const name of ["dialTimeoutMs", "requestTimeoutMs"] as const) {
    const value = settings[name];
    if (value !== undefined && !(Number.isInteger(value) && value > 0 && value <= 3_600_000)) {
      throw new RangeError(
        `etcd setting "${name}" must be an integer from 1 to 3600000, got ${value}`,
      );
    }
  }
}

/** The smallest key greater than every key starting with `prefix` (etcd's "prefix end"). */
function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = prefix.slice();
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return new Uint8Array([0]); // all 0xff: to the end of the keyspace
}

/** A random positive lease id that a JavaScript number holds exactly. */
function randomLeaseId(): number {
  const [high, low] = crypto.getRandomValues(new Uint32Array(2));
  return ((high & 0x1f_ffff) * 2 ** 32 + low) || 1;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

function copyEvent(event: WatchEvent): WatchEvent {
  if (event.type === "delete") return { ...event };
  return { type: "put", entry: { ...event.entry, value: event.entry.value.slice() } };
}

/** A `bytes` field of a gateway answer: base64, and left out altogether when empty. */
function gatewayBytes(text: string | undefined): Uint8Array {
  return text ? base64ToBytes(text) : new Uint8Array(0);
}

function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // Some errors carry multi-line details; the first line is the reason.
  return message.split("\n")[0].trim();
}
