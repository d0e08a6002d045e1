import assert from "node:assert/strict";
import { parseReadyLine, startBroker } from "./broker_process.ts";

const FAKE = [
  Deno.execPath(),
  "run",
  "-A",
  new URL("./fixtures/fake_broker.ts", import.meta.url)
    .pathname,
];

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("parseReadyLine reads quoted and bare addresses", () => {
  const line = '2026-11-24T16:00:00.000Z INFO Broker ready kafka="127.0.0.1:39211" ' +
    'http="127.0.0.1:39212" control=127.0.0.1:39213 ready_ms=85';
  assert.deepEqual(parseReadyLine(line), {
    kafka: "127.0.0.1:39211",
    http: "127.0.0.1:39212",
    control: "127.0.0.1:39213",
  });
  assert.throws(() => parseReadyLine("INFO Broker ready"), /kafka="HOST:PORT"/);
});

Deno.test("startBroker waits for ready, stop returns the exit code, cleanup removes the dir", async () => {
  const broker = await startBroker({ command: FAKE, brokerId: 7 });
  try {
    assert.equal(broker.host, "127.0.0.1");
    assert.ok(broker.port > 0);
    assert.equal(broker.bootstrap, `127.0.0.1:${broker.port}`);
    assert.match(broker.httpAddr, /^127\.0\.0\.1:\d+$/);
    assert.match(broker.controlAddr, /^127\.0\.0\.1:\d+$/);
    assert.match(broker.logs(), /broker_id=7/);
    const conn = await Deno.connect({ hostname: broker.host, port: broker.port });
    conn.close();
    assert.ok(await exists(`${broker.dataDir}/fake_broker.pid`));
    assert.equal(await broker.stop(), 0);
    assert.equal(await broker.stop(), 0, "a second stop returns the same code");
    assert.match(broker.logs(), /fake broker: stopping/);
  } finally {
    await broker.cleanup();
  }
  assert.equal(await exists(broker.dataDir), false);
});

Deno.test("startBroker keeps a given data dir and kill is a SIGKILL", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "kafscale-e2e-test-" });
  try {
    const broker = await startBroker({ command: FAKE, dataDir });
    await broker.kill();
    assert.doesNotMatch(broker.logs(), /fake broker: stopping/, "SIGKILL skips the handler");
    await broker.cleanup();
    assert.ok(await exists(`${dataDir}/fake_broker.pid`), "a caller's data dir is kept");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("startBroker drains a chatty broker's pipes", async () => {
  const broker = await startBroker({ command: FAKE, env: { FAKE_BROKER_MODE: "chatty" } });
  try {
    const logs = broker.logs();
    assert.ok(logs.split("\n").length <= 400, "keeps a bounded tail");
    assert.match(logs, /Broker ready/);
    assert.equal(await broker.stop(), 0);
  } finally {
    await broker.cleanup();
  }
});

Deno.test("startBroker reports an early exit with the broker's output", async () => {
  await assert.rejects(
    startBroker({ command: FAKE, env: { FAKE_BROKER_MODE: "exit_early" } }),
    /exited with code 3 before it was ready[\s\S]*failing on purpose/,
  );
});

Deno.test("startBroker gives up when no ready line comes", async () => {
  await assert.rejects(
    startBroker({ command: FAKE, env: { FAKE_BROKER_MODE: "silent" }, readyTimeoutMs: 1_500 }),
    /printed no "Broker ready" line within 1500 ms/,
  );
});
