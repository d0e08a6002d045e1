/**
 * The KIP-848 consumer group state machine (lib/coordinator/consumer_groups.ts): joins, epochs,
 * revocation before assignment, fencing, leaving, session expiry, assignors and regex, and a
 * seeded simulation of members joining, leaving, crashing and lagging in their heartbeats that
 * checks, after every step, that no partition is held by two members, and at the end that every
 * partition is held once the group is stable.
 */
import assert from "node:assert/strict";
import {
  compileTopicRegex,
  type ConsumerGroup,
  expireMembers,
  groupState,
  heartbeat,
  type HeartbeatInput,
  newConsumerGroup,
  type TopicInfo,
} from "../../lib/coordinator/consumer_groups.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";

const TOPICS = new Map<string, TopicInfo>([
  ["orders", { name: "orders", id: "T-orders", partitions: 6 }],
  ["audit", { name: "audit", id: "T-audit", partitions: 2 }],
]);

function input(memberId: string, memberEpoch: number, extra: Partial<HeartbeatInput> = {}) {
  return {
    groupId: "g",
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

let ids = 0;
const newId = () => `m${++ids}`;

function ok(out: ReturnType<typeof heartbeat>) {
  assert.equal(out.errorCode, 0, JSON.stringify(out));
  return out as Extract<typeof out, { memberId: string }>;
}

function holders(group: ConsumerGroup): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of group.members.values()) {
    for (const key of [...m.assigned, ...m.pendingRevocation]) {
      out.set(key, [...(out.get(key) ?? []), m.memberId]);
    }
  }
  return out;
}

Deno.test("consumer groups: a member joins and gets every partition; a second takes half only after the first revoked", () => {
  const g = newConsumerGroup("g");
  const a = ok(heartbeat(g, input("a", 0), TOPICS, 0, newId));
  assert.equal(a.memberEpoch, 1);
  assert.deepEqual(a.assignment, [{ topicId: "T-orders", partitions: [0, 1, 2, 3, 4, 5] }]);
  const b = ok(heartbeat(g, input("b", 0), TOPICS, 1, newId));
  // b's target is half, but a still holds it: b gets nothing yet, at the new epoch.
  assert.equal(b.memberEpoch, 2);
  assert.deepEqual(b.assignment, []);
  // a is told to revoke three; its epoch stays until it confirms.
  const a2 = ok(heartbeat(g, input("a", 1), TOPICS, 2, newId));
  assert.equal(a2.memberEpoch, 1);
  assert.equal(a2.assignment![0].partitions.length, 3);
  assert.equal(groupState(g), "Reconciling");
  const kept = a2.assignment![0].partitions;
  // Confirms (owned = what it kept): moves to epoch 2.
  const a3 = ok(heartbeat(
    g,
    input("a", 1, { ownedPartitions: [{ topicId: "T-orders", partitions: kept }] }),
    TOPICS,
    3,
    newId,
  ));
  assert.equal(a3.memberEpoch, 2);
  const b2 = ok(heartbeat(g, input("b", 2), TOPICS, 4, newId));
  assert.deepEqual(
    b2.assignment![0].partitions,
    [0, 1, 2, 3, 4, 5].filter((p) => !kept.includes(p)),
  );
  assert.equal(groupState(g), "Stable");
  // Nothing changed: no assignment in the answer.
  assert.equal(ok(heartbeat(g, input("b", 2), TOPICS, 5, newId)).assignment, null);
});

Deno.test("consumer groups: fencing, unknown members, leaving, expiry, assignors, regex", () => {
  const g = newConsumerGroup("g");
  ok(heartbeat(g, input("a", 0), TOPICS, 0, newId));
  assert.equal(
    heartbeat(g, input("a", 7), TOPICS, 1, newId).errorCode,
    ERROR_CODES.FENCED_MEMBER_EPOCH,
  );
  assert.equal(
    heartbeat(g, input("zz", 1), TOPICS, 1, newId).errorCode,
    ERROR_CODES.UNKNOWN_MEMBER_ID,
  );
  assert.equal(
    heartbeat(g, input("x", 0, { serverAssignor: "sticky" }), TOPICS, 1, newId).errorCode,
    ERROR_CODES.UNSUPPORTED_ASSIGNOR,
  );
  assert.equal(
    heartbeat(g, input("x", 0, { subscribedTopicRegex: "(?<=a)b" }), TOPICS, 1, newId).errorCode,
    ERROR_CODES.INVALID_REGULAR_EXPRESSION,
  );
  // A v0 joiner without an id gets one.
  const fresh = ok(heartbeat(g, input("", 0), TOPICS, 2, newId));
  assert.match(fresh.memberId, /^m\d+$/);
  const left = ok(heartbeat(g, input(fresh.memberId, -1), TOPICS, 3, newId));
  assert.equal(left.memberEpoch, -1);
  assert.equal(g.members.size, 1);
  // Session expiry.
  assert.deepEqual(expireMembers(g, 100_000, 45_000, TOPICS), ["a"]);
  assert.equal(groupState(g), "Empty");
  // Range: contiguous ranges per topic; regex subscriptions.
  const r = newConsumerGroup("r");
  ok(
    heartbeat(
      r,
      input("a", 0, {
        serverAssignor: "range",
        subscribedTopicNames: null,
        subscribedTopicRegex: "ord.*|audit",
      }),
      TOPICS,
      0,
      newId,
    ),
  );
  ok(
    heartbeat(
      r,
      input("b", 0, { serverAssignor: "range", subscribedTopicNames: ["orders", "audit"] }),
      TOPICS,
      0,
      newId,
    ),
  );
  assert.deepEqual([...r.target.get("a")!].sort(), [
    "T-audit:0",
    "T-orders:0",
    "T-orders:1",
    "T-orders:2",
  ]);
  assert.deepEqual([...r.target.get("b")!].sort(), [
    "T-audit:1",
    "T-orders:3",
    "T-orders:4",
    "T-orders:5",
  ]);
  assert.ok(compileTopicRegex("(?i)ORDERS").test("orders"));
  assert.ok(!compileTopicRegex("ord").test("orders"), "a regex matches whole names");
});

