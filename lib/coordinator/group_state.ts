/**
 * The consumer-group state machine (Kafka's classic group protocol, as in
 * Apache Kafka's GroupCoordinator): a pure function of (group, event, now)
 * to (group, effects).
 *
 *   Empty → PreparingRebalance → CompletingRebalance → Stable, and Dead.
 *
 * `step` never mutates its input and does no I/O: it reads no clock (time is
 * the `now` argument, monotonic milliseconds), draws no random numbers (new
 * member ids arrive inside the JoinGroup event) and answers requests by
 * returning effects. Requests whose answer must wait — JoinGroup until every
 * known member has rejoined or the rebalance timeout passes, SyncGroup until
 * the leader's assignment is stored — are "held": the member records the
 * request id, and a later step answers it exactly once (a held request is
 * answered by the step that completes it, supersedes it, fences it, removes
 * its member or unloads the group).
 *
 * The runtime (group_coordinator.ts) feeds events, executes effects (answers
 * requests, writes group records) and drives `tick` from timers at
 * `nextDeadline`. Tests drive it directly (tests/coordinator/).
 *
 * Must not import lib/broker, lib/server or lib/metadata: no sockets, no stores.
 */
import { ERROR_CODES } from "../protocol/error_codes.ts";

export const GROUP_STATES = {
  EMPTY: "Empty",
  PREPARING_REBALANCE: "PreparingRebalance",
  COMPLETING_REBALANCE: "CompletingRebalance",
  STABLE: "Stable",
  DEAD: "Dead",
} as const;

export type GroupStateName = typeof GROUP_STATES[keyof typeof GROUP_STATES];

const { EMPTY, PREPARING_REBALANCE, COMPLETING_REBALANCE, STABLE, DEAD } = GROUP_STATES;

/** The member id a JoinGroup carries before the coordinator assigned one. */
export const UNKNOWN_MEMBER_ID = "";

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

export interface GroupProtocol {
  readonly name: string;
  readonly metadata: Uint8Array;
}

/** One member. Immutable: steps replace member objects, never modify them. */
export interface Member {
  readonly memberId: string;
  /** `group.instance.id` of a static member (KIP-345), else null. */
  readonly groupInstanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  readonly protocolType: string;
  /** In the member's order of preference, metadata bytes exactly as sent. */
  readonly protocols: readonly GroupProtocol[];
  /** What the leader assigned this member in the current generation. */
  readonly assignment: Uint8Array;
  /** The held JoinGroup request, or null. */
  readonly joinRequestId: number | null;
  /** The held SyncGroup request, or null. */
  readonly syncRequestId: number | null;
  /** Joined but has not completed a rebalance yet (expires by the new-member join timeout). */
  readonly isNew: boolean;
  /** Monotonic ms after which the member expires unless it is awaiting a rebalance. */
  readonly heartbeatDeadline: number;
}

/** Kafka's InitialDelayedJoin (group.initial.rebalance.delay.ms) bookkeeping. */
export interface InitialDelay {
  remainingMs: number;
  newMemberAdded: boolean;
}

/** A store write whose outcome the machine waits for. */
export type PendingStore =
  | {
    readonly kind: "sync";
    readonly generationId: number;
    readonly assignments: ReadonlyMap<string, Uint8Array>;
  }
  | {
    readonly kind: "static-join";
    readonly requestId: number;
    readonly generationId: number;
    readonly groupInstanceId: string;
    readonly oldMember: Member;
    readonly newMemberId: string;
    /** The leader before the replacement (answered to pre-v9 joiners, as Kafka does). */
    readonly previousLeaderId: string | null;
    readonly supportsSkipAssignment: boolean;
  };

/** A group. Treat as immutable: `step` returns a new one. */
export interface Group {
  readonly groupId: string;
  readonly state: GroupStateName;
  readonly generationId: number;
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly leaderId: string | null;
  /** In join order. */
  readonly members: ReadonlyMap<string, Member>;
  /** Member ids handed out with MEMBER_ID_REQUIRED (KIP-394), with their expiry. */
  readonly pendingMembers: ReadonlyMap<string, number>;
  /** group.instance.id → member id. */
  readonly staticMembers: ReadonlyMap<string, string>;
  /** Members that have not sent SyncGroup for the current generation. */
  readonly pendingSyncMembers: ReadonlySet<string>;
  /** When the join phase ends regardless of missing members (PreparingRebalance). */
  readonly joinDeadline: number | null;
  readonly initialDelay: Readonly<InitialDelay> | null;
  /** When members that have not synced are removed (CompletingRebalance and Stable). */
  readonly syncDeadline: number | null;
  readonly pendingStores: ReadonlyMap<number, PendingStore>;
  readonly nextStoreToken: number;
}

export interface GroupConfig {
  /** Kafka's group.initial.rebalance.delay.ms. */
  readonly initialRebalanceDelayMs: number;
  /** How long a new member may wait in its first JoinGroup (Kafka: 5 minutes). */
  readonly newMemberJoinTimeoutMs: number;
  /** Members plus pending members (MEMBER_ID_REQUIRED) a group may hold. */
  readonly maxMembers: number;
}

// ---- events -------------------------------------------------------------

export interface JoinEvent {
  readonly type: "join";
  readonly requestId: number;
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  readonly protocolType: string;
  readonly protocols: readonly GroupProtocol[];
  /** JoinGroup v4+: a member without an id first gets MEMBER_ID_REQUIRED (KIP-394). */
  readonly requireKnownMemberId: boolean;
  /** JoinGroup v9+: a static leader rejoining a stable group may skip the assignment. */
  readonly supportsSkipAssignment: boolean;
  /** The id this member gets if it needs a new one (the caller makes it unique). */
  readonly newMemberId: string;
}

export interface SyncEvent {
  readonly type: "sync";
  readonly requestId: number;
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly generationId: number;
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly assignments: readonly { memberId: string; assignment: Uint8Array }[];
}

export interface HeartbeatEvent {
  readonly type: "heartbeat";
  readonly requestId: number;
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly generationId: number;
}

export interface MemberIdentity {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
}

