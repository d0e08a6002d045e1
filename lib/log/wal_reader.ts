/**
 * Reads chunks back from write-ahead objects. A flush round puts every partition's chunk side by
 * side, so with many partitions the chunks are small and a consumer (or a seal) reading through
 * the log needs thousands of them from the same stretch of an object. On a local directory each
 * chunk is read on its own with a synchronous positioned read (`readRangeSync`: microseconds
 * from the page cache, which already caches the file). On object stores small chunks are read
 * through aligned blocks (`WAL_BLOCK_BYTES`) kept in the shared cache: one GET serves every
 * partition's chunks in it. Bigger chunks are read on their own.
 *
 * A block of the file being appended to can be shorter than the block size; a read beyond what
 * a cached block holds reads the block again.
 */

import type { ObjectStore } from "../storage/object_store.ts";
import type { SegmentCache } from "./segment_cache.ts";
import { scanWalWindow, type WalChunkHeader } from "./wal_format.ts";

export const WAL_BLOCK_BYTES = 4 * 1024 * 1024;
/** Blocks read ahead of the one a reader needs. */
export const WAL_BLOCKS_AHEAD = 2;
/** Chunks up to this size are read through blocks. */
export const WAL_BLOCK_READ_MAX = 256 * 1024;

/** Bytes `scanWalObject` reads at a time by default. */
export const WAL_SCAN_WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * Calls `visit` with the header and position of every whole chunk of a write-ahead object of
 * `size` bytes (as listed), in order, up to a torn chunk or the object's end, reading
 * `windowBytes` at a time (a chunk longer than that gets a read of its own length). Memory stays
 * at one window whatever the object's size, and the CRC checks give the event loop back between
 * windows: collection reads every write-ahead file before it goes (64 MiB each, a few per pass
 * under steady produce; it used to read each one whole). Returns false when the object is gone.
 */
export async function scanWalObject(
  store: ObjectStore,
  key: string,
  size: number,
  visit: (chunk: WalChunkHeader & { position: number }) => void,
  windowBytes = WAL_SCAN_WINDOW_BYTES,
): Promise<boolean> {
  let start = 0;
  let window = windowBytes;
  while (start < size) {
    const end = Math.min(size, start + window);
    const bytes = await store.getRange(key, start, end);
    if (bytes === null) return false;
    // Fewer bytes than asked for: the object ends there.
    const left = bytes.byteLength < end - start ? bytes.byteLength : size - start;
    const scan = scanWalWindow(bytes, left);
    for (const chunk of scan.chunks) visit({ ...chunk, position: start + chunk.position });
    if (scan.need === undefined) break;
    start += scan.scanned;
    window = Math.max(windowBytes, scan.need);
  }
  return true;
}

/** Largest buffer a `ReadSlab` allocates, and the first one's size. */
export const READ_SLAB_BYTES_MAX = 1024 * 1024;
export const READ_SLAB_BYTES_MIN = 16 * 1024;
/** Largest first buffer a size hint gets (`new ReadSlab(hint)`). */
export const READ_SLAB_HINT_MAX = 8 * 1024 * 1024;

/**
 * Buffers that many small reads of one fetch share (`WalReader.read` with a slab): with many
 * partitions a consumer's fetch reads thousands of chunks of a few KiB each, and one allocation
 * per chunk leaves the allocator fragmented and the collector with thousands of buffers. Pieces
 * are handed out back to back; each new buffer is twice the last (from 16 KiB up to 1 MiB), so a
 * read that needs little allocates little and at most about half of what it allocates is unused.
 * The pieces keep their buffer alive: use a slab for data that dies with the response, never for
 * data that is cached.
 *
 * A reader that knows how much it will read gives it as a hint: the first buffer is then that
 * big (up to READ_SLAB_HINT_MAX), so its pieces lie back to back in one buffer. `keep` then moves
 * a piece's payload over the piece's header, so the payloads of consecutive pieces are adjacent
 * and a read can hand them out as one view (`joinAdjacent`) instead of copying them together.
 */
export class ReadSlab {
  #buffer: Uint8Array | null = null;
  #used = 0;
  #next = READ_SLAB_BYTES_MIN;

  /** Size of the first buffer when a hint gave one (0: no hint). */
  #hint = 0;

  constructor(hintBytes = 0) {
    if (hintBytes > READ_SLAB_BYTES_MIN) this.#hint = Math.min(hintBytes, READ_SLAB_HINT_MAX);
  }

  /** `length` bytes of a shared buffer (bigger pieces get one of their own). */
  take(length: number): Uint8Array {
    // The hinted buffer is allocated on first use (a hinted read may find everything cached).
    if (!this.#buffer && this.#hint > 0 && length <= this.#hint) {
      this.#buffer = new Uint8Array(this.#hint);
      this.#next = Math.min(this.#hint, READ_SLAB_BYTES_MAX);
    }
    if (!this.#buffer || this.#used + length > this.#buffer.byteLength) {
      if (length > READ_SLAB_BYTES_MAX / 4) return new Uint8Array(length);
      this.#buffer = new Uint8Array(Math.max(this.#next, length));
      this.#next = Math.min(this.#next * 2, READ_SLAB_BYTES_MAX);
      this.#used = 0;
    }
    const piece = this.#buffer.subarray(this.#used, this.#used + length);
    this.#used += length;
    return piece;
  }

