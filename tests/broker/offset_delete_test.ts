/**
 * OffsetDelete (47) by Kafka's rules. Pins issue 18 bug 5: the API was not
 * served (librdkafka 0081 DeleteConsumerGroupOffsets, Kafka's
 * `kafka-consumer-groups.sh --delete-offsets`).
 */
import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { HANDLERS } from "../../lib/broker/handler_table.ts";
import { subscriptionTopics } from "../../lib/coordinator/subscribed_topics.ts";
import type { KafkaConnection } from "../../lib/client/kafka_connection.ts";

const OFFSET_COMMIT = API_SCHEMAS[8];
const OFFSET_FETCH = API_SCHEMAS[9];
const JOIN_GROUP = API_SCHEMAS[11];
const API_VERSIONS = API_SCHEMAS[18];
const CREATE_TOPICS = API_SCHEMAS[19];
const OFFSET_DELETE = API_SCHEMAS[47];

/** A ConsumerProtocolSubscription v0 naming `topics` (no user data). */
function subscription(topics: string[]): Uint8Array {
  const names = topics.map((t) => new TextEncoder().encode(t));
  const out = new Uint8Array(2 + 4 + names.reduce((n, b) => n + 2 + b.length, 0) + 4);
  const view = new DataView(out.buffer);
  view.setInt32(2, topics.length);
  let pos = 6;
  for (const b of names) {
    view.setInt16(pos, b.length);
    out.set(b, pos + 2);
    pos += 2 + b.length;
  }
  view.setInt32(pos, -1);
  return out;
}

async function createTopic(conn: KafkaConnection, name: string, partitions: number) {
  const res = await conn.send(CREATE_TOPICS, 7, {
    topics: [{
      name,
      numPartitions: partitions,
      replicationFactor: 1,
      assignments: [],
      configs: [],
    }],
    timeoutMs: 10_000,
  });
  assert.equal(res!.topics[0].errorCode, E.NONE);
}

/** A standalone commit (generation -1), as admin tools and assign()-only consumers do. */
async function commit(conn: KafkaConnection, groupId: string, offsets: [string, number][]) {
  const res = await conn.send(OFFSET_COMMIT, 2, {
    groupId,
    generationIdOrMemberEpoch: -1,
    memberId: "",
    retentionTimeMs: -1,
    topics: offsets.map(([name, partitionIndex]) => ({
      name,
      partitions: [{ partitionIndex, committedOffset: 5, committedMetadata: "" }],
    })),
  });
  for (const t of res!.topics) for (const p of t.partitions) assert.equal(p.errorCode, E.NONE);
}

async function committed(conn: KafkaConnection, groupId: string): Promise<string[]> {
  const res = await conn.send(OFFSET_FETCH, 5, { groupId, topics: null });
  return (res!.topics ?? []).flatMap((t) =>
    t.partitions.filter((p) => p.committedOffset >= 0).map((p) => `${t.name}/${p.partitionIndex}`)
  ).sort();
}

async function deleteOffsets(
  conn: KafkaConnection,
  groupId: string,
  partitions: [string, number][],
) {
  const byTopic = new Map<string, number[]>();
  for (const [t, p] of partitions) byTopic.set(t, [...(byTopic.get(t) ?? []), p]);
  const res = await conn.send(OFFSET_DELETE, 0, {
    groupId,
    topics: [...byTopic].map(([name, ps]) => ({
      name,
      partitions: ps.map((partitionIndex) => ({ partitionIndex })),
    })),
  });
  const codes: Record<string, number> = {};
  for (const t of res!.topics) {
    for (const p of t.partitions) codes[`${t.name}/${p.partitionIndex}`] = p.errorCode;
  }
  return { errorCode: res!.errorCode, codes };
}

Deno.test("OffsetDelete is served and advertised (v0)", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const h = HANDLERS.get(47)!;
  assert.deepEqual([h.name, h.minVersion, h.maxVersion], ["OffsetDelete", 0, 0]);
  const res = await conn.send(API_VERSIONS, 3, {
    clientSoftwareName: "t",
    clientSoftwareVersion: "1",
  });
  const key = res!.apiKeys.find((k) => k.apiKey === 47);
  assert.deepEqual([key?.minVersion, key?.maxVersion], [0, 0]);
});

