/**
 * Every advertised version of the admin APIs (DeleteTopics, CreatePartitions,
 * DescribeConfigs, AlterConfigs, IncrementalAlterConfigs,
 * OffsetForLeaderEpoch, DescribeCluster) against an in-process broker over
 * loopback TCP, plus retention as consumers see it (ListOffsets, Fetch).
 */
import assert from "node:assert/strict";
import { startTestBroker, type TestBroker } from "../support/test_broker.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import type { OffsetForLeaderEpochResponse } from "../../lib/protocol/generated/offset_for_leader_epoch_response.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { ZERO_UUID } from "../../lib/protocol/primitives.ts";
import { decodeRecordBatches, encodeRecordBatch } from "../../lib/protocol/records.ts";
import { HANDLERS } from "../../lib/broker/handler_table.ts";
import { reportedTopicConfigs, TOPIC_CONFIGS } from "../../lib/broker/topic_config.ts";
import { TOPIC_CONFIG_INFO } from "../../lib/broker/describe_configs.ts";
import { partitionObjectPrefix } from "../../lib/log/segment_format.ts";
import type { KafkaConnection } from "../../lib/client/kafka_connection.ts";

const PRODUCE = API_SCHEMAS[0];
const FETCH = API_SCHEMAS[1];
const LIST_OFFSETS = API_SCHEMAS[2];
const METADATA = API_SCHEMAS[3];
const CREATE_TOPICS = API_SCHEMAS[19];
const DELETE_TOPICS = API_SCHEMAS[20];
const OFFSET_FOR_LEADER_EPOCH = API_SCHEMAS[23];
const DESCRIBE_CONFIGS = API_SCHEMAS[32];
const ALTER_CONFIGS = API_SCHEMAS[33];
const CREATE_PARTITIONS = API_SCHEMAS[37];
const INCREMENTAL_ALTER_CONFIGS = API_SCHEMAS[44];
const DESCRIBE_CLUSTER = API_SCHEMAS[60];
const DESCRIBE_LOG_DIRS = API_SCHEMAS[35];

const TOPIC = 2;
const BROKER = 4;
const enc = new TextEncoder();

function versions(apiKey: number): number[] {
  const h = HANDLERS.get(apiKey);
  assert.ok(h, `API ${apiKey} is served`);
  return Array.from({ length: h.maxVersion - h.minVersion + 1 }, (_, i) => h.minVersion + i);
}

async function createTopic(
  conn: KafkaConnection,
  name: string,
  partitions = 1,
  configs: Record<string, string> = {},
) {
  const res = await conn.send(CREATE_TOPICS, 7, {
    topics: [{
      name,
      numPartitions: partitions,
      replicationFactor: 1,
      assignments: [],
      configs: Object.entries(configs).map(([name, value]) => ({ name, value })),
    }],
    timeoutMs: 10_000,
  });
  const t = res!.topics[0];
  assert.equal(t.errorCode, ERROR_CODES.NONE, t.errorMessage ?? "");
  return t.topicId!;
}

async function produce(
  conn: KafkaConnection,
  topic: string,
  partition: number,
  values: string[],
  timestamp = Date.now(),
) {
  const records = encodeRecordBatch(
    values.map((v, i) => ({ key: null, value: enc.encode(v), timestamp: timestamp + i })),
  );
  const res = await conn.send(PRODUCE, 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  });
  const p = res!.responses[0].partitionResponses[0];
  assert.equal(p.errorCode, ERROR_CODES.NONE);
  return p.baseOffset;
}

async function listOffset(conn: KafkaConnection, topic: string, partition: number, ts: number) {
  const res = await conn.send(LIST_OFFSETS, 7, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: topic, partitions: [{ partitionIndex: partition, timestamp: ts }] }],
  });
  const p = res!.topics[0].partitions[0];
  return { errorCode: p.errorCode, offset: p.offset };
}

async function fetchFrom(conn: KafkaConnection, topic: string, partition: number, offset: number) {
  const res = await conn.send(FETCH, 11, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{
      topic,
      topicId: ZERO_UUID,
      partitions: [{
        partition,
        currentLeaderEpoch: -1,
        fetchOffset: offset,
        lastFetchedEpoch: -1,
        logStartOffset: -1,
        partitionMaxBytes: 1 << 20,
      }],
    }],
    forgottenTopicsData: [],
    rackId: "",
  });
  return res!.responses[0].partitions[0];
}

