/**
 * The broker core's end-to-end produce/consume checks on the distributed deployment (issue 5,
 * "Done means"): two `kafscale serve` processes (node ids 1 and 2) on one real MinIO bucket and
 * one real etcd, and real clients bootstrapped at broker 1 — each creates an 8-partition topic,
 * produces with acks=all through its own partitioner and codec, and reads every record back
 * (tests/e2e/clients/). Metadata spreads the partitions over both brokers, so records go through
 * both and each broker serves only the partitions it owns.
 *
 * Record counts: KAFSCALE_E2E_DISTRIBUTED_COUNT (default 100 000) for the uncompressed run,
 * 20 000 for the compressed ones, to stay within the e2e time budget on 2 cores.
 */
import assert from "node:assert/strict";
import type { BrokerProcess } from "./broker_process.ts";
import {
  CLIENTS_DIR,
  describeRun,
  lastJsonLine,
  pythonPath,
  requireFile,
  runProgram,
} from "./client_runner.ts";
import { getHealth, startBackends, startDistributedBroker } from "../support/distributed.ts";

const PARTITIONS = 8;
const COUNT_PLAIN = Number(Deno.env.get("KAFSCALE_E2E_DISTRIBUTED_COUNT") ?? 100_000);
const COUNT_COMPRESSED = 20_000;
const RUN_DEADLINE_S = 90;
const KILL_GRACE_MS = 20_000;

interface Run {
  client: string;
  command: () => string[];
  codec: "none" | "gzip" | "snappy" | "lz4" | "zstd";
  count: number;
}

const python = (script: string) => () => [pythonPath(), `${CLIENTS_DIR}${script}`];

/** One run per client, each with a different codec (the embedded suite runs the full matrix). */
const RUNS: readonly Run[] = [
  {
    client: "confluent-kafka",
    command: python("confluent_roundtrip.py"),
    codec: "none",
    count: COUNT_PLAIN,
  },
  { client: "kcat", command: python("kcat_roundtrip.py"), codec: "lz4", count: COUNT_COMPRESSED },
  {
    client: "kafka-python",
    command: python("kafka_python_roundtrip.py"),
    codec: "gzip",
    count: COUNT_COMPRESSED,
  },
  {
    client: "kafkajs",
    command: () => ["node", `${CLIENTS_DIR}kafkajs_roundtrip.mjs`],
    codec: "zstd",
    count: COUNT_COMPRESSED,
  },
];

async function roundTrip(bootstrap: BrokerProcess, other: BrokerProcess, run: Run) {
  const topic = `dist-${run.client}-${run.codec}-${Date.now()}`;
  const [program, ...prefix] = run.command();
  if (program.includes("/")) await requireFile(program);
  const cmd = [
    program,
    ...prefix,
    bootstrap.bootstrap,
    topic,
    String(PARTITIONS),
    String(run.count),
    run.codec,
    "--deadline-s",
    String(RUN_DEADLINE_S),
  ];
  const result = await runProgram(cmd, { timeoutMs: RUN_DEADLINE_S * 1000 + KILL_GRACE_MS });
  const summary = lastJsonLine(result.stdout);
  const context = () =>
    `${describeRun(cmd, result)}\n--- broker 1 output ---\n${tailLines(bootstrap.logs())}\n` +
    `--- broker 2 output ---\n${tailLines(other.logs())}`;
  assert.ok(summary, `${run.client} printed no JSON summary.\n${context()}`);
  assert.equal(summary.ok, true, `${run.client} ${run.codec} round trip failed.\n${context()}`);
  assert.equal(result.code, 0, `${run.client} exited non-zero.\n${context()}`);
  assert.equal(summary.unique, run.count);
  assert.equal(summary.partitions_used, PARTITIONS);
  const owners = [bootstrap, other].map((b) => countAcquired(b.logs(), topic));
  assert.equal(owners[0] + owners[1], PARTITIONS, `Each partition has one owner.\n${context()}`);
  assert.ok(owners[0] > 0 && owners[1] > 0, `Both brokers own partitions: ${owners}`);
}

function countAcquired(logs: string, topic: string): number {
  return logs.split("\n").filter((l) =>
    l.includes("Acquired partition") && l.includes(`topic="${topic}"`)
  ).length;
}

function tailLines(text: string, lines = 30): string {
  return text.split("\n").slice(-lines).join("\n");
}

Deno.test("distributed: real clients produce and consume through two brokers on MinIO and etcd", async (t) => {
  await using backends = await startBackends();
  const first = await startDistributedBroker(backends, { brokerId: 1 });
  try {
    const second = await startDistributedBroker(backends, { brokerId: 2 });
    try {
      for (const b of [first, second]) {
        const ready = await getHealth(b.httpAddr, "/readyz");
        assert.equal(ready?.status, 200, JSON.stringify(ready));
        assert.deepEqual(ready?.body.dependencies, { etcd: "ok", flush: "ok", s3: "ok" });
      }
      for (const run of RUNS) {
        await t.step(
          `${run.client} ${run.codec} (${run.count} records)`,
          () => roundTrip(first, second, run),
        );
      }
      assert.equal(await second.stop(), 0, `Broker 2 did not stop cleanly.\n${second.logs()}`);
    } finally {
      await second.cleanup();
    }
    assert.equal(await first.stop(), 0, `Broker 1 did not stop cleanly.\n${first.logs()}`);
  } finally {
    await first.cleanup();
  }
});
