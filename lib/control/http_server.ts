/**
 * HTTP health and metrics:
 * - `/healthz`: liveness. 200 while the process serves, whatever its dependencies do (a broker
 *   whose object or metadata store is down stays up and recovers by itself, so it must not be
 *   restarted); the body still shows each dependency's state (`status: "degraded"`).
 * - `/readyz`: readiness. 200 only when the broker accepts Kafka requests and every dependency
 *   answers; 503 otherwise, with the failing dependencies and why.
 * - `/metrics`: Prometheus text format.
 *
 * Optionally HTTPS (the broker's certificate, `--http-tls`) and a bearer token on every path
 * but the probes (`--http-token`, `--http-open-paths`).
 *
 * Each dependency check runs with a deadline, and at most once at a time: probes that arrive
 * while a check is in flight share its answer, so a hung store cannot pile up checks (which
 * would take the store's request slots from the data path).
 */
import { checkTlsIdentity } from "../security/tls_identity.ts";
import type { Logger } from "../util/logger.ts";
import type { Metrics } from "../util/metrics.ts";

export interface HealthCheck {
  name: string;
  /** Resolves with `null` when healthy, or a short reason; a rejection is a failure too. */
  check(): Promise<string | null>;
  /**
   * A standing caveat that does not make the dependency unhealthy (e.g. S3 without conditional
   * puts: fencing is weaker), shown under `notes` in both bodies.
   */
  note?(): string | null;
}

export interface HttpServerOptions {
  hostname: string;
  port: number;
  metrics: Metrics;
  logger: Logger;
  isReady: () => boolean;
  checks: HealthCheck[];
  /** Per-check deadline (default `CHECK_TIMEOUT_MS`). */
  checkTimeoutMs?: number;
  /** More routes (the console): a response, or null when the path is not theirs. */
  routes?: (path: string) => Promise<Response | null>;
  /** PEM certificate and key: serve HTTPS instead of HTTP (`--http-tls`). */
  tls?: { cert: string; key: string };
  /**
   * A bearer token every request must carry (`--http-token`), except to `openPaths`; null:
   * everything is open.
   */
  token?: string | null;
  /** Paths served without the token (default /healthz and /readyz, for probes). */
  openPaths?: string[];
}

/** Paths open without `--http-token`: liveness and readiness probes. */
export const DEFAULT_OPEN_PATHS = ["/healthz", "/readyz"];

/** Constant-time comparison of the Authorization header with the expected one. */
function tokenMatches(header: string | null, expected: Uint8Array): boolean {
  if (header === null) return false;
  const got = new TextEncoder().encode(header);
  if (got.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < got.length; i++) diff |= got[i] ^ expected[i];
  return diff === 0;
}

/** Default per-check deadline, so a hung dependency cannot hang the probe. */
export const CHECK_TIMEOUT_MS = 2_000;
/** Longest reason quoted per dependency in a health answer. */
const REASON_CHARS_MAX = 500;

export interface HealthReport {
  status: "ok" | "degraded" | "unavailable";
  ready: boolean;
  /** "ok", or why the dependency is unhealthy. */
  dependencies: Record<string, string>;
  /** Caveats by dependency (`HealthCheck.note`); absent when there are none. */
  notes?: Record<string, string>;
}

/**
 * Runs one check with a deadline. At most one run of the underlying check is in flight: callers
 * that come while it runs (even past their deadline) wait on the same run.
 */
class SharedCheck {
  readonly name: string;
  readonly #check: HealthCheck;
  readonly #timeoutMs: number;
  #inFlight: Promise<string | null> | null = null;

  constructor(check: HealthCheck, timeoutMs: number) {
    this.name = check.name;
    this.#check = check;
    this.#timeoutMs = timeoutMs;
  }

