/**
 * ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe (69) over the wire at every version:
 * joining (a v0 member gets its id from the broker, a v1 member brings one), the assignment by
 * topic id, fencing and unknown members, leaving; OffsetCommit checking member epochs
 * (STALE_MEMBER_EPOCH); a classic JoinGroup refused while the group runs the consumer protocol;
 * ListGroups with the `consumer` type.
 */
import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { HANDLERS } from "../../lib/broker/handler_table.ts";
import type { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";

const HEARTBEAT = API_SCHEMAS[68];
const DESCRIBE = API_SCHEMAS[69];

function versions(apiKey: number): number[] {
  const h = HANDLERS.get(apiKey)!;
  return Array.from({ length: h.maxVersion - h.minVersion + 1 }, (_, i) => h.minVersion + i);
}

function beat(
  conn: KafkaConnection,
  v: number,
  group: string,
  memberId: string,
  memberEpoch: number,
  topics: string[] | null = null,
) {
  return conn.send(HEARTBEAT, v, {
    groupId: group,
    memberId,
    memberEpoch,
    instanceId: null,
    rackId: null,
    rebalanceTimeoutMs: 30_000,
    subscribedTopicNames: topics,
    subscribedTopicRegex: null,
    serverAssignor: null,
    topicPartitions: null,
  }).then((r) => r!);
}

Deno.test("ConsumerGroupHeartbeat 0-1 and ConsumerGroupDescribe 0-1: join, assignment, fencing, leave", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const created = await conn.send(API_SCHEMAS[19], 7, {
    topics: [{ name: "cg", numPartitions: 3, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 10_000,
  });
  const topicId = created!.topics[0].topicId!;
  for (const v of versions(68)) {
    const group = `cg-v${v}`;
    const joined = await beat(conn, v, group, v >= 1 ? `client-made-${v}` : "", 0, ["cg"]);
    assert.equal(joined.errorCode, E.NONE, `v${v}: ${joined.errorMessage}`);
    if (v >= 1) assert.equal(joined.memberId, `client-made-${v}`);
    else assert.ok(joined.memberId && joined.memberId.length > 0, "v0: the broker names it");
    assert.equal(joined.memberEpoch, 1);
    assert.ok(joined.heartbeatIntervalMs > 0);
    assert.deepEqual(joined.assignment, { topicPartitions: [{ topicId, partitions: [0, 1, 2] }] });
    const memberId = joined.memberId!;
    const again = await beat(conn, v, group, memberId, 1);
    assert.equal(again.errorCode, E.NONE);
    assert.equal(again.assignment, null, "unchanged: no assignment sent");
    assert.equal((await beat(conn, v, group, memberId, 9)).errorCode, E.FENCED_MEMBER_EPOCH);
    assert.equal((await beat(conn, v, group, "nobody", 1)).errorCode, E.UNKNOWN_MEMBER_ID);
    // OffsetCommit v9 checks the member epoch of a consumer-protocol group.
    const commit = (epoch: number) =>
      conn.send(API_SCHEMAS[8], 9, {
        groupId: group,
        generationIdOrMemberEpoch: epoch,
        memberId,
        groupInstanceId: null,
        retentionTimeMs: -1,
        topics: [{
          name: "cg",
          partitions: [{
            partitionIndex: 0,
            committedOffset: 0,
            committedLeaderEpoch: -1,
            commitTimestamp: -1,
            committedMetadata: "",
          }],
        }],
      }).then((r) => r!.topics[0].partitions[0].errorCode);
    assert.equal(await commit(1), E.NONE);
    assert.equal(await commit(0), E.STALE_MEMBER_EPOCH);
    // A classic member is refused meanwhile.
    const classic = await conn.send(API_SCHEMAS[11], 5, {
      groupId: group,
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 10_000,
      memberId: "",
      groupInstanceId: null,
      protocolType: "consumer",
      protocols: [{ name: "range", metadata: new Uint8Array(0) }],
    });
    assert.equal(classic!.errorCode, E.INCONSISTENT_GROUP_PROTOCOL);
    for (const dv of versions(69)) {
      const d = (await conn.send(DESCRIBE, dv, {
        groupIds: [group, "no-such"],
        includeAuthorizedOperations: false,
      }))!;
      const [g, missing] = d.groups;
      assert.equal(g.errorCode, E.NONE);
      assert.equal(g.groupState, "Stable");
      assert.equal(g.assignorName, "uniform");
      assert.deepEqual(g.members.map((m) => [m.memberId, m.memberEpoch]), [[memberId, 1]]);
      assert.deepEqual(g.members[0].assignment.topicPartitions, [
        { topicId, topicName: "cg", partitions: [0, 1, 2] },
      ]);
      assert.equal(missing.errorCode, E.GROUP_ID_NOT_FOUND);
    }
    // DescribeGroups (classic) says it is not a classic group, as Kafka 4.x does.
    for (const dv of [5, 6]) {
      const classicView = (await conn.send(API_SCHEMAS[15], dv, {
        groups: [group],
        includeAuthorizedOperations: false,
      }))!.groups[0];
      assert.equal(classicView.groupState, "Dead");
      assert.deepEqual(classicView.members, []);
      assert.equal(classicView.errorCode, dv >= 6 ? E.GROUP_ID_NOT_FOUND : E.NONE);
      if (dv >= 6) assert.equal(classicView.errorMessage, `Group ${group} is not a classic group.`);
    }
    const listed = (await conn.send(API_SCHEMAS[16], 5, {
      statesFilter: [],
      typesFilter: ["consumer"],
    }))!;
    assert.ok(
      listed.groups.some((x) => x.groupId === group && x.groupType === "consumer"),
      JSON.stringify(listed.groups),
    );
    const left = await beat(conn, v, group, memberId, -1);
    assert.equal(left.errorCode, E.NONE);
    assert.equal(left.memberEpoch, -1);
    const after = (await conn.send(DESCRIBE, 1, {
      groupIds: [group],
      includeAuthorizedOperations: false,
    }))!;
    assert.equal(after.groups[0].groupState, "Empty");
  }
});

Deno.test("ConsumerGroupHeartbeat: a restarted broker carries the group on from the metadata store", async () => {
  const metadataStore = new MemoryMetadataStore();
  const objectStore = new MemoryObjectStore();
  const group = "cg-restart";
  let memberId: string;
  let topicId: string;
  {
    await using b = await startTestBroker({ metadataStore, objectStore });
    const conn = await b.connect();
    const created = await conn.send(API_SCHEMAS[19], 7, {
      topics: [{
        name: "cgr",
        numPartitions: 2,
        replicationFactor: 1,
        assignments: [],
        configs: [],
      }],
      timeoutMs: 10_000,
    });
    topicId = created!.topics[0].topicId!;
    const joined = await beat(conn, 1, group, "member-1", 0, ["cgr"]);
    assert.equal(joined.errorCode, E.NONE, joined.errorMessage ?? "");
    memberId = joined.memberId!;
    assert.equal(joined.memberEpoch, 1);
  }
  await using b = await startTestBroker({ metadataStore, objectStore });
  const conn = await b.connect();
  // Listed as a consumer-protocol group at once, before anything loaded it.
  const listed = (await conn.send(API_SCHEMAS[16], 5, { statesFilter: [], typesFilter: [] }))!;
  assert.deepEqual(
    listed.groups.filter((g) => g.groupId === group).map((g) => [g.groupType, g.groupState]),
    [["consumer", "Stable"]],
  );
  // Known at once: described and checked on commits before any heartbeat reached it.
  const d =
    (await conn.send(DESCRIBE, 1, { groupIds: [group], includeAuthorizedOperations: false }))!;
  assert.equal(d.groups[0].errorCode, E.NONE);
  assert.deepEqual(d.groups[0].members.map((m) => [m.memberId, m.memberEpoch]), [[memberId, 1]]);
  // The member's next heartbeat goes on with its epoch and gets its whole assignment again.
  const again = await beat(conn, 1, group, memberId, 1);
  assert.equal(again.errorCode, E.NONE, again.errorMessage ?? "");
  assert.equal(again.memberEpoch, 1);
  assert.deepEqual(again.assignment, { topicPartitions: [{ topicId, partitions: [0, 1] }] });
  assert.equal((await beat(conn, 1, group, memberId, 7)).errorCode, E.FENCED_MEMBER_EPOCH);
  assert.equal((await beat(conn, 1, group, memberId, -1)).errorCode, E.NONE);
});
