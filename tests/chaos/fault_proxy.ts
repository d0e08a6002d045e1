/**
 * A TCP fault proxy for the chaos suite: listens on a loopback port and forwards every
 * connection to a target (etcd, MinIO), and can be told at any time to
 *
 * - `pass`: forward as is;
 * - `delay`: hold every chunk `delayMs` before forwarding it (both directions, order kept);
 * - `blackhole`: accept connections but forward nothing either way, so requests hang until
 *   their clients time out (a network partition, not a refusal). Bytes already read are held,
 *   not dropped, and flow on when the mode changes, as TCP retransmits after a partition heals.
 * - `reset`: close every open connection at once, then behave as `pass` (a server restart as
 *   seen by its clients, or a middlebox dropping state).
 * - `freeze`: the connections open now go silent for good (nothing more is forwarded on them
 *   either way, and they stay open) while new ones follow the mode: a middlebox that dropped
 *   their state without telling either end.
 *
 * Every loop is bounded by the connection's life; `close()` ends them all.
 */

export type FaultMode = { kind: "pass" } | { kind: "delay"; delayMs: number } | {
  kind: "blackhole";
};

interface Pipe {
  client: Deno.TcpConn;
  server: Deno.TcpConn;
  frozen: boolean;
}

export class FaultProxy implements AsyncDisposable {
  readonly port: number;
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #pipes = new Set<Pipe>();
  #mode: FaultMode = { kind: "pass" };
  #modeChanged = Promise.withResolvers<void>();
  #closed = false;
  readonly #accepting: Promise<void>;
  /** Bytes forwarded, both directions (for a scenario's report). */
  forwardedBytes = 0;

  private constructor(listener: Deno.TcpListener, target: { hostname: string; port: number }) {
    this.#listener = listener;
    this.port = (listener.addr as Deno.NetAddr).port;
    this.#target = target;
    this.#accepting = this.#accept();
  }

  /** A proxy on a free loopback port in front of `target` (`http://host:port` or `host:port`). */
  static start(target: string): FaultProxy {
    const url = new URL(target.includes("://") ? target : `tcp://${target}`);
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return new FaultProxy(listener, { hostname: url.hostname, port: Number(url.port) });
  }

  /** `http://127.0.0.1:PORT`: the address clients use instead of the target's. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get mode(): FaultMode {
    return this.#mode;
  }

  set(mode: FaultMode): void {
    this.#mode = mode;
    const wake = this.#modeChanged;
    this.#modeChanged = Promise.withResolvers<void>();
    wake.resolve();
  }

  /** Silences every open connection for good (see `freeze` above); new ones are not affected. */
  freeze(): void {
    for (const pipe of this.#pipes) pipe.frozen = true;
  }

  /** Closes every open connection; new ones are forwarded per the current mode. */
  reset(): void {
    for (const pipe of this.#pipes) this.#drop(pipe);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener.close();
    this.set({ kind: "pass" });
    this.reset();
    await this.#accepting;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #accept(): Promise<void> {
    for (;;) {
      let client: Deno.TcpConn;
      try {
        client = await this.#listener.accept();
      } catch {
        return; // closed
      }
      this.#open(client).catch(() => client.close());
    }
  }

  async #open(client: Deno.TcpConn): Promise<void> {
    let server: Deno.TcpConn;
    try {
      server = await Deno.connect(this.#target);
    } catch {
      client.close();
      return;
    }
    const pipe = { client, server, frozen: false };
    this.#pipes.add(pipe);
    await Promise.allSettled([this.#copy(pipe, client, server), this.#copy(pipe, server, client)]);
    this.#drop(pipe);
  }

  async #copy(pipe: Pipe, from: Deno.TcpConn, to: Deno.TcpConn): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await from.read(buf);
      if (n === null) return;
      const chunk = buf.slice(0, n);
      // Held while black-holed or frozen (the peer hears nothing), delayed in delay mode.
      while ((this.#mode.kind === "blackhole" || pipe.frozen) && !this.#closed) {
        await this.#modeChanged.promise;
      }
      if (this.#closed) return;
      const mode = this.#mode;
      if (mode.kind === "delay") await new Promise((r) => setTimeout(r, mode.delayMs));
      let written = 0;
      while (written < chunk.length) written += await to.write(chunk.subarray(written));
      this.forwardedBytes += n;
    }
  }

  #drop(pipe: Pipe): void {
    if (!this.#pipes.delete(pipe)) return;
    for (const c of [pipe.client, pipe.server]) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
  }
}
