/**
 * Consumer groups of the KIP-848 protocol (ConsumerGroupHeartbeat): the broker, not a group
 * leader, assigns partitions. Each group has an epoch, bumped by every change of its members,
 * their subscriptions or the subscribed topics' partitions; each change recomputes the target
 * assignment with a server-side assignor (`uniform`, sticky, or `range`). Each member moves to
 * its target by heartbeats:
 *
 * 1. Partitions it holds that its target no longer has are revoked first: the answer leaves them
 *    out, and they stay "pending revocation" until the member's heartbeat no longer lists them
 *    among its owned partitions (or it leaves, or its rebalance timeout passes and it is removed).
 * 2. Only then is its member epoch moved to the group's, and it gets the partitions of its target
 *    that no other member holds or is still revoking. Partitions still held elsewhere come with
 *    later heartbeats. So a partition is never assigned to two members at once.
 *
 * Member epochs fence zombies: a heartbeat with an epoch other than the member's (or its
 * previous one, for a lost answer) gets FENCED_MEMBER_EPOCH, an unknown member UNKNOWN_MEMBER_ID,
 * and the client rejoins with epoch 0. Members that stop heartbeating for the session timeout
 * are removed. Epoch -1 leaves; -2 leaves a static member (its instance id may come back).
 *
 * Pure state and rules, with time passed in: the broker handler (consumer_group_heartbeat.ts)
 * resolves topics and checks ownership of the group; groups live in the memory of the broker
 * that coordinates them (committed offsets are in the metadata store as for classic groups): a
 * coordinator change makes members rejoin.
 */

import { ERROR_CODES } from "../protocol/error_codes.ts";

/** `topicId:partition`. */
export type TopicPartitionKey = string;

export interface TopicInfo {
  name: string;
  id: string;
  partitions: number;
}

export const ASSIGNORS = ["uniform", "range"] as const;
export type AssignorName = (typeof ASSIGNORS)[number];

export interface ConsumerMember {
  memberId: string;
  instanceId: string | null;
  rackId: string | null;
  clientId: string;
  clientHost: string;
  memberEpoch: number;
  previousMemberEpoch: number;
  rebalanceTimeoutMs: number;
  subscribedTopicNames: string[];
  subscribedTopicRegex: string | null;
  serverAssignor: string | null;
  /** What the member was last told it holds. */
  assigned: Set<TopicPartitionKey>;
  /** Partitions taken from it that it has not yet confirmed releasing, and since when. */
  pendingRevocation: Set<TopicPartitionKey>;
  revokingSinceMs: number | null;
  lastHeartbeatMs: number;
  /** The assignment last sent, serialized, to answer only changes. */
  lastSent: string;
}

export interface ConsumerGroup {
  groupId: string;
  groupEpoch: number;
  assignmentEpoch: number;
  assignor: AssignorName;
  members: Map<string, ConsumerMember>;
  target: Map<string, Set<TopicPartitionKey>>;
  /** The subscribed topics' ids and partition counts at the last target computation. */
  topology: string;
}

export interface HeartbeatInput {
  groupId: string;
  memberId: string;
  memberEpoch: number;
  instanceId: string | null;
  rackId: string | null;
  rebalanceTimeoutMs: number;
  subscribedTopicNames: string[] | null;
  subscribedTopicRegex: string | null;
  serverAssignor: string | null;
  /** Owned partitions by topic id, or null when unchanged since the last heartbeat. */
  ownedPartitions: { topicId: string; partitions: number[] }[] | null;
  clientId: string;
  clientHost: string;
}

export type HeartbeatOutcome =
  | {
    errorCode: 0;
    memberId: string;
    memberEpoch: number;
    /** The member's full assignment by topic id, or null when it did not change. */
    assignment: { topicId: string; partitions: number[] }[] | null;
  }
  | { errorCode: number; errorMessage: string };

const LEAVE_EPOCH = -1;
const STATIC_LEAVE_EPOCH = -2;

export function newConsumerGroup(groupId: string): ConsumerGroup {
  return {
    groupId,
    groupEpoch: 0,
    assignmentEpoch: 0,
    assignor: "uniform",
    members: new Map(),
    target: new Map(),
    topology: "",
  };
}

