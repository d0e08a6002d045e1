import assert from "node:assert/strict";
import {
  LOG_ERROR_CODE,
  LogError,
  LogManager,
  OWN_WAL_FILE_GRACE_MS,
  WAL_ORPHAN_GRACE_MS,
} from "../../lib/log/log_manager.ts";
import { segmentObjectKey } from "../../lib/log/segment_format.ts";
import { encodeWalRound } from "../../lib/log/wal_format.ts";
import { ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { EmbeddedMetadataStore } from "../../lib/metadata/embedded_metadata_store.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { MetadataStoreError } from "../../lib/metadata/metadata_store.ts";
import { FaultyObjectStore } from "../../lib/storage/faulty_object_store.ts";
import { LocalObjectStore, SPARE_FILES_DIR } from "../../lib/storage/local_object_store.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { PACED_PIECE_BYTES } from "../../lib/storage/object_store.ts";
import { ManualClock, SystemClock } from "../../lib/util/clock.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import {
  append,
  appendAcked,
  batch,
  bigBatch,
  CountingObjectStore,
  decode,
  eventually,
  FLUSH_INTERVAL_MS,
  harness,
  sealAll,
  settle,
  TEST_CONFIG,
  TOPIC,
} from "./log_fixture.ts";

const isCode = (code: number) => (e: unknown) => e instanceof LogError && e.code === code;

Deno.test("manager: partition() caches the log and rejects unknown partitions", async () => {
  const h = await harness({ partitions: 2 });
  try {
    const [a, b] = await Promise.all([
      h.manager.partition(TOPIC, 0),
      h.manager.partition(TOPIC, 0),
    ]);
    assert.equal(a, b, "concurrent first uses share one load");
    assert.equal(await h.manager.partition(TOPIC, 0), a);
    assert.equal(a.leaderEpoch, 1);
    assert.deepEqual(await h.metadata.getPartitionOwner(TOPIC, 0), { brokerId: 1, epoch: 1 });
    await assert.rejects(
      h.manager.partition(TOPIC, 2),
      isCode(LOG_ERROR_CODE.UNKNOWN_TOPIC_OR_PARTITION),
    );
    await assert.rejects(
      h.manager.partition("nope", 0),
      isCode(LOG_ERROR_CODE.UNKNOWN_TOPIC_OR_PARTITION),
    );
  } finally {
    await h.close();
  }
});

Deno.test("manager: livePartition() gives only a loaded log of a started manager", async () => {
  const h = await harness({ partitions: 2 });
  try {
    assert.equal(h.manager.livePartition(TOPIC, 0), undefined, "not loaded yet");
    const loading = h.manager.partition(TOPIC, 0);
    assert.equal(h.manager.livePartition(TOPIC, 0), undefined, "still loading");
    const log = await loading;
    assert.equal(h.manager.livePartition(TOPIC, 0), log);
    assert.equal(h.manager.livePartition(TOPIC, 1), undefined, "never acquired");
    await h.manager.dropPartition(TOPIC, 0);
    assert.equal(h.manager.livePartition(TOPIC, 0), undefined, "dropped");
    const other = await h.manager.partition(TOPIC, 1);
    assert.equal(h.manager.livePartition(TOPIC, 1), other);
    const closing = h.manager.close();
    assert.equal(h.manager.livePartition(TOPIC, 1), undefined, "closing: as partition() refuses");
    await assert.rejects(
      h.manager.partition(TOPIC, 1),
      isCode(LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER),
    );
    await closing;
    assert.equal(h.manager.livePartition(TOPIC, 1), undefined, "closed");
  } finally {
    await h.close();
  }
});

Deno.test("manager: restart on the same stores sees exactly the committed data", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await appendAcked(h, log, batch(["a", "b"]));
    await appendAcked(h, log, batch(["c"]));
    // Unflushed acks=0 data is lost in a crash: never committed, never visible.
    append(log, batch(["lost"]), { acks: 0 });

    // "Crash": a new process with the same broker id takes over without a clean close.
    const restarted = await h.newManager();
    const reloaded = await restarted.partition(TOPIC, 0);
    assert.equal(reloaded.highWatermark, 3);
    assert.equal(reloaded.leaderEpoch, 2);
    // Nothing was sealed: the new owner serves both rounds from the write-ahead stream.
    assert.deepEqual(reloaded.segments, []);
    assert.deepEqual(
      reloaded.unsealedRanges.map((r) => [r.baseOffset, r.lastOffset, r.epoch]),
      [[0, 1, 1], [2, 2, 1]],
    );
    assert.deepEqual(decode((await reloaded.read(0, 1 << 20)).chunks), [[0, "a"], [1, "b"], [
      2,
      "c",
    ]]);
    // New appends continue the offsets.
    assert.deepEqual(await appendAcked(h, reloaded, batch(["d"])), {
      baseOffset: 3,
      logStartOffset: 0,
    });
  } finally {
    await h.close();
  }
});

