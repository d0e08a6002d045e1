/**
 * The cluster's domain records laid out on a `MetadataStore`: topics,
 * partition state and ownership, committed consumer offsets, group records,
 * broker registrations, the cluster id and the producer-id counter.
 *
 * Owns the key layout below and the transactions that keep it consistent:
 * atomic topic creation, partition acquisition with a monotonically
 * increasing epoch, and end-offset commits that are a compare-and-swap on the
 * partition state's revision (DESIGN "Durability and ownership invariants",
 * 1 and 3).
 *
 * Must not import from lib/protocol, lib/log, lib/coordinator or lib/broker:
 * values are JSON domain records, never Kafka wire types.
 *
 * Key layout (under a prefix, default `/kafscale/`):
 * - `topics/<topic>` → `TopicRecord`
 * - `partitions/<topic>/<partition>/state` → `PartitionState`
 * - `partitions/<topic>/<partition>/owner` → `PartitionOwner`, on the owner's lease
 * - `offsets/<encodeURIComponent(group)>/<topic>/<partition>` → `CommittedOffset`
 * - `groups/<encodeURIComponent(group)>` → opaque bytes (the coordinator's record)
 * - `consumer-groups/<encodeURIComponent(group)>` → opaque bytes: a KIP-848 group's members,
 *   epochs and assignments (lib/coordinator/consumer_group_record.ts), written as they change
 * - `group-owners/<encodeURIComponent(group)>` → `{ brokerId }`, on the coordinator's lease;
 *   its modRevision is the ownership epoch (`GroupOwner`)
 * - `brokers/<brokerId>` → `BrokerRegistration`, on the broker's lease
 * - `wal/<brokerId>/<fileId>/<round>` → `WalIndexRecord`: where one flush round put each
 *   partition's data in the write-ahead stream; written in the round's commit transaction,
 *   deleted once every range in it is sealed (or gone with retention or topic deletion).
 *   Collection merges a file's records into `wal/<brokerId>/<fileId>/<round>-m<random>`,
 *   naming only the ranges still needed (`replaceWalIndex`)
 * - `cluster/id` → the cluster id; `counters/producer-id` → next producer id
 * - `cluster/inter-broker-secret` → what brokers log in to each other with
 */

import { setImmediate } from "node:timers";
import { assignEpoch } from "./leader_epochs.ts";
import { bytesToBase64 } from "../util/base64.ts";
import {
  type Compare,
  type KvEntry,
  type Lease,
  type MetadataStore,
  MetadataStoreError,
  type Operation,
} from "./metadata_store.ts";

export const DEFAULT_METADATA_PREFIX = "/kafscale/";

/**
 * Most operations in one store transaction (etcd's default `--max-txn-ops`).
 * Larger multi-key writes are split into several transactions.
 */
export const TXN_OPS_MAX = 128;
/** Ranges `listWalIndex` decodes between two turns of the event loop. */
const WAL_INDEX_DECODE_SLICE_RANGES = 20_000;

/** Attempts of a compare-and-swap loop before giving up with a retriable error. */
export const CAS_ATTEMPTS_MAX = 16;

export type TopicState = "active" | "deleting";

export interface TopicRecord {
  name: string;
  /** Base64url (unpadded) of a random 16-byte UUID: 22 characters. */
  topicId: string;
  partitions: number;
  configs: Record<string, string>;
  createdMs: number;
  state: TopicState;
}

/** A topic to create: id, creation time and state are filled in when absent. */
export interface NewTopic {
  name: string;
  partitions: number;
  configs?: Record<string, string>;
  topicId?: string;
  createdMs?: number;
}

export interface PartitionState {
  /** The committed end offset: the high watermark. */
  endOffset: number;
  logStartOffset: number;
  /** The owner epoch; bumped by every acquisition. */
  epoch: number;
  /**
   * Offsets below this are in sealed segments; [sealedEnd, endOffset) are in
   * the write-ahead stream (`wal/` records). Absent in states written before
   * the write-ahead stream existed: everything is sealed (see `sealedEndOf`).
   */
  sealedEnd?: number;
  /** A compacted partition's cleaner state; absent until its first compaction. */
  compaction?: CompactionState;
  /** Open and aborted transactions (lib/log/txn_state.ts); absent when there are none. */
  txn?: StoredTxnState;
  /**
   * Leader epoch history, `[epoch, startOffset]` oldest first (lib/log/leader_epochs.ts): each
   * acquisition adds its epoch at the end offset it took over. Absent in states written before
   * leader epochs were kept.
   */
  epochs?: [number, number][];
}

/**
 * What compaction committed for a partition (README "Compaction"). Kept small: one entry per
 * sealed segment that compaction rewrote or first cleaned, dropped with the segment.
 */
/** A partition's transactions, stored (lib/log/txn_state.ts): arrays, to keep values small. */
export interface StoredTxnState {
  /** [producerId, producerEpoch, firstOffset] of open transactions. */
  open?: [number, number, number][];
  /** [producerId, firstOffset, lastOffset] of aborted transactions, in marker order. */
  aborted?: [number, number, number][];
  /** [producerId, decision] of the newest marker per producer. */
  markers?: [number, number][];
}

export interface CompactionState {
  /**
   * Base offset (decimal) -> [current generation, first cleaned at (unix ms)]. Generation 0 is
   * the segment as sealed (`segment-<base>.kfs`), n > 0 its n-th rewrite
   * (`segment-<base>.g<n>.kfs`). Segments not listed are generation 0, never cleaned.
   */
  segments: Record<string, [number, number]>;
  /** Every offset below this was deduplicated by an earlier run (Kafka's cleaner checkpoint). */
  cleanedThrough: number;
}

/** Where sealed segments end: the state's `sealedEnd`, or its end offset for older states. */
export function sealedEndOf(state: PartitionState): number {
  return state.sealedEnd ?? state.endOffset;
}

/**
 * One partition's data in a write-ahead object: the chunk at `position`
 * (`length` bytes, header included) holds offsets [baseOffset, endOffset),
 * written by the owner at `epoch` of the topic with id `topicId`.
 */
export interface WalRangeRecord {
  topic: string;
  topicId: string;
  partition: number;
  epoch: number;
  baseOffset: number;
  endOffset: number;
  position: number;
  length: number;
}

/** What one flush round wrote to the write-ahead stream. */
export interface WalIndexRecord {
  /** The write-ahead object's key in the object store. */
  object: string;
  ranges: WalRangeRecord[];
}

/**
 * A `wal/` record with its id: `<brokerId>/<fileId>/<round>` as a flush round wrote it,
 * `<brokerId>/<fileId>/<round>-m<random>` once collection merged records of one object.
 */
