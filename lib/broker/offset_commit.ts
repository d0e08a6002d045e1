/**
 * OffsetCommit (8), versions 0-10 (v10 names topics by id, KIP-848/KIP-516; an
 * id this broker does not know answers UNKNOWN_TOPIC_ID). Committed offsets live in the
 * MetadataStore. Members commit with their member id and generation;
 * standalone consumers (assign(), no membership) commit with an empty member
 * id and generation -1, which an empty group accepts. Partitions of unknown
 * topics get UNKNOWN_TOPIC_OR_PARTITION, metadata over the limit
 * OFFSET_METADATA_TOO_LARGE. v1's commit timestamp and v2-4's retention time
 * are accepted and ignored: offsets live until the group or topic is deleted.
 */
import {
  OFFSET_COMMIT_REQUEST,
  type OffsetCommitRequest,
} from "../protocol/generated/offset_commit_request.ts";
import {
  OFFSET_COMMIT_RESPONSE,
  type OffsetCommitResponse,
  type OffsetCommitResponsePartition,
} from "../protocol/generated/offset_commit_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import type { CommitOffset } from "../coordinator/group_coordinator.ts";
import type { TopicRecord } from "../metadata/cluster_metadata.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import type { Broker } from "./broker.ts";
import { errorCodeFor } from "./errors.ts";

async function lookupTopic(broker: Broker, name: string): Promise<TopicRecord | number> {
  try {
    return (await broker.topic(name)) ?? ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
  } catch (err) {
    errorCodeFor(err, broker.logger, "OffsetCommit topic lookup");
    return ERROR_CODES.COORDINATOR_NOT_AVAILABLE;
  }
}

async function lookupTopicById(broker: Broker, id: string): Promise<TopicRecord | number> {
  try {
    return (await broker.topicById(id)) ?? ERROR_CODES.UNKNOWN_TOPIC_ID;
  } catch (err) {
    errorCodeFor(err, broker.logger, "OffsetCommit topic lookup");
    return ERROR_CODES.COORDINATOR_NOT_AVAILABLE;
  }
}

export const OFFSET_COMMIT_HANDLER = defineHandler<OffsetCommitRequest, OffsetCommitResponse>({
  apiKey: 8,
  name: "OffsetCommit",
  minVersion: 0,
  maxVersion: 10,
  request: OFFSET_COMMIT_REQUEST,
  response: OFFSET_COMMIT_RESPONSE,
  async handle(req, ctx) {
    const v = ctx.apiVersion;
    const broker = ctx.broker;
    const toCommit: CommitOffset[] = [];
    const waiting: OffsetCommitResponsePartition[] = [];
    const topics = [];
    const byId = v >= 10;
    for (const t of req.topics) {
      // v10 names the topic by id: the name comes from the id (unknown: UNKNOWN_TOPIC_ID).
      const byIdTopic = byId ? await lookupTopicById(broker, t.topicId ?? "") : null;
      const name = byIdTopic && typeof byIdTopic === "object" ? byIdTopic.name : t.name ?? "";
      // Kafka: READ on the group, then READ on each topic.
      const topic = !can(ctx, OP.READ, RT.GROUP, req.groupId)
        ? ERROR_CODES.GROUP_AUTHORIZATION_FAILED
        : typeof byIdTopic === "number"
        ? byIdTopic
        : !can(ctx, OP.READ, RT.TOPIC, name)
        ? ERROR_CODES.TOPIC_AUTHORIZATION_FAILED
        : byIdTopic ?? await lookupTopic(broker, name);
      const partitions = t.partitions.map((p): OffsetCommitResponsePartition => {
        const out = { partitionIndex: p.partitionIndex, errorCode: ERROR_CODES.NONE as number };
        if (typeof topic === "number") out.errorCode = topic;
        else if (p.partitionIndex < 0 || p.partitionIndex >= topic.partitions) {
          out.errorCode = ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
        } else {
          toCommit.push({
            topic: name,
            partition: p.partitionIndex,
            offset: p.committedOffset,
            leaderEpoch: v >= 6 ? p.committedLeaderEpoch ?? -1 : -1,
            metadata: p.committedMetadata,
          });
          waiting.push(out);
        }
        return out;
      });
      topics.push({ name: t.name, topicId: t.topicId, partitions });
    }
    // A consumer-protocol group (KIP-848) checks the member and its epoch here; its offsets are
    // then stored as a memberless commit (the classic side of the group has no members).
    const consumerGroup = await broker.activeConsumerGroup(req.groupId);
    const memberCheck = consumerGroup
      ? broker.consumerGroups.checkCommit(
        req.groupId,
        req.memberId ?? "",
        req.generationIdOrMemberEpoch ?? -1,
      )
      : ERROR_CODES.NONE;
    if (toCommit.length > 0 && memberCheck !== ERROR_CODES.NONE) {
      waiting.forEach((w) => w.errorCode = memberCheck);
    } else if (toCommit.length > 0) {
      const codes = await broker.coordinator.commitOffsets({
        groupId: req.groupId,
        memberId: consumerGroup ? "" : v >= 1 ? req.memberId ?? "" : "",
        groupInstanceId: consumerGroup ? null : v >= 7 ? req.groupInstanceId ?? null : null,
        generationId: consumerGroup ? -1 : v >= 1 ? req.generationIdOrMemberEpoch ?? -1 : -1,
        offsets: toCommit,
      });
      codes.forEach((code, i) => waiting[i].errorCode = code);
    }
    return { throttleTimeMs: 0, topics };
  },
});
