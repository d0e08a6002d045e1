/**
 * Writes flush rounds to this broker's write-ahead stream (DESIGN "Storage",
 * tier 1): every partition's share of a round goes into ONE write.
 *
 * - File mode (a store with appendable objects: the local directory): one
 *   append plus one fdatasync to the current write-ahead file per round; a
 *   new file once it holds `fileBytesMax` bytes, at every start, and after a
 *   failed append (whose tail is unknown, so nothing is appended after it).
 *   The next file is made ready in the background once the current one is
 *   expected to fill within `PREPARE_AHEAD_MS` at the rate it has filled so
 *   far (at full speed: after its first round). Creating a file and syncing
 *   its directory took 7–112 ms on a busy disk, inside the round that needed
 *   it. A new file (no spare to reuse) is filled with zeros then, so rounds
 *   overwrite blocks and cached pages instead of allocating them: full-speed
 *   produce (8 partitions) went from 211–272 to 300–362 MB/s on this
 *   project's CI machine (2026-12-05, runs of `deno task bench`), though at
 *   full speed the switch often waits for the filling to end.
 * - Object mode (S3): one create-only PUT of a new object per round.
 *
 * Object names are unique (a time stamp plus random bits), so no write can
 * ever overwrite another, whichever broker or process made it. What a round
 * wrote is referenced only once its metadata commit succeeded; the log's
 * garbage collection deletes objects whose every range is sealed.
 */

import type {
  AppendableObject,
  CreateAppendableOptions,
  ObjectStore,
} from "../storage/object_store.ts";
import { PreconditionFailedError } from "../storage/object_store.ts";
import type { Clock } from "../util/clock.ts";
import { toLogError } from "./flush_scheduler.ts";
import {
  type EncodedChunk,
  encodeWalRound,
  type WalChunkInput,
  walObjectKey,
} from "./wal_format.ts";

/** Attempts to find an unused object name (a collision needs the same millisecond and 64 random bits). */
const NAME_ATTEMPTS_MAX = 3;
/** Digits of the round number in index ids, so ids sort by round within a file. */
const ROUND_DIGITS = 10;
/** File mode: the next file is made ready once the current one should fill within this. */
export const PREPARE_AHEAD_MS = 60 * 1000;
/**
 * File mode: a file made ready longer ago than this (by the time in its name) is not used but
 * retired, and a new one is made. Garbage collection spares only the files this writer holds;
 * another process collecting the same folder goes by the time in a name (`WAL_ORPHAN_GRACE_MS`,
 * ten minutes), so a file is never written after it is that old without a committed round.
 */
export const PREPARED_FILE_AGE_MAX_MS = 2 * 60 * 1000;

export interface WalWrite {
  /** The write-ahead object's key. */
  object: string;
  /** Id of the round's index record: `<brokerId>/<fileId>/<round>`. */
  indexId: string;
  /** Where each input chunk went, in input order (payloads are views of the written bytes). */
  chunks: EncodedChunk[];
  /** Whether this round created a new object (a file or an S3 object). */
  createdObject: boolean;
}

export interface WalWriterOptions {
  objectStore: ObjectStore;
  namespace: string;
  brokerId: number;
  clock: Clock;
  /** File mode: bytes after which the next round starts a new file. */
  fileBytesMax: number;
  /** File mode: make the next file ready in the background (default true). */
  prepareNextFile?: boolean;
}

export interface WalWriterStats {
  rounds: number;
  bytes: number;
  objectsCreated: number;
}

interface OpenFile {
  file: AppendableObject;
  fileId: string;
  round: number;
  /** The time in its name. */
  createdMs: number;
}

export class WalWriter {
  readonly #options: WalWriterOptions;
  readonly mode: "file" | "object";
  #current: OpenFile | null = null;
  /** The next file being made ready, or ready (null when its creation failed). */
  #next: Promise<OpenFile | null> | null = null;
  /** Keys of files being created or made ready: garbage collection leaves them alone. */
  readonly #pending = new Set<string>();
  readonly #stats: WalWriterStats = { rounds: 0, bytes: 0, objectsCreated: 0 };

  constructor(options: WalWriterOptions) {
    this.#options = options;
    this.mode = options.objectStore.createAppendable ? "file" : "object";
  }

  get stats(): Readonly<WalWriterStats> {
    return { ...this.#stats };
  }

  /**
   * Whether `key` is a file this writer appends to, creates or holds ready for its next round:
   * garbage collection must leave it alone (it holds no committed round yet, or one is coming).
   */
  holds(key: string): boolean {
    return key === this.#current?.file.key || this.#pending.has(key);
  }

  /** Writes one round; resolves once it is durable. Rejects with a LogError. */
  async write(chunks: WalChunkInput[]): Promise<WalWrite> {
    const encoded = encodeWalRound(chunks);
    const write = this.mode === "file"
      ? await this.#append(encoded.bytes)
      : await this.#put(encoded.bytes);
    this.#stats.rounds++;
    this.#stats.bytes += encoded.bytes.byteLength;
    const shifted = write.position === 0 ? encoded.chunks : encoded.chunks.map((c) => ({
      ...c,
      position: c.position + write.position,
    }));
    return {
      object: write.object,
      indexId: `${this.#options.brokerId}/${write.fileId}/${
        String(write.round).padStart(ROUND_DIGITS, "0")
      }`,
      chunks: shifted,
      createdObject: write.created,
    };
  }

  /** Resolves once the next file, when one is being made ready, is ready (or failed). */
  async whenNextReady(): Promise<void> {
    await this.#next;
  }

  /** Closes the current file and gives back the one made ready, if any. */
  async close(): Promise<void> {
    await this.#closeCurrent();
    const next = this.#next;
    this.#next = null;
    const ready = await next;
    if (ready) await this.#giveBack(ready);
  }

  async #closeCurrent(): Promise<void> {
    const current = this.#current;
    this.#current = null;
    await current?.file.close();
  }

