/**
 * A fault-injecting `ObjectStore` wrapper for crash and fault tests.
 *
 * Fault model (every fault is an `ObjectStoreError`, the operating failure
 * callers must already handle; a `PreconditionFailedError` from the inner
 * store passes through untouched):
 *
 * - Fail before: the call fails and the inner store is not touched.
 * - Fail after: `put` / `delete` are applied to the inner store, then the
 *   call reports failure — the caller cannot tell whether its write
 *   happened (a timeout after the server committed). Reads have no side
 *   effects, so for them "after" equals "before".
 * - Down: `setDown(true)` makes every call fail before touching the store,
 *   until `setDown(false)`.
 * - Latency (optional): each call first waits a random delay on the
 *   injected clock (a `ManualClock` makes that deterministic).
 *
 * Random faults come from a seeded PRNG that draws the same number of values
 * per call, so the same seed and call sequence replay the same faults.
 * `failNext` queues exact one-shot faults for scripted scenarios. `close()`
 * is never faulted. Faults never corrupt data: a put is all or nothing, as
 * the real backends promise.
 */

import type { Clock } from "../util/clock.ts";
import {
  type AppendableObject,
  type CreateAppendableOptions,
  type ObjectInfo,
  type ObjectStore,
  ObjectStoreError,
  type PutOptions,
} from "./object_store.ts";

export type ObjectStoreOperation = "get" | "getRange" | "put" | "list" | "delete" | "append";
export type FaultMode = "before" | "after";

const ALL_OPERATIONS: readonly ObjectStoreOperation[] = [
  "get",
  "getRange",
  "put",
  "list",
  "delete",
  "append",
];
/** Bound on scripted one-shot faults waiting to fire. */
const MAX_QUEUED_FAULTS = 1024;

export interface FaultyObjectStoreOptions {
  /** PRNG seed (default 1). */
  seed?: number;
  /** Probability in [0, 1] that a call fails without being applied. */
  failBeforeRate?: number;
  /** Probability in [0, 1] that a put or delete is applied and then reported as failed. */
  failAfterRate?: number;
  /** Operations eligible for random faults (default: all). */
  operations?: readonly ObjectStoreOperation[];
  /** Optional latency added to every call, drawn uniformly from [minMs, maxMs]. */
  latency?: { clock: Clock; minMs: number; maxMs: number };
}

export interface FaultStats {
  calls: number;
  failedBefore: number;
  failedAfter: number;
}

export class FaultyObjectStore implements ObjectStore {
  readonly #inner: ObjectStore;
  readonly #random: () => number;
  readonly #operations: Set<ObjectStoreOperation>;
  readonly #latency: FaultyObjectStoreOptions["latency"];
  readonly #queued: { operation: ObjectStoreOperation; mode: FaultMode }[] = [];
  readonly #stats: FaultStats = { calls: 0, failedBefore: 0, failedAfter: 0 };
  #failBeforeRate: number;
  #failAfterRate: number;
  #down = false;

  constructor(inner: ObjectStore, options: FaultyObjectStoreOptions = {}) {
    this.#inner = inner;
    this.#random = splitMix32(options.seed ?? 1);
    this.#operations = new Set(options.operations ?? ALL_OPERATIONS);
    this.#latency = options.latency;
    this.#failBeforeRate = checkRate(options.failBeforeRate ?? 0);
    this.#failAfterRate = checkRate(options.failAfterRate ?? 0);
  }

  get supportsConditionalPut(): boolean {
    return this.#inner.supportsConditionalPut;
  }