Deno.test("manager: a second owner fences the first, whose next flush fails NOT_LEADER", async () => {
  const h = await harness();
  try {
    const first = await h.manager.partition(TOPIC, 0);
    await appendAcked(h, first, batch(["one"]));
    const pending = append(first, batch(["stale"]), { acks: 1 });

    const second = await (await h.newManager()).partition(TOPIC, 0);
    assert.equal(second.leaderEpoch, first.leaderEpoch + 1);

    const rejected = assert.rejects(pending, isCode(LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER));
    await h.flush();
    await rejected;
    assert.equal(first.closed, true);
    assert.equal(h.manager.loadedPartition(TOPIC, 0), undefined, "dropped from the manager");
    await assert.rejects(
      append(first, batch(["x"]), { acks: 1 }),
      isCode(LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER),
    );

    // The fenced data never surfaces; the new owner appends after the committed end.
    assert.deepEqual(await appendAcked(h, second, batch(["two"])), {
      baseOffset: 1,
      logStartOffset: 0,
    });
    assert.deepEqual(decode((await second.read(0, 1 << 20)).chunks), [[0, "one"], [1, "two"]]);
  } finally {
    await h.close();
  }
});

Deno.test("manager: another broker takes over only after the owner's lease is gone", async () => {
  const h = await harness();
  try {
    const first = await h.manager.partition(TOPIC, 0);
    await appendAcked(h, first, batch(["one"]));
    const other = await h.newManager({ brokerId: 2 });
    await assert.rejects(other.partition(TOPIC, 0), isCode(LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER));

    // Broker 1's lease disappears behind its back (e.g. expired during a stall).
    await h.metadata.revokeLease(h.manager.leaseId);
    const taken = await other.partition(TOPIC, 0);
    assert.equal(taken.highWatermark, 1);

    // Broker 1 notices at its next keep-alive and drops the partition.
    h.clock.advance(TEST_CONFIG.leaseTtlMs / 3);
    await eventually(() => first.closed, "the first owner to drop the partition");
    await assert.rejects(
      h.manager.partition(TOPIC, 0),
      isCode(LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER),
    );
    // Broker 1 got a new lease and can own other partitions.
    assert.ok(h.manager.leaseId > 0);
    assert.equal((await h.manager.partition(TOPIC, 1)).highWatermark, 0);
  } finally {
    await h.close();
  }
});

Deno.test("manager: releasePartition flushes what is pending, refuses new appends, and hands over at once", async () => {
  const h = await harness();
  try {
    const first = await h.manager.partition(TOPIC, 0);
    await appendAcked(h, first, batch(["one"]));
    const pending = append(first, batch(["two"]), { acks: 1 });
    const other = await h.newManager({ brokerId: 2 });
    await assert.rejects(other.partition(TOPIC, 0), isCode(LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER));
    const released = h.manager.releasePartition(TOPIC, 0);
    await assert.rejects(
      append(first, batch(["late"]), { acks: 1 }),
      isCode(LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER),
    );
    assert.equal(await released, true);
    assert.equal((await pending).baseOffset, 1, "the pending append was flushed and acked");
    assert.ok(first.closed);
    assert.equal(await h.metadata.getPartitionOwner(TOPIC, 0), null);
    // No lease expiry to wait for: broker 2 acquires right away and sees everything acked.
    const taken = await other.partition(TOPIC, 0);
    assert.equal(taken.highWatermark, 2);
    assert.deepEqual(decode((await taken.read(0, 1 << 20)).chunks).map(([, v]) => v), [
      "one",
      "two",
    ]);
    assert.equal(await h.manager.releasePartition(TOPIC, 1), false, "not owned: nothing to do");
  } finally {
    await h.close();
  }
});

Deno.test("collection: an unreferenced object holding records beyond the committed end is kept until the partition passes them", async () => {
  const objectStore = new MemoryObjectStore();
  const h = await harness({ objectStore, config: { walOrphanGraceMs: 1_000 } });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    for (let i = 0; i < 3; i++) await appendAcked(h, log, batch([`v${i}`]));
    const topicId = (await h.metadata.getTopic(TOPIC))!.topicId;
    const orphanWith = (name: string, epoch: number) => {
      const key = `default/~wal/1/${String(h.clock.now()).padStart(13, "0")}-${name}.wal`;
      const round = encodeWalRound([{
        topic: TOPIC,
        topicId,
        partition: 0,
        epoch,
        baseOffset: 3,
        endOffset: 5,
        batches: [batch(["lost-a", "lost-b"]).records],
      }]);
      return { key, put: () => objectStore.put(key, round.bytes) };
    };
    // Offsets 3-4 by the current owner epoch, with no index record: metadata that fell behind
    // what it acknowledged (a restored backup, a repaired log).
    const behind = orphanWith("0000000000000001", 1);
    // The same offsets by an older epoch: a former owner's round that never committed.
    const stale = orphanWith("0000000000000002", 0);
    await behind.put();
    await stale.put();
    h.clock.advance(1_000);
    await h.manager.runWalGc();
    await h.manager.runWalGc();
    await h.manager.runWalGc();
    const left = () => objectStore.list("default/~wal/").then((l) => l.map((o) => o.key));
    assert.ok((await left()).includes(behind.key), "data beyond the committed end is kept");
    assert.ok(!(await left()).includes(stale.key), "a former owner's uncommitted round goes");
    assert.equal(h.manager.walGcStats.objectsDeleted, 1);

    // Once the partition's committed end passes those offsets, the object is an ordinary orphan.
    await appendAcked(h, log, batch(["v3", "v4"]));
    h.clock.advance(1_000);
    await h.manager.runWalGc();
    await h.manager.runWalGc();
    assert.ok(!(await left()).includes(behind.key));
  } finally {
    await h.close();
  }
});