  async #append(
    bytes: Uint8Array,
  ): Promise<
    { object: string; fileId: string; round: number; position: number; created: boolean }
  > {
    let created = false;
    if (!this.#current || this.#current.file.size >= this.#options.fileBytesMax) {
      await this.#closeCurrent();
      const next = await this.#takeNext() ?? await this.#createFile();
      this.#current = next;
      this.#pending.delete(next.file.key);
      created = true;
    }
    const current = this.#current;
    let position: number;
    try {
      position = await current.file.append(bytes);
    } catch (error) {
      // The tail of the file is unknown now: never append to it again.
      if (this.#current === current) this.#current = null;
      await current.file.close().catch(() => {});
      // A file whose first round failed holds nothing committed: remove it, so a full disk
      // retried round after round does not leave one empty file per attempt.
      if (current.round === 0) {
        await this.#options.objectStore.delete(current.file.key).catch(() => {});
      }
      throw toLogError(error, "Cannot append to the write-ahead file");
    }
    if (
      this.#options.prepareNextFile !== false && this.#next === null &&
      this.#fillsWithin(current, PREPARE_AHEAD_MS)
    ) {
      // Settles null on failure: the round that needs a file then creates one and reports why
      // it cannot.
      this.#next = this.#createFile({ preallocateBytes: this.#options.fileBytesMax })
        .catch(() => null);
    }
    return {
      object: current.file.key,
      fileId: current.fileId,
      round: current.round++,
      position,
      created,
    };
  }

  /** Whether `file` should fill within `ms`, at the rate it has filled since its creation. */
  #fillsWithin(file: OpenFile, ms: number): boolean {
    const left = this.#options.fileBytesMax - file.file.size;
    if (left <= 0) return true;
    const elapsed = Math.max(1, this.#options.clock.now() - file.createdMs);
    return left * elapsed <= ms * file.file.size;
  }

  /**
   * The file made ready for the next round, or null when there is none, its creation failed,
   * or it is older than `PREPARED_FILE_AGE_MAX_MS` (then given back).
   */
  async #takeNext(): Promise<OpenFile | null> {
    const next = this.#next;
    this.#next = null;
    const ready = await next;
    if (!ready) return null;
    if (this.#options.clock.now() - ready.createdMs <= PREPARED_FILE_AGE_MAX_MS) return ready;
    await this.#giveBack(ready);
    return null;
  }

  /** Retires a file that never held a round (best effort: collection takes what is left). */
  async #giveBack(ready: OpenFile): Promise<void> {
    const { objectStore } = this.#options;
    try {
      await ready.file.close();
      if (objectStore.retireAppendable) await objectStore.retireAppendable(ready.file.key);
      else await objectStore.delete(ready.file.key);
    } catch {
      // Left in place, unreferenced: garbage collection deletes it once nothing holds it.
    } finally {
      this.#pending.delete(ready.file.key);
    }
  }

  /** A new file, its key in `#pending` until it becomes the current one or is given back. */
  async #createFile(options: CreateAppendableOptions = {}): Promise<OpenFile> {
    const { objectStore } = this.#options;
    for (let attempt = 0;; attempt++) {
      const createdMs = this.#options.clock.now();
      const fileId = this.#newFileId(createdMs);
      const key = walObjectKey(this.#options.namespace, this.#options.brokerId, fileId);
      this.#pending.add(key);
      try {
        const file = await objectStore.createAppendable!(key, options);
        this.#stats.objectsCreated++;
        return { file, fileId, round: 0, createdMs };
      } catch (error) {
        this.#pending.delete(key);
        if (error instanceof PreconditionFailedError && attempt + 1 < NAME_ATTEMPTS_MAX) continue;
        throw toLogError(error, "Cannot create a write-ahead file");
      }
    }
  }

  async #put(
    bytes: Uint8Array,
  ): Promise<
    { object: string; fileId: string; round: number; position: number; created: boolean }
  > {
    const { objectStore } = this.#options;
    for (let attempt = 0;; attempt++) {
      const fileId = this.#newFileId(this.#options.clock.now());
      const key = walObjectKey(this.#options.namespace, this.#options.brokerId, fileId);
      try {
        await objectStore.put(key, bytes, { ifNoneMatch: true, durable: true });
        this.#stats.objectsCreated++;
        return { object: key, fileId, round: 0, position: 0, created: true };
      } catch (error) {
        if (error instanceof PreconditionFailedError && attempt + 1 < NAME_ATTEMPTS_MAX) continue;
        throw toLogError(error, "Cannot write the write-ahead object");
      }
    }
  }

  #newFileId(nowMs: number): string {
    const random = crypto.getRandomValues(new Uint8Array(8));
    let hex = "";
    for (const b of random) hex += b.toString(16).padStart(2, "0");
    return `${String(nowMs).padStart(13, "0")}-${hex}`;
  }
}

/**
 * Id of an index record that replaces records of one write-ahead object (`LogManager.runWalGc`
 * merges them): the last replaced id's round followed by `-m<random>` (64 random bits), so it
 * sorts right after that round within its file; the merge also checks that the id is free.
 */
export function mergedWalIndexId(lastId: string): string {
  const slash = lastId.lastIndexOf("/");
  const round = lastId.slice(slash + 1).split("-m")[0];
  let hex = "";
  for (const b of crypto.getRandomValues(new Uint8Array(8))) hex += b.toString(16).padStart(2, "0");
  return `${lastId.slice(0, slash + 1)}${round}-m${hex}`;
}
