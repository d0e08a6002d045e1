/**
 * WatchAssignments' event stream over the metadata store's watch (in-memory store): the
 * snapshot first, then acquired / released / takeover with epochs, per-broker filtering, and
 * an end when the caller aborts.
 */
import assert from "node:assert/strict";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { type AssignmentEvent, watchAssignments } from "../../lib/control/assignment_watch.ts";

/** Polls `condition` until it holds or the deadline passes. */
async function eventually(condition: () => boolean, what: string, timeoutMs = 5_000) {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const brief = (e: AssignmentEvent) =>
  `${e.status} ${e.topic}-${e.partition} b${e.brokerId} e${e.epoch}`;

Deno.test("WatchAssignments: snapshot, then acquired, released and takeover with epochs", async () => {
  const store = new MemoryMetadataStore();
  const metadata = new ClusterMetadata(store);
  try {
    await metadata.createTopic({ name: "t", partitions: 2 });
    const lease1 = await metadata.grantLease(10_000);
    const lease2 = await metadata.grantLease(10_000);
    const first = await metadata.acquirePartition("t", 0, 1, lease1.id);
    assert.ok(typeof first === "object");

    const all: AssignmentEvent[] = [];
    const mine: AssignmentEvent[] = [];
    const stop = new AbortController();
    const watching = Promise.all([
      watchAssignments(metadata, null, (e) => all.push(e), stop.signal),
      watchAssignments(metadata, 1, (e) => mine.push(e), stop.signal),
    ]);
    await eventually(() => all.length === 1 && mine.length === 1, "the snapshot");

    await metadata.acquirePartition("t", 1, 2, lease2.id);
    assert.equal(
      await metadata.releasePartition("t", 0, { brokerId: 1, epoch: first.epoch }),
      true,
    );
    await metadata.acquirePartition("t", 0, 2, lease2.id);
    await eventually(() => all.length === 4, "four events");
    assert.deepEqual(all.map(brief), [
      "assigned t-0 b1 e1",
      "acquired t-1 b2 e1",
      "released t-0 b1 e1",
      "takeover t-0 b2 e2",
    ]);
    // Broker 1's view: its partition, its release, and the takeover of its partition.
    await eventually(() => mine.length === 3, "broker 1's events");
    assert.deepEqual(mine.map(brief), [
      "assigned t-0 b1 e1",
      "released t-0 b1 e1",
      "takeover t-0 b2 e2",
    ]);
    stop.abort();
    await watching;
  } finally {
    await store.close();
  }
});

Deno.test("WatchAssignments: a failing writer ends the stream with its error", async () => {
  const store = new MemoryMetadataStore();
  const metadata = new ClusterMetadata(store);
  try {
    await metadata.createTopic({ name: "t", partitions: 1 });
    const lease = await metadata.grantLease(10_000);
    const stop = new AbortController();
    const watching = watchAssignments(metadata, null, () => {
      throw new Error("client gone");
    }, stop.signal);
    await metadata.acquirePartition("t", 0, 1, lease.id);
    await assert.rejects(watching, /client gone/);
  } finally {
    await store.close();
  }
});
