/**
 * Idempotent producers at the broker (issue 7): InitProducerId at every version (0-5), the
 * cluster-wide producer id blocks and KIP-360 epoch bumps, and the Produce outcomes of the
 * producer state — duplicate, OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH,
 * UNKNOWN_PRODUCER_ID — at every Produce version that carries record batches (3-11), over
 * loopback TCP through the generated codecs.
 */
import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { decodeRecordBatches, encodeRecordBatch } from "../../lib/protocol/records.ts";
import { HANDLERS } from "../../lib/broker/handler_table.ts";
import { INIT_PRODUCER_ID_HANDLER } from "../../lib/broker/init_producer_id.ts";
import {
  PRODUCER_EPOCH_EXHAUSTED,
  PRODUCER_ID_BLOCK_SIZE,
  ProducerIdManager,
} from "../../lib/broker/producer_ids.ts";
import type { RequestContext } from "../../lib/broker/handler.ts";
import type { Broker } from "../../lib/broker/broker.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { MetadataStoreError } from "../../lib/metadata/metadata_store.ts";
import { Metrics } from "../../lib/util/metrics.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import type { KafkaConnection } from "../../lib/client/kafka_connection.ts";

const PRODUCE = API_SCHEMAS[0];
const FETCH = API_SCHEMAS[1];
const API_VERSIONS = API_SCHEMAS[18];
const CREATE_TOPICS = API_SCHEMAS[19];
const INIT_PRODUCER_ID = API_SCHEMAS[22];

const enc = new TextEncoder();
const dec = new TextDecoder();

async function createTopic(conn: KafkaConnection, name: string, partitions: number) {
  const res = await conn.send(CREATE_TOPICS, 4, {
    topics: [{
      name,
      numPartitions: partitions,
      replicationFactor: 1,
      assignments: [],
      configs: [],
    }],
    timeoutMs: 10_000,
  });
  assert.equal(res!.topics[0].errorCode, ERROR_CODES.NONE);
}

async function initProducerId(
  conn: KafkaConnection,
  version: number,
  body: { transactionalId?: string | null; producerId?: number; producerEpoch?: number } = {},
) {
  return (await conn.send(INIT_PRODUCER_ID, version, {
    transactionalId: body.transactionalId ?? null,
    transactionTimeoutMs: 60_000,
    producerId: body.producerId ?? -1,
    producerEpoch: body.producerEpoch ?? -1,
  }))!;
}

function idempotentBatch(
  values: string[],
  ids: { producerId: number; producerEpoch: number },
  baseSequence: number,
) {
  return encodeRecordBatch(
    values.map((v, i) => ({ key: null, value: enc.encode(v), timestamp: 1_700_000_000_000 + i })),
    { ...ids, baseSequence },
  );
}

async function produce(
  conn: KafkaConnection,
  version: number,
  topic: string,
  partition: number,
  records: Uint8Array,
) {
  const res = await conn.send(PRODUCE, version, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  });
  return res!.responses[0].partitionResponses[0];
}

async function readValues(conn: KafkaConnection, topic: string, partition: number) {
  const res = await conn.send(FETCH, 4, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    topics: [{
      topic,
      partitions: [{ partition, fetchOffset: 0, logStartOffset: -1, partitionMaxBytes: 1 << 20 }],
    }],
  });
  const records = res!.responses[0].partitions[0].records!;
  return decodeRecordBatches(records).records.map((r) => [r.offset, dec.decode(r.value!)]);
}

// ---- InitProducerId ----------------------------------------------------------------

Deno.test("ApiVersions advertises InitProducerId 0-5", async () => {
  await using broker = await startTestBroker();
  const conn = await broker.connect();
  const res = await conn.send(API_VERSIONS, 3, {
    clientSoftwareName: "test",
    clientSoftwareVersion: "1",
  });
  const entry = res!.apiKeys.find((k) => k.apiKey === 22);
  assert.deepEqual([entry?.minVersion, entry?.maxVersion], [0, 5]);
  assert.equal(HANDLERS.get(22), INIT_PRODUCER_ID_HANDLER);
  const txnApis = [24, 25, 26, 27, 28].map((key) => {
    const e = res!.apiKeys.find((k) => k.apiKey === key);
    return [key, e?.minVersion, e?.maxVersion];
  });
  assert.deepEqual(txnApis, [[24, 0, 5], [25, 0, 4], [26, 0, 5], [27, 0, 1], [28, 0, 5]]);
});