export interface WalIndexEntry {
  id: string;
  record: WalIndexRecord;
  /** The key's revision when it was listed (`listWalIndex`). */
  modRevision?: number;
}

/** Stored form of a range: an array, to keep etcd values small. */
type StoredWalRange = [string, string, number, number, number, number, number, number];

export interface PartitionOwner {
  brokerId: number;
  epoch: number;
}

/** `ClusterMetadata.listPartitionLeadership`: who owns a topic's partitions, and what is next. */
export interface PartitionLeadership {
  /** Live owners, by partition. */
  owners: Map<number, PartitionOwner>;
  /** The epoch the next acquisition of a partition nobody owns takes. */
  nextEpoch(partition: number): number;
}

/**
 * The broker coordinating a group. `epoch` is the owner key's modRevision: the store revision
 * of the acquisition, so it grows with every take-over (no key outlives the lease to count
 * with), and every write of the owner compares it (a stale owner's write is refused).
 */
export interface GroupOwner {
  brokerId: number;
  epoch: number;
}

export interface CommittedOffset {
  offset: number;
  leaderEpoch: number;
  metadata: string | null;
  commitTimestampMs: number;
}

export interface OffsetCommitEntry extends CommittedOffset {
  topic: string;
  partition: number;
}

export interface TopicPartitionRef {
  topic: string;
  partition: number;
}

export interface BrokerRegistration {
  brokerId: number;
  /** The first listener's advertised endpoint. */
  host: string;
  port: number;
  rack: string | null;
  startedMs: number;
  /** Every listener's advertised endpoint, by listener name (absent before listeners existed). */
  listeners?: { name: string; protocol?: string; host: string; port: number }[];
}

export interface AcquiredPartition {
  epoch: number;
  /** The topic's id at acquisition (write-ahead ranges of a deleted namesake are not ours). */
  topicId: string;
  state: PartitionState;
  /** The modRevision of the state key after acquisition: the first commit's expected revision. */
  stateRevision: number;
}

export type AcquireResult = AcquiredPartition | "owned-by-other" | "unknown-partition";

export interface PartitionCommit {
  topic: string;
  partition: number;
  /** The state key's modRevision this owner last wrote (or read at acquisition). */
  expectedRevision: number;
  state: PartitionState;
}

/** Per commit: the state key's new modRevision, or "fenced" when another owner took over. */
export type CommitResult = number | "fenced";

/** A salted SCRAM credential as stored (lib/security/scram.ts ScramCredential): no password. */
export interface StoredScramCredential {
  mechanism: "SCRAM-SHA-256" | "SCRAM-SHA-512";
  salt: string;
  iterations: number;
  storedKey: string;
  serverKey: string;
}

/** A stored record with the revision a compare-and-swap compares. */
export interface StoredEntry {
  value: Uint8Array;
  modRevision: number;
}

export interface GroupRecordEntry {
  value: Uint8Array;
  modRevision: number;
}

export const INITIAL_PARTITION_STATE: Readonly<PartitionState> = Object.freeze({
  endOffset: 0,
  logStartOffset: 0,
  epoch: 0,
});

/** The epoch an acquisition of a partition with this state and owner key (if any) takes. */
function nextAcquisitionEpoch(state: PartitionState, owner: PartitionOwner | null): number {
  return Math.max(state.epoch, owner?.epoch ?? 0) + 1;
}

const TOPIC_NAME_PATTERN = /^[a-zA-Z0-9._-]{1,249}$/;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

function decodeJson<T>(entry: KvEntry): T {
  try {
    return JSON.parse(decoder.decode(entry.value)) as T;
  } catch (cause) {
    throw new MetadataStoreError(
      `Cannot parse metadata key "${entry.key}": the stored value is not JSON; ` +
        `repair or delete the key`,
      { cause },
    );
  }
}

function encodeWalIndex(record: WalIndexRecord): Uint8Array {
  const ranges: StoredWalRange[] = record.ranges.map((r) => [
    r.topic,
    r.topicId,
    r.partition,
    r.epoch,
    r.baseOffset,
    r.endOffset,
    r.position,
    r.length,
  ]);
  return encodeJson({ object: record.object, ranges });
}

function decodeWalIndex(entry: KvEntry): WalIndexRecord {
  const stored = decodeJson<{ object: string; ranges: StoredWalRange[] }>(entry);
  if (typeof stored?.object !== "string" || !Array.isArray(stored.ranges)) {
    throw new MetadataStoreError(`Write-ahead index "${entry.key}" is malformed; repair it`);
  }
  return {
    object: stored.object,
    ranges: stored.ranges.map((r) => ({
      topic: r[0],
      topicId: r[1],
      partition: r[2],
      epoch: r[3],
      baseOffset: r[4],
      endOffset: r[5],
      position: r[6],
      length: r[7],
    })),
  };
}

function assertTopicName(name: string): void {
  if (!TOPIC_NAME_PATTERN.test(name)) {
    throw new Error(`Invalid topic name "${name}": expected 1-249 of [a-zA-Z0-9._-]`);
  }
}

function assertPartition(partition: number): void {
  if (!Number.isSafeInteger(partition) || partition < 0) {
    throw new Error(`Invalid partition ${partition}: expected a non-negative integer`);
  }
}

