/**
 * AddPartitionsToTxn (24), versions 0-5: partitions join the producer's transaction before
 * it writes to them. v0-3 carry one transaction; v4+ batch several and add `verifyOnly`
 * (brokers asking whether a partition is already in the transaction, KIP-890). Unknown
 * topics or partitions fail with UNKNOWN_TOPIC_OR_PARTITION and the rest of that
 * transaction's partitions with OPERATION_NOT_ATTEMPTED, as Kafka answers.
 */
import {
  ADD_PARTITIONS_TO_TXN_REQUEST,
  type AddPartitionsToTxnRequest,
  type AddPartitionsToTxnTopic,
} from "../protocol/generated/add_partitions_to_txn_request.ts";
import {
  ADD_PARTITIONS_TO_TXN_RESPONSE,
  type AddPartitionsToTxnResponse,
  type AddPartitionsToTxnTopicResult,
} from "../protocol/generated/add_partitions_to_txn_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import type { TopicPartitionRef } from "../metadata/cluster_metadata.ts";
import { defineHandler, type RequestContext } from "./handler.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { forVersion } from "./txn_errors.ts";

async function addOne(
  ctx: RequestContext,
  apiVersion: number,
  txn: {
    transactionalId: string;
    producerId: number;
    producerEpoch: number;
    verifyOnly: boolean;
    topics: AddPartitionsToTxnTopic[];
  },
): Promise<AddPartitionsToTxnTopicResult[]> {
  const broker = ctx.broker;
  const unknown = new Set<string>();
  const partitions: TopicPartitionRef[] = [];
  for (const t of txn.topics) {
    let topic = null;
    try {
      topic = await broker.topic(t.name);
    } catch {
      topic = null;
    }
    for (const p of t.partitions) {
      if (!topic || p < 0 || p >= topic.partitions) unknown.add(`${t.name}\u0000${p}`);
      else partitions.push({ topic: t.name, partition: p });
    }
  }
  let code: number;
  if (!can(ctx, OP.WRITE, RT.TRANSACTIONAL_ID, txn.transactionalId)) {
    code = ERROR_CODES.TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
  } else if (partitions.some((p) => !can(ctx, OP.WRITE, RT.TOPIC, p.topic))) {
    code = ERROR_CODES.TOPIC_AUTHORIZATION_FAILED;
  } else if (unknown.size > 0) code = ERROR_CODES.OPERATION_NOT_ATTEMPTED;
  else {
    code = forVersion(
      await broker.transactions.addToTransaction(txn, {
        partitions,
        verifyOnly: txn.verifyOnly,
      }),
      apiVersion,
      2,
    );
  }
  return txn.topics.map((t) => ({
    name: t.name,
    resultsByPartition: t.partitions.map((p) => ({
      partitionIndex: p,
      partitionErrorCode: unknown.has(`${t.name}\u0000${p}`)
        ? ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION
        : code,
    })),
  }));
}

export const ADD_PARTITIONS_TO_TXN_HANDLER = defineHandler<
  AddPartitionsToTxnRequest,
  AddPartitionsToTxnResponse
>({
  apiKey: 24,
  name: "AddPartitionsToTxn",
  minVersion: 0,
  maxVersion: 5,
  request: ADD_PARTITIONS_TO_TXN_REQUEST,
  response: ADD_PARTITIONS_TO_TXN_RESPONSE,
  async handle(req, ctx) {
    const v = ctx.apiVersion;
    if (v <= 3) {
      const results = await addOne(ctx, v, {
        transactionalId: req.v3AndBelowTransactionalId ?? "",
        producerId: req.v3AndBelowProducerId ?? -1,
        producerEpoch: req.v3AndBelowProducerEpoch ?? -1,
        verifyOnly: false,
        topics: req.v3AndBelowTopics ?? [],
      });
      return { throttleTimeMs: 0, resultsByTopicV3AndBelow: results };
    }
    const resultsByTransaction = [];
    for (const txn of req.transactions ?? []) {
      resultsByTransaction.push({
        transactionalId: txn.transactionalId,
        topicResults: await addOne(ctx, v, txn),
      });
    }
    return { throttleTimeMs: 0, errorCode: ERROR_CODES.NONE, resultsByTransaction };
  },
});
