/**
 * Every advertised version of the core APIs against an in-process broker
 * over loopback TCP, through the same generated codecs real clients'
 * bytes are checked against in the golden tests.
 */
import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { ZERO_UUID } from "../../lib/protocol/primitives.ts";
import { decodeRecordBatches, encodeRecordBatch } from "../../lib/protocol/records.ts";
import { crc32 } from "../../lib/protocol/crc32c.ts";
import { HANDLERS } from "../../lib/broker/handler_table.ts";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import type { Compare, Operation } from "../../lib/metadata/metadata_store.ts";
import type { KafkaConnection } from "../../lib/client/kafka_connection.ts";

const PRODUCE = API_SCHEMAS[0];
const FETCH = API_SCHEMAS[1];
const LIST_OFFSETS = API_SCHEMAS[2];
const METADATA = API_SCHEMAS[3];
const SASL_HANDSHAKE = API_SCHEMAS[17];
const API_VERSIONS = API_SCHEMAS[18];
const CREATE_TOPICS = API_SCHEMAS[19];

const enc = new TextEncoder();
const dec = new TextDecoder();

function versions(apiKey: number): number[] {
  const h = HANDLERS.get(apiKey)!;
  return Array.from({ length: h.maxVersion - h.minVersion + 1 }, (_, i) => h.minVersion + i);
}

async function createTopic(conn: KafkaConnection, name: string, partitions: number, version = 7) {
  const res = await conn.send(CREATE_TOPICS, version, {
    topics: [{
      name,
      numPartitions: partitions,
      replicationFactor: 1,
      assignments: [],
      configs: [],
    }],
    timeoutMs: 10_000,
  });
  const t = res!.topics[0];
  assert.equal(t.errorCode, ERROR_CODES.NONE, t.errorMessage ?? "");
  return { ...t, topicId: t.topicId ?? ZERO_UUID };
}

function batch(from: number, count: number, timestamp = 1_700_000_000_000) {
  return encodeRecordBatch(
    Array.from({ length: count }, (_, i) => ({
      key: enc.encode(`k-${from + i}`),
      value: enc.encode(`v-${from + i}`),
      headers: [{ key: "h", value: enc.encode(String(from + i)) }],
      timestamp: timestamp + i,
    })),
  );
}

async function produce(
  conn: KafkaConnection,
  topic: string,
  partition: number,
  records: Uint8Array,
  version = 9,
  acks = -1,
  topicId?: string,
) {
  return await conn.send(PRODUCE, version, {
    transactionalId: null,
    acks,
    timeoutMs: 10_000,
    topicData: [{ name: topic, topicId, partitionData: [{ index: partition, records }] }],
  }, { expectResponse: acks !== 0 });
}

async function fetchAll(
  conn: KafkaConnection,
  topic: { name: string; topicId: string },
  partition: number,
  offset: number,
  version = 12,
  maxWaitMs = 0,
) {
  const res = await conn.send(FETCH, version, {
    replicaId: -1,
    maxWaitMs,
    minBytes: 1,
    maxBytes: 50 * 1024 * 1024,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{
      topic: topic.name,
      topicId: topic.topicId,
      partitions: [{
        partition,
        currentLeaderEpoch: -1,
        fetchOffset: offset,
        lastFetchedEpoch: -1,
        logStartOffset: -1,
        partitionMaxBytes: 10 * 1024 * 1024,
      }],
    }],
    forgottenTopicsData: [],
    rackId: "",
  });
  return res!;
}

Deno.test("ApiVersions: every version lists the handler table", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  for (const v of versions(18)) {
    const res = await conn.send(API_VERSIONS, v, {
      clientSoftwareName: "kafscale-test",
      clientSoftwareVersion: "1.0",
    });
    assert.equal(res!.errorCode, ERROR_CODES.NONE, `v${v}`);
    const byKey = new Map(res!.apiKeys.map((k) => [k.apiKey, k]));
    assert.equal(byKey.size, HANDLERS.size, `v${v}`);
    for (const h of HANDLERS.values()) {
      assert.deepEqual(
        [byKey.get(h.apiKey)?.minVersion, byKey.get(h.apiKey)?.maxVersion],
        [h.minVersion, h.maxVersion],
        `v${v} ${h.name}`,
      );
    }
  }
});

