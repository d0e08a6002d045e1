/**
 * The HTTP health endpoints: `/healthz` stays 200 while a dependency is down (the broker stays
 * up and recovers by itself) but shows it, `/readyz` answers 503 naming the dependency and the
 * reason, every check has a deadline, and a hung check runs once however often it is probed.
 */
import assert from "node:assert/strict";
import { type HealthCheck, startHttpServer } from "../../lib/control/http_server.ts";
import { Metrics } from "../../lib/util/metrics.ts";
import { silentLogger } from "../../lib/util/logger.ts";

async function get(addr: Deno.NetAddr, path: string) {
  const response = await fetch(`http://127.0.0.1:${addr.port}${path}`);
  const text = await response.text();
  return { status: response.status, text, body: path === "/metrics" ? null : JSON.parse(text) };
}

function serve(checks: HealthCheck[], opts: { ready?: () => boolean; timeoutMs?: number } = {}) {
  return startHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    metrics: new Metrics(),
    logger: silentLogger,
    isReady: opts.ready ?? (() => true),
    checks,
    checkTimeoutMs: opts.timeoutMs,
  });
}

Deno.test("healthz and readyz: all dependencies answer", async () => {
  const http = serve([{ name: "etcd", check: () => Promise.resolve(null) }]);
  try {
    for (const path of ["/healthz", "/readyz"]) {
      const r = await get(http.addr, path);
      assert.equal(r.status, 200, path);
      assert.deepEqual(r.body, { status: "ok", ready: true, dependencies: { etcd: "ok" } });
    }
    const missing = await fetch(`http://127.0.0.1:${http.addr.port}/nope`);
    await missing.body?.cancel();
    assert.equal(missing.status, 404);
  } finally {
    await http.stop();
  }
});

Deno.test("a failing dependency: healthz 200 degraded, readyz 503 with the one-line reason", async () => {
  let s3Down = true;
  const http = serve([
    { name: "etcd", check: () => Promise.resolve(null) },
    {
      name: "s3",
      check: () =>
        s3Down
          ? Promise.reject(new Error("Cannot check bucket:\n  connect ECONNREFUSED"))
          : Promise.resolve(null),
    },
  ]);
  try {
    const live = await get(http.addr, "/healthz");
    assert.equal(live.status, 200);
    assert.equal(live.body.status, "degraded");
    const ready = await get(http.addr, "/readyz");
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.body.dependencies, {
      etcd: "ok",
      s3: "Cannot check bucket: connect ECONNREFUSED",
    });
    s3Down = false;
    assert.equal((await get(http.addr, "/readyz")).status, 200, "recovers with the dependency");
  } finally {
    await http.stop();
  }
});

Deno.test("not ready yet: readyz 503 while the dependencies are fine", async () => {
  const http = serve([{ name: "etcd", check: () => Promise.resolve(null) }], {
    ready: () => false,
  });
  try {
    const r = await get(http.addr, "/readyz");
    assert.equal(r.status, 503);
    assert.equal(r.body.status, "unavailable");
    assert.equal((await get(http.addr, "/healthz")).status, 200);
  } finally {
    await http.stop();
  }
});

Deno.test("a hung check hits its deadline and is not started again while it hangs", async () => {
  let runs = 0;
  let release: (reason: string | null) => void = () => {};
  const http = serve([{
    name: "s3",
    check: () => {
      runs++;
      return new Promise((resolve) => release = resolve);
    },
  }], { timeoutMs: 50 });
  try {
    const answers = await Promise.all([1, 2, 3].map(() => get(http.addr, "/readyz")));
    for (const a of answers) {
      assert.equal(a.status, 503);
      assert.equal(a.body.dependencies.s3, "no answer within 50 ms");
    }
    assert.equal((await get(http.addr, "/readyz")).status, 503);
    assert.equal(runs, 1, "one run in flight, shared");
    release(null);
    // The hung run settled: the next probe starts a fresh one (which hangs again here).
    assert.equal((await get(http.addr, "/readyz")).status, 503);
    assert.equal(runs, 2);
  } finally {
    release(null);
    await http.stop();
  }
});