Deno.test("collection: sealed rounds' index records go at once; unreferenced objects after their grace", async () => {
  const objectStore = new MemoryObjectStore();
  const h = await harness({ objectStore, config: { walOrphanGraceMs: 1_000 } });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    for (let i = 0; i < 3; i++) await appendAcked(h, log, batch([`v${i}`]));
    const [active] = (await objectStore.list("default/~wal/")).map((o) => o.key);
    assert.equal((await h.metadata.listWalIndex()).length, 3);
    // An object no record points at: a round that crashed between its PUT and its commit.
    const orphan = `default/~wal/1/${String(h.clock.now()).padStart(13, "0")}-0123abcd.wal`;
    await objectStore.put(orphan, new Uint8Array(10));

    await h.manager.runWalGc();
    await h.manager.runWalGc();
    assert.equal((await h.metadata.listWalIndex()).length, 3, "unsealed rounds are needed");
    await sealAll(log);
    await h.manager.runWalGc();
    assert.equal((await h.metadata.listWalIndex()).length, 3, "two passes before deleting");
    await h.manager.runWalGc();
    assert.deepEqual(await h.metadata.listWalIndex(), [], "sealed: records go");
    assert.deepEqual(
      (await objectStore.list("default/~wal/")).map((o) => o.key).sort(),
      [active, orphan].sort(),
      "the file being appended to stays; the orphan is younger than its grace",
    );
    h.clock.advance(1_000);
    await h.manager.runWalGc();
    await h.manager.runWalGc();
    assert.deepEqual((await objectStore.list("default/~wal/")).map((o) => o.key), [active]);
    assert.deepEqual(decode((await log.read(0, 1 << 20)).chunks).map(([, v]) => v), [
      "v0",
      "v1",
      "v2",
    ]);
  } finally {
    await h.close();
  }
});