Deno.test("ApiVersions: an unknown version gets UNSUPPORTED_VERSION in a v0 body", async () => {
  await using b = await startTestBroker();
  // Version 127 with a v2 header; the broker must not try to decode the body.
  const frame = new Uint8Array([
    0,
    0,
    0,
    12, // size
    0,
    18,
    0,
    127, // api key 18, version 127
    0,
    0,
    0,
    42, // correlation id
    0,
    1,
    0x78, // client id "x"
    0, // tagged fields
  ]);
  const raw = await Deno.connect({ hostname: "127.0.0.1", port: b.node.kafkaAddress.port });
  await raw.write(frame);
  const head = new Uint8Array(4);
  let got = 0;
  while (got < 4) got += (await raw.read(head.subarray(got))) ?? 4;
  const size = new DataView(head.buffer).getInt32(0);
  const body = new Uint8Array(size);
  got = 0;
  while (got < size) {
    const n = await raw.read(body.subarray(got));
    if (n === null) break;
    got += n;
  }
  raw.close();
  const view = new DataView(body.buffer);
  assert.equal(view.getInt32(0), 42, "correlation id");
  assert.equal(view.getInt16(4), ERROR_CODES.UNSUPPORTED_VERSION);
  const count = view.getInt32(6);
  assert.equal(count, HANDLERS.size);
  assert.equal(size, 4 + 2 + 4 + count * 6, "a v0 body: no throttle time, no tagged fields");
});

Deno.test("Metadata: every version describes brokers, cluster and topics", async () => {
  await using b = await startTestBroker({ settings: { "default-partitions": "3" } });
  const conn = await b.connect();
  const created = await createTopic(conn, "meta-topic", 4);
  for (const v of versions(3)) {
    const res = await conn.send(METADATA, v, {
      topics: [{ topicId: ZERO_UUID, name: "meta-topic" }],
      allowAutoTopicCreation: false,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    });
    assert.equal(res!.brokers.length, 1, `v${v}`);
    assert.equal(res!.brokers[0].port, b.node.kafkaAddress.port, `v${v}`);
    assert.equal(res!.brokers[0].host, "127.0.0.1", `v${v}`);
    if (v >= 1) assert.equal(res!.controllerId, 0, `v${v}`);
    if (v >= 2) assert.equal(res!.clusterId, b.node.broker.clusterId, `v${v}`);
    const t = res!.topics[0];
    assert.equal(t.errorCode, ERROR_CODES.NONE, `v${v}`);
    assert.equal(t.name, "meta-topic");
    assert.equal(t.partitions.length, 4, `v${v}`);
    assert.deepEqual(t.partitions.map((p) => p.partitionIndex), [0, 1, 2, 3]);
    for (const p of t.partitions) {
      assert.equal(p.leaderId, 0);
      assert.deepEqual(p.replicaNodes, [0]);
      assert.deepEqual(p.isrNodes, [0]);
    }
    if (v >= 10) assert.equal(t.topicId, created.topicId, `v${v}`);
  }
  // All topics: null (v1+) and an empty list in v0.
  for (const v of [0, 1, 9, 12]) {
    const res = await conn.send(METADATA, v, {
      topics: v === 0 ? [] : null,
      allowAutoTopicCreation: false,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    });
    assert.deepEqual(res!.topics.map((t) => t.name), ["meta-topic"], `v${v}`);
  }
  // By topic id (v10+).
  const byId = await conn.send(METADATA, 12, {
    topics: [{ topicId: created.topicId, name: null }],
    allowAutoTopicCreation: false,
    includeTopicAuthorizedOperations: true,
  });
  assert.equal(byId!.topics[0].name, "meta-topic");
  assert.notEqual(byId!.topics[0].topicAuthorizedOperations, -2147483648);
  const unknownId = await conn.send(METADATA, 12, {
    topics: [{ topicId: "AAAAAAAAAAAAAAAAAAAAAQ", name: null }],
    allowAutoTopicCreation: false,
    includeTopicAuthorizedOperations: false,
  });
  assert.equal(unknownId!.topics[0].errorCode, ERROR_CODES.UNKNOWN_TOPIC_ID);
});

