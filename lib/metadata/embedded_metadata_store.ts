/**
 * The embedded `MetadataStore`: the in-memory store made durable in one
 * directory, for single-host mode.
 *
 * Semantics are exactly `MemoryMetadataStore`'s (it extends it); this file
 * only adds persistence:
 *
 * - `wal`: an append-only log with one record per committed write —
 *   `u32 body length | u32 CRC-32C(body) | body` (big-endian), the body
 *   holding the revision and the resolved changes. A write's promise
 *   resolves only after its record is fsynced. Group commit: records that
 *   arrive while an fsync is in flight share the next write + fsync, so many
 *   concurrent transactions (every flush commits partition end offsets here)
 *   pay for one fsync. Records are written in revision order.
 * - `snapshot`: the whole state at some revision, written to a temp file,
 *   fsynced and renamed into place when the log outgrows
 *   max(`compactLogBytes`, 10 x live state); then the log starts afresh.
 * - `LOCK`: held with an exclusive `flock` while open, so two processes never
 *   share a directory.
 *
 * Recovery on open: load the snapshot, replay log records newer than it.
 * A bad record (short, checksum mismatch, undecodable) is a torn tail only
 * when no valid record follows it anywhere in the file: only the last
 * group-commit write can be torn, and its writes were never acknowledged, so
 * that tail is truncated (and logged). A bad record with a valid record after
 * it is damage in the middle of the log: the records after it were
 * acknowledged (later end-offset commits among them), so the store refuses to
 * open (`MetadataLogCorruptError`, naming the file and the byte offset)
 * rather than truncate them. `repairEmbeddedMetadataStore` (the
 * `kafscale metadata repair` command) is the way out: it keeps the damaged
 * files as backups and rebuilds the state from every record that is still
 * valid. It only ever touches this directory, never segment data.
 *
 * Leases do not survive a restart: the process that kept them alive is gone,
 * so on open every key attached to a lease of the previous run is deleted
 * (one write, visible in the revision) and new lease ids start above the old
 * ones.
 *
 * A failed log write or fsync leaves memory ahead of the disk; the store then
 * fails every later call with `MetadataStoreError` (reopen it to recover from
 * the disk). As with a timeout, the outcome of the failed writes is unknown:
 * after a reopen they may or may not be there. All I/O failures surface as
 * `MetadataStoreError`.
 *
 * Must not import anything that knows about Kafka messages.
 */

import { crc32c } from "../protocol/crc32c.ts";
import type { Clock } from "../util/clock.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import {
  type KvChange,
  KvStateMachine,
  MAX_TXN_OPERATIONS,
  MemoryMetadataStore,
} from "./memory_metadata_store.ts";
import { MetadataStoreError, type Operation } from "./metadata_store.ts";
import { joinBytes } from "../util/bytes.ts";

/**
 * The log is damaged before its end: valid records follow a bad one, so
 * truncating would drop acknowledged writes. Opening refuses; the operator
 * runs `kafscale metadata repair` (see `repairEmbeddedMetadataStore`).
 */
export class MetadataLogCorruptError extends MetadataStoreError {
  override name = "MetadataLogCorruptError";
  constructor(
    /** The log file. */
    readonly file: string,
    /** Byte offset of the first bad record. */
    readonly offset: number,
    /** Byte offset of the next valid record after it. */
    readonly nextValidOffset: number,
    readonly reason: string,
  ) {
    super(
      `Cannot open metadata store: log "${file}" is corrupt at byte ${offset} (${reason}) ` +
        `and valid records follow at byte ${nextValidOffset}, so it is not a torn tail and ` +
        `truncating it would lose acknowledged writes; stop the broker and run ` +
        `"kafscale metadata repair --data-dir DIR" (keeps the damaged log as a backup) ` +
        `or restore the directory from a backup`,
    );
  }
}

/** Default log size that triggers a snapshot. */
export const COMPACT_LOG_BYTES = 64 * 1024 * 1024;
/** The log must also exceed this multiple of the live state before compacting. */
export const COMPACT_STATE_RATIO = 10;
/** Bound on the bytes of one group-commit write. */
const MAX_BATCH_BYTES = 8 * 1024 * 1024;
/** Bound on one log record's body; a larger length field means corruption. */
const MAX_RECORD_BYTES = 256 * 1024 * 1024;

