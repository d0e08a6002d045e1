/**
 * The object store: the durable home of segment and index objects.
 *
 * Owns the narrow interface every backend implements (local directory, S3,
 * in-memory). Knows nothing about Kafka messages or the segment format; keys
 * are opaque `/`-separated strings such as
 * `default/orders/0/segment-00000000000000000000.kfs`.
 *
 * Operating failures (timeouts, a dead endpoint, a full disk) surface as
 * `ObjectStoreError` so callers can turn them into retriable Kafka error
 * codes. A conditional create that finds the key taken surfaces as
 * `PreconditionFailedError`.
 */

/** One listed object. */
export interface ObjectInfo {
  key: string;
  size: number;
}

export interface PutOptions {
  /**
   * Create only: fail with `PreconditionFailedError` when the key exists
   * (S3 `If-None-Match: *`). Backends that cannot enforce it report
   * `supportsConditionalPut === false` and write unconditionally.
   */
  ifNoneMatch?: boolean;
  /**
   * `false` for derivable objects (segment indexes): the backend may skip
   * flushing it to stable storage, so after a machine crash the object can
   * be missing or truncated. Readers must tolerate that. Default `true`.
   */
  durable?: boolean;
  /**
   * Background writes (sealing, compaction): awaited with the size of each piece before the
   * backend writes it, so the caller can pace the writes and leave the disk to the write-ahead
   * fdatasync of the produce path (`WritePacer`). A backend that writes a local disk then writes
   * and syncs in pieces of `PACED_PIECE_BYTES`; one that sends whole objects (S3) ignores it.
   */
  pace?: (bytes: number) => Promise<void>;
}

/** Piece size of a paced durable write to a local disk (see `PutOptions.pace`). */
export const PACED_PIECE_BYTES = 256 * 1024;

/**
 * An object that grows by appends (the local write-ahead file). Readers use
 * the store's `get`/`getRange` on its key; bytes below `size` after an
 * append resolved are durable and never change.
 */
export interface AppendableObject {
  readonly key: string;
  /** Bytes appended so far. */
  readonly size: number;
  /**
   * Appends `data` at the end and makes it durable (fdatasync) before
   * resolving with the position it starts at. After a failed append the
   * tail is unknown: callers must not append to this object again.
   */
  append(data: Uint8Array): Promise<number>;
  /** Releases the file handle; the object stays. */
  close(): Promise<void>;
}

export interface CreateAppendableOptions {
  /**
   * A backend that writes a local disk first gives a new file this many zero bytes, synced, so
   * that appends overwrite blocks and cached pages the file already has (a reused file has them
   * already). Its size stays 0: appends start at its beginning. Ignored elsewhere.
   */
  preallocateBytes?: number;
}

export interface ObjectStore {
  /** Whether `put(…, { ifNoneMatch: true })` is enforced by this backend. */
  readonly supportsConditionalPut: boolean;
  /**
   * Creates a new, empty appendable object (create-only: fails with
   * `PreconditionFailedError` when the key exists). Absent on backends that
   * only write whole objects (S3): callers then write one object per batch.
   */
  createAppendable?(key: string, options?: CreateAppendableOptions): Promise<AppendableObject>;
  /**
   * Removes an object made by `createAppendable` whose bytes nobody will read again, possibly
   * keeping its storage for a later `createAppendable` (whose appends then overwrite it: its
   * readers must only read what they know was appended). Absent: callers `delete`.
   */
  retireAppendable?(key: string): Promise<void>;
  /** The whole object, or `null` when it does not exist. */
  get(key: string): Promise<Uint8Array | null>;
  /**
   * Bytes `[start, endExclusive)` of the object, clamped to its size, or
   * `null` when it does not exist.
   */
  getRange(key: string, start: number, endExclusive: number): Promise<Uint8Array | null>;
  /** Writes the whole object atomically: readers see the old object or the new one. */
  /**
   * Bytes [start, endExclusive) read synchronously with one positioned read, or null when the
   * object is missing (shorter when the object is). Only stores whose reads are local and cheap
   * have it (a local directory: a few microseconds from the page cache, against ~50 us for an
   * async read); callers use it for many small reads of recently written data. With `into`
   * (`endExclusive - start` bytes long) the bytes are read there and the result is a view of it:
   * many small reads can share one buffer instead of an allocation each.
   */
  readRangeSync?(
    key: string,
    start: number,
    endExclusive: number,
    into?: Uint8Array,
  ): Uint8Array | null;
  put(key: string, data: Uint8Array, options?: PutOptions): Promise<void>;
  /**
   * `put` of the concatenation of `parts`, without joining them first (a sealed segment is its
   * header, the stored batches and its footer). Absent where the backend needs one buffer.
   */
  putParts?(key: string, parts: Uint8Array[], options?: PutOptions): Promise<void>;
  /**
   * `putParts` of parts that arrive in groups from `source`, asked for as the earlier ones are
   * written, so the caller never holds the whole object (a seal streams a segment out of the
   * write-ahead stream). A backend may gather a few groups into one write: a part must not change
   * until the put settles. The object is published only once `source` is done; an error thrown by
   * `source` is rethrown as it is and nothing is published. Absent where the backend needs one
   * buffer.
   */
  putStream?(key: string, source: AsyncIterable<Uint8Array[]>, options?: PutOptions): Promise<void>;
  /** Every object whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Deletes the object; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Releases sockets, file handles and timers. */
  close(): Promise<void>;
}

/** An operating failure of the store: retriable from the caller's point of view. */
export class ObjectStoreError extends Error {
  override name = "ObjectStoreError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A conditional put found the key already present. */
export class PreconditionFailedError extends ObjectStoreError {
  override name = "PreconditionFailedError";
  constructor(readonly key: string) {
    super(`Object "${key}" already exists`);
  }
}
