import assert from "node:assert/strict";
import {
  type AcquiredPartition,
  ClusterMetadata,
  INITIAL_PARTITION_STATE,
  TXN_OPS_MAX,
} from "../../lib/metadata/cluster_metadata.ts";
import { EmbeddedMetadataStore } from "../../lib/metadata/embedded_metadata_store.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import type { MetadataStore } from "../../lib/metadata/metadata_store.ts";
import { ManualClock } from "../../lib/util/clock.ts";
import { writeWalRounds } from "../support/wal_index.ts";

interface Backend {
  name: string;
  open(clock: ManualClock): Promise<{ store: MetadataStore; cleanup(): Promise<void> }>;
}

const BACKENDS: Backend[] = [
  {
    name: "memory",
    open(clock) {
      const store = new MemoryMetadataStore({ clock });
      return Promise.resolve({ store, cleanup: () => store.close() });
    },
  },
  {
    name: "embedded",
    async open(clock) {
      const dir = await Deno.makeTempDir({ prefix: "cluster_metadata_test_" });
      const store = await EmbeddedMetadataStore.open(dir, { clock });
      return {
        store,
        cleanup: async () => {
          await store.close();
          await Deno.remove(dir, { recursive: true });
        },
      };
    },
  },
];

function suite(
  name: string,
  fn: (ctx: { meta: ClusterMetadata; store: MetadataStore; clock: ManualClock }) => Promise<void>,
): void {
  for (const backend of BACKENDS) {
    Deno.test(`ClusterMetadata (${backend.name}): ${name}`, async () => {
      const clock = new ManualClock();
      const { store, cleanup } = await backend.open(clock);
      try {
        await fn({ meta: new ClusterMetadata(store, { now: () => clock.now() }), store, clock });
      } finally {
        await cleanup();
      }
    });
  }
}

function acquired(result: unknown): AcquiredPartition {
  assert.equal(typeof result, "object", `expected an acquisition, got ${JSON.stringify(result)}`);
  return result as AcquiredPartition;
}

