/**
 * An `ObjectStore` on a local directory: the segment store of single-host mode.
 *
 * Key `a/b/c` is the file `<rootDir>/a/b/c`. A put writes a unique hidden
 * temp file (`.tmp-<random>`) next to the target, fsyncs it, then publishes
 * it atomically — `rename` over the target for an unconditional put, `link`
 * for a create-only put (`link` fails when the target exists, which is what
 * makes `ifNoneMatch` safe against a stalled former partition owner) — and
 * fsyncs the directory so the new name survives a power loss. Readers see the
 * old object or the new one, never a partial file.
 *
 * Limits of the mapping: a key cannot be both an object and a "directory" of
 * other keys (`a` and `a/b`), which the segment layout never needs; keys with
 * empty, `.`, `..` or `.tmp-*` segments, absolute keys and backslashes are
 * rejected. Empty directories left by deletes are kept (removing them would
 * race with a concurrent put into the same directory).
 *
 * A crash mid-put can leave a `.tmp-*` file behind; they are invisible to
 * `list` and `cleanupTempFiles()` (called by the broker at start-up) removes
 * them.
 *
 * Appendable files nobody needs any more (the write-ahead files) can be retired into a pool of
 * spares (`<rootDir>/.spare-files/`, at most `spareFilesMax`) instead of deleted, and the next
 * `createAppendable` takes one: its appends then overwrite blocks the filesystem already
 * allocated and pages already in the page cache. Appending to fresh blocks was ~18x slower than
 * overwriting on this project's CI machine (`write(2)` of 600 MB: 1.5 s against 80 ms), and it
 * was most of the time a flush round spent writing.
 *
 * A new file can be given its blocks ahead of time (`preallocateBytes`: zeros written and
 * synced), which the write-ahead writer asks for when it makes its next file ready in the
 * background; that file is then like a reused one.
 *
 * A reused file keeps its old bytes past what is appended: whoever reads it must read only the
 * ranges it was told were written (the write-ahead stream does: its metadata says where each
 * chunk is, and a scan of a whole file stops at the first torn or foreign chunk).
 *
 * Must not import anything that knows about Kafka messages.
 */

import { closeSync, openSync, readSync } from "node:fs";
import { coalesceWrites } from "../util/bytes.ts";
import {
  type AppendableObject,
  type CreateAppendableOptions,
  type ObjectInfo,
  type ObjectStore,
  ObjectStoreError,
  PACED_PIECE_BYTES,
  PreconditionFailedError,
  type PutOptions,
} from "./object_store.ts";

/** File-name prefix of in-progress puts; such names are hidden from `list`. */
export const TEMP_FILE_PREFIX = ".tmp-";
/** A durable put of a bigger object is fdatasync'ed every this many bytes as it is written. */
export const PUT_SYNC_CHUNK_BYTES = 4 * 1024 * 1024;
/**
 * Parts up to this size are joined into writes of up to a piece (`coalesceWrites`): a segment
 * sealed from many small write-ahead ranges is then a few writes, not one (and one pacer wait) per
 * range. Each awaited write waits for a turn of the event loop, which under load is most of its
 * cost: a 280 KB segment of ~250 one-record ranges took ~75 ms to write that way.
 */
export const PUT_JOIN_PART_BYTES_MAX = 64 * 1024;
/**
 * Reads are issued in pieces of at most this size: measured on Deno 2.9, one 4 MiB file read
 * held the event loop up to ~7 ms and 160 MB read in 4 MiB reads took 88 ms; in 1 MiB pieces the
 * loop was held ~1 ms at most and the same 160 MB took 38 ms.
 */
export const READ_PIECE_BYTES = 1024 * 1024;
/** Descriptors kept open for `readRangeSync` (least recently used closed first). */
const READ_FDS_MAX = 64;
/** How many `stat` calls `list` keeps in flight at once. */
const LIST_STAT_CONCURRENCY = 64;
/** How deep `list` and `cleanupTempFiles` descend; keys are never nested deeper. */
const MAX_DIRECTORY_DEPTH = 64;
/** Folder of retired appendable files kept for reuse (a "." segment: never a key). */
export const SPARE_FILES_DIR = ".spare-files";
/** Retired appendable files kept for reuse by default (write-ahead files are 64 MiB each). */
export const SPARE_FILES_MAX = 2;

