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
import { type BrokerProcess, startBroker } from "./broker_process.ts";
import { type Backends, startBackends, startDistributedBroker } from "../support/distributed.ts";
import { AdminClient } from "../../lib/client/admin.ts";
import {
  countWords,
  dec,
  freePort,
  jarsInstalled,
  JavaProcess,
  latestCounts,
  lines,
  metric,
  produceLines,
  readTopic,
  START_TIMEOUT_MS,
  until,
  WORK_TIMEOUT_MS,
} from "./java_apps.ts";

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

async function cleanupPolicyOf(bootstrap: string, topic: string): Promise<string | null> {
  using admin = await AdminClient.connect(bootstrap);
  const configs = (await admin.describeTopicConfigs([topic])).get(topic) ?? [];
  return configs.find((c) => c.name === "cleanup.policy")?.value ?? null;
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
      // Offsets are committed while the task runs (default: every 60 s, and at a graceful stop
      // whose task shutdown is given only 5 s, which a loaded machine can exceed).
      "offset.flush.interval.ms=500",
    ].join("\n"),
  );
  const startWorker = async () => {
    const worker = new JavaProcess("connect", "org.apache.kafka.connect.cli.ConnectDistributed", [
      properties,
    ]);
    // GET /health (KIP-1017) answers 200 once the herder has created and read its internal
    // topics; GET /connectors answers from the config snapshot while that is still going on.
    await until("a healthy Connect worker", START_TIMEOUT_MS, async () => {
      if (worker.exited) throw new Error(`The worker exited:\n${worker.output()}`);
      try {
        const res = await fetch(`${rest}/health`);
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
    await offsetCommitted(broker, CONNECT_RECORDS);
    const first = worker;
    const stopped = await first.stop();
    // What the first worker said while stopping (its offset commit), for a failure below.
    const firstStop = () => `first worker's stop: exit ${stopped.code}\n${first.output()}`;

    // The restarted worker reads its config, offsets and status back from the compacted topics
    // (and checks their cleanup.policy): the task resumes at the committed position.
    worker = await startWorker();
    await worker.waitForLine(
      new RegExp(`counting-source: starting at position ${CONNECT_RECORDS} of ${CONNECT_RECORDS}`),
      START_TIMEOUT_MS,
      firstStop,
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

/** Waits until connect-offsets holds the counting task's source offset `position`. */
async function offsetCommitted(broker: BrokerProcess, position: number): Promise<void> {
  await until(`source offset ${position} in connect-offsets`, WORK_TIMEOUT_MS, async () => {
    const records = await readTopic(broker.bootstrap, "connect-offsets").catch(() => []);
    return records.some((r) => {
      if (r.value === null) return false;
      const value = JSON.parse(dec.decode(r.value)) as { position?: number };
      return value.position === position;
    });
  }, () => broker.logs().split("\n").slice(-40).join("\n"));
}

// ---- Kafka Streams -----------------------------------------------------------------------------

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