  get stats(): Readonly<FaultStats> {
    return { ...this.#stats };
  }

  /** While down, every call fails before touching the inner store. */
  setDown(down: boolean): void {
    this.#down = down;
  }

  setFaultRates(rates: { failBeforeRate?: number; failAfterRate?: number }): void {
    if (rates.failBeforeRate !== undefined) this.#failBeforeRate = checkRate(rates.failBeforeRate);
    if (rates.failAfterRate !== undefined) this.#failAfterRate = checkRate(rates.failAfterRate);
  }

  /** Makes the next call of `operation` fail in `mode`, regardless of the rates. */
  failNext(operation: ObjectStoreOperation, mode: FaultMode = "before"): void {
    if (this.#queued.length >= MAX_QUEUED_FAULTS) {
      throw new RangeError(`Too many queued faults: the limit is ${MAX_QUEUED_FAULTS}`);
    }
    this.#queued.push({ operation, mode });
  }

  get(key: string): Promise<Uint8Array | null> {
    return this.#call("get", key, () => this.#inner.get(key));
  }

  getRange(key: string, start: number, endExclusive: number): Promise<Uint8Array | null> {
    return this.#call("getRange", key, () => this.#inner.getRange(key, start, endExclusive));
  }

  put(key: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    return this.#call("put", key, () => this.#inner.put(key, data, options));
  }

  list(prefix: string): Promise<ObjectInfo[]> {
    return this.#call("list", prefix, () => this.#inner.list(prefix));
  }

  delete(key: string): Promise<void> {
    return this.#call("delete", key, () => this.#inner.delete(key));
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  /** `putParts` of the inner store (when it has it), faulted like `put`. */
  get putParts():
    | ((key: string, parts: Uint8Array[], options?: PutOptions) => Promise<void>)
    | undefined {
    const putParts = this.#inner.putParts?.bind(this.#inner);
    if (!putParts) return undefined;
    return (key, parts, options) => this.#call("put", key, () => putParts(key, parts, options));
  }

  /** `putStream` of the inner store (when it has it), faulted like `put`. */
  get putStream():
    | ((key: string, source: AsyncIterable<Uint8Array[]>, options?: PutOptions) => Promise<void>)
    | undefined {
    const putStream = this.#inner.putStream?.bind(this.#inner);
    if (!putStream) return undefined;
    return (key, source, options) => this.#call("put", key, () => putStream(key, source, options));
  }

  /**
   * Appendable objects of the inner store (when it has them), with faults on
   * each `append`: "before" writes nothing, "after" writes it all and reports
   * failure (a fsync error after the write). Creation counts as a put.
   */
  get createAppendable():
    | ((key: string, options?: CreateAppendableOptions) => Promise<AppendableObject>)
    | undefined {
    const create = this.#inner.createAppendable?.bind(this.#inner);
    if (!create) return undefined;
    return async (key: string, options?: CreateAppendableOptions) => {
      const inner = await this.#call("put", key, () => create(key, options));
      return {
        key,
        get size() {
          return inner.size;
        },
        append: (data: Uint8Array) => this.#call("append", key, () => inner.append(data)),
        close: () => inner.close(),
      };
    };
  }

  async #call<T>(operation: ObjectStoreOperation, key: string, run: () => Promise<T>): Promise<T> {
    this.#stats.calls++;
    // Draw a fixed number of values per call so faults replay from the seed.
    const beforeRoll = this.#random();
    const afterRoll = this.#random();
    const latencyRoll = this.#random();
    if (this.#latency) await this.#sleep(latencyRoll);
    if (this.#down) {
      this.#stats.failedBefore++;
      throw new ObjectStoreError(`Injected fault: object store is down (${operation} "${key}")`);
    }
    const mode = this.#takeQueued(operation) ?? this.#rollMode(operation, beforeRoll, afterRoll);
    if (mode === "before") {
      this.#stats.failedBefore++;
      throw new ObjectStoreError(`Injected fault before ${operation} "${key}"`);
    }
    const result = await run();
    if (mode === "after") {
      this.#stats.failedAfter++;
      throw new ObjectStoreError(`Injected fault after ${operation} "${key}" was applied`);
    }
    return result;
  }

  #takeQueued(operation: ObjectStoreOperation): FaultMode | undefined {
    const i = this.#queued.findIndex((f) => f.operation === operation);
    if (i < 0) return undefined;
    return this.#queued.splice(i, 1)[0].mode;
  }

  #rollMode(
    operation: ObjectStoreOperation,
    beforeRoll: number,
    afterRoll: number,
  ): FaultMode | undefined {
    if (!this.#operations.has(operation)) return undefined;
    if (beforeRoll < this.#failBeforeRate) return "before";
    const mutates = operation === "put" || operation === "delete" || operation === "append";
    if (mutates && afterRoll < this.#failAfterRate) return "after";
    return undefined;
  }

  #sleep(roll: number): Promise<void> {
    const { clock, minMs, maxMs } = this.#latency!;
    const delayMs = minMs + Math.floor(roll * (maxMs - minMs + 1));
    return new Promise((resolve) => clock.setTimeout(resolve, delayMs));
  }
}

function checkRate(rate: number): number {
  if (!(rate >= 0 && rate <= 1)) {
    throw new RangeError(`Fault rate must be between 0 and 1, got ${rate}`);
  }
  return rate;
}

/** A small seeded PRNG (SplitMix32) returning floats in [0, 1). */
function splitMix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 0x1_0000_0000;
  };
}