export interface LocalObjectStoreOptions {
  /**
   * Fsync the parent directory after publishing a put. On by default: without
   * it a power loss can forget the new name even though the data was synced.
   */
  syncDirectories?: boolean;
  /** Test hook: runs after the temp file is synced, before it is published. */
  beforePublish?: (tempPath: string) => Promise<void>;
  /** Retired appendable files kept for reuse (default `SPARE_FILES_MAX`); 0 deletes them. */
  spareFilesMax?: number;
}

export class LocalObjectStore implements ObjectStore {
  readonly supportsConditionalPut = true;
  readonly #root: string;
  readonly #syncDirectories: boolean;
  readonly #beforePublish: ((tempPath: string) => Promise<void>) | undefined;
  /** Temp files of puts in progress, so `cleanupTempFiles` leaves them alone. */
  readonly #inFlightTemps = new Set<string>();
  #closed = false;
  /** Open descriptors of `readRangeSync`, least recently used first. */
  readonly #readFds = new Map<string, number>();
  readonly #spareFilesMax: number;
  /** Paths of the spare files, once the folder was read (null before). */
  #spares: string[] | null = null;
  /** Retirements under way: they count against `spareFilesMax` before their rename lands. */
  #retiring = 0;

  constructor(rootDir: string, options: LocalObjectStoreOptions = {}) {
    if (rootDir === "") throw new TypeError('LocalObjectStore needs a root directory, got ""');
    this.#root = rootDir.length > 1 ? rootDir.replace(/\/+$/, "") : rootDir;
    this.#syncDirectories = options.syncDirectories ?? Deno.build.os !== "windows";
    this.#beforePublish = options.beforePublish;
    // Reuse needs the link count (a spare must have no other name), which Windows does not give.
    this.#spareFilesMax = options.spareFilesMax ??
      (Deno.build.os === "windows" ? 0 : SPARE_FILES_MAX);
  }

  get rootDir(): string {
    return this.#root;
  }

  get(key: string): Promise<Uint8Array | null> {
    // Not Deno.readFile: it holds the event loop ~30 ms per 64 MiB segment (READ_PIECE_BYTES).
    return this.getRange(key, 0, Number.MAX_SAFE_INTEGER);
  }

