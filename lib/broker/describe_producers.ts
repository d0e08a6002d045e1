/**
 * DescribeProducers (61), version 0 (KIP-664, `kafka-transactions.sh describe-producers` and
 * `find-hanging`): per partition, the idempotent and transactional producers it remembers, with
 * their epoch, last sequence and write time, the decision number of their last transaction
 * marker (the coordinator epoch) and the first offset of their open transaction (-1: none). The
 * producer state is loaded from the log tail first, as for a produce.
 */
import {
  DESCRIBE_PRODUCERS_REQUEST,
  type DescribeProducersRequest,
} from "../protocol/generated/describe_producers_request.ts";
import {
  DESCRIBE_PRODUCERS_RESPONSE,
  type DescribeProducersResponse,
  type PartitionResponse,
} from "../protocol/generated/describe_producers_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { errorCodeFor } from "./errors.ts";

export const DESCRIBE_PRODUCERS_HANDLER = defineHandler<
  DescribeProducersRequest,
  DescribeProducersResponse
>({
  apiKey: 61,
  name: "DescribeProducers",
  minVersion: 0,
  maxVersion: 0,
  request: DESCRIBE_PRODUCERS_REQUEST,
  response: DESCRIBE_PRODUCERS_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const topics = [];
    for (const t of req.topics) {
      const topic = await broker.topic(t.name).catch(() => null);
      const partitions: PartitionResponse[] = [];
      for (const index of t.partitionIndexes) {
        const out: PartitionResponse = {
          partitionIndex: index,
          errorCode: ERROR_CODES.NONE,
          errorMessage: null,
          activeProducers: [],
        };
        partitions.push(out);
        if (!can(ctx, OP.READ, RT.TOPIC, t.name)) {
          out.errorCode = ERROR_CODES.TOPIC_AUTHORIZATION_FAILED;
          continue;
        }
        if (!topic || index < 0 || index >= topic.partitions) {
          out.errorCode = ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
          continue;
        }
        try {
          const log = await broker.logs.partition(t.name, index);
          await log.loadProducerState();
          out.activeProducers = log.activeProducers().map((p) => ({
            producerId: p.producerId,
            producerEpoch: p.producerEpoch,
            lastSequence: p.lastSequence,
            lastTimestamp: p.lastTimestampMs,
            coordinatorEpoch: p.lastDecision,
            currentTxnStartOffset: p.openTxnFirstOffset,
          }));
        } catch (err) {
          out.errorCode = errorCodeFor(err, broker.logger, "DescribeProducers");
          out.errorMessage = err instanceof Error ? err.message : String(err);
        }
      }
      topics.push({ name: t.name, partitions });
    }
    return { throttleTimeMs: 0, topics };
  },
});
