/**
 * OffsetDelete through a real client: Apache Kafka's
 * `kafka-consumer-groups.sh --delete-offsets` (ConsumerGroupCommand, from the
 * Maven jars that scripts/setup_compat.sh fetches, as kafka_tools_test.ts)
 * against a live `kafscale serve`. Pins issue 18 bug 5: the API was not served.
 * An Empty group loses the offsets; a group with a member subscribed to the
 * topic keeps them and the tool reports the partition error.
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import { REPO_ROOT, requireFile, runProgram } from "./client_runner.ts";
import { joinAsConsumer } from "../cli/cli_support.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";

const KAFKA_VERSION = Deno.env.get("KAFKA_REF_VERSION") ?? "4.1.0";
const CLASSPATH = `${REPO_ROOT}.tools/kafka-ref/libs-${KAFKA_VERSION}/*:` +
  `${REPO_ROOT}.tools/kafka-ref/tools-${KAFKA_VERSION}/*`;
const GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
const JAVA = ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"];
const TOOL_TIMEOUT_MS = 60_000;

async function commit(conn: KafkaConnection, group: string, topic: string, partitions: number[]) {
  const res = await conn.send(API_SCHEMAS[8], 2, {
    groupId: group,
    generationIdOrMemberEpoch: -1,
    memberId: "",
    retentionTimeMs: -1,
    topics: [{
      name: topic,
      partitions: partitions.map((partitionIndex) => ({
        partitionIndex,
        committedOffset: 1,
        committedMetadata: "",
      })),
    }],
  });
  for (const p of res!.topics[0].partitions) assert.equal(p.errorCode, ERROR_CODES.NONE);
}

async function committedPartitions(conn: KafkaConnection, group: string): Promise<number[]> {
  const res = await conn.send(API_SCHEMAS[9], 5, { groupId: group, topics: null });
  return (res!.topics ?? []).flatMap((t) =>
    t.partitions.filter((p) => p.committedOffset >= 0).map((p) => p.partitionIndex)
  ).sort();
}

Deno.test("kafka-consumer-groups --delete-offsets against kafscale (OffsetDelete)", async () => {
  await requireFile(
    `${REPO_ROOT}.tools/kafka-ref/tools-${KAFKA_VERSION}/kafka-tools-${KAFKA_VERSION}.jar`,
  );
  await using broker = await startBroker();
  const conn = await KafkaConnection.connect(broker.bootstrap, "offset-delete-test");
  try {
    const created = await conn.send(API_SCHEMAS[19], 7, {
      topics: [{
        name: "od",
        numPartitions: 2,
        replicationFactor: 1,
        assignments: [],
        configs: [],
      }],
      timeoutMs: 10_000,
    });
    assert.equal(created!.topics[0].errorCode, ERROR_CODES.NONE);
    const deleteOffsets = async (group: string) => {
      const r = await runProgram([
        ...JAVA,
        "-cp",
        CLASSPATH,
        GROUP_COMMAND,
        "--bootstrap-server",
        broker.bootstrap,
        "--delete-offsets",
        "--group",
        group,
        "--topic",
        "od",
      ], { timeoutMs: TOOL_TIMEOUT_MS });
      assert.equal(r.timedOut, false, "kafka-consumer-groups --delete-offsets timed out");
      return r;
    };

    await commit(conn, "idle", "od", [0, 1]);
    const idle = await deleteOffsets("idle");
    assert.equal(idle.code, 0, `${idle.stdout}\n${idle.stderr}`);
    assert.match(idle.stdout, /od\s+0\s+Successful/);
    assert.match(idle.stdout, /od\s+1\s+Successful/);
    assert.deepEqual(await committedPartitions(conn, "idle"), []);

    await commit(conn, "busy", "od", [0]);
    const member = await joinAsConsumer(broker.bootstrap, "busy", "od", [0, 1]);
    try {
      const busy = await deleteOffsets("busy");
      assert.match(busy.stdout + busy.stderr, /od\s+0\s+Error: \S*GroupSubscribedToTopicException/);
      assert.deepEqual(await committedPartitions(conn, "busy"), [0]);
    } finally {
      await member.leave();
    }
  } finally {
    conn.close();
    await conn.closedByPeer();
  }
});