const LOG_FILE = "wal";
const SNAPSHOT_FILE = "snapshot";
const LOCK_FILE = "LOCK";
const TEMP_SUFFIX = ".tmp";

const RECORD_HEADER_BYTES = 8;
const RECORD_TYPE_WRITE = 1;
const CHANGE_PUT = 1;
const CHANGE_DELETE = 2;
const SNAPSHOT_MAGIC = 0x4b534d53; // "KSMS"
const SNAPSHOT_VERSION = 1;

export interface EmbeddedMetadataStoreOptions {
  clock?: Clock;
  logger?: Logger;
  /** Log size that triggers a snapshot (default `COMPACT_LOG_BYTES`). */
  compactLogBytes?: number;
  /** The log must also reach this multiple of the live state (default `COMPACT_STATE_RATIO`). */
  compactStateRatio?: number;
  /** Test hook: runs before each group-commit write; a rejection simulates a failed write. */
  beforeLogWrite?: () => Promise<void>;
}

export interface EmbeddedMetadataStoreStats {
  /** Fsyncs of the log: one per group-commit write. */
  logFsyncs: number;
  /** Log records (committed writes) since open. */
  records: number;
  /** Snapshots written since open. */
  compactions: number;
  /** Current log size in bytes. */
  logBytes: number;
}

