/**
 * Transactions with real clients (issue 12): librdkafka's transactional producer through
 * confluent-kafka (PyPI) commits some transactions and aborts others; read_committed consumers
 * see exactly the committed records, in order, read_uncommitted ones see both; after a broker
 * SIGKILL and a restart on the same data directory the same reads give the same answers.
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

const PARTITIONS = 3;
const TRANSACTIONS = 9;
const PER_TXN = 20;
const RUN_TIMEOUT_MS = 120_000;

interface TxnRun {
  committed: string[];
  aborted: string[];
  read_committed: Record<string, string[]>;
  read_uncommitted: Record<string, string[]>;
}

async function run(bootstrap: string, topic: string, transactions: number): Promise<TxnRun> {
  const cmd = [
    pythonPath(),
    `${CLIENTS_DIR}confluent_transactions.py`,
    bootstrap,
    topic,
    String(PARTITIONS),
    String(transactions),
    String(PER_TXN),
  ];
  const r = await runProgram(cmd, { timeoutMs: RUN_TIMEOUT_MS });
  const out = lastJsonLine(r.stdout);
  assert.ok(out && r.code === 0, describeRun(cmd, r));
  return out as unknown as TxnRun;
}

/** The values of `values` that land on each partition (value j of a transaction on j % P). */
function byPartition(values: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let p = 0; p < PARTITIONS; p++) out[String(p)] = [];
  for (const v of values) out[String(Number(v.split("-r")[1]) % PARTITIONS)].push(v);
  return out;
}

Deno.test("librdkafka transactions: read_committed sees exactly the committed records, across a broker SIGKILL", async () => {
  await requireFile(pythonPath());
  const topic = `txn-${Date.now()}`;
  const first = await startBroker();
  try {
    const produced = await run(first.bootstrap, topic, TRANSACTIONS);
    assert.equal(produced.committed.length, (TRANSACTIONS - TRANSACTIONS / 3) * PER_TXN);
    assert.equal(produced.aborted.length, (TRANSACTIONS / 3) * PER_TXN);
    const all = [...produced.committed, ...produced.aborted].sort((a, b) => {
      const [ta, ra] = a.slice(1).split("-r").map(Number);
      const [tb, rb] = b.slice(1).split("-r").map(Number);
      return ta - tb || ra - rb;
    });
    assert.deepEqual(produced.read_committed, byPartition(produced.committed));
    assert.deepEqual(produced.read_uncommitted, byPartition(all));

    await first.kill();
    await using second = await startBroker({ dataDir: first.dataDir });
    const again = await run(second.bootstrap, topic, 0);
    assert.deepEqual(again.read_committed, produced.read_committed, "after the restart");
    assert.deepEqual(again.read_uncommitted, produced.read_uncommitted, "after the restart");
  } finally {
    await first.cleanup();
  }
});
