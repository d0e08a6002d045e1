/**
 * Transactions at the broker (issue 12, KIP-98/447/890 part 1) over loopback TCP through the
 * generated codecs: the coordinator APIs at every advertised version, control markers and the
 * last stable offset, read_committed Fetch and ListOffsets, TxnOffsetCommit with require_stable,
 * fencing, late batches and markers, the timeout abort, and state surviving a restart.
 */
import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { decodeRecordBatches, encodeRecordBatch } from "../../lib/protocol/records.ts";
import { scanBatches } from "../../lib/protocol/record_batch.ts";
import type { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import type { Compare, Operation } from "../../lib/metadata/metadata_store.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";

const PRODUCE = API_SCHEMAS[0];
const FETCH = API_SCHEMAS[1];
const LIST_OFFSETS = API_SCHEMAS[2];
const OFFSET_FETCH = API_SCHEMAS[9];
const FIND_COORDINATOR = API_SCHEMAS[10];
const CREATE_TOPICS = API_SCHEMAS[19];
const INIT_PRODUCER_ID = API_SCHEMAS[22];
const ADD_PARTITIONS = API_SCHEMAS[24];
const ADD_OFFSETS = API_SCHEMAS[25];
const END_TXN = API_SCHEMAS[26];
const WRITE_MARKERS = API_SCHEMAS[27];
const TXN_OFFSET_COMMIT = API_SCHEMAS[28];
const DESCRIBE_TXNS = API_SCHEMAS[65];
const LIST_TXNS = API_SCHEMAS[66];

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Ids {
  producerId: number;
  producerEpoch: number;
}

async function createTopic(conn: KafkaConnection, name: string, partitions = 1) {
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
  assert.equal(res!.topics[0].errorCode, E.NONE);
}

async function init(conn: KafkaConnection, id: string, version = 4, timeoutMs = 60_000) {
  return (await conn.send(INIT_PRODUCER_ID, version, {
    transactionalId: id,
    transactionTimeoutMs: timeoutMs,
    producerId: -1,
    producerEpoch: -1,
  }))!;
}

async function addPartitions(
  conn: KafkaConnection,
  id: string,
  ids: Ids,
  topic: string,
  partitions: number[],
  version = 3,
): Promise<number[]> {
  if (version <= 3) {
    const res = await conn.send(ADD_PARTITIONS, version, {
      v3AndBelowTransactionalId: id,
      v3AndBelowProducerId: ids.producerId,
      v3AndBelowProducerEpoch: ids.producerEpoch,
      v3AndBelowTopics: [{ name: topic, partitions }],
    });
    return res!.resultsByTopicV3AndBelow![0].resultsByPartition.map((p) => p.partitionErrorCode);
  }
  const res = await conn.send(ADD_PARTITIONS, version, {
    transactions: [{
      transactionalId: id,
      ...ids,
      verifyOnly: false,
      topics: [{ name: topic, partitions }],
    }],
  });
  return res!.resultsByTransaction![0].topicResults[0].resultsByPartition.map((p) =>
    p.partitionErrorCode
  );
}

async function produceTxn(
  conn: KafkaConnection,
  id: string | null,
  ids: Ids,
  topic: string,
  partition: number,
  values: string[],
  baseSequence: number,
) {
  const records = encodeRecordBatch(
    values.map((v) => ({ key: enc.encode(v), value: enc.encode(v), timestamp: Date.now() })),
    { ...ids, baseSequence, transactional: true },
  );
  const res = await conn.send(PRODUCE, 9, {
    transactionalId: id,
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  });
  return res!.responses[0].partitionResponses[0];
}

async function endTxn(conn: KafkaConnection, id: string, ids: Ids, committed: boolean, v = 3) {
  const res = await conn.send(END_TXN, v, { transactionalId: id, ...ids, committed });
  return res!.errorCode;
}

async function fetchPartition(conn: KafkaConnection, topic: string, isolationLevel: 0 | 1) {
  const res = await conn.send(FETCH, 11, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{
      topic,
      partitions: [{
        partition: 0,
        currentLeaderEpoch: -1,
        fetchOffset: 0,
        logStartOffset: -1,
        partitionMaxBytes: 1 << 20,
      }],
    }],
    forgottenTopicsData: [],
    rackId: "",
  });
  const p = res!.responses[0].partitions[0];
  const records = p.records ?? new Uint8Array(0);
  const batches = scanBatches(records).batches;
  // What a read_committed client keeps: no control records, nothing of an aborted transaction
  // (from its first offset to its producer's next marker).
  const aborted = (p.abortedTransactions ?? []).map((a) => {
    const marker = batches.find((b) =>
      b.isControl && b.producerId === a.producerId && b.baseOffset >= a.firstOffset
    );
    return { ...a, end: marker?.baseOffset ?? Infinity };
  });
  const batchOf = (offset: number) =>
    batches.find((b) => b.baseOffset <= offset && offset <= b.baseOffset + b.lastOffsetDelta)!;
  const data = decodeRecordBatches(records).records
    .filter((r) => {
      const b = batchOf(r.offset);
      if (b.isControl) return false;
      return !aborted.some((a) =>
        a.producerId === b.producerId && a.firstOffset <= r.offset && r.offset < a.end
      );
    })
    .map((r) => ({ offset: r.offset, value: dec.decode(r.value!) }));
  return { part: p, batches, data };
}