suite("cluster id is created once and then stable", async ({ meta }) => {
  const id = await meta.getOrCreateClusterId();
  assert.match(id, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(await meta.getOrCreateClusterId(), id);
});

suite("createTopic is atomic and reports an existing topic", async ({ meta, clock }) => {
  assert.equal(
    await meta.createTopic({ name: "orders", partitions: 3, configs: { a: "1" } }),
    "created",
  );
  assert.equal(await meta.createTopic({ name: "orders", partitions: 5 }), "exists");
  const topic = await meta.getTopic("orders");
  assert.ok(topic);
  assert.equal(topic.partitions, 3);
  assert.deepEqual(topic.configs, { a: "1" });
  assert.equal(topic.state, "active");
  assert.equal(topic.createdMs, clock.now());
  assert.match(topic.topicId, /^[A-Za-z0-9_-]{22}$/);
  for (let p = 0; p < 3; p++) {
    const { state, modRevision } = await meta.getPartitionState("orders", p);
    assert.deepEqual(state, INITIAL_PARTITION_STATE);
    assert.ok(modRevision > 0, "partition state key was written");
  }
  assert.equal(await meta.getTopic("missing"), null);
});

suite("createTopic beyond one transaction's op limit creates every state", async ({ meta }) => {
  const partitions = TXN_OPS_MAX + 5;
  assert.equal(await meta.createTopic({ name: "wide", partitions }), "created");
  const last = await meta.getPartitionState("wide", partitions - 1);
  assert.ok(last.modRevision > 0);
});

suite("createTopic rejects invalid names and counts", async ({ meta }) => {
  await assert.rejects(meta.createTopic({ name: "a/b", partitions: 1 }), /Invalid topic name/);
  await assert.rejects(meta.createTopic({ name: "ok", partitions: 0 }), /Invalid partition count/);
});

suite("listTopics, setTopicState, updateTopicConfigs, addPartitions", async ({ meta }) => {
  await meta.createTopic({ name: "b", partitions: 1, configs: { x: "1", y: "2" } });
  await meta.createTopic({ name: "a", partitions: 2 });
  assert.deepEqual((await meta.listTopics()).map((t) => t.name), ["a", "b"]);

  assert.equal((await meta.setTopicState("a", "deleting"))?.state, "deleting");
  assert.equal(await meta.setTopicState("nope", "deleting"), null);

  const merged = await meta.updateTopicConfigs("b", { x: null, z: "3" });
  assert.deepEqual(merged?.configs, { y: "2", z: "3" });
  const replaced = await meta.updateTopicConfigs("b", { q: "9", r: null }, { replace: true });
  assert.deepEqual(replaced?.configs, { q: "9" });
  assert.deepEqual((await meta.getTopic("b"))?.configs, { q: "9" });

  assert.equal(await meta.addPartitions("b", 1), "invalid-count");
  assert.equal(await meta.addPartitions("nope", 4), "not-found");
  const grown = await meta.addPartitions("b", 4);
  assert.equal(typeof grown === "object" && grown.partitions, 4);
  assert.ok((await meta.getPartitionState("b", 3)).modRevision > 0);
});

suite(
  "acquireGroup: one live owner, a new epoch per take-over, stale owners fenced",
  async ({ meta }) => {
    const enc = new TextEncoder();
    const lease1 = await meta.grantLease(10_000);
    const lease2 = await meta.grantLease(10_000);
    const first = await meta.acquireGroup("g/1", 1, lease1.id);
    assert.ok(typeof first === "object");
    assert.deepEqual(await meta.getGroupOwner("g/1"), first);
    assert.equal(await meta.acquireGroup("g/1", 2, lease2.id), "owned-by-other");

    // The owner writes its record and commits offsets, comparing its epoch.
    const rev = await meta.putGroupIfRevision("g/1", enc.encode("r1"), 0, first.epoch);
    assert.equal(typeof rev, "number");
    const offset = {
      topic: "t",
      partition: 0,
      offset: 5,
      leaderEpoch: -1,
      metadata: null,
      commitTimestampMs: 0,
    };
    assert.equal(await meta.commitOffsetsAsOwner("g/1", [offset], first.epoch), "committed");
    // Owner keys are not groups.
    assert.deepEqual(await meta.listGroups(), ["g/1"]);

    // Broker 1's lease ends: broker 2 takes over with a higher epoch.
    await meta.revokeLease(lease1.id);
    assert.equal(await meta.getGroupOwner("g/1"), null);
    const second = await meta.acquireGroup("g/1", 2, lease2.id);
    assert.ok(typeof second === "object");
    assert.ok(second.epoch > first.epoch, "the epoch grows with every take-over");

    // Broker 1, stalled, cannot write after the take-over.
    assert.equal(
      await meta.commitOffsetsAsOwner("g/1", [{ ...offset, offset: 9 }], first.epoch),
      "fenced",
    );
    assert.equal(
      await meta.putGroupIfRevision("g/1", enc.encode("stale"), rev as number, first.epoch),
      "conflict",
    );
    assert.equal((await meta.fetchOffsets("g/1"))[0].offset, 5);
    assert.deepEqual((await meta.getGroup("g/1"))?.value, enc.encode("r1"));
    assert.equal(await meta.commitOffsetsAsOwner("g/1", [offset], second.epoch), "committed");

    // The same broker id acquiring again (a new session lease) gets a new epoch.
    const lease3 = await meta.grantLease(10_000);
    const third = await meta.acquireGroup("g/1", 2, lease3.id);
    assert.ok(typeof third === "object" && third.epoch > second.epoch);
    assert.equal(await meta.releaseGroup("g/1", second.epoch), false, "not the current epoch");
    assert.equal(await meta.releaseGroup("g/1", third.epoch), true);
    assert.equal(await meta.getGroupOwner("g/1"), null);
  },
);

suite("acquirePartition bumps the epoch and fences the previous owner", async ({ meta }) => {
  await meta.createTopic({ name: "t", partitions: 2 });
  const lease1 = await meta.grantLease(10_000);
  const lease2 = await meta.grantLease(10_000);
  const first = acquired(await meta.acquirePartition("t", 0, 1, lease1.id));
  assert.equal(first.epoch, 1);
  // The leader epoch history starts with this epoch at the end offset it took over.
  assert.deepEqual(first.state, { endOffset: 0, logStartOffset: 0, epoch: 1, epochs: [[1, 0]] });
  assert.deepEqual(await meta.getPartitionOwner("t", 0), { brokerId: 1, epoch: 1 });

  // Owned by broker 1 while its lease lives.
  assert.equal(await meta.acquirePartition("t", 0, 2, lease2.id), "owned-by-other");

  // Broker 1 commits.
  const [rev] = await meta.commitPartitions([{
    topic: "t",
    partition: 0,
    expectedRevision: first.stateRevision,
    state: { endOffset: 10, logStartOffset: 0, epoch: 1, epochs: [[1, 0]] },
  }]);
  assert.equal(typeof rev, "number");

  // The same broker id re-acquiring (a restart) takes over and bumps the epoch, which begins
  // at the end offset it took over.
  const second = acquired(await meta.acquirePartition("t", 0, 1, lease2.id));
  assert.equal(second.epoch, 2);
  assert.equal(second.state.endOffset, 10);
  assert.deepEqual(second.state.epochs, [[1, 0], [2, 10]]);

  // The stale owner's commit is fenced; the new owner's succeeds.
  const [stale] = await meta.commitPartitions([{
    topic: "t",
    partition: 0,
    expectedRevision: rev as number,
    state: { endOffset: 20, logStartOffset: 0, epoch: 1 },
  }]);
  assert.equal(stale, "fenced");
  assert.equal((await meta.getPartitionState("t", 0)).state.endOffset, 10);
  const [fresh] = await meta.commitPartitions([{
    topic: "t",
    partition: 0,
    expectedRevision: second.stateRevision,
    state: { endOffset: 12, logStartOffset: 0, epoch: 2 },
  }]);
  assert.equal(typeof fresh, "number");
  const now = await meta.getPartitionState("t", 0);
  assert.deepEqual(now.state, { endOffset: 12, logStartOffset: 0, epoch: 2 });
  assert.equal(now.modRevision, fresh);
});

suite("acquirePartition reports unknown topics and partitions", async ({ meta }) => {
  await meta.createTopic({ name: "t", partitions: 1 });
  const lease = await meta.grantLease(10_000);
  assert.equal(await meta.acquirePartition("t", 1, 1, lease.id), "unknown-partition");
  assert.equal(await meta.acquirePartition("nope", 0, 1, lease.id), "unknown-partition");
  await meta.setTopicState("t", "deleting");
  assert.equal(await meta.acquirePartition("t", 0, 1, lease.id), "unknown-partition");
});

suite("an owner whose lease expired can be replaced by another broker", async ({ meta, clock }) => {
  await meta.createTopic({ name: "t", partitions: 1 });
  const lease1 = await meta.grantLease(1_000);
  const first = acquired(await meta.acquirePartition("t", 0, 1, lease1.id));
  const lease2 = await meta.grantLease(60_000);
  assert.equal(await meta.acquirePartition("t", 0, 2, lease2.id), "owned-by-other");
  clock.advance(1_001);
  // Lease expiry deletes the owner key (asynchronously for the durable store).
  for (let i = 0; i < 100 && (await meta.getPartitionOwner("t", 0)) !== null; i++) {
    await new Promise((r) => setTimeout(r, 1));
  }
  const second = acquired(await meta.acquirePartition("t", 0, 2, lease2.id));
  assert.equal(second.epoch, first.epoch + 1);
  assert.deepEqual(await meta.getPartitionOwner("t", 0), { brokerId: 2, epoch: 2 });
});

suite("releasePartition deletes only its own owner key", async ({ meta }) => {
  await meta.createTopic({ name: "t", partitions: 1 });
  const lease = await meta.grantLease(10_000);
  const a = acquired(await meta.acquirePartition("t", 0, 1, lease.id));
  assert.equal(await meta.releasePartition("t", 0, { brokerId: 1, epoch: a.epoch + 1 }), false);
  assert.equal(await meta.releasePartition("t", 0, { brokerId: 1, epoch: a.epoch }), true);
  assert.equal(await meta.getPartitionOwner("t", 0), null);
  const { owners } = await meta.listPartitionLeadership("t");
  assert.equal(owners.size, 0);
});

suite("commitPartitions commits many at once and isolates the fenced one", async ({ meta }) => {
  await meta.createTopic({ name: "t", partitions: 3 });
  const lease = await meta.grantLease(10_000);
  const acq = [];
  for (let p = 0; p < 3; p++) acq.push(acquired(await meta.acquirePartition("t", p, 1, lease.id)));
  const commits = acq.map((a, p) => ({
    topic: "t",
    partition: p,
    expectedRevision: a.stateRevision,
    state: { endOffset: 5 + p, logStartOffset: 0, epoch: a.epoch },
  }));
  const revs = await meta.commitPartitions(commits);
  assert.ok(revs.every((r) => typeof r === "number"));
  assert.equal(new Set(revs).size, 1, "one transaction for all");

  // Partition 1 is taken over; the next joint commit fences only it.
  await meta.acquirePartition("t", 1, 1, lease.id);
  const next = await meta.commitPartitions(commits.map((c, p) => ({
    ...c,
    expectedRevision: revs[p] as number,
    state: { ...c.state, endOffset: c.state.endOffset + 1 },
  })));
  assert.equal(typeof next[0], "number");
  assert.equal(next[1], "fenced");
  assert.equal(typeof next[2], "number");
  assert.equal((await meta.getPartitionState("t", 0)).state.endOffset, 6);
  assert.equal((await meta.getPartitionState("t", 1)).state.endOffset, 6);
  assert.equal((await meta.getPartitionState("t", 2)).state.endOffset, 8);

  await assert.rejects(meta.commitPartitions([commits[0], commits[0]]), /Duplicate commit/);
});

suite("a commit after topic deletion is fenced", async ({ meta }) => {
  await meta.createTopic({ name: "t", partitions: 1 });
  const lease = await meta.grantLease(10_000);
  const a = acquired(await meta.acquirePartition("t", 0, 1, lease.id));
  await meta.deleteTopicMetadata("t");
  const [r] = await meta.commitPartitions([{
    topic: "t",
    partition: 0,
    expectedRevision: a.stateRevision,
    state: { endOffset: 1, logStartOffset: 0, epoch: a.epoch },
  }]);
  assert.equal(r, "fenced");
});

suite("committed offsets: commit, fetch, delete, and per-topic cleanup", async ({ meta }) => {
  const entry = (topic: string, partition: number, offset: number) => ({
    topic,
    partition,
    offset,
    leaderEpoch: -1,
    metadata: partition === 0 ? null : "m",
    commitTimestampMs: 1000,
  });
  await meta.createTopic({ name: "a", partitions: 2 });
  await meta.createTopic({ name: "a.b", partitions: 1 });
  await meta.commitOffsets("g/1 é", [entry("a", 1, 7), entry("a", 0, 3), entry("a.b", 0, 9)]);
  await meta.commitOffsets("other", [entry("a", 0, 1)]);
  assert.deepEqual(await meta.fetchOffsets("g/1 é"), [
    entry("a", 0, 3),
    entry("a", 1, 7),
    entry("a.b", 0, 9),
  ]);
  await meta.commitOffsets("g/1 é", [entry("a", 0, 4)]);
  assert.equal((await meta.fetchOffsets("g/1 é"))[0].offset, 4);
  assert.deepEqual(await meta.listGroups(), ["g/1 é", "other"]);

  // Deleting topic "a" removes its offsets in every group, but not "a.b"'s.
  await meta.deleteTopicMetadata("a");
  assert.equal(await meta.getTopic("a"), null);
  assert.deepEqual(await meta.fetchOffsets("g/1 é"), [entry("a.b", 0, 9)]);
  assert.deepEqual(await meta.fetchOffsets("other"), []);
  assert.equal((await meta.getPartitionState("a", 0)).modRevision, 0);
  assert.ok(await meta.getTopic("a.b"));

  await meta.commitOffsets("g/1 é", [entry("a.b", 1, 2)]);
  assert.equal(await meta.deleteGroupOffsets("g/1 é", [{ topic: "a.b", partition: 1 }]), 1);
  assert.equal(await meta.deleteGroupOffsets("g/1 é"), 1);
  assert.deepEqual(await meta.fetchOffsets("g/1 é"), []);
});

suite("group records: put, conditional put, list, delete", async ({ meta }) => {
  const bytes = (s: string) => new TextEncoder().encode(s);
  assert.equal(await meta.getGroup("g"), null);
  const rev = await meta.putGroup("g", bytes("one"));
  const got = await meta.getGroup("g");
  assert.deepEqual(got, { value: bytes("one"), modRevision: rev });
  assert.equal(await meta.putGroupIfRevision("g", bytes("two"), rev - 1), "conflict");
  const rev2 = await meta.putGroupIfRevision("g", bytes("two"), rev);
  assert.equal(typeof rev2, "number");
  assert.equal(await meta.putGroupIfRevision("new", bytes("x"), 0) !== "conflict", true);
  assert.deepEqual(await meta.listGroups(), ["g", "new"]);
  await meta.commitOffsets("g", [{
    topic: "t",
    partition: 0,
    offset: 1,
    leaderEpoch: 0,
    metadata: null,
    commitTimestampMs: 0,
  }]);
  assert.equal(await meta.deleteGroup("g"), true);
  assert.deepEqual(await meta.fetchOffsets("g"), []);
  assert.deepEqual(await meta.listGroups(), ["new"]);
  assert.equal(await meta.deleteGroup("g"), false);
});

suite("brokers register on a lease and vanish with it", async ({ meta }) => {
  const lease = await meta.grantLease(10_000);
  const reg = (brokerId: number) => ({
    brokerId,
    host: "127.0.0.1",
    port: 9092 + brokerId,
    rack: null,
    startedMs: 5,
  });
  await meta.registerBroker(reg(2), lease.id);
  await meta.registerBroker(reg(1), lease.id);
  assert.deepEqual(await meta.listBrokers(), [reg(1), reg(2)]);
  await meta.deregisterBroker(2);
  assert.deepEqual(await meta.listBrokers(), [reg(1)]);
  await meta.revokeLease(lease.id);
  assert.deepEqual(await meta.listBrokers(), []);
});

suite("producer id blocks never overlap, even when allocated concurrently", async ({ meta }) => {
  const starts = await Promise.all(
    Array.from({ length: 8 }, () => meta.allocateProducerIdBlock(100)),
  );
  const sorted = [...starts].sort((a, b) => a - b);
  assert.deepEqual(sorted, [0, 100, 200, 300, 400, 500, 600, 700]);
  await assert.rejects(meta.allocateProducerIdBlock(0), /Invalid producer id block size/);
});

Deno.test("ClusterMetadata: embedded store keeps committed state across a reopen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cluster_metadata_reopen_" });
  try {
    const clock = new ManualClock();
    let store = await EmbeddedMetadataStore.open(dir, { clock });
    let meta = new ClusterMetadata(store);
    await meta.createTopic({ name: "t", partitions: 1 });
    const lease = await meta.grantLease(10_000);
    const a = acquired(await meta.acquirePartition("t", 0, 1, lease.id));
    await meta.commitPartitions([{
      topic: "t",
      partition: 0,
      expectedRevision: a.stateRevision,
      state: { endOffset: 42, logStartOffset: 0, epoch: a.epoch },
    }]);
    await store.close();

    store = await EmbeddedMetadataStore.open(dir, { clock });
    meta = new ClusterMetadata(store);
    assert.deepEqual((await meta.getPartitionState("t", 0)).state, {
      endOffset: 42,
      logStartOffset: 0,
      epoch: 1,
    });
    // The previous run's lease is gone, so another broker can take over.
    const lease2 = await meta.grantLease(10_000);
    const b = acquired(await meta.acquirePartition("t", 0, 2, lease2.id));
    assert.equal(b.epoch, 2);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ClusterMetadata: the prefix must end with a slash", () => {
  assert.throws(() => new ClusterMetadata(new MemoryMetadataStore(), { prefix: "/x" }), /prefix/);
});

