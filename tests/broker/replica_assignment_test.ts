/**
 * Manual replica assignments in CreateTopics and CreatePartitions, by Kafka's
 * rules. Pins issue 18 bug 3: CreateTopics with an assignment answered
 * INVALID_REQUEST (librdkafka 0081 creates topics that way, then grows them
 * with CreatePartitions assignments).
 */
import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import type { KafkaConnection } from "../../lib/client/kafka_connection.ts";

const METADATA = API_SCHEMAS[3];
const CREATE_TOPICS = API_SCHEMAS[19];
const CREATE_PARTITIONS = API_SCHEMAS[37];

async function createTopic(
  conn: KafkaConnection,
  name: string,
  assignments: number[][],
  opts: { numPartitions?: number; replicationFactor?: number; validateOnly?: boolean } = {},
) {
  const res = await conn.send(CREATE_TOPICS, 7, {
    topics: [{
      name,
      numPartitions: opts.numPartitions ?? -1,
      replicationFactor: opts.replicationFactor ?? -1,
      assignments: assignments.map((brokerIds, partitionIndex) => ({ partitionIndex, brokerIds })),
      configs: [],
    }],
    timeoutMs: 10_000,
    validateOnly: opts.validateOnly ?? false,
  });
  return res!.topics[0];
}

async function partitionCount(conn: KafkaConnection, name: string): Promise<number> {
  const res = await conn.send(METADATA, 12, {
    topics: [{ name, topicId: undefined }],
    allowAutoTopicCreation: false,
    includeTopicAuthorizedOperations: false,
  });
  const t = res!.topics[0];
  assert.equal(t.errorCode, ERROR_CODES.NONE);
  return t.partitions.length;
}

Deno.test("CreateTopics accepts a manual replica assignment naming registered brokers (librdkafka 0081)", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const created = await createTopic(conn, "manual", [[0], [0], [0]]);
  assert.equal(created.errorCode, ERROR_CODES.NONE, created.errorMessage ?? "");
  assert.equal(created.numPartitions, 3);
  assert.equal(await partitionCount(conn, "manual"), 3);

  const checked = await createTopic(conn, "manual-validate", [[0]], { validateOnly: true });
  assert.equal(checked.errorCode, ERROR_CODES.NONE);
  assert.equal(checked.numPartitions, 1);

  // Grown the way librdkafka's 0081 does: one assignment per new partition.
  const grown = await conn.send(CREATE_PARTITIONS, 3, {
    topics: [{ name: "manual", count: 5, assignments: [{ brokerIds: [0] }, { brokerIds: [0] }] }],
    timeoutMs: 10_000,
    validateOnly: false,
  });
  assert.equal(grown!.results[0].errorCode, ERROR_CODES.NONE, grown!.results[0].errorMessage ?? "");
  assert.equal(await partitionCount(conn, "manual"), 5);
});

Deno.test("CreateTopics refuses assignments Kafka refuses", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const cases: [string, number[][], Record<string, number>, number][] = [
    ["unknown-broker", [[0], [7]], {}, ERROR_CODES.INVALID_REPLICA_ASSIGNMENT],
    ["empty-list", [[]], {}, ERROR_CODES.INVALID_REPLICA_ASSIGNMENT],
    ["twice", [[0, 0]], {}, ERROR_CODES.INVALID_REPLICA_ASSIGNMENT],
    ["with-count", [[0]], { numPartitions: 1 }, ERROR_CODES.INVALID_REQUEST],
    ["with-factor", [[0]], { replicationFactor: 1 }, ERROR_CODES.INVALID_REQUEST],
  ];
  for (const [name, assignments, opts, code] of cases) {
    const t = await createTopic(conn, name, assignments, opts);
    assert.equal(t.errorCode, code, name);
    assert.ok(t.errorMessage, name);
  }
  const gap = await conn.send(CREATE_TOPICS, 7, {
    topics: [{
      name: "gap",
      numPartitions: -1,
      replicationFactor: -1,
      assignments: [{ partitionIndex: 0, brokerIds: [0] }, { partitionIndex: 2, brokerIds: [0] }],
      configs: [],
    }],
    timeoutMs: 10_000,
    validateOnly: false,
  });
  assert.equal(gap!.topics[0].errorCode, ERROR_CODES.INVALID_REPLICA_ASSIGNMENT);
  const listed = await conn.send(METADATA, 12, {
    topics: null,
    allowAutoTopicCreation: false,
    includeTopicAuthorizedOperations: false,
  });
  assert.deepEqual(listed!.topics.map((t) => t.name), [], "nothing was created");
});
