/**
 * JoinGroup (11), versions 0-9. The response is held until every known
 * member has rejoined or the rebalance timeout passes (lib/coordinator).
 * v0 has no rebalance timeout (the session timeout serves as both); v4+
 * members without an id first get MEMBER_ID_REQUIRED (KIP-394); v5+ carry
 * group.instance.id for static membership (KIP-345); v9 adds skipAssignment
 * for a static leader rejoining a stable group (KIP-814). The leader gets
 * every member's metadata byte for byte.
 */
import {
  JOIN_GROUP_REQUEST,
  type JoinGroupRequest,
} from "../protocol/generated/join_group_request.ts";
import {
  JOIN_GROUP_RESPONSE,
  type JoinGroupResponse,
} from "../protocol/generated/join_group_response.ts";
import { kafkaClientHost } from "../coordinator/group_coordinator.ts";
import { can } from "./authorizer.ts";
import { joinError } from "../coordinator/group_state.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";

export const JOIN_GROUP_HANDLER = defineHandler<JoinGroupRequest, JoinGroupResponse>({
  apiKey: 11,
  name: "JoinGroup",
  minVersion: 0,
  maxVersion: 9,
  request: JOIN_GROUP_REQUEST,
  response: JOIN_GROUP_RESPONSE,
  async handle(req, ctx) {
    const v = ctx.apiVersion;
    const out = !can(ctx, OP.READ, RT.GROUP, req.groupId)
      ? joinError(req.memberId, ERROR_CODES.GROUP_AUTHORIZATION_FAILED)
      // A group in use by the consumer protocol (KIP-848) takes no classic members (offline
      // migration only: it must be empty first).
      : await ctx.broker.activeConsumerGroup(req.groupId)
      ? joinError(req.memberId, ERROR_CODES.INCONSISTENT_GROUP_PROTOCOL)
      : await ctx.broker.coordinator.join({
        groupId: req.groupId,
        memberId: req.memberId,
        groupInstanceId: v >= 5 ? req.groupInstanceId ?? null : null,
        clientId: ctx.clientId ?? "",
        clientHost: kafkaClientHost(ctx.clientAddress),
        sessionTimeoutMs: req.sessionTimeoutMs,
        rebalanceTimeoutMs: v >= 1
          ? req.rebalanceTimeoutMs ?? req.sessionTimeoutMs
          : req.sessionTimeoutMs,
        protocolType: req.protocolType,
        // Copied so a held member does not pin the request frame.
        protocols: req.protocols.map((p) => ({ name: p.name, metadata: p.metadata.slice() })),
        requireKnownMemberId: v >= 4,
        supportsSkipAssignment: v >= 9,
      });
    return {
      throttleTimeMs: 0,
      errorCode: out.errorCode,
      generationId: out.generationId,
      protocolType: out.protocolType,
      // Nullable from v7; before that an error answer carries "".
      protocolName: v >= 7 ? out.protocolName : out.protocolName ?? "",
      leader: out.leader,
      skipAssignment: out.skipAssignment,
      memberId: out.memberId,
      members: out.members.map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        metadata: m.metadata,
      })),
    };
  },
});