export interface LeaveEvent {
  readonly type: "leave";
  readonly requestId: number;
  readonly members: readonly MemberIdentity[];
}

/** Validates an OffsetCommit's member and generation (the offsets are stored by the caller). */
export interface CommitEvent {
  readonly type: "commit";
  readonly requestId: number;
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly generationId: number;
}

export interface TickEvent {
  readonly type: "tick";
}

/** The outcome of a `persist` effect that carried a token. */
export interface StoredEvent {
  readonly type: "stored";
  readonly token: number;
  readonly errorCode: number;
}

export interface DeleteEvent {
  readonly type: "delete";
  readonly requestId: number;
}

/** The broker gives the group up (shutdown, or another owner wrote it): held requests get `errorCode`. */
export interface UnloadEvent {
  readonly type: "unload";
  readonly errorCode: number;
}

export type GroupEvent =
  | JoinEvent
  | SyncEvent
  | HeartbeatEvent
  | LeaveEvent
  | CommitEvent
  | TickEvent
  | StoredEvent
  | DeleteEvent
  | UnloadEvent;

// ---- effects ------------------------------------------------------------

export interface JoinMemberInfo {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly metadata: Uint8Array;
}

export interface JoinOutcome {
  readonly errorCode: number;
  readonly generationId: number;
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly leader: string;
  readonly skipAssignment: boolean;
  readonly memberId: string;
  /** Every member's metadata for the chosen protocol, for the leader only. */
  readonly members: readonly JoinMemberInfo[];
}

export interface SyncOutcome {
  readonly errorCode: number;
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly assignment: Uint8Array;
}

export interface LeaveMemberOutcome {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly errorCode: number;
}

/** What the store keeps of a group: written on state changes, never on heartbeats. */
export interface GroupRecord {
  readonly groupId: string;
  readonly state: "Empty" | "Stable";
  readonly generationId: number;
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly leaderId: string | null;
  readonly members: readonly StoredMember[];
}

export interface StoredMember {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  /** The member's metadata for the group's protocol. */
  readonly metadata: Uint8Array;
  readonly assignment: Uint8Array;
}

/** Something worth a log line or a metric; no behaviour hangs on it. */
export type GroupNote =
  | { kind: "member-joined"; memberId: string }
  | { kind: "member-removed"; memberId: string; reason: string }
  | { kind: "rebalance-started"; reason: string }
  | { kind: "generation-completed"; generationId: number; members: number; protocol: string }
  | { kind: "group-empty"; generationId: number }
  | { kind: "group-stable"; generationId: number };

export type GroupEffect =
  | { readonly type: "join-response"; readonly requestId: number; readonly response: JoinOutcome }
  | { readonly type: "sync-response"; readonly requestId: number; readonly response: SyncOutcome }
  | { readonly type: "heartbeat-response"; readonly requestId: number; readonly errorCode: number }
  | {
    readonly type: "leave-response";
    readonly requestId: number;
    readonly errorCode: number;
    readonly members: readonly LeaveMemberOutcome[];
  }
  | { readonly type: "commit-checked"; readonly requestId: number; readonly errorCode: number }
  | { readonly type: "delete-checked"; readonly requestId: number; readonly errorCode: number }
  /** Write `record`; when `token` is set, feed back a `stored` event with the outcome. */
  | { readonly type: "persist"; readonly record: GroupRecord; readonly token: number | null }
  | { readonly type: "note"; readonly note: GroupNote };

export interface StepResult {
  readonly group: Group;
  readonly effects: GroupEffect[];
}

// ---- construction -------------------------------------------------------

/** A group that exists only by name: no members, generation 0. */
export function newGroup(groupId: string): Group {
  return {
    groupId,
    state: EMPTY,
    generationId: 0,
    protocolType: null,
    protocolName: null,
    leaderId: null,
    members: new Map(),
    pendingMembers: new Map(),
    staticMembers: new Map(),
    pendingSyncMembers: new Set(),
    joinDeadline: null,
    initialDelay: null,
    syncDeadline: null,
    pendingStores: new Map(),
    nextStoreToken: 1,
  };
}

/**
 * The group as a broker that takes it over sees it (Kafka's loadGroup): a
 * stored generation with members is Stable, its members' session timers
 * start now; without members it is Empty.
 */
export function groupFromRecord(record: GroupRecord, now: number): Group {
  const members = new Map<string, Member>();
  const staticMembers = new Map<string, string>();
  for (const m of record.members) {
    members.set(m.memberId, {
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      sessionTimeoutMs: m.sessionTimeoutMs,
      rebalanceTimeoutMs: m.rebalanceTimeoutMs,
      protocolType: record.protocolType ?? "",
      protocols: [{ name: record.protocolName ?? "", metadata: m.metadata }],
      assignment: m.assignment,
      joinRequestId: null,
      syncRequestId: null,
      isNew: false,
      heartbeatDeadline: now + m.sessionTimeoutMs,
    });
    if (m.groupInstanceId !== null) staticMembers.set(m.groupInstanceId, m.memberId);
  }
  const leaderId = record.leaderId !== null && members.has(record.leaderId)
    ? record.leaderId
    : (members.keys().next().value ?? null);
  return {
    ...newGroup(record.groupId),
    state: members.size > 0 ? STABLE : EMPTY,
    generationId: record.generationId,
    protocolType: record.protocolType,
    protocolName: members.size > 0 ? record.protocolName : null,
    leaderId,
    members,
    staticMembers,
  };
}

// ---- queries --------------------------------------------------------------

/** When the next `tick` has something to do, or null. */
export function nextDeadline(g: Group): number | null {
  let at = Infinity;
  for (const m of g.members.values()) {
    if (!keptAlive(m)) at = Math.min(at, m.heartbeatDeadline);
  }
  for (const deadline of g.pendingMembers.values()) at = Math.min(at, deadline);
  if (g.state === PREPARING_REBALANCE && g.joinDeadline !== null) {
    at = Math.min(at, g.joinDeadline);
  }
  if (g.syncDeadline !== null) at = Math.min(at, g.syncDeadline);
  return at === Infinity ? null : at;
}

