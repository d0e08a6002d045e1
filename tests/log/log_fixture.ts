/**
 * Shared set-up for the partition log tests: batches built with the real
 * record encoder, a LogManager over in-memory stores on a ManualClock, and
 * helpers to decode what reads return.
 */
import assert from "node:assert/strict";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import type { MetadataStore } from "../../lib/metadata/metadata_store.ts";
import {
  type AppendOptions,
  type AppendResult,
  type LogConfig,
  LogManager,
  type PartitionLog,
} from "../../lib/log/log_manager.ts";
import { type BatchInfo, validateBatches } from "../../lib/protocol/record_batch.ts";
import { decodeRecordBatches, encodeRecordBatch } from "../../lib/protocol/records.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import type { ObjectInfo, ObjectStore, PutOptions } from "../../lib/storage/object_store.ts";
import { ManualClock } from "../../lib/util/clock.ts";
import { silentLogger } from "../../lib/util/logger.ts";

export const TOPIC = "t";
export const FLUSH_INTERVAL_MS = 10;

export const TEST_CONFIG: LogConfig = {
  namespace: "default",
  segmentBytesMax: 1024 * 1024,
  flushIntervalMs: FLUSH_INTERVAL_MS,
  flushBytes: 1024 * 1024,
  cacheBytesMax: 16 * 1024 * 1024,
  indexIntervalMessages: 2,
  leaseTtlMs: 60_000,
  // Tests see exactly the files their rounds write; the crash simulation and the tests of the
  // next file made ready in the background turn it on.
  walPrepareNextFile: false,
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface TestBatch {
  records: Uint8Array;
  batches: BatchInfo[];
}

/** One v2 batch per call, holding `values` (as UTF-8), validated like the produce path. */
export function batch(values: string[], options: { timestamp?: number } = {}): TestBatch {
  const timestamp = options.timestamp ?? 1_000;
  const records = encodeRecordBatch(
    values.map((v, i) => ({ key: null, value: encoder.encode(v), timestamp: timestamp + i })),
  );
  const v = validateBatches(records, { maxBatchBytes: 64 * 1024 * 1024 });
  assert.ok(v.ok, v.ok ? "" : v.message);
  return { records, batches: v.batches };
}

/** Appends a test batch. */
export function append(
  log: PartitionLog,
  b: TestBatch,
  opts: AppendOptions,
): Promise<AppendResult> {
  return log.append(b.records, b.batches, opts);
}

/** Appends with acks=1, runs the flush timer, and returns the ack. */
export async function appendAcked(
  h: { flush(): Promise<void> },
  log: PartitionLog,
  b: TestBatch,
): Promise<AppendResult> {
  const ack = append(log, b, { acks: 1 });
  await h.flush();
  return await ack;
}

/** Seals everything unsealed (segments of about `segmentBytes`, at range boundaries). */
export async function sealAll(log: PartitionLog, segmentBytes = 1 << 30): Promise<void> {
  for (let i = 0; i < 1_000 && log.unsealedBytes > 0; i++) await log.seal({ segmentBytes });
}

/** Appends, flushes and seals: one sealed segment per call. */
export async function appendSealed(
  h: { flush(): Promise<void> },
  log: PartitionLog,
  b: TestBatch,
): Promise<AppendResult> {
  const result = await appendAcked(h, log, b);
  await sealAll(log);
  return result;
}

/** A batch with one record of `size` value bytes. */
export function bigBatch(tag: string, size: number): TestBatch {
  return batch([tag.padEnd(size, ".")]);
}

/** Decodes read chunks into [offset, value] pairs. */
export function decode(chunks: Uint8Array[]): [number, string][] {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return decodeRecordBatches(all).records.map((r) => [r.offset, decoder.decode(r.value!)]);
}

export interface Harness {
  clock: ManualClock;
  objectStore: ObjectStore;
  metadataStore: MetadataStore;
  metadata: ClusterMetadata;
  manager: LogManager;
  newManager(options?: { brokerId?: number; config?: Partial<LogConfig> }): Promise<LogManager>;
  /** Advances the clock by the flush interval and lets the round finish. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export async function harness(options: {
  objectStore?: ObjectStore;
  metadataStore?: MetadataStore;
  clock?: ManualClock;
  config?: Partial<LogConfig>;
  partitions?: number;
  onBrokenInvariant?: (error: unknown) => void;
} = {}): Promise<Harness> {
  const clock = options.clock ?? new ManualClock();
  const objectStore = options.objectStore ?? new MemoryObjectStore();
  const metadataStore = options.metadataStore ?? new MemoryMetadataStore({ clock });
  const metadata = new ClusterMetadata(metadataStore);
  if (!(await metadata.getTopic(TOPIC))) {
    await metadata.createTopic({ name: TOPIC, partitions: options.partitions ?? 4 });
  }
  const managers: LogManager[] = [];
  const newManager = async (
    o: { brokerId?: number; config?: Partial<LogConfig> } = {},
  ): Promise<LogManager> => {
    const manager = new LogManager({
      objectStore,
      metadata,
      clock,
      logger: silentLogger,
      brokerId: o.brokerId ?? 1,
      config: { ...TEST_CONFIG, ...options.config, ...o.config },
      onBrokenInvariant: options.onBrokenInvariant,
    });
    managers.push(manager);
    await manager.start();
    return manager;
  };
  const manager = await newManager();
  return {
    clock,
    objectStore,
    metadataStore,
    metadata,
    manager,
    newManager,
    flush: async () => {
      clock.advance(FLUSH_INTERVAL_MS);
      await settle();
    },
    close: async () => {
      for (const m of managers) await m.close();
      await metadataStore.close();
      await objectStore.close();
    },
  };
}

/**
 * Lets pending microtasks and promise chains of in-memory stores run. A
 * bounded number of macrotask turns, not a sleep for a condition: in-memory
 * stores settle within a few turns.
 */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setTimeout(r, 0));
}

