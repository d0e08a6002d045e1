/**
 * KIP-848 groups kept in the metadata store (ConsumerGroupManager with a ConsumerGroupStore,
 * lib/coordinator/consumer_group_record.ts): a coordinator that takes a group over (a new owner
 * epoch) carries its members on with their ids and epochs; the one that lost it cannot write; a
 * group whose members all left leaves no record; a store that fails or a record that cannot be
 * read gives a retriable error and no wrong state; the stored form round-trips.
 */
import assert from "node:assert/strict";
import {
  ConsumerGroupManager,
  type ConsumerGroupStore,
  heartbeat,
  type HeartbeatInput,
  type HeartbeatOutcome,
  newConsumerGroup,
  type TopicInfo,
} from "../../lib/coordinator/consumer_groups.ts";
import {
  ConsumerGroupRecordError,
  consumerGroupSnapshot,
  decodeConsumerGroup,
  encodeConsumerGroup,
} from "../../lib/coordinator/consumer_group_record.ts";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { MetadataStoreError } from "../../lib/metadata/metadata_store.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";

const TOPICS = new Map<string, TopicInfo>([
  ["orders", { name: "orders", id: "T-orders", partitions: 4 }],
]);
const GROUP = "g";

function beat(memberId: string, memberEpoch: number, extra: Partial<HeartbeatInput> = {}) {
  return {
    groupId: GROUP,
    memberId,
    memberEpoch,
    instanceId: null,
    rackId: null,
    rebalanceTimeoutMs: 30_000,
    subscribedTopicNames: memberEpoch === 0 ? ["orders"] : null,
    subscribedTopicRegex: null,
    serverAssignor: null,
    ownedPartitions: null,
    clientId: "c",
    clientHost: "/127.0.0.1",
    ...extra,
  } satisfies HeartbeatInput;
}

function ok(out: HeartbeatOutcome) {
  assert.equal(out.errorCode, E.NONE, JSON.stringify(out));
  return out as Extract<HeartbeatOutcome, { memberId: string }>;
}

interface Broker {
  id: number;
  manager: ConsumerGroupManager;
  epoch: number;
  loads: number;
}

async function setup() {
  let now = 1_000;
  const store = new MemoryMetadataStore();
  const metadata = new ClusterMetadata(store);
  const lease = await store.grantLease(60_000);
  const broker = (id: number): Broker => {
    const b: Broker = {
      id,
      epoch: 0,
      loads: 0,
      manager: new ConsumerGroupManager({
        now: () => now,
        sessionTimeoutMs: 45_000,
        heartbeatIntervalMs: 5_000,
        store: metadata,
        onLoad: () => b.loads++,
      }),
    };
    return b;
  };
  /** `b` takes the group's owner key (a new epoch), as the classic coordinator does. */
  const takeOver = async (b: Broker) => {
    await metadata.releaseGroup(GROUP, (await metadata.getGroupOwner(GROUP))?.epoch ?? 0);
    const owner = await metadata.acquireGroup(GROUP, b.id, lease.id);
    assert.notEqual(owner, "owned-by-other");
    b.epoch = (owner as { epoch: number }).epoch;
  };
  const send = (b: Broker, input: HeartbeatInput) =>
    b.manager.heartbeat(input, TOPICS, () => `m${Math.random()}`, b.epoch);
  return {
    store,
    metadata,
    broker,
    takeOver,
    send,
    advance: (ms: number) => now += ms,
  };
}

/** Both members of a two-member group, joined and settled at `b`. */
async function twoMembers(t: Awaited<ReturnType<typeof setup>>, b: Broker) {
  ok(await t.send(b, beat("a", 0)));
  const joinedB = ok(await t.send(b, beat("b", 0)));
  // a gives up what b now targets; b then gets it.
  const a = ok(await t.send(b, beat("a", 1, { ownedPartitions: [] })));
  const settled = ok(await t.send(b, beat("b", joinedB.memberEpoch, { ownedPartitions: [] })));
  return { a, b: settled };
}

Deno.test("consumer group store: a new coordinator carries the members on with their epochs", async () => {
  const t = await setup();
  const one = t.broker(1);
  const two = t.broker(2);
  await t.takeOver(one);
  const before = await twoMembers(t, one);
  const stored = await t.metadata.getConsumerGroup(GROUP);
  assert.ok(stored, "the group's record is written");
  const held = one.manager.get(GROUP)!;

  await t.takeOver(two);
  // The members' next heartbeats at the new coordinator: known, same epochs, whole assignment.
  const a = ok(await t.send(two, beat("a", before.a.memberEpoch)));
  assert.equal(a.memberEpoch, before.a.memberEpoch);
  assert.ok(a.assignment !== null, "the first answer after a take-over carries the assignment");
  const b = ok(await t.send(two, beat("b", before.b.memberEpoch)));
  assert.equal(b.memberEpoch, before.b.memberEpoch);
  assert.equal(two.loads, 1, "read once");
  const carried = two.manager.get(GROUP)!;
  assert.equal(carried.groupEpoch, held.groupEpoch);
  assert.deepEqual(
    [...carried.members.values()].map((m) => [m.memberId, [...m.assigned].sort()]),
    [...held.members.values()].map((m) => [m.memberId, [...m.assigned].sort()]),
  );
  // A stale epoch is still fenced after the move.
  assert.equal((await t.send(two, beat("a", 99))).errorCode, E.FENCED_MEMBER_EPOCH);

  // The old coordinator cannot write any more: a change there is refused and it lets go.
  const late = await t.send(one, beat("c", 0));
  assert.equal(late.errorCode, E.NOT_COORDINATOR);
  assert.equal(one.manager.get(GROUP), undefined, "dropped from the old coordinator's memory");
  const record = decodeConsumerGroup(GROUP, (await t.metadata.getConsumerGroup(GROUP))!.value, 0);
  assert.deepEqual([...record.members.keys()].sort(), ["a", "b"]);
});

