/**
 * DescribeGroups (15), versions 0-6: state, protocol, and every member's id,
 * instance id (v4+), client id, host, metadata and assignment (the last two
 * only when Stable, as Kafka). An unknown group is described as Dead with no
 * error before v6, and from v6 also answers GROUP_ID_NOT_FOUND (KIP-1043); so is a group of
 * the KIP-848 consumer protocol ("not a classic group"; ConsumerGroupDescribe describes it).
 */
import {
  DESCRIBE_GROUPS_REQUEST,
  type DescribeGroupsRequest,
} from "../protocol/generated/describe_groups_request.ts";
import {
  DESCRIBE_GROUPS_RESPONSE,
  type DescribeGroupsResponse,
} from "../protocol/generated/describe_groups_response.ts";
import { can } from "./authorizer.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { GROUP_STATES } from "../coordinator/group_state.ts";
import { authorizedOperations, GROUP_OPERATIONS } from "./authorized_operations.ts";

/** Without an authorizer every group operation is allowed: READ (3), DELETE (6), DESCRIBE (8). */
export const GROUP_AUTHORIZED_OPERATIONS = GROUP_OPERATIONS;

export const DESCRIBE_GROUPS_HANDLER = defineHandler<
  DescribeGroupsRequest,
  DescribeGroupsResponse
>({
  apiKey: 15,
  name: "DescribeGroups",
  minVersion: 0,
  maxVersion: 6,
  request: DESCRIBE_GROUPS_REQUEST,
  response: DESCRIBE_GROUPS_RESPONSE,
  async handle(req, ctx) {
    const includeOps = ctx.apiVersion >= 3 && req.includeAuthorizedOperations === true;
    const groups = [];
    for (const groupId of req.groups) {
      const denied = !can(ctx, OP.DESCRIBE, RT.GROUP, groupId);
      const described = await ctx.broker.coordinator.describeGroup(groupId);
      let errorCode = denied ? ERROR_CODES.GROUP_AUTHORIZATION_FAILED : described.errorCode;
      let group = denied ? { ...described.group, members: [] } : described.group;
      let errorMessage: string | null = null;
      // A KIP-848 group is not a classic group: Dead, and from v6 GROUP_ID_NOT_FOUND (Kafka 4.x).
      const notClassic = !denied && errorCode === ERROR_CODES.NONE &&
        (await ctx.broker.activeConsumerGroup(groupId)) !== null;
      if (notClassic) {
        group = {
          groupId,
          state: GROUP_STATES.DEAD,
          protocolType: "",
          protocolData: "",
          members: [],
        };
      }
      if (
        ctx.apiVersion >= 6 && errorCode === ERROR_CODES.NONE && group.state === GROUP_STATES.DEAD
      ) {
        errorCode = ERROR_CODES.GROUP_ID_NOT_FOUND;
        errorMessage = notClassic
          ? `Group ${groupId} is not a classic group.`
          : `Group ${groupId} not found.`;
      }
      groups.push({
        errorCode,
        errorMessage,
        groupId,
        groupState: group.state,
        protocolType: group.protocolType,
        protocolData: group.protocolData,
        members: group.members.map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          memberMetadata: m.metadata,
          memberAssignment: m.assignment,
        })),
        authorizedOperations: authorizedOperations(includeOps, GROUP_OPERATIONS),
      });
    }
    return { throttleTimeMs: 0, groups };
  },
});
