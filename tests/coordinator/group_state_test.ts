/**
 * Transitions of the pure group state machine (lib/coordinator/group_state.ts),
 * one behaviour per test, against Apache Kafka's GroupCoordinator semantics.
 */
import assert from "node:assert/strict";
import { bytes, GroupHarness, protocols } from "./group_harness.ts";
import {
  describeGroup,
  GROUP_STATES,
  groupFromRecord,
  groupRecord,
  newGroup,
  step,
} from "../../lib/coordinator/group_state.ts";
import { decodeGroupRecord, encodeGroupRecord } from "../../lib/coordinator/group_record.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";

const E = ERROR_CODES;

/** One member through MEMBER_ID_REQUIRED, the initial delay, sync and store: Stable at gen 1. */
function stableSingle(h: GroupHarness, opts: Parameters<GroupHarness["joinNew"]>[0] = {}) {
  const { memberId, requestId } = h.joinNew(opts);
  h.advance(h.config.initialRebalanceDelayMs);
  const join = h.joinResponse(requestId)!;
  assert.equal(join.errorCode, E.NONE);
  const sync = h.sync(memberId, join.generationId, [{ memberId, assignment: bytes("a1") }]);
  h.storeAll();
  assert.equal(h.syncResponse(sync)?.errorCode, E.NONE);
  return { memberId, generationId: join.generationId };
}

Deno.test("join v4+: an unknown member first gets MEMBER_ID_REQUIRED and a pending id", () => {
  const h = new GroupHarness();
  const r = h.join({ newMemberId: "client-abc" });
  const answer = h.joinResponse(r)!;
  assert.equal(answer.errorCode, E.MEMBER_ID_REQUIRED);
  assert.equal(answer.memberId, "client-abc");
  assert.equal(h.group.state, GROUP_STATES.EMPTY);
  assert.deepEqual([...h.group.pendingMembers.keys()], ["client-abc"]);
});

Deno.test("join v0-3: an unknown member joins at once", () => {
  const h = new GroupHarness();
  const r = h.join({ requireKnownMemberId: false, newMemberId: "m1" });
  assert.equal(h.joinResponse(r), undefined, "held through the initial delay");
  assert.equal(h.group.state, GROUP_STATES.PREPARING_REBALANCE);
  h.advance(3_000);
  assert.equal(h.joinResponse(r)?.memberId, "m1");
  assert.equal(h.joinResponse(r)?.generationId, 1);
});

Deno.test("a pending member that never rejoins expires after its session timeout", () => {
  const h = new GroupHarness();
  h.join({ sessionTimeoutMs: 10_000 });
  h.advance(9_999);
  assert.equal(h.group.pendingMembers.size, 1);
  h.advance(1);
  assert.equal(h.group.pendingMembers.size, 0);
});

Deno.test("first join waits the initial rebalance delay, then the leader gets every member's metadata", () => {
  const h = new GroupHarness();
  const a = h.joinNew({ protocols: [{ name: "range", metadata: bytes("meta-a\u0000\u00ff") }] });
  h.advance(1_000);
  const b = h.joinNew({ protocols: [{ name: "range", metadata: bytes("meta-b") }] });
  assert.equal(h.joinResponse(a.requestId), undefined);
  // A member arrived during the delay: Kafka waits one more delay (up to the rebalance timeout).
  h.advance(2_000);
  assert.equal(h.joinResponse(a.requestId), undefined);
  h.advance(3_000);
  const ja = h.joinResponse(a.requestId)!;
  const jb = h.joinResponse(b.requestId)!;
  assert.equal(h.group.state, GROUP_STATES.COMPLETING_REBALANCE);
  assert.equal(ja.generationId, 1);
  assert.equal(ja.leader, a.memberId);
  assert.equal(jb.leader, a.memberId);
  assert.equal(ja.protocolName, "range");
  assert.equal(ja.protocolType, "consumer");
  assert.deepEqual(
    ja.members.map((m) => [m.memberId, [...m.metadata]]),
    [[a.memberId, [...bytes("meta-a\u0000\u00ff")]], [b.memberId, [...bytes("meta-b")]]],
  );
  assert.deepEqual(jb.members, [], "only the leader gets the member list");
});

