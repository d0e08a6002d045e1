/**
 * The compactor's bounded key -> latest offset map, KafScale's counterpart of
 * Kafka's SkimpyOffsetMap sized by `log.cleaner.dedupe.buffer.size`.
 *
 * Kafka keeps a 16-byte MD5 of each key plus an 8-byte offset in a fixed
 * array, so a (vanishingly rare) hash collision can drop a record. We keep
 * the key bytes themselves, so nothing is ever dropped by a collision, and
 * charge each entry its key length plus {@link KEY_MAP_ENTRY_OVERHEAD_BYTES}
 * against the budget. When a new key does not fit, `put` says so and the
 * compactor ends the pass there (Kafka: "Offset map is full ... partially
 * mapped") and starts the next pass from that offset.
 */

/** Kafka's default log.cleaner.dedupe.buffer.size: 128 MiB. */
export const DEFAULT_DEDUPE_BUFFER_BYTES = 128 * 1024 * 1024;

/**
 * Bytes charged per entry on top of the key: an estimate of a JS Map entry,
 * the key string's header and the offset number.
 */
export const KEY_MAP_ENTRY_OVERHEAD_BYTES = 64;

/** Largest key turned into a string in one call (String.fromCharCode's argument limit). */
const KEY_CHUNK_BYTES = 8192;

/** Keys up to this length are converted byte by byte (faster than a call with spread arguments). */
const KEY_SHORT_BYTES = 48;

/** The key bytes as a one-byte-per-char string: a Map key equal exactly when the bytes are. */
function keyString(key: Uint8Array): string {
  if (key.length <= KEY_SHORT_BYTES) {
    let out = "";
    for (let i = 0; i < key.length; i++) out += String.fromCharCode(key[i]);
    return out;
  }
  let out = "";
  for (let pos = 0; pos < key.length; pos += KEY_CHUNK_BYTES) {
    out += String.fromCharCode.apply(
      null,
      key.subarray(pos, pos + KEY_CHUNK_BYTES) as unknown as number[],
    );
  }
  return out;
}

export class KeyOffsetMap {
  readonly #capacityBytes: number;
  readonly #offsets = new Map<string, number>();
  #usedBytes = 0;

  /**
   * `capacityBytes` bounds the keys plus per-entry overhead held at once. One
   * entry is always admitted, whatever its size, so every pass makes progress.
   */
  constructor(capacityBytes: number = DEFAULT_DEDUPE_BUFFER_BYTES) {
    if (!Number.isSafeInteger(capacityBytes) || capacityBytes <= 0) {
      throw new RangeError(
        `Dedupe buffer must be a positive number of bytes, got ${capacityBytes}`,
      );
    }
    this.#capacityBytes = capacityBytes;
  }

  /** Distinct keys held. */
  get size(): number {
    return this.#offsets.size;
  }

  /** Bytes charged against the capacity. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /**
   * Records `offset` as the latest for `key`. Returns false, changing
   * nothing, when `key` is new and does not fit. Offsets must be put in
   * increasing order, so the last put for a key is its latest.
   */
  put(key: Uint8Array, offset: number): boolean {
    const k = keyString(key);
    if (!this.#offsets.has(k)) {
      const cost = key.length + KEY_MAP_ENTRY_OVERHEAD_BYTES;
      if (this.#offsets.size > 0 && this.#usedBytes + cost > this.#capacityBytes) return false;
      this.#usedBytes += cost;
    }
    this.#offsets.set(k, offset);
    return true;
  }

  /** The latest offset recorded for `key`, or undefined. */
  get(key: Uint8Array): number | undefined {
    return this.#offsets.get(keyString(key));
  }

  clear(): void {
    this.#offsets.clear();
    this.#usedBytes = 0;
  }
}