/** Whether the promise settled (after letting microtasks run). */
export async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => (settled = true), () => (settled = true));
  await settle(3);
  return settled;
}

/** Polls `condition` between macrotask turns, up to a bounded number of turns. */
export async function eventually(condition: () => boolean | Promise<boolean>, what: string) {
  for (let i = 0; i < 1_000; i++) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 0));
  }
  assert.fail(`Timed out waiting for ${what}`);
}

/** An object store whose puts wait until released: to hold a flush round in flight. */
export class GatedObjectStore implements ObjectStore {
  readonly #inner: ObjectStore;
  #gate: { promise: Promise<void>; open: () => void } | null = null;
  /** Puts that reached the gate while it was closed. */
  waiting = 0;

  constructor(inner: ObjectStore) {
    this.#inner = inner;
  }
  get supportsConditionalPut(): boolean {
    return this.#inner.supportsConditionalPut;
  }
  hold(): void {
    let open!: () => void;
    const promise = new Promise<void>((r) => (open = r));
    this.#gate = { promise, open };
    this.waiting = 0;
  }
  release(): void {
    const gate = this.#gate;
    this.#gate = null;
    gate?.open();
  }
  async put(key: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    const gate = this.#gate;
    if (gate) {
      this.waiting++;
      await gate.promise;
    }
    return this.#inner.put(key, data, options);
  }
  get(key: string): Promise<Uint8Array | null> {
    return this.#inner.get(key);
  }
  getRange(key: string, start: number, end: number): Promise<Uint8Array | null> {
    return this.#inner.getRange(key, start, end);
  }
  list(prefix: string): Promise<ObjectInfo[]> {
    return this.#inner.list(prefix);
  }
  delete(key: string): Promise<void> {
    return this.#inner.delete(key);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** An object store that counts calls per operation. */
export class CountingObjectStore implements ObjectStore {
  readonly #inner: ObjectStore;
  readonly counts = { get: 0, getRange: 0, put: 0, list: 0, delete: 0 };
  constructor(inner: ObjectStore) {
    this.#inner = inner;
  }
  get supportsConditionalPut(): boolean {
    return this.#inner.supportsConditionalPut;
  }
  put(key: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    this.counts.put++;
    return this.#inner.put(key, data, options);
  }
  get(key: string): Promise<Uint8Array | null> {
    this.counts.get++;
    return this.#inner.get(key);
  }
  getRange(key: string, start: number, end: number): Promise<Uint8Array | null> {
    this.counts.getRange++;
    return this.#inner.getRange(key, start, end);
  }
  list(prefix: string): Promise<ObjectInfo[]> {
    this.counts.list++;
    return this.#inner.list(prefix);
  }
  delete(key: string): Promise<void> {
    this.counts.delete++;
    return this.#inner.delete(key);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}
