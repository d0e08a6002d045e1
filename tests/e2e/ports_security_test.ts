/**
 * The broker's other ports secured (issue 14): the HTTP port over HTTPS with a bearer token on
 * everything but the probes, and the gRPC control port over TLS requiring a client certificate
 * signed by the client CA (`kafscale broker status` with and without one), against a live
 * `kafscale serve`; SIGHUP re-reads the certificate for both ports; and the configuration rule
 * that a control port off loopback needs a token or client certificates.
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import { makeCerts, serverTlsArgs } from "../support/certs.ts";
import { runBroker } from "../../lib/cli/broker.ts";
import { ConfigError, resolveServeConfig } from "../../lib/cli/serve_config.ts";
import { captureIo } from "../cli/cli_support.ts";

const TOKEN = "http-s3cret";

Deno.test("ports: HTTPS with a token on the HTTP port; mTLS on the control port", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-ports-" });
  try {
    await makeCerts(dir);
    await using broker = await startBroker({
      args: [
        ...serverTlsArgs(dir),
        "--http-tls",
        "--http-token",
        TOKEN,
        "--control-tls",
      ],
    });
    const ca = await Deno.readTextFile(`${dir}/ca.pem`);
    using client = Deno.createHttpClient({ caCerts: [ca] });
    const get = (path: string, auth?: string) =>
      fetch(`https://${broker.httpAddr}${path}`, {
        client,
        headers: auth ? { authorization: auth } : {},
      });
    // Probes stay open; everything else needs the token.
    for (const path of ["/healthz", "/readyz"]) {
      const res = await get(path);
      assert.equal(res.status, 200, path);
      await res.body?.cancel();
    }
    for (const auth of [undefined, "Bearer wrong", `Basic ${TOKEN}`]) {
      const res = await get("/metrics", auth);
      assert.equal(res.status, 401, `/metrics with ${auth}`);
      await res.body?.cancel();
    }
    const metrics = await get("/metrics", `Bearer ${TOKEN}`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^kafscale_/m);
    // Plain HTTP is not served.
    await assert.rejects(() => fetch(`http://${broker.httpAddr}/healthz`));

    // The control port: TLS, and a client certificate of the client CA is required.
    const status = async (...extra: string[]) => {
      const io = captureIo();
      const code = await runBroker(
        ["status", "--control-server", broker.controlAddr, ...extra],
        io,
        {},
      );
      return { code, out: io.stdoutText(), err: io.err.join("\n") };
    };
    const ok = await status(
      "--control-ca-file",
      `${dir}/ca.pem`,
      "--control-cert-file",
      `${dir}/alice.pem`,
      "--control-key-file",
      `${dir}/alice.key`,
    );
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /READY|ready|true/i);
    const noCert = await status("--control-ca-file", `${dir}/ca.pem`);
    assert.equal(noCert.code, 1, "no client certificate");
    const rogue = await status(
      "--control-ca-file",
      `${dir}/ca.pem`,
      "--control-cert-file",
      `${dir}/mallory.pem`,
      "--control-key-file",
      `${dir}/mallory.key`,
    );
    assert.equal(rogue.code, 1, "a certificate of another CA");
    const plain = await status();
    assert.equal(plain.code, 1, "plaintext gRPC to a TLS port");

    // SIGHUP: a certificate of another CA, re-read without a restart, on both ports.
    await Deno.copyFile(`${dir}/server2.pem`, `${dir}/server.pem`);
    await Deno.copyFile(`${dir}/server2.key`, `${dir}/server.key`);
    Deno.kill(broker.pid, "SIGHUP");
    using client2 = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(`${dir}/ca2.pem`)] });
    const healthyWith = async (c: Deno.HttpClient) => {
      try {
        const res = await fetch(`https://${broker.httpAddr}/healthz`, { client: c });
        await res.body?.cancel();
        return res.status === 200;
      } catch {
        return false;
      }
    };
    const deadline = Date.now() + 20_000;
    let reloaded = false;
    while (!reloaded && Date.now() < deadline) {
      reloaded = await healthyWith(client2);
      if (!reloaded) await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(reloaded, `HTTPS serves the new certificate\n${broker.logs()}`);
    using fresh = Deno.createHttpClient({ caCerts: [ca] });
    assert.equal(await healthyWith(fresh), false, "the old CA no longer verifies it");
    const withCa = (serverCa: string) =>
      status(
        "--control-ca-file",
        `${dir}/${serverCa}.pem`,
        "--control-cert-file",
        `${dir}/alice.pem`,
        "--control-key-file",
        `${dir}/alice.key`,
      );
    const renewed = await withCa("ca2");
    assert.equal(renewed.code, 0, `the control port serves the new certificate: ${renewed.err}`);
    assert.equal((await withCa("ca")).code, 1, "the old one is gone from the control port");
    assert.equal(await broker.stop(), 0, broker.logs());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ports: a control port off loopback needs a token or client certificates", () => {
  const flags = (extra: [string, string][]) =>
    new Map<string, string>([["control-listen", "0.0.0.0:9094"], ...extra]);
  assert.throws(() => resolveServeConfig(flags([]), {}, null), ConfigError);
  assert.ok(resolveServeConfig(flags([["control-token", "t"]]), {}, null));
  const tls: [string, string][] = [["tls-cert-file", "/c.pem"], ["tls-key-file", "/k.pem"]];
  assert.throws(
    () => resolveServeConfig(flags([...tls, ["control-tls", "true"]]), {}, null),
    /not loopback/,
    "TLS without client certificates is not enough",
  );
  assert.ok(
    resolveServeConfig(
      flags([...tls, ["control-tls", "true"], ["tls-client-ca-file", "/ca.pem"]]),
      {},
      null,
    ),
  );
  assert.throws(
    () => resolveServeConfig(flags([["control-token", "t"], ["http-tls", "true"]]), {}, null),
    /"http-tls" is on: set "--tls-cert-file"/,
  );
});
