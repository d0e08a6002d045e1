/**
 * Several brokers on one metadata store and one object store (in-process, over loopback TCP):
 * Metadata names every registered broker and each partition's real leader — its live owner,
 * or for an unowned partition the same registered broker on every node — a non-owner answers
 * NOT_LEADER_OR_FOLLOWER, an owner without a registration is LEADER_NOT_AVAILABLE, a
 * stopped broker's partitions move to the brokers left, and no leader moves while the store
 * cannot be listed.
 */
import assert from "node:assert/strict";
import { startTestBroker, type TestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { MetadataStoreError } from "../../lib/metadata/metadata_store.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import type { MetadataResponse } from "../../lib/protocol/generated/metadata_response.ts";
import { type Clock, SystemClock } from "../../lib/util/clock.ts";
import { LEASE_TTL_MS } from "../../lib/cli/node.ts";

const PRODUCE = API_SCHEMAS[0];
const METADATA = API_SCHEMAS[3];
const CREATE_TOPICS = API_SCHEMAS[19];
const LIST_OFFSETS = API_SCHEMAS[2];
const PARTITIONS = 8;

async function metadata(b: TestBroker, topic: string, version = 12): Promise<MetadataResponse> {
  const conn = await b.connect();
  return (await conn.send(METADATA, version, {
    topics: [{ name: topic, topicId: "AAAAAAAAAAAAAAAAAAAAAA" }],
    allowAutoTopicCreation: false,
    includeTopicAuthorizedOperations: false,
  }))!;
}

function leaders(res: MetadataResponse): number[] {
  return res.topics[0].partitions
    .sort((a, b) => a.partitionIndex - b.partitionIndex)
    .map((p) => p.leaderId);
}

async function produce(b: TestBroker, topic: string, partition: number): Promise<number> {
  const conn = await b.connect();
  const res = await conn.send(PRODUCE, 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{
      name: topic,
      partitionData: [{
        index: partition,
        records: encodeRecordBatch([{ key: null, value: new TextEncoder().encode("v") }]),
      }],
    }],
  });
  return res!.responses[0].partitionResponses[0].errorCode;
}

/**
 * Two brokers on one pair of stores. `topics` exist before the brokers start, so nobody owns
 * their partitions until a request acquires them (a topic created while the brokers run is
 * acquired at once by the broker Metadata names, lib/control/eager_takeover.ts).
 */