Deno.test("OffsetDelete: an Empty group loses exactly the named offsets (librdkafka 0081)", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "t1", 2);
  await createTopic(conn, "t2", 1);
  await commit(conn, "empty", [["t1", 0], ["t1", 1], ["t2", 0]]);
  const res = await deleteOffsets(conn, "empty", [["t1", 0], ["t2", 0], ["t1", 9], ["nope", 0]]);
  assert.equal(res.errorCode, E.NONE);
  assert.deepEqual(res.codes, {
    "t1/0": E.NONE,
    "t2/0": E.NONE,
    "t1/9": E.UNKNOWN_TOPIC_OR_PARTITION,
    "nope/0": E.UNKNOWN_TOPIC_OR_PARTITION,
  });
  assert.deepEqual(await committed(conn, "empty"), ["t1/1"]);
  // Deleting what is not committed is no error, as Kafka.
  assert.deepEqual((await deleteOffsets(conn, "empty", [["t1", 0]])).codes, { "t1/0": E.NONE });
});

Deno.test("OffsetDelete: unknown groups get GROUP_ID_NOT_FOUND", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "t", 1);
  const res = await deleteOffsets(conn, "never-seen", [["t", 0]]);
  assert.equal(res.errorCode, E.GROUP_ID_NOT_FOUND);
  assert.deepEqual(res.codes, {});
});

Deno.test("OffsetDelete: a consumer group with members keeps the offsets of topics it subscribes to", async () => {
  await using b = await startTestBroker({ settings: { "group-initial-rebalance-delay-ms": "0" } });
  const conn = await b.connect();
  await createTopic(conn, "subscribed", 1);
  await createTopic(conn, "other", 1);
  await commit(conn, "live", [["subscribed", 0], ["other", 0]]);
  const joined = await conn.send(JOIN_GROUP, 3, {
    groupId: "live",
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 10_000,
    memberId: "",
    groupInstanceId: null,
    protocolType: "consumer",
    protocols: [{ name: "range", metadata: subscription(["subscribed"]) }],
    reason: null,
  });
  assert.equal(joined!.errorCode, E.NONE);
  const res = await deleteOffsets(conn, "live", [["subscribed", 0], ["other", 0]]);
  assert.equal(res.errorCode, E.NONE);
  assert.deepEqual(res.codes, { "subscribed/0": E.GROUP_SUBSCRIBED_TO_TOPIC, "other/0": E.NONE });
  assert.deepEqual(await committed(conn, "live"), ["subscribed/0"]);
});

Deno.test("OffsetDelete: a non-consumer group with members gets NON_EMPTY_GROUP", async () => {
  await using b = await startTestBroker({ settings: { "group-initial-rebalance-delay-ms": "0" } });
  const conn = await b.connect();
  await createTopic(conn, "t", 1);
  await commit(conn, "connect", [["t", 0]]);
  const joined = await conn.send(JOIN_GROUP, 3, {
    groupId: "connect",
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 10_000,
    memberId: "",
    groupInstanceId: null,
    protocolType: "connect",
    protocols: [{ name: "sessioned", metadata: new Uint8Array([1, 2, 3]) }],
    reason: null,
  });
  assert.equal(joined!.errorCode, E.NONE);
  const res = await deleteOffsets(conn, "connect", [["t", 0]]);
  assert.equal(res.errorCode, E.NON_EMPTY_GROUP);
  assert.deepEqual(await committed(conn, "connect"), ["t/0"]);
});

Deno.test("subscriptionTopics reads ConsumerProtocolSubscription and refuses garbage", () => {
  assert.deepEqual(subscriptionTopics(subscription(["a", "bb"])), ["a", "bb"]);
  assert.equal(subscriptionTopics(new Uint8Array([0, 1, 0, 0, 0, 9, 0, 1])), null);
  assert.equal(subscriptionTopics(new Uint8Array([0])), null);
});