suite(
  "replaceWalIndex swaps records for one, only if none changed since the listing",
  async ({ meta }) => {
    const listed = await writeWalRounds(meta, 4);
    assert.ok(listed.every((e) => typeof e.modRevision === "number" && e.modRevision > 0));
    const merged = {
      id: `${listed[2].id}-mfeed`,
      record: {
        object: listed[0].record.object,
        ranges: listed.slice(1, 3).map((e) => e.record.ranges[1]),
      },
    };
    // A stale listing (a source rewritten since) or a taken id: nothing happens.
    const stale = { ...listed[1], modRevision: listed[1].modRevision! - 1 };
    assert.equal(await meta.replaceWalIndex([stale, listed[2]], merged), false);
    assert.equal(
      await meta.replaceWalIndex([listed[1], listed[2]], { ...merged, id: listed[3].id }),
      false,
    );
    assert.deepEqual(await meta.listWalIndex(), listed);

    assert.equal(await meta.replaceWalIndex([listed[1], listed[2]], merged), true);
    const after = await meta.listWalIndex();
    assert.deepEqual(after.map((e) => e.id), [listed[0].id, listed[2].id + "-mfeed", listed[3].id]);
    assert.deepEqual(after[1].record, merged.record);
    // The sources are gone: the same replacement again (another broker's) does nothing.
    assert.equal(await meta.replaceWalIndex([listed[1], listed[2]], { ...merged, id: "x" }), false);
    await assert.rejects(meta.replaceWalIndex([], merged), RangeError);
    const tooMany = Array.from({ length: meta.walIndexReplaceMax + 1 }, () => listed[0]);
    await assert.rejects(meta.replaceWalIndex(tooMany, merged), RangeError);
    await assert.rejects(
      meta.replaceWalIndex([{ id: listed[0].id, record: listed[0].record }], merged),
      /no listed revision/,
    );
  },
);