Deno.test("SyncGroup answers only after the leader's assignment is stored, with exactly its bytes", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew();
  h.advance(0);
  const gen = h.joinResponse(a.requestId)!.generationId;
  const b = h.joinNew();
  // b's join started a rebalance; a rejoins.
  const a2 = h.join({ memberId: a.memberId });
  const ja = h.joinResponse(a2)!;
  const jb = h.joinResponse(b.requestId)!;
  assert.equal(ja.generationId, gen + 1);
  assert.equal(jb.generationId, gen + 1);
  const sb = h.sync(b.memberId, jb.generationId);
  assert.equal(h.syncResponse(sb), undefined, "a follower waits for the leader");
  const assignA = new Uint8Array([0, 1, 2, 255]);
  const assignB = new Uint8Array([9, 8, 7]);
  const sa = h.sync(a.memberId, ja.generationId, [
    { memberId: a.memberId, assignment: assignA },
    { memberId: b.memberId, assignment: assignB },
    { memberId: "not-a-member", assignment: bytes("x") },
  ]);
  const persist = h.effects.filter((e) => e.type === "persist").at(-1);
  assert.ok(persist?.type === "persist" && persist.token !== null);
  assert.equal(persist.record.state, "Stable");
  assert.deepEqual(persist.record.members.map((m) => m.memberId), [a.memberId, b.memberId]);
  assert.equal(h.syncResponse(sa), undefined, "not before the store answered");
  h.storeAll();
  assert.equal(h.group.state, GROUP_STATES.STABLE);
  assert.deepEqual(h.syncResponse(sa)?.assignment, assignA);
  assert.deepEqual(h.syncResponse(sb)?.assignment, assignB);
  // A late SyncGroup in Stable gets the stored assignment again.
  assert.deepEqual(h.syncResponse(h.sync(b.memberId, jb.generationId))?.assignment, assignB);
});

Deno.test("a failed assignment store answers the syncs with the error and rebalances", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew();
  h.advance(0);
  const sa = h.sync(a.memberId, 1, [{ memberId: a.memberId, assignment: bytes("x") }]);
  h.storeAll(E.COORDINATOR_NOT_AVAILABLE);
  assert.equal(h.syncResponse(sa)?.errorCode, E.COORDINATOR_NOT_AVAILABLE);
  assert.equal(h.group.state, GROUP_STATES.PREPARING_REBALANCE);
  assert.equal(h.heartbeat(a.memberId, 1), E.REBALANCE_IN_PROGRESS);
});

Deno.test("a member missing from the rebalance is removed when the rebalance timeout expires", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew({ rebalanceTimeoutMs: 20_000, sessionTimeoutMs: 60_000 });
  h.advance(0);
  h.sync(a.memberId, 1, []);
  h.storeAll();
  const b = h.joinNew({ rebalanceTimeoutMs: 20_000, sessionTimeoutMs: 60_000 });
  assert.equal(h.group.state, GROUP_STATES.PREPARING_REBALANCE);
  // a never rejoins (but keeps heartbeating, which tells it to rejoin).
  h.advance(10_000);
  assert.equal(h.heartbeat(a.memberId, 1), E.REBALANCE_IN_PROGRESS);
  assert.equal(h.joinResponse(b.requestId), undefined);
  h.advance(10_000);
  const jb = h.joinResponse(b.requestId)!;
  assert.equal(jb.errorCode, E.NONE);
  assert.equal(jb.leader, b.memberId, "the leader did not rejoin: b leads");
  assert.deepEqual([...h.group.members.keys()], [b.memberId]);
  assert.equal(h.heartbeat(a.memberId, 1), E.UNKNOWN_MEMBER_ID);
});

