/**
 * A TCP proxy on loopback that can cut a service off the way a network partition does, for
 * fault tests: while cut, bytes stop flowing on open connections and new connections are
 * accepted but never forwarded — callers see silence and must time out, not a refused
 * connection. `restore()` drops every connection held during the cut (as a healed partition
 * whose TCP state timed out would) and forwards normally again.
 *
 * Owns its listener and every socket it opened; `close()` ends them all.
 */

/** Bytes read per chunk when forwarding. */
const CHUNK_BYTES = 64 * 1024;
/** Bound on connections open at once (a test talks to one service). */
const MAX_CONNECTIONS = 1_024;

interface Pair {
  client: Deno.TcpConn;
  upstream: Deno.TcpConn | null;
  closed: boolean;
}

export class TcpProxy {
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #pairs = new Set<Pair>();
  readonly #tasks = new Set<Promise<void>>();
  #cut = false;
  /** Resolves the waits of connections held during a cut. */
  #release: () => void = () => {};
  #released: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(listener: Deno.TcpListener, target: { hostname: string; port: number }) {
    this.#listener = listener;
    this.#target = target;
    this.#track(this.#accept());
  }

  /** Listens on a free loopback port and forwards to `target` (`http://HOST:PORT` or HOST:PORT). */
  static start(target: string): TcpProxy {
    const hostPort = target.replace(/^[a-z]+:\/\//, "").replace(/\/.*$/, "");
    const colon = hostPort.lastIndexOf(":");
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return new TcpProxy(listener, {
      hostname: hostPort.slice(0, colon),
      port: Number(hostPort.slice(colon + 1)),
    });
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** `http://127.0.0.1:PORT`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get isCut(): boolean {
    return this.#cut;
  }

  /** Stops all traffic: open connections stall, new ones are accepted and left hanging. */
  cut(): void {
    if (this.#cut) return;
    this.#cut = true;
    this.#released = new Promise((resolve) => this.#release = resolve);
  }

  /** Drops every connection and forwards normally again. */
  restore(): void {
    if (!this.#cut) return;
    this.#cut = false;
    for (const pair of [...this.#pairs]) this.#closePair(pair);
    this.#release();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#release();
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    for (const pair of [...this.#pairs]) this.#closePair(pair);
    await Promise.allSettled([...this.#tasks]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  async #accept(): Promise<void> {
    for (;;) {
      let client: Deno.TcpConn;
      try {
        client = await this.#listener.accept();
      } catch {
        return; // listener closed
      }
      if (this.#pairs.size >= MAX_CONNECTIONS) {
        client.close();
        continue;
      }
      const pair: Pair = { client, upstream: null, closed: false };
      this.#pairs.add(pair);
      this.#track(this.#serve(pair));
    }
  }

  async #serve(pair: Pair): Promise<void> {
    // A connection made during a cut hangs until the cut ends (and is then dropped).
    if (this.#cut) {
      await this.#released;
      this.#closePair(pair);
      return;
    }
    try {
      pair.upstream = await Deno.connect(this.#target);
    } catch {
      this.#closePair(pair);
      return;
    }
    if (pair.closed) {
      pair.upstream.close();
      return;
    }
    await Promise.allSettled([
      this.#pipe(pair, pair.client, pair.upstream),
      this.#pipe(pair, pair.upstream, pair.client),
    ]);
    this.#closePair(pair);
  }

  async #pipe(pair: Pair, from: Deno.TcpConn, to: Deno.TcpConn): Promise<void> {
    const buffer = new Uint8Array(CHUNK_BYTES);
    for (;;) {
      const n = await from.read(buffer);
      if (n === null || pair.closed) return;
      // During a cut the bytes are held back: the peer sees silence.
      if (this.#cut) await this.#released;
      if (pair.closed) return;
      let written = 0;
      while (written < n) written += await to.write(buffer.subarray(written, n));
    }
  }

  #closePair(pair: Pair): void {
    if (pair.closed) return;
    pair.closed = true;
    this.#pairs.delete(pair);
    for (const conn of [pair.client, pair.upstream]) {
      try {
        conn?.close();
      } catch {
        // Already closed.
      }
    }
  }
}