async function describeTopicConfigs(
  conn: KafkaConnection,
  name: string,
  version = 4,
): Promise<Map<string, string | null>> {
  const res = await conn.send(DESCRIBE_CONFIGS, version, {
    resources: [{ resourceType: TOPIC, resourceName: name, configurationKeys: null }],
    includeSynonyms: false,
    includeDocumentation: false,
  });
  const r = res!.results[0];
  assert.equal(r.errorCode, ERROR_CODES.NONE, r.errorMessage ?? "");
  return new Map(r.configs.map((c) => [c.name, c.value]));
}

async function topicMetadataError(conn: KafkaConnection, name: string) {
  const res = await conn.send(METADATA, 9, {
    topics: [{ topicId: ZERO_UUID, name }],
    allowAutoTopicCreation: false,
    includeTopicAuthorizedOperations: false,
  });
  return res!.topics[0].errorCode;
}

async function objectsOf(b: TestBroker, topic: string, partition: number) {
  return await b.objectStore.list(partitionObjectPrefix("default", topic, partition));
}

/** Seals what the partition has in the write-ahead stream (what the seal pass does when due). */
async function sealPartition(b: TestBroker, topic: string, partition: number): Promise<void> {
  const log = await b.node.broker.logs.partition(topic, partition);
  while (log.unsealedBytes > 0) await log.seal({ segmentBytes: 1 << 30 });
}

// ---- DeleteTopics -------------------------------------------------------------

Deno.test("DeleteTopics: every version deletes data and offsets; a recreated topic starts empty", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const metadata = b.node.broker.metadata;
  for (const v of versions(20)) {
    const name = `del-${v}`;
    const oldId = await createTopic(conn, name, 2);
    await produce(conn, name, 0, ["a", "b"]);
    await sealPartition(b, name, 0);
    await produce(conn, name, 0, ["unsealed"]);
    await produce(conn, name, 1, ["c"]);
    await metadata.commitOffsets("g", [
      {
        topic: name,
        partition: 0,
        offset: 2,
        leaderEpoch: -1,
        metadata: null,
        commitTimestampMs: 1,
      },
    ]);
    assert.ok((await objectsOf(b, name, 0)).length > 0);
    const byId = v >= 6 && v % 2 === 0;
    const res = await conn.send(DELETE_TOPICS, v, {
      topicNames: [name],
      topics: [byId ? { name: null, topicId: oldId } : { name, topicId: ZERO_UUID }],
      timeoutMs: 10_000,
    });
    const r = res!.responses[0];
    assert.equal(r.errorCode, ERROR_CODES.NONE, `v${v}: ${r.errorMessage}`);
    assert.equal(r.name, name, `v${v}`);
    if (v >= 6) assert.equal(r.topicId, oldId, `v${v}`);
    assert.deepEqual(await objectsOf(b, name, 0), [], `v${v} segments removed`);
    assert.deepEqual(await objectsOf(b, name, 1), [], `v${v} segments removed`);
    assert.deepEqual(
      (await metadata.fetchOffsets("g")).filter((o) => o.topic === name),
      [],
      `v${v} committed offsets removed`,
    );
    assert.equal(await topicMetadataError(conn, name), ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION);
    const newId = await createTopic(conn, name, 1);
    assert.notEqual(newId, oldId, `v${v} new topic id`);
    assert.deepEqual(await listOffset(conn, name, 0, -1), { errorCode: 0, offset: 0 });
    assert.equal(await produce(conn, name, 0, ["fresh"]), 0, `v${v} offsets restart at 0`);
  }
});

Deno.test("DeleteTopics: unknown names and ids, both given, duplicates", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const id = await createTopic(conn, "victim");
  for (const v of versions(20)) {
    const res = await conn.send(DELETE_TOPICS, v, {
      topicNames: ["nope"],
      topics: [{ name: "nope", topicId: ZERO_UUID }],
      timeoutMs: 1_000,
    });
    assert.equal(res!.responses[0].errorCode, ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION, `v${v}`);
  }
  const v6 = await conn.send(DELETE_TOPICS, 6, {
    topics: [
      { name: null, topicId: "AAAAAAAAAAAAAAAAAAAAAQ" },
      { name: "victim", topicId: id },
      { name: null, topicId: id },
      { name: "victim", topicId: ZERO_UUID },
    ],
    timeoutMs: 1_000,
  });
  assert.deepEqual(v6!.responses.map((r) => r.errorCode), [
    ERROR_CODES.UNKNOWN_TOPIC_ID,
    ERROR_CODES.INVALID_REQUEST,
    ERROR_CODES.NONE,
    ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION,
  ]);
  assert.equal(v6!.responses[2].name, "victim");
});

