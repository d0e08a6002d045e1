/**
 * One client connection: framing, pipelining and response ordering.
 *
 * Reads length-prefixed frames, hands each to the dispatcher as soon as it
 * is complete (so later requests are read and started while earlier ones
 * wait for a flush), and writes responses strictly in request order.
 * Knows nothing about handlers: the dispatcher turns a frame into response
 * bytes. Memory: a frame is allocated only after its size is reserved in the
 * broker-wide `RequestMemoryPool` (reading pauses until it fits) and the
 * reservation lasts until the request has been handled. Must not import
 * lib/broker.
 */
import { coalesceWrites } from "../util/bytes.ts";
import type { Logger } from "../util/logger.ts";
import type { RequestMemoryPool } from "./request_memory.ts";

/** Frames shorter than this cannot hold a request header (api key, version, correlation id). */
const MIN_FRAME_BYTES = 8;
/** Staging buffer for socket reads; frames larger than this are read straight into their own buffer. */
const READ_CHUNK_BYTES = 64 * 1024;

export interface ConnectionLimits {
  /** Largest accepted frame; a larger size prefix closes the connection without allocating. */
  maxFrameBytes: number;
  /** Largest frame before the connection has authenticated (SASL listeners). */
  unauthenticatedMaxFrameBytes?: number;
  /** A connection that has not authenticated within this is closed (SASL listeners). */
  authTimeoutMs?: number;
  /** Requests read ahead of the response being written; reading pauses beyond it. */
  maxInFlightRequests: number;
}

/**
 * Who is on the other end and how they got in: the listener, its security protocol and the
 * principal. The SASL handlers change it as the client authenticates.
 */
export interface ConnectionSecurity {
  readonly listener: string;
  /** PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL. */
  readonly protocol: string;
  /** "User:ANONYMOUS" until authenticated; "User:<subject DN>" for a TLS client certificate. */
  principal: string;
  /** False on SASL listeners until SaslAuthenticate succeeds. */
  authenticated: boolean;
  /** The SASL exchange in progress (owned by the SASL handlers). */
  sasl: unknown;
  /** When the SASL session ends (KIP-368 re-authentication), or null. */
  sessionExpiresAtMs: number | null;
}

/** The security of a connection to a listener without authentication. */
export function plaintextSecurity(listener = "PLAINTEXT"): ConnectionSecurity {
  return {
    listener,
    protocol: "PLAINTEXT",
    principal: "User:ANONYMOUS",
    authenticated: true,
    sasl: null,
    sessionExpiresAtMs: null,
  };
}

export interface ConnectionInfo {
  readonly id: number;
  readonly remoteAddress: string;
  readonly security: ConnectionSecurity;
  /** Runs `fn` after every earlier `sequential` call of this connection has settled. */
  sequential<T>(fn: () => Promise<T>): Promise<T>;
}

/** Result of dispatching one frame. */
export type DispatchResult =
  | { kind: "response"; chunks: Uint8Array[] }
  | { kind: "none" }
  | { kind: "close"; reason: string };

export interface FrameDispatcher {
  dispatch(frame: Uint8Array, conn: ConnectionInfo): Promise<DispatchResult>;
}

type Pending = Promise<DispatchResult>;

/**
 * Responses already done behind the one being written go out with it, up to this many bytes;
 * chunks smaller than `JOIN_CHUNK_BYTES_MAX` are copied into one buffer per write. Each socket
 * write is a system call (a loopback one also runs the receiver's side): with one-record
 * produces over 1,000 partitions they were ~9% of the broker's CPU, one per response.
 */
export const COALESCE_BYTES_MAX = 256 * 1024;
export const JOIN_CHUNK_BYTES_MAX = 16 * 1024;