async function latest(conn: KafkaConnection, topic: string, isolationLevel: 0 | 1) {
  const res = await conn.send(LIST_OFFSETS, 5, {
    replicaId: -1,
    isolationLevel,
    topics: [{
      name: topic,
      partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1 }],
    }],
  });
  return res!.topics[0].partitions[0].offset;
}

Deno.test("FindCoordinator for a transactional id names this broker at every version", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const port = Number(b.bootstrap.split(":")[1]);
  for (let v = 1; v <= 3; v++) {
    const res = await conn.send(FIND_COORDINATOR, v, { key: "txn-1", keyType: 1 });
    assert.equal(res!.errorCode, E.NONE, `v${v}`);
    assert.equal(res!.port, port);
  }
  const batched = await conn.send(FIND_COORDINATOR, 4, {
    keyType: 1,
    coordinatorKeys: ["txn-1", "txn-2"],
  });
  assert.deepEqual(batched!.coordinators!.map((c) => [c.key, c.errorCode, c.port]), [
    ["txn-1", E.NONE, port],
    ["txn-2", E.NONE, port],
  ]);
});

Deno.test("InitProducerId with a transactional id: epochs, fencing and the timeout bound", async () => {
  await using b = await startTestBroker({ settings: { "transaction-max-timeout-ms": "60000" } });
  const conn = await b.connect();
  await createTopic(conn, "fence");
  for (let v = 0; v <= 5; v++) {
    const first = await init(conn, `init-v${v}`, v);
    assert.equal(first.errorCode, E.NONE, `v${v}`);
    assert.equal(first.producerEpoch, 0);
    const second = await init(conn, `init-v${v}`, v);
    assert.equal(second.producerId, first.producerId, `v${v}: same id`);
    assert.equal(second.producerEpoch, 1, `v${v}: next epoch`);
  }
  const tooLong = await init(conn, "too-long", 4, 60_001);
  assert.equal(tooLong.errorCode, E.INVALID_TRANSACTION_TIMEOUT);
  // The older instance is fenced: PRODUCER_FENCED from v2, INVALID_PRODUCER_EPOCH before.
  const old = await init(conn, "zombie");
  const current = await init(conn, "zombie");
  const oldIds = { producerId: old.producerId, producerEpoch: old.producerEpoch };
  for (let v = 0; v <= 3; v++) {
    const [code] = await addPartitions(conn, "zombie", oldIds, "fence", [0], v);
    assert.equal(code, v >= 2 ? E.PRODUCER_FENCED : E.INVALID_PRODUCER_EPOCH, `v${v}`);
  }
  const ids = { producerId: current.producerId, producerEpoch: current.producerEpoch };
  assert.deepEqual(await addPartitions(conn, "zombie", ids, "fence", [0]), [E.NONE]);
  assert.equal(await endTxn(conn, "zombie", oldIds, true), E.PRODUCER_FENCED);
  // A zombie's batch with the old epoch is refused at the partition.
  const late = await produceTxn(conn, "zombie", oldIds, "fence", 0, ["z"], 0);
  assert.equal(late.errorCode, E.INVALID_PRODUCER_EPOCH);
  // A retried InitProducerId of the current instance (its id and epoch, v3+) bumps again.
  const bumped = (await conn.send(INIT_PRODUCER_ID, 4, {
    transactionalId: "zombie",
    transactionTimeoutMs: 60_000,
    ...ids,
  }))!;
  assert.equal(bumped.errorCode, E.NONE);
  assert.equal(bumped.producerEpoch, ids.producerEpoch + 2, "ongoing aborted (+1), then bumped");
  const stale = (await conn.send(INIT_PRODUCER_ID, 4, {
    transactionalId: "zombie",
    transactionTimeoutMs: 60_000,
    ...oldIds,
  }))!;
  assert.equal(stale.errorCode, E.PRODUCER_FENCED);
});

