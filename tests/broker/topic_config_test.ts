/**
 * Topic configs as Kafka 4.x defines them (lib/broker/topic_config.ts), the
 * tools that create compacted topics (Kafka Connect's internal topics,
 * Kafka Streams' changelogs), and Produce to a compacted topic refusing
 * records without a key (lib/broker/keyless_records.ts).
 *
 * The validation cases were checked against Kafka 4.4's own
 * `LogConfig.validate`: each accepted value is accepted there, each refused
 * one refused.
 */
import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { encodeRecordBatch, type ProducerRecord } from "../../lib/protocol/records.ts";
import { COMPRESSION, validateBatches } from "../../lib/protocol/record_batch.ts";
import {
  cleanupPolicy,
  reportedTopicConfigs,
  retentionLimits,
  TOPIC_CONFIGS,
  validateTopicConfigs,
} from "../../lib/broker/topic_config.ts";
import { keylessRecordsRefusal } from "../../lib/broker/keyless_records.ts";
import { keylessRecordIndexes } from "../../lib/protocol/record_keys.ts";
import type { KafkaConnection } from "../../lib/client/kafka_connection.ts";

const PRODUCE = API_SCHEMAS[0];
const CREATE_TOPICS = API_SCHEMAS[19];
const DESCRIBE_CONFIGS = API_SCHEMAS[32];
const INCREMENTAL_ALTER_CONFIGS = API_SCHEMAS[44];
const TOPIC = 2;
const enc = new TextEncoder();
const DEFAULTS = { messageMaxBytes: 1048588, segmentBytes: 1073741824 };

/** Every topic config of Kafka 4.4 (LogConfig.nonInternalConfigNames). */
const KAFKA_4_4_KEYS = [
  "segment.bytes",
  "segment.ms",
  "segment.jitter.ms",
  "segment.index.bytes",
  "flush.messages",
  "flush.ms",
  "retention.bytes",
  "retention.ms",
  "max.message.bytes",
  "max.decompressed.message.bytes",
  "index.interval.bytes",
  "delete.retention.ms",
  "min.compaction.lag.ms",
  "max.compaction.lag.ms",
  "file.delete.delay.ms",
  "min.cleanable.dirty.ratio",
  "cleanup.policy",
  "unclean.leader.election.enable",
  "min.insync.replicas",
  "compression.type",
  "compression.gzip.level",
  "compression.lz4.level",
  "compression.zstd.level",
  "preallocate",
  "message.timestamp.type",
  "message.timestamp.before.max.ms",
  "message.timestamp.after.max.ms",
  "leader.replication.throttled.replicas",
  "follower.replication.throttled.replicas",
  "remote.storage.enable",
  "local.retention.ms",
  "local.retention.bytes",
  "remote.log.copy.disable",
  "remote.copy.lag.ms",
  "remote.copy.lag.bytes",
  "remote.log.delete.on.disable",
  "errors.deadletterqueue.group.enable",
];

Deno.test("topic configs: every Kafka 4.4 key, in Kafka's order, with its default", () => {
  assert.deepEqual(reportedTopicConfigs({}).map((s) => s.name), KAFKA_4_4_KEYS);
  const defaults = Object.fromEntries(TOPIC_CONFIGS.map((s) => [s.name, s.defaultValue(DEFAULTS)]));
  assert.equal(defaults["segment.ms"], "604800000");
  assert.equal(defaults["delete.retention.ms"], "86400000");
  assert.equal(defaults["min.compaction.lag.ms"], "0");
  assert.equal(defaults["max.compaction.lag.ms"], "9223372036854775807");
  assert.equal(defaults["min.cleanable.dirty.ratio"], "0.5");
  assert.equal(defaults["compression.type"], "producer");
  assert.equal(defaults["message.timestamp.after.max.ms"], "3600000");
  assert.equal(defaults["cleanup.policy"], "delete");
  for (const spec of TOPIC_CONFIGS) {
    assert.equal(spec.validate(spec.defaultValue(DEFAULTS)), null, `default of ${spec.name}`);
  }
});

Deno.test("topic configs: Kafka 3.x keys are accepted and reported only when set", () => {
  assert.equal(validateTopicConfigs({ "message.timestamp.difference.max.ms": "1000" }), null);
  assert.equal(validateTopicConfigs({ "message.downconversion.enable": "false" }), null);
  const reported = reportedTopicConfigs({ "message.timestamp.difference.max.ms": "1000" });
  assert.ok(reported.some((s) => s.name === "message.timestamp.difference.max.ms"));
  assert.ok(!reported.some((s) => s.name === "message.downconversion.enable"));
});

