/**
 * Pre-authentication abuse on a SASL listener (issue 14): 1,000 connections that open and never
 * log in, plus garbage and an oversized size prefix, leave the broker's memory bounded and other
 * clients served; the idle ones are closed once `--sasl-auth-timeout-ms` passes.
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { plainLogin } from "../support/sasl_client.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { freePort } from "../support/ports.ts";

const IDLE_CONNECTIONS = 1_000;
/** RSS the idle connections may add (each holds a socket and a small staging buffer). */
const RSS_GROWTH_MAX_BYTES = 200 * 1024 * 1024;

async function metric(http: string, name: string): Promise<number> {
  const text = await (await fetch(`http://${http}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : NaN;
}

Deno.test("pre-authentication: 1,000 idle connections, garbage and a huge size prefix leave memory bounded and others served", async () => {
  const password = await Deno.makeTempFile();
  await Deno.writeTextFile(password, "adminpw\n");
  const saslPort = freePort();
  await using broker = await startBroker({
    args: [
      "--listeners",
      `PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:${saslPort}`,
      "--sasl-admin-user",
      "admin",
      "--sasl-admin-password-file",
      password,
      "--sasl-auth-timeout-ms",
      "3000",
    ],
  });
  const sockets: Deno.TcpConn[] = [];
  try {
    const rssBefore = await metric(broker.httpAddr, "kafscale_memory_rss_bytes");
    for (let i = 0; i < IDLE_CONNECTIONS; i++) {
      sockets.push(await Deno.connect({ hostname: "127.0.0.1", port: saslPort }));
    }
    // Garbage, and a size prefix of 1 GiB: both closed before anything is allocated.
    for (
      const bytes of [
        new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]),
        new Uint8Array([0x40, 0, 0, 0]),
      ]
    ) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: saslPort });
      await c.write(bytes);
      assert.equal(await c.read(new Uint8Array(16)), null, "closed by the broker");
      c.close();
    }
    // Another client still logs in and is served.
    const conn = await KafkaConnection.connect(`127.0.0.1:${saslPort}`);
    assert.equal((await plainLogin(conn, 2, "admin", "adminpw")).errorCode, E.NONE);
    assert.ok(
      await conn.send(API_SCHEMAS[3], 9, {
        topics: [],
        allowAutoTopicCreation: false,
        includeTopicAuthorizedOperations: false,
      }),
    );
    const connected = await metric(broker.httpAddr, "kafscale_connections");
    assert.ok(connected >= IDLE_CONNECTIONS, `${connected} connections open`);
    const rss = await metric(broker.httpAddr, "kafscale_memory_rss_bytes");
    assert.ok(
      rss - rssBefore < RSS_GROWTH_MAX_BYTES,
      `RSS grew by ${
        Math.round((rss - rssBefore) / 1048576)
      } MiB with ${IDLE_CONNECTIONS} idle connections`,
    );
    // The idle ones are closed at the login timeout; the logged-in one stays.
    const deadline = Date.now() + 30_000;
    let open = connected;
    while (open > 10 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      open = await metric(broker.httpAddr, "kafscale_connections");
    }
    assert.ok(open <= 10, `${open} connections still open after the login timeout`);
    assert.ok(
      await conn.send(API_SCHEMAS[3], 9, {
        topics: [],
        allowAutoTopicCreation: false,
        includeTopicAuthorizedOperations: false,
      }),
    );
    conn.close();
  } finally {
    for (const s of sockets) {
      try {
        s.close();
      } catch { /* closed by the broker */ }
    }
    await Deno.remove(password);
  }
});