Deno.test("Commit and abort: markers, the last stable offset and read_committed reads", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "txn-data");
  const r = await init(conn, "t1");
  const ids = { producerId: r.producerId, producerEpoch: r.producerEpoch };
  // A batch before AddPartitionsToTxn is refused (KIP-890 verification).
  const early = await produceTxn(conn, "t1", ids, "txn-data", 0, ["x"], 0);
  assert.equal(early.errorCode, E.INVALID_TXN_STATE);
  // Transaction 1: committed.
  assert.deepEqual(await addPartitions(conn, "t1", ids, "txn-data", [0], 4), [E.NONE]);
  const p1 = await produceTxn(conn, "t1", ids, "txn-data", 0, ["a1", "a2"], 0);
  assert.equal(p1.errorCode, E.NONE);
  let f = await fetchPartition(conn, "txn-data", 1);
  assert.equal(f.part.lastStableOffset, 0, "open transaction holds the LSO");
  assert.equal(f.part.highWatermark, 2);
  assert.deepEqual(f.data, [], "nothing undecided is read committed");
  assert.equal(await latest(conn, "txn-data", 1), 0);
  assert.equal(await latest(conn, "txn-data", 0), 2);
  f = await fetchPartition(conn, "txn-data", 0);
  assert.deepEqual(f.data.map((d) => d.value), ["a1", "a2"]);
  assert.equal(await endTxn(conn, "t1", ids, true), E.NONE);
  assert.equal(await endTxn(conn, "t1", ids, true), E.NONE, "a retried commit succeeds");
  assert.equal(await endTxn(conn, "t1", ids, false), E.INVALID_TXN_STATE);
  f = await fetchPartition(conn, "txn-data", 1);
  assert.equal(f.part.lastStableOffset, 3, "two records and the COMMIT marker");
  assert.deepEqual(f.data.map((d) => d.value), ["a1", "a2"]);
  const marker = f.batches[f.batches.length - 1];
  assert.ok(marker.isControl && marker.isTransactional);
  assert.equal(marker.producerId, ids.producerId);
  assert.deepEqual(f.part.abortedTransactions, []);
  // Transaction 2: aborted.
  assert.deepEqual(await addPartitions(conn, "t1", ids, "txn-data", [0]), [E.NONE]);
  assert.equal((await produceTxn(conn, "t1", ids, "txn-data", 0, ["b1"], 2)).errorCode, E.NONE);
  assert.equal(await endTxn(conn, "t1", ids, false), E.NONE);
  // Transaction 3: committed.
  assert.deepEqual(await addPartitions(conn, "t1", ids, "txn-data", [0]), [E.NONE]);
  assert.equal((await produceTxn(conn, "t1", ids, "txn-data", 0, ["c1"], 3)).errorCode, E.NONE);
  assert.equal(await endTxn(conn, "t1", ids, true), E.NONE);
  f = await fetchPartition(conn, "txn-data", 1);
  assert.equal(f.part.lastStableOffset, 7);
  assert.deepEqual(f.part.abortedTransactions, [{ producerId: ids.producerId, firstOffset: 3 }]);
  assert.equal(await latest(conn, "txn-data", 1), 7);
  assert.deepEqual(f.data.map((d) => d.value), ["a1", "a2", "c1"]);
  // read_uncommitted lists no aborted transactions and returns everything.
  f = await fetchPartition(conn, "txn-data", 0);
  assert.equal(f.part.abortedTransactions, null);
  assert.deepEqual(f.data.map((d) => d.value), ["a1", "a2", "b1", "c1"]);
  // A late batch of the ended transaction is refused; nothing is appended.
  const late = await produceTxn(conn, "t1", ids, "txn-data", 0, ["late"], 4);
  assert.equal(late.errorCode, E.INVALID_TXN_STATE);
  assert.equal(await latest(conn, "txn-data", 0), 7);
});

