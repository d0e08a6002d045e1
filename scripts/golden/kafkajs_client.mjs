// Golden capture client: kafkajs. Run by scripts/capture_golden.ts (node, not Deno).
// Usage: node kafkajs_client.mjs BOOTSTRAP TOPIC
// env GOLDEN_NODE_DIR: directory whose node_modules holds kafkajs; GOLDEN_APIS: "all" or the
// comma-separated API keys the broker serves (steps needing others are skipped).
import { createRequire } from "node:module";
import process from "node:process";

const require = createRequire(`${process.env.GOLDEN_NODE_DIR}/noop.js`);
const { CompressionTypes, ConfigResourceTypes, Kafka, logLevel } = require("kafkajs");

const [bootstrap, topic] = process.argv.slice(2);
const TIMEOUT_MS = 20_000;
const RECORDS_PER_RUN = 3;
const ADMIN_TOPIC = `${topic}-admin`;
const GROUP_ID = `${topic}-group`;
const apis = process.env.GOLDEN_APIS ?? "all";
const served = apis === "all" ? null : new Set(apis.split(",").map(Number));

const GROUP = [1, 2, 3, 8, 9, 10, 11, 12, 13, 14];
const TXN = [0, 10, 22, 24, 25, 26, 28];

async function step(name, needs, fn) {
  const missing = served === null ? [] : needs.filter((k) => !served.has(k));
  if (missing.length > 0) {
    console.log(`GOLDEN step ${name} skip: the broker does not serve API keys ${missing}`);
    return;
  }
  let timer;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("step timed out")), TIMEOUT_MS * 2);
      }),
    ]);
    console.log(`GOLDEN step ${name} ok`);
  } catch (err) {
    console.log(`GOLDEN step ${name} fail: ${String(err?.message ?? err).slice(0, 300)}`);
  } finally {
    clearTimeout(timer);
  }
}

const kafka = new Kafka({
  clientId: "golden-kafkajs",
  brokers: [bootstrap],
  logLevel: logLevel.NOTHING,
  requestTimeout: TIMEOUT_MS,
  retry: { retries: 2 },
});

function records() {
  return Array.from({ length: RECORDS_PER_RUN }, (_, i) => ({
    key: `k${i}`,
    value: `v${i}`,
    headers: { h: "x" },
  }));
}

async function produce(opts = {}, target = topic) {
  const producer = kafka.producer({ idempotent: opts.idempotent ?? false });
  await producer.connect();
  try {
    await producer.send({
      topic: target,
      acks: -1,
      compression: opts.compression ?? CompressionTypes.None,
      messages: records(),
    });
  } finally {
    await producer.disconnect();
  }
}

async function transactional() {
  const producer = kafka.producer({
    transactionalId: `${topic}-txn`,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  try {
    let txn = await producer.transaction();
    await txn.send({ topic, messages: [{ key: "t", value: "in a transaction" }] });
    await txn.sendOffsets({
      consumerGroupId: GROUP_ID,
      topics: [{ topic, partitions: [{ partition: 0, offset: "1" }] }],
    });
    await txn.commit();
    txn = await producer.transaction();
    await txn.send({ topic, messages: [{ key: "t", value: "aborted" }] });
    await txn.abort();
  } finally {
    await producer.disconnect();
  }
}

async function consumeGroup() {
  const consumer = kafka.consumer({
    groupId: GROUP_ID,
    sessionTimeout: 10_000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 500,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let got = 0;
    let done;
    const finished = new Promise((resolve) => done = resolve);
    await consumer.run({
      autoCommit: true,
      eachMessage: () => {
        got++;
        if (got >= RECORDS_PER_RUN) done();
        return Promise.resolve();
      },
    });
    let timer;
    await Promise.race([
      finished,
      new Promise((resolve) => timer = setTimeout(resolve, TIMEOUT_MS)),
    ]);
    clearTimeout(timer);
    // Long enough for a heartbeat and an auto commit.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    if (got === 0) throw new Error("no records consumed");
  } finally {
    await consumer.disconnect();
  }
}

const admin = kafka.admin();
await admin.connect();

await step("metadata", [3], () => admin.fetchTopicMetadata());
await step("create-topics", [19], () =>
  admin.createTopics({
    waitForLeaders: true,
    topics: [{
      topic: ADMIN_TOPIC,
      numPartitions: 1,
      configEntries: [{ name: "retention.ms", value: "3600000" }],
    }],
  }));
await step("produce-none", [0, 3], () => produce());
await step("produce-gzip", [0, 3], () => produce({ compression: CompressionTypes.GZIP }));
await step("produce-idempotent", [0, 3, 22], () => produce({ idempotent: true }));
await step("produce-admin-topic", [0, 3], () => produce({}, ADMIN_TOPIC));
await step("transactional", TXN, transactional);
await step("consume-group", GROUP, consumeGroup);
await step("fetch-topic-offsets", [2, 3], () => admin.fetchTopicOffsets(topic));
await step(
  "fetch-topic-offsets-by-timestamp",
  [2, 3],
  () => admin.fetchTopicOffsetsByTimestamp(topic, 0),
);
await step("describe-cluster", [3], () => admin.describeCluster());
await step("describe-configs", [32], () =>
  admin.describeConfigs({
    includeSynonyms: true,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: ADMIN_TOPIC }],
  }));
await step("alter-configs", [33], () =>
  admin.alterConfigs({
    validateOnly: false,
    resources: [{
      type: ConfigResourceTypes.TOPIC,
      name: ADMIN_TOPIC,
      configEntries: [{ name: "retention.ms", value: "7200000" }],
    }],
  }));
await step(
  "create-partitions",
  [37],
  () => admin.createPartitions({ topicPartitions: [{ topic: ADMIN_TOPIC, count: 2 }] }),
);
await step(
  "delete-records",
  [21, 3],
  () =>
    admin.deleteTopicRecords({ topic: ADMIN_TOPIC, partitions: [{ partition: 0, offset: "1" }] }),
);
await step("list-groups", [16], () => admin.listGroups());
await step("describe-groups", [10, 15], () => admin.describeGroups([GROUP_ID]));
await step("fetch-offsets", [10, 9], () => admin.fetchOffsets({ groupId: GROUP_ID }));
await step("reset-offsets", [10, 8, 2], () => admin.resetOffsets({ groupId: GROUP_ID, topic }));
await step("delete-groups", [10, 42], () => admin.deleteGroups([GROUP_ID]));
await step("delete-topics", [20], () => admin.deleteTopics({ topics: [ADMIN_TOPIC] }));
await admin.disconnect();