Deno.test("DeleteTopics: a deletion left half-done is finished by deleting again", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "half");
  await produce(conn, "half", 0, ["x"]);
  await b.node.broker.metadata.setTopicState("half", "deleting");
  assert.equal(await topicMetadataError(conn, "half"), ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION);
  const res = await conn.send(DELETE_TOPICS, 5, { topicNames: ["half"], timeoutMs: 1_000 });
  assert.equal(res!.responses[0].errorCode, ERROR_CODES.NONE);
  assert.equal(await b.node.broker.metadata.getTopic("half"), null);
  assert.deepEqual(await objectsOf(b, "half", 0), []);
});

// ---- CreatePartitions -----------------------------------------------------------

Deno.test("CreatePartitions: every version grows topics, validate-only leaves them", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  for (const v of versions(37)) {
    const name = `grow-${v}`;
    await createTopic(conn, name, 1);
    const dry = await conn.send(CREATE_PARTITIONS, v, {
      topics: [{ name, count: 3, assignments: null }],
      timeoutMs: 1_000,
      validateOnly: true,
    });
    assert.equal(dry!.results[0].errorCode, ERROR_CODES.NONE, `v${v}`);
    assert.equal((await b.node.broker.topic(name))!.partitions, 1, `v${v} validate-only`);
    const res = await conn.send(CREATE_PARTITIONS, v, {
      topics: [{ name, count: 3, assignments: [{ brokerIds: [0] }, { brokerIds: [0] }] }],
      timeoutMs: 1_000,
      validateOnly: false,
    });
    assert.equal(
      res!.results[0].errorCode,
      ERROR_CODES.NONE,
      `v${v} ${res!.results[0].errorMessage}`,
    );
    const meta = await conn.send(METADATA, 9, {
      topics: [{ topicId: ZERO_UUID, name }],
      allowAutoTopicCreation: false,
      includeTopicAuthorizedOperations: false,
    });
    assert.equal(meta!.topics[0].partitions.length, 3, `v${v}`);
    assert.equal(await produce(conn, name, 2, ["new"]), 0, `v${v} the new partition takes data`);
  }
});

Deno.test("CreatePartitions: shrinking, unknown topics, bad assignments and duplicates fail", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "fixed", 2);
  const res = await conn.send(CREATE_PARTITIONS, 3, {
    topics: [
      { name: "fixed", count: 2, assignments: null },
      { name: "missing", count: 4, assignments: null },
      { name: "dup", count: 4, assignments: null },
      { name: "dup", count: 5, assignments: null },
    ],
    timeoutMs: 1_000,
    validateOnly: false,
  });
  assert.deepEqual(res!.results.map((r) => r.errorCode), [
    ERROR_CODES.INVALID_PARTITIONS,
    ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION,
    ERROR_CODES.INVALID_REQUEST,
    ERROR_CODES.INVALID_REQUEST,
  ]);
  assert.match(res!.results[0].errorMessage!, /has 2 partitions/);
  const bad = await conn.send(CREATE_PARTITIONS, 3, {
    topics: [{ name: "fixed", count: 3, assignments: [{ brokerIds: [7] }] }],
    timeoutMs: 1_000,
    validateOnly: false,
  });
  assert.equal(bad!.results[0].errorCode, ERROR_CODES.INVALID_REPLICA_ASSIGNMENT);
  const count = await conn.send(CREATE_PARTITIONS, 3, {
    topics: [{ name: "fixed", count: 5, assignments: [{ brokerIds: [0] }] }],
    timeoutMs: 1_000,
    validateOnly: false,
  });
  assert.equal(count!.results[0].errorCode, ERROR_CODES.INVALID_REPLICA_ASSIGNMENT);
  assert.equal((await b.node.broker.topic("fixed"))!.partitions, 2);
});

// ---- DescribeConfigs ------------------------------------------------------------