Deno.test("collection: a file's index records merge into one naming only what is not sealed; a new owner reads from it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "log_manager_merge_" });
  const objectStore = new LocalObjectStore(dir);
  const h = await harness({ objectStore });
  try {
    const [p0, p1] = [await h.manager.partition(TOPIC, 0), await h.manager.partition(TOPIC, 1)];
    // Four rounds, each with a range of both partitions, all in one write-ahead file.
    for (let i = 0; i < 4; i++) {
      const acks = [
        append(p0, batch([`a${i}`]), { acks: 1 }),
        append(p1, batch([`b${i}`]), { acks: 1 }),
      ];
      await h.flush();
      await Promise.all(acks);
    }
    const rounds = await h.metadata.listWalIndex();
    assert.equal(rounds.length, 4);
    assert.ok(rounds.every((e) => e.record.ranges.length === 2));

    await h.manager.runWalGc();
    assert.deepEqual(await h.metadata.listWalIndex(), rounds, "nothing sealed: nothing merged");
    await sealAll(p0);
    await h.manager.runWalGc();
    const [merged, ...more] = await h.metadata.listWalIndex();
    assert.deepEqual(more, [], "one record is left");
    assert.match(merged.id, /^1\/[0-9a-f-]+\/0000000003-m[0-9a-f]{16}$/);
    assert.equal(merged.record.object, rounds[0].record.object);
    assert.deepEqual(
      merged.record.ranges,
      rounds.map((e) => e.record.ranges.find((r) => r.partition === 1)),
      "partition 1's four ranges, in round order; partition 0's are sealed",
    );
    assert.deepEqual(h.manager.walGcStats.recordsMerged, 4);
    await h.manager.runWalGc();
    assert.deepEqual(await h.metadata.listWalIndex(), [merged], "nothing more to drop: kept");

    // Partition 1 has only the merged record: a new owner finds its data there.
    await h.metadata.revokeLease(h.manager.leaseId);
    const other = await h.newManager({ brokerId: 2 });
    const taken = await other.partition(TOPIC, 1);
    assert.equal(taken.unsealedBytes, p1.unsealedBytes);
    assert.deepEqual(decode((await taken.read(0, 1 << 20)).chunks).map(([, v]) => v), [
      "b0",
      "b1",
      "b2",
      "b3",
    ]);
    await sealAll(taken);
    await other.runWalGc();
    await other.runWalGc();
    assert.deepEqual(await h.metadata.listWalIndex(), [], "all sealed: the record goes");
  } finally {
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A memory metadata store whose keep-alives can be made to fail (store unreachable). */
class FlakyKeepAliveStore extends MemoryMetadataStore {
  failKeepAlives = false;
  override keepAlive(leaseId: number): Promise<void> {
    if (this.failKeepAlives) {
      return Promise.reject(new MetadataStoreError("Injected fault: metadata store unreachable"));
    }
    return super.keepAlive(leaseId);
  }
}

/**
 * A broker that wrote one record to partition 0, then had its keep-alives fail until its lease
 * passed the local deadline (ttl x 0.75 after the last keep-alive was sent, still before the
 * store could expire the lease), and saw its next write refused NOT_LEADER_OR_FOLLOWER.
 */
async function pastLeaseDeadline() {
  const clock = new ManualClock();
  const metadataStore = new FlakyKeepAliveStore({ clock });
  const h = await harness({ clock, metadataStore });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await appendAcked(h, log, batch(["before"]));
    metadataStore.failKeepAlives = true;
    const step = 1_000;
    for (let t = 0; t < TEST_CONFIG.leaseTtlMs * 0.75; t += step) {
      clock.advance(step);
      await settle(1);
    }
    const late = append(log, batch(["late"]), { acks: 1 });
    const rejected = assert.rejects(late, isCode(LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER));
    await h.flush();
    await rejected;
  } catch (error) {
    await h.close();
    throw error;
  }
  return { clock, metadataStore, h };
}

Deno.test("manager: writes stop once the lease deadline passes without a keep-alive", async () => {
  const { clock, metadataStore, h } = await pastLeaseDeadline();
  try {
    assert.equal((await h.metadata.getPartitionState(TOPIC, 0)).state.endOffset, 1);

    // Keep-alives recover: the broker re-acquires and writes again.
    metadataStore.failKeepAlives = false;
    clock.advance(TEST_CONFIG.leaseTtlMs / 3);
    await settle();
    const again = await h.manager.partition(TOPIC, 0);
    assert.deepEqual(await appendAcked(h, again, batch(["after"])), {
      baseOffset: 1,
      logStartOffset: 0,
    });
  } finally {
    await h.close();
  }
});

Deno.test("manager: past the write deadline the lease may still be live until a whole TTL has passed", async () => {
  const { clock, h } = await pastLeaseDeadline();
  try {
    assert.equal(h.manager.leaseHeld, false);
    assert.equal(h.manager.leaseMayBeLive, true);
    // The deadline is 0.75 x the TTL after the last keep-alive was sent; the store keeps the
    // lease for the whole TTL after it got one.
    clock.advance(TEST_CONFIG.leaseTtlMs * 0.25);
    assert.equal(h.manager.leaseMayBeLive, false);
  } finally {
    await h.close();
  }
});

Deno.test("manager: no partition is acquired under a lease past its deadline; a load renews the lease first", async () => {
  const { metadataStore, h } = await pastLeaseDeadline();
  try {
    // The write was refused without a release: the owner key still holds the first acquisition.
    const epoch = (await h.metadata.getPartitionOwner(TOPIC, 0))!.epoch;
    assert.equal(epoch, 1);
    // The store would still take an acquisition (the lease has not expired there), but every
    // one would take a new epoch that cannot write: clients retrying would see it climb.
    for (let i = 0; i < 3; i++) {
      await assert.rejects(
        h.manager.partition(TOPIC, 0),
        isCode(LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER),
      );
    }
    assert.equal((await h.metadata.getPartitionOwner(TOPIC, 0))!.epoch, epoch);

    // The store answers again: the next load renews the lease itself, without waiting for the
    // periodic keep-alive, and acquires once.
    metadataStore.failKeepAlives = false;
    const again = await h.manager.partition(TOPIC, 0);
    assert.equal((await h.metadata.getPartitionOwner(TOPIC, 0))!.epoch, epoch + 1);
    assert.deepEqual(await appendAcked(h, again, batch(["after"])), {
      baseOffset: 1,
      logStartOffset: 0,
    });
  } finally {
    await h.close();
  }
});

/** A memory metadata store whose transactions can be made to fail. */
class FlakyTxnStore extends MemoryMetadataStore {
  failTxns = false;
  override txn(...args: Parameters<MemoryMetadataStore["txn"]>) {
    if (this.failTxns) {
      return Promise.reject(new MetadataStoreError("Injected fault: transaction timed out"));
    }
    return super.txn(...args);
  }
}

Deno.test("manager: a failed end-offset commit fails the round and reloads the partition", async () => {
  const clock = new ManualClock();
  const metadataStore = new FlakyTxnStore({ clock });
  const h = await harness({ clock, metadataStore });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await appendAcked(h, log, batch(["kept"]));
    metadataStore.failTxns = true;
    const failed = assert.rejects(
      append(log, batch(["unknown outcome"]), { acks: 1 }),
      isCode(LOG_ERROR_CODE.KAFKA_STORAGE_ERROR),
    );
    await h.flush();
    await failed;
    assert.equal(log.closed, true, "a commit of unknown outcome drops the partition");
    assert.equal(h.manager.loadedPartition(TOPIC, 0), undefined);
    metadataStore.failTxns = false;
    const reloaded = await h.manager.partition(TOPIC, 0);
    assert.equal(reloaded.leaderEpoch, log.leaderEpoch + 1);
    assert.equal(reloaded.highWatermark, 1);
    assert.deepEqual(await appendAcked(h, reloaded, batch(["next"])), {
      baseOffset: 1,
      logStartOffset: 0,
    });
    assert.deepEqual(decode((await reloaded.read(0, 1 << 20)).chunks), [[0, "kept"], [1, "next"]]);
  } finally {
    await h.close();
  }
});

