/**
 * Seeded simulation of group churn on the pure state machine
 * (lib/coordinator/group_state.ts): simulated consumers join (v4+, with
 * MEMBER_ID_REQUIRED), sync, heartbeat and commit like real clients, while a
 * seeded chaos schedule spawns members, makes them leave, crashes them,
 * pauses their heartbeats past the session timeout, restarts static members
 * under new ids, retries JoinGroups and fails group-record stores. Time is
 * simulated: the next event is whichever comes first of the group's own
 * deadline, a store completion, a client's heartbeat or the next chaos event.
 *
 * Checked after every step: state invariants, every request answered exactly
 * once, generations never go back, heartbeats never write, every join answer
 * of a generation agrees on leader and protocol, the leader sees each
 * member's metadata byte for byte, and each member gets exactly the bytes the
 * leader assigned it. After the chaos stops, the group must settle: Stable,
 * with exactly the live consumers as members, all in the current generation.
 * A seed replays identically.
 */
import assert from "node:assert/strict";
import {
  type Group,
  GROUP_STATES,
  type GroupConfig,
  type GroupEffect,
  type GroupEvent,
  newGroup,
  nextDeadline,
  step,
} from "../../lib/coordinator/group_state.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";

const E = ERROR_CODES;

/** Seeds run by the test; each is an independent churn scenario. */
const SEEDS = 40;
/** Chaos events per seed before the settle phase. */
const CHAOS_EVENTS = 300;
/** Live consumers at most (spawns beyond are skipped). */
const CLIENTS_LIVE_MAX = 7;
/** Simulated time the group gets to settle after the chaos stops. */
const SETTLE_MS = 180_000;
/** Loop bound per seed (events of every kind). */
const ITERATIONS_MAX = 500_000;

const SESSION_TIMEOUT_MS = 10_000;
const REBALANCE_TIMEOUT_MS = 20_000;
const HEARTBEAT_INTERVAL_MS = 3_000;
const RETRY_BACKOFF_MS = 100;

/** mulberry32: small, fast, seedable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Phase = "start" | "joining" | "syncing" | "stable" | "gone" | "crashed";

interface Client {
  readonly index: number;
  readonly clientId: string;
  readonly instanceId: string | null;
  readonly metadata: Uint8Array;
  memberId: string;
  generation: number;
  phase: Phase;
  /** The request this client waits for; answers to others are stale. */
  current: number | null;
  nextAt: number;
  mutedUntil: number;
}

interface RequestInfo {
  client: number;
  kind: "join" | "sync" | "heartbeat" | "leave" | "commit";
  generation: number;
  answered: boolean;
}

const bytesEqual = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

class World {
  group: Group;
  now = 0;
  readonly rand: () => number;
  readonly config: GroupConfig;
  readonly clients: Client[] = [];
  readonly requests = new Map<number, RequestInfo>();
  readonly stores: { token: number; at: number; errorCode: number }[] = [];
  readonly sentMetadata = new Map<string, Uint8Array>();
  /** generation → member (instance id, else member id) → assignment the leader sent. */
  readonly assignments = new Map<number, Map<string, Uint8Array>>();
  /** generation → leader and protocol every join answer must agree on. */
  readonly generations = new Map<number, { leader: string; protocol: string | null }>();
  readonly trace: string[] = [];
  storeFailureRate = 0.1;
  chaos = true;
  #nextRequestId = 1;
  #nextMemberId = 1;
  #nextInstance = 1;

  constructor(seed: number) {
    this.rand = prng(seed);
    this.group = newGroup(`sim-${seed}`);
    this.config = {
      initialRebalanceDelayMs: this.rand() < 0.5 ? 0 : 3_000,
      newMemberJoinTimeoutMs: 300_000,
      maxMembers: 100,
    };
  }

  int(max: number): number {
    return Math.floor(this.rand() * max);
  }

  pick<T>(items: T[]): T | undefined {
    return items.length === 0 ? undefined : items[this.int(items.length)];
  }

  // ---- the machine ----------------------------------------------------------

