/**
 * The stored form of a KIP-848 consumer group (lib/coordinator/consumer_groups.ts): what a new
 * coordinator needs to carry the group on after a failover without its members rejoining —
 * the group and assignment epochs, the assignor, the target assignment and, per member, its
 * identity, epochs, subscription and the partitions it holds or is revoking. JSON behind a
 * format version, kept by the MetadataStore as opaque bytes under `consumer-groups/<group>`
 * (cluster_metadata.ts).
 *
 * Not stored: heartbeat times (a loaded member gets a full session from the load on) and what
 * was last sent to each member (the first answer after a load carries the whole assignment).
 */
import type { AssignorName, ConsumerGroup, ConsumerMember } from "./consumer_groups.ts";
import { ASSIGNORS } from "./consumer_groups.ts";

export const CONSUMER_GROUP_RECORD_VERSION = 1;

/** A stored consumer group record that cannot be read: repair or delete the key. */
export class ConsumerGroupRecordError extends Error {
  override name = "ConsumerGroupRecordError";
}

/** A member as stored: what ConsumerMember holds, less the times and what was last sent. */
interface MemberJson extends
  Omit<
    ConsumerMember,
    "assigned" | "pendingRevocation" | "revokingSinceMs" | "lastHeartbeatMs" | "lastSent"
  > {
  assigned: string[];
  pendingRevocation: string[];
}

interface GroupJson {
  version: number;
  groupEpoch: number;
  assignmentEpoch: number;
  assignor: string;
  topology: string;
  members: MemberJson[];
  target: [string, string[]][];
}

/**
 * The group's stored form as a string: equal strings, equal stored state (members and keys in
 * a fixed order), so a caller writes only when it changed.
 */
export function consumerGroupSnapshot(group: ConsumerGroup): string {
  const members = [...group.members.values()]
    .sort((a, b) => a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0)
    .map((m): MemberJson => ({
      memberId: m.memberId,
      instanceId: m.instanceId,
      rackId: m.rackId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      memberEpoch: m.memberEpoch,
      previousMemberEpoch: m.previousMemberEpoch,
      rebalanceTimeoutMs: m.rebalanceTimeoutMs,
      subscribedTopicNames: m.subscribedTopicNames,
      subscribedTopicRegex: m.subscribedTopicRegex,
      serverAssignor: m.serverAssignor,
      assigned: [...m.assigned].sort(),
      pendingRevocation: [...m.pendingRevocation].sort(),
    }));
  const target = [...group.target]
    .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    .map(([memberId, keys]): [string, string[]] => [memberId, [...keys].sort()]);
  const json: GroupJson = {
    version: CONSUMER_GROUP_RECORD_VERSION,
    groupEpoch: group.groupEpoch,
    assignmentEpoch: group.assignmentEpoch,
    assignor: group.assignor,
    topology: group.topology,
    members,
    target,
  };
  return JSON.stringify(json);
}

export function encodeConsumerGroup(snapshot: string): Uint8Array {
  return new TextEncoder().encode(snapshot);
}

/**
 * The group from its stored bytes, as of `nowMs`: every member's session and any revocation
 * under way start at the load.
 */
export function decodeConsumerGroup(
  groupId: string,
  bytes: Uint8Array,
  nowMs: number,
): ConsumerGroup {
  const fail = (why: string, cause?: unknown) =>
    new ConsumerGroupRecordError(
      `Cannot read the stored consumer group record of "${groupId}": ${why}; ` +
        `delete the group or repair its record`,
      { cause },
    );
  let json: GroupJson;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (cause) {
    throw fail("it is not JSON", cause);
  }
  if (json?.version !== CONSUMER_GROUP_RECORD_VERSION) {
    throw fail(`unknown format version ${JSON.stringify(json?.version)}`);
  }
  if (
    !Array.isArray(json.members) || !Array.isArray(json.target) ||
    !Number.isInteger(json.groupEpoch) || !Number.isInteger(json.assignmentEpoch) ||
    !(ASSIGNORS as readonly string[]).includes(json.assignor)
  ) {
    throw fail("a field is missing or malformed");
  }
  const members = new Map<string, ConsumerMember>();
  for (const m of json.members) {
    if (typeof m?.memberId !== "string" || !Number.isInteger(m.memberEpoch)) {
      throw fail("a member is malformed");
    }
    members.set(m.memberId, {
      memberId: m.memberId,
      instanceId: m.instanceId ?? null,
      rackId: m.rackId ?? null,
      clientId: m.clientId ?? "",
      clientHost: m.clientHost ?? "",
      memberEpoch: m.memberEpoch,
      previousMemberEpoch: m.previousMemberEpoch ?? m.memberEpoch,
      rebalanceTimeoutMs: m.rebalanceTimeoutMs,
      subscribedTopicNames: m.subscribedTopicNames ?? [],
      subscribedTopicRegex: m.subscribedTopicRegex ?? null,
      serverAssignor: m.serverAssignor ?? null,
      assigned: new Set(m.assigned ?? []),
      pendingRevocation: new Set(m.pendingRevocation ?? []),
      revokingSinceMs: (m.pendingRevocation ?? []).length > 0 ? nowMs : null,
      lastHeartbeatMs: nowMs,
      lastSent: "",
    });
  }
  return {
    groupId,
    groupEpoch: json.groupEpoch,
    assignmentEpoch: json.assignmentEpoch,
    assignor: json.assignor as AssignorName,
    members,
    target: new Map(json.target.map(([memberId, keys]) => [memberId, new Set(keys)])),
    topology: typeof json.topology === "string" ? json.topology : "",
  };
}