export interface MemberDescription {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly metadata: Uint8Array;
  readonly assignment: Uint8Array;
}

export interface GroupDescription {
  readonly groupId: string;
  readonly state: GroupStateName;
  readonly protocolType: string;
  /** The chosen protocol (Stable only), else "". */
  readonly protocolData: string;
  readonly members: readonly MemberDescription[];
}

/** DescribeGroups' view (Kafka's GroupMetadata.summary): metadata and assignments only when Stable. */
export function describeGroup(g: Group): GroupDescription {
  const stable = g.state === STABLE;
  return {
    groupId: g.groupId,
    state: g.state,
    protocolType: g.protocolType ?? "",
    protocolData: stable ? g.protocolName ?? "" : "",
    members: [...g.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      metadata: stable ? protocolMetadata(m, g.protocolName) : EMPTY_BYTES,
      assignment: stable ? m.assignment : EMPTY_BYTES,
    })),
  };
}

/** The record the store keeps for the group as it is now. */
export function groupRecord(g: Group, state: "Empty" | "Stable" = storedState(g)): GroupRecord {
  return {
    groupId: g.groupId,
    state,
    generationId: g.generationId,
    protocolType: g.protocolType,
    protocolName: g.protocolName,
    leaderId: g.leaderId,
    members: [...g.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      sessionTimeoutMs: m.sessionTimeoutMs,
      rebalanceTimeoutMs: m.rebalanceTimeoutMs,
      metadata: protocolMetadata(m, g.protocolName),
      assignment: m.assignment,
    })),
  };
}

function storedState(g: Group): "Empty" | "Stable" {
  return g.members.size === 0 ? "Empty" : "Stable";
}

// ---- the transition function ----------------------------------------------

interface Draft {
  groupId: string;
  state: GroupStateName;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leaderId: string | null;
  members: Map<string, Member>;
  pendingMembers: Map<string, number>;
  staticMembers: Map<string, string>;
  pendingSyncMembers: Set<string>;
  joinDeadline: number | null;
  initialDelay: InitialDelay | null;
  syncDeadline: number | null;
  pendingStores: Map<number, PendingStore>;
  nextStoreToken: number;
}

interface Ctx {
  readonly g: Draft;
  readonly fx: GroupEffect[];
  readonly now: number;
  readonly config: GroupConfig;
}

function draft(g: Group): Draft {
  return {
    ...g,
    members: new Map(g.members),
    pendingMembers: new Map(g.pendingMembers),
    staticMembers: new Map(g.staticMembers),
    pendingSyncMembers: new Set(g.pendingSyncMembers),
    initialDelay: g.initialDelay ? { ...g.initialDelay } : null,
    pendingStores: new Map(g.pendingStores),
  };
}

/** Applies one event. Pure: `prev` is not modified. */
export function step(prev: Group, event: GroupEvent, now: number, config: GroupConfig): StepResult {
  const t: Ctx = { g: draft(prev), fx: [], now, config };
  switch (event.type) {
    case "join":
      onJoin(t, event);
      break;
    case "sync":
      onSync(t, event);
      break;
    case "heartbeat":
      onHeartbeat(t, event);
      break;
    case "leave":
      onLeave(t, event);
      break;
    case "commit":
      onCommit(t, event);
      break;
    case "tick":
      onTick(t);
      break;
    case "stored":
      onStored(t, event);
      break;
    case "delete":
      onDelete(t, event);
      break;
    case "unload":
      onUnload(t, event);
      break;
  }
  return { group: t.g, effects: t.fx };
}

// ---- responses --------------------------------------------------------------

/** A JoinGroup answer that carries only an error (and, for MEMBER_ID_REQUIRED, the new id). */
export function joinError(memberId: string, errorCode: number): JoinOutcome {
  return {
    errorCode,
    generationId: -1,
    protocolType: null,
    protocolName: null,
    leader: "",
    skipAssignment: false,
    memberId,
    members: [],
  };
}

/** A SyncGroup answer that carries only an error. */
export function syncError(errorCode: number): SyncOutcome {
  return { errorCode, protocolType: null, protocolName: null, assignment: EMPTY_BYTES };
}

function respondJoin(t: Ctx, requestId: number, response: JoinOutcome): void {
  t.fx.push({ type: "join-response", requestId, response });
}

function respondSync(t: Ctx, requestId: number, response: SyncOutcome): void {
  t.fx.push({ type: "sync-response", requestId, response });
}

function note(t: Ctx, n: GroupNote): void {
  t.fx.push({ type: "note", note: n });
}

/** Answers the member's held JoinGroup (if any) and clears it. */
function answerHeldJoin(t: Ctx, memberId: string, response: (m: Member) => JoinOutcome): void {
  const m = t.g.members.get(memberId);
  if (!m || m.joinRequestId === null) return;
  respondJoin(t, m.joinRequestId, response(m));
  t.g.members.set(memberId, { ...m, joinRequestId: null });
}

/** Answers the member's held SyncGroup (if any) and clears it. */
function answerHeldSync(t: Ctx, memberId: string, response: (m: Member) => SyncOutcome): void {
  const m = t.g.members.get(memberId);
  if (!m || m.syncRequestId === null) return;
  respondSync(t, m.syncRequestId, response(m));
  t.g.members.set(memberId, { ...m, syncRequestId: null });
}

function joinSuccess(t: Ctx, m: Member, withMembers: boolean, skipAssignment = false): JoinOutcome {
  const g = t.g;
  return {
    errorCode: ERROR_CODES.NONE,
    generationId: g.generationId,
    protocolType: g.protocolType,
    protocolName: g.protocolName,
    leader: g.leaderId ?? "",
    skipAssignment,
    memberId: m.memberId,
    members: withMembers ? currentMemberMetadata(g) : [],
  };
}

// ---- helpers ------------------------------------------------------------------

/** A member awaiting a rebalance response does not expire (unless it is new). */
function keptAlive(m: Member): boolean {
  return !m.isNew && (m.joinRequestId !== null || m.syncRequestId !== null);
}

function refreshHeartbeat(t: Ctx, memberId: string): void {
  const m = t.g.members.get(memberId);
  if (m) t.g.members.set(memberId, { ...m, heartbeatDeadline: t.now + m.sessionTimeoutMs });
}

