/**
 * The group coordinator runtime (lib/coordinator/group_coordinator.ts) over an
 * in-memory MetadataStore on a ManualClock: timers, what is written and when,
 * loading a group when a coordinator takes it over, and store failures.
 */
import assert from "node:assert/strict";
import {
  GroupCoordinator,
  type GroupCoordinatorConfig,
  type GroupOwnershipSession,
  type JoinGroupInput,
  kafkaClientHost,
  OFFSET_FETCH_STORE_WAIT_MS,
} from "../../lib/coordinator/group_coordinator.ts";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { MetadataStoreError } from "../../lib/metadata/metadata_store.ts";
import { ManualClock } from "../../lib/util/clock.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { GROUP_STATES } from "../../lib/coordinator/group_state.ts";

const E = ERROR_CODES;
const enc = new TextEncoder();

/** Counts writes and fails every operation while `failing` is set. */
class CountingStore extends MemoryMetadataStore {
  writes = 0;
  failing = false;
  #check(): void {
    if (this.failing) throw new MetadataStoreError("Injected fault: metadata store unreachable");
  }
  override async get(key: string) {
    this.#check();
    return await super.get(key);
  }
  override async list(prefix: string) {
    this.#check();
    return await super.list(prefix);
  }
  override async put(key: string, value: Uint8Array, options?: { lease?: number }) {
    this.#check();
    this.writes++;
    return await super.put(key, value, options);
  }
  override async delete(key: string) {
    this.#check();
    this.writes++;
    return await super.delete(key);
  }
  override async deletePrefix(prefix: string) {
    this.#check();
    this.writes++;
    return await super.deletePrefix(prefix);
  }
  override async txn(...args: Parameters<MemoryMetadataStore["txn"]>) {
    this.#check();
    this.writes++;
    return await super.txn(...args);
  }
}

