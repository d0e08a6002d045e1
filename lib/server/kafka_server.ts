/**
 * The Kafka TCP listener: accepts connections, applies connection limits and
 * shuts down gracefully (stop accepting, finish in-flight requests, close).
 *
 * Owns sockets only; request handling is behind `FrameDispatcher`. Must not
 * import lib/broker.
 */
import type { Logger } from "../util/logger.ts";
import { Connection, type ConnectionLimits, type FrameDispatcher } from "./connection.ts";
import { RequestMemoryPool } from "./request_memory.ts";

export interface KafkaServerOptions extends ConnectionLimits {
  hostname: string;
  port: number;
  /** Connections beyond this are closed right after accept, with a log line. */
  maxConnections: number;
  /**
   * Bound on the bytes of requests being read or queued, across every
   * connection (Kafka's `queued.max.request.bytes`); at least `maxFrameBytes`.
   * Unbounded when absent.
   */
  queuedMaxRequestBytes?: number;
}

export class KafkaServer {
  readonly #options: KafkaServerOptions;
  readonly #dispatcher: FrameDispatcher;
  readonly #logger: Logger;
  #listener: Deno.TcpListener | null = null;
  #connections = new Map<number, { conn: Connection; done: Promise<void> }>();
  #nextId = 1;
  #acceptLoop: Promise<void> | null = null;
  #stopping = false;
  readonly #requestMemory: RequestMemoryPool | null;

  constructor(options: KafkaServerOptions, dispatcher: FrameDispatcher, logger: Logger) {
    this.#options = options;
    this.#dispatcher = dispatcher;
    this.#logger = logger;
    const bound = options.queuedMaxRequestBytes;
    this.#requestMemory = bound === undefined
      ? null
      : new RequestMemoryPool(bound, options.maxFrameBytes);
  }

  /** The broker-wide request memory bound, when there is one. */
  get requestMemory(): RequestMemoryPool | null {
    return this.#requestMemory;
  }

  /** Binds the socket; throws `Deno.errors.AddrInUse` etc. to the caller. */
  listen(): Deno.NetAddr {
    this.#listener = Deno.listen({
      hostname: this.#options.hostname,
      port: this.#options.port,
      transport: "tcp",
    });
    this.#acceptLoop = this.#accept(this.#listener);
    return this.#listener.addr;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  async #accept(listener: Deno.TcpListener): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (this.#stopping || err instanceof Deno.errors.BadResource) return;
        this.#logger.warn("Accept failed", { err: String(err) });
        continue;
      }
      if (this.#connections.size >= this.#options.maxConnections) {
        this.#logger.warn("Closing connection: too many connections", {
          maxConnections: this.#options.maxConnections,
        });
        conn.close();
        continue;
      }
      const id = this.#nextId++;
      const connection = new Connection(
        id,
        conn,
        this.#dispatcher,
        this.#options,
        this.#logger,
        this.#requestMemory,
      );
      const done = connection.serve().finally(() => this.#connections.delete(id));
      this.#connections.set(id, { conn: connection, done });
    }
  }

  /**
   * Graceful stop: no new connections or requests; requests already read are
   * answered; then every socket is closed. Connections still busy after
   * `timeoutMs` are closed anyway.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    try {
      this.#listener?.close();
    } catch { /* already closed */ }
    await this.#acceptLoop;
    for (const { conn } of this.#connections.values()) conn.drain();
    const all = Promise.all([...this.#connections.values()].map((c) => c.done));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const outcome = await Promise.race([all.then(() => "done" as const), timedOut]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      this.#logger.warn("Closing busy connections after shutdown timeout", { timeoutMs });
      for (const { conn } of this.#connections.values()) conn.close();
      await all;
    }
  }
}
