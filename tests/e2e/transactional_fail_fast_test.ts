/**
 * A transactional producer's `init_transactions()` fails at once against the
 * broker (no transactions), instead of retrying until its timeout: librdkafka
 * through confluent-kafka (PyPI), which treats
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED from FindCoordinator as fatal. Pins
 * issue 18 (librdkafka 0103/0129 ran into their timeouts).
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import {
  CLIENTS_DIR,
  describeRun,
  lastJsonLine,
  pythonPath,
  requireFile,
  runProgram,
} from "./client_runner.ts";

/** What init_transactions() may wait; a fail-fast answer comes long before. */
const INIT_TIMEOUT_S = 30;
const FAIL_FAST_S = 10;

Deno.test("librdkafka init_transactions() fails fast and fatally against the broker", async () => {
  await requireFile(pythonPath());
  await using broker = await startBroker();
  const cmd = [
    pythonPath(),
    `${CLIENTS_DIR}confluent_init_transactions.py`,
    broker.bootstrap,
    String(INIT_TIMEOUT_S),
  ];
  const r = await runProgram(cmd, { timeoutMs: (INIT_TIMEOUT_S + 30) * 1000 });
  const out = lastJsonLine(r.stdout);
  assert.ok(out, describeRun(cmd, r));
  assert.equal(out.error, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", describeRun(cmd, r));
  assert.equal(out.fatal, true);
  assert.ok((out.seconds as number) < FAIL_FAST_S, `took ${out.seconds} s`);
});