Deno.test("AddPartitionsToTxn v4-5 verifyOnly answers whether partitions are in the ongoing transaction, changing nothing", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "verify", 2);
  const r = await init(conn, "vo");
  const ids = { producerId: r.producerId, producerEpoch: r.producerEpoch };
  const verify = async (v: number, partitions: number[]) => {
    const res = await conn.send(ADD_PARTITIONS, v, {
      transactions: [{
        transactionalId: "vo",
        ...ids,
        verifyOnly: true,
        topics: [{ name: "verify", partitions }],
      }],
    });
    return res!.resultsByTransaction![0].topicResults[0].resultsByPartition.map((p) =>
      p.partitionErrorCode
    );
  };
  for (const v of [4, 5]) {
    assert.deepEqual(await verify(v, [0]), [E.INVALID_TXN_STATE], `v${v}: nothing added yet`);
  }
  assert.deepEqual(await addPartitions(conn, "vo", ids, "verify", [0], 5), [E.NONE]);
  for (const v of [4, 5]) {
    assert.deepEqual(await verify(v, [0]), [E.NONE], `v${v}`);
    assert.deepEqual(await verify(v, [0, 1]), [E.INVALID_TXN_STATE, E.INVALID_TXN_STATE]);
  }
  const described = await conn.send(DESCRIBE_TXNS, 0, { transactionalIds: ["vo"] });
  assert.deepEqual(described!.transactionStates[0].topics, [{ topic: "verify", partitions: [0] }]);
});

Deno.test("WriteTxnMarkers applies a decision once: a repeated or older one is not appended", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "markers");
  const r = await init(conn, "m1");
  const ids = { producerId: r.producerId, producerEpoch: r.producerEpoch };
  assert.deepEqual(await addPartitions(conn, "m1", ids, "markers", [0]), [E.NONE]);
  await produceTxn(conn, "m1", ids, "markers", 0, ["v"], 0);
  assert.equal(await endTxn(conn, "m1", ids, true), E.NONE); // decision 1 -> offset 1
  for (const v of [0, 1]) {
    for (const decision of [1, 0]) {
      const res = await conn.send(WRITE_MARKERS, v, {
        markers: [{
          ...ids,
          transactionResult: true,
          coordinatorEpoch: decision,
          topics: [{ name: "markers", partitionIndexes: [0] }],
        }],
      });
      assert.equal(res!.markers[0].topics[0].partitions[0].errorCode, E.NONE);
    }
  }
  assert.equal(await latest(conn, "markers", 0), 2, "no second marker appended");
  // A new decision number is appended (the broker-to-broker path of a coordinator elsewhere).
  const res = await conn.send(WRITE_MARKERS, 1, {
    markers: [{
      ...ids,
      transactionResult: false,
      coordinatorEpoch: 5,
      topics: [{ name: "markers", partitionIndexes: [0] }, { name: "nope", partitionIndexes: [0] }],
    }],
  });
  assert.deepEqual(
    res!.markers[0].topics.map((t) => t.partitions[0].errorCode),
    [E.NONE, E.NONE],
    "a deleted or unknown topic needs no marker",
  );
  assert.equal(await latest(conn, "markers", 0), 3);
});