/** A random 16-byte id as unpadded base64url: Kafka's topic id / cluster id text form. */
export function randomUuidBase64(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export class ClusterMetadata {
  readonly #store: MetadataStore;
  readonly #prefix: string;
  readonly #now: () => number;
  readonly #txnOpsMax: number;

  /**
   * `txnOpsMax`: most operations the store takes in one transaction (etcd's
   * `--max-txn-ops`, 128 by default); bigger multi-key writes are split.
   */
  constructor(
    store: MetadataStore,
    options: { prefix?: string; now?: () => number; txnOpsMax?: number } = {},
  ) {
    const prefix = options.prefix ?? DEFAULT_METADATA_PREFIX;
    if (!prefix.endsWith("/")) {
      throw new Error(`Invalid metadata prefix "${prefix}": it must end with "/"`);
    }
    this.#store = store;
    this.#prefix = prefix;
    this.#now = options.now ?? Date.now;
    this.#txnOpsMax = options.txnOpsMax ?? TXN_OPS_MAX;
    if (!Number.isSafeInteger(this.#txnOpsMax) || this.#txnOpsMax < 2) {
      throw new RangeError(`Invalid txnOpsMax ${options.txnOpsMax}: expected an integer >= 2`);
    }
  }

  /** The underlying store (leases and watches for callers that need them). */
  get store(): MetadataStore {
    return this.#store;
  }

  get prefix(): string {
    return this.#prefix;
  }

  // ---- keys -------------------------------------------------------------

  topicKey(name: string): string {
    return `${this.#prefix}topics/${name}`;
  }
  partitionStateKey(topic: string, partition: number): string {
    return `${this.#prefix}partitions/${topic}/${partition}/state`;
  }
  partitionOwnerKey(topic: string, partition: number): string {
    return `${this.#prefix}partitions/${topic}/${partition}/owner`;
  }
  #groupOffsetsPrefix(group: string): string {
    return `${this.#prefix}offsets/${encodeURIComponent(group)}/`;
  }
  #offsetKey(group: string, topic: string, partition: number): string {
    return `${this.#groupOffsetsPrefix(group)}${topic}/${partition}`;
  }
  #groupKey(group: string): string {
    return `${this.#prefix}groups/${encodeURIComponent(group)}`;
  }
  #consumerGroupKey(group: string): string {
    return `${this.#prefix}consumer-groups/${encodeURIComponent(group)}`;
  }
  groupOwnerKey(group: string): string {
    return `${this.#prefix}group-owners/${encodeURIComponent(group)}`;
  }
  #brokerKey(brokerId: number): string {
    return `${this.#prefix}brokers/${brokerId}`;
  }
  #walKey(id: string): string {
    return `${this.#prefix}wal/${id}`;
  }

  /**
   * Calls `onChange` for every topic record written (`record`) or deleted
   * (`null`) after this call. Returns a function that stops watching.
   */
  watchTopics(onChange: (name: string, record: TopicRecord | null) => void): () => void {
    const prefix = `${this.#prefix}topics/`;
    return this.#store.watch(prefix, (event) => {
      if (event.type === "delete") {
        onChange(event.key.slice(prefix.length), null);
        return;
      }
      onChange(event.entry.key.slice(prefix.length), decodeJson<TopicRecord>(event.entry));
    });
  }

  // ---- leases -----------------------------------------------------------

  grantLease(ttlMs: number): Promise<Lease> {
    return this.#store.grantLease(ttlMs);
  }
  keepAlive(leaseId: number): Promise<void> {
    return this.#store.keepAlive(leaseId);
  }
  revokeLease(leaseId: number): Promise<void> {
    return this.#store.revokeLease(leaseId);
  }

  // ---- cluster id and counters -----------------------------------------

  async getOrCreateClusterId(): Promise<string> {
    const key = `${this.#prefix}cluster/id`;
    for (let attempt = 0; attempt < CAS_ATTEMPTS_MAX; attempt++) {
      const existing = await this.#store.get(key);
      if (existing) return decoder.decode(existing.value);
      const id = randomUuidBase64();
      const result = await this.#store.txn(
        [{ key, target: "exists", equals: false }],
        [{ op: "put", key, value: encoder.encode(id) }],
      );
      if (result.succeeded) return id;
    }
    throw new MetadataStoreError(`Cannot create the cluster id: contended; retry`);
  }

  /**
   * The secret brokers log in to each other with (lib/broker/inter_broker.ts), created by the
   * first broker that needs it: 32 random bytes, base64.
   */
  async getOrCreateInterBrokerSecret(): Promise<string> {
    const key = `${this.#prefix}cluster/inter-broker-secret`;
    for (let attempt = 0; attempt < CAS_ATTEMPTS_MAX; attempt++) {
      const existing = await this.#store.get(key);
      if (existing) return decoder.decode(existing.value);
      const secret = bytesToBase64(crypto.getRandomValues(new Uint8Array(32)));
      const result = await this.#store.txn(
        [{ key, target: "exists", equals: false }],
        [{ op: "put", key, value: encoder.encode(secret) }],
      );
      if (result.succeeded) return secret;
    }
    throw new MetadataStoreError(`Cannot create the inter-broker secret: contended; retry`);
  }

  /** Reserves `size` producer ids; returns the first. */
  async allocateProducerIdBlock(size: number): Promise<number> {
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new Error(`Invalid producer id block size ${size}: expected a positive integer`);
    }
    const key = `${this.#prefix}counters/producer-id`;
    for (let attempt = 0; attempt < CAS_ATTEMPTS_MAX; attempt++) {
      const entry = await this.#store.get(key);
      const start = entry ? decodeJson<number>(entry) : 0;
      const result = await this.#store.txn(
        [{ key, target: "modRevision", equals: entry?.modRevision ?? 0 }],
        [{ op: "put", key, value: encodeJson(start + size) }],
      );
      if (result.succeeded) return start;
    }
    throw new MetadataStoreError(`Cannot allocate producer ids: the counter is contended; retry`);
  }

  // ---- topics -----------------------------------------------------------

  /** Creates the topic and its partition states atomically. */
  async createTopic(topic: NewTopic): Promise<"created" | "exists"> {
    assertTopicName(topic.name);
    if (!Number.isSafeInteger(topic.partitions) || topic.partitions <= 0) {
      throw new Error(
        `Invalid partition count ${topic.partitions} for topic "${topic.name}": ` +
          `expected a positive integer`,
      );
    }
    const record: TopicRecord = {
      name: topic.name,
      topicId: topic.topicId ?? randomUuidBase64(),
      partitions: topic.partitions,
      configs: { ...topic.configs },
      createdMs: topic.createdMs ?? this.#now(),
      state: "active",
    };
    const key = this.topicKey(topic.name);
    // A partition whose state key is absent reads as INITIAL_PARTITION_STATE,
    // so states beyond one transaction's op limit may follow in later ones.
    const states = this.#initialStateOps(topic.name, 0, topic.partitions);
    const first = states.slice(0, this.#txnOpsMax - 1);
    const result = await this.#store.txn(
      [{ key, target: "exists", equals: false }],
      [{ op: "put", key, value: encodeJson(record) }, ...first.map((s) => s.op)],
    );
    if (!result.succeeded) return "exists";
    await this.#createStatesIfAbsent(states.slice(first.length));
    return "created";
  }

  async getTopic(name: string): Promise<TopicRecord | null> {
    const entry = await this.#store.get(this.topicKey(name));
    return entry ? decodeJson<TopicRecord>(entry) : null;
  }

  async listTopics(): Promise<TopicRecord[]> {
    const entries = await this.#store.list(`${this.#prefix}topics/`);
    return entries.map((e) => decodeJson<TopicRecord>(e));
  }

  /** Returns the updated record, or null when the topic does not exist. */
  setTopicState(name: string, state: TopicState): Promise<TopicRecord | null> {
    return this.#updateTopic(name, (t) => ({ ...t, state }));
  }

  /**
   * Applies config changes: a `null` value removes the key. With `replace`,
   * the result holds exactly the non-null entries of `changes`.
   */
  updateTopicConfigs(
    name: string,
    changes: Record<string, string | null>,
    options: { replace?: boolean } = {},
  ): Promise<TopicRecord | null> {
    return this.#updateTopic(name, (t) => {
      const configs: Record<string, string> = options.replace ? {} : { ...t.configs };
      for (const [k, v] of Object.entries(changes)) {
        if (v === null) delete configs[k];
        else configs[k] = v;
      }
      return { ...t, configs };
    });
  }

  /** Grows the topic to `newCount` partitions. */
  async addPartitions(
    name: string,
    newCount: number,
  ): Promise<TopicRecord | "not-found" | "invalid-count"> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS_MAX; attempt++) {
      const entry = await this.#store.get(this.topicKey(name));
      if (!entry) return "not-found";
      const topic = decodeJson<TopicRecord>(entry);
      if (!Number.isSafeInteger(newCount) || newCount <= topic.partitions) return "invalid-count";
      const updated = { ...topic, partitions: newCount };
      const states = this.#initialStateOps(name, topic.partitions, newCount);
      const first = states.slice(0, this.#txnOpsMax - 1);
      const result = await this.#store.txn(
        [{ key: entry.key, target: "modRevision", equals: entry.modRevision }],
        [{ op: "put", key: entry.key, value: encodeJson(updated) }, ...first.map((s) => s.op)],
      );
      if (result.succeeded) {
        await this.#createStatesIfAbsent(states.slice(first.length));
        return updated;
      }
    }
    throw new MetadataStoreError(`Cannot add partitions to "${name}": contended; retry`);
  }

  /**
   * Removes the topic record, every partition state and owner, and the
   * committed offsets of every group for this topic.
   */
  async deleteTopicMetadata(name: string): Promise<void> {
    assertTopicName(name);
    await this.#store.txn([], [
      { op: "delete", key: this.topicKey(name) },
      { op: "deletePrefix", prefix: `${this.#prefix}partitions/${name}/` },
    ]);
    const offsetsPrefix = `${this.#prefix}offsets/`;
    const entries = await this.#store.list(offsetsPrefix);
    const doomed = entries
      .filter((e) => e.key.slice(offsetsPrefix.length).split("/")[1] === name)
      .map((e): Operation => ({ op: "delete", key: e.key }));
    for (const chunk of chunks(doomed, this.#txnOpsMax)) await this.#store.txn([], chunk);
  }

  async #updateTopic(
    name: string,
    update: (t: TopicRecord) => TopicRecord,
  ): Promise<TopicRecord | null> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS_MAX; attempt++) {
      const entry = await this.#store.get(this.topicKey(name));
      if (!entry) return null;
      const updated = update(decodeJson<TopicRecord>(entry));
      const result = await this.#store.txn(
        [{ key: entry.key, target: "modRevision", equals: entry.modRevision }],
        [{ op: "put", key: entry.key, value: encodeJson(updated) }],
      );
      if (result.succeeded) return updated;
    }
    throw new MetadataStoreError(`Cannot update topic "${name}": contended; retry`);
  }

  #initialStateOps(topic: string, from: number, to: number): { key: string; op: Operation }[] {
    const out: { key: string; op: Operation }[] = [];
    for (let p = from; p < to; p++) {
      const key = this.partitionStateKey(topic, p);
      out.push({ key, op: { op: "put", key, value: encodeJson(INITIAL_PARTITION_STATE) } });
    }
    return out;
  }

  async #createStatesIfAbsent(states: { key: string; op: Operation }[]): Promise<void> {
    for (const s of states) {
      await this.#store.txn([{ key: s.key, target: "exists", equals: false }], [s.op]);
    }
  }

  // ---- partitions -------------------------------------------------------

  /** The state (INITIAL_PARTITION_STATE with revision 0 when the key is absent). */
  async getPartitionState(
    topic: string,
    partition: number,
  ): Promise<{ state: PartitionState; modRevision: number }> {
    const entry = await this.#store.get(this.partitionStateKey(topic, partition));
    if (!entry) return { state: { ...INITIAL_PARTITION_STATE }, modRevision: 0 };
    return { state: decodeJson<PartitionState>(entry), modRevision: entry.modRevision };
  }

  async getPartitionOwner(topic: string, partition: number): Promise<PartitionOwner | null> {
    const entry = await this.#store.get(this.partitionOwnerKey(topic, partition));
    return entry ? decodeJson<PartitionOwner>(entry) : null;
  }

  /**
   * The topic's live owners, and for each partition nobody owns the epoch its next acquisition
   * takes (`nextAcquisitionEpoch`, as `acquirePartition` computes it; 1 for a new partition). One
   * listing of the topic's partition keys.
   */
  async listPartitionLeadership(topic: string): Promise<PartitionLeadership> {
    const prefix = `${this.#prefix}partitions/${topic}/`;
    const owners = new Map<number, PartitionOwner>();
    const states = new Map<number, KvEntry>();
    for (const entry of await this.#store.list(prefix)) {
      const [partition, leaf] = entry.key.slice(prefix.length).split("/");
      if (leaf === "owner") owners.set(Number(partition), decodeJson<PartitionOwner>(entry));
      else if (leaf === "state") states.set(Number(partition), entry);
    }
    return {
      owners,
      nextEpoch(partition: number): number {
        const state = states.get(partition);
        return nextAcquisitionEpoch(
          state ? decodeJson<PartitionState>(state) : INITIAL_PARTITION_STATE,
          null,
        );
      },
    };
  }

  /**
   * Takes ownership of a partition for `brokerId` on `leaseId`: succeeds when
   * the owner key is absent (its lease expired or it was released) or already
   * held by this broker id (a restart). Bumps the epoch in both the owner and
   * the state key, so a previous owner's next commit is fenced.
   */
  async acquirePartition(
    topic: string,
    partition: number,
    brokerId: number,
    leaseId: number,
  ): Promise<AcquireResult> {
    assertTopicName(topic);
    assertPartition(partition);
    const topicKey = this.topicKey(topic);
    const ownerKey = this.partitionOwnerKey(topic, partition);
    const stateKey = this.partitionStateKey(topic, partition);
    for (let attempt = 0; attempt < CAS_ATTEMPTS_MAX; attempt++) {
      const [topicEntry, ownerEntry, stateEntry] = await Promise.all([
        this.#store.get(topicKey),
        this.#store.get(ownerKey),
        this.#store.get(stateKey),
      ]);
      if (!topicEntry) return "unknown-partition";
      const record = decodeJson<TopicRecord>(topicEntry);
      if (record.state !== "active" || partition >= record.partitions) return "unknown-partition";
      const owner = ownerEntry ? decodeJson<PartitionOwner>(ownerEntry) : null;
      if (owner && owner.brokerId !== brokerId) return "owned-by-other";
      const previous = stateEntry
        ? decodeJson<PartitionState>(stateEntry)
        : INITIAL_PARTITION_STATE;
      const epoch = nextAcquisitionEpoch(previous, owner);
      const epochs = assignEpoch(
        previous.epochs,
        epoch,
        previous.endOffset,
        previous.logStartOffset,
      );
      const state: PartitionState = { ...previous, epoch, epochs };
      const result = await this.#store.txn(
        [
          { key: topicKey, target: "modRevision", equals: topicEntry.modRevision },
          { key: ownerKey, target: "modRevision", equals: ownerEntry?.modRevision ?? 0 },
          { key: stateKey, target: "modRevision", equals: stateEntry?.modRevision ?? 0 },
        ],
        [
          { op: "put", key: ownerKey, value: encodeJson({ brokerId, epoch }), lease: leaseId },
          { op: "put", key: stateKey, value: encodeJson(state) },
        ],
      );
      if (result.succeeded) {
        return { epoch, topicId: record.topicId, state, stateRevision: result.revision };
      }
    }
    throw new MetadataStoreError(
      `Cannot acquire partition "${topic}-${partition}": contended; retry`,
    );
  }

  /** Deletes the owner key if it still records this owner; returns whether it did. */
  async releasePartition(
    topic: string,
    partition: number,
    owner: PartitionOwner,
  ): Promise<boolean> {
    const key = this.partitionOwnerKey(topic, partition);
    const result = await this.#store.txn(
      [{
        key,
        target: "value",
        equals: encodeJson({ brokerId: owner.brokerId, epoch: owner.epoch }),
      }],
      [{ op: "delete", key }],
    );
    return result.succeeded;
  }

  /**
   * Commits new partition states, each a compare-and-swap on the state key's
   * modRevision (the owner is the only writer of its state, so a changed
   * revision means another broker acquired it), together with the flush
   * round's write-ahead index record when there is one. One transaction for
   * everything (split at `txnOpsMax` operations); when one fails,
   * per-partition transactions find out which partitions were fenced and
   * commit the rest. The index record is always written no later than the
   * first state that points into it.
   */
  async commitPartitions(
    commits: PartitionCommit[],
    wal?: WalIndexEntry,
  ): Promise<CommitResult[]> {
    if (commits.length === 0 && !wal) return [];
    const seen = new Set<string>();
    for (const c of commits) {
      const key = this.partitionStateKey(c.topic, c.partition);
      if (seen.has(key)) throw new Error(`Duplicate commit for "${c.topic}-${c.partition}"`);
      seen.add(key);
    }
    const results: CommitResult[] = new Array(commits.length);
    const indexed = commits.map((commit, i) => ({ commit, i }));
    const compare = (c: PartitionCommit): Compare => ({
      key: this.partitionStateKey(c.topic, c.partition),
      target: "modRevision",
      equals: c.expectedRevision,
    });
    const put = (c: PartitionCommit): Operation => ({
      op: "put",
      key: this.partitionStateKey(c.topic, c.partition),
      value: encodeJson(c.state),
    });
    let walOp: Operation | null = wal
      ? { op: "put", key: this.#walKey(wal.id), value: encodeWalIndex(wal.record) }
      : null;
    const size = this.#txnOpsMax - 1;
    const groups = indexed.length > 0 ? chunks(indexed, size) : [[]];
    for (const chunk of groups) {
      const extra = walOp ? [walOp] : [];
      const all = await this.#store.txn(
        chunk.map((x) => compare(x.commit)),
        [...extra, ...chunk.map((x) => put(x.commit))],
      );
      if (all.succeeded) {
        walOp = null;
        for (const x of chunk) results[x.i] = all.revision;
        continue;
      }
      if (walOp) {
        await this.#store.txn([], [walOp]);
        walOp = null;
      }
      await Promise.all(chunk.map(async (x) => {
        const one = await this.#store.txn([compare(x.commit)], [put(x.commit)]);
        results[x.i] = one.succeeded ? one.revision : "fenced";
      }));
    }
    return results;
  }

  /**
   * Every write-ahead index record of the cluster, oldest round first per file. Decoded in
   * slices with a turn of the event loop between them: under one-record produce over 1,000
   * partitions the index holds ~30,000 records naming ~400,000 ranges, and decoding them in one
   * go held every request for ~0.3 s.
   */
  async listWalIndex(): Promise<WalIndexEntry[]> {
    const prefix = `${this.#prefix}wal/`;
    const entries = await this.#store.list(prefix);
    const out: WalIndexEntry[] = new Array(entries.length);
    let ranges = 0;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      const record = decodeWalIndex(entry);
      out[i] = { id: entry.key.slice(prefix.length), record, modRevision: entry.modRevision };
      ranges += record.ranges.length;
      if (ranges >= WAL_INDEX_DECODE_SLICE_RANGES) {
        ranges = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    return out;
  }

  /** Most records `replaceWalIndex` replaces in one transaction. */
  get walIndexReplaceMax(): number {
    return this.#txnOpsMax - 1;
  }

  /**
   * Replaces index records (as listed: each with its `modRevision`) with one record, in one
   * transaction that runs only if none of them changed or went since the listing and the new
   * id is free. Returns whether it ran: false when another broker's collection got there first.
   */
  async replaceWalIndex(sources: WalIndexEntry[], merged: WalIndexEntry): Promise<boolean> {
    if (sources.length === 0 || sources.length > this.walIndexReplaceMax) {
      throw new RangeError(
        `Cannot replace ${sources.length} index records in one transaction ` +
          `(1 to ${this.walIndexReplaceMax})`,
      );
    }
    const compares: Compare[] = sources.map((s) => {
      if (s.modRevision === undefined) {
        throw new RangeError(`Index record "${s.id}" has no listed revision`);
      }
      return { key: this.#walKey(s.id), target: "modRevision", equals: s.modRevision };
    });
    compares.push({ key: this.#walKey(merged.id), target: "exists", equals: false });
    const result = await this.#store.txn(compares, [
      { op: "put", key: this.#walKey(merged.id), value: encodeWalIndex(merged.record) },
      ...sources.map((s): Operation => ({ op: "delete", key: this.#walKey(s.id) })),
    ]);
    return result.succeeded;
  }

  /** Deletes write-ahead index records (their objects are gone or about to be). */
  async deleteWalIndex(ids: string[]): Promise<void> {
    const ops = ids.map((id): Operation => ({ op: "delete", key: this.#walKey(id) }));
    for (const chunk of chunks(ops, this.#txnOpsMax)) await this.#store.txn([], chunk);
  }

  /** Every partition state of the cluster, by `"<topic>/<partition>"`. */
  async listPartitionStates(): Promise<Map<string, PartitionState>> {
    const prefix = `${this.#prefix}partitions/`;
    const out = new Map<string, PartitionState>();
    for (const entry of await this.#store.list(prefix)) {
      const rest = entry.key.slice(prefix.length);
      if (!rest.endsWith("/state")) continue;
      out.set(rest.slice(0, -"/state".length), decodeJson<PartitionState>(entry));
    }
    return out;
  }

  // ---- committed offsets ------------------------------------------------

  async commitOffsets(group: string, entries: OffsetCommitEntry[]): Promise<void> {
    const ops = this.#offsetOps(group, entries);
    for (const chunk of chunks(ops, this.#txnOpsMax)) await this.#store.txn([], chunk);
  }

  #offsetOps(group: string, entries: OffsetCommitEntry[]): Operation[] {
    return entries.map((e): Operation => {
      assertTopicName(e.topic);
      assertPartition(e.partition);
      const value: CommittedOffset = {
        offset: e.offset,
        leaderEpoch: e.leaderEpoch,
        metadata: e.metadata,
        commitTimestampMs: e.commitTimestampMs,
      };
      return {
        op: "put",
        key: this.#offsetKey(group, e.topic, e.partition),
        value: encodeJson(value),
      };
    });
  }

  /** Every committed offset of the group, sorted by topic then partition. */
  async fetchOffsets(group: string): Promise<OffsetCommitEntry[]> {
    const prefix = this.#groupOffsetsPrefix(group);
    const out: OffsetCommitEntry[] = [];
    for (const entry of await this.#store.list(prefix)) {
      const [topic, partition] = entry.key.slice(prefix.length).split("/");
      out.push({ topic, partition: Number(partition), ...decodeJson<CommittedOffset>(entry) });
    }
    return out.sort((a, b) =>
      a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition
    );
  }

  /**
   * Deletes the group's committed offsets: all of them, or only `partitions`.
   * Returns how many existed.
   */
  async deleteGroupOffsets(group: string, partitions?: TopicPartitionRef[]): Promise<number> {
    if (!partitions) return await this.#store.deletePrefix(this.#groupOffsetsPrefix(group));
    let deleted = 0;
    for (const p of partitions) {
      if (await this.#store.delete(this.#offsetKey(group, p.topic, p.partition))) deleted++;
    }
    return deleted;
  }

  // ---- groups -----------------------------------------------------------

  putGroup(group: string, value: Uint8Array): Promise<number> {
    return this.#store.put(this.#groupKey(group), value);
  }

  /**
   * Writes the group record only if its modRevision is still `expectedRevision` (0: absent)
   * and, when `ownerEpoch` is given, the group's owner key still has that epoch.
   */
  async putGroupIfRevision(
    group: string,
    value: Uint8Array,
    expectedRevision: number,
    ownerEpoch?: number,
  ): Promise<number | "conflict"> {
    const key = this.#groupKey(group);
    const compares: Compare[] = [{ key, target: "modRevision", equals: expectedRevision }];
    if (ownerEpoch !== undefined) compares.push(this.#ownerCompare(group, ownerEpoch));
    const result = await this.#store.txn(compares, [{ op: "put", key, value }]);
    return result.succeeded ? result.revision : "conflict";
  }

  async getGroup(group: string): Promise<GroupRecordEntry | null> {
    const entry = await this.#store.get(this.#groupKey(group));
    return entry ? { value: entry.value, modRevision: entry.modRevision } : null;
  }

  /** Names of every group with a record or committed offsets, sorted. */
  async listGroups(): Promise<string[]> {
    const names = new Set<string>();
    const groupsPrefix = `${this.#prefix}groups/`;
    for (const e of await this.#store.list(groupsPrefix)) {
      names.add(decodeURIComponent(e.key.slice(groupsPrefix.length)));
    }
    const offsetsPrefix = `${this.#prefix}offsets/`;
    for (const e of await this.#store.list(offsetsPrefix)) {
      names.add(decodeURIComponent(e.key.slice(offsetsPrefix.length).split("/")[0]));
    }
    return [...names].sort();
  }

  /** Deletes the group's records and all its committed offsets; whether anything existed. */
  async deleteGroup(group: string): Promise<boolean> {
    const existed = await this.#store.delete(this.#groupKey(group));
    const consumer = await this.#store.delete(this.#consumerGroupKey(group));
    const offsets = await this.#store.deletePrefix(this.#groupOffsetsPrefix(group));
    return existed || consumer || offsets > 0;
  }

  /** Every stored KIP-848 group record (`consumer-groups/<group>`), by group id. */
  async listConsumerGroups(): Promise<{ groupId: string; value: Uint8Array }[]> {
    const prefix = `${this.#prefix}consumer-groups/`;
    return (await this.#store.list(prefix)).map((e) => ({
      groupId: decodeURIComponent(e.key.slice(prefix.length)),
      value: e.value,
    }));
  }

  /** A KIP-848 group's record (`consumer-groups/<group>`), or null. */
  async getConsumerGroup(group: string): Promise<GroupRecordEntry | null> {
    const entry = await this.#store.get(this.#consumerGroupKey(group));
    return entry ? { value: entry.value, modRevision: entry.modRevision } : null;
  }

  /**
   * Writes a KIP-848 group's record (`value`), or deletes it (`null`), only if its modRevision
   * is still `expectedRevision` (0: absent) and, when `ownerEpoch` is given, the group's owner
   * key still has that epoch. The new modRevision (0 after a delete), or "conflict".
   */
  async putConsumerGroupIfRevision(
    group: string,
    value: Uint8Array | null,
    expectedRevision: number,
    ownerEpoch?: number,
  ): Promise<number | "conflict"> {
    const key = this.#consumerGroupKey(group);
    const compares: Compare[] = [{ key, target: "modRevision", equals: expectedRevision }];
    if (ownerEpoch !== undefined) compares.push(this.#ownerCompare(group, ownerEpoch));
    const op: Operation = value === null ? { op: "delete", key } : { op: "put", key, value };
    const result = await this.#store.txn(compares, [op]);
    if (!result.succeeded) return "conflict";
    return value === null ? 0 : result.revision;
  }

  // ---- transactions -----------------------------------------------------

  #txnKey(transactionalId: string): string {
    return `${this.#prefix}txns/${encodeURIComponent(transactionalId)}`;
  }
  #txnOffsetsPrefix(group: string): string {
    return `${this.#prefix}txn-offsets/${encodeURIComponent(group)}/`;
  }

  /** A transactional id's coordinator record (lib/coordinator/txn_state.ts), or null. */
  async getTransaction(transactionalId: string): Promise<StoredEntry | null> {
    const entry = await this.#store.get(this.#txnKey(transactionalId));
    return entry ? { value: entry.value, modRevision: entry.modRevision } : null;
  }

  /** Writes the record if its modRevision is still `expectedRevision` (0: absent). */
  async putTransactionIfRevision(
    transactionalId: string,
    value: Uint8Array,
    expectedRevision: number,
  ): Promise<number | "conflict"> {
    const key = this.#txnKey(transactionalId);
    const result = await this.#store.txn(
      [{ key, target: "modRevision", equals: expectedRevision }],
      [{ op: "put", key, value }],
    );
    return result.succeeded ? result.revision : "conflict";
  }

  /** Deletes the record if its modRevision is still `expectedRevision`. */
  async deleteTransactionIfRevision(
    transactionalId: string,
    expectedRevision: number,
  ): Promise<boolean> {
    const key = this.#txnKey(transactionalId);
    const result = await this.#store.txn(
      [{ key, target: "modRevision", equals: expectedRevision }],
      [{ op: "delete", key }],
    );
    return result.succeeded;
  }

  /** Every transactional id's record. */
  async listTransactions(): Promise<(StoredEntry & { transactionalId: string })[]> {
    const prefix = `${this.#prefix}txns/`;
    return (await this.#store.list(prefix)).map((e) => ({
      transactionalId: decodeURIComponent(e.key.slice(prefix.length)),
      value: e.value,
      modRevision: e.modRevision,
    }));
  }

  /**
   * Adds offsets a transaction commits for `group` (TxnOffsetCommit): kept apart, visible only
   * once the transaction commits (`completeTxnOffsets`).
   */
  async putTxnOffsets(
    group: string,
    producerId: number,
    entries: OffsetCommitEntry[],
  ): Promise<void> {
    const ops = entries.map((e): Operation => {
      assertTopicName(e.topic);
      assertPartition(e.partition);
      return {
        op: "put",
        key: `${this.#txnOffsetsPrefix(group)}${producerId}/${e.topic}/${e.partition}`,
        value: encodeJson(e),
      };
    });
    for (const chunk of chunks(ops, this.#txnOpsMax)) await this.#store.txn([], chunk);
  }

  /** The group's offsets pending in transactions, by producer id. */
  async listTxnOffsets(group: string): Promise<Map<number, OffsetCommitEntry[]>> {
    const prefix = this.#txnOffsetsPrefix(group);
    const out = new Map<number, OffsetCommitEntry[]>();
    for (const e of await this.#store.list(prefix)) {
      const producerId = Number(e.key.slice(prefix.length).split("/")[0]);
      const list = out.get(producerId) ?? [];
      list.push(decodeJson<OffsetCommitEntry>(e));
      out.set(producerId, list);
    }
    return out;
  }

  /**
   * Ends a transaction's pending offsets for `group`: on commit they become the group's
   * committed offsets, in the same store transaction that deletes them (idempotent: a second
   * call finds nothing). Returns how many were pending.
   */
  async completeTxnOffsets(group: string, producerId: number, commit: boolean): Promise<number> {
    const prefix = `${this.#txnOffsetsPrefix(group)}${producerId}/`;
    const pending = await this.#store.list(prefix);
    if (pending.length === 0) return 0;
    const entries = pending.map((e) => decodeJson<OffsetCommitEntry>(e));
    const ops: Operation[] = commit ? this.#offsetOps(group, entries) : [];
    for (const e of pending) ops.push({ op: "delete", key: e.key });
    for (const chunk of chunks(ops, this.#txnOpsMax)) await this.#store.txn([], chunk);
    return pending.length;
  }

  // ---- ACLs --------------------------------------------------------------

  #aclPrefix(): string {
    return `${this.#prefix}acls/`;
  }

  /** Stores ACL bindings under their ids (lib/security/acl.ts); an existing one stays as is. */
  async putAcls(entries: { id: string; binding: unknown }[]): Promise<void> {
    const ops = entries.map((e): Operation => ({
      op: "put",
      key: `${this.#aclPrefix()}${encodeURIComponent(e.id)}`,
      value: encodeJson(e.binding),
    }));
    for (const chunk of chunks(ops, this.#txnOpsMax)) await this.#store.txn([], chunk);
  }

  async deleteAcls(ids: string[]): Promise<void> {
    const ops = ids.map((id): Operation => ({
      op: "delete",
      key: `${this.#aclPrefix()}${encodeURIComponent(id)}`,
    }));
    for (const chunk of chunks(ops, this.#txnOpsMax)) await this.#store.txn([], chunk);
  }

  /** Every ACL binding of the cluster. */
  async listAcls<T>(): Promise<T[]> {
    return (await this.#store.list(this.#aclPrefix())).map((e) => decodeJson<T>(e));
  }

  /** Calls `onChange` after any ACL binding was written or deleted (by any broker). */
  watchAcls(onChange: () => void): () => void {
    return this.#store.watch(this.#aclPrefix(), () => onChange());
  }

  // ---- SCRAM credentials ------------------------------------------------

  #scramKey(user: string, mechanism: string): string {
    return `${this.#prefix}scram/${encodeURIComponent(user)}/${mechanism}`;
  }

  /** A user's salted credential for one SCRAM mechanism (lib/security/scram.ts), or null. */
  async getScramCredential(user: string, mechanism: string): Promise<StoredScramCredential | null> {
    const entry = await this.#store.get(this.#scramKey(user, mechanism));
    return entry ? decodeJson<StoredScramCredential>(entry) : null;
  }

  async putScramCredential(user: string, credential: StoredScramCredential): Promise<void> {
    await this.#store.put(this.#scramKey(user, credential.mechanism), encodeJson(credential));
  }

  /** Returns whether the credential existed. */
  deleteScramCredential(user: string, mechanism: string): Promise<boolean> {
    return this.#store.delete(this.#scramKey(user, mechanism));
  }

  /** Every user with SCRAM credentials: user -> [mechanism, iterations][] (no secrets). */
  async listScramCredentials(): Promise<Map<string, [string, number][]>> {
    const prefix = `${this.#prefix}scram/`;
    const out = new Map<string, [string, number][]>();
    for (const e of await this.#store.list(prefix)) {
      const [user, mechanism] = e.key.slice(prefix.length).split("/");
      const name = decodeURIComponent(user);
      const list = out.get(name) ?? [];
      list.push([mechanism, decodeJson<StoredScramCredential>(e).iterations]);
      out.set(name, list);
    }
    return out;
  }

  // ---- group ownership --------------------------------------------------

  /** The group's live owner (the key vanishes with its lease), or null. */
  async getGroupOwner(group: string): Promise<GroupOwner | null> {
    const entry = await this.#store.get(this.groupOwnerKey(group));
    if (!entry) return null;
    return { brokerId: decodeJson<{ brokerId: number }>(entry).brokerId, epoch: entry.modRevision };
  }

  /**
   * Takes the coordination of a group for `brokerId` on `leaseId`: succeeds when the owner key
   * is absent (its lease expired or it was released) or already held by this broker id (a
   * restart, or a new session lease), and always writes the key, so the epoch is new and an
   * earlier owner's writes are refused. The caller loads the group from the store afterwards.
   */
  async acquireGroup(
    group: string,
    brokerId: number,
    leaseId: number,
  ): Promise<GroupOwner | "owned-by-other"> {
    const key = this.groupOwnerKey(group);
    for (let attempt = 0; attempt < CAS_ATTEMPTS_MAX; attempt++) {
      const entry = await this.#store.get(key);
      if (entry && decodeJson<{ brokerId: number }>(entry).brokerId !== brokerId) {
        return "owned-by-other";
      }
      const result = await this.#store.txn(
        [{ key, target: "modRevision", equals: entry?.modRevision ?? 0 }],
        [{ op: "put", key, value: encodeJson({ brokerId }), lease: leaseId }],
      );
      if (result.succeeded) return { brokerId, epoch: result.revision };
    }
    throw new MetadataStoreError(`Cannot acquire group "${group}": contended; retry`);
  }

  /** Deletes the owner key if it still has this epoch; returns whether it did. */
  async releaseGroup(group: string, epoch: number): Promise<boolean> {
    const result = await this.#store.txn(
      [this.#ownerCompare(group, epoch)],
      [{ op: "delete", key: this.groupOwnerKey(group) }],
    );
    return result.succeeded;
  }

  /**
   * Commits offsets as the group's owner: every transaction also compares the owner key's
   * epoch. "fenced" when another broker took the group over (nothing of the failed chunk, nor
   * of later chunks, is written).
   */
  async commitOffsetsAsOwner(
    group: string,
    entries: OffsetCommitEntry[],
    ownerEpoch: number,
  ): Promise<"committed" | "fenced"> {
    const ops = this.#offsetOps(group, entries);
    const owner = this.#ownerCompare(group, ownerEpoch);
    for (const chunk of chunks(ops, this.#txnOpsMax)) {
      if (!(await this.#store.txn([owner], chunk)).succeeded) return "fenced";
    }
    return "committed";
  }

  #ownerCompare(group: string, epoch: number): Compare {
    return { key: this.groupOwnerKey(group), target: "modRevision", equals: epoch };
  }

  // ---- brokers ----------------------------------------------------------

  async registerBroker(registration: BrokerRegistration, leaseId: number): Promise<void> {
    await this.#store.put(this.#brokerKey(registration.brokerId), encodeJson(registration), {
      lease: leaseId,
    });
  }

  async deregisterBroker(brokerId: number): Promise<void> {
    await this.#store.delete(this.#brokerKey(brokerId));
  }

  async listBrokers(): Promise<BrokerRegistration[]> {
    const entries = await this.#store.list(`${this.#prefix}brokers/`);
    return entries.map((e) => decodeJson<BrokerRegistration>(e)).sort((a, b) =>
      a.brokerId - b.brokerId
    );
  }

  // ---- control surface (lib/control): ownership listing and watch, drain markers ----------
  // Drain markers: `draining/<brokerId>` → `BrokerDrain`, on the draining broker's session
  // lease (gone when it stops); Metadata gives unowned partitions to brokers not draining them.

  /** Every live partition owner key, with its modRevision (the watch's ordering). */
  async listPartitionOwnerEntries(): Promise<PartitionOwnerEvent[]> {
    const prefix = `${this.#prefix}partitions/`;
    const out: PartitionOwnerEvent[] = [];
    for (const entry of await this.#store.list(prefix)) {
      const ref = ownerKeyRef(entry.key.slice(prefix.length));
      if (ref) {
        out.push({
          ...ref,
          owner: decodeJson<PartitionOwner>(entry),
          modRevision: entry.modRevision,
        });
      }
    }
    return out;
  }

  /**
   * Calls `onEvent` for every owner key written (an acquisition: `owner` set) or deleted (a
   * release or an expired lease: `owner` null) after this call. Returns a function that stops.
   */
  watchPartitionOwners(onEvent: (event: PartitionOwnerEvent) => void): () => void {
    const prefix = `${this.#prefix}partitions/`;
    return this.#store.watch(prefix, (event) => {
      const key = event.type === "put" ? event.entry.key : event.key;
      const ref = ownerKeyRef(key.slice(prefix.length));
      if (!ref) return;
      if (event.type === "delete") {
        onEvent({ ...ref, owner: null, modRevision: event.modRevision });
      } else {
        let owner: PartitionOwner | null = null;
        try {
          owner = decodeJson<PartitionOwner>(event.entry);
        } catch {
          return; // an unreadable owner key is reported by the readers that need it
        }
        onEvent({ ...ref, owner, modRevision: event.entry.modRevision });
      }
    });
  }

  /** Publishes (or replaces) this broker's drain marker on its session lease. */
  async putBrokerDrain(drain: BrokerDrain, leaseId: number): Promise<void> {
    await this.#store.put(`${this.#prefix}draining/${drain.brokerId}`, encodeJson(drain), {
      lease: leaseId,
    });
  }

  /** The drain markers of live brokers. */
  async listBrokerDrains(): Promise<BrokerDrain[]> {
    const entries = await this.#store.list(`${this.#prefix}draining/`);
    return entries.map((e) => decodeJson<BrokerDrain>(e));
  }

  /**
   * Calls `onChange` when the broker's drain marker is deleted (its lease expired) or its
   * registration is written (registered again, on a new lease), so a draining broker can publish
   * its marker again. Returns a function that stops watching.
   */
  watchBrokerDrainLease(brokerId: number, onChange: () => void): () => void {
    const marker = `${this.#prefix}draining/${brokerId}`;
    const registration = this.#brokerKey(brokerId);
    const stops = [
      this.#store.watch(marker, (event) => {
        if (event.type === "delete" && event.key === marker) onChange();
      }),
      this.#store.watch(registration, (event) => {
        if (event.type === "put" && event.entry.key === registration) onChange();
      }),
    ];
    return () => stops.forEach((stop) => stop());
  }
}

/** A partition owner key's state: `owner` null when the key was deleted. */
export interface PartitionOwnerEvent {
  topic: string;
  partition: number;
  owner: PartitionOwner | null;
  modRevision: number;
}

/** A broker handing its partitions over: all of them, or the listed ones. */
export interface BrokerDrain {
  brokerId: number;
  all: boolean;
  partitions: TopicPartitionRef[];
}

/** `<topic>/<partition>/owner` → the partition, else null. */
function ownerKeyRef(rest: string): TopicPartitionRef | null {
  const parts = rest.split("/");
  if (parts.length !== 3 || parts[2] !== "owner" || !/^\d+$/.test(parts[1])) return null;
  return { topic: parts[0], partition: Number(parts[1]) };
}
