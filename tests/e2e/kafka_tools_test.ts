/**
 * Apache Kafka's own command-line tools, run from the Maven jars
 * (kafka-topics = org.apache.kafka.tools.TopicCommand, kafka-configs =
 * kafka.admin.ConfigCommand, kafka-consumer-groups =
 * org.apache.kafka.tools.consumer.group.ConsumerGroupCommand), against a
 * live `kafscale serve`: their results must match what the broker holds
 * and what `kafscale topics` / `kafscale groups` report.
 *
 * Jars: the reference broker's (scripts/reference_kafka.sh fetch, into
 * .tools/kafka-ref/libs-VERSION) plus org.apache.kafka:kafka-tools, which
 * this test fetches with Maven into .tools/kafka-ref/tools-VERSION once.
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import { type ProgramResult, REPO_ROOT, runProgram } from "./client_runner.ts";
import { joinAsConsumer } from "../cli/cli_support.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { freePortPair } from "../support/ports.ts";

const KAFKA_VERSION = Deno.env.get("KAFKA_REF_VERSION") ?? "4.1.0";
const LIBS = `${REPO_ROOT}.tools/kafka-ref/libs-${KAFKA_VERSION}`;
const TOOLS = `${REPO_ROOT}.tools/kafka-ref/tools-${KAFKA_VERSION}`;
const TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand";
const CONFIG_COMMAND = "kafka.admin.ConfigCommand";
const GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
/** One tool run: JVM start-up plus a few admin round trips. */
const TOOL_TIMEOUT_MS = 60_000;
/** Fetching the jars with Maven (first run only). */
const FETCH_TIMEOUT_MS = 600_000;
/** A short-lived client JVM: quick start-up matters more than peak speed. */
const JAVA = ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"];
/** The tools log warnings only, to stderr, so stdout is the tool's answer. */
const LOG4J2 = [
  "status = error",
  "appender.err.type = Console",
  "appender.err.name = STDERR",
  "appender.err.target = SYSTEM_ERR",
  "appender.err.layout.type = PatternLayout",
  "appender.err.layout.pattern = %p %m (%c)%n",
  "rootLogger.level = WARN",
  "rootLogger.appenderRef.err.ref = STDERR",
].join("\n");

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function mustSucceed(r: ProgramResult, what: string): void {
  if (r.code !== 0) {
    throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

/** The jars, fetched on first use; throws how to install java/mvn when they are missing. */
async function ensureJars(): Promise<string> {
  if (!(await exists(`${LIBS}/.complete`))) {
    mustSucceed(
      await runProgram(["bash", "scripts/reference_kafka.sh", "fetch"], {
        timeoutMs: FETCH_TIMEOUT_MS,
        env: { KAFKA_REF_VERSION: KAFKA_VERSION },
      }),
      `"scripts/reference_kafka.sh fetch" (needs java and mvn: apt-get install -y maven)`,
    );
  }
  const toolsJar = `${TOOLS}/kafka-tools-${KAFKA_VERSION}.jar`;
  if (!(await exists(toolsJar))) {
    mustSucceed(
      await runProgram([
        "mvn",
        "-q",
        "-B",
        "-Dstyle.color=never",
        "dependency:copy",
        `-Dartifact=org.apache.kafka:kafka-tools:${KAFKA_VERSION}:jar`,
        `-DoutputDirectory=${TOOLS}`,
      ], { timeoutMs: FETCH_TIMEOUT_MS }),
      `Fetching org.apache.kafka:kafka-tools:${KAFKA_VERSION} with Maven`,
    );
  }
  return `${LIBS}/*:${TOOLS}/*`;
}

Deno.test("Kafka's CLI tools against kafscale: topics, configs and consumer groups", async () => {
  const classpath = await ensureJars();
  const log4j = await Deno.makeTempFile({ prefix: "kafka-tools-log4j2-", suffix: ".properties" });
  await Deno.writeTextFile(log4j, LOG4J2);
  await using broker = await startBroker();
  const bs = ["--bootstrap-server", broker.bootstrap];
  const tool = async (main: string, ...args: string[]) => {
    const r = await runProgram(
      [...JAVA, `-Dlog4j2.configurationFile=${log4j}`, "-cp", classpath, main, ...args],
      { timeoutMs: TOOL_TIMEOUT_MS },
    );
    assert.equal(r.timedOut, false, `${main} ${args.join(" ")} timed out`);
    return r;
  };
  const ok = async (main: string, ...args: string[]) => {
    const r = await tool(main, ...args, ...bs);
    assert.equal(r.code, 0, `${main} ${args.join(" ")}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const kafscale = async (...args: string[]) => {
    const r = await runProgram(
      [Deno.execPath(), "run", "-A", "cli.ts", ...args, "-o", "json", ...bs],
      { timeoutMs: TOOL_TIMEOUT_MS },
    );
    assert.equal(r.code, 0, `kafscale ${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };

  try {
    // ---- kafka-topics: create, list, describe, alter, delete ----------------------------
    let out = await ok(
      TOPIC_COMMAND,
      "--create",
      "--topic",
      "jt",
      "--partitions",
      "2",
      "--config",
      "retention.ms=123456",
    );
    assert.match(out, /Created topic jt\./);
    const dup = await tool(TOPIC_COMMAND, "--create", "--topic", "jt", ...bs);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stdout + dup.stderr, /already exists/);
    const badConfig = await tool(
      TOPIC_COMMAND,
      "--create",
      "--topic",
      "jt-bad",
      "--config",
      "remote.storage.enable=true",
      ...bs,
    );
    assert.notEqual(badConfig.code, 0);
    assert.match(badConfig.stdout + badConfig.stderr, /"remote\.storage\.enable"/);

    assert.deepEqual((await ok(TOPIC_COMMAND, "--list")).trim().split("\n"), ["jt"]);
    out = await ok(TOPIC_COMMAND, "--describe", "--topic", "jt");
    const ours = (await kafscale("topics", "describe", "jt"))[0];
    assert.match(
      out,
      new RegExp(
        `Topic: jt\\s+TopicId: ${ours.topicId}\\s+PartitionCount: 2\\s+ReplicationFactor: 1\\s+` +
          `Configs: retention.ms=123456`,
      ),
    );
    for (const p of ours.partitions) {
      assert.match(
        out,
        new RegExp(`Partition: ${p.partition}\\s+Leader: ${p.leader}\\s+Replicas: ${p.leader}`),
      );
    }

    await ok(TOPIC_COMMAND, "--alter", "--topic", "jt", "--partitions", "4");
    assert.equal((await kafscale("topics", "describe", "jt"))[0].partitions.length, 4);
    out = await ok(TOPIC_COMMAND, "--describe", "--topic", "jt");
    assert.match(out, /PartitionCount: 4/);
    const shrink = await tool(
      TOPIC_COMMAND,
      "--alter",
      "--topic",
      "jt",
      "--partitions",
      "1",
      ...bs,
    );
    assert.notEqual(shrink.code, 0);

    // ---- kafka-configs: describe and alter -----------------------------------------------
    out = await ok(CONFIG_COMMAND, "--describe", "--entity-type", "topics", "--entity-name", "jt");
    assert.match(out, /Dynamic configs for topic jt are:\n\s+retention\.ms=123456 sensitive=false/);
    out = await ok(
      CONFIG_COMMAND,
      "--describe",
      "--all",
      "--entity-type",
      "topics",
      "--entity-name",
      "jt",
    );
    const all = new Map(
      [...out.matchAll(/^\s+([a-z0-9.]+)=(\S*) sensitive=false/gm)].map((m) => [m[1], m[2]]),
    );
    const ourConfigs = new Map(
      ours.configs.map((c: { name: string; value: string }) => [c.name, c.value]),
    );
    assert.deepEqual(all, ourConfigs, "every config and value match kafscale topics describe");

    await ok(
      CONFIG_COMMAND,
      "--alter",
      "--entity-type",
      "topics",
      "--entity-name",
      "jt",
      "--add-config",
      "retention.bytes=1048576,cleanup.policy=delete",
      "--delete-config",
      "retention.ms",
    );
    const altered = new Map(
      (await kafscale("topics", "describe", "jt"))[0].configs.map((
        c: { name: string; value: string; source: string },
      ) => [c.name, `${c.value} ${c.source}`]),
    );
    assert.equal(altered.get("retention.bytes"), "1048576 DYNAMIC_TOPIC_CONFIG");
    assert.equal(altered.get("cleanup.policy"), "delete DYNAMIC_TOPIC_CONFIG");
    assert.equal(altered.get("retention.ms"), "604800000 DEFAULT_CONFIG");
    const refused = await tool(
      CONFIG_COMMAND,
      "--alter",
      "--entity-type",
      "topics",
      "--entity-name",
      "jt",
      "--add-config",
      "remote.storage.enable=true",
      ...bs,
    );
    assert.notEqual(refused.code, 0);
    assert.match(
      refused.stdout + refused.stderr,
      /InvalidConfigurationException.*"remote\.storage\.enable"/,
    );
    // Compaction configs, as kafka-configs writes a list value (issue 11).
    await ok(
      CONFIG_COMMAND,
      "--alter",
      "--entity-type",
      "topics",
      "--entity-name",
      "jt",
      "--add-config",
      "cleanup.policy=[compact,delete],min.compaction.lag.ms=1000,min.cleanable.dirty.ratio=0.1",
    );
    out = await ok(CONFIG_COMMAND, "--describe", "--entity-type", "topics", "--entity-name", "jt");
    assert.match(out, /^\s+cleanup\.policy=compact,delete sensitive=false/m);
    assert.match(out, /^\s+min\.compaction\.lag\.ms=1000 sensitive=false/m);
    assert.match(out, /^\s+min\.cleanable\.dirty\.ratio=0\.1 sensitive=false/m);
    await ok(
      CONFIG_COMMAND,
      "--alter",
      "--entity-type",
      "topics",
      "--entity-name",
      "jt",
      "--delete-config",
      "cleanup.policy,min.compaction.lag.ms,min.cleanable.dirty.ratio",
    );
    out = await ok(
      CONFIG_COMMAND,
      "--describe",
      "--all",
      "--entity-type",
      "brokers",
      "--entity-name",
      "0",
    );
    assert.match(out, /log\.retention\.ms=604800000/);
    assert.match(out, /node\.id=0/);

    // ---- kafka-consumer-groups: list, describe, reset ------------------------------------
    {
      await using conn = await KafkaConnection.connect(broker.bootstrap);
      const records = encodeRecordBatch(
        Array.from({ length: 8 }, (_, i) => ({
          key: null,
          value: new TextEncoder().encode(`r${i}`),
          timestamp: Date.now(),
        })),
      );
      const res = await conn.send(API_SCHEMAS[0], 9, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 5_000,
        topicData: [{ name: "jt", partitionData: [{ index: 0, records }] }],
      });
      assert.equal(res!.responses[0].partitionResponses[0].errorCode, 0);
    }
    out = await ok(
      GROUP_COMMAND,
      "--reset-offsets",
      "--group",
      "tools-group",
      "--topic",
      "jt",
      "--to-offset",
      "3",
      "--execute",
    );
    assert.match(out, /tools-group\s+jt\s+0\s+3/);
    assert.match(out, /tools-group\s+jt\s+1\s+0/, "clamped to the log end, as Kafka does");
    let described = await kafscale("groups", "describe", "tools-group");
    assert.deepEqual(
      described.offsets.map((o: Record<string, number>) => [o.partition, o.currentOffset, o.lag]),
      [[0, 3, 5], [1, 0, 0], [2, 0, 0], [3, 0, 0]],
    );

    out = await ok(GROUP_COMMAND, "--list");
    assert.deepEqual(out.trim().split("\n"), ["tools-group"]);
    out = await ok(GROUP_COMMAND, "--list", "--state");
    assert.match(out, /tools-group\s+Empty/);
    out = await ok(GROUP_COMMAND, "--describe", "--group", "tools-group");
    for (const o of described.offsets) {
      assert.match(
        out,
        new RegExp(
          `tools-group\\s+jt\\s+${o.partition}\\s+${o.currentOffset}\\s+${o.logEndOffset}\\s+${o.lag}`,
        ),
      );
    }

    out = await ok(
      GROUP_COMMAND,
      "--reset-offsets",
      "--group",
      "tools-group",
      "--topic",
      "jt:0",
      "--to-earliest",
      "--dry-run",
    );
    assert.match(out, /tools-group\s+jt\s+0\s+0/);
    described = await kafscale("groups", "describe", "tools-group");
    assert.equal(described.offsets[0].currentOffset, 3, "a dry run commits nothing");
    await ok(
      GROUP_COMMAND,
      "--reset-offsets",
      "--group",
      "tools-group",
      "--topic",
      "jt:0",
      "--shift-by",
      "2",
      "--execute",
    );
    described = await kafscale("groups", "describe", "tools-group");
    assert.equal(described.offsets[0].currentOffset, 5);

    // An active member: describe shows it; reset is refused, as Kafka refuses it.
    await using member = await joinAsConsumer(broker.bootstrap, "tools-group", "jt", [0, 1]);
    out = await ok(GROUP_COMMAND, "--describe", "--group", "tools-group", "--members");
    assert.match(
      out,
      new RegExp(`tools-group\\s+${member.memberId}\\s+\\S+\\s+cli-test-member\\s+2`),
    );
    out = await ok(GROUP_COMMAND, "--describe", "--group", "tools-group", "--state");
    assert.match(out, /tools-group\s+.*\(0\)\s+range\s+Stable\s+1/);
    const busy = await tool(
      GROUP_COMMAND,
      "--reset-offsets",
      "--group",
      "tools-group",
      "--topic",
      "jt",
      "--to-earliest",
      "--execute",
      ...bs,
    );
    assert.match(busy.stdout + busy.stderr, /inactive, but the current state is Stable/);
    assert.equal((await kafscale("groups", "describe", "tools-group")).offsets[0].currentOffset, 5);
    await member.leave();

    out = await ok(GROUP_COMMAND, "--delete", "--group", "tools-group");
    assert.match(out, /Deletion of requested consumer groups \('tools-group'\) was successful/);
    assert.deepEqual(await kafscale("groups", "list"), []);

    // ---- delete the topic with kafka-topics ---------------------------------------------
    await ok(TOPIC_COMMAND, "--delete", "--topic", "jt");
    assert.deepEqual(await kafscale("topics", "list"), []);
    assert.equal((await ok(TOPIC_COMMAND, "--list")).trim(), "");
  } finally {
    await Deno.remove(log4j).catch(() => {});
  }
});

Deno.test("kafscale topics and groups against Apache Kafka itself", async () => {
  await ensureJars();
  const port = freePortPair();
  const dataDir = await Deno.makeTempDir({ prefix: "kafka-ref-" });
  const script = ["bash", "scripts/reference_kafka.sh"];
  const env = { KAFKA_REF_VERSION: KAFKA_VERSION, KAFKA_REF_HEAP: "512m" };
  try {
    mustSucceed(
      await runProgram([...script, "start", String(port), dataDir], {
        timeoutMs: 180_000,
        env,
      }),
      "Starting the reference Apache Kafka",
    );
    const bootstrap = `127.0.0.1:${port}`;
    const run = async (...args: string[]) =>
      await runProgram(
        [Deno.execPath(), "run", "-A", "cli.ts", ...args, "--bootstrap-server", bootstrap],
        { timeoutMs: TOOL_TIMEOUT_MS },
      );
    const json = async (...args: string[]) => {
      const r = await run(...args, "-o", "json");
      assert.equal(r.code, 0, `kafscale ${args.join(" ")}: ${r.stderr}`);
      return JSON.parse(r.stdout);
    };

    await json("topics", "create", "ref", "--partitions", "2", "--config", "retention.ms=100000");
    const dup = await run("topics", "create", "ref");
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /^Cannot create topic "ref": TOPIC_ALREADY_EXISTS/);
    assert.deepEqual((await json("topics", "list")).map((t: { name: string }) => t.name), ["ref"]);
    await json("topics", "alter", "ref", "--partitions", "3");
    await json(
      "topics",
      "alter",
      "ref",
      "--config",
      "retention.bytes=5000",
      "--config",
      "retention.ms=",
    );
    const bad = await run("topics", "alter", "ref", "--config", "foo.bar=1");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /INVALID_CONFIG.*foo\.bar/);
    {
      await using conn = await KafkaConnection.connect(bootstrap);
      const records = encodeRecordBatch(
        Array.from({ length: 5 }, (_, i) => ({
          key: null,
          value: new TextEncoder().encode(`r${i}`),
          timestamp: Date.now(),
        })),
      );
      const res = await conn.send(API_SCHEMAS[0], 9, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 10_000,
        topicData: [{ name: "ref", partitionData: [{ index: 0, records }] }],
      });
      assert.equal(res!.responses[0].partitionResponses[0].errorCode, 0);
    }
    const [described] = await json("topics", "describe", "ref");
    assert.equal(described.partitions.length, 3);
    assert.deepEqual(
      [described.partitions[0].earliestOffset, described.partitions[0].latestOffset],
      [0, 5],
    );
    const configs = new Map(
      described.configs.map((c: { name: string; value: string; source: string }) => [
        c.name,
        `${c.value} ${c.source}`,
      ]),
    );
    assert.equal(configs.get("retention.bytes"), "5000 DYNAMIC_TOPIC_CONFIG");
    assert.equal(configs.get("retention.ms"), "604800000 DEFAULT_CONFIG");

    const plan = await json(
      "groups",
      "reset-offsets",
      "ref-group",
      "--topic",
      "ref",
      "--to-offset",
      "3",
      "--execute",
    );
    assert.deepEqual(plan.offsets.map((o: { newOffset: number }) => o.newOffset), [3, 0, 0]);
    assert.deepEqual(await json("groups", "list", "--state", "Empty"), [
      { groupId: "ref-group", state: "Empty", protocolType: "" },
    ]);
    const group = await json("groups", "describe", "ref-group");
    assert.deepEqual(
      group.offsets.map((o: Record<string, number>) => [o.partition, o.currentOffset, o.lag]),
      [[0, 3, 2], [1, 0, 0], [2, 0, 0]],
    );
    await json("groups", "delete", "ref-group");
    const gone = await run("groups", "describe", "ref-group");
    assert.deepEqual([gone.code, gone.stderr.trim()], [1, 'Group "ref-group" does not exist']);
    await json("topics", "delete", "ref");
    const missing = await run("topics", "delete", "ref");
    assert.deepEqual([missing.code, missing.stderr.trim()], [1, 'Topic "ref" does not exist']);
  } finally {
    await runProgram([...script, "stop", String(port), dataDir], { timeoutMs: 60_000, env });
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