Deno.test("Metadata: auto-creation follows the request flag and the broker setting", async () => {
  await using b = await startTestBroker({ settings: { "default-partitions": "3" } });
  const conn = await b.connect();
  const ask = (name: string, v: number, allow: boolean) =>
    conn.send(METADATA, v, {
      topics: [{ topicId: ZERO_UUID, name }],
      allowAutoTopicCreation: allow,
      includeTopicAuthorizedOperations: false,
    });
  assert.equal((await ask("no-auto", 12, false))!.topics[0].errorCode, 3);
  const auto = (await ask("auto", 12, true))!.topics[0];
  assert.equal(auto.errorCode, ERROR_CODES.NONE);
  assert.equal(auto.partitions.length, 3);
  // v0-3 have no flag: creation is allowed.
  assert.equal((await ask("auto-v1", 1, false))!.topics[0].partitions.length, 3);
  assert.equal((await ask("bad/name", 12, true))!.topics[0].errorCode, 17);

  await using off = await startTestBroker({ settings: { "auto-create-topics": "false" } });
  const conn2 = await off.connect();
  const res = await conn2.send(METADATA, 12, {
    topics: [{ topicId: ZERO_UUID, name: "x" }],
    allowAutoTopicCreation: true,
    includeTopicAuthorizedOperations: false,
  });
  assert.equal(res!.topics[0].errorCode, ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION);
});

Deno.test("CreateTopics: every version, errors and validate-only", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  for (const v of versions(19)) {
    const res = await conn.send(CREATE_TOPICS, v, {
      topics: [
        { name: `ct-${v}`, numPartitions: 2, replicationFactor: -1, assignments: [], configs: [] },
        { name: `ct-${v}`, numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] },
        { name: "bad name", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
        { name: `np-${v}`, numPartitions: 0, replicationFactor: 1, assignments: [], configs: [] },
        { name: `rf-${v}`, numPartitions: 1, replicationFactor: 3, assignments: [], configs: [] },
        {
          name: `cfg-${v}`,
          numPartitions: 1,
          replicationFactor: 1,
          assignments: [],
          configs: [{ name: "no.such.config", value: "1" }],
        },
      ],
      timeoutMs: 1000,
      validateOnly: false,
    });
    const codes = res!.topics.map((t) => t.errorCode);
    assert.deepEqual(codes, [
      ERROR_CODES.NONE,
      ERROR_CODES.INVALID_REQUEST,
      ERROR_CODES.INVALID_TOPIC_EXCEPTION,
      ERROR_CODES.INVALID_PARTITIONS,
      ERROR_CODES.INVALID_REPLICATION_FACTOR,
      ERROR_CODES.INVALID_CONFIG,
    ], `v${v}`);
    if (v >= 1) assert.match(res!.topics[5].errorMessage ?? "", /no\.such\.config/);
    if (v >= 5) assert.equal(res!.topics[0].numPartitions, 2);
    if (v >= 7) assert.notEqual(res!.topics[0].topicId, ZERO_UUID);
    const again = await conn.send(CREATE_TOPICS, v, {
      topics: [{
        name: `ct-${v}`,
        numPartitions: 1,
        replicationFactor: 1,
        assignments: [],
        configs: [],
      }],
      timeoutMs: 1000,
      validateOnly: false,
    });
    assert.equal(again!.topics[0].errorCode, ERROR_CODES.TOPIC_ALREADY_EXISTS, `v${v}`);
    if (v >= 1) {
      const dry = await conn.send(CREATE_TOPICS, v, {
        topics: [{
          name: `dry-${v}`,
          numPartitions: 1,
          replicationFactor: 1,
          assignments: [],
          configs: [],
        }],
        timeoutMs: 1000,
        validateOnly: true,
      });
      assert.equal(dry!.topics[0].errorCode, ERROR_CODES.NONE);
      assert.equal(await b.node.broker.topic(`dry-${v}`), null, "validate-only creates nothing");
    }
  }
});

