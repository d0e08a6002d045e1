/**
 * Fetch handler regressions, named after the bug each pins.
 */
import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { ZERO_UUID } from "../../lib/protocol/primitives.ts";
import { decodeRecordBatches, encodeRecordBatch } from "../../lib/protocol/records.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { HANDLERS } from "../../lib/broker/handler_table.ts";

const PRODUCE = API_SCHEMAS[0];
const FETCH = API_SCHEMAS[1];
const CREATE_TOPICS = API_SCHEMAS[19];
const enc = new TextEncoder();

// librdkafka reads a null records field as a MessageSetSize of -1 and drops the
// whole Fetch response (librdkafka test 0034): OFFSET_OUT_OF_RANGE never reached
// the consumer, so auto.offset.reset never fired. Kafka sends empty records.
Deno.test("Fetch: partitions with an error carry empty records, never null (librdkafka 0034)", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const created = await conn.send(CREATE_TOPICS, 7, {
    topics: [{
      name: "err",
      numPartitions: 1,
      replicationFactor: 1,
      assignments: [],
      configs: [],
    }],
    timeoutMs: 10_000,
  });
  const topicId = created!.topics[0].topicId ?? ZERO_UUID;
  const produced = await conn.send(PRODUCE, 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{
      name: "err",
      partitionData: [{
        index: 0,
        records: encodeRecordBatch([{ key: null, value: enc.encode("v"), timestamp: 1 }]),
      }],
    }],
  });
  assert.equal(produced!.responses[0].partitionResponses[0].errorCode, 0);
  const fetchHandler = HANDLERS.get(1)!;
  for (let version = fetchHandler.minVersion; version <= fetchHandler.maxVersion; version++) {
    const byId = version >= 13;
    const res = await conn.send(FETCH, version, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1024 * 1024,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [
        {
          topic: "err",
          topicId,
          partitions: [
            // Beyond the end: OFFSET_OUT_OF_RANGE.
            { partition: 0, fetchOffset: 99, partitionMaxBytes: 65536 },
            // A partition that does not exist.
            { partition: 7, fetchOffset: 0, partitionMaxBytes: 65536 },
          ],
        },
        {
          topic: "missing",
          topicId: "AAAAAAAAAAAAAAAAAAAAAQ",
          partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 65536 }],
        },
      ],
      forgottenTopicsData: [],
      rackId: "",
    });
    const parts = res!.responses.flatMap((t) => t.partitions);
    assert.deepEqual(
      parts.map((p) => p.errorCode),
      [
        ERROR_CODES.OFFSET_OUT_OF_RANGE,
        ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION,
        byId ? ERROR_CODES.UNKNOWN_TOPIC_ID : ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION,
      ],
      `v${version}`,
    );
    for (const p of parts) {
      assert.notEqual(p.records, null, `v${version}: records of an error partition are not null`);
      assert.equal(p.records!.byteLength, 0);
    }
    assert.equal(parts[0].highWatermark, 1, `v${version}: the high watermark comes with the error`);
  }
});

/** Counts whole-object GETs of segment files: what a read that loads a whole segment costs. */
class CountingStore extends MemoryObjectStore {
  segmentGets = 0;
  override get(key: string): Promise<Uint8Array | null> {
    if (key.endsWith(".kfs")) this.segmentGets++;
    return super.get(key);
  }
}

const WIDE_PARTITIONS = 20;
const BATCH_VALUE_BYTES = 40 * 1024;

/** A topic of WIDE_PARTITIONS partitions, each with two ~40 KiB batches, sealed by a clean stop. */
async function wideSealedTopic(stores: {
  objectStore: CountingStore;
  metadataStore: MemoryMetadataStore;
}): Promise<void> {
  await using b = await startTestBroker(stores);
  const conn = await b.connect();
  const created = await conn.send(CREATE_TOPICS, 7, {
    topics: [{
      name: "wide",
      numPartitions: WIDE_PARTITIONS,
      replicationFactor: 1,
      assignments: [],
      configs: [],
    }],
    timeoutMs: 10_000,
  });
  assert.equal(created!.topics[0].errorCode, 0);
  for (let round = 0; round < 2; round++) {
    const produced = await conn.send(PRODUCE, 9, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 10_000,
      topicData: [{
        name: "wide",
        partitionData: Array.from({ length: WIDE_PARTITIONS }, (_, index) => ({
          index,
          records: encodeRecordBatch([{
            key: null,
            value: new Uint8Array(BATCH_VALUE_BYTES).fill(round + 1),
            timestamp: 1,
          }]),
        })),
      }],
    });
    for (const p of produced!.responses[0].partitionResponses) assert.equal(p.errorCode, 0);
  }
}

