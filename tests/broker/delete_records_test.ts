/**
 * DeleteRecords (21), versions 0-2, by Kafka's rules: the log start offset moves up through the
 * committed path, reads below it are out of range, -1 means the high watermark, and bad offsets,
 * unknown partitions and compacted topics get Kafka's errors. `kafscale topics trim` sends it.
 */
import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { HANDLERS } from "../../lib/broker/handler_table.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import type { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { runTopics } from "../../lib/cli/topics.ts";

const PRODUCE = API_SCHEMAS[0];
const FETCH = API_SCHEMAS[1];
const LIST_OFFSETS = API_SCHEMAS[2];
const API_VERSIONS = API_SCHEMAS[18];
const CREATE_TOPICS = API_SCHEMAS[19];
const DELETE_RECORDS = API_SCHEMAS[21];

async function createTopic(conn: KafkaConnection, name: string, configs: [string, string][] = []) {
  const res = await conn.send(CREATE_TOPICS, 7, {
    topics: [{
      name,
      numPartitions: 2,
      replicationFactor: 1,
      assignments: [],
      configs: configs.map(([name, value]) => ({ name, value })),
    }],
    timeoutMs: 10_000,
  });
  assert.equal(res!.topics[0].errorCode, E.NONE);
}

/** Ten single-record batches into partition 0 of `topic`. */
async function produceTen(conn: KafkaConnection, topic: string) {
  for (let i = 0; i < 10; i++) {
    const res = await conn.send(PRODUCE, 9, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 10_000,
      topicData: [{
        name: topic,
        partitionData: [{
          index: 0,
          records: encodeRecordBatch([{
            key: new TextEncoder().encode(`k${i}`),
            value: new TextEncoder().encode(`v${i}`),
            timestamp: Date.now(),
          }]),
        }],
      }],
    });
    assert.equal(res!.responses[0].partitionResponses[0].errorCode, E.NONE);
  }
}

async function deleteRecords(
  conn: KafkaConnection,
  version: number,
  topic: string,
  partitions: [number, number][],
) {
  const res = await conn.send(DELETE_RECORDS, version, {
    topics: [{
      name: topic,
      partitions: partitions.map(([partitionIndex, offset]) => ({ partitionIndex, offset })),
    }],
    timeoutMs: 10_000,
  });
  return res!.topics[0].partitions.map((p) => [p.partitionIndex, p.errorCode, p.lowWatermark]);
}

async function earliest(conn: KafkaConnection, topic: string): Promise<number> {
  const res = await conn.send(LIST_OFFSETS, 1, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{
      name: topic,
      partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -2, maxNumOffsets: 1 }],
    }],
    timeoutMs: 10_000,
  });
  return res!.topics[0].partitions[0].offset ?? -1;
}

async function fetchError(conn: KafkaConnection, topic: string, offset: number): Promise<number> {
  const res = await conn.send(FETCH, 4, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    topics: [{
      topic,
      partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 1 << 20 }],
    }],
  });
  return res!.responses[0].partitions[0].errorCode;
}

Deno.test("DeleteRecords: advertised at versions 0-2", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const h = HANDLERS.get(21)!;
  assert.deepEqual([h.name, h.minVersion, h.maxVersion], ["DeleteRecords", 0, 2]);
  const res = await conn.send(API_VERSIONS, 3, {
    clientSoftwareName: "t",
    clientSoftwareVersion: "1",
  });
  const key = res!.apiKeys.find((k) => k.apiKey === 21);
  assert.deepEqual([key?.minVersion, key?.maxVersion], [0, 2]);
});