Deno.test("Produce v3-13 and Fetch v4-18: every pair round-trips records exactly", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const topic = await createTopic(conn, "pf", 1);
  let next = 0;
  for (const pv of versions(0).filter((v) => v >= 3)) {
    // v13 names the topic by id only (KIP-516).
    const res = pv >= 13
      ? await produce(conn, "", 0, batch(next, 5), pv, -1, topic.topicId)
      : await produce(conn, "pf", 0, batch(next, 5), pv);
    if (pv >= 13) assert.equal(res!.responses[0].topicId, topic.topicId);
    const p = res!.responses[0].partitionResponses[0];
    assert.equal(p.errorCode, ERROR_CODES.NONE, `produce v${pv}: ${p.errorMessage}`);
    assert.equal(p.baseOffset, next, `produce v${pv}`);
    next += 5;
  }
  for (const fv of versions(1)) {
    const res = await fetchAll(conn, { name: "pf", topicId: topic.topicId }, 0, 0, fv);
    assert.equal(res.errorCode ?? 0, ERROR_CODES.NONE);
    const part = res.responses[0].partitions[0];
    assert.equal(part.errorCode, ERROR_CODES.NONE, `fetch v${fv}`);
    assert.equal(part.highWatermark, next, `fetch v${fv}`);
    if (fv >= 13) assert.equal(res.responses[0].topicId, topic.topicId);
    else assert.equal(res.responses[0].topic, "pf");
    const { records } = decodeRecordBatches(part.records!);
    assert.equal(records.length, next, `fetch v${fv}`);
    records.forEach((r, i) => {
      assert.equal(r.offset, i);
      assert.equal(dec.decode(r.key!), `k-${i}`);
      assert.equal(dec.decode(r.value!), `v-${i}`);
      assert.equal(dec.decode(r.headers[0].value!), String(i));
      assert.equal(r.timestamp, 1_700_000_000_000 + (i % 5));
    });
  }
});

Deno.test("Produce v13: an unknown topic id answers UNKNOWN_TOPIC_ID and stores nothing", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const topic = await createTopic(conn, "pid", 1);
  const unknownId = "AAAAAAAAAAAAAAAAAAAAAQ";
  assert.notEqual(topic.topicId, unknownId);
  const res = await produce(conn, "", 0, batch(0, 3), 13, -1, unknownId);
  assert.equal(res!.responses[0].topicId, unknownId);
  assert.equal(res!.responses[0].partitionResponses[0].errorCode, ERROR_CODES.UNKNOWN_TOPIC_ID);
  const fetched = await fetchAll(conn, { name: "pid", topicId: topic.topicId }, 0, 0, 18);
  assert.equal(fetched.responses[0].partitions[0].highWatermark, 0);
});

/** A magic 1 message (Produce v0-2 message set entry). */
function legacyMessage(offset: number, key: string, value: string, timestamp: number): Uint8Array {
  const k = enc.encode(key);
  const v = enc.encode(value);
  const bodyLen = 1 + 1 + 8 + 4 + k.length + 4 + v.length;
  const out = new Uint8Array(12 + 4 + bodyLen);
  const dv = new DataView(out.buffer);
  dv.setBigInt64(0, BigInt(offset));
  dv.setInt32(8, 4 + bodyLen);
  let p = 16;
  dv.setInt8(p++, 1); // magic
  dv.setInt8(p++, 0); // attributes
  dv.setBigInt64(p, BigInt(timestamp));
  p += 8;
  dv.setInt32(p, k.length);
  out.set(k, p + 4);
  p += 4 + k.length;
  dv.setInt32(p, v.length);
  out.set(v, p + 4);
  dv.setUint32(12, crc32(out, 16, out.length));
  return out;
}

Deno.test("Produce v0-2: legacy message sets are stored as v2 batches", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const topic = await createTopic(conn, "legacy", 1);
  for (const v of [0, 1, 2]) {
    const set = new Uint8Array([
      ...legacyMessage(0, `lk-${v}-0`, "a", 1_700_000_000_000),
      ...legacyMessage(1, `lk-${v}-1`, "b", 1_700_000_000_001),
    ]);
    const res = await produce(conn, "legacy", 0, set, v);
    const p = res!.responses[0].partitionResponses[0];
    assert.equal(p.errorCode, ERROR_CODES.NONE, `v${v}`);
    assert.equal(p.baseOffset, v * 2, `v${v}`);
  }
  const fetched = await fetchAll(conn, { name: "legacy", topicId: topic.topicId }, 0, 0);
  const { records } = decodeRecordBatches(fetched.responses[0].partitions[0].records!);
  assert.deepEqual(records.map((r) => dec.decode(r.key!)), [
    "lk-0-0",
    "lk-0-1",
    "lk-1-0",
    "lk-1-1",
    "lk-2-0",
    "lk-2-1",
  ]);
  // Produce v3+ requires magic 2 batches.
  const refused = await produce(conn, "legacy", 0, legacyMessage(0, "x", "y", 1), 3);
  assert.equal(refused!.responses[0].partitionResponses[0].errorCode, ERROR_CODES.INVALID_RECORD);
});