/** The part of Deno.Conn a connection uses (a TLS socket adapter provides it too). */
export interface ByteStream {
  readonly remoteAddr: Deno.Addr;
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

export class Connection implements ConnectionInfo {
  readonly id: number;
  readonly remoteAddress: string;
  readonly security: ConnectionSecurity;
  readonly #conn: ByteStream;
  readonly #dispatcher: FrameDispatcher;
  readonly #limits: ConnectionLimits;
  readonly #logger: Logger;
  #queue: Pending[] = [];
  /** Results of queued requests that are done (the writer sends them together). */
  readonly #settled = new WeakMap<Pending, DispatchResult>();
  /** Waiters for a queue change: the reader (in-flight limit) and the writer (empty queue). */
  #queueChanged: (() => void)[] = [];
  #closed = false;
  #draining = false;
  #readingDone = false;
  #chain: Promise<unknown> = Promise.resolve();
  readonly #requestMemory: RequestMemoryPool | null;
  /** Aborted on close or drain: ends a wait for request memory. */
  readonly #stopReading = new AbortController();

  constructor(
    id: number,
    conn: ByteStream,
    dispatcher: FrameDispatcher,
    limits: ConnectionLimits,
    logger: Logger,
    requestMemory: RequestMemoryPool | null = null,
    security: ConnectionSecurity = plaintextSecurity(),
  ) {
    this.id = id;
    this.#conn = conn;
    this.security = security;
    const addr = conn.remoteAddr as Deno.NetAddr;
    this.remoteAddress = `${addr.hostname}:${addr.port}`;
    this.#dispatcher = dispatcher;
    this.#limits = limits;
    this.#logger = logger;
    this.#requestMemory = requestMemory;
  }

  sequential<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.then(() => {}, () => {});
    return run;
  }

  /** Serves the connection until the peer closes, an error occurs, or `drain()` finishes. */
  async serve(): Promise<void> {
    try {
      (this.#conn as Deno.TcpConn).setNoDelay?.(true);
    } catch { /* not a TCP socket */ }
    // The write loop ends when reading is done (or draining) and every queued
    // response is written; it then closes the socket, which also unblocks a
    // pending read.
    const writer = this.#writeLoop().finally(() => this.close());
    const authTimer = !this.security.authenticated && this.#limits.authTimeoutMs !== undefined
      ? setTimeout(() => {
        if (this.security.authenticated) return;
        this.#logger.info("Closing connection: not authenticated in time", {
          conn: this.id,
          client: this.remoteAddress,
          timeoutMs: this.#limits.authTimeoutMs,
        });
        this.close();
      }, this.#limits.authTimeoutMs)
      : undefined;
    writer.finally(() => clearTimeout(authTimer));
    try {
      await this.#readLoop();
    } catch (err) {
      if (!this.#closed) {
        this.#logger.debug("Connection read failed", { conn: this.id, err: String(err) });
      }
    }
    this.#readingDone = true;
    this.#wake();
    await writer;
  }

  /**
   * Stops taking new requests: requests already read complete and their
   * responses are written, then the connection closes.
   */
  drain(): void {
    this.#draining = true;
    this.#stopReading.abort();
    this.#wake();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    this.#stopReading.abort();
    this.#wake();
  }

  get isIdle(): boolean {
    return this.#queue.length === 0;
  }