Deno.test("session timeout: heartbeats keep a member; silence expires it and rebalances", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew({ sessionTimeoutMs: 10_000 });
  const b = h.joinNew({ sessionTimeoutMs: 10_000 });
  h.advance(0);
  const gen = h.joinResponse(a.requestId)!.generationId;
  h.sync(a.memberId, gen, []);
  h.sync(b.memberId, gen, []);
  h.storeAll();
  for (let i = 0; i < 5; i++) {
    h.advance(3_000);
    assert.equal(h.heartbeat(a.memberId, gen), E.NONE);
    if (i < 2) assert.equal(h.heartbeat(b.memberId, gen), E.NONE);
  }
  // b last heartbeat at +6 s: it expires at +16 s.
  assert.equal(h.group.members.size, 2);
  h.advance(999);
  assert.equal(h.group.members.size, 2);
  h.advance(1);
  assert.deepEqual([...h.group.members.keys()], [a.memberId]);
  assert.equal(h.group.state, GROUP_STATES.PREPARING_REBALANCE);
  assert.equal(h.heartbeat(a.memberId, gen), E.REBALANCE_IN_PROGRESS);
  const removed = h.effects.find((e) =>
    e.type === "note" && e.note.kind === "member-removed" && e.note.memberId === b.memberId
  );
  assert.ok(removed?.type === "note" && removed.note.kind === "member-removed");
  assert.equal(removed.note.reason, "session timeout expired");
});

Deno.test("heartbeats and commits never write the group record", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const { memberId, generationId } = stableSingle(h);
  const before = h.effects.length;
  for (let i = 0; i < 20; i++) {
    h.advance(1_000);
    h.heartbeat(memberId, generationId);
    h.commit(memberId, generationId);
  }
  assert.equal(h.effects.slice(before).filter((e) => e.type === "persist").length, 0);
});

Deno.test("protocol: chosen by votes among those every member supports", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew({ protocols: protocols("roundrobin", "range") });
  const b = h.joinNew({ protocols: protocols("range", "roundrobin") });
  const c = h.joinNew({ protocols: protocols("range", "sticky") });
  h.advance(0);
  h.join({ memberId: a.memberId, protocols: protocols("roundrobin", "range") });
  h.join({ memberId: b.memberId, protocols: protocols("range", "roundrobin") });
  const jc = h.joinResponse(c.requestId);
  assert.equal(jc?.protocolName, "range");
  const bad = h.join({ protocols: protocols("sticky") });
  assert.equal(h.joinResponse(bad)?.errorCode, E.INCONSISTENT_GROUP_PROTOCOL);
  const badType = h.join({ protocolType: "connect", protocols: protocols("range") });
  assert.equal(h.joinResponse(badType)?.errorCode, E.INCONSISTENT_GROUP_PROTOCOL);
});

Deno.test("join: unknown and fenced member ids", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  stableSingle(h, { groupInstanceId: "inst-1" });
  const unknown = h.join({ memberId: "nobody" });
  assert.equal(h.joinResponse(unknown)?.errorCode, E.UNKNOWN_MEMBER_ID);
  const fenced = h.join({ memberId: "nobody", groupInstanceId: "inst-1" });
  assert.equal(h.joinResponse(fenced)?.errorCode, E.FENCED_INSTANCE_ID);
});

Deno.test("a stable follower rejoining with the same metadata gets the current generation at once", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew();
  const b = h.joinNew();
  h.advance(0);
  h.sync(a.memberId, 1, []);
  h.sync(b.memberId, 1, []);
  h.storeAll();
  const r = h.join({ memberId: b.memberId });
  assert.equal(h.joinResponse(r)?.generationId, 1);
  assert.equal(h.group.state, GROUP_STATES.STABLE);
  // The leader rejoining always rebalances (it may want to reassign).
  const ra = h.join({ memberId: a.memberId });
  assert.equal(h.joinResponse(ra), undefined);
  assert.equal(h.group.state, GROUP_STATES.PREPARING_REBALANCE);
});

