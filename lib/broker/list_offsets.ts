/**
 * ListOffsets (2), versions 0-11: earliest (-2), latest (-1), max timestamp
 * (-3, v7+), earliest local (-4, v8+, the same as earliest: every segment is
 * local to the object store), latest tiered (-5, v9+) and earliest pending
 * upload (-6, v11+, KIP-1023): there is no separate tier, so no offset, as
 * Kafka answers without remote storage; and real timestamps (the first offset whose
 * timestamp is at or after it). Latest is the high watermark for read_uncommitted and the
 * last stable offset for read_committed (isolation level 1, v2+; KIP-98).
 * Each answer carries the leader epoch its offset was written in (v4+), and a
 * request's current leader epoch is checked as Fetch checks it.
 */
import {
  LIST_OFFSETS_REQUEST,
  type ListOffsetsRequest,
} from "../protocol/generated/list_offsets_request.ts";
import {
  LIST_OFFSETS_RESPONSE,
  type ListOffsetsPartitionResponse,
  type ListOffsetsResponse,
} from "../protocol/generated/list_offsets_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import type { PartitionLog } from "../log/partition_log.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { errorCodeFor } from "./errors.ts";
import { checkLeaderEpoch } from "../metadata/leader_epochs.ts";

export const LATEST_TIMESTAMP = -1;
export const EARLIEST_TIMESTAMP = -2;
export const MAX_TIMESTAMP = -3;
export const EARLIEST_LOCAL_TIMESTAMP = -4;
export const LATEST_TIERED_TIMESTAMP = -5;
export const EARLIEST_PENDING_UPLOAD_TIMESTAMP = -6;

async function lookup(
  log: PartitionLog,
  timestamp: number,
  version: number,
  readCommitted: boolean,
): Promise<{ errorCode: number; offset: number; timestamp: number }> {
  const found = (offset: number, ts = -1) => ({
    errorCode: ERROR_CODES.NONE,
    offset,
    timestamp: ts,
  });
  switch (timestamp) {
    case LATEST_TIMESTAMP:
      return found(readCommitted ? log.lastStableOffset : log.highWatermark);
    case EARLIEST_TIMESTAMP:
      return found(log.logStartOffset);
    case MAX_TIMESTAMP: {
      if (version < 7) break;
      const max = await log.maxTimestamp();
      return max ? found(max.offset, max.timestamp) : found(-1);
    }
    case EARLIEST_LOCAL_TIMESTAMP:
      if (version < 8) break;
      return found(log.logStartOffset);
    case LATEST_TIERED_TIMESTAMP:
      if (version < 9) break;
      return found(-1);
    case EARLIEST_PENDING_UPLOAD_TIMESTAMP:
      if (version < 11) break;
      return found(-1);
    default: {
      if (timestamp < 0) break;
      const hit = await log.offsetForTimestamp(timestamp);
      return hit ? found(hit.offset, hit.timestamp) : found(-1);
    }
  }
  return { errorCode: ERROR_CODES.INVALID_REQUEST, offset: -1, timestamp: -1 };
}

export const LIST_OFFSETS_HANDLER = defineHandler<ListOffsetsRequest, ListOffsetsResponse>({
  apiKey: 2,
  name: "ListOffsets",
  minVersion: 0,
  maxVersion: 11,
  request: LIST_OFFSETS_REQUEST,
  response: LIST_OFFSETS_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const version = ctx.apiVersion;
    const topics = await Promise.all(req.topics.map(async (t) => {
      let topic = null;
      let topicError: number = ERROR_CODES.NONE;
      try {
        if (!can(ctx, OP.DESCRIBE, RT.TOPIC, t.name)) {
          topicError = ERROR_CODES.TOPIC_AUTHORIZATION_FAILED;
        } else {
          topic = await broker.topic(t.name);
          if (!topic) topicError = ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
        }
      } catch (err) {
        topicError = errorCodeFor(err, broker.logger, "ListOffsets");
      }
      const partitions = await Promise.all(t.partitions.map(async (p) => {
        const out: ListOffsetsPartitionResponse = {
          partitionIndex: p.partitionIndex,
          errorCode: topicError,
          oldStyleOffsets: [],
          timestamp: -1,
          offset: -1,
          leaderEpoch: -1,
        };
        if (!topic) return out;
        if (p.partitionIndex < 0 || p.partitionIndex >= topic.partitions) {
          out.errorCode = ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
          return out;
        }
        try {
          const log = await broker.logs.partition(topic.name, p.partitionIndex);
          const check = checkLeaderEpoch(
            version >= 4 ? p.currentLeaderEpoch : undefined,
            log.leaderEpoch,
          );
          if (check !== "ok") {
            out.errorCode = check === "fenced"
              ? ERROR_CODES.FENCED_LEADER_EPOCH
              : ERROR_CODES.UNKNOWN_LEADER_EPOCH;
            return out;
          }
          const r = await lookup(
            log,
            p.timestamp,
            version,
            version >= 2 && (req.isolationLevel ?? 0) === 1,
          );
          out.errorCode = r.errorCode;
          out.offset = r.offset;
          out.timestamp = r.timestamp;
          // The epoch the offset was written in; the latest offset (nothing written there yet)
          // belongs to the current epoch, as Kafka answers.
          out.leaderEpoch = r.offset < 0
            ? -1
            : r.offset >= log.highWatermark
            ? log.leaderEpoch
            : log.epochOf(r.offset);
          if (version === 0 && r.errorCode === ERROR_CODES.NONE) {
            out.oldStyleOffsets = r.offset >= 0 && (p.maxNumOffsets ?? 1) > 0 ? [r.offset] : [];
          }
        } catch (err) {
          out.errorCode = errorCodeFor(err, broker.logger, "ListOffsets");
        }
        return out;
      }));
      return { name: t.name, partitions };
    }));
    return { throttleTimeMs: 0, topics };
  },
});
