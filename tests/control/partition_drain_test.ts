/**
 * Drain between two in-process brokers sharing in-memory stores: DrainPartitions (through our
 * own gRPC client) releases every partition of broker 1, broker 2 takes them over without a
 * client asking (the owner-key watch), Metadata on both names broker 2, and broker 1 refuses to
 * acquire them again (NOT_LEADER_OR_FOLLOWER) whatever a client with old metadata sends it,
 * also after it lost its session lease (the drain marker is published on the new one).
 */
import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { partitionLeaders } from "../../lib/broker/partition_leaders.ts";
import { LOG_ERROR_CODE, LogError } from "../../lib/log/log_manager.ts";
import { GrpcClient } from "../../lib/control/grpc_adapter.ts";
import {
  type BrokerStatusResponse,
  CONTROL_METHODS,
  type DrainPartitionsResponse,
} from "../../lib/control/control_proto.ts";

const PARTITIONS = 4;

async function eventually(condition: () => boolean, what: string, timeoutMs = 5_000) {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("drain: partitions move to the other broker at once and do not come back", async () => {
  const objectStore = new MemoryObjectStore();
  const metadataStore = new MemoryMetadataStore();
  const shared = { objectStore, metadataStore };
  const b1 = await startTestBroker({ ...shared, settings: { "broker-id": "1" } });
  const b2 = await startTestBroker({ ...shared, settings: { "broker-id": "2" } });
  const client = (b: typeof b1) =>
    new GrpcClient(`127.0.0.1:${b.node.controlAddress.port}`, { token: null });
  const c1 = client(b1);
  const c2 = client(b2);
  try {
    const metadata = new ClusterMetadata(metadataStore);
    await metadata.createTopic({ name: "t", partitions: PARTITIONS });
    const logs1 = b1.node.broker.logs;
    for (let p = 0; p < PARTITIONS; p++) await logs1.partition("t", p);

    const drained = await c1.unary<DrainPartitionsResponse>(
      CONTROL_METHODS.drainPartitions,
      { partitions: [], reason: "test", deadlineSeconds: 10 },
      30_000,
    );
    assert.deepEqual(drained.pending, []);
    assert.deepEqual(drained.drained.map((p) => p.partition), [0, 1, 2, 3]);
    const logs2 = b2.node.broker.logs;
    await eventually(
      () => [0, 1, 2, 3].every((p) => logs2.loadedPartition("t", p) !== undefined),
      "broker 2 to take every partition over",
    );
    const status1 = await c1.unary<BrokerStatusResponse>(CONTROL_METHODS.getStatus, {}, 5_000);
    const status2 = await c2.unary<BrokerStatusResponse>(CONTROL_METHODS.getStatus, {}, 5_000);
    assert.deepEqual(status1.partitions, []);
    assert.deepEqual(status2.partitions.map((p) => `${p.partition}:${p.state}`), [
      "0:online",
      "1:online",
      "2:online",
      "3:online",
    ]);
    assert.ok(status2.partitions.every((p) => p.leader));

    // Broker 1 does not pull a partition back for a client with old metadata.
    await assert.rejects(
      logs1.partition("t", 0),
      (err) => err instanceof LogError && err.code === LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER,
    );
    // Metadata on both brokers names broker 2, also once broker 2 releases one of them.
    const record = (await metadata.getTopic("t"))!;
    for (const b of [b1, b2]) {
      const leaders = await partitionLeaders(b.node.broker, [record]);
      for (let p = 0; p < PARTITIONS; p++) assert.equal(leaders.leaderOf("t", p), 2);
    }
    await logs2.releasePartition("t", 3);
    const afterRelease = await partitionLeaders(b1.node.broker, [record]);
    assert.equal(
      afterRelease.leaderOf("t", 3),
      2,
      "an unowned partition went to the drained broker",
    );
    await eventually(() => logs2.loadedPartition("t", 3) !== undefined, "broker 2 to retake t-3");

    // Broker 1 loses its session lease (its drain marker and registration go with it). Once it
    // has a new lease and registers on it, the marker is published again, so Metadata keeps
    // passing it over.
    const markerLease = async () =>
      (await metadataStore.get(`${metadata.prefix}draining/1`))?.lease ?? 0;
    const oldLease = await markerLease();
    assert.ok(oldLease > 0);
    await metadataStore.revokeLease(oldLease);
    await eventually(() => logs1.leaseId === 0, "broker 1 to notice its lost lease", 15_000);
    const newLease = await logs1.sessionLease();
    const deadline = performance.now() + 15_000;
    while ((await markerLease()) !== newLease) {
      assert.ok(performance.now() < deadline, "The drain marker was not published again");
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    c1.close();
    c2.close();
    await b1.stop();
    await b2.stop();
    await metadataStore.close();
    await objectStore.close();
  }
});