function isStaticMemberFenced(g: Draft, groupInstanceId: string | null, memberId: string): boolean {
  if (groupInstanceId === null) return false;
  const current = g.staticMembers.get(groupInstanceId);
  return current !== undefined && current !== memberId;
}

function groupRebalanceTimeoutMs(g: Draft): number {
  let max = 0;
  for (const m of g.members.values()) max = Math.max(max, m.rebalanceTimeoutMs);
  return max;
}

function protocolMetadata(m: Member, protocolName: string | null): Uint8Array {
  return m.protocols.find((p) => p.name === protocolName)?.metadata ?? EMPTY_BYTES;
}

function currentMemberMetadata(g: Draft): JoinMemberInfo[] {
  return [...g.members.values()].map((m) => ({
    memberId: m.memberId,
    groupInstanceId: m.groupInstanceId,
    metadata: protocolMetadata(m, g.protocolName),
  }));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameProtocols(m: Member, protocols: readonly GroupProtocol[]): boolean {
  return m.protocols.length === protocols.length &&
    m.protocols.every((p, i) =>
      p.name === protocols[i].name && sameBytes(p.metadata, protocols[i].metadata)
    );
}

/** Kafka's supportsProtocols: the type matches and one protocol is supported by every member. */
function supportsProtocols(
  g: Draft,
  protocolType: string,
  protocols: readonly GroupProtocol[],
): boolean {
  if (protocolType === "" || protocols.length === 0) return false;
  if (g.state === EMPTY) return true;
  if (g.protocolType !== null && g.protocolType !== protocolType) return false;
  if (g.members.size === 0) return true;
  const counts = protocolCounts(g);
  return protocols.some((p) => counts.get(p.name) === g.members.size);
}

function protocolCounts(g: Draft): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of g.members.values()) {
    for (const name of new Set(m.protocols.map((p) => p.name))) {
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
  }
  return counts;
}

/**
 * Kafka's selectProtocol: among the protocols every member supports, each
 * member votes for its most preferred; the most votes wins, ties going to the
 * leader's preference.
 */
function selectProtocol(g: Draft): string {
  const counts = protocolCounts(g);
  const candidates = new Set([...counts].filter(([, n]) => n === g.members.size).map(([p]) => p));
  if (candidates.size === 0) {
    throw new Error(`Group "${g.groupId}" has no protocol that every member supports`);
  }
  const votes = new Map<string, number>();
  for (const m of g.members.values()) {
    const vote = m.protocols.find((p) => candidates.has(p.name))!.name;
    votes.set(vote, (votes.get(vote) ?? 0) + 1);
  }
  const leader = g.members.get(g.leaderId ?? "") ?? g.members.values().next().value!;
  let best = "";
  let bestVotes = -1;
  for (const p of leader.protocols) {
    const n = votes.get(p.name) ?? -1;
    if (n > bestVotes) {
      best = p.name;
      bestVotes = n;
    }
  }
  return best;
}

function isFull(t: Ctx): boolean {
  return t.g.members.size + t.g.pendingMembers.size >= t.config.maxMembers;
}

/** Renames a member in place (keeps its join order). */
function renameMember(g: Draft, from: string, to: Member): void {
  const entries = [...g.members].map(([id, m]): [string, Member] =>
    id === from ? [to.memberId, to] : [id, m]
  );
  g.members = new Map(entries);
  if (g.leaderId === from) g.leaderId = to.memberId;
  if (g.pendingSyncMembers.delete(from)) g.pendingSyncMembers.add(to.memberId);
  if (to.groupInstanceId !== null) g.staticMembers.set(to.groupInstanceId, to.memberId);
}

function persist(t: Ctx, record: GroupRecord, pending?: PendingStore): void {
  let token: number | null = null;
  if (pending) {
    token = t.g.nextStoreToken++;
    t.g.pendingStores.set(token, pending);
  }
  t.fx.push({ type: "persist", record, token });
}

// ---- membership -----------------------------------------------------------------

/** Removes a member; its held requests are answered with `errorCode`. */
function removeMember(t: Ctx, memberId: string, reason: string, errorCode: number): void {
  const g = t.g;
  if (!g.members.has(memberId)) return;
  answerHeldJoin(t, memberId, () => joinError(UNKNOWN_MEMBER_ID, errorCode));
  answerHeldSync(t, memberId, () => syncError(errorCode));
  const m = g.members.get(memberId)!;
  g.members.delete(memberId);
  if (m.groupInstanceId !== null && g.staticMembers.get(m.groupInstanceId) === memberId) {
    g.staticMembers.delete(m.groupInstanceId);
  }
  g.pendingSyncMembers.delete(memberId);
  if (g.leaderId === memberId) g.leaderId = g.members.keys().next().value ?? null;
  note(t, { kind: "member-removed", memberId, reason });
}

function removeMemberAndUpdateGroup(t: Ctx, memberId: string, reason: string): void {
  removeMember(t, memberId, reason, ERROR_CODES.UNKNOWN_MEMBER_ID);
  switch (t.g.state) {
    case STABLE:
    case COMPLETING_REBALANCE:
      prepareRebalance(t, reason);
      break;
    case PREPARING_REBALANCE:
      maybeCompleteJoin(t);
      break;
  }
}

function removePendingMemberAndUpdateGroup(t: Ctx, memberId: string): void {
  t.g.pendingMembers.delete(memberId);
  if (t.g.state === PREPARING_REBALANCE) maybeCompleteJoin(t);
}

// ---- rebalance ----------------------------------------------------------------------

function maybePrepareRebalance(t: Ctx, reason: string): void {
  const s = t.g.state;
  if (s === STABLE || s === COMPLETING_REBALANCE || s === EMPTY) prepareRebalance(t, reason);
}