  apply(event: GroupEvent): void {
    const before = this.group;
    const { group, effects } = step(before, event, this.now, this.config);
    this.group = group;
    this.trace.push(`${this.now} ${event.type} ${effects.map((e) => e.type).join(",")}`);
    if (event.type === "heartbeat") {
      assert.ok(!effects.some((e) => e.type === "persist"), "a heartbeat wrote the group record");
    }
    assert.ok(group.generationId >= before.generationId, "generation went back");
    for (const effect of effects) this.#deliver(effect);
    this.#checkInvariants();
  }

  #deliver(effect: GroupEffect): void {
    if (effect.type === "note") return;
    if (effect.type === "persist") {
      if (effect.token !== null) {
        const fail = this.rand() < this.storeFailureRate;
        this.stores.push({
          token: effect.token,
          at: this.now + 1 + this.int(100),
          errorCode: fail ? E.COORDINATOR_NOT_AVAILABLE : E.NONE,
        });
      }
      return;
    }
    const info = this.requests.get(effect.requestId);
    assert.ok(info, `answer to unknown request ${effect.requestId}`);
    assert.equal(info.answered, false, `request ${effect.requestId} answered twice`);
    info.answered = true;
    const client = this.clients[info.client];
    // A join or sync the client has since replaced (a retry) is stale; heartbeats never are.
    const stale = (info.kind === "join" || info.kind === "sync") &&
      client.current !== effect.requestId;
    if (effect.type === "join-response") this.#checkJoin(effect.response);
    if (effect.type === "sync-response" && effect.response.errorCode === E.NONE) {
      // Whoever asks gets exactly what the leader sent for it in that generation.
      // Keyed by instance id for static members: a replaced incarnation keeps its assignment.
      const sent = this.assignments.get(info.generation)?.get(client.instanceId ?? client.memberId);
      assert.ok(
        bytesEqual(effect.response.assignment, sent ?? new Uint8Array()),
        `member ${client.memberId} got an assignment the leader did not send`,
      );
    }
    if (stale || client.phase === "crashed" || client.phase === "gone") return;
    if (!stale && (info.kind === "join" || info.kind === "sync")) client.current = null;
    switch (effect.type) {
      case "join-response":
        return this.#onJoin(client, effect.response);
      case "sync-response":
        return this.#onSync(client, effect.response.errorCode);
      case "heartbeat-response":
        return this.#onHeartbeat(client, effect.errorCode);
      case "commit-checked":
        return assert.ok(
          [
            E.NONE,
            E.REBALANCE_IN_PROGRESS,
            E.ILLEGAL_GENERATION,
            E.UNKNOWN_MEMBER_ID,
            E
              .FENCED_INSTANCE_ID,
          ].includes(effect.errorCode as 0),
          `commit answered ${effect.errorCode}`,
        );
    }
  }

  #checkJoin(r: import("../../lib/coordinator/group_state.ts").JoinOutcome): void {
    if (r.errorCode !== E.NONE) return;
    const seen = this.generations.get(r.generationId);
    if (seen) {
      assert.equal(r.protocolName, seen.protocol, "two protocols in one generation");
      if (!r.skipAssignment && seen.leader !== r.leader) {
        // Only a static leader replaced before v9 sees the old leader id; both name one leader.
        assert.ok(!this.group.members.has(seen.leader) || r.members.length === 0);
      }
    } else {
      this.generations.set(r.generationId, { leader: r.leader, protocol: r.protocolName });
    }
    for (const m of r.members) {
      const sent = this.sentMetadata.get(m.memberId);
      assert.ok(
        sent && bytesEqual(m.metadata, sent),
        `leader got altered metadata of ${m.memberId}`,
      );
    }
  }

  #checkInvariants(): void {
    const g = this.group;
    const S = GROUP_STATES;
    if (g.state === S.EMPTY) assert.equal(g.members.size, 0, "Empty group with members");
    if (g.state === S.COMPLETING_REBALANCE || g.state === S.STABLE) {
      assert.ok(g.members.size > 0, `${g.state} without members`);
      assert.notEqual(g.protocolName, null, `${g.state} without a protocol`);
    }
    if (g.state === S.PREPARING_REBALANCE) assert.notEqual(g.joinDeadline, null);
    if (g.members.size > 0) assert.ok(g.members.has(g.leaderId ?? ""), "leader is not a member");
    else assert.equal(g.leaderId, null);
    for (const [instance, memberId] of g.staticMembers) {
      assert.equal(g.members.get(memberId)?.groupInstanceId, instance, "static map out of sync");
    }
    for (const m of g.members.values()) {
      if (m.groupInstanceId !== null) {
        assert.equal(g.staticMembers.get(m.groupInstanceId), m.memberId);
      }
      for (const [id, kind] of [[m.joinRequestId, "join"], [m.syncRequestId, "sync"]] as const) {
        if (id === null) continue;
        const info = this.requests.get(id);
        assert.ok(
          info && info.kind === kind && !info.answered,
          `member holds a dead ${kind} ${id}`,
        );
      }
    }
    for (const id of g.pendingSyncMembers) {
      assert.ok(g.members.has(id), "pending sync of a non-member");
    }
  }

  // ---- clients ----------------------------------------------------------------

  spawn(instanceId: string | null = null): Client {
    const index = this.clients.length;
    const client: Client = {
      index,
      clientId: `c${index}`,
      instanceId,
      metadata: new Uint8Array([index, this.int(256), this.int(256), 0, 255]),
      memberId: "",
      generation: -1,
      phase: "start",
      current: null,
      nextAt: this.now,
      mutedUntil: 0,
    };
    this.clients.push(client);
    return client;
  }

  #send(client: Client, kind: RequestInfo["kind"], event: (id: number) => GroupEvent): number {
    const id = this.#nextRequestId++;
    this.requests.set(id, {
      client: client.index,
      kind,
      generation: client.generation,
      answered: false,
    });
    if (kind === "join" || kind === "sync") client.current = id;
    this.apply(event(id));
    return id;
  }

  join(client: Client): void {
    client.phase = "joining";
    client.nextAt = Infinity;
    const newMemberId = `${client.clientId}-m${this.#nextMemberId++}`;
    this.sentMetadata.set(client.memberId || newMemberId, client.metadata);
    this.#send(client, "join", (requestId) => ({
      type: "join",
      requestId,
      memberId: client.memberId,
      groupInstanceId: client.instanceId,
      clientId: client.clientId,
      clientHost: "/127.0.0.1",
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
      rebalanceTimeoutMs: REBALANCE_TIMEOUT_MS,
      protocolType: "consumer",
      protocols: [{ name: "range", metadata: client.metadata }],
      requireKnownMemberId: true,
      supportsSkipAssignment: this.rand() < 0.5,
      newMemberId,
    }));
  }

  #onJoin(client: Client, r: import("../../lib/coordinator/group_state.ts").JoinOutcome): void {
    switch (r.errorCode) {
      case E.MEMBER_ID_REQUIRED:
        client.memberId = r.memberId;
        return this.join(client);
      case E.NONE: {
        client.memberId = r.memberId;
        client.generation = r.generationId;
        client.phase = "syncing";
        const leads = r.leader === client.memberId && !r.skipAssignment;
        const assignments = leads
          ? r.members.map((m) => ({
            memberId: m.memberId,
            assignment: new TextEncoder().encode(`${r.generationId}:${m.memberId}`),
          }))
          : [];
        if (leads && !this.assignments.has(r.generationId)) {
          this.assignments.set(
            r.generationId,
            new Map(
              r.members.map((m, i) => [m.groupInstanceId ?? m.memberId, assignments[i].assignment]),
            ),
          );
        }
        return void this.#send(client, "sync", (requestId) => ({
          type: "sync",
          requestId,
          memberId: client.memberId,
          groupInstanceId: client.instanceId,
          generationId: client.generation,
          protocolType: "consumer",
          protocolName: r.protocolName,
          assignments,
        }));
      }
      case E.FENCED_INSTANCE_ID:
      case E.GROUP_MAX_SIZE_REACHED:
        client.phase = "gone";
        return;
      case E.UNKNOWN_MEMBER_ID:
        client.memberId = "";
        return this.#rejoinLater(client);
      default:
        return this.#rejoinLater(client);
    }
  }

  #onSync(client: Client, errorCode: number): void {
    if (errorCode === E.NONE) {
      client.phase = "stable";
      client.nextAt = this.now + HEARTBEAT_INTERVAL_MS;
      return;
    }
    if (errorCode === E.FENCED_INSTANCE_ID) return void (client.phase = "gone");
    if (errorCode === E.UNKNOWN_MEMBER_ID) client.memberId = "";
    this.#rejoinLater(client);
  }

  #onHeartbeat(client: Client, errorCode: number): void {
    if (client.phase !== "stable") return;
    switch (errorCode) {
      case E.NONE:
        return;
      case E.FENCED_INSTANCE_ID:
        client.phase = "gone";
        return;
      case E.UNKNOWN_MEMBER_ID:
        client.memberId = "";
        return this.#rejoinLater(client);
      default:
        return this.#rejoinLater(client);
    }
  }

  #rejoinLater(client: Client): void {
    client.phase = "start";
    client.nextAt = this.now + RETRY_BACKOFF_MS;
  }

  act(client: Client): void {
    if (client.phase === "start") return this.join(client);
    if (client.phase !== "stable") return void (client.nextAt = Infinity);
    if (this.now < client.mutedUntil) return void (client.nextAt = client.mutedUntil);
    client.nextAt = this.now + HEARTBEAT_INTERVAL_MS;
    this.#send(client, "heartbeat", (requestId) => ({
      type: "heartbeat",
      requestId,
      memberId: client.memberId,
      groupInstanceId: client.instanceId,
      generationId: client.generation,
    }));
    if (client.phase === "stable" && this.rand() < 0.3) {
      this.#send(client, "commit", (requestId) => ({
        type: "commit",
        requestId,
        memberId: client.memberId,
        groupInstanceId: client.instanceId,
        generationId: client.generation,
      }));
    }
  }

  leave(client: Client, byInstance = false): void {
    client.phase = "gone";
    this.#send(client, "leave", (requestId) => ({
      type: "leave",
      requestId,
      members: [{
        memberId: byInstance ? "" : client.memberId,
        groupInstanceId: client.instanceId,
      }],
    }));
  }

  live(): Client[] {
    return this.clients.filter((c) => c.phase !== "gone" && c.phase !== "crashed");
  }

  chaosEvent(): void {
    const live = this.live();
    const r = this.rand();
    if (r < 0.25) {
      if (live.length < CLIENTS_LIVE_MAX) {
        this.spawn(this.rand() < 0.3 ? `inst-${this.#nextInstance++}` : null);
      }
    } else if (r < 0.35) {
      const c = this.pick(live.filter((c) => c.memberId !== ""));
      if (c) this.leave(c);
    } else if (r < 0.45) {
      const c = this.pick(live);
      if (c) c.phase = "crashed";
    } else if (r < 0.6) {
      const c = this.pick(live);
      if (c) c.mutedUntil = this.now + this.int(2 * SESSION_TIMEOUT_MS);
    } else if (r < 0.7) {
      // A static member's process restarts: a new incarnation joins without a member id.
      const c = this.pick(live.filter((c) => c.instanceId !== null));
      if (c) {
        c.phase = "crashed";
        this.spawn(c.instanceId);
      }
    } else if (r < 0.8) {
      // A client whose JoinGroup timed out sends it again.
      const c = this.pick(live.filter((c) => c.phase === "joining" && c.memberId !== ""));
      if (c) this.join(c);
    } else if (r < 0.85) {
      const c = this.pick(live.filter((c) => c.instanceId !== null));
      if (c) this.leave(c, true);
    }
  }

  // ---- the event loop -------------------------------------------------------------

  /** Runs until `until` (simulated ms); chaos events come at random intervals while enabled. */
  run(until: number, chaosBudget: { left: number }): void {
    let nextChaos = this.now + this.int(2_000);
    for (let i = 0; i < ITERATIONS_MAX; i++) {
      const groupAt = nextDeadline(this.group) ?? Infinity;
      const store = this.stores.reduce<typeof this.stores[number] | null>(
        (best, s) => (best === null || s.at < best.at ? s : best),
        null,
      );
      const storeAt = store?.at ?? Infinity;
      const client = this.live().reduce<Client | null>(
        (best, c) => (best === null || c.nextAt < best.nextAt ? c : best),
        null,
      );
      const clientAt = client?.nextAt ?? Infinity;
      const chaosAt = this.chaos && chaosBudget.left > 0 ? nextChaos : Infinity;
      const at = Math.min(groupAt, storeAt, clientAt, chaosAt);
      if (at > until) {
        this.now = until;
        return;
      }
      this.now = Math.max(this.now, at);
      if (at === storeAt) {
        this.stores.splice(this.stores.indexOf(store!), 1);
        this.apply({ type: "stored", token: store!.token, errorCode: store!.errorCode });
      } else if (at === groupAt) {
        this.apply({ type: "tick" });
      } else if (at === clientAt) {
        this.act(client!);
      } else {
        chaosBudget.left--;
        this.chaosEvent();
        nextChaos = this.now + this.int(2_000);
      }
    }
    throw new Error(`No end after ${ITERATIONS_MAX} events at ${this.now} ms`);
  }
}