interface Setup {
  clock: ManualClock;
  store: CountingStore;
  metadata: ClusterMetadata;
  coordinator: GroupCoordinator;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A broker's session lease, granted on first use like the log manager's. */
class TestSession implements GroupOwnershipSession {
  leaseId = 0;
  constructor(readonly brokerId: number, readonly metadata: ClusterMetadata) {}
  async sessionLease(): Promise<number> {
    if (this.leaseId === 0) this.leaseId = (await this.metadata.grantLease(10_000)).id;
    return this.leaseId;
  }
  /** The broker dies or loses its lease: etcd drops the lease and its keys. */
  async end(): Promise<void> {
    if (this.leaseId !== 0) await this.metadata.revokeLease(this.leaseId);
  }
}

async function setup(
  config: Partial<GroupCoordinatorConfig> = {},
  shared?: { clock: ManualClock; store: CountingStore },
  ownership?: (metadata: ClusterMetadata) => GroupOwnershipSession,
): Promise<Setup> {
  const clock = shared?.clock ?? new ManualClock();
  const store = shared?.store ?? new CountingStore({ clock });
  const metadata = new ClusterMetadata(store, { now: () => clock.now() });
  await metadata.createTopic({ name: "t", partitions: 4 }).catch(() => {});
  const coordinator = new GroupCoordinator({
    metadata,
    clock,
    logger: silentLogger,
    config: { initialRebalanceDelayMs: 0, ...config },
    ownership: ownership?.(metadata),
  });
  return {
    clock,
    store,
    metadata,
    coordinator,
    async [Symbol.asyncDispose]() {
      await coordinator.stop();
      assert.equal(clock.pendingTimers(), 0, "the coordinator left timers behind");
      if (!shared) await store.close();
    },
  };
}

function joinInput(groupId: string, memberId: string, extra: Partial<JoinGroupInput> = {}) {
  return {
    groupId,
    memberId,
    groupInstanceId: null,
    clientId: "client-1",
    clientHost: "/127.0.0.1",
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 30_000,
    protocolType: "consumer",
    protocols: [{ name: "range", metadata: enc.encode("sub") }],
    requireKnownMemberId: true,
    supportsSkipAssignment: false,
    ...extra,
  };
}

/** Let promise chains of the in-memory store run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => queueMicrotask(r));
}

/** Joins a single member (v4 flow) and syncs it: the group is Stable at generation 1. */
async function stableMember(s: Setup, groupId: string, extra: Partial<JoinGroupInput> = {}) {
  let memberId = "";
  if (!extra.groupInstanceId) {
    // v4+ dynamic members learn their id first; static members join at once.
    const first = await s.coordinator.join(joinInput(groupId, "", extra));
    assert.equal(first.errorCode, E.MEMBER_ID_REQUIRED);
    memberId = first.memberId;
  }
  const join = s.coordinator.join(joinInput(groupId, memberId, extra));
  await settle();
  s.clock.advance(0);
  const joined = await join;
  assert.equal(joined.errorCode, E.NONE);
  const synced = await s.coordinator.sync({
    groupId,
    memberId: joined.memberId,
    groupInstanceId: extra.groupInstanceId ?? null,
    generationId: joined.generationId,
    protocolType: null,
    protocolName: null,
    assignments: [{ memberId: joined.memberId, assignment: enc.encode("assigned") }],
  });
  assert.equal(synced.errorCode, E.NONE);
  assert.deepEqual(synced.assignment, enc.encode("assigned"));
  return { memberId: joined.memberId, generationId: joined.generationId };
}

Deno.test("coordinator: heartbeats never write to the store; joins, syncs and commits do", async () => {
  await using s = await setup();
  const before = s.store.writes;
  const { memberId, generationId } = await stableMember(s, "g1");
  const afterJoin = s.store.writes;
  assert.ok(afterJoin > before, "the Stable generation was stored");
  for (let i = 0; i < 50; i++) {
    s.clock.advance(1_000);
    const code = await s.coordinator.heartbeat({
      groupId: "g1",
      memberId,
      groupInstanceId: null,
      generationId,
    });
    assert.equal(code, E.NONE);
  }
  assert.equal(s.store.writes, afterJoin, "heartbeats wrote to the store");
  const codes = await s.coordinator.commitOffsets({
    groupId: "g1",
    memberId,
    groupInstanceId: null,
    generationId,
    offsets: [{ topic: "t", partition: 0, offset: 42, leaderEpoch: 3, metadata: "m" }],
  });
  assert.deepEqual(codes, [E.NONE]);
  assert.equal(s.store.writes, afterJoin + 1);
});

Deno.test("coordinator: the session timer on the clock expires a silent member", async () => {
  await using s = await setup();
  const { memberId, generationId } = await stableMember(s, "g");
  s.clock.advance(9_999);
  assert.equal((await s.coordinator.describeGroup("g")).group.members.length, 1);
  s.clock.advance(1);
  await settle();
  const d = await s.coordinator.describeGroup("g");
  assert.equal(d.group.state, GROUP_STATES.EMPTY);
  assert.equal(
    await s.coordinator.heartbeat({ groupId: "g", memberId, groupInstanceId: null, generationId }),
    E.UNKNOWN_MEMBER_ID,
  );
});

Deno.test("coordinator: JoinGroup is held until the rebalance completes", async () => {
  await using s = await setup({ initialRebalanceDelayMs: 3_000 });
  const first = await s.coordinator.join(joinInput("g", ""));
  let answered = false;
  const join = s.coordinator.join(joinInput("g", first.memberId)).then((r) => {
    answered = true;
    return r;
  });
  await settle();
  s.clock.advance(2_999);
  await settle();
  assert.equal(answered, false);
  s.clock.advance(1);
  assert.equal((await join).generationId, 1);
});

Deno.test("coordinator: a broker taking the group over loads it from the store", async () => {
  const clock = new ManualClock();
  const store = new CountingStore({ clock });
  let member: { memberId: string; generationId: number };
  {
    await using a = await setup({}, { clock, store });
    member = await stableMember(a, "moving", { groupInstanceId: "inst-1" });
    await a.coordinator.commitOffsets({
      groupId: "moving",
      memberId: member.memberId,
      groupInstanceId: "inst-1",
      generationId: member.generationId,
      offsets: [{ topic: "t", partition: 1, offset: 7, leaderEpoch: -1, metadata: null }],
    });
  }
  await using b = await setup({}, { clock, store });
  const d = await b.coordinator.describeGroup("moving");
  assert.equal(d.group.state, GROUP_STATES.STABLE);
  assert.equal(d.group.members[0].memberId, member.memberId);
  assert.equal(d.group.members[0].groupInstanceId, "inst-1");
  assert.deepEqual(d.group.members[0].assignment, enc.encode("assigned"));
  assert.equal(d.group.protocolData, "range");
  // The member carries on with its id and generation, without a rebalance.
  assert.equal(
    await b.coordinator.heartbeat({
      groupId: "moving",
      memberId: member.memberId,
      groupInstanceId: "inst-1",
      generationId: member.generationId,
    }),
    E.NONE,
  );
  const offsets = await b.coordinator.fetchOffsets("moving");
  assert.deepEqual(offsets.offsets.map((o) => [o.topic, o.partition, o.offset]), [["t", 1, 7]]);
  // Its session timer started at load: silence expires it.
  clock.advance(10_000);
  await settle();
  assert.equal((await b.coordinator.describeGroup("moving")).group.state, GROUP_STATES.EMPTY);
  await store.close();
});

Deno.test("coordinator: store failures answer COORDINATOR_NOT_AVAILABLE, then recover", async () => {
  await using s = await setup();
  s.store.failing = true;
  const join = await s.coordinator.join(joinInput("g", ""));
  assert.equal(join.errorCode, E.COORDINATOR_NOT_AVAILABLE);
  const commit = await s.coordinator.commitOffsets({
    groupId: "g",
    memberId: "",
    groupInstanceId: null,
    generationId: -1,
    offsets: [{ topic: "t", partition: 0, offset: 1, leaderEpoch: -1, metadata: null }],
  });
  assert.deepEqual(commit, [E.COORDINATOR_NOT_AVAILABLE]);
  s.store.failing = false;
  await stableMember(s, "g");
});

/** Advances the clock a retry pause at a time until `promise` settles (bounded). */
async function advanceUntilSettled<T>(s: Setup, promise: Promise<T>): Promise<T> {
  let settled = false;
  promise.then(() => (settled = true), () => (settled = true));
  for (let i = 0; i < 200 && !settled; i++) {
    await settle();
    if (!settled) s.clock.advance(250);
  }
  assert.ok(settled, "still waiting");
  return await promise;
}

// librdkafka leaves a partition unfetched for good after an OffsetFetch answered
// COORDINATOR_NOT_AVAILABLE (the chaos suite's etcd restart caught a consumer that way), so a
// short store outage is waited out, and a long one answered with a code it retries.
Deno.test("coordinator: OffsetFetch waits out a short store outage, then answers COORDINATOR_LOAD_IN_PROGRESS", async () => {
  await using s = await setup();
  await s.metadata.commitOffsets("g", [{
    topic: "t",
    partition: 0,
    offset: 7,
    leaderEpoch: -1,
    metadata: null,
    commitTimestampMs: 0,
  }]);
  s.store.failing = true;
  const waited = s.coordinator.fetchOffsets("g");
  await settle();
  s.clock.advance(3_000);
  await settle();
  s.store.failing = false;
  const recovered = await advanceUntilSettled(s, waited);
  assert.equal(recovered.errorCode, E.NONE);
  assert.deepEqual(recovered.offsets.map((o) => [o.topic, o.partition, o.offset]), [["t", 0, 7]]);

  s.store.failing = true;
  const started = s.clock.monotonic();
  const given = await advanceUntilSettled(s, s.coordinator.fetchOffsets("g"));
  assert.equal(given.errorCode, E.COORDINATOR_LOAD_IN_PROGRESS);
  assert.ok(s.clock.monotonic() - started >= OFFSET_FETCH_STORE_WAIT_MS - 250);

  // A stop ends the wait at once.
  const stopped = s.coordinator.fetchOffsets("g");
  await settle();
  await s.coordinator.stop();
  assert.equal((await stopped).errorCode, E.NOT_COORDINATOR);
  s.store.failing = false;
});

Deno.test("coordinator: a failed assignment store fails the syncs and the group rebalances", async () => {
  await using s = await setup();
  const first = await s.coordinator.join(joinInput("g", ""));
  const join = s.coordinator.join(joinInput("g", first.memberId));
  await settle();
  s.clock.advance(0);
  const joined = await join;
  s.store.failing = true;
  const synced = await s.coordinator.sync({
    groupId: "g",
    memberId: joined.memberId,
    groupInstanceId: null,
    generationId: joined.generationId,
    protocolType: null,
    protocolName: null,
    assignments: [],
  });
  assert.equal(synced.errorCode, E.COORDINATOR_NOT_AVAILABLE);
  s.store.failing = false;
  assert.equal(
    (await s.coordinator.describeGroup("g")).group.state,
    GROUP_STATES.PREPARING_REBALANCE,
  );
});

Deno.test("coordinator: another writer changing the group record means NOT_COORDINATOR", async () => {
  await using s = await setup();
  const { memberId } = await stableMember(s, "g");
  // Someone else (another broker that took the group over) writes the record.
  await s.metadata.putGroup("g", enc.encode("{}"));
  const rejoin = await s.coordinator.leave("g", [{ memberId, groupInstanceId: null }]);
  assert.equal(rejoin.errorCode, E.NONE);
  await settle();
  assert.equal(s.coordinator.loadedGroups, 0, "the group was given up");
});

Deno.test("coordinator: offsets round-trip with metadata; standalone commits; -1 when absent", async () => {
  await using s = await setup();
  const codes = await s.coordinator.commitOffsets({
    groupId: "standalone",
    memberId: "",
    groupInstanceId: null,
    generationId: -1,
    offsets: [
      { topic: "t", partition: 0, offset: 10, leaderEpoch: 5, metadata: "hello \u00e9" },
      { topic: "t", partition: 2, offset: 0, leaderEpoch: -1, metadata: null },
      { topic: "t", partition: 3, offset: 1, leaderEpoch: -1, metadata: "x".repeat(4_097) },
    ],
  });
  assert.deepEqual(codes, [E.NONE, E.NONE, E.OFFSET_METADATA_TOO_LARGE]);
  const fetched = await s.coordinator.fetchOffsets("standalone");
  assert.deepEqual(
    fetched.offsets.map((o) => [o.partition, o.offset, o.leaderEpoch, o.metadata]),
    [[0, 10, 5, "hello \u00e9"], [2, 0, -1, null]],
  );
  assert.deepEqual((await s.coordinator.fetchOffsets("nothing")).offsets, []);
  // A commit with a generation to a group nobody knows comes from an old generation.
  const stale = await s.coordinator.commitOffsets({
    groupId: "unknown",
    memberId: "m",
    groupInstanceId: null,
    generationId: 3,
    offsets: [{ topic: "t", partition: 0, offset: 1, leaderEpoch: -1, metadata: null }],
  });
  assert.deepEqual(stale, [E.ILLEGAL_GENERATION]);
  const listed = await s.coordinator.listGroups();
  assert.deepEqual(listed.groups.map((g) => [g.groupId, g.state]), [["standalone", "Empty"]]);
});

Deno.test("coordinator: deleting a group: only when empty, and its offsets go with it", async () => {
  await using s = await setup();
  const { memberId, generationId } = await stableMember(s, "g");
  await s.coordinator.commitOffsets({
    groupId: "g",
    memberId,
    groupInstanceId: null,
    generationId,
    offsets: [{ topic: "t", partition: 0, offset: 5, leaderEpoch: -1, metadata: null }],
  });
  assert.equal(await s.coordinator.deleteGroup("g"), E.NON_EMPTY_GROUP);
  await s.coordinator.leave("g", [{ memberId, groupInstanceId: null }]);
  assert.equal(await s.coordinator.deleteGroup("g"), E.NONE);
  assert.deepEqual((await s.coordinator.fetchOffsets("g")).offsets, []);
  assert.equal(await s.metadata.getGroup("g"), null);
  assert.equal(await s.coordinator.deleteGroup("g"), E.GROUP_ID_NOT_FOUND);
  assert.equal(await s.coordinator.deleteGroup(""), E.INVALID_GROUP_ID);
  assert.equal((await s.coordinator.describeGroup("g")).group.state, GROUP_STATES.DEAD);
});

Deno.test("coordinator: offsets of a deleted topic go with it", async () => {
  await using s = await setup();
  await s.metadata.createTopic({ name: "doomed", partitions: 1 });
  await s.coordinator.commitOffsets({
    groupId: "g",
    memberId: "",
    groupInstanceId: null,
    generationId: -1,
    offsets: [
      { topic: "doomed", partition: 0, offset: 3, leaderEpoch: -1, metadata: null },
      { topic: "t", partition: 0, offset: 4, leaderEpoch: -1, metadata: null },
    ],
  });
  await s.metadata.deleteTopicMetadata("doomed");
  const fetched = await s.coordinator.fetchOffsets("g");
  assert.deepEqual(fetched.offsets.map((o) => o.topic), ["t"]);
});

Deno.test("coordinator: session timeout bounds and invalid group ids", async () => {
  await using s = await setup({ minSessionTimeoutMs: 6_000, maxSessionTimeoutMs: 60_000 });
  const low = await s.coordinator.join(joinInput("g", "", { sessionTimeoutMs: 5_999 }));
  assert.equal(low.errorCode, E.INVALID_SESSION_TIMEOUT);
  const high = await s.coordinator.join(joinInput("g", "", { sessionTimeoutMs: 60_001 }));
  assert.equal(high.errorCode, E.INVALID_SESSION_TIMEOUT);
  assert.equal((await s.coordinator.join(joinInput("", ""))).errorCode, E.INVALID_GROUP_ID);
  const unknown = await s.coordinator.join(joinInput("nope", "some-member"));
  assert.equal(unknown.errorCode, E.UNKNOWN_MEMBER_ID);
  assert.equal(s.coordinator.loadedGroups, 0, "a known member id does not create a group");
});

Deno.test("coordinator: the group limit evicts idle empty groups first", async () => {
  await using s = await setup({ maxGroups: 2 });
  const commit = (groupId: string) =>
    s.coordinator.commitOffsets({
      groupId,
      memberId: "",
      groupInstanceId: null,
      generationId: -1,
      offsets: [{ topic: "t", partition: 0, offset: 1, leaderEpoch: -1, metadata: null }],
    });
  await stableMember(s, "busy-1");
  assert.deepEqual(await commit("idle"), [E.NONE]);
  // "idle" (Empty, nothing in flight) makes room; its offsets stay in the store.
  await stableMember(s, "busy-2");
  assert.deepEqual(await commit("third"), [E.COORDINATOR_NOT_AVAILABLE]);
  assert.equal((await s.coordinator.fetchOffsets("idle")).offsets.length, 1);
});

Deno.test("coordinator: stopping answers held joins with NOT_COORDINATOR", async () => {
  const s = await setup({ initialRebalanceDelayMs: 3_000 });
  const first = await s.coordinator.join(joinInput("g", ""));
  const held = s.coordinator.join(joinInput("g", first.memberId));
  await settle();
  await s.coordinator.stop();
  assert.equal((await held).errorCode, E.NOT_COORDINATOR);
  assert.equal(s.clock.pendingTimers(), 0);
  assert.equal(s.coordinator.active, false);
  assert.equal((await s.coordinator.join(joinInput("g", ""))).errorCode, E.NOT_COORDINATOR);
  await s[Symbol.asyncDispose]();
});

Deno.test("coordinator: client hosts are reported as Kafka does, with a leading slash", () => {
  assert.equal(kafkaClientHost("127.0.0.1:53122"), "/127.0.0.1");
  assert.equal(kafkaClientHost("::1:53122"), "/::1");
  assert.equal(kafkaClientHost("[::1]:53122"), "/::1");
});

Deno.test("coordinator: ownership: one owner per group; another broker takes it when the lease ends", async () => {
  const clock = new ManualClock();
  const store = new CountingStore({ clock });
  const facade = new ClusterMetadata(store);
  const sessionA = new TestSession(1, facade);
  const sessionB = new TestSession(2, facade);
  await using a = await setup({}, { clock, store }, () => sessionA);
  await using b = await setup({}, { clock, store }, () => sessionB);
  const member = await stableMember(a, "g", { groupInstanceId: "inst-1" });
  const commit = (s: Setup, offset: number) =>
    s.coordinator.commitOffsets({
      groupId: "g",
      memberId: member.memberId,
      groupInstanceId: "inst-1",
      generationId: member.generationId,
      offsets: [{ topic: "t", partition: 0, offset, leaderEpoch: -1, metadata: null }],
    });
  assert.deepEqual(await commit(a, 5), [E.NONE]);
  assert.equal((await facade.getGroupOwner("g"))?.brokerId, 1);

  // Broker 1 owns the group while its lease lives: broker 2 sends clients away.
  assert.equal((await b.coordinator.join(joinInput("g", ""))).errorCode, E.NOT_COORDINATOR);
  assert.equal((await b.coordinator.describeGroup("g")).errorCode, E.NOT_COORDINATOR);
  assert.deepEqual(await commit(b, 6), [E.NOT_COORDINATOR]);
  assert.equal(b.coordinator.loadedGroups, 0);

  // Broker 1's lease ends (it died, or etcd expired it): broker 2 loads the group from the store.
  await sessionA.end();
  const d = await b.coordinator.describeGroup("g");
  assert.equal(d.errorCode, E.NONE);
  assert.equal(d.group.state, GROUP_STATES.STABLE);
  assert.equal(d.group.members[0].memberId, member.memberId);
  assert.equal((await facade.getGroupOwner("g"))?.brokerId, 2);

  // Broker 1 still holds the group in memory, but its commits are refused and it lets go.
  assert.deepEqual(await commit(a, 9), [E.NOT_COORDINATOR]);
  await settle();
  assert.equal(a.coordinator.loadedGroups, 0, "the fenced owner gave the group up");
  assert.equal(
    await a.coordinator.heartbeat({
      groupId: "g",
      memberId: member.memberId,
      groupInstanceId: "inst-1",
      generationId: member.generationId,
    }),
    E.NOT_COORDINATOR,
  );
  assert.deepEqual(await commit(b, 7), [E.NONE]);
  const offsets = await b.coordinator.fetchOffsets("g");
  assert.deepEqual(offsets.offsets.map((o) => o.offset), [7]);
  await sessionB.end();
  await store.close();
});

Deno.test("coordinator: ownership: a group held on a lost session lease is taken again and reloaded", async () => {
  const clock = new ManualClock();
  const store = new CountingStore({ clock });
  const facade = new ClusterMetadata(store);
  const session = new TestSession(1, facade);
  await using a = await setup({}, { clock, store }, () => session);
  const member = await stableMember(a, "g");
  const before = await facade.getGroupOwner("g");
  assert.ok(before);
  // The lease is lost; the broker gets a new one (the log manager does on the next use).
  await session.end();
  session.leaseId = 0;
  assert.equal(
    await a.coordinator.heartbeat({
      groupId: "g",
      memberId: member.memberId,
      groupInstanceId: null,
      generationId: member.generationId,
    }),
    E.NONE,
    "the group was loaded again from the store, member and generation intact",
  );
  const after = await facade.getGroupOwner("g");
  assert.equal(after?.brokerId, 1);
  assert.ok(after.epoch > before.epoch, "a new ownership epoch");
  await session.end();
  await store.close();
});

Deno.test("coordinator: ownership: a join that comes in while a new group is being created shares its owner epoch", async () => {
  // A second JoinGroup whose continuation ran between the end of the first one's load and the
  // first one creating the group took the owner key again; the created group kept the older
  // epoch and every record write was refused ("changed by another writer"): kgo's TestGroupETL
  // with static members. Every microtask offset of the second join, one group each.
  const clock = new ManualClock();
  const store = new CountingStore({ clock });
  const facade = new ClusterMetadata(store);
  const session = new TestSession(1, facade);
  await using s = await setup({}, { clock, store }, () => session);
  const acquires = new Map<string, number>();
  const acquire = s.metadata.acquireGroup.bind(s.metadata);
  s.metadata.acquireGroup = (group, brokerId, leaseId) => {
    acquires.set(group, (acquires.get(group) ?? 0) + 1);
    return acquire(group, brokerId, leaseId);
  };
  await session.sessionLease();
  for (let ticks = 0; ticks < 60; ticks++) {
    const group = `race-${ticks}`;
    const static1 = { groupInstanceId: "i-1" };
    const first = s.coordinator.join(joinInput(group, "", static1));
    for (let i = 0; i < ticks; i++) await Promise.resolve();
    const second = s.coordinator.join(joinInput(group, "", { groupInstanceId: "i-2" }));
    await settle();
    assert.equal(acquires.get(group), 1, `${group}: the owner key was taken once`);
    for (let i = 0; i < 3; i++) {
      clock.advance(0);
      await settle();
    }
    // Both members are in one generation, and the leader's assignment is stored (no refused
    // write).
    const joined = await Promise.all([first, second]);
    for (const j of joined) assert.equal(j.errorCode, E.NONE, `${group}: ${j.errorCode}`);
    const leader = joined.find((j) => j.memberId === j.leader)!;
    const synced = await s.coordinator.sync({
      groupId: group,
      memberId: leader.memberId,
      groupInstanceId: leader === joined[0] ? "i-1" : "i-2",
      generationId: leader.generationId,
      protocolType: null,
      protocolName: null,
      assignments: joined.map((j) => ({ memberId: j.memberId, assignment: enc.encode("a") })),
    });
    assert.equal(synced.errorCode, E.NONE, `${group}: sync ${synced.errorCode}`);
    assert.ok(await facade.getGroup(group), `${group}: the record is stored`);
  }
  await session.end();
});
