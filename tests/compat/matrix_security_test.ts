/**
 * The compatibility matrix over SASL_SSL (issue 14): the client programs of
 * tests/compat/matrix/matrix.ts run the same scenario as in matrix_test.ts, but every client
 * connects to a SASL_SSL listener, logs in with SCRAM-SHA-512 as the first admin and checks the
 * broker's certificate against a CA made by openssl at test time; then two clients each run it
 * again with SCRAM-SHA-256 and with PLAIN, and four on an SSL listener that requires a client
 * certificate signed by that CA (mTLS) (OTHER_MECHANISMS). The programs read the
 * KAFSCALE_MATRIX_SECURITY_* environment (tests/compat/matrix/README.md, "Security") and map it
 * to their client's settings; nothing else changes from the plaintext run.
 *
 * Every client of the matrix runs: Java kafka-clients 3.9 and 4.4, the Kafka CLI tools (topics,
 * console producer and consumer, consumer groups), franz-go, sarama, kcat, confluent-kafka (PyPI
 * and Debian), kafka-python, kafkajs and @platformatic/kafka. PLAIN, SCRAM-SHA-256, mTLS and the
 * failures are in tests/e2e/security_test.ts.
 *
 * Smaller than the plaintext run (KAFSCALE_MATRIX_SECURE_COUNT records uncompressed, default
 * 300, and 100 per other codec): the point is the login and TLS path of each client, which every
 * cell goes through. Knob: KAFSCALE_MATRIX_CLIENTS (comma-separated client ids).
 */
import assert from "node:assert/strict";
import { startBroker } from "../e2e/broker_process.ts";
import { runProgram } from "../e2e/client_runner.ts";
import {
  CELLS,
  type ClientRun,
  DEFAULT_OPTIONS,
  matrixClients,
  runClient,
} from "./matrix/matrix.ts";
import { freePort } from "../support/ports.ts";

/** The run on the SSL listener that requires a client certificate (mTLS), no SASL. */
const MTLS = "mTLS";
/**
 * Clients that run the scenario again with the other mechanisms, and with a client certificate on
 * the SSL listener (kcat and kafka-python do all of these in tests/e2e/security_test.ts too).
 */
const OTHER_MECHANISMS: Record<string, string[]> = {
  "SCRAM-SHA-256": ["java-4.4.0", "franz-go"],
  PLAIN: ["sarama", "kafkajs"],
  [MTLS]: ["java-4.4.0", "franz-go", "confluent-pypi", "kafkajs"],
};
/** The whole run gets this long; clients after it fail at once. */
const BUDGET_MS = 6 * 60_000;
/** A client is not started with less time than this left in the budget. */
const RUN_DEADLINE_MIN_S = 30;
const OPENSSL_TIMEOUT_MS = 30_000;

/** A CA and a server certificate for 127.0.0.1 / localhost signed by it, in `dir`. */
async function makeCerts(dir: string): Promise<void> {
  const f = (name: string) => `${dir}/${name}`;
  await Deno.writeTextFile(f("san.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  const steps = [
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f("ca.key"), "-out", f("ca.pem")]
      .concat(["-days", "2", "-subj", "/CN=matrix-ca"]),
    ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", f("server.key"), "-out", f("server.csr")]
      .concat(["-subj", "/CN=localhost"]),
    ["x509", "-req", "-in", f("server.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key")]
      .concat(["-CAcreateserial", "-out", f("server.pem"), "-days", "2", "-extfile", f("san.cnf")]),

    ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", f("client.key"), "-out", f("client.csr")]
      .concat(["-subj", "/O=matrix/CN=matrix-client"]),
    ["x509", "-req", "-in", f("client.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key")]
      .concat(["-CAcreateserial", "-out", f("client.pem"), "-days", "2"]),
  ];
  for (const args of steps) {
    const r = await runProgram(["openssl", ...args], { timeoutMs: OPENSSL_TIMEOUT_MS });
    assert.equal(r.code, 0, `openssl ${args.join(" ")}: ${r.stderr}`);
  }
}

function envNumber(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`"${name}" must be a positive integer`);
  return n;
}