Deno.test("DescribeConfigs: every version describes every topic config with its source", async () => {
  await using b = await startTestBroker({ settings: { "segment-bytes": "2097152" } });
  const conn = await b.connect();
  await createTopic(conn, "described", 1, { "retention.ms": "1000" });
  for (const v of versions(32)) {
    const res = await conn.send(DESCRIBE_CONFIGS, v, {
      resources: [{ resourceType: TOPIC, resourceName: "described", configurationKeys: null }],
      includeSynonyms: true,
      includeDocumentation: true,
    });
    const r = res!.results[0];
    assert.equal(r.errorCode, ERROR_CODES.NONE, `v${v}`);
    assert.deepEqual(
      r.configs.map((c) => c.name),
      reportedTopicConfigs({}).map((c) => c.name),
      `v${v}: every Kafka 4.x key, no Kafka 3.x key that is not set`,
    );
    const byName = new Map(r.configs.map((c) => [c.name, c]));
    const retention = byName.get("retention.ms")!;
    const segment = byName.get("segment.bytes")!;
    assert.equal(retention.value, "1000");
    assert.equal(segment.value, "2097152", `v${v} broker default`);
    assert.equal(byName.get("cleanup.policy")!.value, "delete");
    for (const c of r.configs) assert.equal(c.readOnly, false, `v${v} ${c.name}`);
    if (v === 0) {
      assert.equal(retention.isDefault, false);
      assert.equal(segment.isDefault, true);
    } else {
      assert.equal(retention.configSource, 1, `v${v} DYNAMIC_TOPIC_CONFIG`);
      assert.equal(segment.configSource, 5, `v${v} DEFAULT_CONFIG`);
      assert.deepEqual(retention.synonyms!.map((s) => [s.name, s.value, s.source]), [
        ["retention.ms", "1000", 1],
        ["log.retention.ms", "604800000", 5],
      ]);
      assert.deepEqual(segment.synonyms!.map((s) => s.name), ["log.segment.bytes"]);
    }
    if (v >= 3) {
      assert.equal(retention.configType, 5, "LONG");
      assert.equal(byName.get("cleanup.policy")!.configType, 7, "LIST");
      assert.match(retention.documentation!, /segment/);
    }
  }
  // Without includeSynonyms: none; a key filter narrows the entries.
  const narrow = await conn.send(DESCRIBE_CONFIGS, 4, {
    resources: [{
      resourceType: TOPIC,
      resourceName: "described",
      configurationKeys: ["retention.ms", "no.such.key"],
    }],
    includeSynonyms: false,
    includeDocumentation: false,
  });
  assert.deepEqual(narrow!.results[0].configs.map((c) => [c.name, c.synonyms, c.documentation]), [
    ["retention.ms", [], null],
  ]);
});

Deno.test("DescribeConfigs: broker resources, unknown topics and resource types", async () => {
  await using b = await startTestBroker({ settings: { "broker-id": "3" } });
  const conn = await b.connect();
  for (const v of versions(32)) {
    const res = await conn.send(DESCRIBE_CONFIGS, v, {
      resources: [
        { resourceType: BROKER, resourceName: "3", configurationKeys: null },
        { resourceType: TOPIC, resourceName: "ghost", configurationKeys: null },
        { resourceType: BROKER, resourceName: "9", configurationKeys: null },
        { resourceType: 8, resourceName: "3", configurationKeys: null },
        { resourceType: BROKER, resourceName: "", configurationKeys: null },
        { resourceType: TOPIC, resourceName: "bad name!", configurationKeys: null },
      ],
      includeSynonyms: v >= 1,
      includeDocumentation: false,
    });
    const [broker, ghost, other, logger, defaults, badName] = res!.results;
    assert.equal(broker.errorCode, ERROR_CODES.NONE, `v${v}`);
    const entries = new Map(broker.configs.map((c) => [c.name, c]));
    assert.equal(entries.get("node.id")!.value, "3");
    assert.equal(entries.get("log.retention.ms")!.value, "604800000");
    assert.equal(entries.get("message.max.bytes")!.readOnly, true);
    assert.ok(broker.configs.every((c) => c.readOnly), `v${v} broker configs are read-only`);
    if (v >= 1) assert.equal(entries.get("node.id")!.synonyms!.length, 1);
    assert.equal(ghost.errorCode, ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION, `v${v}`);
    assert.equal(other.errorCode, ERROR_CODES.INVALID_REQUEST, `v${v}`);
    assert.equal(logger.errorCode, ERROR_CODES.INVALID_REQUEST, `v${v}`);
    assert.equal(defaults.errorCode, ERROR_CODES.NONE, `v${v}`);
    assert.deepEqual(defaults.configs, [], `v${v}: no dynamic cluster defaults`);
    assert.equal(badName.errorCode, ERROR_CODES.INVALID_TOPIC_EXCEPTION, `v${v}`);
  }
});

