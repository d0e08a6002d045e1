/**
 * Transaction coordinator failover on MinIO + etcd (issue 12): two brokers; a transaction over
 * partitions led by both is decided (PrepareCommit stored) when its coordinator broker dies.
 * The crash point is made exact by SIGKILLing the coordinator first and then storing the
 * decision in etcd, as the coordinator's EndTxn does before it writes any marker. The other
 * broker becomes the id's coordinator once the dead one's lease expires, takes over its
 * partitions, and completes the transaction: every partition gets its COMMIT marker and the
 * records are read committed.
 */
import assert from "node:assert/strict";
import { startBackends, startDistributedBroker } from "../support/distributed.ts";
import { AdminClient } from "../../lib/client/admin.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import {
  BATCH_HEADER_BYTES,
  readVarint,
  readVarlong,
  scanBatches,
} from "../../lib/protocol/record_batch.ts";
import { EtcdMetadataStore } from "../../lib/metadata/etcd_metadata_store.ts";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { decodeRecord, encodeRecord } from "../../lib/coordinator/txn_coordinator.ts";
import { transactionCoordinatorOf } from "../../lib/broker/broker.ts";

const PARTITIONS = 4;
/** The dead broker's session lease (10 s), etcd's rounding, a check round and slack. */
const FAILOVER_MAX_MS = 45_000;

Deno.test("distributed: a transaction decided when its coordinator dies is completed by the other broker", async () => {
  await using backends = await startBackends();
  const one = await startDistributedBroker(backends, { brokerId: 1 });
  await using two = await startDistributedBroker(backends, { brokerId: 2 });
  const connections: KafkaConnection[] = [];
  const store = await EtcdMetadataStore.open({ endpoints: [backends.etcd.endpoint] });
  try {
    // A transactional id that broker 1 coordinates while both are registered.
    let txnId = "";
    for (let i = 0; txnId === ""; i++) {
      if (transactionCoordinatorOf(`dtx-${i}`, [1, 2], 1) === 1) txnId = `dtx-${i}`;
    }
    const admin = await AdminClient.connect(one.bootstrap);
    let leaders: number[];
    try {
      await admin.createTopic("dtx", PARTITIONS, {});
      leaders = (await admin.describeTopics(["dtx"]))[0].partitions.map((p) => p.leader);
    } finally {
      admin.close();
    }
    assert.deepEqual([...new Set(leaders)].sort(), [1, 2], `leaders ${leaders}`);
    const conn1 = await KafkaConnection.connect(one.bootstrap);
    const conn2 = await KafkaConnection.connect(two.bootstrap);
    connections.push(conn1, conn2);
    const coordinator = await conn1.send(API_SCHEMAS[10], 3, { key: txnId, keyType: 1 });
    assert.equal(coordinator!.nodeId, 1);
    const init = (await conn1.send(API_SCHEMAS[22], 4, {
      transactionalId: txnId,
      transactionTimeoutMs: 600_000,
      producerId: -1,
      producerEpoch: -1,
    }))!;
    assert.equal(init.errorCode, E.NONE);
    const ids = { producerId: init.producerId, producerEpoch: init.producerEpoch };
    const added = await conn1.send(API_SCHEMAS[24], 3, {
      v3AndBelowTransactionalId: txnId,
      v3AndBelowProducerId: ids.producerId,
      v3AndBelowProducerEpoch: ids.producerEpoch,
      v3AndBelowTopics: [{ name: "dtx", partitions: [...Array(PARTITIONS).keys()] }],
    });
    assert.deepEqual(
      added!.resultsByTopicV3AndBelow![0].resultsByPartition.map((p) => p.partitionErrorCode),
      Array(PARTITIONS).fill(E.NONE),
    );
    for (let p = 0; p < PARTITIONS; p++) {
      const conn = leaders[p] === 1 ? conn1 : conn2;
      const res = await conn.send(API_SCHEMAS[0], 9, {
        transactionalId: txnId,
        acks: -1,
        timeoutMs: 10_000,
        topicData: [{
          name: "dtx",
          partitionData: [{
            index: p,
            records: encodeRecordBatch(
              [{ key: null, value: new TextEncoder().encode(`p${p}`) }],
              { ...ids, baseSequence: 0, transactional: true },
            ),
          }],
        }],
      });
      assert.equal(res!.responses[0].partitionResponses[0].errorCode, E.NONE, `partition ${p}`);
    }

    // The coordinator dies; the decision it stored before dying is PrepareCommit.
    await one.kill();
    const metadata = new ClusterMetadata(store);
    const entry = (await metadata.getTransaction(txnId))!;
    const record = decodeRecord(entry.value);
    assert.equal(record.state, "Ongoing");
    const decided = { ...record, state: "PrepareCommit" as const, decision: record.decision + 1 };
    assert.notEqual(
      await metadata.putTransactionIfRevision(txnId, encodeRecord(decided), entry.modRevision),
      "conflict",
    );

    const deadline = Date.now() + FAILOVER_MAX_MS;
    let state = "";
    while (Date.now() < deadline) {
      const res = await conn2.send(API_SCHEMAS[65], 0, { transactionalIds: [txnId] });
      state = res!.transactionStates[0].transactionState;
      if (state === "CompleteCommit") break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(state, "CompleteCommit", `not completed within ${FAILOVER_MAX_MS} ms`);
    for (let p = 0; p < PARTITIONS; p++) {
      const res = await conn2.send(API_SCHEMAS[1], 11, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 1 << 20,
        isolationLevel: 1,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [{
          topic: "dtx",
          partitions: [{
            partition: p,
            currentLeaderEpoch: -1,
            fetchOffset: 0,
            logStartOffset: -1,
            partitionMaxBytes: 1 << 20,
          }],
        }],
        forgottenTopicsData: [],
        rackId: "",
      });
      const part = res!.responses[0].partitions[0];
      assert.equal(part.errorCode, E.NONE, `partition ${p}`);
      assert.equal(part.lastStableOffset, 2, `partition ${p}: the record and its marker`);
      const batches = scanBatches(part.records!).batches;
      assert.deepEqual(
        batches.map((b) => [b.baseOffset, b.isControl, b.producerId]),
        [[0, false, ids.producerId], [1, true, ids.producerId]],
        `partition ${p}`,
      );
      // The marker's key is ControlRecordType v0: version 0, type 1 (COMMIT).
      assert.deepEqual(
        markerKey(part.records!, batches[1].position),
        [0, 0, 0, 1],
        `partition ${p}`,
      );
    }
  } finally {
    for (const c of connections) c.close();
    await store.close();
    await one.cleanup();
  }
});

/** The key of the one record of the (uncompressed) control batch at `position`. */
function markerKey(buf: Uint8Array, position: number): number[] {
  const cursor = { pos: position + BATCH_HEADER_BYTES };
  const end = buf.length;
  readVarint(buf, cursor, end); // record length
  cursor.pos++; // attributes
  readVarlong(buf, cursor, end); // timestamp delta
  readVarint(buf, cursor, end); // offset delta
  const keyLength = readVarint(buf, cursor, end);
  return [...buf.subarray(cursor.pos, cursor.pos + keyLength)];
}