  async getRange(key: string, start: number, endExclusive: number): Promise<Uint8Array | null> {
    const path = this.#pathOf(key);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (error) {
      if (isMissing(error)) return null;
      throw this.#error("read", key, error);
    }
    try {
      const size = (await file.stat()).size;
      const from = clamp(start, 0, size);
      const to = clamp(endExclusive, from, size);
      const out = new Uint8Array(to - from);
      if (out.length === 0) return out;
      await file.seek(from, Deno.SeekMode.Start);
      let filled = 0;
      while (filled < out.length) {
        const n = await file.read(out.subarray(filled, filled + READ_PIECE_BYTES));
        if (n === null) {
          throw new ObjectStoreError(
            `Object "${key}" in "${this.#root}" shrank while being read; retry the read`,
          );
        }
        filled += n;
      }
      return out;
    } catch (error) {
      if (isMissing(error)) return null;
      throw this.#error("read", key, error);
    } finally {
      file.close();
    }
  }

  put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    return this.putParts(key, [data], options);
  }

  putParts(key: string, parts: Uint8Array[], options: PutOptions = {}): Promise<void> {
    return this.putStream(key, once(parts), options);
  }

  async putStream(
    key: string,
    source: AsyncIterable<Uint8Array[]>,
    options: PutOptions = {},
  ): Promise<void> {
    const path = this.#pathOf(key);
    const dir = parentOf(path);
    const temp = `${dir}/${TEMP_FILE_PREFIX}${randomSuffix()}`;
    const durable = options.durable !== false;
    this.#inFlightTemps.add(temp);
    let file: Deno.FsFile | undefined;
    let published = false;
    try {
      file = await this.#createNew(temp, dir);
      let unsynced = 0;
      // A paced write goes in small synced pieces, each let through by the pacer, so the
      // device queue never holds more than one piece when a write-ahead fsync arrives.
      const { pace } = options;
      const piece = pace ? PACED_PIECE_BYTES : PUT_SYNC_CHUNK_BYTES;
      const writeOut = async (parts: Uint8Array[]) => {
        for (const run of coalesceWrites(parts, PUT_JOIN_PART_BYTES_MAX, piece)) {
          for (let at = 0; at < run.length; at += piece) {
            const slice = run.subarray(at, at + piece);
            if (pace) await pace(slice.length);
            for (let written = 0; written < slice.length;) {
              written += await file!.write(slice.subarray(written));
            }
            unsynced += slice.length;
            // A big durable object is flushed as it is written: one fdatasync of a whole segment
            // would hold the filesystem journal (ext4) long enough to stall every other fsync,
            // such as the write-ahead file's on the produce path.
            if (durable && unsynced >= piece) {
              await file!.syncData();
              unsynced = 0;
            }
          }
        }
      };
      // Groups are gathered until they make a piece, so that many small groups (a seal's
      // one-round ranges) are joined into piece-sized writes, not written one by one.
      let gathered: Uint8Array[] = [];
      let gatheredBytes = 0;
      const iterator = source[Symbol.asyncIterator]();
      let sourceDone = false;
      try {
        for (;;) {
          let next: IteratorResult<Uint8Array[]>;
          try {
            next = await iterator.next();
          } catch (error) {
            sourceDone = true;
            throw new SourceFailure(error);
          }
          if (next.done) break;
          for (const part of next.value) {
            gathered.push(part);
            gatheredBytes += part.byteLength;
          }
          if (gatheredBytes >= piece) {
            const parts = gathered;
            gathered = [];
            gatheredBytes = 0;
            await writeOut(parts);
          }
        }
        sourceDone = true;
      } finally {
        // A failed write ends the source too (its own clean-up runs).
        if (!sourceDone) await iterator.return?.().catch(() => {});
      }
      await writeOut(gathered);
      if (this.#beforePublish) await this.#beforePublish(temp);
      if (options.ifNoneMatch) {
        try {
          await Deno.link(temp, path);
        } catch (error) {
          if (error instanceof Deno.errors.AlreadyExists) throw new PreconditionFailedError(key);
          throw error;
        }
      } else {
        await Deno.rename(temp, path);
        this.#dropReadFd(path); // a replaced file: positioned reads must open the new one
      }
      published = true;
      // The name is published before it is durable: callers reference an
      // object only after put() resolves, so nobody trusts it earlier. Data
      // (fdatasync) and directory entry are then flushed at the same time,
      // which most filesystems serve with one journal commit.
      if (durable) await Promise.all([file.syncData(), this.#syncDirectory(dir)]);
    } catch (error) {
      // The source's own failure goes back as it is (nothing was published).
      if (error instanceof SourceFailure) throw error.cause;
      // A failure after publishing leaves an object of unknown durability;
      // callers treat a failed put as not done (the log deletes such orphans).
      throw this.#error("write", key, error);
    } finally {
      file?.close();
      // After link() the temp name is a second name for the object; drop it.
      if (options.ifNoneMatch || !published) await Deno.remove(temp).catch(() => {});
      this.#inFlightTemps.delete(temp);
    }
  }

  /**
   * A new file for appends (the write-ahead file): created exclusively, its
   * directory entry made durable at once; each append is written at the end
   * and fdatasync'ed before it resolves (no directory sync per append).
   */
  async createAppendable(
    key: string,
    options: CreateAppendableOptions = {},
  ): Promise<AppendableObject> {
    const path = this.#pathOf(key);
    const dir = parentOf(path);
    let file: Deno.FsFile;
    let reused: boolean;
    try {
      const spare = await this.#reuseSpare(path, dir);
      reused = spare !== null;
      file = spare ?? await this.#createNew(path, dir);
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) throw new PreconditionFailedError(key);
      throw this.#error("create", key, error);
    }
    try {
      await this.#syncDirectory(dir);
      if (!reused && (options.preallocateBytes ?? 0) > 0) {
        await fillWithZeros(file, options.preallocateBytes!);
      }
    } catch (error) {
      file.close();
      // A file that could not be filled (a full disk) is not left behind half made.
      if (!reused) await Deno.remove(path).catch(() => {});
      throw this.#error("create", key, error);
    }
    let size = 0;
    let closed = false;
    const fail = (error: unknown) => this.#error("append to", key, error);
    return {
      key,
      get size() {
        return size;
      },
      async append(data: Uint8Array): Promise<number> {
        if (closed) throw new ObjectStoreError(`Appendable object "${key}" is closed`);
        const position = size;
        try {
          let written = 0;
          while (written < data.length) written += await file.write(data.subarray(written));
          await file.syncData();
        } catch (error) {
          throw fail(error);
        }
        size += data.length;
        return position;
      },
      close(): Promise<void> {
        if (!closed) {
          closed = true;
          file.close();
        }
        return Promise.resolve();
      },
    };
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    this.#checkOpen();
    const slash = prefix.lastIndexOf("/");
    const dirPart = prefix.slice(0, slash + 1); // "" or "a/b/"
    if (dirPart !== "" && !isValidKey(dirPart.slice(0, -1))) return [];
    const namePart = prefix.slice(slash + 1);
    const files: string[] = [];
    try {
      await this.#walk(dirPart, namePart, files, 0);
      const out: ObjectInfo[] = [];
      for (let i = 0; i < files.length; i += LIST_STAT_CONCURRENCY) {
        const chunk = files.slice(i, i + LIST_STAT_CONCURRENCY);
        const sizes = await Promise.all(chunk.map((key) => this.#sizeOf(key)));
        chunk.forEach((key, j) => {
          const size = sizes[j];
          if (size !== null) out.push({ key, size });
        });
      }
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    } catch (error) {
      throw this.#error("list", prefix, error);
    }
  }

  readRangeSync(
    key: string,
    start: number,
    endExclusive: number,
    into?: Uint8Array,
  ): Uint8Array | null {
    this.#checkOpen();
    const path = this.#pathOf(key);
    let fd = this.#readFds.get(path);
    try {
      if (fd === undefined) {
        fd = openSync(path, "r");
        if (this.#readFds.size >= READ_FDS_MAX) {
          const [oldestPath, oldest] = this.#readFds.entries().next().value!;
          this.#readFds.delete(oldestPath);
          closeSync(oldest);
        }
      } else {
        this.#readFds.delete(path); // re-inserted below: most recently used last
      }
      this.#readFds.set(path, fd);
      const length = Math.max(0, endExclusive - start);
      if (into && into.byteLength !== length) {
        throw new RangeError(`readRangeSync: "into" holds ${into.byteLength} bytes, not ${length}`);
      }
      const out = into ?? new Uint8Array(length);
      let filled = 0;
      while (filled < out.length) {
        const n = readSync(fd, out, filled, out.length - filled, start + filled);
        if (n === 0) return out.subarray(0, filled);
        filled += n;
      }
      return out;
    } catch (error) {
      if (isMissing(error)) return null;
      throw this.#error("read", key, error);
    }
  }

  /** Closes the cached read descriptor of `path` (deleted or replaced objects). */
  #dropReadFd(path: string): void {
    const fd = this.#readFds.get(path);
    if (fd === undefined) return;
    this.#readFds.delete(path);
    try {
      closeSync(fd);
    } catch {
      // Already closed: nothing to release.
    }
  }

  /**
   * Retires an appendable object whose bytes nobody will read again: kept as a spare for the
   * next `createAppendable` while fewer than `spareFilesMax` are kept, else deleted. Its name is
   * gone either way; a positioned read of it fails like one of a deleted object.
   */
  async retireAppendable(key: string): Promise<void> {
    this.#checkOpen();
    const spares = await this.#spareList();
    if (spares.length + this.#retiring >= this.#spareFilesMax) return await this.delete(key);
    const path = this.#pathOf(key);
    const spare = `${this.#root}/${SPARE_FILES_DIR}/${randomSuffix()}`;
    this.#retiring++;
    try {
      await this.#moveInto(path, parentOf(spare), () => Deno.rename(path, spare));
    } catch (error) {
      if (isMissing(error)) return; // already gone
      throw this.#error("retire", key, error);
    } finally {
      this.#retiring--;
      // Never let a cached descriptor read the file's next life under this name.
      this.#dropReadFd(path);
    }
    spares.push(spare);
  }

  async delete(key: string): Promise<void> {
    const path = this.#pathOf(key);
    this.#dropReadFd(path);
    try {
      await Deno.remove(path);
    } catch (error) {
      if (isMissing(error)) return;
      throw this.#error("delete", key, error);
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    for (const path of [...this.#readFds.keys()]) this.#dropReadFd(path);
    return Promise.resolve();
  }

  /**
   * Removes `.tmp-*` files left by puts that crashed, except those of puts
   * still running in this instance and those younger than `minAgeMs` (guard
   * against another process writing the same directory). Returns how many
   * were removed.
   */
  async cleanupTempFiles(options: { minAgeMs?: number } = {}): Promise<number> {
    this.#checkOpen();
    const minAgeMs = options.minAgeMs ?? 0;
    const temps: string[] = [];
    try {
      await this.#collectTemps(this.#root, temps, 0);
    } catch (error) {
      if (isMissing(error)) return 0;
      throw this.#error("clean up temp files of", this.#root, error);
    }
    let removed = 0;
    for (const path of temps) {
      if (this.#inFlightTemps.has(path)) continue;
      try {
        if (minAgeMs > 0) {
          const mtime = (await Deno.stat(path)).mtime?.getTime() ?? 0;
          if (Date.now() - mtime < minAgeMs) continue;
        }
        await Deno.remove(path);
        removed++;
      } catch (error) {
        if (!isMissing(error)) throw this.#error("remove temp file", path, error);
      }
    }
    return removed;
  }

  /**
   * Gives a spare file the name `path` (create-only: `link` fails when the name exists) and
   * opens it for writing from its start, without truncating it; null when there is no spare.
   */
  async #reuseSpare(path: string, dir: string): Promise<Deno.FsFile | null> {
    const spares = await this.#spareList();
    const spare = spares.pop();
    if (spare === undefined) return null;
    // A spare with a second name is not a spare (a crash can undo an unsynced unlink of one
    // that was reused): overwriting it would overwrite that file. Forget the name, never reuse.
    const links = (await Deno.stat(spare).catch(() => null))?.nlink ?? null;
    if (links !== 1) {
      if (links !== null) await Deno.remove(spare);
      return await this.#reuseSpare(path, dir);
    }
    try {
      await this.#moveInto(spare, dir, () => Deno.link(spare, path));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null; // the spare vanished: a new file
      spares.push(spare); // still a spare
      throw error;
    }
    await Deno.remove(spare);
    // The spare's name must be gone for good before anything is written under the new one.
    await this.#syncDirectory(`${this.#root}/${SPARE_FILES_DIR}`);
    return await Deno.open(path, { write: true });
  }

  /**
   * Runs `op`, a rename or link of `source` into `dir`; when it fails with NotFound while
   * `source` exists, `dir` is missing: makes it and runs `op` again.
   */
  async #moveInto(source: string, dir: string, op: () => Promise<void>): Promise<void> {
    try {
      await op();
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound) || !(await fileExists(source))) throw error;
      await this.#makeDirectories(dir);
      await op();
    }
  }

  /** The spare files, read from their folder on first use. */
  async #spareList(): Promise<string[]> {
    if (this.#spares) return this.#spares;
    const dir = `${this.#root}/${SPARE_FILES_DIR}`;
    const found: string[] = [];
    try {
      for await (const entry of Deno.readDir(dir)) {
        if (entry.isFile) found.push(`${dir}/${entry.name}`);
      }
    } catch (error) {
      if (!isMissing(error)) throw this.#error("list spare files in", dir, error);
    }
    this.#spares ??= found;
    return this.#spares;
  }

  /** Creates `path` (in `dir`, made when missing); fails when the name exists. */
  async #createNew(path: string, dir: string): Promise<Deno.FsFile> {
    try {
      return await Deno.open(path, { write: true, createNew: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      await this.#makeDirectories(dir);
      return await Deno.open(path, { write: true, createNew: true });
    }
  }

  /** Creates `dir` and its missing ancestors, then syncs the directories whose entries changed. */
  async #makeDirectories(dir: string): Promise<void> {
    await Deno.mkdir(dir, { recursive: true });
    if (!this.#syncDirectories) return;
    // Which ancestors were new is unknown after a recursive mkdir; syncing
    // the chain up to the root is cheap and happens once per new directory.
    for (let d = dir;; d = parentOf(d)) {
      await this.#syncDirectory(d);
      if (d === this.#root || parentOf(d) === d || parentOf(d).length < this.#root.length) break;
    }
    await this.#syncDirectory(parentOf(this.#root));
  }

  async #syncDirectory(dir: string): Promise<void> {
    if (!this.#syncDirectories) return;
    let handle: Deno.FsFile | undefined;
    try {
      handle = await Deno.open(dir, { read: true });
      await handle.sync();
    } catch (error) {
      // Some filesystems cannot fsync a directory (EINVAL) or open one.
      if (!isUnsupportedDirectorySync(error)) throw error;
    } finally {
      handle?.close();
    }
  }

  async #walk(dirKey: string, namePrefix: string, out: string[], depth: number): Promise<void> {
    if (depth > MAX_DIRECTORY_DEPTH) return;
    const dirPath = dirKey === "" ? this.#root : `${this.#root}/${dirKey.slice(0, -1)}`;
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dirPath));
    } catch (error) {
      if (isMissing(error)) return;
      throw error;
    }
    for (const entry of entries) {
      if (!entry.name.startsWith(namePrefix) || entry.name.startsWith(TEMP_FILE_PREFIX)) continue;
      if (entry.isDirectory) {
        await this.#walk(`${dirKey}${entry.name}/`, "", out, depth + 1);
      } else if (entry.isFile) {
        out.push(dirKey + entry.name);
      }
    }
  }

  async #collectTemps(dirPath: string, out: string[], depth: number): Promise<void> {
    if (depth > MAX_DIRECTORY_DEPTH) return;
    for await (const entry of Deno.readDir(dirPath)) {
      const path = `${dirPath}/${entry.name}`;
      if (entry.isDirectory) await this.#collectTemps(path, out, depth + 1);
      else if (entry.isFile && entry.name.startsWith(TEMP_FILE_PREFIX)) out.push(path);
    }
  }

  async #sizeOf(key: string): Promise<number | null> {
    try {
      return (await Deno.stat(`${this.#root}/${key}`)).size;
    } catch (error) {
      if (isMissing(error)) return null; // deleted while listing
      throw error;
    }
  }

  #pathOf(key: string): string {
    this.#checkOpen();
    if (!isValidKey(key)) {
      throw new TypeError(
        `Invalid object key "${key}": use "/"-separated names without empty, ".", ".." or ` +
          `"${TEMP_FILE_PREFIX}*" segments and without backslashes`,
      );
    }
    return `${this.#root}/${key}`;
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new ObjectStoreError(`Object store at "${this.#root}" is closed`);
    }
  }

  #error(action: string, key: string, error: unknown): ObjectStoreError {
    if (error instanceof ObjectStoreError) return error;
    const reason = error instanceof Error ? error.message : String(error);
    return new ObjectStoreError(
      `Cannot ${action} object "${key}" in "${this.#root}": ${reason}; ` +
        `check that the directory exists, is writable and has free space`,
      { cause: error },
    );
  }
}

