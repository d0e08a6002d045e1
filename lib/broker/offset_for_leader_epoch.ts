/**
 * OffsetForLeaderEpoch (23), versions 0-4: where a leader epoch ended, which
 * consumers use to detect log truncation (KIP-101, KIP-320) after a leader
 * change. A partition's leader epoch is its ownership epoch; its committed
 * state keeps the history of epochs and their start offsets
 * (lib/metadata/leader_epochs.ts), and the answer follows Kafka's rule: the
 * current epoch ends at the high watermark, an older one where the next
 * begins. The object store holds one log per partition that is never
 * truncated, so a consumer's position is never past the end of its epoch.
 * A current leader epoch (v2+) older than the owner's answers
 * FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH.
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
import {
  checkLeaderEpoch,
  UNDEFINED_EPOCH,
  UNDEFINED_EPOCH_OFFSET,
} from "../metadata/leader_epochs.ts";

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
        try {
          const log = await broker.logs.partition(topic.name, p.partition);
          const check = checkLeaderEpoch(p.currentLeaderEpoch, log.leaderEpoch);
          if (check !== "ok") {
            out.errorCode = check === "fenced"
              ? ERROR_CODES.FENCED_LEADER_EPOCH
              : ERROR_CODES.UNKNOWN_LEADER_EPOCH;
            return out;
          }
          const answer = log.endOffsetForEpoch(p.leaderEpoch);
          out.leaderEpoch = answer.leaderEpoch;
          out.endOffset = answer.endOffset;
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