Deno.test("DescribeConfigs: every whitelisted topic config has display facts", () => {
  for (const spec of TOPIC_CONFIGS) assert.ok(TOPIC_CONFIG_INFO[spec.name], spec.name);
});

// ---- AlterConfigs -----------------------------------------------------------------

Deno.test("AlterConfigs: every version replaces the overrides; other keys are refused by name", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  for (const v of versions(33)) {
    const name = `alter-${v}`;
    await createTopic(conn, name, 1, { "retention.ms": "1000", "segment.bytes": "1048576" });
    const res = await conn.send(ALTER_CONFIGS, v, {
      resources: [{
        resourceType: TOPIC,
        resourceName: name,
        configs: [{ name: "retention.bytes", value: "4096" }],
      }],
      validateOnly: false,
    });
    assert.equal(res!.responses[0].errorCode, ERROR_CODES.NONE, `v${v}`);
    assert.equal(res!.responses[0].resourceName, name);
    const configs = await describeTopicConfigs(conn, name);
    assert.equal(configs.get("retention.bytes"), "4096", `v${v}`);
    assert.equal(configs.get("retention.ms"), "604800000", `v${v}: left-out keys reset`);
    assert.deepEqual((await b.node.broker.topic(name))!.configs, { "retention.bytes": "4096" });

    const bad = await conn.send(ALTER_CONFIGS, v, {
      resources: [
        {
          resourceType: TOPIC,
          resourceName: name,
          configs: [{ name: "retention.ms", value: "5" }, {
            name: "no.such.config",
            value: "lz4",
          }],
        },
        {
          resourceType: TOPIC,
          resourceName: name + "-x",
          configs: [{ name: "retention.ms", value: "soon" }],
        },
        {
          resourceType: BROKER,
          resourceName: "0",
          configs: [{ name: "num.partitions", value: "3" }],
        },
        { resourceType: TOPIC, resourceName: "ghost", configs: [] },
      ],
      validateOnly: false,
    });
    const [unknownKey, badValue, brokerRes, ghost] = bad!.responses;
    assert.equal(unknownKey.errorCode, ERROR_CODES.INVALID_CONFIG, `v${v}`);
    assert.match(unknownKey.errorMessage!, /"no\.such\.config"/);
    assert.equal(badValue.errorCode, ERROR_CODES.INVALID_CONFIG, `v${v}`);
    assert.match(badValue.errorMessage!, /"retention\.ms"/);
    assert.equal(brokerRes.errorCode, ERROR_CODES.INVALID_CONFIG, `v${v}`);
    assert.match(brokerRes.errorMessage!, /read-only/);
    assert.equal(ghost.errorCode, ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION, `v${v}`);
    assert.equal((await describeTopicConfigs(conn, name)).get("retention.ms"), "604800000");

    const dry = await conn.send(ALTER_CONFIGS, v, {
      resources: [{ resourceType: TOPIC, resourceName: name, configs: [] }],
      validateOnly: true,
    });
    assert.equal(dry!.responses[0].errorCode, ERROR_CODES.NONE);
    assert.equal((await describeTopicConfigs(conn, name)).get("retention.bytes"), "4096");
  }
});

// ---- IncrementalAlterConfigs -----------------------------------------------------

