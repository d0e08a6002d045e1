/**
 * ConsumerGroupDescribe (69), versions 0-1: the KIP-848 groups this broker coordinates, with
 * each member's current and target assignment (topic ids and names). A group id with no
 * consumer-protocol group here answers GROUP_ID_NOT_FOUND. DESCRIBE on the group is required.
 */
import {
  CONSUMER_GROUP_DESCRIBE_REQUEST,
  type ConsumerGroupDescribeRequest,
} from "../protocol/generated/consumer_group_describe_request.ts";
import {
  CONSUMER_GROUP_DESCRIBE_RESPONSE,
  type ConsumerGroupDescribeResponse,
  type DescribedGroup,
} from "../protocol/generated/consumer_group_describe_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { authorizedOperations, GROUP_OPERATIONS } from "./authorized_operations.ts";
import { byTopic, groupState } from "../coordinator/consumer_groups.ts";

export const CONSUMER_GROUP_DESCRIBE_HANDLER = defineHandler<
  ConsumerGroupDescribeRequest,
  ConsumerGroupDescribeResponse
>({
  apiKey: 69,
  name: "ConsumerGroupDescribe",
  minVersion: 0,
  maxVersion: 1,
  request: CONSUMER_GROUP_DESCRIBE_REQUEST,
  response: CONSUMER_GROUP_DESCRIBE_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const names = new Map(broker.cachedTopics().map((t) => [t.topicId, t.name]));
    const assignment = (keys: Iterable<string>) => ({
      topicPartitions: byTopic(keys).map((t) => ({
        topicId: t.topicId,
        topicName: names.get(t.topicId) ?? "",
        partitions: t.partitions,
      })),
    });
    // Groups not in memory (a coordinator that just took them over) are read from the store.
    await Promise.all(req.groupIds.map((groupId) => broker.activeConsumerGroup(groupId)));
    const groups = req.groupIds.map((groupId): DescribedGroup => {
      const base = {
        groupId,
        errorMessage: null,
        groupState: "Dead",
        groupEpoch: -1,
        assignmentEpoch: -1,
        assignorName: "",
        members: [],
        authorizedOperations: authorizedOperations(false, GROUP_OPERATIONS),
      };
      if (!can(ctx, OP.DESCRIBE, RT.GROUP, groupId)) {
        return { ...base, errorCode: ERROR_CODES.GROUP_AUTHORIZATION_FAILED };
      }
      const group = broker.consumerGroups.get(groupId);
      if (!group) {
        return {
          ...base,
          errorCode: ERROR_CODES.GROUP_ID_NOT_FOUND,
          errorMessage: `Group ${groupId} is not a consumer group of this coordinator`,
        };
      }
      return {
        ...base,
        errorCode: ERROR_CODES.NONE,
        groupState: groupState(group),
        groupEpoch: group.groupEpoch,
        assignmentEpoch: group.assignmentEpoch,
        assignorName: group.assignor,
        authorizedOperations: authorizedOperations(
          req.includeAuthorizedOperations,
          GROUP_OPERATIONS,
        ),
        members: [...group.members.values()].map((m) => ({
          memberId: m.memberId,
          instanceId: m.instanceId,
          rackId: m.rackId,
          memberEpoch: m.memberEpoch,
          clientId: m.clientId,
          clientHost: m.clientHost,
          subscribedTopicNames: m.subscribedTopicNames,
          subscribedTopicRegex: m.subscribedTopicRegex,
          assignment: assignment(m.assigned),
          targetAssignment: assignment(group.target.get(m.memberId) ?? []),
          memberType: 1, // consumer protocol (KIP-1099: -1 unknown, 0 classic, 1 consumer)
        })),
      };
    });
    return Promise.resolve({ throttleTimeMs: 0, groups });
  },
});
