/**
 * Kafka Connect and Kafka Streams, the stateful applications that keep their state in compacted
 * topics, against a live `kafscale serve` (issue 11):
 *
 * - A Kafka Connect worker in distributed mode with its default settings (only the bootstrap
 *   address, group id, converters, internal topic names and replication factor -1 are set, as
 *   a single-broker Apache Kafka needs too) runs one source connector from the test tree
 *   (tests/compat/stateful/java/CountingSource.java). Its internal topics are created compacted;
 *   the connector writes N records; the worker restarts and resumes from the committed source
 *   offset without writing them again, then writes N more when asked.
 * - A Kafka Streams word count with a state store (WordCount.java, at-least-once, defaults)
 *   computes exact counts; after its state directory is wiped it restores the store from its
 *   changelog and continues with exact counts.
 *
 * Both run on the embedded store and on MinIO + etcd, with data sealed within a second
 * (`--seal-max-age-ms 1000`) so the compactor rewrites the compacted topics while the
 * applications use them; each test checks on /metrics that compaction ran.
 *
 * Jars: scripts/setup_compat.sh fetches connect-runtime and kafka-streams
 * (tests/compat/stateful/versions.env) into .tools/compat-stateful and compiles the programs.
 */
import assert from "node:assert/strict";
import { type BrokerProcess, drainLines, startBroker } from "./broker_process.ts";
import { type Backends, startBackends, startDistributedBroker } from "../support/distributed.ts";
import { REPO_ROOT, requireFile } from "./client_runner.ts";
import { AdminClient } from "../../lib/client/admin.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import {
  type ConsumedRecord,
  decodeRecordBatches,
  encodeRecordBatch,
} from "../../lib/protocol/records.ts";

const VERSIONS = await Deno.readTextFile(`${REPO_ROOT}tests/compat/stateful/versions.env`);
const VERSION = VERSIONS.match(/^STATEFUL_KAFKA_VERSION="?([^"\s]+)"?/m)![1];
const TOOLS = `${REPO_ROOT}.tools/compat-stateful`;
const CLASSPATH = `${TOOLS}/classes-${VERSION}:${TOOLS}/libs-${VERSION}/*`;
/** Small heap, quick start-up: these JVMs do little work. */
const JAVA = ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"];
/** slf4j-simple: warnings and errors to stderr; the programs' own lines go to stdout. */
const LOGGING = ["-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"];
/** A JVM start plus a group join (the broker's initial rebalance delay is 3 s). */
const START_TIMEOUT_MS = 60_000;
/** Work after start: N records, or a few hundred words. */
const WORK_TIMEOUT_MS = 60_000;
/** A graceful stop (Connect commits offsets, Streams flushes and commits). */
const STOP_TIMEOUT_MS = 30_000;
/** Between two looks at a polled condition. */
const POLL_INTERVAL_MS = 200;
/** Lines of stderr kept for failure messages. */
const STDERR_LINES_MAX = 200;
/** Stdout lines kept: the programs print one line per record or word. */
const STDOUT_LINES_MAX = 100_000;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Serve flags: seal within a second, so compaction runs during the scenarios. */
const BROKER_ARGS = ["--seal-max-age-ms", "1000"];

/** A broker for a scenario: embedded, or on fresh MinIO + etcd (stopped with it). */
async function brokerOn(
  backend: "embedded" | "minio+etcd",
): Promise<{ broker: BrokerProcess; backends: Backends | null }> {
  if (backend === "embedded") {
    return { broker: await startBroker({ args: BROKER_ARGS }), backends: null };
  }
  const backends = await startBackends();
  try {
    return { broker: await startDistributedBroker(backends, { args: BROKER_ARGS }), backends };
  } catch (error) {
    await backends.stop();
    throw error;
  }
}

