/**
 * LeaveGroup (13), versions 0-5. v0-2 name one member; v3+ a batch of
 * members, each by member id or by group.instance.id alone (KIP-345
 * administrative removal), with a result per member. For v0-2 the one error
 * code is the top-level error, else the member's (as Kafka answers).
 */
import {
  LEAVE_GROUP_REQUEST,
  type LeaveGroupRequest,
} from "../protocol/generated/leave_group_request.ts";
import {
  LEAVE_GROUP_RESPONSE,
  type LeaveGroupResponse,
} from "../protocol/generated/leave_group_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";

export const LEAVE_GROUP_HANDLER = defineHandler<LeaveGroupRequest, LeaveGroupResponse>({
  apiKey: 13,
  name: "LeaveGroup",
  minVersion: 0,
  maxVersion: 5,
  request: LEAVE_GROUP_REQUEST,
  response: LEAVE_GROUP_RESPONSE,
  async handle(req, ctx) {
    const v = ctx.apiVersion;
    const members = v >= 3
      ? (req.members ?? []).map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
      }))
      : [{ memberId: req.memberId ?? "", groupInstanceId: null }];
    const out = !can(ctx, OP.READ, RT.GROUP, req.groupId)
      ? {
        errorCode: ERROR_CODES.GROUP_AUTHORIZATION_FAILED as number,
        members: members.map((m) => ({
          ...m,
          errorCode: ERROR_CODES.GROUP_AUTHORIZATION_FAILED as number,
        })),
      }
      : await ctx.broker.coordinator.leave(req.groupId, members);
    if (v >= 3) return { throttleTimeMs: 0, errorCode: out.errorCode, members: out.members };
    const memberError = out.members.find((m) => m.errorCode !== ERROR_CODES.NONE)?.errorCode;
    return {
      throttleTimeMs: 0,
      errorCode: out.errorCode !== ERROR_CODES.NONE
        ? out.errorCode
        : memberError ?? ERROR_CODES.NONE,
    };
  },
});
