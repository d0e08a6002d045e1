/**
 * Paces the background segment writes of one LogManager (sealing and compaction) on a local
 * disk, so that they leave the disk to the write-ahead fdatasync that every acks=all produce
 * waits for.
 *
 * Why: a segment written at full speed fills the device queue; an fdatasync of the write-ahead
 * file issued meanwhile waits behind it (on this project's CI machine: write-ahead fsync p99
 * 13-25 ms while a segment is written flat out, 1.3 ms with the same segment written at 64 MB/s
 * in 256 KiB synced pieces). After a burst, the backlog of unsealed data is sealed while
 * producers go on at a moderate rate, and their latency is what they see.
 *
 * Rate: max(`floorBytesPerSecond`, INGEST_FACTOR x the bytes written ahead per second, averaged
 * with a time constant of INGEST_AVERAGE_MS, so the pace is back at the floor within about a
 * second of a burst ending). Sealing always outruns what is produced, so pacing cannot let unsealed
 * data grow without bound; a backlog left by a burst is worked off at the floor rate. A token
 * bucket with BURST_MS of credit: an idle pacer lets the next piece through at once.
 * `bypass()` true (the broker is closing; sealing then has a deadline) writes at full speed, and
 * `releaseWaiting()` lets the writes already waiting go.
 *
 * Only backends that write a local disk honour it (`PutOptions.pace`); S3 PUTs are not paced.
 */

import type { Clock } from "../util/clock.ts";

/** Paced writes go at least this many times as fast as data is being written ahead. */
export const INGEST_FACTOR = 2;
/** Time constant of the write-ahead rate average. */
export const INGEST_AVERAGE_MS = 250;
/** The rate average is updated at most this often (shorter intervals carry too little data). */
export const INGEST_SAMPLE_MS = 50;
/** Credit an idle pacer keeps: the first this-many-ms worth of bytes go through at once. */
export const BURST_MS = 4;
/** Waits shorter than this are skipped (timers are not finer; the debt carries over). */
const MIN_WAIT_MS = 1;

export interface WritePacerOptions {
  clock: Clock;
  /** Lowest pace in bytes per second; 0 turns pacing off. */
  floorBytesPerSecond: number;
  /** Bytes written ahead so far (a counter that only grows). */
  ingestedBytes: () => number;
  /** True while writes must go at full speed. */
  bypass: () => boolean;
}

export class WritePacer {
  readonly #options: WritePacerOptions;
  /** Monotonic time at which the bytes paced so far have all been written, at the pace. */
  #allowedAt = -Infinity;
  #sampleAt: number;
  #sampleBytes: number;
  /** Averaged write-ahead bytes per second. */
  #ingestRate = 0;
  /** Ends the wait of each paced write not yet let through. */
  readonly #waiting = new Set<() => void>();

  constructor(options: WritePacerOptions) {
    if (!(options.floorBytesPerSecond >= 0)) {
      throw new RangeError(
        `floorBytesPerSecond must be 0 or more, got ${options.floorBytesPerSecond}`,
      );
    }
    this.#options = options;
    this.#sampleAt = options.clock.monotonic();
    this.#sampleBytes = options.ingestedBytes();
  }

  /** The pace now, in bytes per second; 0 when writes are not paced. */
  get bytesPerSecond(): number {
    if (this.#options.floorBytesPerSecond === 0 || this.#options.bypass()) return 0;
    this.#sample();
    return Math.max(this.#options.floorBytesPerSecond, INGEST_FACTOR * this.#ingestRate);
  }

  /** Resolves when `bytes` more may be written; call before writing them. */
  pace(bytes: number): Promise<void> {
    const rate = this.bytesPerSecond;
    if (rate === 0 || bytes <= 0) return Promise.resolve();
    const { clock } = this.#options;
    const now = clock.monotonic();
    // These bytes go once those paced before them are through (an idle pacer has BURST_MS of
    // credit); the next ones wait for these.
    const start = Math.max(this.#allowedAt, now - BURST_MS);
    this.#allowedAt = start + (bytes / rate) * 1000;
    const wait = start - now;
    if (wait < MIN_WAIT_MS) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        timer.cancel();
        this.#waiting.delete(done);
        resolve();
      };
      const timer = clock.setTimeout(done, wait);
      this.#waiting.add(done);
    });
  }

  /** Lets every waiting write go now: call when `bypass()` turns true (close, a handover). */
  releaseWaiting(): void {
    for (const done of [...this.#waiting]) done();
  }

  #sample(): void {
    const { clock, ingestedBytes } = this.#options;
    const now = clock.monotonic();
    const elapsed = now - this.#sampleAt;
    if (elapsed < INGEST_SAMPLE_MS) return;
    const bytes = ingestedBytes();
    const rate = ((bytes - this.#sampleBytes) / elapsed) * 1000;
    const weight = 1 - Math.exp(-elapsed / INGEST_AVERAGE_MS);
    this.#ingestRate += weight * (rate - this.#ingestRate);
    this.#sampleAt = now;
    this.#sampleBytes = bytes;
  }
}
