/**
 * HTTP health and metrics: `/healthz` (the process is up), `/readyz` (the
 * broker accepts Kafka requests and its stores answer), `/metrics`
 * (Prometheus text format).
 */
import type { Logger } from "../util/logger.ts";
import type { Metrics } from "../util/metrics.ts";

export interface HealthCheck {
  name: string;
  /** Resolves with `null` when healthy, or a short reason. */
  check(): Promise<string | null>;
}

export interface HttpServerOptions {
  hostname: string;
  port: number;
  metrics: Metrics;
  logger: Logger;
  isReady: () => boolean;
  checks: HealthCheck[];
}

/** Per-check deadline, so a hung dependency cannot hang the probe. */
const CHECK_TIMEOUT_MS = 2_000;

async function runCheck(c: HealthCheck): Promise<string | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${CHECK_TIMEOUT_MS} ms`), CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([c.check().catch((err) => String(err?.message ?? err)), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function startHttpServer(
  opts: HttpServerOptions,
): { addr: Deno.NetAddr; stop(): Promise<void> } {
  const server = Deno.serve(
    { hostname: opts.hostname, port: opts.port, onListen: () => {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/healthz" || path === "/readyz") {
        const results = await Promise.all(
          opts.checks.map(async (c) => ({ name: c.name, error: await runCheck(c) })),
        );
        const ready = path === "/healthz" || opts.isReady();
        const ok = ready && results.every((r) => r.error === null);
        const body = {
          status: ok ? "ok" : "unavailable",
          ready: opts.isReady(),
          dependencies: Object.fromEntries(
            results.map((r) => [r.name, r.error === null ? "ok" : r.error]),
          ),
        };
        return Response.json(body, { status: ok ? 200 : 503 });
      }
      if (path === "/metrics") {
        return new Response(opts.metrics.render(), {
          headers: { "content-type": "text/plain; version=0.0.4" },
        });
      }
      return new Response("Not found\n", { status: 404 });
    },
  );
  return {
    addr: server.addr as Deno.NetAddr,
    stop: async () => {
      await server.shutdown();
    },
  };
}
