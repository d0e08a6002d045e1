/**
 * OffsetForLeaderEpoch (23), versions 0-4: the end offset of a leader epoch,
 * which consumers use to detect log truncation (KIP-101, KIP-320). The
 * object store holds one unbroken log per partition and this broker reports
 * leader epoch 0 everywhere (Metadata, ListOffsets), so epoch 0 ends at the
 * high watermark; later epochs are unknown (-1/-1), and a current leader
 * epoch other than 0 is fenced (older) or unknown (newer) as in Kafka.
 */
import {
  OFFSET_FOR_LEADER_EPOCH_REQUEST,
  type OffsetForLeaderEpochRequest,
} from "../protocol/generated/offset_for_leader_epoch_request.ts";
import {
  type EpochEndOffset,
  OFFSET_FOR_LEADER_EPOCH_RESPONSE,
  type OffsetForLeaderEpochResponse,
} from "../protocol/generated/offset_for_leader_epoch_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { errorCodeFor } from "./errors.ts";

/** The leader epoch Metadata and ListOffsets report for every partition. */
export const REPORTED_LEADER_EPOCH = 0;
/** Kafka's "no epoch" / "no offset" answers. */
const UNDEFINED_EPOCH = -1;
const UNDEFINED_EPOCH_OFFSET = -1;

export const OFFSET_FOR_LEADER_EPOCH_HANDLER = defineHandler<
  OffsetForLeaderEpochRequest,
  OffsetForLeaderEpochResponse
>({
  apiKey: 23,
  name: "OffsetForLeaderEpoch",
  minVersion: 0,
  maxVersion: 4,
  request: OFFSET_FOR_LEADER_EPOCH_REQUEST,
  response: OFFSET_FOR_LEADER_EPOCH_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const topics = await Promise.all(req.topics.map(async (t) => {
      let topic = null;
      let topicError: number = ERROR_CODES.NONE;
      try {
        if (!can(ctx, OP.DESCRIBE, RT.TOPIC, t.topic)) {
          topicError = ERROR_CODES.TOPIC_AUTHORIZATION_FAILED;
        } else {
          topic = await broker.topic(t.topic);
          if (!topic) topicError = ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
        }
      } catch (err) {
        topicError = errorCodeFor(err, broker.logger, "OffsetForLeaderEpoch");
      }
      const partitions = await Promise.all(t.partitions.map(async (p) => {
        const out: EpochEndOffset = {
          errorCode: topicError,
          partition: p.partition,
          leaderEpoch: UNDEFINED_EPOCH,
          endOffset: UNDEFINED_EPOCH_OFFSET,
        };
        if (!topic) return out;
        if (p.partition < 0 || p.partition >= topic.partitions) {
          out.errorCode = ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
          return out;
        }
        const current = p.currentLeaderEpoch ?? -1;
        if (current >= 0 && current < REPORTED_LEADER_EPOCH) {
          out.errorCode = ERROR_CODES.FENCED_LEADER_EPOCH;
          return out;
        }
        if (current > REPORTED_LEADER_EPOCH) {
          out.errorCode = ERROR_CODES.UNKNOWN_LEADER_EPOCH;
          return out;
        }
        if (p.leaderEpoch !== REPORTED_LEADER_EPOCH) return out;
        try {
          const log = await broker.logs.partition(topic.name, p.partition);
          out.leaderEpoch = REPORTED_LEADER_EPOCH;
          out.endOffset = log.highWatermark;
        } catch (err) {
          out.errorCode = errorCodeFor(err, broker.logger, "OffsetForLeaderEpoch");
        }
        return out;
      }));
      return { topic: t.topic, partitions };
    }));
    return { throttleTimeMs: 0, topics };
  },
});