Deno.test("consumer groups: seeded simulation — never two holders; stable groups hold every partition", () => {
  for (const seed of [1, 2, 3, 4, 5, 42]) {
    let s = seed;
    const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
    const g = newConsumerGroup("g");
    // What each live client believes: its id, epoch and owned partitions.
    const clients = new Map<string, { epoch: number; owned: string[] }>();
    let now = 0;
    for (let step = 0; step < 400; step++) {
      now += 100;
      const r = rand();
      if (r < 0.1 || clients.size === 0) {
        const id = `c${step}`;
        const out = heartbeat(
          g,
          input(id, 0, { subscribedTopicNames: ["orders", "audit"] }),
          TOPICS,
          now,
          newId,
        );
        if (out.errorCode === 0) {
          clients.set(id, { epoch: (out as { memberEpoch: number }).memberEpoch, owned: [] });
        }
      } else if (r < 0.14) {
        const id = [...clients.keys()][Math.floor(rand() * clients.size)];
        heartbeat(g, input(id, -1), TOPICS, now, newId);
        clients.delete(id);
      } else if (r < 0.17) {
        // A crash: the client vanishes; its session expires later.
        const id = [...clients.keys()][Math.floor(rand() * clients.size)];
        clients.delete(id);
      } else {
        const id = [...clients.keys()][Math.floor(rand() * clients.size)];
        const c = clients.get(id)!;
        const out = heartbeat(
          g,
          input(id, c.epoch, {
            ownedPartitions: rand() < 0.7 ? byTopicOf(c.owned) : null,
          }),
          TOPICS,
          now,
          newId,
        );
        if (out.errorCode !== 0) {
          clients.delete(id); // fenced or unknown: it would rejoin as a new member
        } else {
          const ok = out as {
            memberEpoch: number;
            assignment: { topicId: string; partitions: number[] }[] | null;
          };
          c.epoch = ok.memberEpoch;
          if (ok.assignment) {
            c.owned = ok.assignment.flatMap((t) => t.partitions.map((p) => `${t.topicId}:${p}`));
          }
        }
      }
      expireMembers(g, now, 3_000, TOPICS);
      for (const [key, who] of holders(g)) {
        assert.equal(who.length, 1, `seed ${seed} step ${step}: ${key} held by ${who.join(", ")}`);
      }
    }
    // Quiesce: every live client heartbeats with what it owns until nothing changes.
    for (let round = 0; round < 20; round++) {
      now += 100;
      for (const [id, c] of clients) {
        const out = heartbeat(
          g,
          input(id, c.epoch, { ownedPartitions: byTopicOf(c.owned) }),
          TOPICS,
          now,
          newId,
        );
        if (out.errorCode !== 0) continue;
        const ok = out as {
          memberEpoch: number;
          assignment: { topicId: string; partitions: number[] }[] | null;
        };
        c.epoch = ok.memberEpoch;
        if (ok.assignment) {
          c.owned = ok.assignment.flatMap((t) => t.partitions.map((p) => `${t.topicId}:${p}`));
        }
      }
    }
    expireMembers(g, now + 10_000, 3_000, TOPICS); // the crashed ones
    for (let round = 0; round < 20; round++) {
      now += 100;
      for (const [id, c] of clients) {
        if (!g.members.has(id)) continue;
        const out = heartbeat(
          g,
          input(id, c.epoch, { ownedPartitions: byTopicOf(c.owned) }),
          TOPICS,
          now + 10_000,
          newId,
        );
        if (out.errorCode !== 0) continue;
        const ok = out as {
          memberEpoch: number;
          assignment: { topicId: string; partitions: number[] }[] | null;
        };
        c.epoch = ok.memberEpoch;
        if (ok.assignment) {
          c.owned = ok.assignment.flatMap((t) => t.partitions.map((p) => `${t.topicId}:${p}`));
        }
      }
    }
    if (g.members.size > 0) {
      assert.equal(groupState(g), "Stable", `seed ${seed}`);
      assert.equal(holders(g).size, 8, `seed ${seed}: every partition held`);
    }
  }
});

function byTopicOf(keys: string[]) {
  const out = new Map<string, number[]>();
  for (const k of keys) {
    const at = k.lastIndexOf(":");
    out.set(k.slice(0, at), [...(out.get(k.slice(0, at)) ?? []), Number(k.slice(at + 1))]);
  }
  return [...out].map(([topicId, partitions]) => ({ topicId, partitions }));
}