Deno.test("static member: rejoining a stable group with an unknown id replaces the old id without a rebalance", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew();
  h.joinNew({ groupInstanceId: "inst-b", newMemberId: "b-1" });
  h.advance(0);
  h.sync(a.memberId, 1, []);
  h.sync("b-1", 1, [], "inst-b");
  h.storeAll();
  assert.equal(h.group.state, GROUP_STATES.STABLE);
  const gen = h.group.generationId;
  const oldB = h.group.staticMembers.get("inst-b")!;
  const r = h.join({ groupInstanceId: "inst-b", newMemberId: "b-2" });
  assert.equal(h.joinResponse(r), undefined, "held until the new id is stored");
  h.storeAll();
  const j = h.joinResponse(r)!;
  assert.equal(j.errorCode, E.NONE);
  assert.equal(j.memberId, "b-2");
  assert.equal(j.generationId, gen);
  assert.equal(h.group.state, GROUP_STATES.STABLE);
  assert.equal(h.heartbeat(oldB, gen, "inst-b"), E.FENCED_INSTANCE_ID);
  assert.equal(h.heartbeat("b-2", gen, "inst-b"), E.NONE);
  assert.equal(h.heartbeat(a.memberId, gen), E.NONE);
});

Deno.test("static leader rejoining: v9 skips the assignment, older versions see the old leader id", () => {
  for (const v9 of [true, false]) {
    const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
    stableSingle(h, { groupInstanceId: "lead", newMemberId: "lead-1" });
    const r = h.join({
      groupInstanceId: "lead",
      newMemberId: "lead-2",
      supportsSkipAssignment: v9,
    });
    h.storeAll();
    const j = h.joinResponse(r)!;
    assert.equal(j.memberId, "lead-2");
    assert.equal(h.group.leaderId, "lead-2");
    if (v9) {
      assert.equal(j.skipAssignment, true);
      assert.equal(j.leader, "lead-2");
      assert.equal(j.members.length, 1);
    } else {
      assert.equal(j.skipAssignment, false);
      assert.equal(j.leader, "lead-1");
      assert.deepEqual(j.members, []);
    }
  }
});

Deno.test("static member: a failed store reverts the replacement", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const s = stableSingle(h, { groupInstanceId: "inst", newMemberId: "old" });
  const r = h.join({ groupInstanceId: "inst", newMemberId: "new" });
  h.storeAll(E.COORDINATOR_NOT_AVAILABLE);
  assert.equal(h.joinResponse(r)?.errorCode, E.COORDINATOR_NOT_AVAILABLE);
  assert.equal(h.group.staticMembers.get("inst"), "old");
  assert.equal(h.heartbeat("old", s.generationId, "inst"), E.NONE);
});

Deno.test("static member that did not rejoin keeps its place; the others complete the generation", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew({ rebalanceTimeoutMs: 5_000, sessionTimeoutMs: 60_000 });
  h.advance(0);
  h.sync(a.memberId, 1, []);
  h.storeAll();
  const st = h.join({ groupInstanceId: "s", rebalanceTimeoutMs: 5_000, sessionTimeoutMs: 60_000 });
  h.join({ memberId: a.memberId, rebalanceTimeoutMs: 5_000, sessionTimeoutMs: 60_000 });
  const gen = h.joinResponse(st)!.generationId;
  h.sync(a.memberId, gen, []);
  h.storeAll();
  // A new member joins; the static member is away (not rejoining) but within its session.
  const c = h.joinNew({ rebalanceTimeoutMs: 5_000, sessionTimeoutMs: 60_000 });
  h.join({ memberId: a.memberId, rebalanceTimeoutMs: 5_000, sessionTimeoutMs: 60_000 });
  h.advance(5_000);
  const jc = h.joinResponse(c.requestId)!;
  assert.equal(jc.errorCode, E.NONE);
  assert.equal(h.group.members.size, 3, "the static member keeps its place");
});