Deno.test("manager: close flushes acks=0 data and releases ownership", async () => {
  const h = await harness();
  const log = await h.manager.partition(TOPIC, 0);
  await append(log, batch(["fire", "forget"]), { acks: 0 });
  const waiting = log.waitForData(5, 60_000);
  await h.manager.close();
  await waiting; // long polls end on close
  assert.equal((await h.metadata.getPartitionState(TOPIC, 0)).state.endOffset, 2);
  assert.equal(await h.metadata.getPartitionOwner(TOPIC, 0), null, "lease revoked");
  await assert.rejects(
    h.manager.partition(TOPIC, 0),
    isCode(LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER),
  );
  // Another broker takes over at once and sees the data.
  const other = await h.newManager({ brokerId: 2 });
  const reloaded = await other.partition(TOPIC, 0);
  assert.deepEqual(decode((await reloaded.read(0, 1 << 20)).chunks), [[0, "fire"], [1, "forget"]]);
  assert.equal(h.clock.pendingTimers() > 0, true, "the other manager still runs");
  await h.close();
});

Deno.test("manager: dropPartition fails queued appends and deletes the objects", async () => {
  const h = await harness();
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await appendAcked(h, log, batch(["a"]));
    const queued = append(log, batch(["b"]), { acks: 1 });
    const rejected = assert.rejects(queued, isCode(LOG_ERROR_CODE.UNKNOWN_TOPIC_OR_PARTITION));
    await h.manager.dropPartition(TOPIC, 0);
    await rejected;
    assert.deepEqual(await h.objectStore.list("default/t/0/"), []);
    assert.equal(h.manager.loadedPartition(TOPIC, 0), undefined);
    await h.flush();
  } finally {
    await h.close();
  }
});

Deno.test("recovery: segment orphans beyond the sealed end are deleted on load", async () => {
  const objectStore = new MemoryObjectStore();
  const h = await harness({ objectStore });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await appendAcked(h, log, batch(["a"]));
    await sealAll(log);
    // Committed, not sealed: [1, 3) lives in the write-ahead stream.
    await appendAcked(h, log, batch(["b"]));
    await appendAcked(h, log, batch(["c"]));
    // A seal of [1, 3) that wrote its objects and crashed before its commit (its body stands in
    // for one: what recovery reads is the footer, which says it ends below the committed end).
    const orphan = segmentObjectKey("default", TOPIC, 0, 1, "kfs");
    const orphanIndex = segmentObjectKey("default", TOPIC, 0, 1, "index");
    const sealed = (await objectStore.get(segmentObjectKey("default", TOPIC, 0, 0, "kfs")))!;
    await objectStore.put(orphan, sealed);
    await objectStore.put(orphanIndex, new Uint8Array(4));
    const reloaded = await (await h.newManager()).partition(TOPIC, 0);
    assert.deepEqual((await objectStore.list("default/t/0/")).map((o) => o.key), [
      segmentObjectKey("default", TOPIC, 0, 0, "index"),
      segmentObjectKey("default", TOPIC, 0, 0, "kfs"),
    ]);
    assert.equal(reloaded.highWatermark, 3);
  } finally {
    await h.close();
  }
});

Deno.test("recovery: a segment beyond the committed end is never deleted; the partition refuses to open", async () => {
  const objectStore = new MemoryObjectStore();
  const h = await harness({ objectStore });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    await appendAcked(h, log, batch(["a"]));
    await sealAll(log);
    // Data the metadata store does not know of (its log was truncated, say): a seal only copies
    // committed data, so this cannot be a seal's orphan.
    const beyond = segmentObjectKey("default", TOPIC, 0, 500, "kfs");
    await objectStore.put(beyond, new Uint8Array(4));
    const manager = await h.newManager();
    await assert.rejects(
      () => manager.partition(TOPIC, 0),
      /at or beyond the committed end offset 1: the metadata store is behind the data/,
    );
    assert.ok(await objectStore.get(beyond), "the segment beyond the end is kept");
  } finally {
    await h.close();
  }
});

