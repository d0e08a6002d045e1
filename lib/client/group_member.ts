/**
 * A consumer group member for `kafscale consume --group` (the classic protocol, as Kafka's
 * console consumer): joins the group subscribed to one topic, the leader assigns partitions
 * with the range assignor, it heartbeats, follows rebalances, commits positions with its
 * generation, and leaves at the end. Minimal on purpose: one topic, no static membership, no
 * cooperative rebalancing.
 */
import { API_SCHEMAS } from "../protocol/generated/apis.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { Writer } from "../protocol/primitives.ts";
import { type AdminClient, AdminError, describeError, parseConsumerAssignment } from "./admin.ts";

export const SESSION_TIMEOUT_MS = 30_000;
export const REBALANCE_TIMEOUT_MS = 30_000;
export const HEARTBEAT_INTERVAL_MS = 3_000;
/** Rounds of join/sync a member tries before it gives up (each waits for the group). */
const JOIN_ATTEMPTS_MAX = 20;

/** ConsumerProtocolSubscription v0 for one topic. */
function subscription(topic: string): Uint8Array {
  const w = new Writer(64);
  w.int16(0);
  w.int32(1);
  w.string(topic);
  w.int32(-1); // no user data
  return w.finishBytes();
}

/** ConsumerProtocolAssignment v0. */
function assignmentBytes(topic: string, partitions: number[]): Uint8Array {
  const w = new Writer(64);
  w.int16(0);
  w.int32(1);
  w.string(topic);
  w.int32(partitions.length);
  for (const p of partitions) w.int32(p);
  w.int32(-1);
  return w.finishBytes();
}

/** The range assignor for one topic: members sorted by id, contiguous ranges. */
export function rangeAssign(memberIds: string[], partitions: number): Map<string, number[]> {
  const members = [...memberIds].sort();
  const out = new Map<string, number[]>();
  const per = Math.floor(partitions / members.length);
  const extra = partitions % members.length;
  let next = 0;
  members.forEach((m, i) => {
    const count = per + (i < extra ? 1 : 0);
    out.set(m, Array.from({ length: count }, (_, k) => next + k));
    next += count;
  });
  return out;
}

export class GroupMember {
  readonly #admin: AdminClient;
  readonly #group: string;
  readonly #topic: string;
  readonly #partitions: number;
  #coordinator = -1;
  #memberId = "";
  #generation = -1;
  #assigned: number[] = [];
  #lastHeartbeat = 0;

  constructor(admin: AdminClient, group: string, topic: string, partitions: number) {
    this.#admin = admin;
    this.#group = group;
    this.#topic = topic;
    this.#partitions = partitions;
  }

  get assigned(): readonly number[] {
    return this.#assigned;
  }