Deno.test("Produce: per-partition errors", async () => {
  await using b = await startTestBroker({ settings: { "auto-create-topics": "false" } });
  const conn = await b.connect();
  await createTopic(conn, "errs", 1);
  const unknown = await produce(conn, "missing", 0, batch(0, 1));
  assert.equal(unknown!.responses[0].partitionResponses[0].errorCode, 3);
  const badPartition = await produce(conn, "errs", 7, batch(0, 1));
  assert.equal(badPartition!.responses[0].partitionResponses[0].errorCode, 3);
  const corrupt = batch(0, 2);
  corrupt[corrupt.length - 1] ^= 0xff;
  const bad = await produce(conn, "errs", 0, corrupt);
  assert.equal(bad!.responses[0].partitionResponses[0].errorCode, ERROR_CODES.CORRUPT_MESSAGE);
  const badAcks = await produce(conn, "errs", 0, batch(0, 1), 9, 2);
  assert.equal(
    badAcks!.responses[0].partitionResponses[0].errorCode,
    ERROR_CODES.INVALID_REQUIRED_ACKS,
  );
  const txn = await conn.send(PRODUCE, 9, {
    transactionalId: "tx",
    acks: -1,
    timeoutMs: 1000,
    topicData: [{ name: "errs", partitionData: [{ index: 0, records: batch(0, 1) }] }],
  });
  // A transactional request must carry transactional batches.
  assert.equal(txn!.responses[0].partitionResponses[0].errorCode, ERROR_CODES.INVALID_RECORD);
  // Nothing from the failed requests is visible.
  const ok = await produce(conn, "errs", 0, batch(0, 1));
  assert.equal(ok!.responses[0].partitionResponses[0].baseOffset, 0);
});

Deno.test("Produce: max.message.bytes and LogAppendTime topic configs", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const res = await conn.send(CREATE_TOPICS, 7, {
    topics: [{
      name: "cfg",
      numPartitions: 1,
      replicationFactor: 1,
      assignments: [],
      configs: [
        { name: "max.message.bytes", value: "2000" },
        { name: "message.timestamp.type", value: "LogAppendTime" },
      ],
    }],
    timeoutMs: 1000,
    validateOnly: false,
  });
  assert.equal(res!.topics[0].errorCode, 0);
  const big = encodeRecordBatch([{ key: null, value: new Uint8Array(4000) }]);
  const tooBig = await produce(conn, "cfg", 0, big);
  assert.equal(tooBig!.responses[0].partitionResponses[0].errorCode, ERROR_CODES.MESSAGE_TOO_LARGE);
  const before = Date.now();
  const ok = await produce(conn, "cfg", 0, batch(0, 2, 1000));
  const p = ok!.responses[0].partitionResponses[0];
  assert.equal(p.errorCode, 0);
  assert.ok(p.logAppendTimeMs! >= before, "LogAppendTime is reported");
  const fetched = await fetchAll(conn, { name: "cfg", topicId: res!.topics[0].topicId! }, 0, 0);
  const { records } = decodeRecordBatches(fetched.responses[0].partitions[0].records!);
  assert.equal(records.length, 2);
  for (const r of records) {
    assert.equal(r.timestamp, p.logAppendTimeMs);
    assert.equal(r.timestampType, 1);
  }
});

