/**
 * Every advertised version of the consumer-group APIs — FindCoordinator,
 * JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
 * DescribeGroups, ListGroups, DeleteGroups — against an in-process broker
 * over loopback TCP, through the generated codecs.
 */
import assert from "node:assert/strict";
import { type RunningNode, startNode } from "../../lib/cli/node.ts";
import { resolveServeConfig } from "../../lib/cli/serve_config.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { SystemClock } from "../../lib/util/clock.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { HANDLERS } from "../../lib/broker/handler_table.ts";
import { GROUP_AUTHORIZED_OPERATIONS } from "../../lib/broker/describe_groups.ts";
import type { GroupCoordinatorConfig } from "../../lib/coordinator/group_coordinator.ts";

const E = ERROR_CODES;
const OFFSET_COMMIT = API_SCHEMAS[8];
const OFFSET_FETCH = API_SCHEMAS[9];
const FIND_COORDINATOR = API_SCHEMAS[10];
const JOIN_GROUP = API_SCHEMAS[11];
const HEARTBEAT = API_SCHEMAS[12];
const LEAVE_GROUP = API_SCHEMAS[13];
const SYNC_GROUP = API_SCHEMAS[14];
const DESCRIBE_GROUPS = API_SCHEMAS[15];
const LIST_GROUPS = API_SCHEMAS[16];
const CREATE_TOPICS = API_SCHEMAS[19];
const DELETE_GROUPS = API_SCHEMAS[42];

const CLIENT_ID = "groups-test";
const enc = new TextEncoder();

function versions(apiKey: number): number[] {
  const h = HANDLERS.get(apiKey)!;
  return Array.from({ length: h.maxVersion - h.minVersion + 1 }, (_, i) => h.minVersion + i);
}

interface GroupBroker extends AsyncDisposable {
  node: RunningNode;
  bootstrap: string;
  connect(): Promise<KafkaConnection>;
  stop(): Promise<void>;
}

