/**
 * A transaction driven request by request over the project's client (lib/client), for tests
 * that run one across brokers: begin it on its coordinator over every partition of a topic,
 * write one record per partition to the partition's leader, wait for a state, and read a
 * partition committed. Each step asserts that the broker accepted it.
 */
import assert from "node:assert/strict";
import type { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";

export interface ProducerIds {
  producerId: number;
  producerEpoch: number;
}

/** InitProducerId and AddPartitionsToTxn (v3) for partitions 0..partitions-1 of `topic`. */
export async function beginTransaction(
  coordinator: KafkaConnection,
  txnId: string,
  topic: string,
  partitions: number,
  timeoutMs: number,
): Promise<ProducerIds> {
  const init = (await coordinator.send(API_SCHEMAS[22], 4, {
    transactionalId: txnId,
    transactionTimeoutMs: timeoutMs,
    producerId: -1,
    producerEpoch: -1,
  }))!;
  assert.equal(init.errorCode, E.NONE);
  const ids = { producerId: init.producerId, producerEpoch: init.producerEpoch };
  const added = await coordinator.send(API_SCHEMAS[24], 3, {
    v3AndBelowTransactionalId: txnId,
    v3AndBelowProducerId: ids.producerId,
    v3AndBelowProducerEpoch: ids.producerEpoch,
    v3AndBelowTopics: [{ name: topic, partitions: [...Array(partitions).keys()] }],
  });
  assert.deepEqual(
    added!.resultsByTopicV3AndBelow![0].resultsByPartition.map((p) => p.partitionErrorCode),
    Array(partitions).fill(E.NONE),
  );
  return ids;
}

/** Produces the record `p<partition>` in the transaction, with acks=all, to `leader`. */
export async function produceInTransaction(
  leader: KafkaConnection,
  txnId: string,
  ids: ProducerIds,
  topic: string,
  partition: number,
): Promise<void> {
  const res = await leader.send(API_SCHEMAS[0], 9, {
    transactionalId: txnId,
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{
      name: topic,
      partitionData: [{
        index: partition,
        records: encodeRecordBatch(
          [{ key: null, value: new TextEncoder().encode(`p${partition}`) }],
          { ...ids, baseSequence: 0, transactional: true },
        ),
      }],
    }],
  });
  assert.equal(res!.responses[0].partitionResponses[0].errorCode, E.NONE, `partition ${partition}`);
}

/** Polls DescribeTransactions until the id is in `state`; returns the last state seen. */
export async function waitForTransactionState(
  conn: KafkaConnection,
  txnId: string,
  state: string,
  deadlineMs: number,
  pollMs: number,
): Promise<string> {
  const deadline = Date.now() + deadlineMs;
  let seen = "";
  while (Date.now() < deadline) {
    const res = await conn.send(API_SCHEMAS[65], 0, { transactionalIds: [txnId] });
    seen = res!.transactionStates[0].transactionState;
    if (seen === state) break;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return seen;
}

/** Fetch (v11, read_committed, no wait) of a partition from offset 0: its one answer. */
export async function fetchCommitted(conn: KafkaConnection, topic: string, partition: number) {
  const res = await conn.send(API_SCHEMAS[1], 11, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel: 1,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{
      topic,
      partitions: [{
        partition,
        currentLeaderEpoch: -1,
        fetchOffset: 0,
        logStartOffset: -1,
        partitionMaxBytes: 1 << 20,
      }],
    }],
    forgottenTopicsData: [],
    rackId: "",
  });
  return res!.responses[0].partitions[0];
}
