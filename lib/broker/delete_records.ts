/**
 * DeleteRecords (21), versions 0-2: moves a partition's log start offset up to the given
 * offset (-1: the high watermark), through the same committed path as retention
 * (`PartitionLog.advanceLogStartOffset`: an epoch compare-and-swap, then the segments wholly
 * below it are deleted). Records below the new start are no longer readable; the answer's low
 * watermark is the new start. As in Kafka, a topic whose cleanup.policy lacks "delete" answers
 * POLICY_VIOLATION, and an offset beyond the high watermark (or below -1) OFFSET_OUT_OF_RANGE.
 * Kafka Streams uses it to purge its repartition topics; `kafka-delete-records.sh` and
 * `kafscale topics trim` send it.
 */
import {
  DELETE_RECORDS_REQUEST,
  type DeleteRecordsRequest,
} from "../protocol/generated/delete_records_request.ts";
import {
  DELETE_RECORDS_RESPONSE,
  type DeleteRecordsPartitionResult,
  type DeleteRecordsResponse,
} from "../protocol/generated/delete_records_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { errorCodeFor } from "./errors.ts";
import { cleanupPolicy } from "./topic_config.ts";

/** The offset that means "everything up to the high watermark". */
export const DELETE_TO_HIGH_WATERMARK = -1;

export const DELETE_RECORDS_HANDLER = defineHandler<DeleteRecordsRequest, DeleteRecordsResponse>({
  apiKey: 21,
  name: "DeleteRecords",
  minVersion: 0,
  maxVersion: 2,
  request: DELETE_RECORDS_REQUEST,
  response: DELETE_RECORDS_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const topics = await Promise.all(req.topics.map(async (t) => {
      let topic = null;
      let topicError: number = ERROR_CODES.NONE;
      try {
        if (!can(ctx, OP.DELETE, RT.TOPIC, t.name)) {
          topicError = ERROR_CODES.TOPIC_AUTHORIZATION_FAILED;
        } else {
          topic = await broker.topic(t.name);
          if (!topic) topicError = ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
          else if (!cleanupPolicy(topic.configs).delete) {
            topicError = ERROR_CODES.POLICY_VIOLATION;
          }
        }
      } catch (err) {
        topicError = errorCodeFor(err, broker.logger, "DeleteRecords");
      }
      const partitions = await Promise.all(t.partitions.map(async (p) => {
        const out: DeleteRecordsPartitionResult = {
          partitionIndex: p.partitionIndex,
          lowWatermark: -1,
          errorCode: topicError,
        };
        if (!topic || topicError !== ERROR_CODES.NONE) return out;
        if (p.partitionIndex < 0 || p.partitionIndex >= topic.partitions) {
          out.errorCode = ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
          return out;
        }
        try {
          const log = await broker.logs.partition(topic.name, p.partitionIndex);
          const target = p.offset === DELETE_TO_HIGH_WATERMARK ? log.highWatermark : p.offset;
          if (target < 0 || target > log.highWatermark) {
            out.errorCode = ERROR_CODES.OFFSET_OUT_OF_RANGE;
            return out;
          }
          await log.advanceLogStartOffset(target);
          out.lowWatermark = log.logStartOffset;
          broker.logger.info("Deleted records", {
            partition: `${topic.name}-${p.partitionIndex}`,
            before: target,
            logStartOffset: out.lowWatermark,
          });
        } catch (err) {
          out.errorCode = errorCodeFor(err, broker.logger, "DeleteRecords");
        }
        return out;
      }));
      return { name: t.name, partitions };
    }));
    return { throttleTimeMs: 0, topics };
  },
});