Deno.test("LeaveGroup: by member id, by instance id, pending members and unknown ones", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew();
  const b = h.joinNew({ groupInstanceId: null });
  const s = h.join({ groupInstanceId: "inst" });
  h.advance(0);
  const pending = h.join({ newMemberId: "pending-1" });
  assert.equal(h.joinResponse(pending)?.errorCode, E.MEMBER_ID_REQUIRED);
  const fx = h.apply({
    type: "leave",
    requestId: h.requestId(),
    members: [
      { memberId: b.memberId, groupInstanceId: null },
      { memberId: "", groupInstanceId: "inst" },
      { memberId: "pending-1", groupInstanceId: null },
      { memberId: "ghost", groupInstanceId: null },
      { memberId: "wrong", groupInstanceId: "no-such-instance" },
    ],
  });
  const leave = fx.find((e) => e.type === "leave-response");
  assert.ok(leave?.type === "leave-response");
  assert.deepEqual(leave.members.map((m) => m.errorCode), [
    E.NONE,
    E.NONE,
    E.NONE,
    E.UNKNOWN_MEMBER_ID,
    E.UNKNOWN_MEMBER_ID,
  ]);
  assert.deepEqual([...h.group.members.keys()], [a.memberId]);
  assert.equal(h.group.pendingMembers.size, 0);
  void s;
});

Deno.test("the last member leaving makes the group Empty and stores it", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const { memberId, generationId } = stableSingle(h);
  h.apply({
    type: "leave",
    requestId: h.requestId(),
    members: [{ memberId, groupInstanceId: null }],
  });
  assert.equal(h.group.state, GROUP_STATES.EMPTY);
  assert.equal(h.group.generationId, generationId + 1);
  const persist = h.effects.findLast((e) => e.type === "persist");
  assert.ok(persist?.type === "persist");
  assert.equal(persist.record.state, "Empty");
  assert.deepEqual(persist.record.members, []);
});

Deno.test("OffsetCommit checks: standalone, members, generations and rebalances", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  assert.equal(h.commit("", -1), E.NONE, "standalone commit to an empty group");
  const a = h.joinNew();
  h.advance(0);
  assert.equal(h.commit(a.memberId, 1), E.REBALANCE_IN_PROGRESS, "CompletingRebalance");
  h.sync(a.memberId, 1, []);
  h.storeAll();
  assert.equal(h.commit(a.memberId, 1), E.NONE);
  assert.equal(h.commit("", -1), E.UNKNOWN_MEMBER_ID, "the group has members now");
  assert.equal(h.commit(a.memberId, 0), E.ILLEGAL_GENERATION);
  assert.equal(h.commit("ghost", 1), E.UNKNOWN_MEMBER_ID);
  h.joinNew();
  assert.equal(h.group.state, GROUP_STATES.PREPARING_REBALANCE);
  assert.equal(h.commit(a.memberId, 1), E.NONE, "allowed while preparing a rebalance");
});

Deno.test("heartbeat answers per state", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew();
  h.advance(0);
  assert.equal(h.heartbeat(a.memberId, 1), E.NONE, "CompletingRebalance");
  assert.equal(h.heartbeat(a.memberId, 2), E.ILLEGAL_GENERATION);
  assert.equal(h.heartbeat("ghost", 1), E.UNKNOWN_MEMBER_ID);
  h.sync(a.memberId, 1, []);
  h.storeAll();
  assert.equal(h.heartbeat(a.memberId, 1), E.NONE);
  h.joinNew();
  assert.equal(h.heartbeat(a.memberId, 1), E.REBALANCE_IN_PROGRESS);
});