  async #readLoop(): Promise<void> {
    const stage = new Uint8Array(READ_CHUNK_BYTES);
    let start = 0; // first unparsed byte in stage
    let end = 0; // one past the last filled byte
    while (!this.#closed && !this.#draining) {
      // Parse every complete frame in the staging buffer.
      while (end - start >= 4) {
        const size = (stage[start] << 24) | (stage[start + 1] << 16) | (stage[start + 2] << 8) |
          stage[start + 3];
        const maxFrameBytes = this.security.authenticated ? this.#limits.maxFrameBytes : Math.min(
          this.#limits.maxFrameBytes,
          this.#limits.unauthenticatedMaxFrameBytes ?? Infinity,
        );
        if (size < MIN_FRAME_BYTES || size > maxFrameBytes) {
          this.#logger.warn("Closing connection: invalid frame size", {
            conn: this.id,
            client: this.remoteAddress,
            size,
            maxFrameBytes,
            authenticated: this.security.authenticated,
          });
          this.close();
          return;
        }
        // Backpressure: nothing more is read from this socket until the frame fits.
        if (!(await this.#reserve(size))) return;
        let handedOff = false;
        try {
          const frame = new Uint8Array(size);
          const staged = Math.min(size, end - start - 4);
          frame.set(stage.subarray(start + 4, start + 4 + staged));
          start += 4 + staged;
          // The rest of a large frame is read straight into its own buffer.
          if (staged < size && !(await this.#readFully(frame, staged))) return;
          handedOff = await this.#enqueue(frame);
          if (!handedOff) return;
        } finally {
          if (!handedOff) this.#requestMemory?.release(size);
        }
      }
      // At most a partial size prefix (< 4 bytes) is left: move it to the front.
      if (start > 0) {
        stage.copyWithin(0, start, end);
        end -= start;
        start = 0;
      }
      const n = await this.#conn.read(stage.subarray(end));
      if (n === null || this.#draining) return;
      end += n;
    }
  }

  #reserve(size: number): Promise<boolean> {
    return this.#requestMemory?.reserve(size, this.#stopReading.signal) ?? Promise.resolve(true);
  }

  async #readFully(buf: Uint8Array, from: number): Promise<boolean> {
    let pos = from;
    while (pos < buf.length) {
      const n = await this.#conn.read(buf.subarray(pos));
      if (n === null) return false;
      pos += n;
    }
    return true;
  }

  async #enqueue(frame: Uint8Array): Promise<boolean> {
    while (this.#queue.length >= this.#limits.maxInFlightRequests && !this.#closed) {
      await this.#waitQueueChange();
    }
    if (this.#closed || this.#draining) return false;
    let pending: Pending;
    try {
      pending = this.#dispatcher.dispatch(frame, this);
    } catch (err) {
      pending = Promise.resolve({ kind: "close", reason: String(err) });
    }
    const memory = this.#requestMemory;
    if (memory) {
      // The frame's reservation lasts until the request has been handled.
      const release = () => memory.release(frame.length);
      pending.then(release, release);
    }
    pending.then((result) => this.#settled.set(pending, result), () => {});
    this.#queue.push(pending);
    this.#wake();
    return true;
  }

  #waitQueueChange(): Promise<void> {
    return new Promise((resolve) => {
      this.#queueChanged.push(resolve);
    });
  }

  #wake(): void {
    const waiters = this.#queueChanged;
    this.#queueChanged = [];
    for (const resolve of waiters) resolve();
  }

  async #writeLoop(): Promise<void> {
    while (!this.#closed) {
      const head = this.#queue[0];
      if (!head) {
        if (this.#readingDone || this.#draining) return;
        await this.#waitQueueChange();
        continue;
      }
      let result: DispatchResult;
      try {
        result = await head;
      } catch (err) {
        result = { kind: "close", reason: `Internal error: ${String(err)}` };
      }
      this.#queue.shift();
      this.#wake();
      if (result.kind === "close") {
        this.#logger.warn("Closing connection", {
          conn: this.id,
          client: this.remoteAddress,
          reason: result.reason,
        });
        this.close();
        return;
      }
      if (result.kind === "response") {
        const chunks = [...result.chunks];
        let bytes = 0;
        for (const c of chunks) bytes += c.length;
        // In order, and only what is done: a response not done yet ends the run.
        while (bytes < COALESCE_BYTES_MAX && this.#queue.length > 0) {
          const next = this.#settled.get(this.#queue[0]);
          if (!next || next.kind === "close") break;
          this.#queue.shift();
          this.#wake();
          if (next.kind !== "response") continue;
          for (const c of next.chunks) {
            chunks.push(c);
            bytes += c.length;
          }
        }
        try {
          await this.#writeChunks(chunks);
        } catch (err) {
          this.#logger.debug("Connection write failed", { conn: this.id, err: String(err) });
          this.close();
          return;
        }
      }
    }
  }

  /** Writes `chunks` in order: runs of small ones joined into one buffer, large ones as they are. */
  async #writeChunks(chunks: Uint8Array[]): Promise<void> {
    for (const run of coalesceWrites(chunks, JOIN_CHUNK_BYTES_MAX, COALESCE_BYTES_MAX)) {
      await this.#writeAll(run);
    }
  }

  async #writeAll(chunk: Uint8Array): Promise<void> {
    let pos = 0;
    while (pos < chunk.length) {
      pos += await this.#conn.write(pos === 0 ? chunk : chunk.subarray(pos));
    }
  }
}