Deno.test("TxnOffsetCommit: offsets visible only on commit, UNSTABLE_OFFSET_COMMIT meanwhile", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "in");
  const fetchOffsets = async (requireStable: boolean) =>
    (await conn.send(OFFSET_FETCH, 7, {
      groupId: "g1",
      topics: [{ name: "in", partitionIndexes: [0] }],
      requireStable,
    }))!.topics![0].partitions[0];
  for (const commit of [false, true]) {
    const r = await init(conn, "o1");
    const ids = { producerId: r.producerId, producerEpoch: r.producerEpoch };
    const offset = commit ? 42 : 17;
    const early = await conn.send(TXN_OFFSET_COMMIT, 3, {
      transactionalId: "o1",
      groupId: "g1",
      ...ids,
      generationIdOrMemberEpoch: -1,
      memberId: "",
      groupInstanceId: null,
      topics: [{
        name: "in",
        partitions: [{
          partitionIndex: 0,
          committedOffset: offset,
          committedLeaderEpoch: -1,
          committedMetadata: null,
        }],
      }],
    });
    assert.equal(early!.topics[0].partitions[0].errorCode, E.INVALID_TXN_STATE, "group not added");
    for (let v = 0; v <= 4; v++) {
      const add = await conn.send(ADD_OFFSETS, v, { transactionalId: "o1", ...ids, groupId: "g1" });
      assert.equal(add!.errorCode, E.NONE, `AddOffsetsToTxn v${v}`);
    }
    for (let v = 0; v <= 4; v++) {
      const res = await conn.send(TXN_OFFSET_COMMIT, v, {
        transactionalId: "o1",
        groupId: "g1",
        ...ids,
        generationIdOrMemberEpoch: -1,
        memberId: "",
        groupInstanceId: null,
        topics: [{
          name: "in",
          partitions: [{
            partitionIndex: 0,
            committedOffset: offset,
            committedLeaderEpoch: -1,
            committedMetadata: "m",
          }],
        }],
      });
      assert.equal(res!.topics[0].partitions[0].errorCode, E.NONE, `TxnOffsetCommit v${v}`);
    }
    assert.equal((await fetchOffsets(true)).errorCode, E.UNSTABLE_OFFSET_COMMIT);
    assert.equal((await fetchOffsets(false)).committedOffset, commit ? -1 : -1);
    assert.equal(await endTxn(conn, "o1", ids, commit), E.NONE);
    const after = await fetchOffsets(true);
    assert.equal(after.errorCode, E.NONE);
    assert.equal(after.committedOffset, commit ? 42 : -1, commit ? "committed" : "aborted");
  }
});

Deno.test("DescribeTransactions and ListTransactions report the coordinator's records", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "d", 2);
  const r = await init(conn, "d1");
  const ids = { producerId: r.producerId, producerEpoch: r.producerEpoch };
  await init(conn, "d2");
  assert.deepEqual(await addPartitions(conn, "d1", ids, "d", [0, 1]), [E.NONE, E.NONE]);
  const described = await conn.send(DESCRIBE_TXNS, 0, { transactionalIds: ["d1", "nope"] });
  const [d1, nope] = described!.transactionStates;
  assert.equal(d1.transactionState, "Ongoing");
  assert.equal(d1.producerId, ids.producerId);
  assert.deepEqual(d1.topics, [{ topic: "d", partitions: [0, 1] }]);
  assert.ok(d1.transactionStartTimeMs > 0);
  assert.equal(nope.errorCode, E.TRANSACTIONAL_ID_NOT_FOUND);
  for (const v of [0, 1]) {
    const all = await conn.send(LIST_TXNS, v, {
      stateFilters: [],
      producerIdFilters: [],
      durationFilter: -1,
    });
    assert.deepEqual(
      all!.transactionStates.map((t) => [t.transactionalId, t.transactionState]).sort(),
      [["d1", "Ongoing"], ["d2", "Empty"]],
    );
    const filtered = await conn.send(LIST_TXNS, v, {
      stateFilters: ["Ongoing", "Bogus"],
      producerIdFilters: [],
      durationFilter: -1,
    });
    assert.deepEqual(filtered!.transactionStates.map((t) => t.transactionalId), ["d1"]);
    assert.deepEqual(filtered!.unknownStateFilters, ["Bogus"]);
  }
});