Deno.test("Produce acks=0: no response, data becomes readable", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const topic = await createTopic(conn, "acks0", 1);
  assert.equal(await produce(conn, "acks0", 0, batch(0, 3), 9, 0), null);
  // A later request on the same connection is answered: no response was queued for acks=0.
  const deadline = Date.now() + 5000;
  let hw = 0;
  while (Date.now() < deadline) {
    const f = await fetchAll(conn, { name: "acks0", topicId: topic.topicId }, 0, 0, 12, 100);
    hw = f.responses[0].partitions[0].highWatermark;
    if (hw === 3) break;
  }
  assert.equal(hw, 3);
});

Deno.test("Fetch: long poll is woken by an append; offsets out of range", async () => {
  await using b = await startTestBroker();
  const producer = await b.connect();
  const consumer = await b.connect();
  const topic = await createTopic(producer, "lp", 1);
  await produce(producer, "lp", 0, batch(0, 2));
  const waiting = fetchAll(consumer, { name: "lp", topicId: topic.topicId }, 0, 2, 12, 20_000);
  await produce(producer, "lp", 0, batch(2, 3));
  const res = await waiting;
  const part = res.responses[0].partitions[0];
  assert.equal(part.errorCode, 0);
  const { records } = decodeRecordBatches(part.records!);
  assert.deepEqual(records.map((r) => r.offset), [2, 3, 4]);

  const past = await fetchAll(consumer, { name: "lp", topicId: topic.topicId }, 0, 99);
  assert.equal(past.responses[0].partitions[0].errorCode, ERROR_CODES.OFFSET_OUT_OF_RANGE);
  assert.equal(past.responses[0].partitions[0].highWatermark, 5);
  const atEnd = await fetchAll(consumer, { name: "lp", topicId: topic.topicId }, 0, 5);
  assert.equal(atEnd.responses[0].partitions[0].errorCode, 0);
  assert.equal(atEnd.responses[0].partitions[0].records?.length ?? 0, 0);
  const unknown = await fetchAll(consumer, { name: "nope", topicId: ZERO_UUID }, 0, 0, 12);
  assert.equal(unknown.responses[0].partitions[0].errorCode, 3);
  const unknownId = await fetchAll(
    consumer,
    { name: "", topicId: "AAAAAAAAAAAAAAAAAAAAAQ" },
    0,
    0,
    13,
  );
  assert.equal(unknownId.responses[0].partitions[0].errorCode, ERROR_CODES.UNKNOWN_TOPIC_ID);
});

Deno.test("Fetch: a stopping broker answers parked long polls at once instead of holding its stop", async () => {
  const b = await startTestBroker();
  const conn = await b.connect();
  try {
    const topic = await createTopic(conn, "stop-lp", 1);
    await produce(conn, "stop-lp", 0, batch(0, 2));
    // Parked: at the end of the log, MaxWaitMs 60 s; the client stays connected.
    const parked = fetchAll(conn, { name: "stop-lp", topicId: topic.topicId }, 0, 2, 12, 60_000);
    // Time for the broker to read it (a request not yet read when the listener stops is never
    // answered: the client retries it elsewhere).
    await new Promise((resolve) => setTimeout(resolve, 500));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<"held">((resolve) =>
      timer = setTimeout(() => resolve("held"), 20_000)
    );
    const stopped = b.node.stop();
    const first = await Promise.race([parked.then(() => "answered" as const), bound]);
    clearTimeout(timer);
    assert.equal(first, "answered", "answered during the stop, not at MaxWaitMs");
    const part = (await parked).responses[0].partitions[0];
    assert.equal(part.errorCode, 0);
    assert.equal(part.records?.length ?? 0, 0, "nothing new: an empty answer");
    await stopped;
  } finally {
    conn.close();
    await b.metadataStore.close();
    await b.objectStore.close();
  }
});

Deno.test("Fetch: MaxBytes and PartitionMaxBytes return whole batches, at least one", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const topic = await createTopic(conn, "mb", 1);
  for (let i = 0; i < 4; i++) await produce(conn, "mb", 0, batch(i * 10, 10));
  const res = await conn.send(FETCH, 12, {
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: 1,
    topics: [{
      topic: "mb",
      topicId: topic.topicId,
      partitions: [{ partition: 0, fetchOffset: 15, partitionMaxBytes: 1 }],
    }],
  });
  const { records, batches } = decodeRecordBatches(res!.responses[0].partitions[0].records!);
  assert.equal(batches.length, 1, "exactly one whole batch despite the 1-byte limits");
  assert.equal(records[0].offset, 10, "the batch containing the fetch offset");
});