/** A counter's value on the broker's /metrics (0 when absent). */
async function metric(broker: BrokerProcess, name: string): Promise<number> {
  const res = await fetch(`http://${broker.httpAddr}/metrics`);
  const text = await res.text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

/** Waits until the broker's compactor has run (and removed records, when `removed`). */
async function compactionRan(broker: BrokerProcess, removed: boolean): Promise<void> {
  await until(
    "a compaction run on the broker",
    WORK_TIMEOUT_MS,
    async () =>
      (await metric(broker, "kafscale_compaction_runs")) > 0 &&
      (!removed || (await metric(broker, "kafscale_compaction_records_removed")) > 0),
    () => broker.logs(),
  );
}

async function jarsInstalled(): Promise<void> {
  await requireFile(`${TOOLS}/libs-${VERSION}/.complete`);
  await requireFile(`${TOOLS}/classes-${VERSION}/.stamp`);
}

/** Polls `check` until it returns true; throws naming `what` after `timeoutMs`. */
async function until(
  what: string,
  timeoutMs: number,
  check: () => boolean | Promise<boolean>,
  detail: () => string = () => "",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms: ${what}\n${detail()}`);
    }
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
}

/** A Java program with its output drained into bounded line buffers. */
class JavaProcess {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #drained: Promise<unknown>;
  #exit: Deno.CommandStatus | null = null;

  constructor(name: string, mainClass: string, args: string[]) {
    this.#child = new Deno.Command(JAVA[0], {
      args: [
        ...JAVA.slice(1),
        ...LOGGING,
        `-Dkafscale.test=${name}`,
        "-cp",
        CLASSPATH,
        mainClass,
        ...args,
      ],
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const keep = (lines: string[], max: number) => (line: string) => {
      lines.push(line);
      if (lines.length > max) lines.shift();
    };
    this.#drained = Promise.all([
      drainLines(this.#child.stdout, keep(this.stdout, STDOUT_LINES_MAX)),
      drainLines(this.#child.stderr, keep(this.stderr, STDERR_LINES_MAX)),
    ]);
    this.#child.status.then((s) => this.#exit = s);
  }

  get exited(): boolean {
    return this.#exit !== null;
  }

  output(): string {
    return `stdout (last lines):\n${this.stdout.slice(-20).join("\n")}\n` +
      `stderr (last lines):\n${this.stderr.slice(-60).join("\n")}`;
  }

  /** Waits for a stdout line matching `pattern`; fails early when the program exits. */
  async waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    let found: RegExpMatchArray | null = null;
    await until(`a line matching ${pattern}`, timeoutMs, () => {
      if (this.exited) throw new Error(`Exited before printing ${pattern}:\n${this.output()}`);
      for (const line of this.stdout) {
        found = line.match(pattern);
        if (found) return true;
      }
      return false;
    }, () => this.output());
    return found!;
  }

  /** SIGTERM (a graceful stop), then SIGKILL after the deadline; resolves with the exit status. */
  async stop(): Promise<Deno.CommandStatus> {
    if (!this.exited) this.#child.kill("SIGTERM");
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, STOP_TIMEOUT_MS);
    try {
      const status = await this.#child.status;
      await this.#drained;
      return status;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Every record of `topic` (all partitions), read from offset 0 to the high watermark. */
async function readTopic(bootstrap: string, topic: string): Promise<ConsumedRecord[]> {
  using admin = await AdminClient.connect(bootstrap);
  const [described] = await admin.describeTopics([topic]);
  const conn = await KafkaConnection.connect(bootstrap, "kafscale-e2e-reader");
  try {
    const all: ConsumedRecord[] = [];
    for (const p of described.partitions) {
      let offset = p.earliestOffset;
      // Bounded: each round moves past at least one batch, and the end is fixed.
      for (let round = 0; offset < p.latestOffset && round < 10_000; round++) {
        const res = await conn.send(API_SCHEMAS[1], 12, {
          replicaId: -1,
          maxWaitMs: 0,
          minBytes: 1,
          maxBytes: 4 * 1024 * 1024,
          isolationLevel: 0,
          sessionId: 0,
          sessionEpoch: -1,
          topics: [{
            topic,
            topicId: "AAAAAAAAAAAAAAAAAAAAAA",
            partitions: [{
              partition: p.partition,
              currentLeaderEpoch: -1,
              fetchOffset: offset,
              lastFetchedEpoch: -1,
              logStartOffset: -1,
              partitionMaxBytes: 4 * 1024 * 1024,
            }],
          }],
          forgottenTopicsData: [],
          rackId: "",
        });
        const part = res!.responses[0].partitions[0];
        assert.equal(part.errorCode, ERROR_CODES.NONE, `fetch ${topic}-${p.partition}`);
        const { records, batches } = decodeRecordBatches(part.records ?? new Uint8Array());
        if (batches.length === 0) break;
        all.push(...records.filter((r) => r.offset >= offset && r.offset < p.latestOffset));
        offset = batches.at(-1)!.baseOffset + batches.at(-1)!.lastOffsetDelta + 1;
      }
    }
    return all;
  } finally {
    conn.close();
  }
}

async function cleanupPolicyOf(bootstrap: string, topic: string): Promise<string | null> {
  using admin = await AdminClient.connect(bootstrap);
  const configs = (await admin.describeTopicConfigs([topic])).get(topic) ?? [];
  return configs.find((c) => c.name === "cleanup.policy")?.value ?? null;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

// ---- Kafka Connect -----------------------------------------------------------------------------

/** Records the connector writes in each of the two rounds. */
const CONNECT_RECORDS = 300;

for (const backend of ["embedded", "minio+etcd"] as const) {
  Deno.test(`Kafka Connect (${backend}): distributed worker with compacted internal topics resumes from its committed source offset`, async () => {
    await jarsInstalled();
    const { broker, backends } = await brokerOn(backend);
    try {
      await connectScenario(broker);
    } finally {
      await broker.stop();
      await broker.cleanup();
      await backends?.stop();
    }
  });
  Deno.test(`Kafka Streams (${backend}): a word count with a state store is exact, and restores from its changelog after its state is wiped`, async () => {
    await jarsInstalled();
    const { broker, backends } = await brokerOn(backend);
    try {
      await streamsScenario(broker);
    } finally {
      await broker.stop();
      await broker.cleanup();
      await backends?.stop();
    }
  });
}

async function connectScenario(broker: BrokerProcess): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-connect-" });
  const rest = `http://127.0.0.1:${freePort()}`;
  const properties = `${dir}/worker.properties`;
  await Deno.writeTextFile(
    properties,
    [
      `bootstrap.servers=${broker.bootstrap}`,
      "group.id=kafscale-e2e-connect",
      "key.converter=org.apache.kafka.connect.storage.StringConverter",
      "value.converter=org.apache.kafka.connect.storage.StringConverter",
      "offset.storage.topic=connect-offsets",
      "config.storage.topic=connect-configs",
      "status.storage.topic=connect-status",
      // Connect's default is 3; a single broker has one replica (as with Apache Kafka).
      "offset.storage.replication.factor=-1",
      "config.storage.replication.factor=-1",
      "status.storage.replication.factor=-1",
      `listeners=${rest}`,
    ].join("\n"),
  );
  const startWorker = async () => {
    const worker = new JavaProcess("connect", "org.apache.kafka.connect.cli.ConnectDistributed", [
      properties,
    ]);
    await until("the Connect REST API", START_TIMEOUT_MS, async () => {
      if (worker.exited) throw new Error(`The worker exited:\n${worker.output()}`);
      try {
        const res = await fetch(`${rest}/connectors`);
        await res.body?.cancel();
        return res.ok;
      } catch {
        return false;
      }
    }, () => worker.output());
    return worker;
  };
  const configure = async (count: number) => {
    const res = await fetch(`${rest}/connectors/counter/config`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        "connector.class": "CountingSource",
        "tasks.max": "1",
        topic: "counted",
        count: String(count),
      }),
    });
    const body = await res.text();
    assert.ok(res.ok, `PUT connector config: ${res.status} ${body}`);
  };
  const recordsReach = (n: number, worker: JavaProcess) =>
    until(`${n} records in "counted"`, WORK_TIMEOUT_MS, async () => {
      if (worker.exited) throw new Error(`The worker exited:\n${worker.output()}`);
      return (await readTopic(broker.bootstrap, "counted").catch(() => [])).length >= n;
    }, () => worker.output());

  let worker: JavaProcess | null = null;
  try {
    worker = await startWorker();
    for (const topic of ["connect-offsets", "connect-configs", "connect-status"]) {
      assert.equal(await cleanupPolicyOf(broker.bootstrap, topic), "compact", topic);
    }
    await configure(CONNECT_RECORDS);
    await worker.waitForLine(/counting-source: starting at position 0 of 300/, START_TIMEOUT_MS);
    await recordsReach(CONNECT_RECORDS, worker);
    await worker.stop();

    // The restarted worker reads its config, offsets and status back from the compacted topics
    // (and checks their cleanup.policy): the task resumes at the committed position.
    worker = await startWorker();
    await worker.waitForLine(
      new RegExp(`counting-source: starting at position ${CONNECT_RECORDS} of ${CONNECT_RECORDS}`),
      START_TIMEOUT_MS,
    );
    await configure(2 * CONNECT_RECORDS);
    await worker.waitForLine(
      new RegExp(
        `counting-source: starting at position ${CONNECT_RECORDS} of ${2 * CONNECT_RECORDS}`,
      ),
      START_TIMEOUT_MS,
    );
    await recordsReach(2 * CONNECT_RECORDS, worker);
    const records = await readTopic(broker.bootstrap, "counted");
    const values = records.map((r) => dec.decode(r.value!));
    assert.deepEqual(
      values,
      Array.from({ length: 2 * CONNECT_RECORDS }, (_, i) => `record-${i}`),
      "every position once, in order: nothing rewritten after the restart",
    );
    assert.deepEqual(dec.decode(records[CONNECT_RECORDS].key!), `key-${CONNECT_RECORDS}`);
    await compactionRan(broker, false);
  } finally {
    await worker?.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

// ---- Kafka Streams -----------------------------------------------------------------------------

const WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"];

/** `lines` lines of 1-5 words from a seeded generator, and how often each word occurs. */
function lines(seed: number, count: number): { lines: string[]; words: number } {
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state;
  };
  const out: string[] = [];
  let words = 0;
  for (let i = 0; i < count; i++) {
    const n = 1 + (next() % 5);
    out.push(Array.from({ length: n }, () => WORDS[next() % WORDS.length]).join(" "));
    words += n;
  }
  return { lines: out, words };
}