Deno.test("A transaction past its timeout is aborted by the coordinator and its producer fenced", async () => {
  await using b = await startTestBroker({
    settings: { "transaction-check-interval-ms": "50", "transaction-max-timeout-ms": "60000" },
  });
  const conn = await b.connect();
  await createTopic(conn, "slow");
  const r = await init(conn, "slow1", 4, 1_000);
  const ids = { producerId: r.producerId, producerEpoch: r.producerEpoch };
  assert.deepEqual(await addPartitions(conn, "slow1", ids, "slow", [0]), [E.NONE]);
  await produceTxn(conn, "slow1", ids, "slow", 0, ["s"], 0);
  const deadline = Date.now() + 20_000;
  let f = await fetchPartition(conn, "slow", 1);
  while (f.part.lastStableOffset !== 2 && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 50));
    f = await fetchPartition(conn, "slow", 1);
  }
  assert.equal(f.part.lastStableOffset, 2, "aborted: the record and the ABORT marker are stable");
  assert.deepEqual(f.data, []);
  assert.deepEqual(f.part.abortedTransactions, [{ producerId: ids.producerId, firstOffset: 0 }]);
  assert.equal(await endTxn(conn, "slow1", ids, true), E.PRODUCER_FENCED);
});

Deno.test("Open and aborted transactions survive a restart on the same stores", async () => {
  const metadataStore = new MemoryMetadataStore();
  const objectStore = new MemoryObjectStore();
  let ids: Ids;
  {
    await using b = await startTestBroker({ metadataStore, objectStore });
    const conn = await b.connect();
    await createTopic(conn, "keep");
    const r = await init(conn, "k1");
    ids = { producerId: r.producerId, producerEpoch: r.producerEpoch };
    assert.deepEqual(await addPartitions(conn, "k1", ids, "keep", [0]), [E.NONE]);
    await produceTxn(conn, "k1", ids, "keep", 0, ["aborted"], 0);
    assert.equal(await endTxn(conn, "k1", ids, false), E.NONE);
    assert.deepEqual(await addPartitions(conn, "k1", ids, "keep", [0]), [E.NONE]);
    await produceTxn(conn, "k1", ids, "keep", 0, ["open"], 1);
  }
  await using b = await startTestBroker({ metadataStore, objectStore });
  const conn = await b.connect();
  let f = await fetchPartition(conn, "keep", 1);
  assert.equal(f.part.lastStableOffset, 2, "the open transaction still holds the LSO");
  assert.deepEqual(f.part.abortedTransactions, [{ producerId: ids.producerId, firstOffset: 0 }]);
  assert.deepEqual(f.data, []);
  // The transaction left open is completed by the coordinator on the restarted broker.
  assert.equal(await endTxn(conn, "k1", ids, true), E.NONE);
  f = await fetchPartition(conn, "keep", 1);
  assert.deepEqual(f.data.map((d) => d.value), ["open"]);
  await metadataStore.close();
  await objectStore.close();
});

