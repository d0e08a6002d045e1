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
      results.push({ groupId, errorCode: await ctx.broker.coordinator.deleteGroup(groupId) });
    }
    return { throttleTimeMs: 0, results };
  },
});