Deno.test("InitProducerId v0-5: a new producer gets a fresh id with epoch 0", async () => {
  await using broker = await startTestBroker();
  const conn = await broker.connect();
  const seen = new Set<number>();
  for (let version = 0; version <= 5; version++) {
    const res = await initProducerId(conn, version);
    assert.equal(res.errorCode, ERROR_CODES.NONE, `v${version}`);
    assert.equal(res.producerEpoch, 0, `v${version}`);
    assert.ok(res.producerId >= 0 && !seen.has(res.producerId), `v${version} id is new`);
    seen.add(res.producerId);
  }
});

Deno.test("InitProducerId v3-5: the current id and epoch get the epoch bumped (KIP-360)", async () => {
  await using broker = await startTestBroker();
  const conn = await broker.connect();
  for (let version = 3; version <= 5; version++) {
    const first = await initProducerId(conn, version);
    const bumped = await initProducerId(conn, version, {
      producerId: first.producerId,
      producerEpoch: first.producerEpoch,
    });
    assert.deepEqual(
      [bumped.errorCode, bumped.producerId, bumped.producerEpoch],
      [ERROR_CODES.NONE, first.producerId, 1],
      `v${version}`,
    );
    const exhausted = await initProducerId(conn, version, {
      producerId: first.producerId,
      producerEpoch: PRODUCER_EPOCH_EXHAUSTED,
    });
    assert.equal(exhausted.errorCode, ERROR_CODES.NONE);
    assert.notEqual(exhausted.producerId, first.producerId, "an exhausted epoch gets a new id");
    assert.equal(exhausted.producerEpoch, 0);
    for (const half of [{ producerId: first.producerId }, { producerEpoch: 3 }]) {
      const bad = await initProducerId(conn, version, half);
      assert.equal(
        bad.errorCode,
        ERROR_CODES.INVALID_REQUEST,
        `v${version} ${JSON.stringify(half)}`,
      );
      assert.deepEqual([bad.producerId, bad.producerEpoch], [-1, -1]);
    }
  }
  // Before v3 the fields do not exist: the request always asks for a new id.
  const v2 = await initProducerId(conn, 2, { producerId: 5, producerEpoch: 5 });
  assert.equal(v2.producerEpoch, 0);
});

Deno.test("producer ids: blocks from one counter never collide across brokers", async () => {
  const metadataStore = new MemoryMetadataStore();
  try {
    await using a = await startTestBroker({ metadataStore, settings: { "broker-id": "1" } });
    await using b = await startTestBroker({ metadataStore, settings: { "broker-id": "2" } });
    const [ca, cb] = [await a.connect(), await b.connect()];
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) {
      for (const conn of [ca, cb]) ids.push((await initProducerId(conn, 4)).producerId);
    }
    assert.equal(new Set(ids).size, ids.length);
    // Each broker reserved one block and hands out its ids in order.
    const blocks = new Set(ids.map((id) => Math.floor(id / PRODUCER_ID_BLOCK_SIZE)));
    assert.equal(blocks.size, 2);
  } finally {
    await metadataStore.close();
  }
});