Deno.test("ListOffsets: every version, earliest, latest, max timestamp and by time", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "lo", 1);
  await produce(conn, "lo", 0, batch(0, 5, 1000));
  await produce(conn, "lo", 0, batch(5, 5, 5000));
  for (const v of versions(2)) {
    const ask = async (timestamp: number) => {
      const res = await conn.send(LIST_OFFSETS, v, {
        replicaId: -1,
        isolationLevel: 0,
        topics: [{
          name: "lo",
          partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 }],
        }],
        timeoutMs: 1000,
      });
      const p = res!.topics[0].partitions[0];
      assert.equal(p.errorCode, 0, `v${v} ts ${timestamp}`);
      return v === 0 ? { offset: p.oldStyleOffsets![0], timestamp: -1 } : p;
    };
    assert.equal((await ask(-2)).offset, 0, `v${v} earliest`);
    assert.equal((await ask(-1)).offset, 10, `v${v} latest`);
    if (v >= 1) {
      assert.deepEqual([(await ask(1002)).offset, (await ask(1002)).timestamp], [2, 1002]);
      assert.equal((await ask(4000)).offset, 5);
      assert.equal((await ask(99_999)).offset, -1, "no record at or after");
    }
    if (v >= 7) {
      const max = await ask(-3);
      assert.deepEqual([max.offset, max.timestamp], [9, 5004]);
    }
  }
});

Deno.test("SaslHandshake: UNSUPPORTED_SASL_MECHANISM while auth is off", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  for (const v of versions(17)) {
    const res = await conn.send(SASL_HANDSHAKE, v, { mechanism: "PLAIN" });
    assert.equal(res!.errorCode, ERROR_CODES.UNSUPPORTED_SASL_MECHANISM);
    assert.deepEqual(res!.mechanisms, []);
  }
});

Deno.test("Topic cache: changes made by another broker are seen without a restart", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const other = new ClusterMetadata(b.metadataStore);
  await other.createTopic({ name: "elsewhere", partitions: 1 });
  const first = await produce(conn, "elsewhere", 0, batch(0, 1));
  assert.equal(first!.responses[0].partitionResponses[0].errorCode, ERROR_CODES.NONE);
  // A config change by another broker reaches this one through the metadata watch.
  await other.updateTopicConfigs("elsewhere", { "max.message.bytes": "10" });
  const refused = await produce(conn, "elsewhere", 0, batch(1, 1));
  assert.equal(
    refused!.responses[0].partitionResponses[0].errorCode,
    ERROR_CODES.MESSAGE_TOO_LARGE,
  );
});

// A first write to a partition acquires it (a metadata transaction). One after another, a
// producer spreading over many new partitions waited for each in turn (p99 of hundreds of ms
// with 1 000 partitions); started together they share the store's group commits.
Deno.test("Produce: the new partitions of one request are acquired together, not one by one", async () => {
  let inFlight = 0;
  let maxInFlight = 0;
  class SlowOwnerStore extends MemoryMetadataStore {
    override async txn(compares: Compare[], success: Operation[], failure?: Operation[]) {
      const acquiring = success.some((op) => op.op === "put" && op.key.endsWith("/owner"));
      if (!acquiring) return await super.txn(compares, success, failure);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return await super.txn(compares, success, failure);
      } finally {
        inFlight--;
      }
    }
  }
  await using b = await startTestBroker({ metadataStore: new SlowOwnerStore() });
  const conn = await b.connect();
  const partitions = 16;
  await createTopic(conn, "spread", partitions);
  const res = await conn.send(PRODUCE, 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{
      name: "spread",
      partitionData: Array.from({ length: partitions }, (_, i) => ({
        index: i,
        records: batch(i, 1),
      })),
    }],
  });
  const results = res!.responses[0].partitionResponses;
  assert.deepEqual(results.map((p) => [p.index, p.errorCode, p.baseOffset]), [
    ...Array.from({ length: partitions }, (_, i) => [i, ERROR_CODES.NONE, 0]),
  ]);
  assert.equal(maxInFlight, partitions, "every acquisition was under way at once");
});