function prepareRebalance(t: Ctx, reason: string): void {
  const g = t.g;
  if (g.state === COMPLETING_REBALANCE) {
    resetAndPropagateAssignmentError(t, ERROR_CODES.REBALANCE_IN_PROGRESS);
  }
  g.pendingSyncMembers.clear();
  g.syncDeadline = null;
  if (g.state === EMPTY) {
    const delay = t.config.initialRebalanceDelayMs;
    g.initialDelay = {
      remainingMs: Math.max(groupRebalanceTimeoutMs(g) - delay, 0),
      newMemberAdded: false,
    };
    g.joinDeadline = t.now + delay;
  } else {
    g.initialDelay = null;
    g.joinDeadline = t.now + groupRebalanceTimeoutMs(g);
  }
  g.state = PREPARING_REBALANCE;
  note(t, { kind: "rebalance-started", reason });
  // Kafka's tryCompleteElseWatch: a group whose members all rejoined (or left) needs no wait.
  maybeCompleteJoin(t);
}

/** Clears every assignment and answers held SyncGroups with `errorCode`. */
function resetAndPropagateAssignmentError(t: Ctx, errorCode: number): void {
  for (const [id, m] of t.g.members) {
    t.g.members.set(id, { ...m, assignment: EMPTY_BYTES });
    answerHeldSync(t, id, () => syncError(errorCode));
  }
}

function hasAllMembersJoined(g: Draft): boolean {
  if (g.pendingMembers.size > 0) return false;
  for (const m of g.members.values()) if (m.joinRequestId === null) return false;
  return true;
}

/** The join phase ends early once everyone rejoined, except during the initial delay. */
function maybeCompleteJoin(t: Ctx): void {
  const g = t.g;
  if (g.state === PREPARING_REBALANCE && g.initialDelay === null && hasAllMembersJoined(g)) {
    completeJoin(t);
  }
}

function onJoinDeadline(t: Ctx): void {
  const g = t.g;
  const delay = g.initialDelay;
  if (delay && delay.newMemberAdded && delay.remainingMs > 0) {
    // Kafka's InitialDelayedJoin: wait another delay while members keep arriving.
    const next = Math.min(t.config.initialRebalanceDelayMs, delay.remainingMs);
    g.initialDelay = {
      remainingMs: Math.max(delay.remainingMs - t.config.initialRebalanceDelayMs, 0),
      newMemberAdded: false,
    };
    g.joinDeadline = t.now + next;
    return;
  }
  completeJoin(t);
}

/** If the leader did not rejoin, another member that did becomes leader; false if none did. */
function maybeElectNewJoinedLeader(g: Draft): boolean {
  const leader = g.leaderId === null ? undefined : g.members.get(g.leaderId);
  if (leader && leader.joinRequestId !== null) return true;
  for (const m of g.members.values()) {
    if (m.joinRequestId !== null) {
      g.leaderId = m.memberId;
      return true;
    }
  }
  return false;
}

/** Kafka's onCompleteJoin: a new generation, or Empty when nobody is left. */
function completeJoin(t: Ctx): void {
  const g = t.g;
  for (const m of [...g.members.values()]) {
    if (m.joinRequestId === null && m.groupInstanceId === null) {
      removeMember(t, m.memberId, "did not rejoin in time", ERROR_CODES.UNKNOWN_MEMBER_ID);
    }
  }
  g.initialDelay = null;
  if (g.members.size > 0 && !maybeElectNewJoinedLeader(g)) {
    // Only static members that have not rejoined: wait for them (or their session timeout).
    g.joinDeadline = t.now + groupRebalanceTimeoutMs(g);
    return;
  }
  g.joinDeadline = null;
  g.generationId++;
  if (g.members.size === 0) {
    g.protocolName = null;
    g.state = EMPTY;
    g.leaderId = null;
    note(t, { kind: "group-empty", generationId: g.generationId });
    persist(t, groupRecord(g, "Empty"));
    return;
  }
  g.protocolName = selectProtocol(g);
  g.state = COMPLETING_REBALANCE;
  for (const id of g.members.keys()) {
    answerHeldJoin(t, id, (m) => joinSuccess(t, m, id === g.leaderId));
    const m = g.members.get(id)!;
    g.members.set(id, { ...m, isNew: false, heartbeatDeadline: t.now + m.sessionTimeoutMs });
    g.pendingSyncMembers.add(id);
  }
  g.syncDeadline = t.now + groupRebalanceTimeoutMs(g);
  note(t, {
    kind: "generation-completed",
    generationId: g.generationId,
    members: g.members.size,
    protocol: g.protocolName,
  });
}

// ---- JoinGroup ------------------------------------------------------------------------

function onJoin(t: Ctx, e: JoinEvent): void {
  const g = t.g;
  const fail = (code: number, memberId = e.memberId) =>
    respondJoin(t, e.requestId, joinError(memberId, code));
  if (g.state === DEAD) return fail(ERROR_CODES.COORDINATOR_NOT_AVAILABLE);
  if (e.memberId === UNKNOWN_MEMBER_ID) {
    joinNewMember(t, e, fail);
  } else {
    joinKnownMember(t, e, fail);
  }
  maybeCompleteJoin(t);
}

function joinNewMember(t: Ctx, e: JoinEvent, fail: (code: number) => void): void {
  const g = t.g;
  if (!supportsProtocols(g, e.protocolType, e.protocols)) {
    return fail(ERROR_CODES.INCONSISTENT_GROUP_PROTOCOL);
  }
  const staticId = e.groupInstanceId === null ? undefined : g.staticMembers.get(e.groupInstanceId);
  if (staticId === undefined && isFull(t)) return fail(ERROR_CODES.GROUP_MAX_SIZE_REACHED);
  if (staticId !== undefined) {
    updateStaticMemberAndRebalance(t, e, staticId);
  } else if (e.groupInstanceId === null && e.requireKnownMemberId) {
    // KIP-394: hand out the id first, so a client that never comes back costs only this entry.
    g.pendingMembers.set(e.newMemberId, t.now + e.sessionTimeoutMs);
    respondJoin(t, e.requestId, joinError(e.newMemberId, ERROR_CODES.MEMBER_ID_REQUIRED));
  } else {
    addMemberAndRebalance(t, e, e.newMemberId);
  }
}

