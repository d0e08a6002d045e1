/**
 * DescribeTopicPartitions (75) v0: topics sorted by name (all when none is named), partitions
 * paged by `responsePartitionLimit` with `nextCursor`, unknown topics and a cursor outside the
 * request answered with Kafka's errors.
 */
import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import type { KafkaConnection } from "../../lib/client/kafka_connection.ts";

const CREATE_TOPICS = API_SCHEMAS[19];
const DESCRIBE = API_SCHEMAS[75];

async function create(conn: KafkaConnection, name: string, partitions: number) {
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

async function describe(
  conn: KafkaConnection,
  topics: string[],
  limit: number,
  cursor: { topicName: string; partitionIndex: number } | null = null,
) {
  const res = await conn.send(DESCRIBE, 0, {
    topics: topics.map((name) => ({ name })),
    responsePartitionLimit: limit,
    cursor,
  });
  return res!;
}

/** Pages through everything, returning "topic/partition" in answer order and the page count. */
async function pageAll(conn: KafkaConnection, topics: string[], limit: number) {
  const seen: string[] = [];
  let cursor = null;
  let pages = 0;
  for (; pages < 100; pages++) {
    const res = await describe(conn, topics, limit, cursor);
    for (const t of res.topics) {
      assert.equal(t.errorCode, E.NONE, t.name ?? "");
      for (const p of t.partitions) {
        assert.equal(p.errorCode, E.NONE);
        assert.equal(p.leaderId, 0);
        assert.deepEqual([p.replicaNodes, p.isrNodes, p.eligibleLeaderReplicas], [[0], [0], []]);
        seen.push(`${t.name}/${p.partitionIndex}`);
      }
    }
    cursor = res.nextCursor;
    if (cursor === null) break;
  }
  return { seen, pages: pages + 1 };
}

Deno.test("DescribeTopicPartitions: sorted topics, paged by the partition limit with a cursor", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await create(conn, "zeta", 3);
  await create(conn, "alpha", 4);
  await create(conn, "mid", 2);
  const expected = [
    ...[0, 1, 2, 3].map((p) => `alpha/${p}`),
    ...[0, 1].map((p) => `mid/${p}`),
    ...[0, 1, 2].map((p) => `zeta/${p}`),
  ];
  // All topics (none named), in one answer and in pages of 3 (a page boundary inside
  // "alpha", one at the end of "mid"), and of 1.
  assert.deepEqual(await pageAll(conn, [], 2000), { seen: expected, pages: 1 });
  assert.deepEqual(await pageAll(conn, [], 3), { seen: expected, pages: 3 });
  assert.deepEqual((await pageAll(conn, [], 1)).seen, expected);
  const first = await describe(conn, [], 3);
  assert.deepEqual(first.nextCursor, { topicName: "alpha", partitionIndex: 3 });
  // Named topics, out of order and repeated: sorted, once each.
  assert.deepEqual(
    (await pageAll(conn, ["zeta", "alpha", "zeta"], 5)).seen,
    [...expected.slice(0, 4), ...expected.slice(6)],
  );
});

Deno.test("DescribeTopicPartitions: unknown topics and a cursor outside the request", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await create(conn, "known", 1);
  const res = await describe(conn, ["nope", "known"], 10);
  assert.deepEqual(
    res.topics.map((t) => [t.name, t.errorCode, t.partitions.length]),
    [["known", E.NONE, 1], ["nope", E.UNKNOWN_TOPIC_OR_PARTITION, 0]],
  );
  assert.equal(res.nextCursor, null);
  const bad = await describe(conn, ["known"], 10, { topicName: "other", partitionIndex: 0 });
  assert.deepEqual(bad.topics.map((t) => [t.name, t.errorCode]), [["known", E.INVALID_REQUEST]]);
});
