/**
 * The Kafka TCP listener: accepts connections, applies connection limits and
 * shuts down gracefully (stop accepting, finish in-flight requests, close).
 *
 * Owns sockets only; request handling is behind `FrameDispatcher`. Must not
 * import lib/broker.
 */
import type { Logger } from "../util/logger.ts";
import {
  type ByteStream,
  Connection,
  type ConnectionLimits,
  type ConnectionSecurity,
  type FrameDispatcher,
} from "./connection.ts";
import { RequestMemoryPool } from "./request_memory.ts";
import { type TlsFiles, TlsListener } from "./tls_listener.ts";

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
  /** Shared by the listeners of one broker (the bound is broker-wide); else one of its own. */
  requestMemory?: RequestMemoryPool | null;
  /** The listener's name and security protocol (default PLAINTEXT). */
  listenerName?: string;
  protocol?: "PLAINTEXT" | "SSL" | "SASL_PLAINTEXT" | "SASL_SSL";
  /** Certificate, key and client CAs of an SSL or SASL_SSL listener. */
  tls?: TlsFiles;
}

interface Listener {
  readonly addr: Deno.Addr;
  accept(): Promise<ByteStream & { principal?: string | null }>;
  close(): void;
}

export class KafkaServer {
  readonly #options: KafkaServerOptions;
  readonly #dispatcher: FrameDispatcher;
  readonly #logger: Logger;
  #listener: Listener | null = null;
  #tls: TlsListener | null = null;
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
    this.#requestMemory = options.requestMemory !== undefined
      ? options.requestMemory
      : bound === undefined
      ? null
      : new RequestMemoryPool(bound, options.maxFrameBytes);
  }

  get listenerName(): string {
    return this.#options.listenerName ?? "PLAINTEXT";
  }

  get protocol(): string {
    return this.#options.protocol ?? "PLAINTEXT";
  }

  /** The broker-wide request memory bound, when there is one. */
  get requestMemory(): RequestMemoryPool | null {
    return this.#requestMemory;
  }

  /**
   * Binds the socket (a TLS one for SSL and SASL_SSL); throws `Deno.errors.AddrInUse`, or an
   * error naming the TLS setting that is wrong, to the caller.
   */
  async listen(): Promise<Deno.NetAddr> {
    const { hostname, port, protocol } = this.#options;
    if (protocol === "SSL" || protocol === "SASL_SSL") {
      if (!this.#options.tls) throw new Error(`A ${protocol} listener needs a certificate and key`);
      this.#tls = await TlsListener.listen(hostname, port, this.#options.tls, this.#logger);
      this.#listener = this.#tls;
    } else {
      this.#listener = Deno.listen({ hostname, port, transport: "tcp" });
    }
    this.#acceptLoop = this.#accept(this.#listener);
    return this.#listener.addr as Deno.NetAddr;
  }

  /** Re-reads the TLS files of a TLS listener (SIGHUP); a no-op on others. */
  async reloadTls(): Promise<void> {
    if (this.#tls && this.#options.tls) await this.#tls.reload(this.#options.tls);
  }

  #security(principal: string | null | undefined): ConnectionSecurity {
    const protocol = this.protocol;
    const sasl = protocol === "SASL_PLAINTEXT" || protocol === "SASL_SSL";
    return {
      listener: this.listenerName,
      protocol,
      principal: principal ?? "User:ANONYMOUS",
      authenticated: !sasl,
      sasl: null,
      sessionExpiresAtMs: null,
    };
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  async #accept(listener: Listener): Promise<void> {
    for (;;) {
      let conn: ByteStream & { principal?: string | null };
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
        this.#security(conn.principal),
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

/**
 * The Kafka listeners of one broker (`--listeners`): one KafkaServer each, sharing the dispatcher
 * and the broker-wide request memory bound.
 */
export class KafkaServerGroup {
  readonly servers: KafkaServer[];

  constructor(
    listeners: KafkaServerOptions[],
    dispatcher: FrameDispatcher,
    logger: Logger,
    shared: { queuedMaxRequestBytes?: number; maxFrameBytes: number },
  ) {
    const memory = shared.queuedMaxRequestBytes === undefined
      ? null
      : new RequestMemoryPool(shared.queuedMaxRequestBytes, shared.maxFrameBytes);
    this.servers = listeners.map((l) =>
      new KafkaServer({ ...l, requestMemory: memory }, dispatcher, logger)
    );
  }

  /** Binds every listener, in order; on a failure the ones already bound are closed. */
  async listen(): Promise<{ name: string; protocol: string; addr: Deno.NetAddr }[]> {
    const bound: { name: string; protocol: string; addr: Deno.NetAddr }[] = [];
    for (const server of this.servers) {
      try {
        bound.push({
          name: server.listenerName,
          protocol: server.protocol,
          addr: await server.listen(),
        });
      } catch (err) {
        await Promise.all(this.servers.slice(0, bound.length).map((s) => s.stop(0)));
        throw err;
      }
    }
    return bound;
  }

  get connectionCount(): number {
    return this.servers.reduce((n, s) => n + s.connectionCount, 0);
  }

  get requestMemory(): RequestMemoryPool | null {
    return this.servers[0]?.requestMemory ?? null;
  }

  async reloadTls(): Promise<void> {
    for (const s of this.servers) await s.reloadTls();
  }

  async stop(timeoutMs: number): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop(timeoutMs)));
  }
}