function countWords(all: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of all) for (const w of line.split(" ")) counts.set(w, (counts.get(w) ?? 0) + 1);
  return counts;
}

async function produceLines(bootstrap: string, topic: string, all: string[]): Promise<void> {
  const conn = await KafkaConnection.connect(bootstrap, "kafscale-e2e-producer");
  try {
    // Two partitions, alternating, so the repartition topic really moves words between tasks.
    for (const partition of [0, 1]) {
      const mine = all.filter((_, i) => i % 2 === partition);
      const res = await conn.send(API_SCHEMAS[0], 9, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 10_000,
        topicData: [{
          name: topic,
          partitionData: [{
            index: partition,
            records: encodeRecordBatch(
              mine.map((l) => ({ key: null, value: enc.encode(l), timestamp: Date.now() })),
            ),
          }],
        }],
      });
      assert.equal(res!.responses[0].partitionResponses[0].errorCode, ERROR_CODES.NONE);
    }
  } finally {
    conn.close();
  }
}

/** The latest count per word in the output topic (Long values, big-endian). */
async function latestCounts(bootstrap: string, topic: string): Promise<Map<string, number>> {
  const latest = new Map<string, number>();
  for (const r of await readTopic(bootstrap, topic)) {
    const view = new DataView(r.value!.buffer, r.value!.byteOffset, r.value!.byteLength);
    latest.set(dec.decode(r.key!), Number(view.getBigInt64(0)));
  }
  return latest;
}

