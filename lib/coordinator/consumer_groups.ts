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
 * State and rules are pure, with time passed in; `ConsumerGroupManager` keeps the groups of one
 * coordinator and their records in the metadata store (consumer_group_record.ts), so a new
 * coordinator carries a group on. The broker handler (consumer_group_heartbeat.ts) resolves
 * topics and checks ownership of the group.
 */

import { ERROR_CODES } from "../protocol/error_codes.ts";
import {
  consumerGroupSnapshot,
  decodeConsumerGroup,
  encodeConsumerGroup,
} from "./consumer_group_record.ts";

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
    // Refused before anything changes (a static member's place is not taken by a bad join).
    if (input.subscribedTopicNames === null && input.subscribedTopicRegex === null) {
      return {
        errorCode: ERROR_CODES.INVALID_REQUEST,
        errorMessage: "A joining member must send its subscription",
      };
    }
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

/** Where a coordinator keeps its groups' records (ClusterMetadata in the broker). */
export interface ConsumerGroupStore {
  getConsumerGroup(groupId: string): Promise<{ value: Uint8Array; modRevision: number } | null>;
  /** Writes (or, with null, deletes) if the revision and the owner epoch still match. */
  putConsumerGroupIfRevision(
    groupId: string,
    value: Uint8Array | null,
    expectedRevision: number,
    ownerEpoch?: number,
  ): Promise<number | "conflict">;
}

/** One group as this coordinator holds it. */
interface Slot {
  /** Null: the store holds no record of the group (under `ownerEpoch`). */
  group: ConsumerGroup | null;
  /**
   * The owner epoch the group was read under (null: no ownership, one broker); undefined: read
   * without knowing it, so the next heartbeat reads the store again.
   */
  ownerEpoch: number | null | undefined;
  /** modRevision of the stored record; 0 when none is stored. */
  revision: number;
  /** The snapshot last stored; "" when none is. */
  written: string;
}

/** Groups known to have no record that are kept, at most (the rest are read again). */
const ABSENT_SLOTS_MAX = 10_000;

/**
 * The groups of one coordinator, with session expiry on the injected clock, kept in the
 * metadata store (`ConsumerGroupStore`) when there is one: every heartbeat that changes what a
 * new coordinator needs (members, epochs, subscriptions, assignments) writes the group's record
 * before it is answered, with a compare on the record's revision and on the group's owner epoch
 * (the classic coordinator's owner key), so a broker that lost the group cannot write. A
 * coordinator that takes a group over (a new owner epoch) reads the record first: the members
 * carry on with their ids and epochs instead of rejoining. A failed or refused write drops the
 * group from memory, and the next heartbeat reads what the store has.
 */
export class ConsumerGroupManager {
  readonly #slots = new Map<string, Slot>();
  readonly #locks = new Map<string, Promise<void>>();
  readonly #now: () => number;
  readonly #store: ConsumerGroupStore | null;
  readonly #onLoad: ((group: ConsumerGroup) => void) | null;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  #topics: ReadonlyMap<string, TopicInfo> = new Map();

  constructor(opts: {
    now: () => number;
    sessionTimeoutMs: number;
    heartbeatIntervalMs: number;
    /** Where records are kept; none: groups live in memory only (tests of the rules). */
    store?: ConsumerGroupStore;
    /** Told of each group read from the store with members (for a log line). */
    onLoad?: (group: ConsumerGroup) => void;
  }) {
    this.#now = opts.now;
    this.sessionTimeoutMs = opts.sessionTimeoutMs;
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs;
    this.#store = opts.store ?? null;
    this.#onLoad = opts.onLoad ?? null;
  }

  /** The group, when it has members (a consumer-protocol group in use). */
  active(groupId: string): ConsumerGroup | null {
    const g = this.get(groupId);
    return g && g.members.size > 0 ? g : null;
  }