/** Kafka's consumer group states, from the members' progress. */
export function groupState(group: ConsumerGroup): "Empty" | "Assigning" | "Reconciling" | "Stable" {
  if (group.members.size === 0) return "Empty";
  if (group.assignmentEpoch < group.groupEpoch) return "Assigning";
  for (const m of group.members.values()) {
    if (m.memberEpoch !== group.assignmentEpoch || m.pendingRevocation.size > 0) {
      return "Reconciling";
    }
  }
  return "Stable";
}

/**
 * A RE2/J subscription pattern as a JavaScript RegExp matching whole topic names (Kafka matches
 * the whole name). RE2 syntax JavaScript does not share (possessive and inline-flag groups
 * other than `(?i)`) is refused.
 */
export function compileTopicRegex(pattern: string): RegExp {
  let source = pattern;
  let flags = "";
  if (source.startsWith("(?i)")) {
    flags = "i";
    source = source.slice(4);
  }
  // RE2 has no lookaround or backreferences, and other inline flags JavaScript lacks.
  if (
    /\(\?[a-zA-Z]/.test(source.replace(/\(\?P</g, "(")) || /\(\?<?[=!]/.test(source) ||
    /[*+?}]\+/.test(source) || /\\[1-9pPQEz]/.test(source)
  ) {
    throw new SyntaxError(`Not RE2 syntax this broker accepts: "${pattern}"`);
  }
  return new RegExp(`^(?:${source.replace(/\(\?P</g, "(?<")})$`, flags);
}

function subscribedTopics(
  member: ConsumerMember,
  topics: ReadonlyMap<string, TopicInfo>,
): TopicInfo[] {
  const out = new Map<string, TopicInfo>();
  for (const name of member.subscribedTopicNames) {
    const t = topics.get(name);
    if (t) out.set(t.name, t);
  }
  if (member.subscribedTopicRegex !== null) {
    const re = compileTopicRegex(member.subscribedTopicRegex);
    for (const t of topics.values()) if (re.test(t.name)) out.set(t.name, t);
  }
  return [...out.values()];
}

function topologyOf(group: ConsumerGroup, topics: ReadonlyMap<string, TopicInfo>): string {
  const seen = new Map<string, TopicInfo>();
  for (const m of group.members.values()) {
    for (const t of subscribedTopics(m, topics)) seen.set(t.name, t);
  }
  return [...seen.values()]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((t) => `${t.id}:${t.partitions}`)
    .join(",") +
    `|${
      [...group.members.values()].map((m) =>
        `${m.memberId}=${m.subscribedTopicNames.join("+")}/${m.subscribedTopicRegex ?? ""}`
      ).sort().join(",")
    }`;
}

/** Recomputes the target assignment (after a change of members, subscriptions or topics). */
export function computeTarget(group: ConsumerGroup, topics: ReadonlyMap<string, TopicInfo>): void {
  const members = [...group.members.values()].sort((a, b) =>
    a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0
  );
  const eligible = new Map<TopicPartitionKey, string[]>();
  const ordered: TopicPartitionKey[] = [];
  const byTopic = new Map<string, { info: TopicInfo; members: string[] }>();
  for (const m of members) {
    for (const t of subscribedTopics(m, topics)) {
      const entry = byTopic.get(t.id) ?? { info: t, members: [] };
      entry.members.push(m.memberId);
      byTopic.set(t.id, entry);
    }
  }
  const target = new Map<string, Set<TopicPartitionKey>>(
    members.map((m) => [m.memberId, new Set()]),
  );
  const topicsSorted = [...byTopic.values()].sort((a, b) => (a.info.name < b.info.name ? -1 : 1));
  if (group.assignor === "range") {
    for (const { info, members: ids } of topicsSorted) {
      const per = Math.floor(info.partitions / ids.length);
      const extra = info.partitions % ids.length;
      let p = 0;
      ids.forEach((id, i) => {
        const n = per + (i < extra ? 1 : 0);
        for (let k = 0; k < n; k++, p++) target.get(id)!.add(`${info.id}:${p}`);
      });
    }
  } else {
    for (const { info, members: ids } of topicsSorted) {
      for (let p = 0; p < info.partitions; p++) {
        const key = `${info.id}:${p}`;
        eligible.set(key, ids);
        ordered.push(key);
      }
    }
    const quota = members.length === 0 ? 0 : Math.ceil(ordered.length / members.length);
    const taken = new Set<TopicPartitionKey>();
    // Sticky: each member keeps what it holds, up to the quota.
    for (const m of members) {
      for (const key of [...m.assigned].sort()) {
        const mine = target.get(m.memberId)!;
        if (mine.size >= quota) break;
        if (eligible.get(key)?.includes(m.memberId) && !taken.has(key)) {
          mine.add(key);
          taken.add(key);
        }
      }
    }
    for (const key of ordered) {
      if (taken.has(key)) continue;
      let best: string | null = null;
      for (const id of eligible.get(key)!) {
        if (best === null || target.get(id)!.size < target.get(best)!.size) best = id;
      }
      if (best !== null) {
        target.get(best)!.add(key);
        taken.add(key);
      }
    }
  }
  group.target = target;
  group.assignmentEpoch = group.groupEpoch;
}

function newMember(input: HeartbeatInput, memberId: string, nowMs: number): ConsumerMember {
  return {
    memberId,
    instanceId: input.instanceId,
    rackId: input.rackId,
    clientId: input.clientId,
    clientHost: input.clientHost,
    memberEpoch: 0,
    previousMemberEpoch: -1,
    rebalanceTimeoutMs: input.rebalanceTimeoutMs > 0 ? input.rebalanceTimeoutMs : 300_000,
    subscribedTopicNames: [],
    subscribedTopicRegex: null,
    serverAssignor: null,
    assigned: new Set(),
    pendingRevocation: new Set(),
    revokingSinceMs: null,
    lastHeartbeatMs: nowMs,
    lastSent: "",
  };
}

function bump(group: ConsumerGroup, topics: ReadonlyMap<string, TopicInfo>): void {
  group.groupEpoch++;
  computeTarget(group, topics);
  group.topology = topologyOf(group, topics);
}

/** Removes a member (it left, was fenced, or expired); its partitions are free again. */
export function removeMember(
  group: ConsumerGroup,
  memberId: string,
  topics: ReadonlyMap<string, TopicInfo>,
): boolean {
  if (!group.members.delete(memberId)) return false;
  bump(group, topics);
  return true;
}

/**
 * Members whose session timed out (no heartbeat for `sessionTimeoutMs`) or that kept partitions
 * past their rebalance timeout: removed. Returns their ids.
 */
export function expireMembers(
  group: ConsumerGroup,
  nowMs: number,
  sessionTimeoutMs: number,
  topics: ReadonlyMap<string, TopicInfo>,
): string[] {
  const gone: string[] = [];
  for (const m of group.members.values()) {
    const silent = nowMs - m.lastHeartbeatMs > sessionTimeoutMs;
    const stuck = m.revokingSinceMs !== null && nowMs - m.revokingSinceMs > m.rebalanceTimeoutMs;
    if (silent || stuck) gone.push(m.memberId);
  }
  for (const id of gone) removeMember(group, id, topics);
  return gone;
}

/** One ConsumerGroupHeartbeat (see the module comment). */
export function heartbeat(
  group: ConsumerGroup,
  input: HeartbeatInput,
  topics: ReadonlyMap<string, TopicInfo>,
  nowMs: number,
  newMemberId: () => string,
): HeartbeatOutcome {
  if (
    input.serverAssignor !== null &&
    !(ASSIGNORS as readonly string[]).includes(input.serverAssignor)
  ) {
    return {
      errorCode: ERROR_CODES.UNSUPPORTED_ASSIGNOR,
      errorMessage: `Assignor "${input.serverAssignor}" is not one of ${ASSIGNORS.join(", ")}`,
    };
  }
  if (input.subscribedTopicRegex !== null) {
    try {
      compileTopicRegex(input.subscribedTopicRegex);
    } catch (err) {
      return {
        errorCode: ERROR_CODES.INVALID_REGULAR_EXPRESSION,
        errorMessage: (err as Error).message,
      };
    }
  }
  if (input.memberEpoch === LEAVE_EPOCH || input.memberEpoch === STATIC_LEAVE_EPOCH) {
    const known = group.members.has(input.memberId);
    if (known) removeMember(group, input.memberId, topics);
    return known || input.memberId !== ""
      ? { errorCode: 0, memberId: input.memberId, memberEpoch: input.memberEpoch, assignment: null }
      : { errorCode: ERROR_CODES.UNKNOWN_MEMBER_ID, errorMessage: "Unknown member" };
  }
  let member: ConsumerMember;
  let changed = false;
  if (input.memberEpoch === 0) {
    const memberId = input.memberId !== "" ? input.memberId : newMemberId();
    if (input.instanceId !== null) {
      // A static member coming back (or a new process with its instance id) takes its place.
      for (const m of group.members.values()) {
        if (m.instanceId === input.instanceId && m.memberId !== memberId) {
          group.members.delete(m.memberId);
          changed = true;
        }
      }
    }
    if (input.subscribedTopicNames === null && input.subscribedTopicRegex === null) {
      return {
        errorCode: ERROR_CODES.INVALID_REQUEST,
        errorMessage: "A joining member must send its subscription",
      };
    }
    const existing = group.members.get(memberId);
    member = existing ?? newMember(input, memberId, nowMs);
    if (existing) {
      // A member rejoining with epoch 0 starts over: what it held is released.
      existing.assigned.clear();
      existing.pendingRevocation.clear();
      existing.revokingSinceMs = null;
      existing.memberEpoch = 0;
      existing.lastSent = "";
    }
    group.members.set(memberId, member);
    changed = true;
  } else {
    const known = group.members.get(input.memberId);
    if (!known) {
      return {
        errorCode: ERROR_CODES.UNKNOWN_MEMBER_ID,
        errorMessage: `Member "${input.memberId}" is not in group "${group.groupId}"`,
      };
    }
    if (
      input.memberEpoch !== known.memberEpoch && input.memberEpoch !== known.previousMemberEpoch
    ) {
      return {
        errorCode: ERROR_CODES.FENCED_MEMBER_EPOCH,
        errorMessage:
          `Member epoch ${input.memberEpoch} is not the member's (${known.memberEpoch})`,
      };
    }
    member = known;
  }
  member.lastHeartbeatMs = nowMs;
  if (input.rebalanceTimeoutMs > 0) member.rebalanceTimeoutMs = input.rebalanceTimeoutMs;
  if (input.subscribedTopicNames !== null) {
    const names = [...input.subscribedTopicNames].sort();
    if (names.join("\u0000") !== member.subscribedTopicNames.join("\u0000")) {
      member.subscribedTopicNames = names;
      changed = true;
    }
  }
  if (
    input.subscribedTopicRegex !== null &&
    input.subscribedTopicRegex !== member.subscribedTopicRegex
  ) {
    member.subscribedTopicRegex = input.subscribedTopicRegex === ""
      ? null
      : input.subscribedTopicRegex;
    changed = true;
  }
  if (input.serverAssignor !== null && input.serverAssignor !== group.assignor) {
    group.assignor = input.serverAssignor as AssignorName;
    changed = true;
  }
  if (changed || topologyOf(group, topics) !== group.topology) bump(group, topics);
  reconcile(group, member, input.ownedPartitions, nowMs);
  const assignment = [...member.assigned].sort();
  const serialized = `${member.memberEpoch}|${assignment.join(",")}`;
  const send = serialized !== member.lastSent;
  member.lastSent = serialized;
  return {
    errorCode: 0,
    memberId: member.memberId,
    memberEpoch: member.memberEpoch,
    assignment: send ? byTopic(assignment) : null,
  };
}

function reconcile(
  group: ConsumerGroup,
  member: ConsumerMember,
  owned: { topicId: string; partitions: number[] }[] | null,
  nowMs: number,
): void {
  const target = group.target.get(member.memberId) ?? new Set<TopicPartitionKey>();
  for (const key of member.assigned) {
    if (!target.has(key)) {
      member.assigned.delete(key);
      member.pendingRevocation.add(key);
    }
  }
  if (member.pendingRevocation.size > 0 && owned !== null) {
    const ownedNow = new Set(owned.flatMap((t) => t.partitions.map((p) => `${t.topicId}:${p}`)));
    for (const key of member.pendingRevocation) {
      if (!ownedNow.has(key)) member.pendingRevocation.delete(key);
    }
  }
  if (member.pendingRevocation.size > 0) {
    member.revokingSinceMs ??= nowMs;
    return;
  }
  member.revokingSinceMs = null;
  const held = new Set<TopicPartitionKey>();
  for (const other of group.members.values()) {
    if (other === member) continue;
    for (const key of other.assigned) held.add(key);
    for (const key of other.pendingRevocation) held.add(key);
  }
  for (const key of target) if (!held.has(key)) member.assigned.add(key);
  if (member.memberEpoch !== group.assignmentEpoch) {
    member.previousMemberEpoch = member.memberEpoch;
    member.memberEpoch = group.assignmentEpoch;
  }
}

/** `topicId:partition` keys grouped by topic id, partitions in order. */
export function byTopic(
  keys: Iterable<TopicPartitionKey>,
): { topicId: string; partitions: number[] }[] {
  const out = new Map<string, number[]>();
  for (const key of keys) {
    const at = key.lastIndexOf(":");
    const id = key.slice(0, at);
    out.set(id, [...(out.get(id) ?? []), Number(key.slice(at + 1))]);
  }
  return [...out].map(([topicId, partitions]) => ({
    topicId,
    partitions: partitions.sort((a, b) => a - b),
  }));
}

/** The groups of one coordinator, with session expiry on the injected clock. */
export class ConsumerGroupManager {
  readonly #groups = new Map<string, ConsumerGroup>();
  readonly #now: () => number;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  #topics: ReadonlyMap<string, TopicInfo> = new Map();

  constructor(opts: { now: () => number; sessionTimeoutMs: number; heartbeatIntervalMs: number }) {
    this.#now = opts.now;
    this.sessionTimeoutMs = opts.sessionTimeoutMs;
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs;
  }

  /** The group, when it has members (a consumer-protocol group in use). */
  active(groupId: string): ConsumerGroup | null {
    const g = this.get(groupId);
    return g && g.members.size > 0 ? g : null;
  }

  /** The group, its expired members removed first (every read of a group expires it). */
  get(groupId: string): ConsumerGroup | undefined {
    const g = this.#groups.get(groupId);
    if (g) expireMembers(g, this.#now(), this.sessionTimeoutMs, this.#topics);
    return g;
  }

  groups(): ConsumerGroup[] {
    const now = this.#now();
    for (const g of this.#groups.values()) {
      expireMembers(g, now, this.sessionTimeoutMs, this.#topics);
    }
    return [...this.#groups.values()];
  }

  heartbeat(
    input: HeartbeatInput,
    topics: ReadonlyMap<string, TopicInfo>,
    newMemberId: () => string,
  ): HeartbeatOutcome {
    this.#topics = topics;
    let group = this.get(input.groupId);
    if (!group) {
      group = newConsumerGroup(input.groupId);
      this.#groups.set(input.groupId, group);
    }
    return heartbeat(group, input, topics, this.#now(), newMemberId);
  }

  /** Drops a group (DeleteGroups of an empty group, or this broker lost it). */
  drop(groupId: string): void {
    this.#groups.delete(groupId);
  }

  /**
   * Checks an offset commit of a consumer-protocol group: NONE, UNKNOWN_MEMBER_ID, or
   * STALE_MEMBER_EPOCH when the member's epoch moved on (Kafka's rule).
   */
  checkCommit(groupId: string, memberId: string, memberEpoch: number): number {
    const group = this.active(groupId);
    if (!group) return ERROR_CODES.NONE;
    const member = group.members.get(memberId);
    if (!member) return ERROR_CODES.UNKNOWN_MEMBER_ID;
    if (memberEpoch !== member.memberEpoch) return ERROR_CODES.STALE_MEMBER_EPOCH;
    return ERROR_CODES.NONE;
  }
}