async function streamsScenario(broker: BrokerProcess): Promise<void> {
  const stateDir = await Deno.makeTempDir({ prefix: "kafscale-streams-" });
  const app = "wordcount";
  using admin = await AdminClient.connect(broker.bootstrap);
  await admin.createTopic("lines", 2, {});
  await admin.createTopic("word-counts", 1, {});
  const run = () =>
    new JavaProcess("streams", "WordCount", [
      broker.bootstrap,
      app,
      stateDir,
      "lines",
      "word-counts",
    ]);
  let streams: JavaProcess | null = null;
  try {
    const first = lines(7, 200);
    await produceLines(broker.bootstrap, "lines", first.lines);
    streams = run();
    await streams.waitForLine(
      new RegExp(`^counted ${first.words}$`),
      START_TIMEOUT_MS + WORK_TIMEOUT_MS,
    );
    await streams.stop();
    assert.deepEqual(await latestCounts(broker.bootstrap, "word-counts"), countWords(first.lines));
    assert.equal(await cleanupPolicyOf(broker.bootstrap, `${app}-counts-changelog`), "compact");
    assert.equal(await cleanupPolicyOf(broker.bootstrap, `${app}-words-repartition`), "delete");

    // Wiped state: the store comes back from the changelog, then counting goes on exactly.
    await Deno.remove(stateDir, { recursive: true });
    await Deno.mkdir(stateDir);
    const second = lines(11, 100);
    await produceLines(broker.bootstrap, "lines", second.lines);
    streams = run();
    await streams.waitForLine(
      new RegExp(`^counted ${second.words}$`),
      START_TIMEOUT_MS + WORK_TIMEOUT_MS,
    );
    const restored = streams.stdout.filter((l) => l.startsWith("restored "));
    assert.ok(
      restored.length > 0,
      `the store was restored from its changelog:\n${streams.output()}`,
    );
    await streams.stop();
    assert.deepEqual(
      await latestCounts(broker.bootstrap, "word-counts"),
      countWords([...first.lines, ...second.lines]),
    );
    // The changelog had a count per word update: the compactor removed the superseded ones.
    await compactionRan(broker, true);
  } finally {
    await streams?.stop();
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
}
