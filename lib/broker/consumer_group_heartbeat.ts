/**
 * ConsumerGroupHeartbeat (68), versions 0-1: the KIP-848 consumer group protocol
 * (lib/coordinator/consumer_groups.ts). The broker that coordinates the group (the same one
 * FindCoordinator names, holding the group's owner key as for classic groups) answers; others
 * answer NOT_COORDINATOR. A group id with classic members answers INCONSISTENT_GROUP_PROTOCOL
 * (migration is offline: the group must be empty first). v0 members get their id from the
 * broker; v1 members bring their own. READ on the group is required.
 */
import {
  CONSUMER_GROUP_HEARTBEAT_REQUEST,
  type ConsumerGroupHeartbeatRequest,
} from "../protocol/generated/consumer_group_heartbeat_request.ts";
import {
  CONSUMER_GROUP_HEARTBEAT_RESPONSE,
  type ConsumerGroupHeartbeatResponse,
} from "../protocol/generated/consumer_group_heartbeat_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { kafkaClientHost } from "../coordinator/group_coordinator.ts";
import type { TopicInfo } from "../coordinator/consumer_groups.ts";
import type { Broker } from "./broker.ts";

function failure(errorCode: number, errorMessage: string | null): ConsumerGroupHeartbeatResponse {
  return {
    throttleTimeMs: 0,
    errorCode,
    errorMessage,
    memberId: null,
    memberEpoch: -1,
    heartbeatIntervalMs: 0,
    assignment: null,
  };
}

/** Topics by name, from the broker's watched cache, plus the subscribed names it lacks. */
async function topicsFor(
  broker: Broker,
  names: readonly string[],
): Promise<Map<string, TopicInfo>> {
  const out = new Map<string, TopicInfo>();
  for (const t of broker.cachedTopics()) {
    out.set(t.name, { name: t.name, id: t.topicId, partitions: t.partitions });
  }
  for (const name of names) {
    if (out.has(name)) continue;
    const t = await broker.topic(name).catch(() => null);
    if (t) out.set(t.name, { name: t.name, id: t.topicId, partitions: t.partitions });
  }
  return out;
}

export const CONSUMER_GROUP_HEARTBEAT_HANDLER = defineHandler<
  ConsumerGroupHeartbeatRequest,
  ConsumerGroupHeartbeatResponse
>({
  apiKey: 68,
  name: "ConsumerGroupHeartbeat",
  minVersion: 0,
  maxVersion: 1,
  request: CONSUMER_GROUP_HEARTBEAT_REQUEST,
  response: CONSUMER_GROUP_HEARTBEAT_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    if (!can(ctx, OP.READ, RT.GROUP, req.groupId)) {
      return failure(ERROR_CODES.GROUP_AUTHORIZATION_FAILED, null);
    }
    const claimed = await broker.coordinator.claim(req.groupId);
    if (claimed.errorCode !== ERROR_CODES.NONE) return failure(claimed.errorCode, null);
    if (claimed.classicMembers > 0) {
      return failure(
        ERROR_CODES.INCONSISTENT_GROUP_PROTOCOL,
        `Group "${req.groupId}" has members of the classic protocol; it can switch when empty`,
      );
    }
    const topics = await topicsFor(broker, req.subscribedTopicNames ?? []);
    const outcome = await broker.consumerGroups.heartbeat(
      {
        groupId: req.groupId,
        memberId: req.memberId,
        memberEpoch: req.memberEpoch,
        instanceId: req.instanceId,
        rackId: req.rackId,
        rebalanceTimeoutMs: req.rebalanceTimeoutMs,
        subscribedTopicNames: req.subscribedTopicNames,
        subscribedTopicRegex: ctx.apiVersion >= 1 ? req.subscribedTopicRegex ?? null : null,
        serverAssignor: req.serverAssignor,
        ownedPartitions: req.topicPartitions,
        clientId: ctx.clientId ?? "",
        clientHost: kafkaClientHost(ctx.clientAddress),
      },
      topics,
      () => crypto.randomUUID(),
      claimed.ownerEpoch,
    );
    if (!("memberId" in outcome)) return failure(outcome.errorCode, outcome.errorMessage);
    return {
      throttleTimeMs: 0,
      errorCode: ERROR_CODES.NONE,
      errorMessage: null,
      memberId: outcome.memberId,
      memberEpoch: outcome.memberEpoch,
      heartbeatIntervalMs: broker.consumerGroups.heartbeatIntervalMs,
      assignment: outcome.assignment === null ? null : { topicPartitions: outcome.assignment },
    };
  },
});
