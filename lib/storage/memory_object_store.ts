/**
 * An in-memory `ObjectStore` for tests and simulations.
 *
 * Same semantics as the durable backends: data is copied on put and on get
 * so callers can never alias stored bytes. `close()` keeps the data, so a
 * test can "restart" a broker on the same instance to simulate a crash.
 *
 * Must not import anything that knows about Kafka messages.
 */

import {
  type AppendableObject,
  type CreateAppendableOptions,
  type ObjectInfo,
  type ObjectStore,
  PreconditionFailedError,
  type PutOptions,
} from "./object_store.ts";
import { joinBytes } from "../util/bytes.ts";

export interface MemoryObjectStoreOptions {
  /**
   * Whether `ifNoneMatch` is enforced (default true). Set false to behave
   * like an S3-compatible server without conditional writes.
   */
  supportsConditionalPut?: boolean;
}

export class MemoryObjectStore implements ObjectStore {
  readonly supportsConditionalPut: boolean;
  readonly #objects = new Map<string, Uint8Array>();

  constructor(options: MemoryObjectStoreOptions = {}) {
    this.supportsConditionalPut = options.supportsConditionalPut ?? true;
  }

  get(key: string): Promise<Uint8Array | null> {
    const data = this.#objects.get(key);
    return Promise.resolve(data ? data.slice() : null);
  }

  getRange(key: string, start: number, endExclusive: number): Promise<Uint8Array | null> {
    const data = this.#objects.get(key);
    if (!data) return Promise.resolve(null);
    const from = Math.min(Math.max(start, 0), data.length);
    const to = Math.min(Math.max(endExclusive, from), data.length);
    return Promise.resolve(data.slice(from, to));
  }

  put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    if (options.ifNoneMatch && this.supportsConditionalPut && this.#objects.has(key)) {
      return Promise.reject(new PreconditionFailedError(key));
    }
    this.#objects.set(key, data.slice());
    return Promise.resolve();
  }

  /** The object appears once the source is done (parts stay unchanged until then). */
  async putStream(
    key: string,
    source: AsyncIterable<Uint8Array[]>,
    options: PutOptions = {},
  ): Promise<void> {
    const parts: Uint8Array[] = [];
    let size = 0;
    for await (const group of source) {
      for (const part of group) {
        parts.push(part);
        size += part.byteLength;
      }
    }
    await this.put(key, joinBytes(parts, size), options);
  }

  list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    for (const [key, data] of this.#objects) {
      if (key.startsWith(prefix)) out.push({ key, size: data.length });
    }
    out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return Promise.resolve(out);
  }

  delete(key: string): Promise<void> {
    this.#objects.delete(key);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  createAppendable(key: string, _options?: CreateAppendableOptions): Promise<AppendableObject> {
    if (this.#objects.has(key)) return Promise.reject(new PreconditionFailedError(key));
    this.#objects.set(key, new Uint8Array(0));
    const objects = this.#objects;
    let buffer = new Uint8Array(1024);
    let size = 0;
    return Promise.resolve({
      key,
      get size() {
        return size;
      },
      append(data: Uint8Array): Promise<number> {
        // Deleted under the writer (as a file can be unlinked): later appends are lost.
        if (!objects.has(key)) return Promise.resolve(size);
        if (size + data.length > buffer.length) {
          const bigger = new Uint8Array(Math.max(buffer.length * 2, size + data.length));
          bigger.set(buffer.subarray(0, size));
          buffer = bigger;
        }
        buffer.set(data, size);
        const position = size;
        size += data.length;
        objects.set(key, buffer.subarray(0, size));
        return Promise.resolve(position);
      },
      close: () => Promise.resolve(),
    });
  }

  /** Number of stored objects (test helper). */
  get size(): number {
    return this.#objects.size;
  }
}