  /**
   * Keeps only `payload` (a view inside `piece`, the last piece taken) of `piece`: the payload
   * moves to where the piece starts and the rest goes back to the slab. Returns the moved
   * payload. A piece that is not the last one taken keeps its place (returns `payload`).
   */
  keep(piece: Uint8Array, payload: Uint8Array): Uint8Array {
    const buffer = this.#buffer;
    if (
      !buffer || piece.buffer !== buffer.buffer || payload.buffer !== buffer.buffer ||
      piece.byteOffset + piece.byteLength !== buffer.byteOffset + this.#used ||
      payload.byteOffset < piece.byteOffset ||
      payload.byteOffset + payload.byteLength > piece.byteOffset + piece.byteLength
    ) {
      return payload;
    }
    const start = piece.byteOffset - buffer.byteOffset;
    const from = payload.byteOffset - buffer.byteOffset;
    if (from !== start) buffer.copyWithin(start, from, from + payload.byteLength);
    this.#used = start + payload.byteLength;
    return buffer.subarray(start, this.#used);
  }
}

/**
 * Appends `chunk` to `chunks`, merged into the last one when it directly follows it in the same
 * buffer (payloads `ReadSlab.keep` laid back to back): a fetch then sends one view, not a copy.
 */
export function joinAdjacent(chunks: Uint8Array[], chunk: Uint8Array): void {
  const last = chunks.at(-1);
  if (
    last && last.buffer === chunk.buffer && last.byteOffset + last.byteLength === chunk.byteOffset
  ) {
    chunks[chunks.length - 1] = new Uint8Array(
      last.buffer,
      last.byteOffset,
      last.byteLength + chunk.byteLength,
    );
  } else {
    chunks.push(chunk);
  }
}

export class WalReader {
  readonly #objectStore: ObjectStore;
  readonly #cache: SegmentCache;
  readonly #loading = new Map<string, Promise<Uint8Array | null>>();

  constructor(objectStore: ObjectStore, cache: SegmentCache) {
    this.#objectStore = objectStore;
    this.#cache = cache;
  }

  /**
   * Bytes [position, position + length) of the object, or null when it is missing or shorter.
   * `shared` says the bytes are a view of a cached block or of `slab` (do not cache a view of
   * them). A small chunk of a local file is read into `slab` when one is given.
   */
  async read(
    object: string,
    position: number,
    length: number,
    slab?: ReadSlab,
  ): Promise<{ bytes: Uint8Array | null; shared: boolean; inSlab?: boolean }> {
    const end = position + length;
    if (this.#objectStore.readRangeSync && length <= WAL_BLOCK_READ_MAX) {
      // A local directory: a positioned read of a small chunk costs microseconds from the page
      // cache, so each is read on its own, with nothing read (or cached) for other partitions.
      // Big chunks are read asynchronously below: a synchronous read of megabytes (a seal reads
      // a whole segment's worth) would hold the event loop, and produce latency with it.
      const bytes = this.#objectStore.readRangeSync(object, position, end, slab?.take(length));
      return {
        bytes: bytes && bytes.byteLength === length ? bytes : null,
        shared: slab !== undefined,
        inSlab: slab !== undefined,
      };
    }
    const block = Math.floor(position / WAL_BLOCK_BYTES);
    if (
      this.#objectStore.readRangeSync || length > WAL_BLOCK_READ_MAX ||
      Math.floor((end - 1) / WAL_BLOCK_BYTES) !== block
    ) {
      const bytes = await this.#objectStore.getRange(object, position, end);
      return { bytes: bytes && bytes.byteLength === length ? bytes : null, shared: false };
    }
    const start = block * WAL_BLOCK_BYTES;
    const key = `${object}#block-${block}`;
    const cached = this.#cache.get(key);
    let bytes = cached?.kind === "block" ? cached.bytes : null;
    if (!bytes || bytes.byteLength < end - start) bytes = await this.#load(object, start, key);
    if (!bytes || bytes.byteLength < end - start) return { bytes: null, shared: false };
    return { bytes: bytes.subarray(position - start, end - start), shared: true };
  }

  /**
   * Starts loading the block a small chunk lies in, unless it is cached or loading (a reader
   * about to need chunks from many objects loads their blocks at once, not one after another).
   * Only for stores read through blocks; a failed load costs only the read that needs it.
   */
  prefetch(object: string, position: number, length: number): void {
    if (this.#objectStore.readRangeSync || length > WAL_BLOCK_READ_MAX) return;
    const block = Math.floor(position / WAL_BLOCK_BYTES);
    if (Math.floor((position + length - 1) / WAL_BLOCK_BYTES) !== block) return;
    const key = `${object}#block-${block}`;
    if (this.#loading.has(key)) return;
    const cached = this.#cache.peek(key);
    if (
      cached?.kind === "block" &&
      cached.bytes.byteLength >= position + length - block * WAL_BLOCK_BYTES
    ) {
      return;
    }
    this.#fetch(object, block * WAL_BLOCK_BYTES, key).catch(() => {});
  }

  #load(object: string, start: number, key: string): Promise<Uint8Array | null> {
    // Readers go forward through the log: fetch the next blocks while this one is used.
    for (let ahead = 1; ahead <= WAL_BLOCKS_AHEAD; ahead++) {
      const next = start + ahead * WAL_BLOCK_BYTES;
      const nextKey = `${object}#block-${next / WAL_BLOCK_BYTES}`;
      if (this.#cache.get(nextKey) || this.#loading.has(nextKey)) continue;
      // A failed read-ahead only costs the read that needs the block later.
      this.#fetch(object, next, nextKey).catch(() => {});
    }
    return this.#fetch(object, start, key);
  }

  #fetch(object: string, start: number, key: string): Promise<Uint8Array | null> {
    let loading = this.#loading.get(key);
    if (!loading) {
      loading = this.#objectStore.getRange(object, start, start + WAL_BLOCK_BYTES).then(
        (bytes) => {
          if (bytes && bytes.byteLength > 0) this.#cache.set(key, { kind: "block", bytes });
          return bytes;
        },
      ).finally(() => this.#loading.delete(key));
      this.#loading.set(key, loading);
    }
    return loading;
  }
}
