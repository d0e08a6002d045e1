/**
 * Real Kafka clients against one real broker (`deno run -A cli.ts serve`): each client creates
 * an 8-partition topic, produces records with acks=all through its own partitioner and codec,
 * reads them all back and checks every key, value, header and offset (tests/e2e/clients/).
 *
 * One step per (client, codec). Record counts: KAFSCALE_E2E_COUNT (default 100 000) for the
 * uncompressed runs, KAFSCALE_E2E_COMPRESSED_COUNT (default 20 000) for the compressed ones, to
 * keep the whole matrix within a few minutes on 2 cores.
 */
import assert from "node:assert/strict";
import { type BrokerProcess, startBroker } from "./broker_process.ts";
import {
  CLIENTS_DIR,
  describeRun,
  lastJsonLine,
  pythonPath,
  requireFile,
  runProgram,
} from "./client_runner.ts";

const PARTITIONS = 8;
const COUNT_PLAIN = Number(Deno.env.get("KAFSCALE_E2E_COUNT") ?? 100_000);
const COUNT_COMPRESSED = Number(Deno.env.get("KAFSCALE_E2E_COMPRESSED_COUNT") ?? 20_000);
/** Deadline a client program enforces on itself (produce + consume), by record count. */
const RUN_DEADLINE_PLAIN_S = 120;
const RUN_DEADLINE_COMPRESSED_S = 60;
/** The whole matrix gets this long; steps after it fail at once (a stuck broker must not eat
 * CI's time budget). */
const MATRIX_BUDGET_MS = 15 * 60_000;
/** A step is not started with less time than this left in the budget. */
const RUN_DEADLINE_MIN_S = 10;
/** Extra time before the test kills a client program that ignored its own deadline. */
const KILL_GRACE_MS = 20_000;

const CODECS = ["none", "gzip", "snappy", "lz4", "zstd"] as const;
type Codec = typeof CODECS[number];

interface Client {
  name: string;
  /** Program and leading arguments; the round-trip arguments follow. */
  command(): string[];
  codecs: readonly Codec[];
}

const python = (script: string) => () => [pythonPath(), `${CLIENTS_DIR}${script}`];

const CLIENTS: readonly Client[] = [
  { name: "kcat", command: python("kcat_roundtrip.py"), codecs: CODECS },
  { name: "confluent-kafka", command: python("confluent_roundtrip.py"), codecs: CODECS },
  { name: "kafka-python", command: python("kafka_python_roundtrip.py"), codecs: CODECS },
  {
    name: "kafkajs",
    command: () => ["node", `${CLIENTS_DIR}kafkajs_roundtrip.mjs`],
    codecs: CODECS,
  },
];

async function roundTrip(
  broker: BrokerProcess,
  client: Client,
  codec: Codec,
  budgetEndMs: number,
): Promise<void> {
  const count = codec === "none" ? COUNT_PLAIN : COUNT_COMPRESSED;
  const leftS = Math.floor((budgetEndMs - Date.now()) / 1000);
  assert.ok(
    leftS >= RUN_DEADLINE_MIN_S,
    `Not run: the round-trip matrix used up its ${MATRIX_BUDGET_MS / 60_000} min budget.`,
  );
  const deadlineS = Math.min(
    leftS,
    codec === "none" ? RUN_DEADLINE_PLAIN_S : RUN_DEADLINE_COMPRESSED_S,
  );
  const topic = `roundtrip-${client.name}-${codec}-${Date.now()}`;
  const [program, ...prefix] = client.command();
  if (program.includes("/")) await requireFile(program);
  const cmd = [
    program,
    ...prefix,
    broker.bootstrap,
    topic,
    String(PARTITIONS),
    String(count),
    codec,
    "--deadline-s",
    String(deadlineS),
  ];
  const result = await runProgram(cmd, { timeoutMs: deadlineS * 1000 + KILL_GRACE_MS });
  const summary = lastJsonLine(result.stdout);
  const context = () =>
    `${describeRun(cmd, result)}\n--- broker output (last lines) ---\n` +
    broker.logs().split("\n").slice(-40).join("\n");
  assert.ok(summary, `${client.name} printed no JSON summary.\n${context()}`);
  assert.equal(summary.ok, true, `${client.name} ${codec} round trip failed.\n${context()}`);
  assert.equal(result.code, 0, `${client.name} exited non-zero.\n${context()}`);
  assert.equal(summary.unique, count);
  assert.equal(summary.partitions_used, PARTITIONS);
}

Deno.test("real clients produce and consume every record exactly", async (t) => {
  const broker = await startBroker();
  const budgetEndMs = Date.now() + MATRIX_BUDGET_MS;
  try {
    // Uncompressed first for every client: the most basic path decides the most.
    for (const codec of CODECS) {
      for (const client of CLIENTS) {
        if (!client.codecs.includes(codec)) continue;
        const count = codec === "none" ? COUNT_PLAIN : COUNT_COMPRESSED;
        await t.step(
          `${client.name} ${codec} (${count} records)`,
          () => roundTrip(broker, client, codec, budgetEndMs),
        );
      }
    }
    assert.equal(await broker.stop(), 0, `Broker did not stop cleanly.\n${broker.logs()}`);
  } finally {
    await broker.cleanup();
  }
});