Deno.test("producer ids: concurrent callers share one reservation; blocks refill", async () => {
  let reservations = 0;
  let next = 0;
  const manager = new ProducerIdManager({
    blockSize: 3,
    metadata: {
      allocateProducerIdBlock: (size: number) => {
        reservations++;
        const start = next;
        next += size;
        return Promise.resolve(start);
      },
    },
  });
  const ids = await Promise.all(Array.from({ length: 7 }, () => manager.nextProducerId()));
  assert.deepEqual(ids.sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(reservations, 3);
});

Deno.test("InitProducerId: a metadata store failure is retriable (COORDINATOR_LOAD_IN_PROGRESS)", async () => {
  let fail = true;
  const producerIds = new ProducerIdManager({
    metadata: {
      allocateProducerIdBlock: () =>
        fail ? Promise.reject(new MetadataStoreError("store down")) : Promise.resolve(4000),
    },
  });
  const ctx = {
    apiVersion: 4,
    clientId: "test",
    clientAddress: "127.0.0.1:1",
    broker: {
      producerIds,
      logger: silentLogger,
      metrics: new Metrics(),
      authorizer: { enabled: false },
    } as unknown as Broker,
  } as RequestContext;
  const req = { transactionalId: null, transactionTimeoutMs: 1, producerId: -1, producerEpoch: -1 };
  const down = await INIT_PRODUCER_ID_HANDLER.handle(req, ctx);
  assert.equal(down?.errorCode, ERROR_CODES.COORDINATOR_LOAD_IN_PROGRESS);
  fail = false;
  const up = await INIT_PRODUCER_ID_HANDLER.handle(req, ctx);
  assert.deepEqual([up?.errorCode, up?.producerId, up?.producerEpoch], [0, 4000, 0]);
});

// ---- Produce outcomes --------------------------------------------------------------

Deno.test("Produce v3-11: duplicates, gaps, old epochs and unknown producers", async () => {
  await using broker = await startTestBroker();
  const conn = await broker.connect();
  const topic = "idempotent";
  await createTopic(conn, topic, 12);
  for (let version = 3; version <= 11; version++) {
    const at = `Produce v${version}`;
    const partition = version;
    const ids = await initProducerId(conn, 4);
    const first = await produce(
      conn,
      version,
      topic,
      partition,
      idempotentBatch(["a0", "a1"], ids, 0),
    );
    assert.deepEqual([first.errorCode, first.baseOffset], [ERROR_CODES.NONE, 0], at);
    const second = await produce(conn, version, topic, partition, idempotentBatch(["b0"], ids, 2));
    assert.deepEqual([second.errorCode, second.baseOffset], [ERROR_CODES.NONE, 2], at);

    // A retry of the first batch: success with its ORIGINAL base offset, nothing stored.
    const retry = await produce(
      conn,
      version,
      topic,
      partition,
      idempotentBatch(["a0", "a1"], ids, 0),
    );
    assert.deepEqual([retry.errorCode, retry.baseOffset], [ERROR_CODES.NONE, 0], at);

    const gap = await produce(conn, version, topic, partition, idempotentBatch(["x"], ids, 5));
    assert.equal(gap.errorCode, ERROR_CODES.OUT_OF_ORDER_SEQUENCE_NUMBER, at);
    if (version >= 8) assert.match(gap.errorMessage ?? "", /sequence 5.*expected 3/, at);

    // The producer bumps its epoch (KIP-360); the old epoch is fenced.
    const bumped = await initProducerId(conn, 4, ids);
    assert.equal(bumped.producerEpoch, ids.producerEpoch + 1, at);
    const next = await produce(conn, version, topic, partition, idempotentBatch(["c0"], bumped, 0));
    assert.deepEqual([next.errorCode, next.baseOffset], [ERROR_CODES.NONE, 3], at);
    const fenced = await produce(conn, version, topic, partition, idempotentBatch(["z"], ids, 3));
    assert.equal(fenced.errorCode, ERROR_CODES.INVALID_PRODUCER_EPOCH, at);
    const badStart = await produce(
      conn,
      version,
      topic,
      partition,
      idempotentBatch(["z"], { ...bumped, producerEpoch: bumped.producerEpoch + 1 }, 4),
    );
    assert.equal(badStart.errorCode, ERROR_CODES.OUT_OF_ORDER_SEQUENCE_NUMBER, at);

    // A producer this partition never saw, resuming mid-sequence: UNKNOWN_PRODUCER_ID with the
    // log start offset, which clients need to decide to bump their epoch.
    const stranger = await initProducerId(conn, 4);
    const unknown = await produce(
      conn,
      version,
      topic,
      partition,
      idempotentBatch(["u"], stranger, 7),
    );
    assert.equal(unknown.errorCode, ERROR_CODES.UNKNOWN_PRODUCER_ID, at);
    if (version >= 5) assert.equal(unknown.logStartOffset, 0, at);

    assert.deepEqual(await readValues(conn, topic, partition), [
      [0, "a0"],
      [1, "a1"],
      [2, "b0"],
      [3, "c0"],
    ], at);
  }
  const metrics = broker.node.metrics.render();
  assert.match(metrics, /kafscale_produce_duplicate_batches_total 9\b/);
});

Deno.test("Produce: a transactional request with a batch that is not transactional is refused", async () => {
  await using broker = await startTestBroker();
  const conn = await broker.connect();
  await createTopic(conn, "txn", 1);
  const ids = await initProducerId(conn, 4);
  const res = await conn.send(PRODUCE, 9, {
    transactionalId: "txn-1",
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{
      name: "txn",
      partitionData: [{ index: 0, records: idempotentBatch(["t"], ids, 0) }],
    }],
  });
  const p = res!.responses[0].partitionResponses[0];
  assert.equal(p.errorCode, ERROR_CODES.INVALID_RECORD);
  assert.match(p.errorMessage ?? "", /must all be transactional/);
});