Deno.test("recovery: start-up reads no object bodies", async () => {
  const store = new CountingObjectStore(new MemoryObjectStore());
  const h = await harness({ objectStore: store });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    for (let i = 0; i < 5; i++) {
      await appendAcked(h, log, batch([`v${i}`]));
      await sealAll(log);
    }
    for (let i = 0; i < 3; i++) await appendAcked(h, log, batch([`w${i}`]));
    const before = { ...store.counts };
    const reloaded = await (await h.newManager()).partition(TOPIC, 0);
    assert.equal(reloaded.segments.length, 5);
    assert.equal(reloaded.unsealedRanges.length, 3);
    assert.equal(store.counts.get, before.get);
    assert.equal(store.counts.getRange, before.getRange);
    assert.equal(store.counts.list, before.list + 1);
  } finally {
    await h.close();
  }
});

/**
 * Crash-mid-flush simulation: a seeded FaultyObjectStore fails puts, lists
 * and deletes (before and after applying them) while producers append; the
 * partition is repeatedly taken over by a "restarted" broker. At the end a
 * fresh broker reads the log: every acked batch is there at its acked
 * offset, no rejected batch is, and offsets are contiguous.
 */
for (const seed of [1, 7, 42, 1234]) {
  Deno.test(`simulation: crash mid-flush keeps acked data and only acked data (seed ${seed})`, async () => {
    const inner = new MemoryObjectStore();
    const faulty = new FaultyObjectStore(inner, {
      seed,
      failBeforeRate: 0.15,
      failAfterRate: 0.15,
      operations: ["put", "list", "delete"],
    });
    const h = await harness({ objectStore: faulty, config: { segmentBytesMax: 2_048 } });
    const acked = new Map<string, number>();
    const rejected = new Set<string>();
    let unresolved = 0;
    try {
      let manager = h.manager;
      let rng = seed;
      const random = () => ((rng = (Math.imul(rng, 1103515245) + 12345) >>> 0) / 2 ** 32);
      for (let step = 0; step < 60; step++) {
        let log;
        try {
          log = await manager.partition(TOPIC, 0);
        } catch (e) {
          assert.ok(e instanceof LogError, String(e));
          continue; // the load itself hit a fault; try again next step
        }
        const pendingAcks: Promise<void>[] = [];
        const count = 1 + Math.floor(random() * 3);
        for (let i = 0; i < count; i++) {
          const value = `s${step}-${i}`;
          const b = batch([value, `${value}+`].slice(0, 1 + Math.floor(random() * 2)));
          unresolved++;
          pendingAcks.push(
            log.append(b.records, b.batches, { acks: 1 }).then(
              (r) => {
                acked.set(value, r.baseOffset);
                unresolved--;
              },
              (e) => {
                assert.ok(e instanceof LogError, String(e));
                rejected.add(value);
                unresolved--;
              },
            ),
          );
        }
        h.clock.advance(FLUSH_INTERVAL_MS);
        await Promise.all(pendingAcks);
        if (random() < 0.15) {
          // Crash and restart: a new process with the same broker id takes over.
          manager = await h.newManager();
        }
      }
      assert.equal(unresolved, 0, "every append was answered");
      assert.ok(faulty.stats.failedBefore + faulty.stats.failedAfter > 0, "faults were injected");
      assert.ok(acked.size > 0, "some appends succeeded");

      faulty.setFaultRates({ failBeforeRate: 0, failAfterRate: 0 });
      const reader = await (await h.newManager()).partition(TOPIC, 0);
      const records = decode((await reader.read(0, 1 << 30)).chunks);
      const offsets = records.map(([o]) => o);
      assert.deepEqual(offsets, Array.from({ length: reader.highWatermark }, (_, i) => i));
      const seen = new Map<string, number>();
      for (const [offset, value] of records) if (!value.endsWith("+")) seen.set(value, offset);
      for (const [value, offset] of acked) {
        assert.equal(seen.get(value), offset, `acked "${value}" at offset ${offset}`);
      }
      for (const value of rejected) {
        assert.equal(seen.has(value), false, `rejected "${value}" must not be visible`);
      }
    } finally {
      faulty.setFaultRates({ failBeforeRate: 0, failAfterRate: 0 });
      await settle();
      await h.close();
    }
  });
}

