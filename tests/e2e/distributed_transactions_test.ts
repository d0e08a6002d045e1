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
import {
  beginTransaction,
  fetchCommitted,
  produceInTransaction,
  waitForTransactionState,
} from "../support/txn_requests.ts";

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
    const ids = await beginTransaction(conn1, txnId, "dtx", PARTITIONS, 600_000);
    for (let p = 0; p < PARTITIONS; p++) {
      await produceInTransaction(leaders[p] === 1 ? conn1 : conn2, txnId, ids, "dtx", p);
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

    const state = await waitForTransactionState(
      conn2,
      txnId,
      "CompleteCommit",
      FAILOVER_MAX_MS,
      250,
    );
    assert.equal(state, "CompleteCommit", `not completed within ${FAILOVER_MAX_MS} ms`);
    for (let p = 0; p < PARTITIONS; p++) {
      const part = await fetchCommitted(conn2, "dtx", p);
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