Deno.test("IncrementalAlterConfigs: every version sets, deletes, appends and subtracts", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const SET = 0, DELETE = 1, APPEND = 2, SUBTRACT = 3;
  for (const v of versions(44)) {
    const name = `incr-${v}`;
    await createTopic(conn, name, 1, { "retention.ms": "1000" });
    const alter = async (
      configs: { name: string; configOperation: number; value: string | null }[],
      validateOnly = false,
    ) => {
      const res = await conn.send(INCREMENTAL_ALTER_CONFIGS, v, {
        resources: [{ resourceType: TOPIC, resourceName: name, configs }],
        validateOnly,
      });
      return res!.responses[0];
    };
    let r = await alter([
      { name: "retention.bytes", configOperation: SET, value: "1024" },
      { name: "message.timestamp.type", configOperation: SET, value: "LogAppendTime" },
    ]);
    assert.equal(r.errorCode, ERROR_CODES.NONE, `v${v} ${r.errorMessage}`);
    let configs = await describeTopicConfigs(conn, name);
    assert.equal(configs.get("retention.ms"), "1000", `v${v}: untouched keys stay`);
    assert.equal(configs.get("retention.bytes"), "1024");
    assert.equal(configs.get("message.timestamp.type"), "LogAppendTime");

    r = await alter([{ name: "retention.ms", configOperation: DELETE, value: null }]);
    assert.equal(r.errorCode, ERROR_CODES.NONE);
    assert.equal((await describeTopicConfigs(conn, name)).get("retention.ms"), "604800000");

    r = await alter([{ name: "cleanup.policy", configOperation: APPEND, value: "delete" }]);
    assert.equal(r.errorCode, ERROR_CODES.NONE, `v${v} ${r.errorMessage}`);
    assert.equal((await describeTopicConfigs(conn, name)).get("cleanup.policy"), "delete");
    r = await alter([{ name: "cleanup.policy", configOperation: APPEND, value: "compact" }]);
    assert.equal(r.errorCode, ERROR_CODES.NONE, `v${v} ${r.errorMessage}`);
    assert.equal((await describeTopicConfigs(conn, name)).get("cleanup.policy"), "delete,compact");
    r = await alter([{ name: "cleanup.policy", configOperation: SUBTRACT, value: "delete" }]);
    assert.equal(r.errorCode, ERROR_CODES.NONE, `v${v} ${r.errorMessage}`);
    assert.equal((await describeTopicConfigs(conn, name)).get("cleanup.policy"), "compact");
    r = await alter([{ name: "cleanup.policy", configOperation: APPEND, value: "shred" }]);
    assert.equal(r.errorCode, ERROR_CODES.INVALID_CONFIG, `v${v}`);
    r = await alter([{ name: "retention.ms", configOperation: APPEND, value: "5" }]);
    assert.equal(r.errorCode, ERROR_CODES.INVALID_CONFIG, `v${v}`);
    assert.match(r.errorMessage!, /"retention\.ms"/);

    r = await alter([{ name: "log.retention.ms", configOperation: SET, value: "1" }]);
    assert.equal(r.errorCode, ERROR_CODES.INVALID_CONFIG, `v${v}: a broker key is no topic key`);
    assert.match(r.errorMessage!, /"log\.retention\.ms"/);
    r = await alter([{ name: "segment.bytes", configOperation: SET, value: "1" }]);
    assert.equal(r.errorCode, ERROR_CODES.INVALID_CONFIG, `v${v}`);
    r = await alter([
      { name: "retention.ms", configOperation: SET, value: "1" },
      { name: "retention.ms", configOperation: DELETE, value: null },
    ]);
    assert.equal(r.errorCode, ERROR_CODES.INVALID_REQUEST, `v${v}: duplicate keys`);
    r = await alter([{ name: "retention.ms", configOperation: 9, value: "1" }]);
    assert.equal(r.errorCode, ERROR_CODES.INVALID_REQUEST, `v${v}: unknown operation`);

    r = await alter([{ name: "retention.ms", configOperation: SET, value: "77" }], true);
    assert.equal(r.errorCode, ERROR_CODES.NONE);
    configs = await describeTopicConfigs(conn, name);
    assert.equal(configs.get("retention.ms"), "604800000", `v${v}: validate-only changes nothing`);
  }
});

// ---- OffsetForLeaderEpoch --------------------------------------------------------