Deno.test("topic configs: values Kafka 4.4 accepts and refuses", () => {
  const accepted: [string, string][] = [
    ["cleanup.policy", "compact"],
    ["cleanup.policy", "compact,delete"],
    ["cleanup.policy", "delete,compact"],
    ["cleanup.policy", "compact, delete"],
    ["cleanup.policy", ""],
    ["min.cleanable.dirty.ratio", "0.1e0"],
    ["min.cleanable.dirty.ratio", "1"],
    ["compression.type", "zstd"],
    ["preallocate", "TRUE"],
    ["retention.bytes", "-5"],
    ["retention.ms", "9223372036854775807"],
    ["retention.ms", "+5"],
    ["leader.replication.throttled.replicas", "*"],
    ["leader.replication.throttled.replicas", " 0:1 , 1:2"],
    ["compression.gzip.level", "-1"],
    ["compression.zstd.level", "-131072"],
    ["local.retention.ms", "-2"],
    ["segment.ms", "1"],
    ["errors.deadletterqueue.group.enable", "true"],
  ];
  for (const [k, v] of accepted) assert.equal(validateTopicConfigs({ [k]: v }), null, `${k}=${v}`);
  const refused: [string, string][] = [
    ["cleanup.policy", "Compact"],
    ["cleanup.policy", "compact,"],
    ["cleanup.policy", "shred"],
    ["min.cleanable.dirty.ratio", "1.5"],
    ["min.cleanable.dirty.ratio", "abc"],
    ["compression.type", "ZSTD"],
    ["segment.ms", "0"],
    ["preallocate", "yes"],
    ["retention.ms", "9223372036854775808"],
    ["retention.ms", "-2"],
    ["leader.replication.throttled.replicas", "x"],
    ["follower.replication.throttled.replicas", "*,0:1"],
    ["compression.gzip.level", "0"],
    ["max.compaction.lag.ms", "0"],
    ["message.timestamp.after.max.ms", "-1"],
    ["segment.index.bytes", "3"],
    ["remote.storage.enable", "true"],
    ["max.message.bytes", "2147483648"],
  ];
  for (const [k, v] of refused) {
    const problem = validateTopicConfigs({ [k]: v });
    assert.ok(problem?.includes(`"${k}"`), `${k}=${v}: ${problem}`);
  }
  assert.match(
    validateTopicConfigs({ "min.compaction.lag.ms": "5", "max.compaction.lag.ms": "1" })!,
    /"min\.compaction\.lag\.ms" \(5\) must not be greater than "max\.compaction\.lag\.ms" \(1\)/,
  );
  assert.equal(
    validateTopicConfigs({ "log.retention.ms": "1" }),
    'Unknown topic config "log.retention.ms"',
  );
});

Deno.test("topic configs: retention applies only when cleanup.policy contains delete", () => {
  const limited = { "retention.ms": "1000", "retention.bytes": "10" };
  assert.deepEqual(retentionLimits(limited, DEFAULTS), { retentionMs: 1000, retentionBytes: 10 });
  assert.deepEqual(
    retentionLimits({ ...limited, "cleanup.policy": "compact,delete" }, DEFAULTS),
    { retentionMs: 1000, retentionBytes: 10 },
  );
  assert.deepEqual(
    retentionLimits({ ...limited, "cleanup.policy": "compact" }, DEFAULTS),
    { retentionMs: -1, retentionBytes: -1 },
  );
  assert.deepEqual(
    retentionLimits({ ...limited, "cleanup.policy": "" }, DEFAULTS),
    { retentionMs: -1, retentionBytes: -1 },
  );
  assert.deepEqual(cleanupPolicy({}), { delete: true, compact: false });
  assert.deepEqual(cleanupPolicy({ "cleanup.policy": "delete, compact" }), {
    delete: true,
    compact: true,
  });
});

function record(key: string | null, value: string | null): ProducerRecord {
  return {
    key: key === null ? null : enc.encode(key),
    value: value === null ? null : enc.encode(value),
    timestamp: 1_700_000_000_000,
  };
}