interface Batch {
  records: Uint8Array[];
  bytes: number;
  lastRevision: number;
  done: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface Files {
  lock: Deno.FsFile;
  log: Deno.FsFile;
  logBytes: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export class EmbeddedMetadataStore extends MemoryMetadataStore {
  readonly #dir: string;
  readonly #lock: Deno.FsFile;
  #log: Deno.FsFile;
  readonly #compactLogBytes: number;
  readonly #compactStateRatio: number;
  readonly #beforeLogWrite: (() => Promise<void>) | undefined;
  /** Batches waiting to be written; only the last one accepts records. */
  #batches: Batch[] = [];
  #inFlight: Batch | null = null;
  #flushLoop: Promise<void> | null = null;
  #durableRevision: number;
  #failure: MetadataStoreError | null = null;
  readonly #stats: EmbeddedMetadataStoreStats;

  private constructor(
    dir: string,
    files: Files,
    state: KvStateMachine,
    options: EmbeddedMetadataStoreOptions,
  ) {
    super({ clock: options.clock, logger: options.logger }, state);
    this.#dir = dir;
    this.#lock = files.lock;
    this.#log = files.log;
    this.#compactLogBytes = options.compactLogBytes ?? COMPACT_LOG_BYTES;
    this.#compactStateRatio = options.compactStateRatio ?? COMPACT_STATE_RATIO;
    this.#beforeLogWrite = options.beforeLogWrite;
    this.#durableRevision = state.revision;
    this.#stats = { logFsyncs: 0, records: 0, compactions: 0, logBytes: files.logBytes };
  }

  /** Opens (creating if needed) the store in `dir`, recovering its state. */
  static async open(
    dir: string,
    options: EmbeddedMetadataStoreOptions = {},
  ): Promise<EmbeddedMetadataStore> {
    const logger = options.logger ?? silentLogger;
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (error) {
      throw ioError(`Cannot open metadata store: cannot create "${dir}"`, error);
    }
    const lock = await acquireLock(dir);
    let log: Deno.FsFile | undefined;
    try {
      const state = new KvStateMachine();
      await removeTempFiles(dir);
      await loadSnapshot(dir, state);
      const logBytes = await replayLog(dir, state, logger);
      log = await Deno.open(`${dir}/${LOG_FILE}`, { write: true, append: true, create: true });
      await syncDirectory(dir);
      const store = new EmbeddedMetadataStore(dir, { lock, log, logBytes }, state, options);
      await store.#expirePreviousLeases();
      logger.info("Opened metadata store", {
        dir,
        revision: state.revision,
        keys: state.size,
        logBytes,
      });
      return store;
    } catch (error) {
      log?.close();
      lock.close();
      if (error instanceof MetadataStoreError) throw error;
      throw ioError(`Cannot open metadata store in "${dir}"`, error);
    }
  }

  get dir(): string {
    return this.#dir;
  }

  get stats(): Readonly<EmbeddedMetadataStoreStats> {
    return { ...this.#stats };
  }

  override async close(): Promise<void> {
    if (this.isClosed) return;
    await super.close();
    // Writes already accepted still become durable (or fail) before the files close.
    while (this.#flushLoop) await this.#flushLoop;
    this.#log.close();
    this.#lock.close(); // releases the flock
  }

  protected override persist(revision: number, changes: readonly KvChange[]): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    const record = encodeRecord(revision, changes);
    let batch = this.#batches.at(-1);
    if (!batch || batch.bytes + record.length > MAX_BATCH_BYTES) {
      batch = newBatch();
      this.#batches.push(batch);
    }
    batch.records.push(record);
    batch.bytes += record.length;
    batch.lastRevision = revision;
    this.#flushLoop ??= this.#runFlushLoop();
    return batch.done;
  }

  protected override waitDurable(revision: number): Promise<void> | undefined {
    if (this.#failure) return Promise.reject(this.#failure);
    if (revision <= this.#durableRevision) return undefined;
    if (this.#inFlight && revision <= this.#inFlight.lastRevision) return this.#inFlight.done;
    return this.#batches.find((batch) => revision <= batch.lastRevision)?.done;
  }

  async #runFlushLoop(): Promise<void> {
    // Let writers of the same tick join the first batch.
    await Promise.resolve();
    for (;;) {
      const batch = this.#batches.shift();
      if (!batch) {
        this.#flushLoop = null;
        return;
      }
      this.#inFlight = batch;
      try {
        await this.#append(batch);
      } catch (error) {
        this.#poison(ioError(`Cannot write the metadata log in "${this.#dir}"`, error));
        return;
      }
      this.#inFlight = null;
      this.#durableRevision = batch.lastRevision;
      batch.resolve();
      if (this.#shouldCompact()) {
        try {
          await this.#compact();
        } catch (error) {
          this.#poison(ioError(`Cannot compact the metadata log in "${this.#dir}"`, error));
          return;
        }
      }
    }
  }

  async #append(batch: Batch): Promise<void> {
    const data = batch.records.length === 1
      ? batch.records[0]
      : joinBytes(batch.records, batch.bytes);
    if (this.#beforeLogWrite) await this.#beforeLogWrite();
    await writeAll(this.#log, data);
    await this.#log.syncData();
    this.#stats.logFsyncs++;
    this.#stats.records += batch.records.length;
    this.#stats.logBytes += data.length;
  }

  #shouldCompact(): boolean {
    const threshold = Math.max(
      this.#compactLogBytes,
      this.#compactStateRatio * this.state.liveBytes,
    );
    return this.#stats.logBytes >= threshold;
  }

  /**
   * Snapshots the state (which may include applied writes still queued for
   * the log: their records follow in the new log and are skipped on replay),
   * then starts an empty log.
   */
  async #compact(): Promise<void> {
    const snapshot = encodeSnapshot(this.state);
    await writeFileDurably(this.#dir, SNAPSHOT_FILE, snapshot);
    const freshLog = `${this.#dir}/${LOG_FILE}${TEMP_SUFFIX}`;
    const created = await Deno.open(freshLog, { write: true, create: true, truncate: true });
    try {
      await created.sync();
    } finally {
      created.close();
    }
    await Deno.rename(freshLog, `${this.#dir}/${LOG_FILE}`);
    await syncDirectory(this.#dir);
    this.#log.close();
    this.#log = await Deno.open(`${this.#dir}/${LOG_FILE}`, { write: true, append: true });
    this.logger.info("Compacted metadata log", {
      dir: this.#dir,
      revision: this.state.revision,
      snapshotBytes: snapshot.length,
      logBytesBefore: this.#stats.logBytes,
    });
    this.#stats.logBytes = 0;
    this.#stats.compactions++;
  }

  #poison(error: MetadataStoreError): void {
    this.#failure = error;
    this.fail(error);
    this.logger.error("Metadata store failed; reopen it to recover from disk", {
      dir: this.#dir,
      error: error.message,
    });
    const failed = this.#inFlight ? [this.#inFlight, ...this.#batches] : this.#batches;
    this.#inFlight = null;
    this.#batches = [];
    this.#flushLoop = null;
    for (const batch of failed) batch.reject(error);
  }

  /** Deletes every key attached to a lease of the previous run (see the header). */
  async #expirePreviousLeases(): Promise<void> {
    const keys: string[] = [];
    for (const [key, stored] of this.state.storedEntries()) {
      if (stored.lease !== 0) keys.push(key);
    }
    for (let i = 0; i < keys.length; i += MAX_TXN_OPERATIONS) {
      const ops: Operation[] = keys
        .slice(i, i + MAX_TXN_OPERATIONS)
        .map((key) => ({ op: "delete", key }));
      await this.txn([], ops);
    }
    if (keys.length > 0) {
      this.logger.info("Deleted keys of leases from the previous run", {
        dir: this.#dir,
        keys: keys.length,
      });
    }
  }
}

/** Tries to take the data directory's lock, LOCK_RETRY_MS apart (about 0.2 s in all). */
const LOCK_ATTEMPTS = 10;
const LOCK_RETRY_MS = 20;

async function acquireLock(dir: string): Promise<Deno.FsFile> {
  let lock: Deno.FsFile;
  try {
    lock = await Deno.open(`${dir}/${LOCK_FILE}`, { read: true, write: true, create: true });
  } catch (error) {
    throw ioError(`Cannot open metadata store: cannot open "${dir}/${LOCK_FILE}"`, error);
  }
  let locked = false;
  // A lock this process released a moment ago was seen still held (1 test run in 5 under
  // `deno test --parallel`); the likely holder is a child process being spawned at that instant
  // (fork, then exec), which keeps a copy of the descriptor until its exec closes it. Another
  // process that really holds the lock still fails after the wait.
  for (let attempt = 0; attempt < LOCK_ATTEMPTS && !locked; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
    try {
      locked = await lock.tryLock(true);
    } catch (error) {
      lock.close();
      throw ioError(`Cannot open metadata store: cannot lock "${dir}/${LOCK_FILE}"`, error);
    }
  }
  if (!locked) {
    lock.close();
    throw new MetadataStoreError(
      `Cannot open metadata store: "${dir}" is in use by another process; ` +
        `stop that process or choose another data directory`,
    );
  }
  return lock;
}

async function removeTempFiles(dir: string): Promise<void> {
  for (const name of [SNAPSHOT_FILE, LOG_FILE]) {
    await Deno.remove(`${dir}/${name}${TEMP_SUFFIX}`).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }
}

// ---- Snapshot ----------------------------------------------------------------

function encodeSnapshot(state: KvStateMachine): Uint8Array {
  const encoded: [Uint8Array, Uint8Array, number, number, number, number][] = [];
  let size = 4 + 4 + 8 + 4; // magic, version, revision, count
  for (const [key, stored] of state.storedEntries()) {
    const keyBytes = encoder.encode(key);
    encoded.push([
      keyBytes,
      stored.value,
      stored.createRevision,
      stored.modRevision,
      stored.version,
      stored.lease,
    ]);
    size += 4 + keyBytes.length + 4 + stored.value.length + 8 * 4;
  }
  size += 4; // CRC
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let o = 0;
  view.setUint32(o, SNAPSHOT_MAGIC);
  view.setUint32(o + 4, SNAPSHOT_VERSION);
  setU64(view, o + 8, state.revision);
  view.setUint32(o + 16, encoded.length);
  o += 20;
  for (const [key, value, createRevision, modRevision, version, lease] of encoded) {
    view.setUint32(o, key.length);
    out.set(key, o + 4);
    o += 4 + key.length;
    view.setUint32(o, value.length);
    out.set(value, o + 4);
    o += 4 + value.length;
    setU64(view, o, createRevision);
    setU64(view, o + 8, modRevision);
    setU64(view, o + 16, version);
    setU64(view, o + 24, lease);
    o += 32;
  }
  view.setUint32(o, crc32c(out, 0, o));
  return out;
}

async function loadSnapshot(dir: string, state: KvStateMachine): Promise<void> {
  const path = `${dir}/${SNAPSHOT_FILE}`;
  let data: Uint8Array;
  try {
    data = await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw ioError(`Cannot open metadata store: cannot read "${path}"`, error);
  }
  try {
    decodeSnapshot(data, state);
  } catch (error) {
    // The snapshot was fsynced before it was renamed into place: damage here
    // is not a torn write, and dropping it would silently lose state.
    throw new MetadataStoreError(
      `Cannot open metadata store: snapshot "${path}" is corrupt ` +
        `(${error instanceof Error ? error.message : String(error)}); ` +
        `restore the directory from a backup`,
      { cause: error },
    );
  }
}

function decodeSnapshot(data: Uint8Array, state: KvStateMachine): void {
  const reader = new Reader(data);
  if (data.length < 24) throw new Error(`only ${data.length} bytes`);
  const crcAt = data.length - 4;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (view.getUint32(crcAt) !== crc32c(data, 0, crcAt)) throw new Error("checksum mismatch");
  if (reader.u32() !== SNAPSHOT_MAGIC) throw new Error("bad magic");
  const version = reader.u32();
  if (version !== SNAPSHOT_VERSION) throw new Error(`unknown version ${version}`);
  const revision = reader.u64();
  const count = reader.u32();
  for (let i = 0; i < count; i++) {
    const key = reader.string();
    const value = reader.bytes();
    const createRevision = reader.u64();
    const modRevision = reader.u64();
    const entryVersion = reader.u64();
    const lease = reader.u64();
    state.load(key, { value, createRevision, modRevision, version: entryVersion, lease });
  }
  if (reader.offset !== crcAt) throw new Error("trailing bytes");
  state.restoreRevision(revision);
}

// ---- Log records -------------------------------------------------------------

function encodeRecord(revision: number, changes: readonly KvChange[]): Uint8Array {
  const keys = changes.map((change) => encoder.encode(change.key));
  let bodyBytes = 1 + 8 + 4;
  changes.forEach((change, i) => {
    bodyBytes += 1 + 4 + keys[i].length;
    if (change.kind === "put") bodyBytes += 8 + 4 + change.value.length;
  });
  const out = new Uint8Array(RECORD_HEADER_BYTES + bodyBytes);
  const view = new DataView(out.buffer);
  let o = RECORD_HEADER_BYTES;
  view.setUint8(o, RECORD_TYPE_WRITE);
  setU64(view, o + 1, revision);
  view.setUint32(o + 9, changes.length);
  o += 13;
  changes.forEach((change, i) => {
    view.setUint8(o, change.kind === "put" ? CHANGE_PUT : CHANGE_DELETE);
    view.setUint32(o + 1, keys[i].length);
    out.set(keys[i], o + 5);
    o += 5 + keys[i].length;
    if (change.kind === "put") {
      setU64(view, o, change.lease);
      view.setUint32(o + 8, change.value.length);
      out.set(change.value, o + 12);
      o += 12 + change.value.length;
    }
  });
  view.setUint32(0, bodyBytes);
  view.setUint32(4, crc32c(out, RECORD_HEADER_BYTES, out.length));
  return out;
}

function decodeRecordBody(body: Uint8Array): { revision: number; changes: KvChange[] } {
  const reader = new Reader(body);
  const type = reader.u8();
  if (type !== RECORD_TYPE_WRITE) throw new Error(`unknown record type ${type}`);
  const revision = reader.u64();
  const count = reader.u32();
  if (count === 0) throw new Error("record without changes");
  const changes: KvChange[] = [];
  for (let i = 0; i < count; i++) {
    const kind = reader.u8();
    const key = reader.string();
    if (kind === CHANGE_PUT) {
      const lease = reader.u64();
      changes.push({ kind: "put", key, lease, value: reader.bytes() });
    } else if (kind === CHANGE_DELETE) {
      changes.push({ kind: "delete", key });
    } else {
      throw new Error(`unknown change kind ${kind}`);
    }
  }
  if (reader.offset !== body.length) throw new Error("trailing bytes in record");
  return { revision, changes };
}

type ParsedRecord =
  | { ok: true; end: number; revision: number; changes: KvChange[] }
  | { ok: false; reason: string };

/** Parses the log record at `offset`, checking length, checksum and body. */
function parseRecord(data: Uint8Array, view: DataView, offset: number): ParsedRecord {
  if (data.length - offset < RECORD_HEADER_BYTES) {
    return { ok: false, reason: "incomplete record header" };
  }
  const bodyBytes = view.getUint32(offset);
  const end = offset + RECORD_HEADER_BYTES + bodyBytes;
  if (bodyBytes > MAX_RECORD_BYTES || end > data.length) {
    return { ok: false, reason: `record of ${bodyBytes} bytes runs past the end` };
  }
  if (view.getUint32(offset + 4) !== crc32c(data, offset + RECORD_HEADER_BYTES, end)) {
    return { ok: false, reason: "checksum mismatch" };
  }
  try {
    return { ok: true, end, ...decodeRecordBody(data.subarray(offset + RECORD_HEADER_BYTES, end)) };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

/** Smallest body: type, revision, change count, one delete of an empty key. */
const MIN_RECORD_BODY_BYTES = 1 + 8 + 4 + 1 + 4;

/**
 * The offset of the first valid record at or after `from`, or -1. Tries
 * every byte position (records carry no sync marker); cheap header checks
 * come first, so the checksum runs only where a header is plausible.
 */
function findNextRecord(data: Uint8Array, view: DataView, from: number): number {
  const last = data.length - RECORD_HEADER_BYTES - MIN_RECORD_BODY_BYTES;
  for (let p = from; p <= last; p++) {
    const bodyBytes = view.getUint32(p);
    if (bodyBytes < MIN_RECORD_BODY_BYTES || p + RECORD_HEADER_BYTES + bodyBytes > data.length) {
      continue;
    }
    const body = p + RECORD_HEADER_BYTES;
    if (data[body] !== RECORD_TYPE_WRITE || view.getUint32(body + 1) > 0x1f_ffff) continue;
    const count = view.getUint32(body + 9);
    if (count === 0 || count * 5 > bodyBytes) continue;
    if (parseRecord(data, view, p).ok) return p;
  }
  return -1;
}

/**
 * Replays the log into `state` and returns the length of its valid prefix,
 * truncating a torn tail; damage with valid records after it throws
 * `MetadataLogCorruptError` (see the header).
 */
async function replayLog(dir: string, state: KvStateMachine, logger: Logger): Promise<number> {
  const path = `${dir}/${LOG_FILE}`;
  const data = await readLog(path);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let offset = 0;
  let replayed = 0;
  let badReason: string | null = null;
  while (offset < data.length) {
    const record = parseRecord(data, view, offset);
    if (!record.ok) {
      const next = findNextRecord(data, view, offset + 1);
      if (next >= 0) throw new MetadataLogCorruptError(path, offset, next, record.reason);
      badReason = record.reason;
      break;
    }
    if (record.revision > state.revision + 1) {
      throw new MetadataStoreError(
        `Cannot open metadata store: log "${path}" jumps from revision ${state.revision} ` +
          `to ${record.revision} at byte ${offset}; run "kafscale metadata repair --data-dir DIR" ` +
          `or restore the directory from a backup`,
      );
    }
    // Records at or below the snapshot's revision are already in it.
    if (record.revision === state.revision + 1) {
      state.apply(record.revision, record.changes);
      replayed++;
    }
    offset = record.end;
  }
  if (badReason !== null) {
    logger.warn("Truncating torn tail of the metadata log (no valid record follows it)", {
      file: path,
      offset,
      droppedBytes: data.length - offset,
      reason: badReason,
    });
    try {
      const file = await Deno.open(path, { write: true });
      try {
        await file.truncate(offset);
        await file.sync();
      } finally {
        file.close();
      }
    } catch (error) {
      throw ioError(`Cannot open metadata store: cannot truncate "${path}"`, error);
    }
  }
  logger.debug("Replayed metadata log", { file: path, records: replayed, bytes: offset });
  return offset;
}

async function readLog(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return new Uint8Array(0);
    throw ioError(`Cannot open metadata store: cannot read "${path}"`, error);
  }
}

// ---- Repair ------------------------------------------------------------------

/** A stretch of the log that held no valid record. */
export interface DamagedRange {
  /** Byte offset of the first bad byte. */
  offset: number;
  /** Bytes skipped up to the next valid record (or the end of the file). */
  bytes: number;
  reason: string;
  /** True when no valid record follows: a torn last write, never acknowledged. */
  tornTail: boolean;
  /**
   * Keys the damaged record seems to name, read without a valid checksum:
   * a hint at what may be lost, not a certainty.
   */
  possibleKeys: string[];
}

export interface MetadataRepairReport {
  /** The metadata directory. */
  dir: string;
  /** False when the log was clean: nothing was written. */
  repaired: boolean;
  damaged: DamagedRange[];
  /** Revisions whose records were lost, as inclusive ranges. */
  missingRevisions: [number, number][];
  /** Log records whose writes are in the rebuilt state. */
  recordsReplayed: number;
  /** The revision of the rebuilt state. */
  revision: number;
  keys: number;
  /** Copies of the files as they were before the repair. */
  backups: string[];
}

/** Bound on the keys reported per damaged record. */
const MAX_POSSIBLE_KEYS = 100;

/**
 * Rebuilds a store whose log is damaged, for `kafscale metadata repair`.
 * Takes the directory lock (the broker must be stopped), loads the snapshot
 * and replays every valid record in order, skipping damaged bytes; a
 * revision gap left by a lost record is stepped over. Records carry resolved
 * values, not operations, so each later record applies as written: what is
 * lost is exactly the changes of the damaged records whose keys were not
 * written again later (a lost delete may bring a key back).
 *
 * With `dryRun`, or when nothing is damaged, nothing is written. Otherwise
 * the log (and snapshot) are first copied to `wal.corrupt-<time>` (and
 * `snapshot.before-repair-<time>`), then the rebuilt state is written as the
 * snapshot and the log starts empty. Every step is crash-safe: rerunning
 * after a crash gives the same state. Never touches anything outside `dir`.
 */
export async function repairEmbeddedMetadataStore(
  dir: string,
  options: { dryRun?: boolean; now?: Date } = {},
): Promise<MetadataRepairReport> {
  try {
    await Deno.stat(dir);
  } catch (error) {
    throw ioError(`Cannot repair metadata store: cannot read "${dir}"`, error);
  }
  const lock = await acquireLock(dir);
  try {
    const state = new KvStateMachine();
    await loadSnapshot(dir, state);
    const logPath = `${dir}/${LOG_FILE}`;
    const data = await readLog(logPath);
    const scan = salvageLog(data, state);
    const report: MetadataRepairReport = {
      dir,
      repaired: false,
      ...scan,
      revision: state.revision,
      keys: state.size,
      backups: [],
    };
    if (scan.damaged.length === 0 || options.dryRun) return report;

    const stamp = (options.now ?? new Date()).toISOString().replace(/[:.]/g, "-");
    const logBackup = `${logPath}.corrupt-${stamp}`;
    await Deno.copyFile(logPath, logBackup);
    report.backups.push(logBackup);
    const snapshotPath = `${dir}/${SNAPSHOT_FILE}`;
    const snapshotBackup = `${snapshotPath}.before-repair-${stamp}`;
    try {
      await Deno.copyFile(snapshotPath, snapshotBackup);
      report.backups.push(snapshotBackup);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    for (const backup of report.backups) await fsyncFile(backup);
    await syncDirectory(dir);
    // The new snapshot holds everything; if we crash before the log is
    // replaced, the old log's records are all at or below its revision, and
    // a rerun of the repair ends in the same state.
    await writeFileDurably(dir, SNAPSHOT_FILE, encodeSnapshot(state));
    await writeFileDurably(dir, LOG_FILE, new Uint8Array(0));
    report.repaired = true;
    return report;
  } catch (error) {
    if (error instanceof MetadataStoreError) throw error;
    throw ioError(`Cannot repair metadata store in "${dir}"`, error);
  } finally {
    lock.close();
  }
}

/** Replays every valid record of `data` into `state`, skipping damage (see the repair). */
function salvageLog(
  data: Uint8Array,
  state: KvStateMachine,
): Pick<MetadataRepairReport, "damaged" | "missingRevisions" | "recordsReplayed"> {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const damaged: DamagedRange[] = [];
  const missingRevisions: [number, number][] = [];
  let recordsReplayed = 0;
  let offset = 0;
  while (offset < data.length) {
    const record = parseRecord(data, view, offset);
    if (!record.ok) {
      const next = findNextRecord(data, view, offset + 1);
      const end = next >= 0 ? next : data.length;
      damaged.push({
        offset,
        bytes: end - offset,
        reason: record.reason,
        tornTail: next < 0,
        possibleKeys: possibleKeys(data, view, offset),
      });
      offset = end;
      continue;
    }
    offset = record.end;
    if (record.revision <= state.revision) continue; // in the snapshot already
    if (record.revision > state.revision + 1) {
      missingRevisions.push([state.revision + 1, record.revision - 1]);
      state.restoreRevision(record.revision - 1);
    }
    state.apply(record.revision, record.changes);
    recordsReplayed++;
  }
  return { damaged, missingRevisions, recordsReplayed };
}

/** Keys a damaged record seems to name (no checksum: a hint only). */
function possibleKeys(data: Uint8Array, view: DataView, offset: number): string[] {
  if (data.length - offset < RECORD_HEADER_BYTES) return [];
  const bodyEnd = Math.min(data.length, offset + RECORD_HEADER_BYTES + view.getUint32(offset));
  const reader = new Reader(data.subarray(offset + RECORD_HEADER_BYTES, bodyEnd));
  const keys: string[] = [];
  try {
    if (reader.u8() !== RECORD_TYPE_WRITE) return keys;
    reader.u64();
    const count = reader.u32();
    for (let i = 0; i < count && keys.length < MAX_POSSIBLE_KEYS; i++) {
      const kind = reader.u8();
      keys.push(reader.string());
      if (kind === CHANGE_PUT) {
        reader.u64();
        reader.bytes();
      } else if (kind !== CHANGE_DELETE) {
        break;
      }
    }
  } catch {
    // The damage ends what can be read.
  }
  return keys;
}

async function fsyncFile(path: string): Promise<void> {
  const file = await Deno.open(path, { read: true, write: true });
  try {
    await file.sync();
  } finally {
    file.close();
  }
}

// ---- I/O helpers -------------------------------------------------------------

async function writeFileDurably(dir: string, name: string, data: Uint8Array): Promise<void> {
  const temp = `${dir}/${name}${TEMP_SUFFIX}`;
  const file = await Deno.open(temp, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, data);
    await file.sync();
  } finally {
    file.close();
  }
  await Deno.rename(temp, `${dir}/${name}`);
  await syncDirectory(dir);
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let written = 0;
  while (written < data.length) written += await file.write(data.subarray(written));
}

async function syncDirectory(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (!(error instanceof Deno.errors.NotSupported) && code !== "EINVAL") throw error;
  } finally {
    handle?.close();
  }
}

function newBatch(): Batch {
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  return { records: [], bytes: 0, lastRevision: 0, done: promise, resolve, reject };
}

function ioError(context: string, error: unknown): MetadataStoreError {
  if (error instanceof MetadataStoreError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new MetadataStoreError(
    `${context}: ${reason}; check that the directory is writable and the disk has space`,
    { cause: error },
  );
}

function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, Math.floor(value / 0x1_0000_0000));
  view.setUint32(offset + 4, value >>> 0);
}

/** Bounds-checked big-endian reads. */
class Reader {
  readonly #data: Uint8Array;
  readonly #view: DataView;
  offset = 0;

  constructor(data: Uint8Array) {
    this.#data = data;
    this.#view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  u8(): number {
    this.#need(1);
    return this.#view.getUint8(this.offset++);
  }
  u32(): number {
    this.#need(4);
    const value = this.#view.getUint32(this.offset);
    this.offset += 4;
    return value;
  }
  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    if (hi > 0x1f_ffff) throw new Error("integer above 2^53");
    return hi * 0x1_0000_0000 + lo;
  }
  /** A length-prefixed byte string, copied out of the input. */
  bytes(): Uint8Array {
    const length = this.u32();
    this.#need(length);
    const out = this.#data.slice(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }
  string(): string {
    const length = this.u32();
    this.#need(length);
    const out = decoder.decode(this.#data.subarray(this.offset, this.offset + length));
    this.offset += length;
    return out;
  }

  #need(n: number): void {
    if (this.offset + n > this.#data.length) throw new Error("record ends early");
  }
}