export function simulate(seed: number): World {
  const w = new World(seed);
  for (let i = 0; i < 3; i++) w.spawn(i === 0 ? "inst-0" : null);
  const budget = { left: CHAOS_EVENTS };
  while (budget.left > 0) w.run(w.now + 60_000, budget);
  // Calm: no more chaos or store failures; paused clients resume.
  w.chaos = false;
  w.storeFailureRate = 0;
  for (const c of w.live()) {
    c.mutedUntil = 0;
    if (c.phase === "stable") c.nextAt = Math.min(c.nextAt, w.now);
  }
  w.run(w.now + SETTLE_MS, budget);
  return w;
}

function assertSettled(w: World, seed: number): void {
  const g = w.group;
  const live = w.live();
  const context = `seed ${seed}: state ${g.state}, generation ${g.generationId}, members ` +
    `${JSON.stringify([...g.members.keys()])}, live ${
      JSON.stringify(live.map((c) => [c.memberId, c.phase, c.generation]))
    }`;
  if (live.length === 0) {
    assert.equal(g.state, GROUP_STATES.EMPTY, context);
    return;
  }
  assert.equal(g.state, GROUP_STATES.STABLE, context);
  assert.deepEqual(
    [...g.members.keys()].sort(),
    live.map((c) => c.memberId).sort(),
    context,
  );
  for (const c of live) {
    assert.equal(c.phase, "stable", context);
    assert.equal(c.generation, g.generationId, context);
  }
}

Deno.test("simulation: seeded churn keeps every invariant and settles to the live members", () => {
  let rebalances = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const w = simulate(seed);
    assertSettled(w, seed);
    // Give the group up: every request still held must be answered, exactly once.
    w.apply({ type: "unload", errorCode: E.NOT_COORDINATOR });
    const unanswered = [...w.requests].filter(([, r]) => !r.answered).map(([id]) => id);
    assert.deepEqual(unanswered, [], `seed ${seed}: requests never answered`);
    rebalances += w.group.generationId;
  }
  // The schedule must actually churn, or the test proves nothing.
  assert.ok(rebalances > SEEDS * 10, `only ${rebalances} generations over ${SEEDS} seeds`);
});

Deno.test("simulation: a seed replays identically", () => {
  const a = simulate(7).trace;
  const b = simulate(7).trace;
  assert.ok(a.length > 1_000);
  assert.deepEqual(a, b);
  assert.notDeepEqual(simulate(8).trace, a);
});
