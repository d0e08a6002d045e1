/**
 * Heartbeat (12), versions 0-4. Keeps a member's session alive and tells it
 * when to rejoin (REBALANCE_IN_PROGRESS). Touches coordinator memory only:
 * heartbeats never write to the MetadataStore.
 */
import {
  HEARTBEAT_REQUEST,
  type HeartbeatRequest,
} from "../protocol/generated/heartbeat_request.ts";
import {
  HEARTBEAT_RESPONSE,
  type HeartbeatResponse,
} from "../protocol/generated/heartbeat_response.ts";
import { can } from "./authorizer.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";

export const HEARTBEAT_HANDLER = defineHandler<HeartbeatRequest, HeartbeatResponse>({
  apiKey: 12,
  name: "Heartbeat",
  minVersion: 0,
  maxVersion: 4,
  request: HEARTBEAT_REQUEST,
  response: HEARTBEAT_RESPONSE,
  async handle(req, ctx) {
    const errorCode = !can(ctx, OP.READ, RT.GROUP, req.groupId)
      ? ERROR_CODES.GROUP_AUTHORIZATION_FAILED
      : await ctx.broker.coordinator.heartbeat({
        groupId: req.groupId,
        memberId: req.memberId,
        groupInstanceId: ctx.apiVersion >= 3 ? req.groupInstanceId ?? null : null,
        generationId: req.generationId,
      });
    return { throttleTimeMs: 0, errorCode };
  },
});
