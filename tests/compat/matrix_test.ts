/**
 * The cross-client compatibility matrix in CI: one real broker (`deno run -A cli.ts serve`), every
 * client of tests/compat/matrix/matrix.ts runs the same scenario with its default settings, and
 * every (client, cell) is a test step, so each failing cell counts. A cell the client cannot do
 * (kcat has no admin API) is an ignored step whose name says why.
 *
 * A second test runs franz-go's own pkg/kgo test suite against a fresh broker, one step per
 * top-level test (skipped ones are ignored steps with the suite's reason), without the tests
 * KGO_EXCLUDED names: TestConsumeRegex and Test848RegexBrokerResolves (Kafka's __consumer_offsets
 * topic), by design. With ConsumerGroupHeartbeat advertised, the group tests also run their
 * KIP-848 variants (TestGroupETL and TestTxnEtl with group.protocol=consumer).
 * TestTxnEtl (transactions) runs, and so do the SCRAM tests, against a SASL_PLAINTEXT listener of
 * the same broker.
 *
 * Knobs: KAFSCALE_MATRIX_COUNT (uncompressed records, default 2000),
 * KAFSCALE_MATRIX_COMPRESSED_COUNT (records per other codec, default 500),
 * KAFSCALE_MATRIX_CLIENTS (comma-separated client ids to run, default all),
 * KAFSCALE_KGO_SUITE=0 (leave out the franz-go suite), KAFSCALE_KGO_RECORDS (records its ETL tests
 * chain through, default 50000).
 */
import assert from "node:assert/strict";
import { startBroker } from "../e2e/broker_process.ts";
import {
  CELLS,
  type ClientRun,
  DEFAULT_OPTIONS,
  matrixClients,
  runClient,
} from "./matrix/matrix.ts";
import { KGO_EXCLUDED, runKgoSuite, skipPattern, skipReason } from "./matrix/kgo_suite.ts";
import { freePort } from "../support/ports.ts";

/** The whole matrix gets this long; clients after it fail at once. */
const MATRIX_BUDGET_MS = 8 * 60_000;
/** A client is not started with less time than this left in the budget. */
const RUN_DEADLINE_MIN_S = 30;
/** `go test -timeout` of the franz-go suite (about 90 s on 2 cores). */
const KGO_TIMEOUT = "6m";
const KGO_RECORDS_DEFAULT = 50_000;

function envNumber(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`"${name}" must be a positive integer`);
  return n;
}

Deno.test("client compatibility matrix: every client, every cell, default settings", async (t) => {
  const wanted = Deno.env.get("KAFSCALE_MATRIX_CLIENTS")?.split(",").filter((s) => s);
  const clients = (await matrixClients()).filter((c) => !wanted || wanted.includes(c.id));
  assert.ok(clients.length > 0, `KAFSCALE_MATRIX_CLIENTS matches no client: ${wanted}`);
  const count = envNumber("KAFSCALE_MATRIX_COUNT", DEFAULT_OPTIONS.count);
  const compressedCount = envNumber(
    "KAFSCALE_MATRIX_COMPRESSED_COUNT",
    DEFAULT_OPTIONS.compressedCount,
  );
  await using broker = await startBroker();
  const budgetEndMs = Date.now() + MATRIX_BUDGET_MS;
  for (const client of clients) {
    await t.step(client.label, async (t) => {
      const leftS = Math.floor((budgetEndMs - Date.now()) / 1000);
      assert.ok(
        leftS >= RUN_DEADLINE_MIN_S,
        `Not run: the matrix used up its ${MATRIX_BUDGET_MS / 60_000} min budget.`,
      );
      const run: ClientRun = await runClient(client, broker.bootstrap, {
        ...DEFAULT_OPTIONS,
        count,
        compressedCount,
        deadlineS: Math.min(DEFAULT_OPTIONS.deadlineS, leftS),
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
            `${client.label} ${run.version} ${cell}: ${result.detail}\n` +
              `--- client stderr (last lines) ---\n${run.stderr}\n` +
              `--- broker output (last lines) ---\n${
                broker.logs().split("\n").slice(-30).join("\n")
              }`,
          );
        });
      }
    });
  }
  assert.equal(await broker.stop(), 0, `Broker did not stop cleanly.\n${broker.logs()}`);
});

Deno.test({
  name: "franz-go's pkg/kgo test suite against the broker",
  ignore: Deno.env.get("KAFSCALE_KGO_SUITE") === "0",
  fn: async (t) => {
    // A SASL_PLAINTEXT listener too, so the suite's SCRAM tests run (TestSCRAMAuth logs in as
    // the first admin with SCRAM-SHA-512; TestSCRAMAuthBadCredentials must fail to).
    const password = await Deno.makeTempFile();
    await Deno.writeTextFile(password, "kgo-secret\n");
    const saslPort = freePort();
    await using broker = await startBroker({
      args: [
        "--listeners",
        `PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:${saslPort}`,
        "--sasl-admin-user",
        "kgo",
        "--sasl-admin-password-file",
        password,
      ],
    });
    const result = await runKgoSuite(broker.bootstrap, {
      run: "",
      skip: skipPattern(Object.keys(KGO_EXCLUDED)),
      timeout: KGO_TIMEOUT,
      records: envNumber("KAFSCALE_KGO_RECORDS", KGO_RECORDS_DEFAULT),
      env: {
        KGO_TEST_SCRAM: "kgo:kgo-secret:512",
        KGO_TEST_SCRAM_SEEDS: `127.0.0.1:${saslPort}`,
      },
    }).finally(() => Deno.remove(password));
    assert.ok(
      result.tests.size > 0,
      `go test ran no test (exit ${result.exitCode}):\n${result.output.get("(build)") ?? ""}`,
    );
    for (const [name, status] of result.tests) {
      const output = result.output.get(name) ?? "";
      if (status === "skip") {
        await t.step({ name: `${name} (skipped: ${skipReason(output)})`, ignore: true, fn() {} });
        continue;
      }
      await t.step(name, () => {
        assert.equal(
          status,
          "pass",
          `${name}: ${status}\n${output}\n--- broker output (last lines) ---\n${
            broker.logs().split("\n").slice(-30).join("\n")
          }`,
        );
      });
    }
    for (const [name, reason] of Object.entries(KGO_EXCLUDED)) {
      await t.step({ name: `${name} (excluded: ${reason})`, ignore: true, fn() {} });
    }
    assert.equal(await broker.stop(), 0, `Broker did not stop cleanly.\n${broker.logs()}`);
  },
});