Deno.test("Transactions V2 (KIP-890 part 2): the feature, Produce v12 adds partitions, EndTxn v5 bumps the epoch and fences late batches", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await createTopic(conn, "tv2", 2);
  const versions = await conn.send(API_SCHEMAS[18], 3, {
    clientSoftwareName: "test",
    clientSoftwareVersion: "1",
  });
  assert.deepEqual(versions!.finalizedFeatures, [
    { name: "transaction.version", maxVersionLevel: 2, minVersionLevel: 2 },
  ]);
  const r = await init(conn, "v2");
  let ids = { producerId: r.producerId, producerEpoch: r.producerEpoch };
  // No AddPartitionsToTxn: Produce v12 adds each partition to the transaction.
  const produceV12 = async (partition: number, value: string, seq: number, epoch = ids) => {
    const records = encodeRecordBatch([{ key: enc.encode(value), value: enc.encode(value) }], {
      ...epoch,
      baseSequence: seq,
      transactional: true,
    });
    const res = await conn.send(PRODUCE, 12, {
      transactionalId: "v2",
      acks: -1,
      timeoutMs: 10_000,
      topicData: [{ name: "tv2", partitionData: [{ index: partition, records }] }],
    });
    return res!.responses[0].partitionResponses[0].errorCode;
  };
  assert.equal(await produceV12(0, "a", 0), E.NONE);
  assert.equal(await produceV12(1, "b", 0), E.NONE);
  const described = await conn.send(DESCRIBE_TXNS, 0, { transactionalIds: ["v2"] });
  assert.deepEqual(described!.transactionStates[0].topics, [{ topic: "tv2", partitions: [0, 1] }]);
  // TxnOffsetCommit v5 adds the group itself (no AddOffsetsToTxn).
  const offsets = await conn.send(TXN_OFFSET_COMMIT, 5, {
    transactionalId: "v2",
    groupId: "g-v2",
    ...ids,
    generationIdOrMemberEpoch: -1,
    memberId: "",
    groupInstanceId: null,
    topics: [{
      name: "tv2",
      partitions: [{
        partitionIndex: 0,
        committedOffset: 1,
        committedLeaderEpoch: -1,
        committedMetadata: null,
      }],
    }],
  });
  assert.equal(offsets!.topics[0].partitions[0].errorCode, E.NONE);
  const ended = (await conn.send(END_TXN, 5, { transactionalId: "v2", ...ids, committed: true }))!;
  assert.equal(ended.errorCode, E.NONE);
  assert.equal(ended.producerId, ids.producerId);
  assert.equal(ended.producerEpoch, ids.producerEpoch + 1, "a new epoch per transaction");
  // A retry from the old epoch gets the same answer.
  const retried =
    (await conn.send(END_TXN, 5, { transactionalId: "v2", ...ids, committed: true }))!;
  assert.deepEqual([retried.errorCode, retried.producerEpoch], [E.NONE, ids.producerEpoch + 1]);
  const f = await fetchPartition(conn, "tv2", 1);
  const marker = f.batches.at(-1)!;
  assert.ok(marker.isControl);
  assert.equal(marker.producerEpoch, ids.producerEpoch + 1, "the marker carries the new epoch");
  assert.deepEqual(f.data.map((d) => d.value), ["a"]);
  const old = ids;
  ids = { producerId: ended.producerId, producerEpoch: ended.producerEpoch };
  // A late batch of the ended transaction (old epoch): the coordinator refuses to add it.
  assert.equal(await produceV12(0, "late", 1, old), E.PRODUCER_FENCED);
  // The next transaction goes on with the new epoch, sequences from 0.
  assert.equal(await produceV12(0, "c", 0), E.NONE);
  // With that transaction open on the partition, a late batch is not checked with the
  // coordinator: the partition's own epoch fences it.
  assert.equal(await produceV12(0, "late", 1, old), E.INVALID_PRODUCER_EPOCH);
  const aborted =
    (await conn.send(END_TXN, 5, { transactionalId: "v2", ...ids, committed: false }))!;
  assert.deepEqual([aborted.errorCode, aborted.producerEpoch], [E.NONE, ids.producerEpoch + 1]);
  const after = await fetchPartition(conn, "tv2", 1);
  assert.deepEqual(after.data.map((d) => d.value), ["a"], "the aborted record is dropped");
  // With nothing open, an abort still bumps the epoch (a client whose produces all failed);
  // a commit is refused.
  ids = { producerId: aborted.producerId!, producerEpoch: aborted.producerEpoch! };
  const empty = (await conn.send(END_TXN, 5, { transactionalId: "v2", ...ids, committed: false }))!;
  assert.deepEqual([empty.errorCode, empty.producerEpoch], [E.NONE, ids.producerEpoch + 1]);
  ids = { producerId: empty.producerId!, producerEpoch: empty.producerEpoch! };
  const emptyCommit = await conn.send(END_TXN, 5, {
    transactionalId: "v2",
    ...ids,
    committed: true,
  });
  assert.equal(emptyCommit!.errorCode, E.INVALID_TXN_STATE);
});