  /** Joins (or rejoins) the group; resolves with this member's partitions. */
  async join(): Promise<number[]> {
    for (let attempt = 0; attempt < JOIN_ATTEMPTS_MAX; attempt++) {
      if (this.#coordinator < 0) {
        this.#coordinator = await this.#admin.groupCoordinator(this.#group);
      }
      const joinSchema = API_SCHEMAS[11];
      const join = await this.#admin.request(this.#coordinator, joinSchema, 5, {
        groupId: this.#group,
        sessionTimeoutMs: SESSION_TIMEOUT_MS,
        rebalanceTimeoutMs: REBALANCE_TIMEOUT_MS,
        memberId: this.#memberId,
        groupInstanceId: null,
        protocolType: "consumer",
        protocols: [{ name: "range", metadata: subscription(this.#topic) }],
      });
      if (join.errorCode === ERROR_CODES.MEMBER_ID_REQUIRED) {
        this.#memberId = join.memberId;
        continue;
      }
      if (join.errorCode === ERROR_CODES.UNKNOWN_MEMBER_ID) {
        this.#memberId = "";
        continue;
      }
      if (this.#retriable(join.errorCode)) continue;
      this.#check(join.errorCode, "join");
      this.#memberId = join.memberId;
      this.#generation = join.generationId;
      const assignments = join.leader === join.memberId
        ? [...rangeAssign(join.members.map((m) => m.memberId), this.#partitions)].map((
          [memberId, partitions],
        ) => ({ memberId, assignment: assignmentBytes(this.#topic, partitions) }))
        : [];
      const sync = await this.#admin.request(this.#coordinator, API_SCHEMAS[14], 3, {
        groupId: this.#group,
        generationId: this.#generation,
        memberId: this.#memberId,
        groupInstanceId: null,
        assignments,
      });
      if (
        sync.errorCode === ERROR_CODES.REBALANCE_IN_PROGRESS || this.#retriable(sync.errorCode)
      ) {
        continue;
      }
      this.#check(sync.errorCode, "sync");
      this.#assigned = parseConsumerAssignment(sync.assignment)
        .filter((t) => t.topic === this.#topic)
        .flatMap((t) => t.partitions)
        .sort((a, b) => a - b);
      this.#lastHeartbeat = Date.now();
      return this.#assigned;
    }
    throw new AdminError(`Cannot join group "${this.#group}": the group keeps rebalancing`);
  }

  /**
   * Heartbeats when due. Resolves true when the group is rebalancing (the caller commits, then
   * calls `join` again).
   */
  async heartbeat(): Promise<boolean> {
    if (Date.now() - this.#lastHeartbeat < HEARTBEAT_INTERVAL_MS) return false;
    this.#lastHeartbeat = Date.now();
    const res = await this.#admin.request(this.#coordinator, API_SCHEMAS[12], 3, {
      groupId: this.#group,
      generationId: this.#generation,
      memberId: this.#memberId,
      groupInstanceId: null,
    });
    if (
      res.errorCode === ERROR_CODES.REBALANCE_IN_PROGRESS ||
      res.errorCode === ERROR_CODES.ILLEGAL_GENERATION
    ) {
      return true;
    }
    if (res.errorCode === ERROR_CODES.UNKNOWN_MEMBER_ID) {
      this.#memberId = "";
      return true;
    }
    if (this.#retriable(res.errorCode)) return false;
    this.#check(res.errorCode, "heartbeat");
    return false;
  }

  /** Committed offsets of the assigned partitions (-1: none). */
  async committed(): Promise<Map<number, number>> {
    const res = await this.#admin.request(this.#coordinator, API_SCHEMAS[9], 5, {
      groupId: this.#group,
      topics: [{ name: this.#topic, partitionIndexes: this.#assigned }],
      requireStable: false,
    });
    this.#check(res.errorCode ?? ERROR_CODES.NONE, "fetch the committed offsets");
    const out = new Map<number, number>();
    for (const t of res.topics ?? []) {
      for (const p of t.partitions) out.set(p.partitionIndex, p.committedOffset);
    }
    return out;
  }

  /** Commits `positions` (next offsets to read) with this member's generation. */
  async commit(positions: ReadonlyMap<number, number>): Promise<void> {
    const partitions = [...positions].filter(([p]) => this.#assigned.includes(p));
    if (partitions.length === 0 || this.#generation < 0) return;
    const res = await this.#admin.request(this.#coordinator, API_SCHEMAS[8], 7, {
      groupId: this.#group,
      generationIdOrMemberEpoch: this.#generation,
      memberId: this.#memberId,
      groupInstanceId: null,
      topics: [{
        name: this.#topic,
        partitions: partitions.map(([partitionIndex, committedOffset]) => ({
          partitionIndex,
          committedOffset,
          committedLeaderEpoch: -1,
          committedMetadata: "",
        })),
      }],
    });
    for (const t of res.topics) {
      for (const p of t.partitions) {
        if (p.errorCode === ERROR_CODES.NONE) continue;
        throw new AdminError(
          `Cannot commit partition ${p.partitionIndex} of "${this.#topic}" for group ` +
            `"${this.#group}": ${describeError(p.errorCode)}`,
          p.errorCode,
        );
      }
    }
  }

  /** Leaves the group (best effort: the session timeout removes a member that cannot). */
  async leave(): Promise<void> {
    if (this.#memberId === "" || this.#coordinator < 0) return;
    await this.#admin.request(this.#coordinator, API_SCHEMAS[13], 3, {
      groupId: this.#group,
      members: [{ memberId: this.#memberId, groupInstanceId: null }],
    }).catch(() => undefined);
  }

  #retriable(code: number): boolean {
    if (
      code === ERROR_CODES.NOT_COORDINATOR || code === ERROR_CODES.COORDINATOR_NOT_AVAILABLE ||
      code === ERROR_CODES.COORDINATOR_LOAD_IN_PROGRESS
    ) {
      this.#coordinator = -1;
      return true;
    }
    return false;
  }

  #check(code: number, what: string): void {
    if (code === ERROR_CODES.NONE) return;
    throw new AdminError(
      `Cannot ${what} in group "${this.#group}": ${describeError(code)}`,
      code,
    );
  }
}
