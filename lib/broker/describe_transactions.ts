/**
 * DescribeTransactions (65), version 0 (KIP-664, `kafka-transactions.sh describe`): each
 * transactional id's state, producer, timeout, start time and partitions, read from the
 * metadata store. An unknown id gets TRANSACTIONAL_ID_NOT_FOUND.
 */
import {
  DESCRIBE_TRANSACTIONS_REQUEST,
  type DescribeTransactionsRequest,
} from "../protocol/generated/describe_transactions_request.ts";
import {
  DESCRIBE_TRANSACTIONS_RESPONSE,
  type DescribeTransactionsResponse,
  type TransactionState,
} from "../protocol/generated/describe_transactions_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { errorCodeFor } from "./errors.ts";

export const DESCRIBE_TRANSACTIONS_HANDLER = defineHandler<
  DescribeTransactionsRequest,
  DescribeTransactionsResponse
>({
  apiKey: 65,
  name: "DescribeTransactions",
  minVersion: 0,
  maxVersion: 0,
  request: DESCRIBE_TRANSACTIONS_REQUEST,
  response: DESCRIBE_TRANSACTIONS_RESPONSE,
  async handle(req, ctx) {
    const transactionStates: TransactionState[] = [];
    for (const id of req.transactionalIds) {
      const empty: TransactionState = {
        errorCode: ERROR_CODES.NONE,
        transactionalId: id,
        transactionState: "",
        transactionTimeoutMs: 0,
        transactionStartTimeMs: -1,
        producerId: -1,
        producerEpoch: -1,
        topics: [],
      };
      if (!can(ctx, OP.DESCRIBE, RT.TRANSACTIONAL_ID, id)) {
        transactionStates.push({
          ...empty,
          errorCode: ERROR_CODES.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        });
        continue;
      }
      try {
        const r = await ctx.broker.transactions.describe(id);
        if (!r) {
          transactionStates.push({ ...empty, errorCode: ERROR_CODES.TRANSACTIONAL_ID_NOT_FOUND });
          continue;
        }
        const topics = new Map<string, number[]>();
        for (const [t, p] of r.partitions) topics.set(t, [...(topics.get(t) ?? []), p]);
        transactionStates.push({
          ...empty,
          transactionState: r.state,
          transactionTimeoutMs: r.timeoutMs,
          transactionStartTimeMs: r.startMs,
          producerId: r.producerId,
          producerEpoch: r.producerEpoch,
          topics: [...topics].map(([topic, partitions]) => ({ topic, partitions })),
        });
      } catch (err) {
        transactionStates.push({
          ...empty,
          errorCode: errorCodeFor(err, ctx.broker.logger, "DescribeTransactions"),
        });
      }
    }
    return { throttleTimeMs: 0, transactionStates };
  },
});