function joinKnownMember(t: Ctx, e: JoinEvent, fail: (code: number) => void): void {
  const g = t.g;
  if (g.pendingMembers.has(e.memberId)) {
    if (!supportsProtocols(g, e.protocolType, e.protocols)) {
      return fail(ERROR_CODES.INCONSISTENT_GROUP_PROTOCOL);
    }
    g.pendingMembers.delete(e.memberId);
    return addMemberAndRebalance(t, e, e.memberId);
  }
  if (isStaticMemberFenced(g, e.groupInstanceId, e.memberId)) {
    return fail(ERROR_CODES.FENCED_INSTANCE_ID);
  }
  const member = g.members.get(e.memberId);
  if (!member) return fail(ERROR_CODES.UNKNOWN_MEMBER_ID);
  if (!supportsProtocols(g, e.protocolType, e.protocols)) {
    return fail(ERROR_CODES.INCONSISTENT_GROUP_PROTOCOL);
  }
  const isLeader = g.leaderId === e.memberId;
  switch (g.state) {
    case PREPARING_REBALANCE:
      return updateMemberAndRebalance(t, member, e);
    case COMPLETING_REBALANCE:
      if (!sameProtocols(member, e.protocols)) return updateMemberAndRebalance(t, member, e);
      // The member lost our JoinGroup response: send it again.
      refreshHeartbeat(t, e.memberId);
      return respondJoin(t, e.requestId, joinSuccess(t, member, isLeader));
    case STABLE:
      if (isLeader || !sameProtocols(member, e.protocols)) {
        return updateMemberAndRebalance(t, member, e);
      }
      refreshHeartbeat(t, e.memberId);
      return respondJoin(t, e.requestId, joinSuccess(t, member, false));
    default:
      return fail(ERROR_CODES.UNKNOWN_MEMBER_ID);
  }
}

function addMemberAndRebalance(t: Ctx, e: JoinEvent, memberId: string): void {
  const g = t.g;
  const member: Member = {
    memberId,
    groupInstanceId: e.groupInstanceId,
    clientId: e.clientId,
    clientHost: e.clientHost,
    sessionTimeoutMs: e.sessionTimeoutMs,
    rebalanceTimeoutMs: e.rebalanceTimeoutMs,
    protocolType: e.protocolType,
    protocols: e.protocols,
    assignment: EMPTY_BYTES,
    joinRequestId: e.requestId,
    syncRequestId: null,
    isNew: true,
    heartbeatDeadline: t.now + t.config.newMemberJoinTimeoutMs,
  };
  if (g.members.size === 0) g.protocolType = e.protocolType;
  g.members.set(memberId, member);
  if (g.leaderId === null) g.leaderId = memberId;
  if (e.groupInstanceId !== null) g.staticMembers.set(e.groupInstanceId, memberId);
  g.pendingMembers.delete(memberId);
  if (g.state === PREPARING_REBALANCE && g.generationId === 0 && g.initialDelay) {
    g.initialDelay.newMemberAdded = true;
  }
  note(t, { kind: "member-joined", memberId });
  maybePrepareRebalance(t, `member "${memberId}" joined`);
}

function updateMemberAndRebalance(t: Ctx, member: Member, e: JoinEvent): void {
  // A second JoinGroup for the same member (a client retry) supersedes the held one.
  answerHeldJoin(
    t,
    member.memberId,
    () => joinError(member.memberId, ERROR_CODES.REBALANCE_IN_PROGRESS),
  );
  t.g.members.set(member.memberId, {
    ...t.g.members.get(member.memberId)!,
    clientId: e.clientId,
    clientHost: e.clientHost,
    sessionTimeoutMs: e.sessionTimeoutMs,
    rebalanceTimeoutMs: e.rebalanceTimeoutMs,
    protocolType: e.protocolType,
    protocols: e.protocols,
    joinRequestId: e.requestId,
  });
  maybePrepareRebalance(t, `member "${member.memberId}" rejoined`);
}

/** KIP-345: a static member rejoining without its member id replaces its old incarnation. */
function updateStaticMemberAndRebalance(t: Ctx, e: JoinEvent, oldMemberId: string): void {
  const g = t.g;
  const previousLeaderId = g.leaderId;
  // Fence whatever the old incarnation is waiting for.
  answerHeldJoin(t, oldMemberId, () => joinError(oldMemberId, ERROR_CODES.FENCED_INSTANCE_ID));
  answerHeldSync(t, oldMemberId, () => syncError(ERROR_CODES.FENCED_INSTANCE_ID));
  const oldMember = g.members.get(oldMemberId)!;
  renameMember(g, oldMemberId, {
    ...oldMember,
    memberId: e.newMemberId,
    clientId: e.clientId,
    clientHost: e.clientHost,
    sessionTimeoutMs: e.sessionTimeoutMs,
    rebalanceTimeoutMs: e.rebalanceTimeoutMs,
    protocolType: e.protocolType,
    protocols: e.protocols,
    joinRequestId: e.requestId,
    heartbeatDeadline: t.now + e.sessionTimeoutMs,
  });
  switch (g.state) {
    case STABLE: {
      if (selectProtocol(g) !== g.protocolName) {
        return prepareRebalance(t, `static member "${e.groupInstanceId}" changed protocols`);
      }
      // No rebalance: store the new member id, then answer (see onStored).
      return persist(t, groupRecord(g), {
        kind: "static-join",
        requestId: e.requestId,
        generationId: g.generationId,
        groupInstanceId: e.groupInstanceId!,
        oldMember,
        newMemberId: e.newMemberId,
        previousLeaderId,
        supportsSkipAssignment: e.supportsSkipAssignment,
      });
    }
    case COMPLETING_REBALANCE:
      // The leader may have computed an assignment for the old id: rebalance again.
      return prepareRebalance(t, `static member "${e.groupInstanceId}" rejoined`);
    case PREPARING_REBALANCE:
      return;
    default:
      throw new Error(`Group "${g.groupId}" has a static member while ${g.state}`);
  }
}

// ---- SyncGroup ------------------------------------------------------------------------

