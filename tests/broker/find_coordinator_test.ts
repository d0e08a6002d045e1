/**
 * FindCoordinator with two brokers on one metadata store (in-process, over loopback TCP): both
 * give the same coordinator for a group — its live owner, else a registered broker picked by
 * hashing the group id, spread over both — a broker that does not own a group answers its
 * requests NOT_COORDINATOR, and a stopped owner's groups move to the broker left.
 */
import assert from "node:assert/strict";
import { startTestBroker, type TestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";

const E = ERROR_CODES;
const FIND_COORDINATOR = API_SCHEMAS[10];
const JOIN_GROUP = API_SCHEMAS[11];
const GROUPS = Array.from({ length: 24 }, (_, i) => `group-${i}`);

async function coordinatorOf(b: TestBroker, group: string): Promise<[number, number, number]> {
  const conn = await b.connect();
  const res = (await conn.send(FIND_COORDINATOR, 3, { key: group, keyType: 0 }))!;
  return [res.errorCode ?? -1, res.nodeId ?? -1, res.port ?? -1];
}

async function coordinatorsOf(b: TestBroker, groups: string[]): Promise<number[]> {
  const conn = await b.connect();
  const res = (await conn.send(FIND_COORDINATOR, 4, { keyType: 0, coordinatorKeys: groups }))!;
  assert.deepEqual(res.coordinators!.map((c) => c.key), groups);
  for (const c of res.coordinators!) assert.equal(c.errorCode, E.NONE);
  return res.coordinators!.map((c) => c.nodeId);
}

/** A v4 JoinGroup without a member id: MEMBER_ID_REQUIRED from the coordinator. */
async function firstJoin(b: TestBroker, group: string): Promise<number> {
  const conn = await b.connect();
  const res = await conn.send(JOIN_GROUP, 4, {
    groupId: group,
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 10_000,
    memberId: "",
    groupInstanceId: null,
    protocolType: "consumer",
    protocols: [{ name: "range", metadata: new Uint8Array([1]) }],
    reason: null,
  });
  return res!.errorCode;
}

async function startCluster() {
  const metadataStore = new MemoryMetadataStore();
  const objectStore = new MemoryObjectStore();
  const nodes: TestBroker[] = [];
  for (const id of [1, 2]) {
    nodes.push(
      await startTestBroker({ settings: { "broker-id": String(id) }, metadataStore, objectStore }),
    );
  }
  return {
    nodes,
    metadataStore,
    async stop() {
      for (const n of nodes) await n.stop();
      await metadataStore.close();
      await objectStore.close();
    },
  };
}

Deno.test("FindCoordinator: every broker names the same coordinator; groups spread over both", async () => {
  const cluster = await startCluster();
  try {
    const [b1, b2] = cluster.nodes;
    const [from1, from2] = [await coordinatorsOf(b1, GROUPS), await coordinatorsOf(b2, GROUPS)];
    assert.deepEqual(from1, from2, "both brokers give the same coordinators");
    assert.deepEqual(new Set(from1), new Set([1, 2]), "groups are spread over the brokers");
    for (const [i, group] of GROUPS.entries()) {
      const port = (from1[i] === 1 ? b1 : b2).node.kafkaAddress.port;
      assert.deepEqual(await coordinatorOf(b2, group), [E.NONE, from1[i], port], group);
    }
  } finally {
    await cluster.stop();
  }
});

Deno.test("FindCoordinator: the live owner is the coordinator; others answer NOT_COORDINATOR", async () => {
  const cluster = await startCluster();
  try {
    const [b1, b2] = cluster.nodes;
    const hashed = await coordinatorsOf(b1, GROUPS);
    // A group the hash gives to broker 2, taken by broker 1 (a client that skipped the lookup).
    const group = GROUPS[hashed.indexOf(2)];
    assert.equal(await firstJoin(b1, group), E.MEMBER_ID_REQUIRED);
    const facade = new ClusterMetadata(cluster.metadataStore);
    assert.equal((await facade.getGroupOwner(group))?.brokerId, 1);
    for (const b of [b1, b2]) {
      assert.deepEqual(await coordinatorOf(b, group), [E.NONE, 1, b1.node.kafkaAddress.port]);
    }
    assert.equal(await firstJoin(b2, group), E.NOT_COORDINATOR);

    // Broker 1 stops (its lease is revoked with it): broker 2 coordinates the group now.
    await b1.stop();
    assert.deepEqual(await coordinatorOf(b2, group), [E.NONE, 2, b2.node.kafkaAddress.port]);
    assert.equal(await firstJoin(b2, group), E.MEMBER_ID_REQUIRED);
    assert.equal((await facade.getGroupOwner(group))?.brokerId, 2);
  } finally {
    await cluster.stop();
  }
});

Deno.test("FindCoordinator: an owner that is alive but not registered is COORDINATOR_NOT_AVAILABLE", async () => {
  const cluster = await startCluster();
  try {
    const [b1] = cluster.nodes;
    const facade = new ClusterMetadata(cluster.metadataStore);
    const lease = await facade.grantLease(60_000);
    assert.notEqual(await facade.acquireGroup("ghost", 9, lease.id), "owned-by-other");
    const [code, nodeId] = await coordinatorOf(b1, "ghost");
    assert.equal(code, E.COORDINATOR_NOT_AVAILABLE);
    assert.equal(nodeId, -1);
    assert.equal(await firstJoin(b1, "ghost"), E.NOT_COORDINATOR);
    await facade.revokeLease(lease.id);
    assert.equal((await coordinatorOf(b1, "ghost"))[0], E.NONE, "free again once revoked");
  } finally {
    await cluster.stop();
  }
});