async function startCluster(
  topics: string[] = [],
  metadataStore = new MemoryMetadataStore(),
  clocks: Record<number, Clock> = {},
): Promise<{
  nodes: TestBroker[];
  metadataStore: MemoryMetadataStore;
  stop(): Promise<void>;
}> {
  const objectStore = new MemoryObjectStore();
  const facade = new ClusterMetadata(metadataStore);
  for (const name of topics) await facade.createTopic({ name, partitions: PARTITIONS });
  const nodes: TestBroker[] = [];
  for (const id of [1, 2]) {
    nodes.push(
      await startTestBroker({
        settings: { "broker-id": String(id) },
        metadataStore,
        objectStore,
        clock: clocks[id],
      }),
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

async function createTopic(b: TestBroker, name: string): Promise<void> {
  const conn = await b.connect();
  const res = await conn.send(CREATE_TOPICS, 7, {
    topics: [{
      name,
      numPartitions: PARTITIONS,
      replicationFactor: 1,
      assignments: [],
      configs: [],
    }],
    timeoutMs: 10_000,
  });
  assert.equal(res!.topics[0].errorCode, ERROR_CODES.NONE);
}

Deno.test("Metadata: every registered broker, one agreed leader per partition, spread over both", async () => {
  const cluster = await startCluster();
  try {
    const [b1, b2] = cluster.nodes;
    await createTopic(b1, "spread");
    const [m1, m2] = [await metadata(b1, "spread"), await metadata(b2, "spread")];
    for (const m of [m1, m2]) {
      assert.deepEqual(
        m.brokers.map((b) => [b.nodeId, b.port]).sort(),
        [[1, b1.node.kafkaAddress.port], [2, b2.node.kafkaAddress.port]],
      );
    }
    assert.deepEqual(leaders(m1), leaders(m2), "both brokers give the same leaders");
    assert.deepEqual(new Set(leaders(m1)), new Set([1, 2]), "unowned partitions are spread");
    // v0 (no racks, no cluster id) names both brokers too.
    assert.equal((await metadata(b2, "spread", 0)).brokers.length, 2);
  } finally {
    await cluster.stop();
  }
});

Deno.test("CreateTopics: each new partition is acquired at once by the broker Metadata names for it", async () => {
  const cluster = await startCluster();
  try {
    const [b1, b2] = cluster.nodes;
    await createTopic(b2, "eager");
    const facade = new ClusterMetadata(cluster.metadataStore);
    const deadline = performance.now() + 10_000;
    while ((await facade.listPartitionLeadership("eager")).owners.size < PARTITIONS) {
      if (performance.now() > deadline) throw new Error("the new partitions were not acquired");
      await new Promise((r) => setTimeout(r, 10));
    }
    const { owners } = await facade.listPartitionLeadership("eager");
    const named = leaders(await metadata(b1, "eager"));
    assert.deepEqual(new Set(named), new Set([1, 2]), "spread over both brokers");
    for (let p = 0; p < PARTITIONS; p++) {
      assert.equal(owners.get(p)?.brokerId, named[p], `partition ${p}'s owner is its leader`);
      assert.equal(owners.get(p)?.epoch, 1, `partition ${p} was acquired once`);
    }
    assert.deepEqual(epochs(await metadata(b2, "eager")), Array(PARTITIONS).fill(1));
  } finally {
    await cluster.stop();
  }
});

Deno.test("Produce: the owner answers, another live broker answers NOT_LEADER_OR_FOLLOWER", async () => {
  const cluster = await startCluster(["owned"]);
  try {
    const [b1, b2] = cluster.nodes;
    // Broker 2 takes every partition by writing to it, whatever Metadata suggested.
    for (let p = 0; p < PARTITIONS; p++) assert.equal(await produce(b2, "owned", p), 0);
    for (const b of [b1, b2]) {
      assert.deepEqual(leaders(await metadata(b, "owned")), Array(PARTITIONS).fill(2));
    }
    for (let p = 0; p < PARTITIONS; p++) {
      assert.equal(await produce(b1, "owned", p), ERROR_CODES.NOT_LEADER_OR_FOLLOWER);
    }

    // A graceful stop releases broker 2's lease: its partitions go to broker 1.
    await b2.stop();
    const after = await metadata(b1, "owned");
    assert.deepEqual(after.brokers.map((b) => b.nodeId), [1]);
    assert.deepEqual(leaders(after), Array(PARTITIONS).fill(1));
    for (let p = 0; p < PARTITIONS; p++) assert.equal(await produce(b1, "owned", p), 0);
  } finally {
    await cluster.stop();
  }
});

Deno.test("Metadata: an owner that is alive but not registered is LEADER_NOT_AVAILABLE", async () => {
  const cluster = await startCluster(["ghost"]);
  try {
    const [b1] = cluster.nodes;
    const facade = new ClusterMetadata(cluster.metadataStore);
    const lease = await facade.grantLease(60_000);
    assert.notEqual(await facade.acquirePartition("ghost", 3, 9, lease.id), "owned-by-other");
    const res = await metadata(b1, "ghost");
    const p3 = res.topics[0].partitions.find((p) => p.partitionIndex === 3)!;
    assert.equal(p3.leaderId, -1);
    assert.equal(p3.errorCode, ERROR_CODES.LEADER_NOT_AVAILABLE);
    assert.deepEqual(p3.replicaNodes, []);
    assert.equal(await produce(b1, "ghost", 3), ERROR_CODES.NOT_LEADER_OR_FOLLOWER);
    await facade.revokeLease(lease.id);
    assert.notEqual(leaders(await metadata(b1, "ghost"))[3], -1, "free again once revoked");
  } finally {
    await cluster.stop();
  }
});

function epochs(res: MetadataResponse): number[] {
  return res.topics[0].partitions
    .sort((a, b) => a.partitionIndex - b.partitionIndex)
    .map((p) => p.leaderEpoch ?? -1);
}

/** ListOffsets (latest) of one partition sent with `currentLeaderEpoch`: its error code. */
async function listOffsetWithEpoch(
  b: TestBroker,
  topic: string,
  partition: number,
  currentLeaderEpoch: number,
): Promise<number> {
  const conn = await b.connect();
  const res = await conn.send(LIST_OFFSETS, 7, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{
      name: topic,
      partitions: [{ partitionIndex: partition, currentLeaderEpoch, timestamp: -1 }],
    }],
  });
  return res!.topics[0].partitions[0].errorCode;
}

Deno.test("Metadata: an unowned partition's leader epoch is the one its first request acquires it at", async () => {
  const cluster = await startCluster(["epochs"]);
  try {
    const [b1, b2] = cluster.nodes;
    // New partitions: nobody owns them, the next acquisition takes epoch 1, and both say so.
    for (const b of [b1, b2]) {
      assert.deepEqual(epochs(await metadata(b, "epochs")), Array(PARTITIONS).fill(1));
    }
    for (let p = 0; p < PARTITIONS; p++) assert.equal(await produce(b2, "epochs", p), 0);
    assert.deepEqual(epochs(await metadata(b1, "epochs")), Array(PARTITIONS).fill(1));

    // Broker 2 stops and releases them: broker 1 is named with epoch 2 before it holds them, and
    // a client sending that epoch is answered (the request acquires at exactly that epoch).
    await b2.stop();
    const after = await metadata(b1, "epochs");
    assert.deepEqual(leaders(after), Array(PARTITIONS).fill(1));
    assert.deepEqual(epochs(after), Array(PARTITIONS).fill(2));
    assert.equal(await listOffsetWithEpoch(b1, "epochs", 0, 2), ERROR_CODES.NONE);
    assert.equal(await listOffsetWithEpoch(b1, "epochs", 1, 1), ERROR_CODES.FENCED_LEADER_EPOCH);
    assert.deepEqual(epochs(await metadata(b1, "epochs")), Array(PARTITIONS).fill(2));
  } finally {
    await cluster.stop();
  }
});

/** A memory metadata store whose listings can be made to fail (the store out of reach). */
class ListFailingStore extends MemoryMetadataStore {
  down = false;
  override list(prefix: string) {
    if (this.down) return Promise.reject(new MetadataStoreError("Injected fault: store down"));
    return super.list(prefix);
  }
}

Deno.test("Metadata: while the store cannot be listed, leaders and epochs stay as last read; a topic never read is claimed", async () => {
  const store = new ListFailingStore();
  const cluster = await startCluster(["kept", "unread"], store);
  try {
    const [b1, b2] = cluster.nodes;
    for (let p = 0; p < PARTITIONS; p++) assert.equal(await produce(b2, "kept", p), 0);
    const before = await metadata(b1, "kept");
    assert.deepEqual(leaders(before), Array(PARTITIONS).fill(2));

    store.down = true;
    // Broker 1 still holds a live lease. Claiming broker 2's partitions now would move their
    // leader to broker 1 and back once the store answers, which can strand a librdkafka consumer
    // on broker 1 for good.
    const during = await metadata(b1, "kept");
    assert.deepEqual(leaders(during), leaders(before));
    assert.deepEqual(epochs(during), epochs(before));
    assert.deepEqual(during.brokers.map((b) => b.nodeId).sort(), [1, 2]);
    // What it never looked up it claims, as before: its produce answers retriable errors.
    assert.deepEqual(leaders(await metadata(b1, "unread")), Array(PARTITIONS).fill(1));

    store.down = false;
    assert.deepEqual(leaders(await metadata(b1, "kept")), Array(PARTITIONS).fill(2));
  } finally {
    await cluster.stop();
  }
});

/** The store out of reach for listings and keep-alives alike (an etcd restart). */
class StoreOutage extends ListFailingStore {
  override keepAlive(leaseId: number): Promise<void> {
    if (this.down) return Promise.reject(new MetadataStoreError("Injected fault: store down"));
    return super.keepAlive(leaseId);
  }
}

/** The system clock, with monotonic time moved ahead by `skewMs` (lease deadlines go by it). */
class SkewedClock extends SystemClock {
  skewMs = 0;
  override monotonic(): number {
    return super.monotonic() + this.skewMs;
  }
}

Deno.test("Metadata: past its lease's write deadline but within the TTL, a broker whose store is out still names the leaders it last read; past the TTL, the other brokers", async () => {
  const store = new StoreOutage();
  const clock = new SkewedClock();
  const cluster = await startCluster(["kept"], store, { 2: clock });
  try {
    const [, b2] = cluster.nodes;
    for (let p = 0; p < PARTITIONS; p++) assert.equal(await produce(b2, "kept", p), 0);
    const before = await metadata(b2, "kept");
    assert.deepEqual(leaders(before), Array(PARTITIONS).fill(2));

    store.down = true;
    // Broker 2 stops writing at 0.75 x the TTL without a keep-alive, but its lease lives in the
    // store until the whole TTL has passed: nobody else can hold its partitions yet. Naming
    // broker 1 now, and broker 2 again a moment later, stranded a librdkafka consumer on broker 1
    // in the chaos suite's etcd restart.
    clock.skewMs = LEASE_TTL_MS * 0.8;
    assert.equal(await produce(b2, "kept", 0), ERROR_CODES.NOT_LEADER_OR_FOLLOWER);
    const during = await metadata(b2, "kept");
    assert.deepEqual(leaders(during), leaders(before));
    assert.deepEqual(epochs(during), epochs(before));

    // Past the TTL the partitions may be broker 1's already: broker 2 points clients there.
    clock.skewMs = LEASE_TTL_MS * 1.05;
    assert.deepEqual(leaders(await metadata(b2, "kept")), Array(PARTITIONS).fill(1));
  } finally {
    store.down = false;
    await cluster.stop();
  }
});
