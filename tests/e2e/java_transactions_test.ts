/**
 * Transactions with Java kafka-clients and Kafka Streams 4.4 (issue 12), against a live
 * `kafscale serve`:
 *
 * - A transactional producer (transactions V2, and V1 with `--transaction-version 1`) commits
 *   some transactions and aborts others; another instance is
 *   SIGKILLed mid-transaction and a new instance with the same transactional.id takes over
 *   (its initTransactions() aborts what the dead one left open). A read_committed consumer then
 *   sees exactly the committed records, in order per partition, and a read_uncommitted one sees
 *   every record sent. Two producers with one transactional.id: the older is fenced.
 * - A Kafka Streams word count with processing.guarantee=exactly_once_v2 gives exact counts
 *   (read committed from its output) across a SIGKILL of the application and across a SIGKILL
 *   and restart of the broker.
 *
 * Jars: scripts/setup_compat.sh (tests/compat/stateful/java: TxnApp.java, WordCount.java).
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import { AdminClient } from "../../lib/client/admin.ts";
import {
  countWords,
  freePort,
  jarsInstalled,
  JavaProcess,
  latestCounts,
  lines,
  metric,
  produceLines,
  START_TIMEOUT_MS,
  WORK_TIMEOUT_MS,
} from "./java_apps.ts";

const PER_TXN = 12;
const PARTITIONS = 3;

function txnApp(args: string[]): JavaProcess {
  return new JavaProcess("txn", "TxnApp", args);
}

async function runToEnd(app: JavaProcess): Promise<string[]> {
  const status = await app.exit(START_TIMEOUT_MS + WORK_TIMEOUT_MS);
  assert.equal(status.code, 0, app.output());
  return app.stdout;
}

/** Values per partition of transactions `txns`, in order (value j of a transaction on j % P). */
function expected(txns: number[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (let p = 0; p < PARTITIONS; p++) out.set(p, []);
  for (const t of txns) {
    for (let j = 0; j < PER_TXN; j++) out.get(j % PARTITIONS)!.push(`t${t}-r${j}`);
  }
  return out;
}

async function read(bootstrap: string, topic: string, isolation: string) {
  const out = await runToEnd(txnApp(["read", bootstrap, topic, isolation]));
  const byPartition = new Map<number, string[]>();
  for (const line of out) {
    const m = line.match(/^p (\d+) (.*)$/);
    if (!m) continue;
    const list = byPartition.get(Number(m[1])) ?? [];
    list.push(m[2]);
    byPartition.set(Number(m[1]), list);
  }
  return byPartition;
}

for (const tv of [2, 1] as const) {
  Deno.test(`Java transactional producer (transactions V${tv}): commits, aborts, a producer killed mid-transaction and a fenced zombie; read_committed sees exactly the committed records`, async () => {
    await javaProducerScenario(tv);
  });
}

async function javaProducerScenario(tv: 1 | 2): Promise<void> {
  await jarsInstalled();
  await using broker = await startBroker({ args: ["--transaction-version", String(tv)] });
  using admin = await AdminClient.connect(broker.bootstrap);
  await admin.createTopic("jtx", PARTITIONS, {});
  const b = broker.bootstrap;
  const txnId = "java-txn";
  const first = await runToEnd(txnApp(["produce", b, "jtx", txnId, "0", "6", String(PER_TXN)]));
  assert.deepEqual(
    first.filter((l) => /^(commit|abort) /.test(l)),
    ["commit 0", "commit 1", "abort 2", "commit 3", "commit 4", "abort 5"],
  );
  // Transaction 6 is left open by a producer that dies.
  const hung = txnApp(["hang", b, "jtx", txnId, "6", String(PER_TXN)]);
  await hung.waitForLine(/^open$/, START_TIMEOUT_MS);
  await hung.kill();
  // Undecided data is not read committed (the LSO holds), though it is stored.
  const undecided = await read(b, "jtx", "read_committed");
  assert.deepEqual(undecided, expected([0, 1, 3, 4]));
  // A new instance aborts transaction 6 in initTransactions(), then goes on.
  const second = await runToEnd(txnApp(["produce", b, "jtx", txnId, "7", "10", String(PER_TXN)]));
  assert.deepEqual(
    second.filter((l) => /^(commit|abort) /.test(l)),
    ["commit 7", "abort 8", "commit 9"],
  );
  assert.deepEqual(await read(b, "jtx", "read_committed"), expected([0, 1, 3, 4, 7, 9]));
  assert.deepEqual(
    await read(b, "jtx", "read_uncommitted"),
    expected([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
  );

  await admin.createTopic("jzombie", 1, {});
  const zombie = await runToEnd(txnApp(["zombie", b, "jzombie", "zombie-txn"]));
  assert.ok(
    zombie.some((l) => /^fenced (ProducerFencedException|InvalidProducerEpochException)/.test(l)),
    zombie.join("\n"),
  );
  assert.ok(zombie.includes("zombie-ok"));
  assert.deepEqual(await read(b, "jzombie", "read_committed"), new Map([[0, ["zombie-ok"]]]));
  // kafka-clients 4.4 uses the version the broker finalizes: with V2 no AddPartitionsToTxn
  // (partitions join through Produce v12, EndTxn v5 bumps the epoch), with V1 one per transaction.
  const adds = await metric(broker, 'kafscale_requests_total{api="AddPartitionsToTxn"}');
  if (tv === 2) assert.equal(adds, 0, "transactions V2: no AddPartitionsToTxn");
  else assert.ok(adds >= 10, `transactions V1: ${adds} AddPartitionsToTxn`);
  assert.ok((await metric(broker, 'kafscale_requests_total{api="EndTxn"}')) >= 10);
}

Deno.test("Kafka Streams exactly_once_v2: exact counts across a SIGKILL of the application and of the broker", async () => {
  await jarsInstalled();
  const port = freePort();
  const args = ["--listen", `127.0.0.1:${port}`];
  let broker = await startBroker({ args });
  const dataDir = broker.dataDir;
  const stateDir = await Deno.makeTempDir({ prefix: "kafscale-eos-" });
  const app = "eos-wordcount";
  let streams: JavaProcess | null = null;
  const run = () =>
    new JavaProcess("streams-eos", "WordCount", [
      broker.bootstrap,
      app,
      stateDir,
      "eos-lines",
      "eos-counts",
      "exactly_once_v2",
    ]);
  try {
    using admin = await AdminClient.connect(broker.bootstrap);
    await admin.createTopic("eos-lines", 2, {});
    await admin.createTopic("eos-counts", 1, {});
    const all: string[] = [];
    const feed = async (seed: number, count: number) => {
      const batch = lines(seed, count);
      await produceLines(broker.bootstrap, "eos-lines", batch.lines);
      all.push(...batch.lines);
      return batch.words;
    };
    // Round 1: counted, then the application is SIGKILLed with transactions in flight.
    let words = await feed(3, 300);
    streams = run();
    await streams.waitForLine(/^counted \d+$/, START_TIMEOUT_MS + WORK_TIMEOUT_MS);
    await streams.kill();
    // Round 2: a new instance (same state dir) takes over the aborted work and finishes it.
    words += await feed(5, 200);
    streams = run();
    await streams.waitForLine(/^state RUNNING$/, START_TIMEOUT_MS + WORK_TIMEOUT_MS);
    await waitForCounts(broker.bootstrap, all);
    // Round 3: the broker is SIGKILLed mid-stream and restarted on the same data directory
    // and port; the application recovers and the counts are still exact.
    await feed(9, 200);
    await streams.waitForLine(/^counted \d+$/, WORK_TIMEOUT_MS);
    await broker.kill();
    broker = await startBroker({ dataDir, args });
    await waitForCounts(broker.bootstrap, all);
    await streams.stop();
    assert.ok(words > 0);
  } finally {
    await streams?.kill();
    await broker.stop();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
});

/** Waits until the committed output holds exactly the counts of `all`; fails on a wrong count. */
async function waitForCounts(bootstrap: string, all: string[]): Promise<void> {
  const want = countWords(all);
  const deadline = Date.now() + START_TIMEOUT_MS + WORK_TIMEOUT_MS;
  let got = new Map<string, number>();
  while (Date.now() < deadline) {
    got = await latestCounts(bootstrap, "eos-counts", 1).catch(() => new Map());
    for (const [word, n] of got) {
      assert.ok(
        n <= want.get(word)!,
        `"${word}" counted ${n} times, more than its ${want.get(word)}`,
      );
    }
    if ([...want].every(([w, n]) => got.get(w) === n)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(got, want, "exact counts in the committed output");
}