  /** The group, its expired members removed first (every read of a group expires it). */
  get(groupId: string): ConsumerGroup | undefined {
    const g = this.#slots.get(groupId)?.group ?? undefined;
    if (g) expireMembers(g, this.#now(), this.sessionTimeoutMs, this.#topics);
    return g;
  }

  groups(): ConsumerGroup[] {
    const now = this.#now();
    const out: ConsumerGroup[] = [];
    for (const slot of this.#slots.values()) {
      if (!slot.group) continue;
      expireMembers(slot.group, now, this.sessionTimeoutMs, this.#topics);
      out.push(slot.group);
    }
    return out;
  }

  /**
   * Makes sure the group is in memory as the store has it, for checks that read it (offset
   * commits, joins, deletes, describes): read once per owner epoch (`ownerEpoch` undefined:
   * read when not in memory). Rejects when the store cannot be read.
   */
  load(groupId: string, ownerEpoch: number | null | undefined): Promise<ConsumerGroup | null> {
    return this.#locked(groupId, async () => (await this.#slot(groupId, ownerEpoch)).group);
  }

  /**
   * One heartbeat, as the coordinator of the group under `ownerEpoch` (null: no ownership):
   * reads the group first when this epoch has not, and stores what changed before answering.
   */
  heartbeat(
    input: HeartbeatInput,
    topics: ReadonlyMap<string, TopicInfo>,
    newMemberId: () => string,
    ownerEpoch: number | null = null,
  ): Promise<HeartbeatOutcome> {
    this.#topics = topics;
    return this.#locked(input.groupId, async () => {
      let slot: Slot;
      try {
        slot = await this.#slot(input.groupId, ownerEpoch);
      } catch (err) {
        return unavailable(input.groupId, "read", err);
      }
      slot.group ??= newConsumerGroup(input.groupId);
      expireMembers(slot.group, this.#now(), this.sessionTimeoutMs, topics);
      const outcome = heartbeat(slot.group, input, topics, this.#now(), newMemberId);
      const stored = await this.#save(input.groupId, slot);
      return stored ?? outcome;
    });
  }

  /** Drops a group from memory (DeleteGroups removed it, or this broker lost it). */
  drop(groupId: string): void {
    this.#slots.delete(groupId);
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

  async #slot(groupId: string, ownerEpoch: number | null | undefined): Promise<Slot> {
    const held = this.#slots.get(groupId);
    if (held && (ownerEpoch === undefined || held.ownerEpoch === ownerEpoch)) return held;
    if (!this.#store) {
      const slot = held ?? { group: null, ownerEpoch, revision: 0, written: "" };
      slot.ownerEpoch = ownerEpoch;
      this.#slots.set(groupId, slot);
      return slot;
    }
    const stored = await this.#store.getConsumerGroup(groupId);
    const group = stored ? decodeConsumerGroup(groupId, stored.value, this.#now()) : null;
    const slot: Slot = {
      group,
      ownerEpoch,
      revision: stored?.modRevision ?? 0,
      written: group ? consumerGroupSnapshot(group) : "",
    };
    if (group === null && ownerEpoch === undefined) return slot; // Not known to be ours: not kept.
    if (group === null && this.#slots.size >= ABSENT_SLOTS_MAX) this.#dropAbsent();
    this.#slots.set(groupId, slot);
    if (group && group.members.size > 0) this.#onLoad?.(group);
    return slot;
  }

  /** Stores the group when its stored form changed; an error outcome when that failed. */
  async #save(groupId: string, slot: Slot): Promise<HeartbeatOutcome | null> {
    if (!this.#store || !slot.group) return null;
    const snapshot = slot.group.members.size > 0 ? consumerGroupSnapshot(slot.group) : "";
    if (snapshot === slot.written) return null;
    if (snapshot === "" && slot.revision === 0) {
      slot.written = "";
      return null;
    }
    let result: number | "conflict";
    try {
      result = await this.#store.putConsumerGroupIfRevision(
        groupId,
        snapshot === "" ? null : encodeConsumerGroup(snapshot),
        slot.revision,
        typeof slot.ownerEpoch === "number" ? slot.ownerEpoch : undefined,
      );
    } catch (err) {
      this.drop(groupId);
      return unavailable(groupId, "store", err);
    }
    if (result === "conflict") {
      // Another broker took the group over (or wrote it): this one is no longer its coordinator.
      this.drop(groupId);
      return {
        errorCode: ERROR_CODES.NOT_COORDINATOR,
        errorMessage: `Group "${groupId}" was taken over by another coordinator`,
      };
    }
    slot.revision = result;
    slot.written = snapshot;
    return null;
  }

  #dropAbsent(): void {
    for (const [id, slot] of this.#slots) if (slot.group === null) this.#slots.delete(id);
  }

  async #locked<T>(groupId: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#locks.get(groupId) ?? Promise.resolve();
    const { promise: mine, resolve: release } = Promise.withResolvers<void>();
    const chain = before.then(() => mine);
    this.#locks.set(groupId, chain);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.#locks.get(groupId) === chain) this.#locks.delete(groupId);
    }
  }
}

function unavailable(groupId: string, what: "read" | "store", err: unknown): HeartbeatOutcome {
  return {
    errorCode: ERROR_CODES.COORDINATOR_NOT_AVAILABLE,
    errorMessage: `Cannot ${what} the record of group "${groupId}": ${
      err instanceof Error ? err.message : String(err)
    }`,
  };
}