Deno.test("SyncGroup errors: unknown member, wrong generation, rebalance in progress, protocol", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew();
  h.advance(0);
  assert.equal(h.syncResponse(h.sync("ghost", 1))?.errorCode, E.UNKNOWN_MEMBER_ID);
  assert.equal(h.syncResponse(h.sync(a.memberId, 7))?.errorCode, E.ILLEGAL_GENERATION);
  const wrong = h.requestId();
  h.apply({
    type: "sync",
    requestId: wrong,
    memberId: a.memberId,
    groupInstanceId: null,
    generationId: 1,
    protocolType: "consumer",
    protocolName: "roundrobin",
    assignments: [],
  });
  assert.equal(h.syncResponse(wrong)?.errorCode, E.INCONSISTENT_GROUP_PROTOCOL);
  h.joinNew();
  assert.equal(h.syncResponse(h.sync(a.memberId, 1))?.errorCode, E.REBALANCE_IN_PROGRESS);
});

Deno.test("a new member arriving during CompletingRebalance answers held syncs with REBALANCE_IN_PROGRESS", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew();
  const b = h.joinNew();
  h.advance(0);
  const leader = h.joinResponse(a.requestId)!.leader;
  const follower = leader === a.memberId ? b.memberId : a.memberId;
  const held = h.sync(follower, 1);
  h.joinNew();
  assert.equal(h.syncResponse(held)?.errorCode, E.REBALANCE_IN_PROGRESS);
});

Deno.test("members that never send SyncGroup are removed after the rebalance timeout", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew({ rebalanceTimeoutMs: 5_000 });
  const b = h.joinNew({ rebalanceTimeoutMs: 5_000 });
  h.advance(0);
  h.sync(a.memberId, 1, [{ memberId: a.memberId, assignment: bytes("x") }]);
  h.storeAll();
  assert.equal(h.group.state, GROUP_STATES.STABLE);
  h.heartbeat(b.memberId, 1); // b heartbeats but never syncs
  h.advance(5_000);
  assert.deepEqual([...h.group.members.keys()], [a.memberId]);
  assert.equal(h.group.state, GROUP_STATES.PREPARING_REBALANCE);
});

Deno.test("a retried JoinGroup supersedes the held one", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew();
  const b = h.joinNew();
  h.advance(0);
  h.sync(a.memberId, 1, []);
  h.sync(b.memberId, 1, []);
  h.storeAll();
  h.joinNew(); // starts a rebalance
  const first = h.join({ memberId: a.memberId });
  const second = h.join({ memberId: a.memberId });
  assert.equal(h.joinResponse(first)?.errorCode, E.REBALANCE_IN_PROGRESS);
  assert.equal(h.joinResponse(second), undefined);
});

Deno.test("group max size counts members and pending members", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0, maxMembers: 2 });
  h.joinNew();
  h.join({ newMemberId: "p" }); // pending
  const third = h.join();
  assert.equal(h.joinResponse(third)?.errorCode, E.GROUP_MAX_SIZE_REACHED);
});

Deno.test("DeleteGroups check: only Empty groups; deleting makes the group Dead", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const { memberId } = stableSingle(h);
  let fx = h.apply({ type: "delete", requestId: h.requestId() });
  assert.deepEqual(fx.map((e) => e.type === "delete-checked" && e.errorCode), [E.NON_EMPTY_GROUP]);
  h.apply({
    type: "leave",
    requestId: h.requestId(),
    members: [{ memberId, groupInstanceId: null }],
  });
  fx = h.apply({ type: "delete", requestId: h.requestId() });
  assert.equal(fx.find((e) => e.type === "delete-checked")?.type, "delete-checked");
  assert.equal(h.group.state, GROUP_STATES.DEAD);
  assert.equal(h.heartbeat(memberId, 1), E.COORDINATOR_NOT_AVAILABLE);
});