Deno.test("consumer group store: without a record the old way still works, and the last leave deletes it", async () => {
  const t = await setup();
  const one = t.broker(1);
  await t.takeOver(one);
  ok(await t.send(one, beat("a", 0)));
  assert.ok(await t.metadata.getConsumerGroup(GROUP));
  // An unchanged heartbeat writes nothing.
  const revision = (await t.metadata.getConsumerGroup(GROUP))!.modRevision;
  ok(await t.send(one, beat("a", 1)));
  assert.equal((await t.metadata.getConsumerGroup(GROUP))!.modRevision, revision);
  ok(await t.send(one, beat("a", -1)));
  assert.equal(await t.metadata.getConsumerGroup(GROUP), null, "an empty group leaves no record");
  // A member that comes back starts a new record.
  ok(await t.send(one, beat("a", 0)));
  assert.ok(await t.metadata.getConsumerGroup(GROUP));
  // DeleteGroups' store side removes it with the offsets.
  await t.metadata.deleteGroup(GROUP);
  assert.equal(await t.metadata.getConsumerGroup(GROUP), null);
});

Deno.test("consumer group store: members that stop at the new coordinator expire there", async () => {
  const t = await setup();
  const one = t.broker(1);
  const two = t.broker(2);
  await t.takeOver(one);
  await twoMembers(t, one);
  await t.takeOver(two);
  const a = ok(await t.send(two, beat("a", 0)));
  t.advance(30_000);
  ok(await t.send(two, beat("a", a.memberEpoch)));
  t.advance(20_000); // b's session, counted from the load, is over
  const again = ok(await t.send(two, beat("a", a.memberEpoch)));
  assert.deepEqual([...two.manager.get(GROUP)!.members.keys()], ["a"]);
  assert.ok(again.memberEpoch >= a.memberEpoch);
  const record = decodeConsumerGroup(GROUP, (await t.metadata.getConsumerGroup(GROUP))!.value, 0);
  assert.deepEqual([...record.members.keys()], ["a"], "the expiry is stored");
});

Deno.test("consumer group store: a failed write answers COORDINATOR_NOT_AVAILABLE and keeps what the store has", async () => {
  const t = await setup();
  const one = t.broker(1);
  await t.takeOver(one);
  ok(await t.send(one, beat("a", 0)));
  let failing = true;
  const flaky: ConsumerGroupStore = {
    getConsumerGroup: (g) => t.metadata.getConsumerGroup(g),
    putConsumerGroupIfRevision: (g, v, r, e) =>
      failing
        ? Promise.reject(new MetadataStoreError("etcd is down"))
        : t.metadata.putConsumerGroupIfRevision(g, v, r, e),
  };
  const manager = new ConsumerGroupManager({
    now: () => 1_000,
    sessionTimeoutMs: 45_000,
    heartbeatIntervalMs: 5_000,
    store: flaky,
  });
  const joined = await manager.heartbeat(beat("b", 0), TOPICS, () => "x", one.epoch);
  assert.equal(joined.errorCode, E.COORDINATOR_NOT_AVAILABLE);
  assert.match((joined as { errorMessage: string }).errorMessage, /etcd is down/);
  assert.equal(manager.get(GROUP), undefined, "the unstored change is not kept");
  failing = false;
  // Read again from the store: only a; b joins now.
  ok(await manager.heartbeat(beat("b", 0), TOPICS, () => "x", one.epoch));
  assert.deepEqual([...manager.get(GROUP)!.members.keys()].sort(), ["a", "b"]);
});

Deno.test("consumer group store: a record that cannot be read is an error, not an empty group", async () => {
  const t = await setup();
  const one = t.broker(1);
  await t.takeOver(one);
  await t.metadata.putConsumerGroupIfRevision(GROUP, new TextEncoder().encode("{oops"), 0);
  const out = await t.send(one, beat("a", 0));
  assert.equal(out.errorCode, E.COORDINATOR_NOT_AVAILABLE);
  assert.match((out as { errorMessage: string }).errorMessage, /not JSON.*delete the group/);
  assert.throws(
    () => decodeConsumerGroup(GROUP, new TextEncoder().encode('{"version":7}'), 0),
    ConsumerGroupRecordError,
  );
  // Still unreadable: nothing was overwritten.
  assert.equal(
    new TextDecoder().decode((await t.metadata.getConsumerGroup(GROUP))!.value),
    "{oops",
  );
});

Deno.test("consumer group record: the stored form round-trips", () => {
  const group = newConsumerGroup(GROUP);
  let n = 0;
  heartbeat(group, beat("", 0, { instanceId: "i-1", rackId: "r" }), TOPICS, 5, () => `m${++n}`);
  heartbeat(group, beat("", 0, { serverAssignor: "range" }), TOPICS, 5, () => `m${++n}`);
  heartbeat(group, beat("m1", 1, { ownedPartitions: [] }), TOPICS, 6, () => "");
  const snapshot = consumerGroupSnapshot(group);
  const back = decodeConsumerGroup(GROUP, encodeConsumerGroup(snapshot), 100);
  assert.equal(consumerGroupSnapshot(back), snapshot);
  assert.equal(back.assignor, "range");
  assert.equal(back.members.get("m1")!.instanceId, "i-1");
  for (const m of back.members.values()) {
    assert.equal(m.lastHeartbeatMs, 100, "sessions start at the load");
    assert.equal(m.lastSent, "", "the first answer carries the assignment");
  }
});