Deno.test("OffsetForLeaderEpoch: every version answers from the partition's epoch history", async () => {
  const objectStore = new MemoryObjectStore();
  const metadataStore = new MemoryMetadataStore();
  {
    // Epoch 1 writes offsets 0-2; a restart (epoch 2) writes 3-4.
    await using first = await startTestBroker({ objectStore, metadataStore });
    const conn = await first.connect();
    await createTopic(conn, "epochs", 2);
    await produce(conn, "epochs", 0, ["a", "b", "c"]);
  }
  await using b = await startTestBroker({ objectStore, metadataStore });
  const conn = await b.connect();
  await produce(conn, "epochs", 0, ["d", "e"]);
  const current = (await b.node.broker.logs.partition("epochs", 0)).leaderEpoch;
  assert.equal(current, 2);
  for (const v of versions(23)) {
    const res: OffsetForLeaderEpochResponse | null = await conn.send(OFFSET_FOR_LEADER_EPOCH, v, {
      replicaId: -1,
      topics: [
        {
          topic: "epochs",
          partitions: [
            { partition: 0, currentLeaderEpoch: -1, leaderEpoch: 1 },
            { partition: 0, currentLeaderEpoch: current, leaderEpoch: 2 },
            { partition: 0, currentLeaderEpoch: -1, leaderEpoch: 5 },
            { partition: 9, currentLeaderEpoch: -1, leaderEpoch: 0 },
            { partition: 0, currentLeaderEpoch: current + 1, leaderEpoch: 2 },
            { partition: 0, currentLeaderEpoch: current - 1, leaderEpoch: 2 },
          ],
        },
        { topic: "ghost", partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 0 }] },
      ],
    });
    const [known, ghost]: OffsetForLeaderEpochResponse["topics"] = res!.topics;
    const got: number[][] = known.partitions.map((p) => [
      p.errorCode,
      p.leaderEpoch ?? -1,
      p.endOffset,
    ]);
    assert.deepEqual(got.slice(0, 4), [
      // Epoch 1 ended where epoch 2 began; the current epoch ends at the high watermark.
      [0, v >= 1 ? 1 : -1, 3],
      [0, v >= 1 ? 2 : -1, 5],
      // An epoch newer than any is unknown.
      [0, -1, -1],
      [ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION, -1, -1],
    ], `v${v}`);
    // currentLeaderEpoch exists from v2: newer than the owner's is unknown, older is fenced.
    assert.deepEqual(
      known.partitions.slice(4).map((p) => p.errorCode),
      v >= 2
        ? [ERROR_CODES.UNKNOWN_LEADER_EPOCH, ERROR_CODES.FENCED_LEADER_EPOCH]
        : [ERROR_CODES.NONE, ERROR_CODES.NONE],
      `v${v}`,
    );
    assert.equal(ghost.partitions[0].errorCode, ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION);
  }
  // Batches carry the epoch they were appended in, whatever the producer wrote there.
  const fetched = await conn.send(API_SCHEMAS[1], 12, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{
      topic: "epochs",
      partitions: [{
        partition: 0,
        currentLeaderEpoch: current,
        fetchOffset: 0,
        lastFetchedEpoch: -1,
        logStartOffset: -1,
        partitionMaxBytes: 1 << 20,
      }],
    }],
    forgottenTopicsData: [],
    rackId: "",
  });
  const records = fetched!.responses[0].partitions[0].records!;
  const epochsOfBatches: number[] = [];
  for (let pos = 0; pos < records.length;) {
    const view = new DataView(records.buffer, records.byteOffset + pos);
    epochsOfBatches.push(view.getInt32(12));
    pos += 12 + view.getInt32(8);
  }
  assert.deepEqual(epochsOfBatches, [1, 2]);
  // Metadata and ListOffsets report the owner's epoch, and the epoch of each offset.
  const md = await conn.send(API_SCHEMAS[3], 12, {
    topics: [{ name: "epochs", topicId: ZERO_UUID }],
    allowAutoTopicCreation: false,
    includeTopicAuthorizedOperations: false,
  });
  assert.equal(md!.topics[0].partitions.find((p) => p.partitionIndex === 0)!.leaderEpoch, 2);
  const lo = await conn.send(API_SCHEMAS[2], 7, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{
      name: "epochs",
      partitions: [
        { partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -2 },
        { partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1 },
        { partitionIndex: 0, currentLeaderEpoch: 1, timestamp: -1 },
      ],
    }],
  });
  assert.deepEqual(
    lo!.topics[0].partitions.map((p) => [p.errorCode, p.offset, p.leaderEpoch]),
    [[0, 0, 1], [0, 5, 2], [ERROR_CODES.FENCED_LEADER_EPOCH, -1, -1]],
  );
});

// ---- DescribeCluster ---------------------------------------------------------------

Deno.test("DescribeCluster: every version describes this broker", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  for (const v of versions(60)) {
    const res = await conn.send(DESCRIBE_CLUSTER, v, {
      includeClusterAuthorizedOperations: false,
      endpointType: 1,
    });
    assert.equal(res!.errorCode, ERROR_CODES.NONE, `v${v}`);
    assert.equal(res!.clusterId, b.node.broker.clusterId);
    assert.equal(res!.controllerId, 0);
    assert.deepEqual(res!.brokers.map((x) => [x.brokerId, x.host, x.port]), [
      [0, "127.0.0.1", b.node.kafkaAddress.port],
    ]);
  }
  const controllers = await conn.send(DESCRIBE_CLUSTER, 1, {
    includeClusterAuthorizedOperations: false,
    endpointType: 2,
  });
  assert.equal(controllers!.errorCode, ERROR_CODES.UNSUPPORTED_ENDPOINT_TYPE);
});

// ---- Retention, as clients see it ----------------------------------------------------

