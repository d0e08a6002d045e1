/**
 * lib/control/eager_takeover.ts on new partitions: a created topic's partitions, and partitions
 * added to one, are acquired by the broker Metadata names for them before any client writes
 * (as Kafka elects leaders at creation), while topics that existed before the broker started,
 * or whose configs change, are left to their first request.
 */
import assert from "node:assert/strict";
import { AdminClient } from "../../lib/client/admin.ts";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { TAKEOVER_BATCH_MS } from "../../lib/control/eager_takeover.ts";
import { startTestBroker } from "../support/test_broker.ts";

/** Polls `condition` until it holds or the deadline passes. */
async function eventually(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function owned(metadata: ClusterMetadata, topic: string): Promise<number[]> {
  const { owners } = await metadata.listPartitionLeadership(topic);
  return [...owners.keys()].sort((a, b) => a - b);
}

Deno.test("eager acquisition: a created topic's partitions and added ones are owned before any write", async () => {
  const metadataStore = new MemoryMetadataStore();
  const metadata = new ClusterMetadata(metadataStore);
  try {
    await using b = await startTestBroker({ metadataStore });
    using admin = await AdminClient.connect(b.bootstrap);
    await admin.createTopic("fresh", 8, {});
    await eventually(
      async () => (await owned(metadata, "fresh")).length === 8,
      "the 8 new partitions to be owned",
    );
    const { owners } = await metadata.listPartitionLeadership("fresh");
    for (const [p, owner] of owners) {
      assert.equal(owner.brokerId, b.node.broker.settings.nodeId, `owner of partition ${p}`);
      assert.equal(owner.epoch, 1, `partition ${p}: one acquisition`);
      assert.ok(b.node.broker.logs.loadedPartition("fresh", p), `partition ${p} is loaded`);
    }

    await admin.createPartitions("fresh", 12);
    await eventually(
      async () => (await owned(metadata, "fresh")).length === 12,
      "the 4 added partitions to be owned",
    );
    assert.deepEqual(await owned(metadata, "fresh"), [...Array(12).keys()]);
  } finally {
    await metadataStore.close();
  }
});

Deno.test("eager acquisition: topics from before the start, and config changes, wait for a client", async () => {
  const metadataStore = new MemoryMetadataStore();
  const metadata = new ClusterMetadata(metadataStore);
  try {
    await metadata.createTopic({ name: "old", partitions: 4 });
    await using b = await startTestBroker({ metadataStore });
    using admin = await AdminClient.connect(b.bootstrap);
    await admin.alterTopicConfigs("old", { "retention.ms": "3600000" });
    // A topic created after the config change proves the watch has seen the change by then.
    await admin.createTopic("marker", 1, {});
    await eventually(
      async () => (await owned(metadata, "marker")).length === 1,
      "the marker topic to be owned",
    );
    await new Promise((r) => setTimeout(r, TAKEOVER_BATCH_MS * 5));
    assert.deepEqual(await owned(metadata, "old"), [], "nothing acquired the old topic");
    for (let p = 0; p < 4; p++) {
      assert.equal(b.node.broker.logs.loadedPartition("old", p), undefined);
    }
  } finally {
    await metadataStore.close();
  }
});