/** Like tests/support/test_broker.ts, with coordinator settings (no initial rebalance delay). */
async function startBroker(
  opts: {
    metadataStore?: MemoryMetadataStore;
    objectStore?: MemoryObjectStore;
    coordinator?: Partial<GroupCoordinatorConfig>;
  } = {},
): Promise<GroupBroker> {
  const config = resolveServeConfig(
    new Map([
      ["listen", "127.0.0.1:0"],
      ["http-listen", "127.0.0.1:0"],
      ["control-listen", "127.0.0.1:0"],
    ]),
    {},
    null,
  );
  const metadataStore = opts.metadataStore ?? new MemoryMetadataStore();
  const objectStore = opts.objectStore ?? new MemoryObjectStore();
  const node = await startNode({
    config,
    objectStore,
    metadataStore,
    clock: new SystemClock(),
    logger: silentLogger,
    coordinatorConfig: { initialRebalanceDelayMs: 0, ...opts.coordinator },
  });
  const bootstrap = `127.0.0.1:${node.kafkaAddress.port}`;
  const connections: KafkaConnection[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const c of connections) c.close();
    await Promise.all(connections.map((c) => c.closedByPeer()));
    await node.stop();
    if (!opts.metadataStore) await metadataStore.close();
    if (!opts.objectStore) await objectStore.close();
  };
  return {
    node,
    bootstrap,
    async connect() {
      const c = await KafkaConnection.connect(bootstrap, CLIENT_ID);
      connections.push(c);
      return c;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

async function createTopic(conn: KafkaConnection, name: string, partitions: number) {
  const res = await conn.send(CREATE_TOPICS, 7, {
    topics: [{
      name,
      numPartitions: partitions,
      replicationFactor: 1,
      assignments: [],
      configs: [],
    }],
    timeoutMs: 10_000,
  });
  assert.equal(res!.topics[0].errorCode, E.NONE);
  return res!.topics[0].topicId!;
}

/** A topic id no topic has. */
const UNKNOWN_TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ";

function joinRequest(
  groupId: string,
  memberId: string,
  metadata: Uint8Array,
  extra: { groupInstanceId?: string | null; protocols?: string[] } = {},
) {
  return {
    groupId,
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 10_000,
    memberId,
    groupInstanceId: extra.groupInstanceId ?? null,
    protocolType: "consumer",
    protocols: (extra.protocols ?? ["range"]).map((name) => ({ name, metadata })),
    reason: null,
  };
}

/** JoinGroup the way a client of version `v` does: v4+ learn the member id first. */
async function join(
  conn: KafkaConnection,
  v: number,
  groupId: string,
  metadata: Uint8Array,
  groupInstanceId: string | null = null,
) {
  let memberId = "";
  if (v >= 4 && groupInstanceId === null) {
    const first = await conn.send(JOIN_GROUP, v, joinRequest(groupId, "", metadata));
    assert.equal(first!.errorCode, E.MEMBER_ID_REQUIRED, `JoinGroup v${v}`);
    assert.notEqual(first!.memberId, "");
    memberId = first!.memberId;
  }
  const res = await conn.send(
    JOIN_GROUP,
    v,
    joinRequest(groupId, memberId, metadata, { groupInstanceId }),
  );
  assert.equal(res!.errorCode, E.NONE, `JoinGroup v${v}`);
  return res!;
}

function syncRequest(
  groupId: string,
  generationId: number,
  memberId: string,
  assignments: { memberId: string; assignment: Uint8Array }[],
  groupInstanceId: string | null = null,
) {
  return {
    groupId,
    generationId,
    memberId,
    groupInstanceId,
    protocolType: "consumer",
    protocolName: "range",
    assignments,
  };
}

Deno.test("FindCoordinator: every version names this broker; v4 answers each key", async () => {
  await using b = await startBroker();
  const conn = await b.connect();
  const port = b.node.kafkaAddress.port;
  for (const v of versions(10)) {
    if (v >= 4) {
      const res = await conn.send(FIND_COORDINATOR, v, {
        keyType: 0,
        coordinatorKeys: ["group-a", "group-b"],
      });
      assert.deepEqual(
        res!.coordinators!.map((c) => [c.key, c.errorCode, c.nodeId, c.host, c.port]),
        [["group-a", E.NONE, 0, "127.0.0.1", port], ["group-b", E.NONE, 0, "127.0.0.1", port]],
      );
      const txn = await conn.send(FIND_COORDINATOR, v, { keyType: 1, coordinatorKeys: ["tx"] });
      assert.deepEqual(
        [txn!.coordinators![0].errorCode, txn!.coordinators![0].port],
        [E.NONE, port],
      );
      continue;
    }
    const res = await conn.send(FIND_COORDINATOR, v, { key: "group-a", keyType: 0 });
    assert.equal(res!.errorCode, E.NONE, `v${v}`);
    assert.deepEqual([res!.nodeId, res!.host, res!.port], [0, "127.0.0.1", port], `v${v}`);
    if (v >= 1) {
      const txn = await conn.send(FIND_COORDINATOR, v, { key: "tx", keyType: 1 });
      assert.equal(txn!.errorCode, E.NONE, `v${v}`);
      assert.equal(txn!.nodeId, 0);
    }
  }
});

Deno.test("JoinGroup 0-9, SyncGroup 0-5, Heartbeat 0-4, LeaveGroup 0-5: a member's lifecycle", async () => {
  await using b = await startBroker();
  const conn = await b.connect();
  const covered = {
    sync: new Set<number>(),
    heartbeat: new Set<number>(),
    leave: new Set<number>(),
  };
  for (const jv of versions(11)) {
    const sv = jv % 6;
    const hv = jv % 5;
    const lv = jv % 6;
    covered.sync.add(sv);
    covered.heartbeat.add(hv);
    covered.leave.add(lv);
    const groupId = `life-${jv}`;
    const metadata = new Uint8Array([0, 1, 2, 3, 255, jv]);
    const instance = jv >= 5 && jv % 2 === 1 ? `instance-${jv}` : null;
    const joined = await join(conn, jv, groupId, metadata, instance);
    const ctx = `JoinGroup v${jv}`;
    assert.equal(joined.generationId, 1, ctx);
    assert.equal(joined.leader, joined.memberId, ctx);
    assert.equal(joined.protocolName, "range", ctx);
    if (jv >= 7) assert.equal(joined.protocolType, "consumer", ctx);
    assert.equal(joined.members.length, 1, ctx);
    assert.deepEqual(joined.members[0].metadata, metadata, `${ctx}: metadata byte for byte`);
    if (jv >= 5) assert.equal(joined.members[0].groupInstanceId, instance, ctx);
    assert.ok(joined.memberId.startsWith(instance ?? CLIENT_ID), ctx);

    const assignment = new Uint8Array([9, 0, 8, jv]);
    const synced = await conn.send(
      SYNC_GROUP,
      sv,
      syncRequest(
        groupId,
        1,
        joined.memberId,
        [{ memberId: joined.memberId, assignment }],
        sv >= 3 ? instance : null,
      ),
    );
    assert.equal(synced!.errorCode, E.NONE, `SyncGroup v${sv}`);
    assert.deepEqual(synced!.assignment, assignment, `SyncGroup v${sv}`);
    if (sv >= 5) {
      assert.equal(synced!.protocolType, "consumer");
      assert.equal(synced!.protocolName, "range");
    }

    const hb = (generationId: number, memberId = joined.memberId) =>
      conn.send(HEARTBEAT, hv, {
        groupId,
        generationId,
        memberId,
        groupInstanceId: hv >= 3 && memberId === joined.memberId ? instance : null,
      });
    assert.equal((await hb(1))!.errorCode, E.NONE, `Heartbeat v${hv}`);
    assert.equal((await hb(2))!.errorCode, E.ILLEGAL_GENERATION, `Heartbeat v${hv}`);
    assert.equal((await hb(1, "stranger"))!.errorCode, E.UNKNOWN_MEMBER_ID, `Heartbeat v${hv}`);

    const left = await conn.send(LEAVE_GROUP, lv, {
      groupId,
      memberId: joined.memberId,
      members: [{ memberId: joined.memberId, groupInstanceId: instance, reason: "done" }],
    });
    assert.equal(left!.errorCode, E.NONE, `LeaveGroup v${lv}`);
    if (lv >= 3) assert.deepEqual(left!.members!.map((m) => m.errorCode), [E.NONE]);
    const again = await conn.send(LEAVE_GROUP, lv, {
      groupId,
      memberId: joined.memberId,
      members: [{ memberId: joined.memberId, groupInstanceId: null, reason: null }],
    });
    if (lv >= 3) {
      assert.equal(again!.errorCode, E.NONE);
      assert.deepEqual(again!.members!.map((m) => m.errorCode), [E.UNKNOWN_MEMBER_ID]);
    } else {
      assert.equal(again!.errorCode, E.UNKNOWN_MEMBER_ID, `LeaveGroup v${lv}`);
    }
    assert.equal((await hb(1))!.errorCode, E.UNKNOWN_MEMBER_ID);
  }
  assert.deepEqual([...covered.sync].sort(), versions(14));
  assert.deepEqual([...covered.heartbeat].sort(), versions(12));
  assert.deepEqual([...covered.leave].sort(), versions(13));
});

Deno.test("JoinGroup: held until every member rejoins; the leader assigns, each gets its bytes", async () => {
  await using b = await startBroker();
  const [ca, cb] = [await b.connect(), await b.connect()];
  const metaA = enc.encode("subscription-a\u0000");
  const metaB = enc.encode("subscription-b\u00ff");
  const a = await join(ca, 9, "pair", metaA);
  await ca.send(SYNC_GROUP, 5, syncRequest("pair", 1, a.memberId, []));
  // b's first JoinGroup (v3: no MEMBER_ID_REQUIRED round trip) is held: a must rejoin.
  let bAnswered = false;
  const bJoin = cb.send(JOIN_GROUP, 3, joinRequest("pair", "", metaB)).then((r) => {
    bAnswered = true;
    return r!;
  });
  for (let i = 0;; i++) {
    const hb = await ca.send(HEARTBEAT, 4, {
      groupId: "pair",
      generationId: 1,
      memberId: a.memberId,
      groupInstanceId: null,
    });
    if (hb!.errorCode === E.REBALANCE_IN_PROGRESS) break;
    assert.ok(i < 100, "no rebalance started");
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(bAnswered, false);
  const aJoin = await ca.send(JOIN_GROUP, 9, joinRequest("pair", a.memberId, metaA));
  const bJoined = await bJoin;
  assert.equal(aJoin!.generationId, 2);
  assert.equal(bJoined.generationId, 2);
  assert.equal(aJoin!.leader, a.memberId);
  assert.equal(bJoined.leader, a.memberId);
  assert.deepEqual(bJoined.members, [], "followers get no member list");
  assert.deepEqual(
    aJoin!.members.map((m) => [m.memberId, [...m.metadata]]),
    [[a.memberId, [...metaA]], [bJoined.memberId, [...metaB]]],
  );
  // The follower's SyncGroup waits for the leader's.
  const assignA = new Uint8Array([1, 1]);
  const assignB = new Uint8Array([2, 2, 2, 0]);
  const bSync = cb.send(SYNC_GROUP, 3, syncRequest("pair", 2, bJoined.memberId, []));
  const aSync = await ca.send(
    SYNC_GROUP,
    4,
    syncRequest("pair", 2, a.memberId, [
      { memberId: a.memberId, assignment: assignA },
      { memberId: bJoined.memberId, assignment: assignB },
    ]),
  );
  assert.deepEqual(aSync!.assignment, assignA);
  assert.deepEqual((await bSync)!.assignment, assignB);
});

Deno.test("OffsetCommit 0-10 and OffsetFetch 0-10: commits, metadata, -1 when absent, errors", async () => {
  await using b = await startBroker();
  const conn = await b.connect();
  const offsetsId = await createTopic(conn, "offsets", 3);
  // v10 names topics by id (KIP-848): the answers carry the ids.
  const key = (v: number, t: { name?: string; topicId?: string }) => v >= 10 ? t.topicId : t.name;
  for (const cv of versions(8)) {
    const groupId = `commit-v${cv}`;
    const res = await conn.send(OFFSET_COMMIT, cv, {
      groupId,
      generationIdOrMemberEpoch: -1,
      memberId: "",
      groupInstanceId: null,
      retentionTimeMs: -1,
      topics: [
        {
          name: "offsets",
          topicId: offsetsId,
          partitions: [
            {
              partitionIndex: 0,
              committedOffset: 100 + cv,
              committedLeaderEpoch: 7,
              commitTimestamp: -1,
              committedMetadata: `meta-${cv}-\u00e9`,
            },
            {
              partitionIndex: 1,
              committedOffset: 5,
              committedLeaderEpoch: -1,
              commitTimestamp: -1,
              committedMetadata: null,
            },
            {
              partitionIndex: 9,
              committedOffset: 1,
              committedLeaderEpoch: -1,
              commitTimestamp: -1,
              committedMetadata: null,
            },
          ],
        },
        {
          name: "no-such-topic",
          topicId: UNKNOWN_TOPIC_ID,
          partitions: [{
            partitionIndex: 0,
            committedOffset: 1,
            committedLeaderEpoch: -1,
            commitTimestamp: -1,
            committedMetadata: null,
          }],
        },
      ],
    });
    assert.deepEqual(
      res!.topics.map((t) => [
        key(cv, t),
        t.partitions.map((p) => [p.partitionIndex, p.errorCode]),
      ]),
      [
        [key(cv, { name: "offsets", topicId: offsetsId }), [[0, E.NONE], [1, E.NONE], [
          9,
          E.UNKNOWN_TOPIC_OR_PARTITION,
        ]]],
        cv >= 10
          ? [UNKNOWN_TOPIC_ID, [[0, E.UNKNOWN_TOPIC_ID]]]
          : ["no-such-topic", [[0, E.UNKNOWN_TOPIC_OR_PARTITION]]],
      ],
      `OffsetCommit v${cv}`,
    );
  }
  for (const fv of versions(9)) {
    for (const cv of versions(8)) {
      const groupId = `commit-v${cv}`;
      const ctx = `OffsetFetch v${fv} of commit v${cv}`;
      const topics = [{ name: "offsets", topicId: offsetsId, partitionIndexes: [0, 1, 2] }];
      const res = await conn.send(OFFSET_FETCH, fv, {
        groupId,
        topics,
        groups: [{ groupId, memberId: null, memberEpoch: -1, topics }],
        requireStable: true,
      });
      const parts = fv >= 8 ? res!.groups![0].topics[0].partitions : res!.topics![0].partitions;
      if (fv >= 8) assert.equal(res!.groups![0].errorCode, E.NONE);
      else if (fv >= 2) assert.equal(res!.errorCode, E.NONE);
      assert.deepEqual(
        parts.map((p) => [p.partitionIndex, p.committedOffset, p.metadata, p.errorCode]),
        [[0, 100 + cv, `meta-${cv}-\u00e9`, E.NONE], [1, 5, "", E.NONE], [2, -1, "", E.NONE]],
        ctx,
      );
      if (fv >= 5) {
        assert.deepEqual(parts.map((p) => p.committedLeaderEpoch), [cv >= 6 ? 7 : -1, -1, -1], ctx);
      }
    }
    if (fv >= 2) {
      // A null topic list asks for every committed partition.
      const all = await conn.send(OFFSET_FETCH, fv, {
        groupId: "commit-v3",
        topics: null,
        groups: [{ groupId: "commit-v3", memberId: null, memberEpoch: -1, topics: null }],
        requireStable: false,
      });
      const topics = fv >= 8 ? all!.groups![0].topics : all!.topics!;
      assert.deepEqual(
        topics.map((
          t,
        ) => [key(fv, t), t.partitions.map((p) => [p.partitionIndex, p.committedOffset])]),
        [[key(fv, { name: "offsets", topicId: offsetsId }), [[0, 103], [1, 5]]]],
        `OffsetFetch v${fv} all topics`,
      );
    }
  }
  // v10: an unknown topic id answers UNKNOWN_TOPIC_ID per partition.
  const byUnknownId = await conn.send(OFFSET_FETCH, 10, {
    groups: [{
      groupId: "commit-v3",
      memberId: null,
      memberEpoch: -1,
      topics: [{ topicId: UNKNOWN_TOPIC_ID, partitionIndexes: [0, 1] }],
    }],
    requireStable: false,
  });
  assert.deepEqual(
    byUnknownId!.groups![0].topics.map((t) => [t.topicId, t.partitions.map((p) => p.errorCode)]),
    [[UNKNOWN_TOPIC_ID, [E.UNKNOWN_TOPIC_ID, E.UNKNOWN_TOPIC_ID]]],
  );
  // v8+: several groups at once, including one that never committed.
  const multi = await conn.send(OFFSET_FETCH, 8, {
    groups: [
      { groupId: "commit-v1", topics: [{ name: "offsets", partitionIndexes: [0] }] },
      { groupId: "never", topics: [{ name: "offsets", partitionIndexes: [0] }] },
    ],
    requireStable: false,
  });
  assert.deepEqual(
    multi!.groups!.map((g) => [g.groupId, g.topics[0].partitions[0].committedOffset]),
    [["commit-v1", 101], ["never", -1]],
  );
});

Deno.test("OffsetCommit: members commit with their generation; stale generations are refused", async () => {
  await using b = await startBroker();
  const conn = await b.connect();
  const topicId = await createTopic(conn, "t", 1);
  const joined = await join(conn, 5, "members", new Uint8Array([1]));
  await conn.send(SYNC_GROUP, 5, syncRequest("members", 1, joined.memberId, []));
  const commit = (v: number, generation: number, memberId: string) =>
    conn.send(OFFSET_COMMIT, v, {
      groupId: "members",
      generationIdOrMemberEpoch: generation,
      memberId,
      groupInstanceId: null,
      retentionTimeMs: -1,
      topics: [{
        name: "t",
        topicId,
        partitions: [{
          partitionIndex: 0,
          committedOffset: 3,
          committedLeaderEpoch: -1,
          commitTimestamp: -1,
          committedMetadata: "",
        }],
      }],
    }).then((r) => r!.topics[0].partitions[0].errorCode);
  for (const v of versions(8).filter((v) => v >= 1)) {
    assert.equal(await commit(v, 1, joined.memberId), E.NONE, `v${v}`);
    assert.equal(await commit(v, 0, joined.memberId), E.ILLEGAL_GENERATION, `v${v}`);
    assert.equal(await commit(v, 1, "someone-else"), E.UNKNOWN_MEMBER_ID, `v${v}`);
    assert.equal(await commit(v, -1, ""), E.UNKNOWN_MEMBER_ID, `v${v}: group has members`);
  }
  // v0 carries no member: it is a standalone commit, refused while the group has members.
  assert.equal(await commit(0, -1, ""), E.UNKNOWN_MEMBER_ID);
});

Deno.test("DescribeGroups 0-6: state, members, client ids, hosts and assignments", async () => {
  await using b = await startBroker();
  const conn = await b.connect();
  const metadata = enc.encode("sub-bytes");
  const assignment = enc.encode("assign-bytes");
  const joined = await join(conn, 5, "described", metadata, "static-1");
  await conn.send(
    SYNC_GROUP,
    5,
    syncRequest(
      "described",
      1,
      joined.memberId,
      [{ memberId: joined.memberId, assignment }],
      "static-1",
    ),
  );
  for (const v of versions(15)) {
    const res = await conn.send(DESCRIBE_GROUPS, v, {
      groups: ["described", "no-such-group"],
      includeAuthorizedOperations: true,
    });
    const [g, missing] = res!.groups;
    const ctx = `DescribeGroups v${v}`;
    assert.equal(g.errorCode, E.NONE, ctx);
    assert.equal(g.groupState, "Stable", ctx);
    assert.equal(g.protocolType, "consumer", ctx);
    assert.equal(g.protocolData, "range", ctx);
    assert.equal(g.members.length, 1, ctx);
    const m = g.members[0];
    assert.equal(m.memberId, joined.memberId, ctx);
    assert.equal(m.clientId, CLIENT_ID, ctx);
    assert.equal(m.clientHost, "/127.0.0.1", ctx);
    assert.deepEqual(m.memberMetadata, metadata, ctx);
    assert.deepEqual(m.memberAssignment, assignment, ctx);
    if (v >= 4) assert.equal(m.groupInstanceId, "static-1", ctx);
    if (v >= 3) assert.equal(g.authorizedOperations, GROUP_AUTHORIZED_OPERATIONS, ctx);
    // v6 (KIP-1043) says so with GROUP_ID_NOT_FOUND; before, a Dead group with no error.
    assert.deepEqual(
      [missing.errorCode, missing.groupState, missing.members.length],
      [v >= 6 ? E.GROUP_ID_NOT_FOUND : E.NONE, "Dead", 0],
      ctx,
    );
  }
});

Deno.test("ListGroups 0-5 with state and type filters", async () => {
  await using b = await startBroker();
  const conn = await b.connect();
  await createTopic(conn, "t", 1);
  const joined = await join(conn, 5, "listed-stable", new Uint8Array([1]));
  await conn.send(SYNC_GROUP, 5, syncRequest("listed-stable", 1, joined.memberId, []));
  await conn.send(OFFSET_COMMIT, 2, {
    groupId: "listed-offsets-only",
    generationIdOrMemberEpoch: -1,
    memberId: "",
    retentionTimeMs: -1,
    topics: [{
      name: "t",
      partitions: [{ partitionIndex: 0, committedOffset: 1, committedMetadata: null }],
    }],
  });
  for (const v of versions(16)) {
    const all = await conn.send(LIST_GROUPS, v, { statesFilter: [], typesFilter: [] });
    assert.equal(all!.errorCode, E.NONE);
    assert.deepEqual(
      all!.groups.map((g) => [g.groupId, g.protocolType]),
      [["listed-offsets-only", ""], ["listed-stable", "consumer"]],
      `ListGroups v${v}`,
    );
    if (v >= 4) {
      assert.deepEqual(all!.groups.map((g) => g.groupState), ["Empty", "Stable"]);
      const stable = await conn.send(LIST_GROUPS, v, { statesFilter: ["Stable"], typesFilter: [] });
      assert.deepEqual(stable!.groups.map((g) => g.groupId), ["listed-stable"], `v${v}`);
      const empty = await conn.send(LIST_GROUPS, v, { statesFilter: ["empty"], typesFilter: [] });
      assert.deepEqual(empty!.groups.map((g) => g.groupId), ["listed-offsets-only"], `v${v}`);
    }
    if (v >= 5) {
      assert.deepEqual(all!.groups.map((g) => g.groupType), ["classic", "classic"]);
      const consumer = await conn.send(LIST_GROUPS, v, {
        statesFilter: [],
        typesFilter: ["consumer"],
      });
      assert.deepEqual(consumer!.groups, []);
      const classic = await conn.send(LIST_GROUPS, v, {
        statesFilter: [],
        typesFilter: ["Classic"],
      });
      assert.equal(classic!.groups.length, 2);
    }
  }
});

Deno.test("DeleteGroups 0-2: empty groups only; their offsets go with them", async () => {
  await using b = await startBroker();
  const conn = await b.connect();
  await createTopic(conn, "t", 1);
  const joined = await join(conn, 5, "busy", new Uint8Array([1]));
  await conn.send(SYNC_GROUP, 5, syncRequest("busy", 1, joined.memberId, []));
  for (const v of versions(42)) {
    const groupId = `doomed-${v}`;
    await conn.send(OFFSET_COMMIT, 2, {
      groupId,
      generationIdOrMemberEpoch: -1,
      memberId: "",
      retentionTimeMs: -1,
      topics: [{
        name: "t",
        partitions: [{ partitionIndex: 0, committedOffset: 9, committedMetadata: null }],
      }],
    });
    const res = await conn.send(DELETE_GROUPS, v, { groupsNames: [groupId, "busy", "ghost"] });
    assert.deepEqual(
      res!.results.map((r) => [r.groupId, r.errorCode]),
      [[groupId, E.NONE], ["busy", E.NON_EMPTY_GROUP], ["ghost", E.GROUP_ID_NOT_FOUND]],
      `DeleteGroups v${v}`,
    );
    const fetched = await conn.send(OFFSET_FETCH, 5, {
      groupId,
      topics: [{ name: "t", partitionIndexes: [0] }],
      requireStable: false,
    });
    assert.equal(fetched!.topics![0].partitions[0].committedOffset, -1, `v${v}`);
  }
});

Deno.test("Group APIs: INVALID_GROUP_ID and INVALID_SESSION_TIMEOUT", async () => {
  await using b = await startBroker();
  const conn = await b.connect();
  const join = await conn.send(JOIN_GROUP, 5, joinRequest("", "", new Uint8Array()));
  assert.equal(join!.errorCode, E.INVALID_GROUP_ID);
  const tooShort = await conn.send(JOIN_GROUP, 5, {
    ...joinRequest("g", "", new Uint8Array()),
    sessionTimeoutMs: 1_000,
  });
  assert.equal(tooShort!.errorCode, E.INVALID_SESSION_TIMEOUT);
  const hb = await conn.send(HEARTBEAT, 4, {
    groupId: "",
    generationId: 1,
    memberId: "m",
    groupInstanceId: null,
  });
  assert.equal(hb!.errorCode, E.INVALID_GROUP_ID);
  const fetched = await conn.send(OFFSET_FETCH, 7, {
    groupId: "",
    topics: null,
    requireStable: false,
  });
  assert.equal(fetched!.errorCode, E.INVALID_GROUP_ID);
});

Deno.test("After a broker restart the group resumes from its committed offsets and members", async () => {
  const metadataStore = new MemoryMetadataStore();
  const objectStore = new MemoryObjectStore();
  let member: { memberId: string; generationId: number };
  {
    await using b = await startBroker({ metadataStore, objectStore });
    const conn = await b.connect();
    await createTopic(conn, "t", 2);
    const joined = await join(conn, 5, "durable", new Uint8Array([7]));
    await conn.send(
      SYNC_GROUP,
      5,
      syncRequest("durable", 1, joined.memberId, [{
        memberId: joined.memberId,
        assignment: new Uint8Array([3]),
      }]),
    );
    member = { memberId: joined.memberId, generationId: joined.generationId };
    await conn.send(OFFSET_COMMIT, 8, {
      groupId: "durable",
      generationIdOrMemberEpoch: 1,
      memberId: joined.memberId,
      groupInstanceId: null,
      topics: [{
        name: "t",
        partitions: [
          {
            partitionIndex: 0,
            committedOffset: 11,
            committedLeaderEpoch: 0,
            committedMetadata: "a",
          },
          {
            partitionIndex: 1,
            committedOffset: 22,
            committedLeaderEpoch: 0,
            committedMetadata: "b",
          },
        ],
      }],
    });
  }
  await using b = await startBroker({ metadataStore, objectStore });
  const conn = await b.connect();
  const fetched = await conn.send(OFFSET_FETCH, 8, {
    groups: [{ groupId: "durable", topics: null }],
    requireStable: true,
  });
  assert.deepEqual(
    fetched!.groups![0].topics[0].partitions.map((p) => [p.committedOffset, p.metadata]),
    [[11, "a"], [22, "b"]],
  );
  // The member's heartbeat still counts: the stored generation was loaded.
  const hb = await conn.send(HEARTBEAT, 4, {
    groupId: "durable",
    generationId: member.generationId,
    memberId: member.memberId,
    groupInstanceId: null,
  });
  assert.equal(hb!.errorCode, E.NONE);
  const described = await conn.send(DESCRIBE_GROUPS, 5, {
    groups: ["durable"],
    includeAuthorizedOperations: false,
  });
  assert.deepEqual(described!.groups[0].members[0].memberAssignment, new Uint8Array([3]));
  await b.stop();
  await metadataStore.close();
  await objectStore.close();
});

Deno.test("Stopping the broker answers a held JoinGroup with NOT_COORDINATOR", async () => {
  const metadataStore = new MemoryMetadataStore();
  const objectStore = new MemoryObjectStore();
  const b = await startBroker({
    metadataStore,
    objectStore,
    coordinator: { initialRebalanceDelayMs: 60_000 },
  });
  const conn = await KafkaConnection.connect(b.bootstrap, CLIENT_ID);
  const watcher = await KafkaConnection.connect(b.bootstrap, CLIENT_ID);
  // v3: no MEMBER_ID_REQUIRED, the first JoinGroup waits out the initial delay.
  const held = conn.send(JOIN_GROUP, 3, joinRequest("held", "", new Uint8Array([1])));
  for (let i = 0;; i++) {
    const d = await watcher.send(DESCRIBE_GROUPS, 0, { groups: ["held"] });
    if (d!.groups[0].groupState === "PreparingRebalance") break;
    assert.ok(i < 200, "the join never reached the coordinator");
    await new Promise((r) => setTimeout(r, 5));
  }
  watcher.close();
  const stopping = b.node.stop();
  assert.equal((await held)!.errorCode, E.NOT_COORDINATOR);
  await stopping;
  conn.close();
  await conn.closedByPeer();
  await watcher.closedByPeer();
  await metadataStore.close();
  await objectStore.close();
});