Deno.test("Retention: consumers see the new log start offset in ListOffsets and Fetch", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "aging", 1);
  const hour = 3_600_000;
  const old = Date.now() - 3 * hour;
  await produce(conn, "aging", 0, ["old-0", "old-1"], old);
  await sealPartition(b, "aging", 0);
  await produce(conn, "aging", 0, ["new-2"], Date.now());
  await sealPartition(b, "aging", 0);
  assert.deepEqual(await listOffset(conn, "aging", 0, -2), { errorCode: 0, offset: 0 });
  const before = await b.node.retention.runOnce();
  assert.equal(before.segmentsDeleted, 0, "the default retention (7 days) keeps everything");

  const res = await conn.send(INCREMENTAL_ALTER_CONFIGS, 1, {
    resources: [{
      resourceType: TOPIC,
      resourceName: "aging",
      configs: [{ name: "retention.ms", configOperation: 0, value: String(hour) }],
    }],
    validateOnly: false,
  });
  assert.equal(res!.responses[0].errorCode, ERROR_CODES.NONE);
  const stats = await b.node.retention.runOnce();
  assert.equal(stats.segmentsDeleted, 1);
  assert.deepEqual(await listOffset(conn, "aging", 0, -2), { errorCode: 0, offset: 2 });
  assert.deepEqual(await listOffset(conn, "aging", 0, -1), { errorCode: 0, offset: 3 });
  const gone = await fetchFrom(conn, "aging", 0, 0);
  assert.equal(gone.errorCode, ERROR_CODES.OFFSET_OUT_OF_RANGE);
  assert.equal(gone.logStartOffset, 2);
  const kept = await fetchFrom(conn, "aging", 0, 2);
  assert.equal(kept.errorCode, ERROR_CODES.NONE);
  assert.equal(kept.logStartOffset, 2);
  const records = decodeRecordBatches(kept.records!).records;
  assert.deepEqual(records.map((r) => r.offset), [2]);
  // retention.bytes 0 removes the rest; the partition is empty, offsets continue.
  await conn.send(INCREMENTAL_ALTER_CONFIGS, 1, {
    resources: [{
      resourceType: TOPIC,
      resourceName: "aging",
      configs: [{ name: "retention.bytes", configOperation: 0, value: "0" }],
    }],
    validateOnly: false,
  });
  await b.node.retention.runOnce();
  assert.deepEqual(await listOffset(conn, "aging", 0, -2), { errorCode: 0, offset: 3 });
  assert.deepEqual(await objectsOf(b, "aging", 0), []);
  assert.equal(await produce(conn, "aging", 0, ["later"]), 3);
});

// ---- DescribeLogDirs -------------------------------------------------------------------

Deno.test("DescribeLogDirs: every version reports sealed and write-ahead bytes of owned partitions", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "dirs", 2);
  await produce(conn, "dirs", 0, ["a", "b"]);
  await sealPartition(b, "dirs", 0);
  await produce(conn, "dirs", 0, ["c"]);
  await produce(conn, "dirs", 1, ["d"]);
  const log0 = await b.node.broker.logs.partition("dirs", 0);
  const log1 = await b.node.broker.logs.partition("dirs", 1);
  assert.ok(log0.sealedBytes > 0 && log0.unsealedBytes > 0 && log1.unsealedBytes > 0);
  for (const v of versions(35)) {
    const all = await conn.send(DESCRIBE_LOG_DIRS, v, { topics: null });
    assert.equal(all!.errorCode ?? 0, ERROR_CODES.NONE, `v${v}`);
    const sizes = (dir: string) =>
      Object.fromEntries(
        all!.results.find((r) => r.logDir === dir)!.topics
          .filter((t) => t.name === "dirs")
          .flatMap((t) => t.partitions.map((p) => [p.partitionIndex, p.partitionSize])),
      );
    assert.deepEqual(sizes("sealed"), { 0: log0.sealedBytes, 1: 0 }, `v${v}`);
    assert.deepEqual(
      sizes("write-ahead"),
      { 0: log0.unsealedBytes, 1: log1.unsealedBytes },
      `v${v}`,
    );
    if (v >= 4) assert.equal(all!.results[0].totalBytes, -1);
    const one = await conn.send(DESCRIBE_LOG_DIRS, v, {
      topics: [{ topic: "dirs", partitions: [1] }],
    });
    assert.deepEqual(
      one!.results.map((r) => r.topics.flatMap((t) => t.partitions.map((p) => p.partitionIndex))),
      [[1], [1]],
      `v${v}: only what was asked`,
    );
  }
});
