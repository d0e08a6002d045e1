/**
 * SyncGroup (14), versions 0-5. The leader sends the assignment; every
 * member gets exactly the bytes the leader sent for it, once the assignment
 * is stored in the MetadataStore. v3+ carry group.instance.id, v5+ the
 * protocol type and name (checked against the group's, KIP-559).
 */
import {
  SYNC_GROUP_REQUEST,
  type SyncGroupRequest,
} from "../protocol/generated/sync_group_request.ts";
import {
  SYNC_GROUP_RESPONSE,
  type SyncGroupResponse,
} from "../protocol/generated/sync_group_response.ts";
import { can } from "./authorizer.ts";
import { syncError } from "../coordinator/group_state.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";

export const SYNC_GROUP_HANDLER = defineHandler<SyncGroupRequest, SyncGroupResponse>({
  apiKey: 14,
  name: "SyncGroup",
  minVersion: 0,
  maxVersion: 5,
  request: SYNC_GROUP_REQUEST,
  response: SYNC_GROUP_RESPONSE,
  async handle(req, ctx) {
    const v = ctx.apiVersion;
    const out = !can(ctx, OP.READ, RT.GROUP, req.groupId)
      ? syncError(ERROR_CODES.GROUP_AUTHORIZATION_FAILED)
      : await ctx.broker.coordinator.sync({
        groupId: req.groupId,
        memberId: req.memberId,
        groupInstanceId: v >= 3 ? req.groupInstanceId ?? null : null,
        generationId: req.generationId,
        protocolType: v >= 5 ? req.protocolType ?? null : null,
        protocolName: v >= 5 ? req.protocolName ?? null : null,
        assignments: req.assignments.map((a) => ({
          memberId: a.memberId,
          assignment: a.assignment.slice(),
        })),
      });
    return {
      throttleTimeMs: 0,
      errorCode: out.errorCode,
      protocolType: out.protocolType,
      protocolName: out.protocolName,
      assignment: out.assignment,
    };
  },
});