function onSync(t: Ctx, e: SyncEvent): void {
  const g = t.g;
  const fail = (code: number) => respondSync(t, e.requestId, syncError(code));
  if (g.state === DEAD) return fail(ERROR_CODES.COORDINATOR_NOT_AVAILABLE);
  if (isStaticMemberFenced(g, e.groupInstanceId, e.memberId)) {
    return fail(ERROR_CODES.FENCED_INSTANCE_ID);
  }
  const member = g.members.get(e.memberId);
  if (!member) return fail(ERROR_CODES.UNKNOWN_MEMBER_ID);
  if (e.generationId !== g.generationId) return fail(ERROR_CODES.ILLEGAL_GENERATION);
  if (
    (e.protocolType !== null && e.protocolType !== g.protocolType) ||
    (e.protocolName !== null && e.protocolName !== g.protocolName)
  ) {
    return fail(ERROR_CODES.INCONSISTENT_GROUP_PROTOCOL);
  }
  switch (g.state) {
    case EMPTY:
      return fail(ERROR_CODES.UNKNOWN_MEMBER_ID);
    case PREPARING_REBALANCE:
      return fail(ERROR_CODES.REBALANCE_IN_PROGRESS);
    case COMPLETING_REBALANCE:
      return syncCompleting(t, member, e);
    case STABLE:
      markSynced(t, e.memberId);
      return respondSync(t, e.requestId, {
        errorCode: ERROR_CODES.NONE,
        protocolType: g.protocolType,
        protocolName: g.protocolName,
        assignment: g.members.get(e.memberId)!.assignment,
      });
  }
}

function markSynced(t: Ctx, memberId: string): void {
  t.g.pendingSyncMembers.delete(memberId);
  if (t.g.pendingSyncMembers.size === 0) t.g.syncDeadline = null;
  refreshHeartbeat(t, memberId);
}

function syncCompleting(t: Ctx, member: Member, e: SyncEvent): void {
  const g = t.g;
  answerHeldSync(t, member.memberId, () => syncError(ERROR_CODES.REBALANCE_IN_PROGRESS));
  markSynced(t, member.memberId);
  g.members.set(member.memberId, {
    ...g.members.get(member.memberId)!,
    syncRequestId: e.requestId,
  });
  if (member.memberId !== g.leaderId) return;
  const storing = [...g.pendingStores.values()].some((p) =>
    p.kind === "sync" && p.generationId === g.generationId
  );
  if (storing) return;
  // The leader's assignment: members it left out get an empty one.
  const assignments = new Map<string, Uint8Array>();
  for (const a of e.assignments) {
    if (g.members.has(a.memberId)) assignments.set(a.memberId, a.assignment);
  }
  const stable: Draft = { ...g, members: new Map(g.members) };
  for (const [id, m] of stable.members) {
    stable.members.set(id, { ...m, assignment: assignments.get(id) ?? EMPTY_BYTES });
  }
  persist(t, groupRecord(stable, "Stable"), {
    kind: "sync",
    generationId: g.generationId,
    assignments,
  });
}

// ---- stores -----------------------------------------------------------------------------

function onStored(t: Ctx, e: StoredEvent): void {
  const g = t.g;
  const pending = g.pendingStores.get(e.token);
  if (!pending) return;
  g.pendingStores.delete(e.token);
  if (pending.kind === "sync") {
    if (g.state !== COMPLETING_REBALANCE || g.generationId !== pending.generationId) return;
    if (e.errorCode !== ERROR_CODES.NONE) {
      resetAndPropagateAssignmentError(t, e.errorCode);
      return prepareRebalance(t, "storing the assignment failed");
    }
    for (const [id, m] of g.members) {
      g.members.set(id, { ...m, assignment: pending.assignments.get(id) ?? EMPTY_BYTES });
    }
    g.state = STABLE;
    for (const id of g.members.keys()) {
      const held = g.members.get(id)!.syncRequestId !== null;
      answerHeldSync(t, id, (m) => ({
        errorCode: ERROR_CODES.NONE,
        protocolType: g.protocolType,
        protocolName: g.protocolName,
        assignment: m.assignment,
      }));
      if (held) refreshHeartbeat(t, id);
    }
    note(t, { kind: "group-stable", generationId: g.generationId });
    return;
  }
  const m = g.members.get(pending.newMemberId);
  if (
    !m || m.joinRequestId !== pending.requestId || g.state !== STABLE ||
    g.generationId !== pending.generationId
  ) {
    return; // Overtaken by a rebalance: the held join is answered when it completes.
  }
  if (e.errorCode !== ERROR_CODES.NONE) {
    // Kafka reverts the replacement so the old incarnation keeps its place.
    renameMember(g, pending.newMemberId, {
      ...pending.oldMember,
      heartbeatDeadline: m.heartbeatDeadline,
    });
    return respondJoin(t, pending.requestId, {
      ...joinError(UNKNOWN_MEMBER_ID, e.errorCode),
      generationId: g.generationId,
      protocolType: g.protocolType,
      protocolName: g.protocolName,
      leader: pending.previousLeaderId ?? "",
    });
  }
  const isLeader = g.leaderId === pending.newMemberId;
  refreshHeartbeat(t, pending.newMemberId);
  if (pending.supportsSkipAssignment) {
    // JoinGroup v9 (KIP-814): the static leader learns it leads but keeps the assignment.
    answerHeldJoin(t, pending.newMemberId, (member) => joinSuccess(t, member, isLeader, isLeader));
  } else {
    // Before v9 the old leader id is returned, so a rejoining leader does not reassign.
    answerHeldJoin(t, pending.newMemberId, (member) => ({
      ...joinSuccess(t, member, false),
      leader: pending.previousLeaderId ?? "",
    }));
  }
}

// ---- Heartbeat, LeaveGroup, OffsetCommit ------------------------------------------------

