/**
 * ListGroups (16), versions 0-5: every group with members, a stored record
 * or committed offsets. v4+ filter by state (KIP-518), v5+ by type
 * (KIP-848): consumer-protocol groups with members, in memory or only in
 * the store, are "consumer"; the rest "classic". Filters match
 * case-insensitively.
 */
import {
  type ConsumerGroup,
  groupState as consumerGroupState,
} from "../coordinator/consumer_groups.ts";
import { decodeConsumerGroup } from "../coordinator/consumer_group_record.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import {
  LIST_GROUPS_REQUEST,
  type ListGroupsRequest,
} from "../protocol/generated/list_groups_request.ts";
import {
  LIST_GROUPS_RESPONSE,
  type ListGroupsResponse,
} from "../protocol/generated/list_groups_response.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler, type RequestContext } from "./handler.ts";

export const CLASSIC_GROUP_TYPE = "classic";

const CONSUMER_GROUP_TYPE = "consumer";

export const LIST_GROUPS_HANDLER = defineHandler<ListGroupsRequest, ListGroupsResponse>({
  apiKey: 16,
  name: "ListGroups",
  minVersion: 0,
  maxVersion: 5,
  request: LIST_GROUPS_REQUEST,
  response: LIST_GROUPS_RESPONSE,
  async handle(req, ctx) {
    const v = ctx.apiVersion;
    const states = new Set((v >= 4 ? req.statesFilter ?? [] : []).map((s) => s.toLowerCase()));
    const types = new Set((v >= 5 ? req.typesFilter ?? [] : []).map((s) => s.toLowerCase()));
    const out = await ctx.broker.coordinator.listGroups();
    // Consumer-protocol groups (KIP-848) are listed as "consumer": the ones in memory, then the
    // ones only the store has (after a restart or a takeover, before any member's heartbeat
    // loads them). The classic listing also holds their (memberless) classic side, which they
    // replace.
    const listed = (g: ConsumerGroup) => ({
      groupId: g.groupId,
      protocolType: "consumer",
      state: consumerGroupState(g),
      type: CONSUMER_GROUP_TYPE,
    });
    const consumer = new Map(
      ctx.broker.consumerGroups.groups().filter((g) => g.members.size > 0).map((g) => [
        g.groupId,
        listed(g),
      ]),
    );
    if (out.errorCode === ERROR_CODES.NONE) {
      for (const stored of await storedConsumerGroups(ctx)) {
        if (!consumer.has(stored.groupId) && !ctx.broker.consumerGroups.get(stored.groupId)) {
          consumer.set(stored.groupId, listed(stored));
        }
      }
    }
    const all = [
      ...out.groups
        .filter((g) => !consumer.has(g.groupId))
        .map((g) => ({ ...g, type: CLASSIC_GROUP_TYPE })),
      ...consumer.values(),
    ].sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
    const groups = all
      .filter((g) => states.size === 0 || states.has(g.state.toLowerCase()))
      .filter((g) => types.size === 0 || types.has(g.type))
      // Groups the principal may not describe are left out (Kafka's authorizer does this).
      .filter((g) => can(ctx, OP.DESCRIBE, RT.GROUP, g.groupId))
      .map((g) => ({
        groupId: g.groupId,
        protocolType: g.protocolType,
        groupState: g.state,
        groupType: g.type,
      }));
    return { throttleTimeMs: 0, errorCode: out.errorCode, groups };
  },
});

/** KIP-848 groups with members as the store holds them; an unreadable record is left out. */
async function storedConsumerGroups(ctx: RequestContext): Promise<ConsumerGroup[]> {
  const { broker } = ctx;
  let records;
  try {
    records = await broker.metadata.listConsumerGroups();
  } catch (err) {
    broker.logger.warn("ListGroups: cannot list the stored consumer groups", {
      error: err instanceof Error ? err.message : String(err),
    });
    return [];
  }
  const groups: ConsumerGroup[] = [];
  for (const { groupId, value } of records) {
    try {
      const group = decodeConsumerGroup(groupId, value, broker.clock.now());
      if (group.members.size > 0) groups.push(group);
    } catch {
      // A damaged record: describing or joining the group reports it.
    }
  }
  return groups;
}