Deno.test("client compatibility matrix over SASL_SSL: SCRAM-SHA-512 for every client, SCRAM-SHA-256 and PLAIN for two each, mTLS for four", async (t) => {
  const wanted = Deno.env.get("KAFSCALE_MATRIX_CLIENTS")?.split(",").filter((s) => s);
  const clients = (await matrixClients()).filter((c) => !wanted || wanted.includes(c.id));
  assert.ok(clients.length > 0, `KAFSCALE_MATRIX_CLIENTS matches no client: ${wanted}`);
  const count = envNumber("KAFSCALE_MATRIX_SECURE_COUNT", 300);
  const dir = await Deno.makeTempDir({ prefix: "kafscale-matrix-tls-" });
  try {
    await makeCerts(dir);
    await Deno.writeTextFile(`${dir}/admin.pw`, "matrix-secret\n");
    const [saslPort, sslPort] = [freePort(), freePort()];
    await using broker = await startBroker({
      args: [
        "--listeners",
        `PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:${saslPort},SSL://127.0.0.1:${sslPort}`,
        "--tls-client-ca-file",
        `${dir}/ca.pem`,
        "--tls-cert-file",
        `${dir}/server.pem`,
        "--tls-key-file",
        `${dir}/server.key`,
        "--sasl-admin-user",
        "matrix",
        "--sasl-admin-password-file",
        `${dir}/admin.pw`,
      ],
    });
    const envOf = (mechanism: string): Record<string, string> =>
      mechanism === MTLS
        ? {
          KAFSCALE_MATRIX_SECURITY_PROTOCOL: "SSL",
          KAFSCALE_MATRIX_SSL_CA_FILE: `${dir}/ca.pem`,
          KAFSCALE_MATRIX_SSL_CERT_FILE: `${dir}/client.pem`,
          KAFSCALE_MATRIX_SSL_KEY_FILE: `${dir}/client.key`,
        }
        : {
          KAFSCALE_MATRIX_SECURITY_PROTOCOL: "SASL_SSL",
          KAFSCALE_MATRIX_SASL_MECHANISM: mechanism,
          KAFSCALE_MATRIX_SASL_USERNAME: "matrix",
          KAFSCALE_MATRIX_SASL_PASSWORD: "matrix-secret",
          KAFSCALE_MATRIX_SSL_CA_FILE: `${dir}/ca.pem`,
        };
    const bootstrapOf = (mechanism: string) =>
      `127.0.0.1:${mechanism === MTLS ? sslPort : saslPort}`;
    const runs = [
      ...clients.map((client) => ({ client, mechanism: "SCRAM-SHA-512" })),
      ...Object.entries(OTHER_MECHANISMS).flatMap(([mechanism, ids]) =>
        clients.filter((c) => ids.includes(c.id)).map((client) => ({ client, mechanism }))
      ),
    ];
    const budgetEndMs = Date.now() + BUDGET_MS;
    for (const { client, mechanism } of runs) {
      const env = envOf(mechanism);
      await t.step(`${client.label} (${mechanism})`, async (t) => {
        const leftS = Math.floor((budgetEndMs - Date.now()) / 1000);
        assert.ok(
          leftS >= RUN_DEADLINE_MIN_S,
          `Not run: the ${BUDGET_MS / 60_000} min budget is used up.`,
        );
        const run: ClientRun = await runClient(client, bootstrapOf(mechanism), {
          ...DEFAULT_OPTIONS,
          count,
          compressedCount: Math.max(1, Math.floor(count / 3)),
          deadlineS: Math.min(DEFAULT_OPTIONS.deadlineS, leftS),
          env,
        });
        for (const cell of CELLS) {
          const result = run.cells.get(cell)!;
          if (result.status === "n/a") {
            await t.step({ name: `${cell} (n/a: ${result.detail})`, ignore: true, fn: () => {} });
            continue;
          }
          await t.step(cell, () => {
            assert.equal(
              result.status,
              "pass",
              `${client.label} ${run.version} ${cell} with ${mechanism}: ${result.detail}\n` +
                `--- client stderr (last lines) ---\n${run.stderr}\n` +
                `--- broker output (last lines) ---\n${
                  broker.logs().split("\n").slice(-30).join("\n")
                }`,
            );
          });
        }
      });
    }
    // Every client logged in: none of them could have reached the SASL_SSL port otherwise.
    assert.doesNotMatch(broker.logs(), /matrix-secret/, "The password must never be logged.");
    assert.equal(await broker.stop(), 0, `Broker did not stop cleanly.\n${broker.logs()}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
