/**
 * The on-store segment and index format (DESIGN "Storage format", compatible
 * with KafScale's S3 layout). Pure: encodes, parses and validates bytes and
 * object keys; does no I/O.
 *
 * Segment (`segment-<base>.kfs`): 32-byte header — `KAFS`, u16 version 1,
 * u16 flags 0, i64 base offset, i32 message count, i64 creation time (unix
 * ms), u32 0 — then the Kafka v2 record batches exactly as produced (only the
 * base offset rewritten), then a 16-byte footer — u32 CRC32C of the body (the
 * batches), i64 last offset, `END!`. Big-endian.
 *
 * Index (`segment-<base>.index`): 16-byte header — `IDX\0`, u16 version 1,
 * i32 entry count, i32 interval in messages, u16 0 — then 12-byte entries
 * (i64 offset, i32 absolute byte position of a batch start in the `.kfs`).
 * Sparse and batch-aligned: the first batch is always indexed, then a batch
 * whenever at least `interval` messages were written since the last entry.
 *
 * Compacted segments (README "Compaction") set flag bit 0 (`SEGMENT_FLAG_COMPACTED`): their
 * batches keep their offsets, so there may be gaps between batches, before the first one and
 * after the last one (the header's base and the footer's last offset still give the span the
 * segment covers), and there may be no batch at all. A rewrite of the segment at base B is
 * stored under a new key, `segment-<B>.g<generation>.kfs` (+ `.index`), never over the old one;
 * which generation is current is in the partition's committed metadata state.
 */

import { crc32c, crc32cCombine } from "../protocol/crc32c.ts";
import { joinBytes } from "../util/bytes.ts";

export const SEGMENT_MAGIC = "KAFS";
export const SEGMENT_FOOTER_MAGIC = "END!";
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 32;
export const SEGMENT_FOOTER_BYTES = 16;
export const SEGMENT_OVERHEAD_BYTES = SEGMENT_HEADER_BYTES + SEGMENT_FOOTER_BYTES;
export const INDEX_MAGIC = "IDX\0";
export const INDEX_VERSION = 1;
export const INDEX_HEADER_BYTES = 16;
export const INDEX_ENTRY_BYTES = 12;
/** Segment positions are i32 in the index, so a segment object is at most this big. */
export const SEGMENT_BYTES_LIMIT = 0x7fff_ffff;
/** Width of the zero-padded base offset in object keys. */
export const OFFSET_KEY_DIGITS = 20;
/** Header flag: a compacted segment (offset gaps allowed, may hold no batch). */
export const SEGMENT_FLAG_COMPACTED = 1;

export type SegmentObjectKind = "kfs" | "index";

/** The bytes do not follow the segment or index format (corruption, truncation). */
export class SegmentFormatError extends Error {
  override name = "SegmentFormatError";
}

export interface SegmentHeader {
  /** 0, or SEGMENT_FLAG_COMPACTED. */
  flags: number;
  baseOffset: number;
  messageCount: number;
  createdMs: number;
}

export interface SegmentFooter {
  crc: number;
  lastOffset: number;
}

export interface IndexEntry {
  /** Base offset of the indexed batch. */
  offset: number;
  /** Absolute byte position of the batch in the `.kfs` object. */
  position: number;
}

export interface ParsedIndex {
  intervalMessages: number;
  entries: IndexEntry[];
}

/** One batch to place in a segment: its bytes (base offset already assigned) and counts. */
export interface SegmentBatchInput {
  bytes: Uint8Array;
  baseOffset: number;
  lastOffsetDelta: number;
  recordsCount: number;
}

export interface EncodedSegment {
  baseOffset: number;
  lastOffset: number;
  messageCount: number;
  createdMs: number;
  /** The whole `.kfs` object. */
  segment: Uint8Array;
  /** The whole `.index` object. */
  index: Uint8Array;
  indexEntries: IndexEntry[];
  /** Absolute position of every batch in `segment`, in order. */
  batchPositions: number[];
}

// ---- object keys ---------------------------------------------------------

/** `<namespace>/<topic>/<partition>/`: every object of the partition starts with it. */
export function partitionObjectPrefix(namespace: string, topic: string, partition: number): string {
  return `${namespace}/${topic}/${partition}/`;
}

