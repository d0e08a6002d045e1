/**
 * The stores as one simulated broker process sees them (crash simulations): after the chosen
 * step has taken effect the process "dies", and every later call it makes fails before reaching
 * the shared in-memory stores, like a killed process's.
 */
import type {
  Compare,
  KvEntry,
  Lease,
  MetadataStore,
  Operation,
  TxnResult,
  WatchEvent,
} from "../../lib/metadata/metadata_store.ts";
import { MetadataStoreError } from "../../lib/metadata/metadata_store.ts";
import type { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import type { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import {
  type AppendableObject,
  type CreateAppendableOptions,
  type ObjectInfo,
  type ObjectStore,
  ObjectStoreError,
  type PutOptions,
} from "../../lib/storage/object_store.ts";

export type Step =
  | "wal-write"
  | "round-commit"
  | "segment-put"
  | "index-put"
  | "seal-commit"
  | "wal-delete"
  | "wal-index-delete"
  | "wal-index-merge"
  | "compacted-put"
  | "compacted-index-put"
  | "segment-delete";

export const STEPS: Step[] = [
  "wal-write",
  "round-commit",
  "segment-put",
  "index-put",
  "seal-commit",
  "wal-delete",
  "wal-index-delete",
  "wal-index-merge",
];

/** The stores as one process sees them: once it has died, every call fails untouched. */
export class Process {
  dead = false;
  /** Which step kills this process, and at its how-many-th occurrence. */
  constructor(readonly dieAt: { step: Step; occurrence: number } | null) {}
  #seen = new Map<Step, number>();

  check(): void {
    if (this.dead) throw new ObjectStoreError("Injected: this process is dead");
  }

  /** Called after `step` took effect: dies when it is the chosen occurrence. */
  after(step: Step): void {
    const n = (this.#seen.get(step) ?? 0) + 1;
    this.#seen.set(step, n);
    if (this.dieAt && this.dieAt.step === step && this.dieAt.occurrence === n) {
      this.dead = true;
      throw new ObjectStoreError(`Injected: the process died after ${step} #${n}`);
    }
  }
}

export class ProcessObjectStore implements ObjectStore {
  constructor(readonly inner: MemoryObjectStore, readonly process: Process) {}
  get supportsConditionalPut(): boolean {
    return true;
  }
  async get(key: string): Promise<Uint8Array | null> {
    this.process.check();
    return await this.inner.get(key);
  }
  async getRange(key: string, start: number, end: number): Promise<Uint8Array | null> {
    this.process.check();
    return await this.inner.getRange(key, start, end);
  }
  async put(key: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    this.process.check();
    await this.inner.put(key, data, options);
    if (key.includes("/~wal/")) this.process.after("wal-write");
    else if (/\.g\d+\.kfs$/.test(key)) this.process.after("compacted-put");
    else if (/\.g\d+\.index$/.test(key)) this.process.after("compacted-index-put");
    else if (key.endsWith(".kfs")) this.process.after("segment-put");
    else if (key.endsWith(".index")) this.process.after("index-put");
  }
  async createAppendable(
    key: string,
    options?: CreateAppendableOptions,
  ): Promise<AppendableObject> {
    this.process.check();
    const inner = await this.inner.createAppendable(key, options);
    const process = this.process;
    return {
      key,
      get size() {
        return inner.size;
      },
      async append(data: Uint8Array): Promise<number> {
        process.check();
        const position = await inner.append(data);
        process.after("wal-write");
        return position;
      },
      close: () => inner.close(),
    };
  }
  async list(prefix: string): Promise<ObjectInfo[]> {
    this.process.check();
    return await this.inner.list(prefix);
  }
  async delete(key: string): Promise<void> {
    this.process.check();
    await this.inner.delete(key);
    if (key.includes("/~wal/")) this.process.after("wal-delete");
    else if (key.endsWith(".kfs")) this.process.after("segment-delete");
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

export class ProcessMetadataStore implements MetadataStore {
  constructor(readonly inner: MemoryMetadataStore, readonly process: Process) {}
  #check(): void {
    if (this.process.dead) throw new MetadataStoreError("Injected: this process is dead");
  }
  async get(key: string): Promise<KvEntry | null> {
    this.#check();
    return await this.inner.get(key);
  }
  async list(prefix: string): Promise<KvEntry[]> {
    this.#check();
    return await this.inner.list(prefix);
  }
  async put(key: string, value: Uint8Array, options?: { lease?: number }): Promise<number> {
    this.#check();
    return await this.inner.put(key, value, options);
  }
  async delete(key: string): Promise<boolean> {
    this.#check();
    return await this.inner.delete(key);
  }
  async deletePrefix(prefix: string): Promise<number> {
    this.#check();
    return await this.inner.deletePrefix(prefix);
  }
  async txn(compares: Compare[], success: Operation[], failure?: Operation[]): Promise<TxnResult> {
    this.#check();
    const result = await this.inner.txn(compares, success, failure);
    if (!result.succeeded) return result;
    const keys = success.map((op) => (op.op === "deletePrefix" ? op.prefix : op.key));
    const puts = success.filter((op) => op.op === "put").map((op) => (op as { key: string }).key);
    try {
      // A merge of index records puts one under a `-m` id and deletes the ones it replaces.
      if (puts.some((k) => /\/wal\/.*-m[0-9a-f]+$/.test(k))) this.process.after("wal-index-merge");
      else if (puts.some((k) => k.includes("/wal/"))) this.process.after("round-commit");
      else if (puts.some((k) => k.endsWith("/state"))) this.process.after("seal-commit");
      else if (keys.some((k) => k.includes("/wal/"))) this.process.after("wal-index-delete");
    } catch (error) {
      throw new MetadataStoreError((error as Error).message);
    }
    return result;
  }
  async grantLease(ttlMs: number): Promise<Lease> {
    this.#check();
    return await this.inner.grantLease(ttlMs);
  }
  async keepAlive(leaseId: number): Promise<void> {
    this.#check();
    return await this.inner.keepAlive(leaseId);
  }
  async revokeLease(leaseId: number): Promise<void> {
    this.#check();
    return await this.inner.revokeLease(leaseId);
  }
  watch(prefix: string, onEvent: (event: WatchEvent) => void): () => void {
    return this.inner.watch(prefix, onEvent);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