  async run(): Promise<string | null> {
    this.#inFlight ??= Promise.resolve()
      .then(() => this.#check.check())
      .catch((err) => String(err?.message ?? err))
      .finally(() => this.#inFlight = null);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(
        () => resolve(`no answer within ${this.#timeoutMs} ms`),
        this.#timeoutMs,
      );
    });
    try {
      const reason = await Promise.race([this.#inFlight, timeout]);
      return reason === null ? null : oneLine(reason);
    } finally {
      clearTimeout(timer);
    }
  }
}

function oneLine(text: string): string {
  const line = text.replace(/\s*\n\s*/g, " ").trim();
  return line.length > REASON_CHARS_MAX ? `${line.slice(0, REASON_CHARS_MAX)}...` : line;
}

export function startHttpServer(
  opts: HttpServerOptions,
): {
  addr: Deno.NetAddr;
  report(): Promise<HealthReport>;
  reloadTls(tls: { cert: string; key: string }): Promise<void>;
  stop(): Promise<void>;
} {
  const checks = opts.checks.map((c) =>
    new SharedCheck(c, opts.checkTimeoutMs ?? CHECK_TIMEOUT_MS)
  );
  const report = async (): Promise<HealthReport> => {
    const results = await Promise.all(
      checks.map(async (c) => ({ name: c.name, error: await c.run() })),
    );
    const healthy = results.every((r) => r.error === null);
    const ready = opts.isReady();
    const notes = opts.checks.flatMap((c) => {
      const note = c.note?.() ?? null;
      return note === null ? [] : [[c.name, note] as const];
    });
    return {
      status: !ready ? "unavailable" : healthy ? "ok" : "degraded",
      ready,
      dependencies: Object.fromEntries(results.map((r) => [r.name, r.error ?? "ok"])),
      ...(notes.length === 0 ? {} : { notes: Object.fromEntries(notes) }),
    };
  };
  const expected = opts.token ? new TextEncoder().encode(`Bearer ${opts.token}`) : null;
  const open = new Set(opts.openPaths ?? DEFAULT_OPEN_PATHS);
  const handle = async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    if (
      expected && !open.has(path) && !tokenMatches(req.headers.get("authorization"), expected)
    ) {
      return new Response('Unauthorized: send "Authorization: Bearer <token>"\n', {
        status: 401,
        headers: { "www-authenticate": "Bearer" },
      });
    }
    if (path === "/healthz") {
      return Response.json(await report(), { status: 200 });
    }
    if (path === "/readyz") {
      const body = await report();
      return Response.json(body, { status: body.status === "ok" ? 200 : 503 });
    }
    if (path === "/metrics") {
      return new Response(opts.metrics.render(), {
        headers: { "content-type": "text/plain; version=0.0.4" },
      });
    }
    const routed = req.method === "GET" ? await opts.routes?.(path) : null;
    if (routed) return routed;
    return new Response("Not found\n", { status: 404 });
  };
  const listen = (port: number, tls: { cert: string; key: string } | undefined) =>
    Deno.serve({ hostname: opts.hostname, port, onListen: () => {}, ...(tls ?? {}) }, handle);
  let tls = opts.tls;
  let server = listen(opts.port, tls);
  const addr = server.addr as Deno.NetAddr;
  return {
    addr,
    /** The `/healthz` body; `/readyz` answers 200 exactly when its status is "ok". */
    report,
    /**
     * Serves HTTPS with a new certificate and key (SIGHUP). Deno's server cannot swap them on a
     * live listener, so the listener is restarted on the same port: requests under way finish,
     * and a connection attempted in that instant is refused. Without HTTPS, nothing to do. If the
     * new pair is refused, the old one is served again and the error is thrown.
     */
    reloadTls: async (next: { cert: string; key: string }) => {
      if (!tls) return;
      checkTlsIdentity(next.cert, next.key);
      await server.shutdown();
      try {
        server = listen(addr.port, next);
        tls = next;
      } catch (err) {
        server = listen(addr.port, tls);
        throw err;
      }
    },
    stop: async () => {
      await server.shutdown();
    },
  };
}