export function segmentObjectKey(
  namespace: string,
  topic: string,
  partition: number,
  baseOffset: number,
  kind: SegmentObjectKind,
  generation = 0,
): string {
  const gen = generation > 0 ? `.g${generation}` : "";
  return `${partitionObjectPrefix(namespace, topic, partition)}segment-${
    String(baseOffset).padStart(OFFSET_KEY_DIGITS, "0")
  }${gen}.${kind}`;
}

const SEGMENT_KEY_PATTERN = /(?:^|\/)segment-(\d{20})(?:\.g([1-9]\d{0,9}))?\.(kfs|index)$/;

/**
 * Parses a segment object key: its base offset, kind, and generation (0 for a segment as
 * sealed, n > 0 for the n-th compaction rewrite).
 */
export function parseSegmentObjectKey(
  key: string,
): { baseOffset: number; kind: SegmentObjectKind; generation: number } | null {
  const match = SEGMENT_KEY_PATTERN.exec(key);
  if (!match) return null;
  const baseOffset = Number(match[1]);
  if (!Number.isSafeInteger(baseOffset)) return null;
  return {
    baseOffset,
    kind: match[3] as SegmentObjectKind,
    generation: match[2] === undefined ? 0 : Number(match[2]),
  };
}

// ---- helpers --------------------------------------------------------------

function writeAscii(view: DataView, at: number, text: string): void {
  for (let i = 0; i < text.length; i++) view.setUint8(at + i, text.charCodeAt(i));
}

