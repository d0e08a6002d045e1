/**
 * Seeded simulation through the coordinator runtime (lib/coordinator/group_coordinator.ts) on a
 * ManualClock and an in-memory MetadataStore: the timers the runtime arms on the clock, its
 * async store writes and its held requests, under joins, leaves, crashes and missed heartbeats.
 * (group_simulation_test.ts churns the pure state machine much harder; this one checks the
 * runtime around it.)
 *
 * Checked: every request is answered (none hangs past the run), the group settles to exactly
 * the live members once the chaos stops, and a stable group's heartbeats write nothing.
 */
import assert from "node:assert/strict";
import { GroupCoordinator } from "../../lib/coordinator/group_coordinator.ts";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { ManualClock } from "../../lib/util/clock.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";

const E = ERROR_CODES;
const SEEDS = 8;
/** Simulated time per round, and rounds of chaos then of calm. */
const ROUND_MS = 250;
const CHAOS_ROUNDS = 400;
const CALM_ROUNDS = 600;
const CLIENTS_LIVE_MAX = 5;
const SESSION_TIMEOUT_MS = 6_000;
const HEARTBEAT_INTERVAL_MS = 1_000;

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

/** Let the store's promise chains and the coordinator's continuations run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 30; i++) await new Promise<void>((r) => queueMicrotask(r));
}

class CountingStore extends MemoryMetadataStore {
  writes = 0;
  override async txn(...args: Parameters<MemoryMetadataStore["txn"]>) {
    this.writes++;
    return await super.txn(...args);
  }
  override async put(...args: Parameters<MemoryMetadataStore["put"]>) {
    this.writes++;
    return await super.put(...args);
  }
}

type Phase = "join" | "waiting" | "stable" | "gone";

interface Client {
  name: string;
  memberId: string;
  generation: number;
  phase: Phase;
  crashed: boolean;
  nextHeartbeat: number;
  mutedUntil: number;
}

async function simulate(seed: number) {
  const rand = prng(seed);
  const clock = new ManualClock();
  const store = new CountingStore({ clock });
  const metadata = new ClusterMetadata(store, { now: () => clock.now() });
  const coordinator = new GroupCoordinator({
    metadata,
    clock,
    logger: silentLogger,
    config: { initialRebalanceDelayMs: rand() < 0.5 ? 0 : 3_000 },
  });
  const group = "sim";
  const clients: Client[] = [];
  const outstanding = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>) => {
    outstanding.add(p);
    p.finally(() => outstanding.delete(p));
    return p;
  };

  /** The client stopped caring (crashed or left) while a request was out. */
  const gone = (c: Client) => c.crashed || c.phase === "gone";
  const join = (c: Client) => {
    c.phase = "waiting";
    void track((async () => {
      let r = await coordinator.join({
        groupId: group,
        memberId: c.memberId,
        groupInstanceId: null,
        clientId: c.name,
        clientHost: "/127.0.0.1",
        sessionTimeoutMs: SESSION_TIMEOUT_MS,
        rebalanceTimeoutMs: 10_000,
        protocolType: "consumer",
        protocols: [{ name: "range", metadata: new TextEncoder().encode(c.name) }],
        requireKnownMemberId: true,
        supportsSkipAssignment: false,
      });
      if (r.errorCode === E.MEMBER_ID_REQUIRED && !c.crashed) {
        c.memberId = r.memberId;
        r = await coordinator.join({
          groupId: group,
          memberId: c.memberId,
          groupInstanceId: null,
          clientId: c.name,
          clientHost: "/127.0.0.1",
          sessionTimeoutMs: SESSION_TIMEOUT_MS,
          rebalanceTimeoutMs: 10_000,
          protocolType: "consumer",
          protocols: [{ name: "range", metadata: new TextEncoder().encode(c.name) }],
          requireKnownMemberId: true,
          supportsSkipAssignment: false,
        });
      }
      if (gone(c)) return;
      if (r.errorCode !== E.NONE) {
        if (r.errorCode === E.UNKNOWN_MEMBER_ID) c.memberId = "";
        c.phase = "join";
        return;
      }
      c.generation = r.generationId;
      const s = await coordinator.sync({
        groupId: group,
        memberId: c.memberId,
        groupInstanceId: null,
        generationId: c.generation,
        protocolType: null,
        protocolName: null,
        assignments: r.leader === c.memberId
          ? r.members.map((m) => ({ memberId: m.memberId, assignment: new Uint8Array([1]) }))
          : [],
      });
      if (gone(c)) return;
      if (s.errorCode === E.NONE) {
        c.phase = "stable";
        c.nextHeartbeat = clock.monotonic() + HEARTBEAT_INTERVAL_MS;
      } else {
        if (s.errorCode === E.UNKNOWN_MEMBER_ID) c.memberId = "";
        c.phase = "join";
      }
    })());
  };

  const heartbeat = (c: Client) => {
    c.nextHeartbeat = clock.monotonic() + HEARTBEAT_INTERVAL_MS;
    void track(
      coordinator.heartbeat({
        groupId: group,
        memberId: c.memberId,
        groupInstanceId: null,
        generationId: c.generation,
      }).then((code) => {
        if (c.crashed || c.phase !== "stable" || code === E.NONE) return;
        if (code === E.UNKNOWN_MEMBER_ID) c.memberId = "";
        c.phase = "join";
      }),
    );
  };

  const live = () => clients.filter((c) => !c.crashed && c.phase !== "gone");
  const spawn = () =>
    clients.push({
      name: `c${clients.length}`,
      memberId: "",
      generation: -1,
      phase: "join",
      crashed: false,
      nextHeartbeat: 0,
      mutedUntil: 0,
    });

  const round = async (chaos: boolean) => {
    if (chaos) {
      const r = rand();
      const pick = () => live()[Math.floor(rand() * live().length)];
      if (r < 0.06 && live().length < CLIENTS_LIVE_MAX) spawn();
      else if (r < 0.09 && live().length > 0) {
        const c = pick();
        c.phase = "gone";
        if (c.memberId !== "") {
          void track(coordinator.leave(group, [{ memberId: c.memberId, groupInstanceId: null }]));
        }
      } else if (r < 0.12 && live().length > 0) pick().crashed = true;
      else if (r < 0.16 && live().length > 0) {
        pick().mutedUntil = clock.monotonic() + Math.floor(rand() * 2 * SESSION_TIMEOUT_MS);
      }
    }
    for (const c of live()) {
      if (c.phase === "join") join(c);
      else if (
        c.phase === "stable" && clock.monotonic() >= c.nextHeartbeat &&
        clock.monotonic() >= c.mutedUntil
      ) {
        heartbeat(c);
      }
    }
    await settle();
    clock.advance(ROUND_MS);
    await settle();
  };

  for (let i = 0; i < 3; i++) spawn();
  for (let i = 0; i < CHAOS_ROUNDS; i++) await round(true);
  for (const c of live()) c.mutedUntil = 0;
  for (let i = 0; i < CALM_ROUNDS; i++) await round(false);

  const settled = await coordinator.describeGroup(group);
  const writesBefore = store.writes;
  for (let i = 0; i < 40; i++) await round(false);
  const writesDuringHeartbeats = store.writes - writesBefore;
  await coordinator.stop();
  await settle();
  const hanging = outstanding.size;
  const pendingTimers = clock.pendingTimers();
  await store.close();
  return { settled, live: live(), writesDuringHeartbeats, hanging, pendingTimers, clients };
}

Deno.test("coordinator simulation: seeded churn on a ManualClock settles to the live members", async () => {
  let churned = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const r = await simulate(seed);
    const ctx = `seed ${seed}: ${JSON.stringify(r.settled)} live ${
      JSON.stringify(r.live.map((c) => [c.memberId, c.phase]))
    }`;
    assert.equal(r.hanging, 0, `${ctx}: requests never answered`);
    assert.equal(r.pendingTimers, 0, `${ctx}: timers left after stop`);
    if (r.live.length === 0) {
      assert.ok(["Empty", "Dead"].includes(r.settled.group.state), ctx);
    } else {
      assert.equal(r.settled.group.state, "Stable", ctx);
      assert.deepEqual(
        r.settled.group.members.map((m) => m.memberId).sort(),
        r.live.map((c) => c.memberId).sort(),
        ctx,
      );
      for (const c of r.live) assert.equal(c.phase, "stable", ctx);
    }
    assert.equal(r.writesDuringHeartbeats, 0, `${ctx}: a stable group's heartbeats wrote`);
    churned += r.clients.length;
  }
  assert.ok(churned > SEEDS * 6, `only ${churned} clients over ${SEEDS} seeds: no churn`);
});