function validated(bytes: Uint8Array) {
  const valid = validateBatches(bytes, { maxBatchBytes: 1 << 20 });
  assert.ok(valid.ok);
  return valid.batches;
}

Deno.test("keyless records: found by index; empty keys and tombstones are keyed", () => {
  const bytes = encodeRecordBatch([
    record("a", "1"),
    record(null, "2"),
    record("", "3"),
    record("b", null),
    record(null, null),
  ]);
  const [batch] = validated(bytes);
  assert.deepEqual(keylessRecordIndexes(bytes, batch.position + 61, batch.size, 5), [1, 4]);
  const compacted = { "cleanup.policy": "compact" };
  const refusal = keylessRecordsRefusal("t", compacted, 3, bytes, [batch]);
  assert.deepEqual(refusal!.recordErrors.map((e) => e.batchIndex), [1, 4]);
  assert.equal(
    refusal!.recordErrors[0].batchIndexErrorMessage,
    "Compacted topic cannot accept message without key in topic partition t-3.",
  );
  assert.match(refusal!.errorMessage, /rejected due to 2 record errors/);
  assert.equal(keylessRecordsRefusal("t", {}, 3, bytes, [batch]), null, "delete policy");
  assert.equal(
    keylessRecordsRefusal("t", compacted, 0, encodeRecordBatch([record("k", "v")]), [
      validated(encodeRecordBatch([record("k", "v")]))[0],
    ]),
    null,
  );
});

Deno.test("keyless records: compressed batches are inflated to be checked", () => {
  const bytes = encodeRecordBatch([record("a", "1"), record(null, "2")], { compression: "gzip" });
  const batches = validated(bytes);
  const compacted = { "cleanup.policy": "compact,delete" };
  const byAdapters = keylessRecordsRefusal("t", compacted, 0, bytes, batches);
  assert.deepEqual(byAdapters!.recordErrors.map((e) => e.batchIndex), [1], "codec adapters");
  const inflate = (codec: number, payload: Uint8Array) => {
    assert.equal(codec, COMPRESSION.gzip);
    return new Uint8Array(gunzipSync(payload));
  };
  const refusal = keylessRecordsRefusal("t", compacted, 0, bytes, batches, inflate);
  assert.deepEqual(refusal!.recordErrors.map((e) => e.batchIndex), [1]);
  const broken = () => {
    throw new Error("not gzip");
  };
  assert.equal(keylessRecordsRefusal("t", compacted, 0, bytes, batches, broken), null);
});

async function createTopic(
  conn: KafkaConnection,
  name: string,
  configs: Record<string, string>,
) {
  const res = await conn.send(CREATE_TOPICS, 7, {
    topics: [{
      name,
      numPartitions: 1,
      replicationFactor: -1,
      assignments: [],
      configs: Object.entries(configs).map(([name, value]) => ({ name, value })),
    }],
    timeoutMs: 10_000,
  });
  return res!.topics[0];
}

async function describe(conn: KafkaConnection, name: string) {
  const res = await conn.send(DESCRIBE_CONFIGS, 4, {
    resources: [{ resourceType: TOPIC, resourceName: name, configurationKeys: null }],
    includeSynonyms: true,
    includeDocumentation: true,
  });
  return new Map(res!.results[0].configs.map((c) => [c.name, c]));
}