function readAscii(bytes: Uint8Array, at: number, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += String.fromCharCode(bytes[at + i]);
  return out;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function getInt64(view: DataView, at: number): number {
  const value = view.getBigInt64(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new SegmentFormatError(`Offset ${value} at byte ${at} is beyond 2^53`);
  }
  return Number(value);
}

// ---- segment ---------------------------------------------------------------

export function encodeSegmentHeader(
  header: Omit<SegmentHeader, "flags"> & { flags?: number },
): Uint8Array {
  const bytes = new Uint8Array(SEGMENT_HEADER_BYTES);
  writeSegmentHeader(viewOf(bytes), 0, header);
  return bytes;
}

function writeSegmentHeader(
  view: DataView,
  at: number,
  header: Omit<SegmentHeader, "flags"> & { flags?: number },
): void {
  writeAscii(view, at, SEGMENT_MAGIC);
  view.setUint16(at + 4, SEGMENT_VERSION);
  view.setUint16(at + 6, header.flags ?? 0);
  view.setBigInt64(at + 8, BigInt(header.baseOffset));
  view.setInt32(at + 16, header.messageCount);
  view.setBigInt64(at + 20, BigInt(header.createdMs));
  view.setUint32(at + 28, 0);
}

export function parseSegmentHeader(bytes: Uint8Array): SegmentHeader {
  if (bytes.byteLength < SEGMENT_HEADER_BYTES) {
    throw new SegmentFormatError(
      `Segment header is truncated: ${bytes.byteLength} of ${SEGMENT_HEADER_BYTES} bytes`,
    );
  }
  const magic = readAscii(bytes, 0, 4);
  if (magic !== SEGMENT_MAGIC) {
    throw new SegmentFormatError(`Segment magic is ${JSON.stringify(magic)}, expected "KAFS"`);
  }
  const view = viewOf(bytes);
  const version = view.getUint16(4);
  if (version !== SEGMENT_VERSION) {
    throw new SegmentFormatError(`Segment version ${version} is not supported (expected 1)`);
  }
  const flags = view.getUint16(6);
  if (flags !== 0 && flags !== SEGMENT_FLAG_COMPACTED) {
    throw new SegmentFormatError(`Segment flags are ${flags}, expected 0 or 1`);
  }
  const messageCount = view.getInt32(16);
  if (messageCount < 0) throw new SegmentFormatError(`Segment message count ${messageCount} < 0`);
  return { flags, baseOffset: getInt64(view, 8), messageCount, createdMs: getInt64(view, 20) };
}

export function encodeSegmentFooter(footer: SegmentFooter): Uint8Array {
  const bytes = new Uint8Array(SEGMENT_FOOTER_BYTES);
  writeSegmentFooter(viewOf(bytes), 0, footer);
  return bytes;
}

function writeSegmentFooter(view: DataView, at: number, footer: SegmentFooter): void {
  view.setUint32(at, footer.crc >>> 0);
  view.setBigInt64(at + 4, BigInt(footer.lastOffset));
  writeAscii(view, at + 12, SEGMENT_FOOTER_MAGIC);
}

/** Parses the footer from the last 16 bytes of `bytes`. */
export function parseSegmentFooter(bytes: Uint8Array): SegmentFooter {
  if (bytes.byteLength < SEGMENT_FOOTER_BYTES) {
    throw new SegmentFormatError(
      `Segment footer is truncated: ${bytes.byteLength} of ${SEGMENT_FOOTER_BYTES} bytes`,
    );
  }
  const at = bytes.byteLength - SEGMENT_FOOTER_BYTES;
  const magic = readAscii(bytes, at + 12, 4);
  if (magic !== SEGMENT_FOOTER_MAGIC) {
    throw new SegmentFormatError(
      `Segment footer magic is ${JSON.stringify(magic)}, expected "END!" (truncated object?)`,
    );
  }
  const view = viewOf(bytes);
  return { crc: view.getUint32(at), lastOffset: getInt64(view, at + 4) };
}

/**
 * Checks a whole `.kfs` object: header, footer, body CRC32C, and when given
 * the base offset its key promised. Returns the parsed header and footer.
 */
export function validateSegment(
  segment: Uint8Array,
  options: { expectedBaseOffset?: number; checkCrc?: boolean } = {},
): { header: SegmentHeader; footer: SegmentFooter } {
  if (segment.byteLength < SEGMENT_OVERHEAD_BYTES) {
    throw new SegmentFormatError(
      `Segment is ${segment.byteLength} bytes, shorter than header and footer`,
    );
  }
  const header = parseSegmentHeader(segment);
  const footer = parseSegmentFooter(segment);
  if (
    options.expectedBaseOffset !== undefined && header.baseOffset !== options.expectedBaseOffset
  ) {
    throw new SegmentFormatError(
      `Segment header base offset ${header.baseOffset} does not match its key's ` +
        `${options.expectedBaseOffset}`,
    );
  }
  if (footer.lastOffset < header.baseOffset - 1) {
    throw new SegmentFormatError(
      `Segment last offset ${footer.lastOffset} is before its base offset ${header.baseOffset}`,
    );
  }
  if (options.checkCrc ?? true) {
    const crc = crc32c(segment, SEGMENT_HEADER_BYTES, segment.byteLength - SEGMENT_FOOTER_BYTES);
    if (crc >>> 0 !== footer.crc) {
      throw new SegmentFormatError(
        `Segment body CRC32C is ${crc >>> 0}, footer says ${footer.crc}: the object is corrupt`,
      );
    }
  }
  return { header, footer };
}

/**
 * Body bytes after which the next batch is indexed whatever the message
 * count (like Kafka's `index.interval.bytes`), so a ranged read never has to
 * skip more than this plus one batch to reach an offset, however big the
 * records are.
 */
export const INDEX_INTERVAL_BYTES = 64 * 1024;

/**
 * Picks the batches to index: the first, then each batch that starts after at
 * least `intervalMessages` messages (KafScale's rule) or `intervalBytes`
 * bytes since the previous entry.
 */
export function buildIndexEntries(
  batches: { baseOffset: number; position: number; recordsCount: number }[],
  intervalMessages: number,
  intervalBytes = INDEX_INTERVAL_BYTES,
): IndexEntry[] {
  const interval = Math.max(1, intervalMessages);
  const entries: IndexEntry[] = [];
  let sinceLast = 0;
  let lastPosition = 0;
  for (const b of batches) {
    if (
      entries.length === 0 || sinceLast >= interval || b.position - lastPosition >= intervalBytes
    ) {
      entries.push({ offset: b.baseOffset, position: b.position });
      sinceLast = 0;
      lastPosition = b.position;
    }
    sinceLast += b.recordsCount;
  }
  return entries;
}

/** Bytes of a v2 batch header before the part its own CRC covers (attributes onward). */
const BATCH_CRC_START = 21;

/**
 * CRC32C of a whole v2 batch from its stored CRC (validated when it was
 * produced) and its first 21 bytes, so the segment body is not read twice.
 * Anything that is not a v2 batch is read in full.
 */
export function batchCrc(bytes: Uint8Array): number {
  if (bytes.byteLength <= BATCH_CRC_START || bytes[16] !== 2) return crc32c(bytes);
  const stored = ((bytes[17] << 24) | (bytes[18] << 16) | (bytes[19] << 8) | bytes[20]) >>> 0;
  return crc32cCombine(
    crc32c(bytes, 0, BATCH_CRC_START),
    stored,
    bytes.byteLength - BATCH_CRC_START,
  );
}

/** A segment as its pieces: header, the batches as given (not copied), footer; and its index. */
export interface SegmentParts {
  baseOffset: number;
  lastOffset: number;
  messageCount: number;
  createdMs: number;
  /** The `.kfs` object in order: header, every batch, footer. */
  parts: Uint8Array[];
  /** Bytes of the `.kfs` object. */
  size: number;
  /** The whole `.index` object. */
  index: Uint8Array;
  indexEntries: IndexEntry[];
  /** Absolute position of every batch in the `.kfs` object, in order. */
  batchPositions: number[];
}

/**
 * The `.kfs` pieces and the `.index` object for `batches` (non-empty, contiguous offsets),
 * without copying any batch: a store that writes pieces (`putParts`) never joins them.
 */
export function encodeSegmentParts(
  batches: SegmentBatchInput[],
  options: {
    createdMs: number;
    indexIntervalMessages: number;
    /**
     * A compacted segment's span (its input's base and last offset): offsets between, before
     * and after the batches may be missing, and there may be no batch. The header says so.
     */
    compactedSpan?: { baseOffset: number; lastOffset: number };
  },
): SegmentParts {
  const span = options.compactedSpan;
  if (batches.length === 0 && !span) throw new Error("Cannot encode a segment without batches");
  let bodyBytes = 0;
  let messageCount = 0;
  for (let i = 0; i < batches.length; i++) {
    const b = batches[i];
    bodyBytes += b.bytes.byteLength;
    messageCount += b.recordsCount;
    if (i > 0) {
      const prev = batches[i - 1];
      const next = prev.baseOffset + prev.lastOffsetDelta + 1;
      if (span ? b.baseOffset < next : b.baseOffset !== next) {
        throw new Error(
          `Segment batches are not ${span ? "in offset order" : "contiguous"}: ${b.baseOffset} ` +
            `follows ${prev.baseOffset}+${prev.lastOffsetDelta}`,
        );
      }
    }
  }
  const total = SEGMENT_OVERHEAD_BYTES + bodyBytes;
  if (total > SEGMENT_BYTES_LIMIT) {
    throw new Error(`Segment of ${total} bytes exceeds the i32 position limit`);
  }
  const last = batches[batches.length - 1];
  const baseOffset = span ? span.baseOffset : batches[0].baseOffset;
  const lastOffset = span ? span.lastOffset : last.baseOffset + last.lastOffsetDelta;
  if (
    span && batches.length > 0 &&
    (batches[0].baseOffset < baseOffset || last.baseOffset + last.lastOffsetDelta > lastOffset)
  ) {
    throw new Error(`Compacted segment batches fall outside ${baseOffset}-${lastOffset}`);
  }
  const header = new Uint8Array(SEGMENT_HEADER_BYTES);
  writeSegmentHeader(viewOf(header), 0, {
    flags: span ? SEGMENT_FLAG_COMPACTED : 0,
    baseOffset,
    messageCount,
    createdMs: options.createdMs,
  });
  const batchPositions: number[] = new Array(batches.length);
  const parts: Uint8Array[] = [header];
  let at = SEGMENT_HEADER_BYTES;
  let crc = 0;
  for (let i = 0; i < batches.length; i++) {
    const bytes = batches[i].bytes;
    batchPositions[i] = at;
    parts.push(bytes);
    crc = crc32cCombine(crc, batchCrc(bytes), bytes.byteLength);
    at += bytes.byteLength;
  }
  const footer = new Uint8Array(SEGMENT_FOOTER_BYTES);
  writeSegmentFooter(viewOf(footer), 0, { crc, lastOffset });
  parts.push(footer);
  const indexEntries = buildIndexEntries(
    batches.map((b, i) => ({
      baseOffset: b.baseOffset,
      position: batchPositions[i],
      recordsCount: b.recordsCount,
    })),
    options.indexIntervalMessages,
  );
  return {
    baseOffset,
    lastOffset,
    messageCount,
    createdMs: options.createdMs,
    parts,
    size: total,
    index: encodeIndex(indexEntries, options.indexIntervalMessages),
    indexEntries,
    batchPositions,
  };
}

/**
 * Builds the `.kfs` and `.index` objects for `batches` (non-empty, contiguous
 * offsets). Copies each batch's bytes once into the segment object.
 */
export function encodeSegment(
  batches: SegmentBatchInput[],
  options: Parameters<typeof encodeSegmentParts>[1],
): EncodedSegment {
  const { parts, size, ...rest } = encodeSegmentParts(batches, options);
  return { ...rest, segment: joinBytes(parts, size) };
}

/**
 * A segment encoded while its batches arrive, oldest first, so that a seal streams it from the
 * write-ahead stream to the store without holding it whole (`ObjectStore.putStream`). Takes
 * only producer batches with contiguous offsets over `[baseOffset, lastOffset]`, which is what
 * a write-ahead range holds (produce checks recordsCount = lastOffsetDelta + 1): the header's
 * message count is then the offset span, known before the first batch. Each batch is checked
 * against that as it comes; `finish` checks that the span was covered. The bytes are those
 * `encodeSegmentParts` gives for the same batches.
 */
export class SegmentStreamEncoder {
  readonly baseOffset: number;
  readonly lastOffset: number;
  readonly #indexIntervalMessages: number;
  readonly #header: Uint8Array;
  #next: number;
  #at = SEGMENT_HEADER_BYTES;
  #crc = 0;
  #batches: { baseOffset: number; position: number; recordsCount: number }[] = [];

  constructor(
    span: { baseOffset: number; lastOffset: number },
    options: { createdMs: number; indexIntervalMessages: number },
  ) {
    const messageCount = span.lastOffset - span.baseOffset + 1;
    if (!(messageCount >= 1) || messageCount > 0x7fff_ffff) {
      throw new Error(`Cannot stream a segment over ${span.baseOffset}-${span.lastOffset}`);
    }
    this.baseOffset = span.baseOffset;
    this.lastOffset = span.lastOffset;
    this.#next = span.baseOffset;
    this.#indexIntervalMessages = options.indexIntervalMessages;
    this.#header = new Uint8Array(SEGMENT_HEADER_BYTES);
    writeSegmentHeader(viewOf(this.#header), 0, {
      flags: 0,
      baseOffset: span.baseOffset,
      messageCount,
      createdMs: options.createdMs,
    });
  }

  /** The header: the first bytes of the `.kfs` object. */
  get header(): Uint8Array {
    return this.#header;
  }

  /** Takes the next batch (`bytes`, described by `info`); it goes into the object as it is. */
  add(
    bytes: Uint8Array,
    info: { baseOffset: number; lastOffsetDelta: number; recordsCount: number },
  ): void {
    if (info.baseOffset !== this.#next) {
      throw new Error(
        `Segment batches are not contiguous: ${info.baseOffset} follows ${this.#next - 1}`,
      );
    }
    if (info.recordsCount !== info.lastOffsetDelta + 1 || info.recordsCount < 1) {
      throw new Error(
        `Batch at ${info.baseOffset} has recordsCount ${info.recordsCount} and lastOffsetDelta ` +
          `${info.lastOffsetDelta}: only producer batches can be streamed into a segment`,
      );
    }
    this.#next = info.baseOffset + info.recordsCount;
    if (this.#next - 1 > this.lastOffset) {
      throw new Error(
        `Batch at ${info.baseOffset} ends past the segment's last offset ${this.lastOffset}`,
      );
    }
    if (this.#at + bytes.byteLength + SEGMENT_FOOTER_BYTES > SEGMENT_BYTES_LIMIT) {
      throw new Error("Segment exceeds the i32 position limit");
    }
    this.#batches.push({
      baseOffset: info.baseOffset,
      position: this.#at,
      recordsCount: info.recordsCount,
    });
    this.#crc = crc32cCombine(this.#crc, batchCrc(bytes), bytes.byteLength);
    this.#at += bytes.byteLength;
  }

  /** The footer (the last bytes of the `.kfs` object), the `.index` object and the total size. */
  finish(): { footer: Uint8Array; index: Uint8Array; size: number } {
    if (this.#next !== this.lastOffset + 1) {
      throw new Error(
        `Segment ${this.baseOffset}-${this.lastOffset} got batches up to ${this.#next - 1} only`,
      );
    }
    const footer = new Uint8Array(SEGMENT_FOOTER_BYTES);
    writeSegmentFooter(viewOf(footer), 0, { crc: this.#crc, lastOffset: this.lastOffset });
    const entries = buildIndexEntries(this.#batches, this.#indexIntervalMessages);
    return {
      footer,
      index: encodeIndex(entries, this.#indexIntervalMessages),
      size: this.#at + SEGMENT_FOOTER_BYTES,
    };
  }
}

// ---- index ---------------------------------------------------------------------

export function encodeIndex(entries: IndexEntry[], intervalMessages: number): Uint8Array {
  const bytes = new Uint8Array(INDEX_HEADER_BYTES + entries.length * INDEX_ENTRY_BYTES);
  const view = viewOf(bytes);
  writeAscii(view, 0, INDEX_MAGIC);
  view.setUint16(4, INDEX_VERSION);
  view.setInt32(6, entries.length);
  view.setInt32(10, Math.max(1, intervalMessages));
  view.setUint16(14, 0);
  let at = INDEX_HEADER_BYTES;
  for (const e of entries) {
    view.setBigInt64(at, BigInt(e.offset));
    view.setInt32(at + 8, e.position);
    at += INDEX_ENTRY_BYTES;
  }
  return bytes;
}

/** Parses and validates an `.index` object (entries strictly increasing, inside the segment). */
export function parseIndex(bytes: Uint8Array): ParsedIndex {
  if (bytes.byteLength < INDEX_HEADER_BYTES) {
    throw new SegmentFormatError(
      `Index header is truncated: ${bytes.byteLength} of ${INDEX_HEADER_BYTES} bytes`,
    );
  }
  const magic = readAscii(bytes, 0, 4);
  if (magic !== INDEX_MAGIC) {
    throw new SegmentFormatError(`Index magic is ${JSON.stringify(magic)}, expected "IDX\\0"`);
  }
  const view = viewOf(bytes);
  const version = view.getUint16(4);
  if (version !== INDEX_VERSION) {
    throw new SegmentFormatError(`Index version ${version} is not supported (expected 1)`);
  }
  const count = view.getInt32(6);
  const expected = INDEX_HEADER_BYTES + count * INDEX_ENTRY_BYTES;
  if (count < 0 || expected !== bytes.byteLength) {
    throw new SegmentFormatError(
      `Index claims ${count} entries (${expected} bytes) but has ${bytes.byteLength} bytes`,
    );
  }
  const entries: IndexEntry[] = new Array(count);
  let at = INDEX_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const entry = { offset: getInt64(view, at), position: view.getInt32(at + 8) };
    if (entry.position < SEGMENT_HEADER_BYTES) {
      throw new SegmentFormatError(`Index entry ${i} points inside the segment header`);
    }
    if (
      i > 0 && (entry.offset <= entries[i - 1].offset || entry.position <= entries[i - 1].position)
    ) {
      throw new SegmentFormatError(`Index entry ${i} does not increase`);
    }
    entries[i] = entry;
    at += INDEX_ENTRY_BYTES;
  }
  return { intervalMessages: view.getInt32(10), entries };
}

/**
 * The entry to start scanning from for `offset`: the last entry whose offset
 * is <= `offset`, or the first entry when `offset` precedes them all. Null
 * for an empty index.
 */
export function lookupIndex(entries: IndexEntry[], offset: number): IndexEntry | null {
  if (entries.length === 0) return null;
  let lo = 0;
  let hi = entries.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (entries[mid].offset <= offset) lo = mid;
    else hi = mid - 1;
  }
  return entries[lo];
}
