/**
 * DeleteGroups (42), versions 0-2: deletes empty groups with their committed
 * offsets; NON_EMPTY_GROUP while a group has members, GROUP_ID_NOT_FOUND for
 * one that does not exist.
 */
import {
  DELETE_GROUPS_REQUEST,
  type DeleteGroupsRequest,
} from "../protocol/generated/delete_groups_request.ts";
import {
  DELETE_GROUPS_RESPONSE,
  type DeleteGroupsResponse,
} from "../protocol/generated/delete_groups_response.ts";
import { can } from "./authorizer.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";

export const DELETE_GROUPS_HANDLER = defineHandler<DeleteGroupsRequest, DeleteGroupsResponse>({
  apiKey: 42,
  name: "DeleteGroups",
  minVersion: 0,
  maxVersion: 2,
  request: DELETE_GROUPS_REQUEST,
  response: DELETE_GROUPS_RESPONSE,
  async handle(req, ctx) {
    const results = [];
    for (const groupId of new Set(req.groupsNames)) {
      let errorCode: number;
      if (!can(ctx, OP.DELETE, RT.GROUP, groupId)) {
        errorCode = ERROR_CODES.GROUP_AUTHORIZATION_FAILED;
      } else if (await ctx.broker.activeConsumerGroup(groupId)) {
        // A consumer-protocol group (KIP-848) with members.
        errorCode = ERROR_CODES.NON_EMPTY_GROUP;
      } else {
        errorCode = await ctx.broker.coordinator.deleteGroup(groupId);
        if (errorCode === ERROR_CODES.NONE) ctx.broker.consumerGroups.drop(groupId);
      }
      results.push({ groupId, errorCode });
    }
    return { throttleTimeMs: 0, results };
  },
});