Deno.test("restart on LocalObjectStore + EmbeddedMetadataStore", async () => {
  const dir = await Deno.makeTempDir({ prefix: "log_manager_local_" });
  try {
    const clock = new ManualClock();
    const open = async () => {
      const objectStore = new LocalObjectStore(`${dir}/data`);
      const metadataStore = await EmbeddedMetadataStore.open(`${dir}/meta`, { clock });
      const metadata = new ClusterMetadata(metadataStore);
      const manager = new LogManager({
        objectStore,
        metadata,
        clock,
        logger: silentLogger,
        brokerId: 1,
        config: TEST_CONFIG,
      });
      await manager.start();
      return { objectStore, metadataStore, metadata, manager };
    };
    const flushAndAwait = async <T>(p: Promise<T>): Promise<T> => {
      clock.advance(FLUSH_INTERVAL_MS);
      return await p;
    };

    let run = await open();
    await run.metadata.createTopic({ name: TOPIC, partitions: 2 });
    let log = await run.manager.partition(TOPIC, 1);
    const a = batch(["alpha", "beta"]);
    assert.deepEqual(await flushAndAwait(log.append(a.records, a.batches, { acks: 1 })), {
      baseOffset: 0,
      logStartOffset: 0,
    });
    const b = batch(["gamma"]);
    await log.append(b.records, b.batches, { acks: 0 });
    await run.manager.close(); // flushes the acks=0 batch
    await run.metadataStore.close();
    await run.objectStore.close();

    run = await open();
    log = await run.manager.partition(TOPIC, 1);
    assert.equal(log.highWatermark, 3);
    assert.deepEqual(decode((await log.read(0, 1 << 20)).chunks), [
      [0, "alpha"],
      [1, "beta"],
      [2, "gamma"],
    ]);
    const c = batch(["delta"]);
    assert.deepEqual(await flushAndAwait(log.append(c.records, c.batches, { acks: -1 })), {
      baseOffset: 3,
      logStartOffset: 0,
    });
    await run.manager.close();
    await run.metadataStore.close();
    await run.objectStore.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("collection: on a local disk, collected write-ahead files are reused, and what they held before is never read back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "log_manager_spares_" });
  const objectStore = new LocalObjectStore(dir);
  // One round per write-ahead file, so every round makes a new file.
  const h = await harness({
    objectStore,
    config: { walFileBytes: 1, walOrphanGraceMs: 0 },
  });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const walFiles = async () => await objectStore.list("default/~wal/");
    const spares = async () =>
      (await Array.fromAsync(Deno.readDir(`${dir}/${SPARE_FILES_DIR}`)).catch(() => [])).length;
    const old = ["old-0", "old-1", "old-2"].map((tag) => bigBatch(tag, 8192));
    for (const b of old) await appendAcked(h, log, b);
    assert.equal((await walFiles()).length, 3);
    await sealAll(log);
    await h.manager.runWalGc();
    await h.manager.runWalGc();
    const [active] = await walFiles();
    assert.equal((await walFiles()).length, 1, "the file being appended to stays");
    assert.equal(await spares(), 2, "the other two are kept as spares, not deleted");

    // The next two rounds go to the spares: each file still holds old bytes past its new chunk.
    for (const v of ["new-0", "new-1"]) await appendAcked(h, log, batch([v]));
    assert.equal(await spares(), 0);
    const files = (await walFiles()).filter((f) => f.key !== active.key);
    assert.equal(files.length, 2);
    for (const f of files) assert.ok(f.size > 8192, `reused ${f.key} keeps its old bytes`);
    const values = () => log.read(0, 1 << 20).then((r) => decode(r.chunks).map(([, v]) => v));
    const expected = [...old.map((_, i) => `old-${i}`.padEnd(8192, ".")), "new-0", "new-1"];
    assert.deepEqual(await values(), expected);

    // Sealed and collected again: the reused files' stale tails are not taken for data beyond
    // the committed end (which would keep them), and they go back to the pool.
    await sealAll(log);
    await h.manager.runWalGc();
    await h.manager.runWalGc();
    assert.equal((await walFiles()).length, 1);
    assert.equal(await spares(), 2);
    assert.deepEqual(await values(), expected);
  } finally {
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("collection: the write-ahead file made ready for the next round is left alone, and that round appends to it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "log_manager_prepared_" });
  const objectStore = new LocalObjectStore(dir);
  // Every round fills its file, so each makes the next one ready.
  const h = await harness({
    objectStore,
    config: { walFileBytes: 1, walOrphanGraceMs: 0, walPrepareNextFile: true },
  });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    const walFiles = async () => (await objectStore.list("default/~wal/")).map((o) => o.key);
    await appendAcked(h, log, batch(["a"]));
    let files: string[] = [];
    await eventually(async () => (files = await walFiles()).length === 2, "the next file");
    await sealAll(log);
    h.clock.advance(OWN_WAL_FILE_GRACE_MS + 1);
    await h.manager.runWalGc();
    await h.manager.runWalGc();
    assert.deepEqual(await walFiles(), files, "neither the current file nor the next one goes");
    await appendAcked(h, log, batch(["b"]));
    const sizes = new Map((await objectStore.list("default/~wal/")).map((o) => [o.key, o.size]));
    assert.ok(files.every((k) => (sizes.get(k) ?? 0) > 0), "the second round is in the ready file");
    const values = await log.read(0, 1 << 20).then((r) => decode(r.chunks).map(([, v]) => v));
    assert.deepEqual(values, ["a", "b"]);
  } finally {
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("collection: this broker's own write-ahead files on a local disk go a minute after their creation, not ten", async () => {
  const dir = await Deno.makeTempDir({ prefix: "log_manager_own_grace_" });
  const objectStore = new LocalObjectStore(dir);
  // A lease that outlives the clock jumps below (keep-alives are not what this is about).
  const h = await harness({
    objectStore,
    config: { walFileBytes: 1, leaseTtlMs: 24 * 60 * 60 * 1000 },
  });
  try {
    const log = await h.manager.partition(TOPIC, 0);
    for (let i = 0; i < 3; i++) await appendAcked(h, log, batch([`v${i}`]));
    // Another broker's unreferenced object (S3 mode shares the folder): its round could still
    // be committing, so it keeps the full grace.
    const foreign = `default/~wal/2/${String(h.clock.now()).padStart(13, "0")}-0123abcd.wal`;
    await objectStore.put(foreign, new Uint8Array(10));
    await sealAll(log);
    const keys = async () => (await objectStore.list("default/~wal/")).map((o) => o.key);
    await h.manager.runWalGc();
    await h.manager.runWalGc();
    assert.equal((await keys()).length, 4, "younger than a minute: all kept");
    h.clock.advance(OWN_WAL_FILE_GRACE_MS);
    await h.manager.runWalGc();
    await h.manager.runWalGc();
    const left = await keys();
    assert.equal(left.length, 2, `the file being appended to and the foreign one: ${left}`);
    assert.ok(left.includes(foreign));
    h.clock.advance(WAL_ORPHAN_GRACE_MS);
    await h.manager.runWalGc();
    await h.manager.runWalGc();
    assert.ok(!(await keys()).includes(foreign), "the foreign object after the full grace");
    assert.deepEqual(decode((await log.read(0, 1 << 20)).chunks).map(([, v]) => v), [
      "v0",
      "v1",
      "v2",
    ]);
  } finally {
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("manager: on the system clock, timers flush and nothing leaks after close", async () => {
  const clock = new SystemClock();
  const metadataStore = new MemoryMetadataStore({ clock });
  const metadata = new ClusterMetadata(metadataStore);
  await metadata.createTopic({ name: TOPIC, partitions: 1 });
  const manager = new LogManager({
    objectStore: new MemoryObjectStore(),
    metadata,
    clock,
    logger: silentLogger,
    brokerId: 1,
    config: { ...TEST_CONFIG, flushIntervalMs: 1, leaseTtlMs: 3_000 },
  });
  await manager.start();
  const log = await manager.partition(TOPIC, 0);
  const b = batch(["real time"]);
  assert.deepEqual(await log.append(b.records, b.batches, { acks: 1 }), {
    baseOffset: 0,
    logStartOffset: 0,
  });
  await log.waitForData(1, 5); // times out on a real timer
  const parked = log.waitForData(1, 60_000); // ended by close, its timer cancelled
  await manager.close();
  await parked;
  await metadataStore.close();
});

Deno.test("seal on a local disk is paced by segmentWriteRateMin; close lets a waiting seal go", async () => {
  const dir = await Deno.makeTempDir({ prefix: "log_manager_paced_" });
  const pieces = 4; // the segment is written in this many paced pieces
  const h = await harness({
    objectStore: new LocalObjectStore(dir),
    partitions: 1,
    // 1 MiB/s: after the first piece (the burst credit), each 256 KiB piece waits 250 ms of
    // the manual clock, which only the test moves.
    config: { segmentWriteRateMin: 1024 * 1024, segmentBytesMax: 64 * 1024 * 1024 },
  });
  const settledWithin = async (p: Promise<unknown>, ms: number) => {
    let done = false;
    p.then(() => (done = true), () => (done = true));
    for (let i = 0; i < ms && !done; i++) await new Promise((r) => setTimeout(r, 1));
    return done;
  };
  try {
    const log = await h.manager.partition(TOPIC, 0);
    for (let i = 0; i < pieces; i++) {
      await appendAcked(h, log, bigBatch(`record-${i}`, PACED_PIECE_BYTES - 200));
    }
    const seal = log.seal({ segmentBytes: 64 * 1024 * 1024 });
    assert.equal(await settledWithin(seal, 300), false, "the second piece waits for the clock");
    h.clock.advance(250);
    assert.equal(await settledWithin(seal, 300), false, "the third piece waits for the clock");
    await eventually(() => {
      h.clock.advance(250);
      return settledWithin(seal, 5);
    }, "the paced seal to finish");
    assert.equal(await seal, true);
    assert.equal(log.segments.length, 1);

    // A second segment is held by the pacer; close() must not wait for the clock.
    for (let i = 0; i < pieces; i++) {
      await appendAcked(h, log, bigBatch(`more-${i}`, PACED_PIECE_BYTES - 200));
    }
    const second = log.seal({ segmentBytes: 64 * 1024 * 1024 });
    assert.equal(await settledWithin(second, 300), false);
    const closed = h.manager.close();
    assert.ok(await settledWithin(closed, 10_000), "close finished without the clock moving");
    await second;

    const reopened = await h.newManager();
    const reloaded = await reopened.partition(TOPIC, 0);
    assert.equal(reloaded.segments.length, 2);
    assert.equal(reloaded.unsealedBytes, 0);
    assert.equal(reloaded.highWatermark, 2 * pieces);
  } finally {
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
});
