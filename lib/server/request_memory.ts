/**
 * A broker-wide bound on the bytes held by requests being read or queued
 * (Kafka's `queued.max.request.bytes` and its `MemoryPool`).
 *
 * A connection reserves a frame's size after reading its 4-byte size prefix
 * and before allocating the frame; it releases the reservation when the
 * request has been handled. While a reservation does not fit, that
 * connection stops reading its socket (TCP pushes back on the client), so no
 * frame memory is ever allocated past the bound. Unlike Kafka's non-strict
 * pool, the bound is strict: `maxFrameBytes <= limitBytes` is required, so
 * every valid frame fits once the others are released.
 *
 * Clients that announce huge frames and then stall must not stop everyone
 * else, so:
 * - Part of the bound (a sixteenth, at most 16 MiB) is kept for small
 *   requests (at most `SMALL_REQUEST_BYTES`: metadata, heartbeats, fetch and
 *   offset requests); larger frames share the rest (`largeLimitBytes`, never
 *   less than the largest frame).
 * - Waiters are granted first-fit in arrival order: a small request is not
 *   held up behind a large one that does not fit yet, at the price that a
 *   large request can wait while smaller ones keep fitting.
 */

/** Requests up to this size may use the part of the bound kept for small requests. */
export const SMALL_REQUEST_BYTES = 64 * 1024;
/** Upper bound on the part kept for small requests. */
const SMALL_RESERVE_BYTES_MAX = 16 * 1024 * 1024;

interface Waiter {
  bytes: number;
  resolve: (granted: boolean) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

export class RequestMemoryPool {
  readonly limitBytes: number;
  /** What requests larger than `SMALL_REQUEST_BYTES` may hold together. */
  readonly largeLimitBytes: number;
  #usedBytes = 0;
  #waiters: Waiter[] = [];

  constructor(limitBytes: number, maxFrameBytes: number) {
    if (!(maxFrameBytes > 0 && limitBytes >= maxFrameBytes)) {
      throw new Error(
        `Broken invariant: request memory bound ${limitBytes} is below the largest frame ` +
          `${maxFrameBytes}`,
      );
    }
    this.limitBytes = limitBytes;
    const smallReserve = Math.min(SMALL_RESERVE_BYTES_MAX, Math.floor(limitBytes / 16));
    this.largeLimitBytes = Math.max(maxFrameBytes, limitBytes - smallReserve);
  }

  /** Bytes reserved by requests being read or queued. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /** Connections waiting for room. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Reserves `bytes`, waiting until they fit. Resolves false (nothing
   * reserved) if `signal` aborts first.
   */
  reserve(bytes: number, signal?: AbortSignal): Promise<boolean> {
    if (bytes > this.largeLimitBytes) {
      throw new Error(
        `Broken invariant: reserving ${bytes} bytes, above the ${this.largeLimitBytes} bound`,
      );
    }
    if (signal?.aborted) return Promise.resolve(false);
    if (this.#fits(bytes)) {
      this.#usedBytes += bytes;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        bytes,
        resolve,
        signal,
        onAbort: () => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          resolve(false);
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Returns a reservation made by `reserve`. */
  release(bytes: number): void {
    if (bytes > this.#usedBytes) {
      throw new Error(`Broken invariant: releasing ${bytes} of ${this.#usedBytes} reserved bytes`);
    }
    this.#usedBytes -= bytes;
    if (this.#waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (this.#fits(waiter.bytes)) {
        this.#usedBytes += waiter.bytes;
        waiter.signal?.removeEventListener("abort", waiter.onAbort);
        waiter.resolve(true);
      } else {
        still.push(waiter);
      }
    }
    this.#waiters = still;
  }

  #fits(bytes: number): boolean {
    const limit = bytes <= SMALL_REQUEST_BYTES ? this.limitBytes : this.largeLimitBytes;
    return this.#usedBytes + bytes <= limit;
  }
}