for (const version of [0, 1, 2]) {
  Deno.test(`DeleteRecords v${version}: moves the log start offset; reads below it are out of range`, async () => {
    await using b = await startTestBroker();
    const conn = await b.connect();
    await createTopic(conn, "dr");
    await produceTen(conn, "dr");
    assert.deepEqual(await deleteRecords(conn, version, "dr", [[0, 4]]), [[0, E.NONE, 4]]);
    assert.equal(await earliest(conn, "dr"), 4);
    assert.equal(await fetchError(conn, "dr", 3), E.OFFSET_OUT_OF_RANGE);
    assert.equal(await fetchError(conn, "dr", 4), E.NONE);
    // An earlier offset changes nothing; -1 means the high watermark.
    assert.deepEqual(await deleteRecords(conn, version, "dr", [[0, 2]]), [[0, E.NONE, 4]]);
    assert.deepEqual(await deleteRecords(conn, version, "dr", [[0, -1], [1, -1]]), [
      [0, E.NONE, 10],
      [1, E.NONE, 0],
    ]);
    assert.equal(await earliest(conn, "dr"), 10);
    // Beyond the high watermark, below -1, unknown partitions: Kafka's errors.
    assert.deepEqual(await deleteRecords(conn, version, "dr", [[0, 11], [0, -2], [7, 1]]), [
      [0, E.OFFSET_OUT_OF_RANGE, -1],
      [0, E.OFFSET_OUT_OF_RANGE, -1],
      [7, E.UNKNOWN_TOPIC_OR_PARTITION, -1],
    ]);
    assert.deepEqual(await deleteRecords(conn, version, "nope", [[0, 1]]), [
      [0, E.UNKNOWN_TOPIC_OR_PARTITION, -1],
    ]);
  });
}

Deno.test("DeleteRecords: a compacted topic answers POLICY_VIOLATION; compact,delete is allowed", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "only-compact", [["cleanup.policy", "compact"]]);
  await createTopic(conn, "both", [["cleanup.policy", "compact,delete"]]);
  await produceTen(conn, "only-compact");
  await produceTen(conn, "both");
  assert.deepEqual(await deleteRecords(conn, 2, "only-compact", [[0, 3]]), [
    [0, E.POLICY_VIOLATION, -1],
  ]);
  assert.equal(await earliest(conn, "only-compact"), 0);
  assert.deepEqual(await deleteRecords(conn, 2, "both", [[0, 3]]), [[0, E.NONE, 3]]);
});

Deno.test("DeleteRecords: concurrent requests (and retention) merge into one advance", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const other = await b.connect();
  await createTopic(conn, "dr");
  await produceTen(conn, "dr");
  const [a, c] = await Promise.all([
    deleteRecords(conn, 2, "dr", [[0, 3]]),
    deleteRecords(other, 2, "dr", [[0, 6]]),
  ]);
  assert.equal(a[0][1], E.NONE);
  assert.equal(c[0][1], E.NONE);
  assert.equal(await earliest(conn, "dr"), 6);
});

Deno.test("kafscale topics trim: deletes records before an offset, or up to the end", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "trimmed");
  await produceTen(conn, "trimmed");
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdout: (s: string) => out.push(s), stderr: (s: string) => err.push(s) };
  const run = (...args: string[]) => runTopics([...args, "--bootstrap-server", b.bootstrap], io);
  assert.equal(await run("trim", "trimmed:0", "--before", "7"), 0, err.join("\n"));
  assert.match(out.join("\n"), /Partition 0 of "trimmed" now starts at offset 7/);
  assert.equal(await earliest(conn, "trimmed"), 7);
  assert.equal(await run("trim", "trimmed:0", "--before", "end"), 0, err.join("\n"));
  assert.equal(await earliest(conn, "trimmed"), 10);
  // Usage errors and broker errors are one line each, with a non-zero exit.
  err.length = 0;
  assert.notEqual(await run("trim", "trimmed", "--before", "1"), 0);
  assert.notEqual(await run("trim", "trimmed:0"), 0);
  assert.notEqual(await run("trim", "trimmed:0", "--before", "x"), 0);
  assert.notEqual(await run("trim", "trimmed:0", "--before", "99"), 0);
  assert.equal(err.length, 4, err.join("\n"));
  assert.match(err[3], /OFFSET_OUT_OF_RANGE|out of range/i);
});