// After a restart each partition rebuilds its producers' state from the log tail before an
// idempotent append. Done one partition after another inside the connection's in-order section,
// the first request over many partitions waited for every scan in turn.
Deno.test("Produce: after a restart, an idempotent request's partitions rebuild their producer state together", async () => {
  const partitions = 8;
  let slow = false;
  let reading = 0;
  let maxReading = 0;
  class SlowSegmentReads extends MemoryObjectStore {
    async #timed<T>(key: string, read: () => Promise<T>): Promise<T> {
      if (!slow || !key.endsWith(".kfs")) return await read();
      maxReading = Math.max(maxReading, ++reading);
      try {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return await read();
      } finally {
        reading--;
      }
    }
    override get(key: string) {
      return this.#timed(key, () => super.get(key));
    }
    override getRange(key: string, start: number, endExclusive: number) {
      return this.#timed(key, () => super.getRange(key, start, endExclusive));
    }
  }
  const objectStore = new SlowSegmentReads();
  const metadataStore = new MemoryMetadataStore();
  const request = (ids: { producerId: number; producerEpoch: number }, sequence: number) => ({
    transactionalId: null,
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{
      name: "idem-spread",
      partitionData: Array.from({ length: partitions }, (_, index) => ({
        index,
        records: idempotentBatch([`p${index}-s${sequence}`], ids, sequence),
      })),
    }],
  });
  let ids;
  {
    // A clean stop seals everything: the restarted broker reads its producers from segments.
    await using first = await startTestBroker({ objectStore, metadataStore });
    const conn = await first.connect();
    await createTopic(conn, "idem-spread", partitions);
    const init = await initProducerId(conn, 4);
    ids = { producerId: Number(init.producerId), producerEpoch: init.producerEpoch };
    const res = await conn.send(PRODUCE, 9, request(ids, 0));
    assert.ok(res!.responses[0].partitionResponses.every((p) => p.errorCode === ERROR_CODES.NONE));
  }
  slow = true;
  await using b = await startTestBroker({ objectStore, metadataStore });
  const conn = await b.connect();
  const res = await conn.send(PRODUCE, 9, request(ids, 1));
  assert.deepEqual(
    res!.responses[0].partitionResponses.map((p) => [p.index, p.errorCode, Number(p.baseOffset)]),
    Array.from({ length: partitions }, (_, i) => [i, ERROR_CODES.NONE, 1]),
  );
  assert.equal(maxReading, partitions, "every partition's scan was under way at once");
  for (let p = 0; p < partitions; p++) {
    assert.deepEqual(await readValues(conn, "idem-spread", p), [[0, `p${p}-s0`], [1, `p${p}-s1`]]);
  }
});
