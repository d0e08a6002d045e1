/**
 * The segment cache: an LRU of segment views and parsed indexes, keyed by
 * object key and bounded by `cacheBytesMax`. One per LogManager, shared by
 * its partitions. Recently flushed segments are inserted right after their
 * commit, so acknowledged data is readable at once (DESIGN invariant 6).
 */

import type { ParsedIndex } from "./segment_format.ts";
import { type SegmentView, viewBytes } from "./segment_view.ts";

export type CachedObject =
  | { kind: "segment"; view: SegmentView }
  | { kind: "index"; index: ParsedIndex }
  /** A block of a write-ahead object (WalReader): many partitions' small chunks at once. */
  | { kind: "block"; bytes: Uint8Array };

/** Bytes charged for one index entry held in memory. */
const INDEX_ENTRY_MEMORY_BYTES = 48;

export function cachedObjectBytes(value: CachedObject): number {
  if (value.kind === "block") return 64 + value.bytes.byteLength;
  return value.kind === "segment"
    ? viewBytes(value.view)
    : 64 + value.index.entries.length * INDEX_ENTRY_MEMORY_BYTES;
}

export interface SegmentCacheStats {
  hits: number;
  misses: number;
  evictions: number;
}

export class SegmentCache {
  readonly #bytesMax: number;
  /** Map order is recency order: the first entry is the least recently used. */
  readonly #entries = new Map<string, { value: CachedObject; bytes: number }>();
  #bytes = 0;
  readonly #stats: SegmentCacheStats = { hits: 0, misses: 0, evictions: 0 };

  constructor(cacheBytesMax: number) {
    if (!(Number.isSafeInteger(cacheBytesMax) && cacheBytesMax >= 0)) {
      throw new RangeError(`Cache size must be a non-negative integer, got ${cacheBytesMax}`);
    }
    this.#bytesMax = cacheBytesMax;
  }

  get bytes(): number {
    return this.#bytes;
  }
  get bytesMax(): number {
    return this.#bytesMax;
  }
  get size(): number {
    return this.#entries.size;
  }
  get stats(): Readonly<SegmentCacheStats> {
    return { ...this.#stats };
  }

  get(key: string): CachedObject | undefined {
    const entry = this.#entries.get(key);
    if (!entry) {
      this.#stats.misses++;
      return undefined;
    }
    this.#stats.hits++;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.value;
  }

  /** Inserts or replaces; an object larger than the whole cache is not kept. */
  set(key: string, value: CachedObject): void {
    this.delete(key);
    const bytes = cachedObjectBytes(value);
    if (bytes > this.#bytesMax) return;
    this.#entries.set(key, { value, bytes });
    this.#bytes += bytes;
    // Bounded: each iteration removes one entry.
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.#bytesMax) break;
      this.#entries.delete(oldest);
      this.#bytes -= entry.bytes;
      this.#stats.evictions++;
    }
  }

  delete(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
  }

  /** Drops every entry whose key starts with `prefix` (a partition's objects). */
  deletePrefix(prefix: string): void {
    for (const key of [...this.#entries.keys()]) {
      if (key.startsWith(prefix)) this.delete(key);
    }
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}