/** Whether `key` maps safely to a file under the root directory. */
export function isValidKey(key: string): boolean {
  if (key === "" || key.includes("\\") || key.includes("\0")) return false;
  for (const segment of key.split("/")) {
    if (segment === "" || segment === "." || segment === "..") return false;
    if (segment.startsWith(TEMP_FILE_PREFIX)) return false;
  }
  return true;
}

async function fileExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function isMissing(error: unknown): boolean {
  // A key that names a directory, or runs through a file, does not exist as an object.
  const code = (error as { code?: unknown } | null)?.code; // node:fs errors (readRangeSync)
  return error instanceof Deno.errors.NotFound ||
    error instanceof Deno.errors.IsADirectory ||
    error instanceof Deno.errors.NotADirectory ||
    code === "ENOENT" || code === "EISDIR" || code === "ENOTDIR";
}

function isUnsupportedDirectorySync(error: unknown): boolean {
  if (error instanceof Deno.errors.NotSupported) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return code === "EINVAL" || code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "EISDIR";
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return ".";
  if (slash === 0) return "/";
  return path.slice(0, slash);
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}

function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** The zeros `fillWithZeros` writes from (read-only: never handed to anyone else). */
const ZEROS = new Uint8Array(1024 * 1024);

/**
 * Writes `bytes` zero bytes from the start of `file` in 1 MiB writes, syncs them with one
 * fdatasync, then puts the position back at the start. Not paced like segment writes: pacing it
 * (256 KiB pieces, each synced) halved full-speed produce, since rounds then waited for the file.
 */
async function fillWithZeros(file: Deno.FsFile, bytes: number): Promise<void> {
  for (let at = 0; at < bytes; at += ZEROS.length) {
    const slice = ZEROS.subarray(0, Math.min(ZEROS.length, bytes - at));
    for (let written = 0; written < slice.length;) {
      written += await file.write(slice.subarray(written));
    }
  }
  await file.syncData();
  await file.seek(0, Deno.SeekMode.Start);
}

/** An error thrown by a `putStream` source, told apart from the store's own failures. */
class SourceFailure extends Error {
  constructor(cause: unknown) {
    super("putStream source failed", { cause });
  }
}

/** `parts` as a one-group source for `putStream`. */
async function* once(parts: Uint8Array[]): AsyncIterable<Uint8Array[]> {
  yield parts;
}
