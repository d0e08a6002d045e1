/**
 * Drives the pure group state machine for tests: numbers requests, keeps the
 * clock, collects effects and finds the answer to a request.
 */
import {
  type Group,
  type GroupConfig,
  type GroupEffect,
  type GroupEvent,
  type GroupProtocol,
  type JoinOutcome,
  newGroup,
  nextDeadline,
  step,
  type SyncOutcome,
} from "../../lib/coordinator/group_state.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";

export const TEST_GROUP_CONFIG: GroupConfig = {
  initialRebalanceDelayMs: 3_000,
  newMemberJoinTimeoutMs: 300_000,
  maxMembers: 100,
};

/** Ticks one `advance` may take before the harness calls it a livelock. */
const ADVANCE_TICKS_MAX = 10_000;

const enc = new TextEncoder();

export function bytes(text: string): Uint8Array {
  return enc.encode(text);
}

export function protocols(...names: string[]): GroupProtocol[] {
  return names.map((name) => ({ name, metadata: bytes(`${name}-metadata`) }));
}

export interface JoinOptions {
  memberId?: string;
  groupInstanceId?: string | null;
  clientId?: string;
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  protocolType?: string;
  protocols?: GroupProtocol[];
  requireKnownMemberId?: boolean;
  supportsSkipAssignment?: boolean;
  newMemberId?: string;
}

export class GroupHarness {
  group: Group;
  now = 1_000_000;
  readonly config: GroupConfig;
  readonly effects: GroupEffect[] = [];
  #nextRequestId = 1;
  #nextMemberId = 1;

  constructor(groupId = "g", config: Partial<GroupConfig> = {}) {
    this.group = newGroup(groupId);
    this.config = { ...TEST_GROUP_CONFIG, ...config };
  }

  apply(event: GroupEvent): GroupEffect[] {
    const r = step(this.group, event, this.now, this.config);
    this.group = r.group;
    this.effects.push(...r.effects);
    return r.effects;
  }

  requestId(): number {
    return this.#nextRequestId++;
  }

  join(opts: JoinOptions = {}): number {
    const requestId = this.requestId();
    this.apply({
      type: "join",
      requestId,
      memberId: opts.memberId ?? "",
      groupInstanceId: opts.groupInstanceId ?? null,
      clientId: opts.clientId ?? "client",
      clientHost: "/127.0.0.1",
      sessionTimeoutMs: opts.sessionTimeoutMs ?? 10_000,
      rebalanceTimeoutMs: opts.rebalanceTimeoutMs ?? 30_000,
      protocolType: opts.protocolType ?? "consumer",
      protocols: opts.protocols ?? protocols("range"),
      requireKnownMemberId: opts.requireKnownMemberId ?? true,
      supportsSkipAssignment: opts.supportsSkipAssignment ?? false,
      newMemberId: opts.newMemberId ?? `member-${this.#nextMemberId++}`,
    });
    return requestId;
  }

  /**
   * A new member's join as a v4+ client does it: MEMBER_ID_REQUIRED, then the join with that id
   * (a static member joins at once). Returns the member id and the held request.
   */
  joinNew(opts: JoinOptions = {}): { memberId: string; requestId: number } {
    const newMemberId = opts.newMemberId ?? `member-${this.#nextMemberId++}`;
    if (opts.groupInstanceId) {
      return { memberId: newMemberId, requestId: this.join({ ...opts, newMemberId }) };
    }
    const first = this.join({ ...opts, newMemberId });
    const answer = this.joinResponse(first);
    if (answer?.errorCode !== ERROR_CODES.MEMBER_ID_REQUIRED) {
      throw new Error(`Expected MEMBER_ID_REQUIRED, got ${JSON.stringify(answer)}`);
    }
    return {
      memberId: answer.memberId,
      requestId: this.join({ ...opts, memberId: answer.memberId }),
    };
  }

  sync(
    memberId: string,
    generationId: number,
    assignments: { memberId: string; assignment: Uint8Array }[] = [],
    groupInstanceId: string | null = null,
  ): number {
    const requestId = this.requestId();
    this.apply({
      type: "sync",
      requestId,
      memberId,
      groupInstanceId,
      generationId,
      protocolType: null,
      protocolName: null,
      assignments,
    });
    return requestId;
  }

  heartbeat(memberId: string, generationId: number, groupInstanceId: string | null = null): number {
    const requestId = this.requestId();
    const fx = this.apply({
      type: "heartbeat",
      requestId,
      memberId,
      groupInstanceId,
      generationId,
    });
    const answer = fx.find((e) => e.type === "heartbeat-response" && e.requestId === requestId);
    if (!answer || answer.type !== "heartbeat-response") throw new Error("Heartbeat not answered");
    return answer.errorCode;
  }

  commit(memberId: string, generationId: number, groupInstanceId: string | null = null): number {
    const requestId = this.requestId();
    const fx = this.apply({ type: "commit", requestId, memberId, groupInstanceId, generationId });
    const answer = fx.find((e) => e.type === "commit-checked");
    if (!answer || answer.type !== "commit-checked") throw new Error("Commit not answered");
    return answer.errorCode;
  }

  joinResponse(requestId: number): JoinOutcome | undefined {
    const all = this.effects.filter((e) => e.type === "join-response" && e.requestId === requestId);
    if (all.length > 1) throw new Error(`Join request ${requestId} answered ${all.length} times`);
    const e = all[0];
    return e?.type === "join-response" ? e.response : undefined;
  }

  syncResponse(requestId: number): SyncOutcome | undefined {
    const all = this.effects.filter((e) => e.type === "sync-response" && e.requestId === requestId);
    if (all.length > 1) throw new Error(`Sync request ${requestId} answered ${all.length} times`);
    const e = all[0];
    return e?.type === "sync-response" ? e.response : undefined;
  }

  /** Persist effects with a token that have not been answered by `stored` yet. */
  pendingStoreTokens(): number[] {
    return [...this.group.pendingStores.keys()];
  }

  /** Completes every store the machine waits for. */
  storeAll(errorCode: number = ERROR_CODES.NONE): void {
    for (const token of this.pendingStoreTokens()) this.apply({ type: "stored", token, errorCode });
  }

  /** Moves time forward, ticking at every deadline on the way (like the runtime's timer). */
  advance(ms: number): void {
    const target = this.now + ms;
    for (let ticks = 0;; ticks++) {
      if (ticks > ADVANCE_TICKS_MAX) throw new Error(`No progress after ${ticks} ticks`);
      const at = nextDeadline(this.group);
      if (at === null || at > target) break;
      this.now = Math.max(this.now, at);
      this.apply({ type: "tick" });
    }
    this.now = target;
  }
}