Deno.test("CreateTopics: the topics Kafka Connect and Kafka Streams create are accepted and described", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  // Connect's offsets topic (TopicAdmin.defineTopic(...).compacted()) and a Streams changelog of
  // a windowed store (InternalTopicConfig), as their admin clients send them.
  const offsets = await createTopic(conn, "connect-offsets", { "cleanup.policy": "compact" });
  assert.equal(offsets.errorCode, ERROR_CODES.NONE, offsets.errorMessage ?? "");
  const created = new Map(offsets.configs!.map((c) => [c.name, c]));
  assert.equal(created.get("cleanup.policy")!.value, "compact");
  assert.equal(created.get("cleanup.policy")!.configSource, 1);
  assert.equal(created.get("segment.ms")!.value, "604800000");
  const changelog = await createTopic(conn, "app-store-changelog", {
    "cleanup.policy": "compact,delete",
    "retention.ms": "86400000",
    "message.timestamp.type": "CreateTime",
    "min.compaction.lag.ms": "1000",
    "max.compaction.lag.ms": "60000",
    "delete.retention.ms": "1000",
    "min.cleanable.dirty.ratio": "0.01",
    "segment.ms": "100",
    "message.timestamp.difference.max.ms": "5000",
  });
  assert.equal(changelog.errorCode, ERROR_CODES.NONE, changelog.errorMessage ?? "");

  const described = await describe(conn, "app-store-changelog");
  assert.deepEqual(described.get("cleanup.policy")!.value, "compact,delete");
  const lag = described.get("min.compaction.lag.ms")!;
  assert.deepEqual([lag.value, lag.configSource, lag.readOnly, lag.isSensitive], [
    "1000",
    1,
    false,
    false,
  ]);
  assert.deepEqual(lag.synonyms!.map((s) => [s.name, s.value, s.source]), [
    ["min.compaction.lag.ms", "1000", 1],
    ["log.cleaner.min.compaction.lag.ms", "0", 5],
  ]);
  assert.equal(lag.configType, 5, "LONG");
  assert.match(lag.documentation!, /never removed by compaction/);
  assert.match(described.get("compression.type")!.documentation!, /Stored only/);
  assert.equal(described.get("min.cleanable.dirty.ratio")!.configType, 6, "DOUBLE");
  assert.equal(described.get("message.timestamp.difference.max.ms")!.value, "5000");
  const throttled = described.get("leader.replication.throttled.replicas")!;
  assert.deepEqual([throttled.value, throttled.configSource], ["", 5]);
  assert.deepEqual(throttled.synonyms, [], "no broker synonym");

  const bad = await createTopic(conn, "bad", { "cleanup.policy": "compact", "no.such": "1" });
  assert.equal(bad.errorCode, ERROR_CODES.INVALID_CONFIG);
  assert.match(bad.errorMessage!, /"no\.such"/);
});

Deno.test("IncrementalAlterConfigs: the compaction lags are checked against the stored values", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "lags", { "max.compaction.lag.ms": "100" });
  const res = await conn.send(INCREMENTAL_ALTER_CONFIGS, 1, {
    resources: [{
      resourceType: TOPIC,
      resourceName: "lags",
      configs: [{ name: "min.compaction.lag.ms", configOperation: 0, value: "500" }],
    }],
    validateOnly: false,
  });
  assert.equal(res!.responses[0].errorCode, ERROR_CODES.INVALID_CONFIG);
  assert.match(res!.responses[0].errorMessage!, /must not be greater/);
});

Deno.test("Produce: a compacted topic refuses records without a key (INVALID_RECORD, recordErrors)", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "compacted", { "cleanup.policy": "compact" });
  await createTopic(conn, "plain", {});
  const send = async (
    topic: string,
    records: ProducerRecord[],
    version: number,
    compression: "none" | "gzip" = "none",
  ) => {
    const res = await conn.send(PRODUCE, version, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 10_000,
      topicData: [{
        name: topic,
        partitionData: [{ index: 0, records: encodeRecordBatch(records, { compression }) }],
      }],
    });
    return res!.responses[0].partitionResponses[0];
  };
  for (const v of [3, 7, 8, 11]) {
    const refused = await send("compacted", [record("k", "1"), record(null, "2")], v);
    assert.equal(refused.errorCode, ERROR_CODES.INVALID_RECORD, `v${v}`);
    assert.equal(refused.baseOffset, -1);
    if (v >= 8) {
      assert.deepEqual(refused.recordErrors!.map((e) => e.batchIndex), [1]);
      assert.match(refused.errorMessage!, /Compacted topic cannot accept message without key/);
    }
    const keyed = await send("compacted", [record("k", "1"), record("k", null)], v);
    assert.equal(keyed.errorCode, ERROR_CODES.NONE, `v${v}`);
    const plain = await send("plain", [record(null, "1")], v);
    assert.equal(plain.errorCode, ERROR_CODES.NONE, `v${v}`);
  }
  const gzipped = await send("compacted", [record(null, "1"), record("k", "2")], 9, "gzip");
  assert.equal(gzipped.errorCode, ERROR_CODES.INVALID_RECORD, "a gzip batch is inflated");
  assert.deepEqual(gzipped.recordErrors!.map((e) => e.batchIndex), [0]);
  // Nothing of a refused batch is stored: only the keyed batches took offsets.
  const keyed = await send("compacted", [record("last", "x")], 9, "gzip");
  assert.equal(keyed.baseOffset, 8);
});