Deno.test("unloading answers every held JoinGroup and SyncGroup with the given error", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew();
  const b = h.joinNew();
  h.advance(0);
  const leader = h.joinResponse(a.requestId)!.leader;
  const follower = leader === a.memberId ? b.memberId : a.memberId;
  const sync = h.sync(follower, 1);
  const c = h.joinNew();
  const rejoin = h.join({ memberId: a.memberId });
  h.apply({ type: "unload", errorCode: E.NOT_COORDINATOR });
  assert.equal(h.syncResponse(sync)?.errorCode, E.REBALANCE_IN_PROGRESS);
  assert.equal(h.joinResponse(c.requestId)?.errorCode, E.NOT_COORDINATOR);
  assert.equal(h.joinResponse(rejoin)?.errorCode, E.NOT_COORDINATOR);
  assert.equal(h.group.state, GROUP_STATES.DEAD);
});

Deno.test("step is pure: the input group is never modified", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew();
  h.advance(0);
  const before = h.group;
  const snapshot = JSON.stringify(describeGroup(before)) + JSON.stringify(groupRecord(before)) +
    JSON.stringify([...before.members.values()]) + JSON.stringify([...before.pendingSyncMembers]);
  step(
    before,
    {
      type: "sync",
      requestId: 99,
      memberId: a.memberId,
      groupInstanceId: null,
      generationId: 1,
      protocolType: null,
      protocolName: null,
      assignments: [{ memberId: a.memberId, assignment: bytes("z") }],
    },
    h.now,
    h.config,
  );
  step(before, { type: "unload", errorCode: E.NOT_COORDINATOR }, h.now + 1e9, h.config);
  step(before, { type: "tick" }, h.now + 1e9, h.config);
  const after = JSON.stringify(describeGroup(before)) + JSON.stringify(groupRecord(before)) +
    JSON.stringify([...before.members.values()]) + JSON.stringify([...before.pendingSyncMembers]);
  assert.equal(after, snapshot);
});

Deno.test("group record: encode, decode and load give the stored generation as Stable", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const a = h.joinNew({
    groupInstanceId: "i-1",
    protocols: [{ name: "range", metadata: bytes("m") }],
  });
  h.advance(0);
  h.sync(a.memberId, 1, [{ memberId: a.memberId, assignment: new Uint8Array([0, 200, 3]) }]);
  const persist = h.effects.findLast((e) => e.type === "persist");
  assert.ok(persist?.type === "persist");
  const decoded = decodeGroupRecord("g", encodeGroupRecord(persist.record));
  assert.deepEqual(decoded, persist.record);
  const loaded = groupFromRecord(decoded, 5_000);
  assert.equal(loaded.state, GROUP_STATES.STABLE);
  assert.equal(loaded.generationId, 1);
  assert.equal(loaded.leaderId, a.memberId);
  assert.equal(loaded.staticMembers.get("i-1"), a.memberId);
  const m = loaded.members.get(a.memberId)!;
  assert.deepEqual(m.assignment, new Uint8Array([0, 200, 3]));
  assert.equal(m.heartbeatDeadline, 5_000 + 10_000, "the session timer starts at load");
  assert.equal(groupFromRecord({ ...decoded, members: [] }, 0).state, GROUP_STATES.EMPTY);
  assert.equal(newGroup("x").generationId, 0);
});

Deno.test("a member holding a MEMBER_ID_REQUIRED id keeps the join phase open until it joins", () => {
  const h = new GroupHarness("g", { initialRebalanceDelayMs: 0 });
  const { memberId } = stableSingle(h);
  const first = h.join({ newMemberId: "late" });
  assert.equal(h.joinResponse(first)?.errorCode, E.MEMBER_ID_REQUIRED);
  const rejoin = h.join({ memberId }); // the leader rejoins: a rebalance starts
  assert.equal(h.group.state, GROUP_STATES.PREPARING_REBALANCE);
  assert.equal(h.joinResponse(rejoin), undefined, "waits for the pending member");
  const late = h.join({ memberId: "late" });
  assert.equal(h.joinResponse(rejoin)?.members.length, 2);
  assert.equal(h.joinResponse(late)?.errorCode, E.NONE);
});