Deno.test("A transactional id idle past transactional.id.expiration.ms is forgotten; an open one is not", async () => {
  await using b = await startTestBroker({
    settings: {
      "transaction-check-interval-ms": "50",
      "transactional-id-expiration-ms": "1000",
    },
  });
  const conn = await b.connect();
  await createTopic(conn, "exp");
  await init(conn, "idle");
  const busy = await init(conn, "busy", 4, 60_000);
  assert.deepEqual(
    await addPartitions(conn, "busy", { producerId: busy.producerId, producerEpoch: 0 }, "exp", [
      0,
    ]),
    [E.NONE],
  );
  const deadline = Date.now() + 20_000;
  let ids: string[] = [];
  do {
    await new Promise((r) => setTimeout(r, 100));
    const all = await conn.send(LIST_TXNS, 1, {
      stateFilters: [],
      producerIdFilters: [],
      durationFilter: -1,
    });
    ids = all!.transactionStates.map((t) => t.transactionalId).sort();
  } while (ids.includes("idle") && Date.now() < deadline);
  assert.deepEqual(ids, ["busy"], "the idle id expired; the one with an open transaction stays");
});

// Kafka verifies (and, in V2, adds) a produce request's partitions with one AddPartitionsToTxn
// per request. One coordinator write per partition ran one after another (the coordinator
// serialises a transactional id), so a transaction's first produce to many partitions waited
// for each in turn.
Deno.test("Transactions V2: a Produce v12 request joins all its new partitions to the transaction in one write", async () => {
  let txnWrites = 0;
  class CountingTxnWrites extends MemoryMetadataStore {
    override txn(compares: Compare[], success: Operation[], failure?: Operation[]) {
      if (success.some((op) => op.op === "put" && op.key.includes("txns/many"))) txnWrites++;
      return super.txn(compares, success, failure);
    }
  }
  await using b = await startTestBroker({ metadataStore: new CountingTxnWrites() });
  const conn = await b.connect();
  const partitions = 6;
  await createTopic(conn, "tv2-many", partitions);
  const r = await init(conn, "many");
  const ids = { producerId: r.producerId, producerEpoch: r.producerEpoch };
  const produce = (sequence: number) =>
    conn.send(PRODUCE, 12, {
      transactionalId: "many",
      acks: -1,
      timeoutMs: 10_000,
      topicData: [{
        name: "tv2-many",
        partitionData: Array.from({ length: partitions }, (_, index) => ({
          index,
          records: encodeRecordBatch([{ key: null, value: enc.encode(`v${index}-${sequence}`) }], {
            ...ids,
            baseSequence: sequence,
            transactional: true,
          }),
        })),
      }],
    });
  const before = txnWrites;
  const first = await produce(0);
  assert.deepEqual(
    first!.responses[0].partitionResponses.map((p) => [p.index, p.errorCode]),
    Array.from({ length: partitions }, (_, i) => [i, E.NONE]),
  );
  assert.equal(txnWrites - before, 1, "one coordinator write added every partition");
  const described = await conn.send(DESCRIBE_TXNS, 0, { transactionalIds: ["many"] });
  assert.deepEqual(described!.transactionStates[0].topics, [{
    topic: "tv2-many",
    partitions: Array.from({ length: partitions }, (_, i) => i),
  }]);
  // The partitions are in the transaction now: the next request writes nothing to the coordinator.
  const second = await produce(1);
  assert.ok(second!.responses[0].partitionResponses.every((p) => p.errorCode === E.NONE));
  assert.equal(txnWrites - before, 1);
  const ended = await conn.send(END_TXN, 5, { transactionalId: "many", ...ids, committed: true });
  assert.equal(ended!.errorCode, E.NONE);
  const committed = await fetchPartition(conn, "tv2-many", 1);
  assert.deepEqual(committed.data.map((d) => d.value), ["v0-0", "v0-1"]);
  assert.ok(committed.batches.at(-1)!.isControl, "the commit marker follows");
});