function fetchWide(maxBytes: number, partitionMaxBytes: number) {
  return {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{
      topic: "wide",
      partitions: Array.from({ length: WIDE_PARTITIONS }, (_, partition) => ({
        partition,
        fetchOffset: 0,
        partitionMaxBytes,
      })),
    }],
    forgottenTopicsData: [],
    rackId: "",
  };
}

function batchCounts(res: { responses: { partitions: { records: Uint8Array | null }[] }[] }) {
  return res.responses[0].partitions.map((p) =>
    p.records && p.records.byteLength > 0 ? decodeRecordBatches(p.records).batches.length : 0
  );
}

// With 1,000 partitions a librdkafka consumer read 5 to 25 times slower than with 8: once a
// response was nearly full, every later partition was still read with the few bytes left, and a
// read of a small sealed segment loads (and CRC-checks) the whole object before it finds that
// its next batch does not fit. Every request loaded every partition's segment for nothing.
Deno.test("Fetch: once a partition's next batch does not fit the response, later partitions are not read (as Kafka)", async () => {
  const stores = { objectStore: new CountingStore(), metadataStore: new MemoryMetadataStore() };
  await wideSealedTopic(stores);
  await using b = await startTestBroker(stores);
  const conn = await b.connect();
  stores.objectStore.segmentGets = 0;
  // Room for partition 0's two batches and a little: partition 1's first batch does not fit.
  const res = await conn.send(FETCH, 12, fetchWide(2 * BATCH_VALUE_BYTES + 10_000, 1 << 20));
  const counts = batchCounts(res!);
  assert.deepEqual(counts, [2, ...new Array(WIDE_PARTITIONS - 1).fill(0)]);
  for (const p of res!.responses[0].partitions) {
    assert.equal(p.errorCode, 0);
    assert.equal(p.highWatermark, 2, "partitions not read still carry their high watermark");
  }
  // Partition 0's segment, and partition 1's (read to find its batch too big); none of the rest.
  assert.ok(
    stores.objectStore.segmentGets <= 2,
    `${stores.objectStore.segmentGets} segment GETs for a response that holds one partition`,
  );

  // A partition stopped by its own limit (partitionMaxBytes) leaves the rest of the response to
  // the partitions after it: each gets its first batch.
  const perPartition = await conn.send(
    FETCH,
    12,
    fetchWide(WIDE_PARTITIONS * 2 * BATCH_VALUE_BYTES, BATCH_VALUE_BYTES + 1_000),
  );
  assert.deepEqual(batchCounts(perPartition!), new Array(WIDE_PARTITIONS).fill(1));
});

Deno.test("Fetch: --fetch-max-bytes caps a response below what the request asks, never below one batch", async () => {
  const stores = { objectStore: new CountingStore(), metadataStore: new MemoryMetadataStore() };
  await wideSealedTopic(stores);
  await using b = await startTestBroker({
    ...stores,
    settings: { "fetch-max-bytes": String(BATCH_VALUE_BYTES + 10_000) },
  });
  const conn = await b.connect();
  const res = await conn.send(FETCH, 12, fetchWide(50 << 20, 1 << 20));
  assert.deepEqual(batchCounts(res!), [1, ...new Array(WIDE_PARTITIONS - 1).fill(0)]);

  await using small = await startTestBroker({ ...stores, settings: { "fetch-max-bytes": "1024" } });
  const c2 = await small.connect();
  const one = await c2.send(FETCH, 12, fetchWide(50 << 20, 1 << 20));
  assert.deepEqual(
    batchCounts(one!),
    [1, ...new Array(WIDE_PARTITIONS - 1).fill(0)],
    "the first batch goes out whatever the cap (KIP-74)",
  );
});