function onHeartbeat(t: Ctx, e: HeartbeatEvent): void {
  const g = t.g;
  const reply = (errorCode: number): void => {
    t.fx.push({ type: "heartbeat-response", requestId: e.requestId, errorCode });
  };
  if (g.state === DEAD) return reply(ERROR_CODES.COORDINATOR_NOT_AVAILABLE);
  if (isStaticMemberFenced(g, e.groupInstanceId, e.memberId)) {
    return reply(ERROR_CODES.FENCED_INSTANCE_ID);
  }
  if (!g.members.has(e.memberId)) return reply(ERROR_CODES.UNKNOWN_MEMBER_ID);
  if (e.generationId !== g.generationId) return reply(ERROR_CODES.ILLEGAL_GENERATION);
  switch (g.state) {
    case EMPTY:
      return reply(ERROR_CODES.UNKNOWN_MEMBER_ID);
    case PREPARING_REBALANCE:
      refreshHeartbeat(t, e.memberId);
      return reply(ERROR_CODES.REBALANCE_IN_PROGRESS);
    default:
      // CompletingRebalance too: members may heartbeat between JoinGroup and SyncGroup.
      refreshHeartbeat(t, e.memberId);
      return reply(ERROR_CODES.NONE);
  }
}

function onLeave(t: Ctx, e: LeaveEvent): void {
  const g = t.g;
  if (g.state === DEAD) {
    t.fx.push({
      type: "leave-response",
      requestId: e.requestId,
      errorCode: ERROR_CODES.COORDINATOR_NOT_AVAILABLE,
      members: [],
    });
    return;
  }
  const members = e.members.map((who): LeaveMemberOutcome => {
    const result = (errorCode: number) => ({ ...who, errorCode });
    if (who.memberId === UNKNOWN_MEMBER_ID) {
      // Administrative removal by group.instance.id (KIP-345).
      const current = who.groupInstanceId === null
        ? undefined
        : g.staticMembers.get(who.groupInstanceId);
      if (current === undefined) return result(ERROR_CODES.UNKNOWN_MEMBER_ID);
      removeMemberAndUpdateGroup(t, current, "left the group");
      return result(ERROR_CODES.NONE);
    }
    if (g.pendingMembers.has(who.memberId)) {
      removePendingMemberAndUpdateGroup(t, who.memberId);
      return result(ERROR_CODES.NONE);
    }
    if (isStaticMemberFenced(g, who.groupInstanceId, who.memberId)) {
      return result(ERROR_CODES.FENCED_INSTANCE_ID);
    }
    if (!g.members.has(who.memberId)) return result(ERROR_CODES.UNKNOWN_MEMBER_ID);
    removeMemberAndUpdateGroup(t, who.memberId, "left the group");
    return result(ERROR_CODES.NONE);
  });
  t.fx.push({
    type: "leave-response",
    requestId: e.requestId,
    errorCode: ERROR_CODES.NONE,
    members,
  });
}

function onCommit(t: Ctx, e: CommitEvent): void {
  const g = t.g;
  const reply = (errorCode: number): void => {
    t.fx.push({ type: "commit-checked", requestId: e.requestId, errorCode });
  };
  if (g.state === DEAD) return reply(ERROR_CODES.COORDINATOR_NOT_AVAILABLE);
  if (isStaticMemberFenced(g, e.groupInstanceId, e.memberId)) {
    return reply(ERROR_CODES.FENCED_INSTANCE_ID);
  }
  // Standalone consumers (assign(), no group membership) commit with generation -1.
  if (e.generationId < 0 && g.state === EMPTY) return reply(ERROR_CODES.NONE);
  if (!g.members.has(e.memberId)) return reply(ERROR_CODES.UNKNOWN_MEMBER_ID);
  if (e.generationId !== g.generationId) return reply(ERROR_CODES.ILLEGAL_GENERATION);
  switch (g.state) {
    case STABLE:
    case PREPARING_REBALANCE:
      // During PreparingRebalance commits still count: the heartbeat tells members to rejoin.
      refreshHeartbeat(t, e.memberId);
      return reply(ERROR_CODES.NONE);
    default:
      return reply(ERROR_CODES.REBALANCE_IN_PROGRESS);
  }
}

// ---- time, deletion, unloading ------------------------------------------------------------

function onTick(t: Ctx): void {
  const g = t.g;
  if (g.state === DEAD) return;
  for (const m of [...g.members.values()]) {
    const current = g.members.get(m.memberId);
    if (current && !keptAlive(current) && t.now >= current.heartbeatDeadline) {
      removeMemberAndUpdateGroup(
        t,
        m.memberId,
        current.isNew ? "new member join timeout expired" : "session timeout expired",
      );
    }
  }
  for (const [id, deadline] of [...g.pendingMembers]) {
    if (t.now >= deadline) removePendingMemberAndUpdateGroup(t, id);
  }
  if (g.state === PREPARING_REBALANCE && g.joinDeadline !== null && t.now >= g.joinDeadline) {
    onJoinDeadline(t);
  }
  if (g.syncDeadline !== null && t.now >= g.syncDeadline) {
    g.syncDeadline = null;
    if (
      (g.state === COMPLETING_REBALANCE || g.state === STABLE) && g.pendingSyncMembers.size > 0
    ) {
      for (const id of [...g.pendingSyncMembers]) {
        removeMember(t, id, "did not sync in time", ERROR_CODES.UNKNOWN_MEMBER_ID);
      }
      prepareRebalance(t, "members did not sync in time");
      maybeCompleteJoin(t);
    }
  }
}

function onDelete(t: Ctx, e: DeleteEvent): void {
  const g = t.g;
  const reply = (errorCode: number): void => {
    t.fx.push({ type: "delete-checked", requestId: e.requestId, errorCode });
  };
  if (g.state === DEAD) return reply(ERROR_CODES.GROUP_ID_NOT_FOUND);
  if (g.state !== EMPTY) return reply(ERROR_CODES.NON_EMPTY_GROUP);
  g.state = DEAD;
  g.pendingMembers.clear();
  g.joinDeadline = null;
  g.initialDelay = null;
  g.syncDeadline = null;
  reply(ERROR_CODES.NONE);
}

function onUnload(t: Ctx, e: UnloadEvent): void {
  const g = t.g;
  for (const id of g.members.keys()) {
    answerHeldJoin(t, id, () => joinError(id, e.errorCode));
    answerHeldSync(t, id, () => syncError(e.errorCode));
  }
  g.state = DEAD;
  g.pendingMembers.clear();
  g.pendingStores.clear();
  g.joinDeadline = null;
  g.initialDelay = null;
  g.syncDeadline = null;
}
