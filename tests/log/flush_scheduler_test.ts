import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import {
  FlushScheduler,
  type FlushSource,
  type PreparedFlush,
} from "../../lib/log/flush_scheduler.ts";
import { LOG_ERROR_CODE, LogError } from "../../lib/log/log_error.ts";
import { type AcquiredPartition, ClusterMetadata } from "../../lib/metadata/cluster_metadata.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import { WalWriter } from "../../lib/log/wal_writer.ts";
import { FaultyObjectStore } from "../../lib/storage/faulty_object_store.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { ManualClock } from "../../lib/util/clock.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import { GatedObjectStore, settle } from "./log_fixture.ts";

const INTERVAL_MS = 5;
const FLUSH_BYTES = 1_000;

class FakeSource implements FlushSource {
  pending = 0;
  takes = 0;
  end = 0;
  outcomes: string[] = [];
  /** Where the last committed chunk went. */
  written: { object: string; position: number; length: number } | null = null;

  constructor(
    readonly scheduler: FlushScheduler,
    readonly partition: number,
    public revision: number,
    readonly epoch: number,
  ) {}

  add(bytes: number): void {
    this.pending += bytes;
    this.scheduler.notePending(this, bytes);
  }

  takeFlush(): PreparedFlush | null {
    if (this.pending === 0) return null;
    this.takes++;
    const baseOffset = this.end;
    const endOffset = this.end + this.pending;
    const bytes = new Uint8Array(this.pending);
    this.pending = 0;
    return {
      chunk: {
        topic: "t",
        topicId: "",
        partition: this.partition,
        epoch: this.epoch,
        baseOffset,
        endOffset,
        batches: [bytes],
      },
      commit: () => ({
        topic: "t",
        partition: this.partition,
        expectedRevision: this.revision,
        state: { endOffset, logStartOffset: 0, epoch: this.epoch },
      }),
      committed: (revision, written) => {
        this.revision = revision;
        this.written = written;
        this.end = endOffset;
        this.outcomes.push("committed");
      },
      failed: (error, phase) => this.outcomes.push(`${phase}:${error.code}`),
    };
  }
}

function walOver(objects: FaultyObjectStore | GatedObjectStore, clock: ManualClock): WalWriter {
  return new WalWriter({
    objectStore: objects,
    namespace: "default",
    brokerId: 1,
    clock,
    fileBytesMax: 1 << 20,
  });
}

async function setup(partitions = 2, flushIntervalMs = INTERVAL_MS) {
  const clock = new ManualClock();
  const store = new MemoryMetadataStore({ clock });
  const metadata = new ClusterMetadata(store);
  await metadata.createTopic({ name: "t", partitions });
  const lease = await metadata.grantLease(60_000);
  const memory = new MemoryObjectStore();
  const objects = new FaultyObjectStore(memory);
  const broken: unknown[] = [];
  const gated = new GatedObjectStore(objects);
  const scheduler = new FlushScheduler({
    clock,
    logger: silentLogger,
    metadata,
    wal: walOver(gated, clock),
    flushBytes: FLUSH_BYTES,
    flushIntervalMs,
    onBrokenInvariant: (error) => void broken.push(error),
  });
  const sources: FakeSource[] = [];
  for (let p = 0; p < partitions; p++) {
    const a = (await metadata.acquirePartition("t", p, 1, lease.id)) as AcquiredPartition;
    sources.push(new FakeSource(scheduler, p, a.stateRevision, a.epoch));
  }
  return { clock, store, metadata, scheduler, sources, memory, objects, gated, broken };
}

Deno.test("flush scheduler: with no window, the round starts on the next turn of the event loop, no clock timer", async () => {
  const { clock, store, scheduler, sources: [a, b] } = await setup(2, 0);
  try {
    const leaseTimers = clock.pendingTimers();
    a.add(10);
    b.add(10); // same turn: same round
    assert.equal(clock.pendingTimers(), leaseTimers, "no timer on the clock");
    assert.equal(a.takes + b.takes, 0, "not on the caller's stack");
    await new Promise((resolve) => setImmediate(resolve));
    await settle();
    assert.deepEqual([a.takes, b.takes], [1, 1]);
    assert.deepEqual([a.outcomes, b.outcomes], [["committed"], ["committed"]]);
    assert.equal(scheduler.stats.rounds, 1);
    // close() cancels a pending start.
    a.add(10);
    scheduler.close();
    await new Promise((resolve) => setImmediate(resolve));
    await settle();
    assert.equal(a.takes, 1);
  } finally {
    await store.close();
  }
});

Deno.test("flush scheduler: the interval timer starts at the first pending append", async () => {
  const { clock, store, scheduler, sources: [a, b] } = await setup();
  try {
    const leaseTimers = clock.pendingTimers();
    a.add(10);
    assert.equal(clock.pendingTimers(), leaseTimers + 1);
    clock.advance(INTERVAL_MS - 1);
    b.add(10); // does not restart the timer
    await settle(2);
    assert.equal(a.takes + b.takes, 0);
    clock.advance(1);
    await settle();
    assert.deepEqual([a.takes, b.takes], [1, 1]);
    assert.deepEqual([a.outcomes, b.outcomes], [["committed"], ["committed"]]);
    assert.equal(scheduler.stats.rounds, 1);
    assert.equal(clock.pendingTimers(), leaseTimers, "no flush timer left");
    // One write-ahead object for the round, both partitions in it.
    assert.equal(a.written!.object, b.written!.object);
    assert.notEqual(a.written!.position, b.written!.position);
  } finally {
    scheduler.close();
    await store.close();
  }
});

Deno.test("flush scheduler: flushBytes starts a round at once", async () => {
  const { store, scheduler, sources: [a] } = await setup();
  try {
    a.add(FLUSH_BYTES);
    await settle();
    assert.deepEqual(a.outcomes, ["committed"]);
  } finally {
    scheduler.close();
    await store.close();
  }
});

Deno.test("flush scheduler: one round at a time; appends during a round wait for the next", async () => {
  const { clock, store, scheduler, gated, sources: [a, b] } = await setup();
  try {
    gated.hold();
    a.add(10);
    clock.advance(INTERVAL_MS);
    await settle();
    assert.equal(scheduler.roundInFlight, true);
    b.add(FLUSH_BYTES); // over the threshold, but a round is in flight
    await settle();
    assert.equal(b.takes, 0);
    gated.release();
    await settle();
    assert.deepEqual(a.outcomes, ["committed"]);
    assert.deepEqual(b.outcomes, ["committed"], "the threshold request ran right after");
    assert.equal(scheduler.stats.rounds, 2);
  } finally {
    scheduler.close();
    await store.close();
  }
});

Deno.test("flush scheduler: a failed write-ahead write fails every partition of the round", async () => {
  const { clock, store, objects, scheduler, sources: [a, b] } = await setup();
  try {
    objects.failNext("put");
    a.add(10);
    b.add(10);
    clock.advance(INTERVAL_MS);
    await settle();
    const failed = [`write:${LOG_ERROR_CODE.KAFKA_STORAGE_ERROR}`];
    assert.deepEqual([a.outcomes, b.outcomes], [failed, failed]);
    assert.equal(scheduler.stats.failedFlushes, 2);
  } finally {
    scheduler.close();
    await store.close();
  }
});

Deno.test("flush scheduler: one round is one write-ahead object and one index record", async () => {
  const { clock, store, metadata, memory, scheduler, sources } = await setup(5);
  try {
    for (const s of sources) s.add(10 + s.partition);
    clock.advance(INTERVAL_MS);
    await settle();
    for (const s of sources) assert.deepEqual(s.outcomes, ["committed"]);
    assert.equal(memory.size, 1, "one object, whatever the partition count");
    const index = await metadata.listWalIndex();
    assert.equal(index.length, 1);
    assert.deepEqual(
      index[0].record.ranges.map((r) => [r.partition, r.baseOffset, r.endOffset]),
      sources.map((s) => [s.partition, 0, 10 + s.partition]),
    );
    assert.equal(index[0].record.object, sources[0].written!.object);
  } finally {
    scheduler.close();
    await store.close();
  }
});

Deno.test("flush scheduler: a fenced partition fails, the others commit", async () => {
  const { clock, store, metadata, scheduler, sources: [a, b] } = await setup();
  try {
    const lease = await metadata.grantLease(60_000);
    await metadata.acquirePartition("t", 1, 1, lease.id); // b's partition moves on
    a.add(10);
    b.add(10);
    clock.advance(INTERVAL_MS);
    await settle();
    assert.deepEqual(a.outcomes, ["committed"]);
    assert.deepEqual(b.outcomes, [`commit:${LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER}`]);
  } finally {
    scheduler.close();
    await store.close();
  }
});

Deno.test("flush scheduler: a refused lease check or a failing commit fails every partition", async () => {
  const clock = new ManualClock();
  const store = new MemoryMetadataStore({ clock });
  const metadata = new ClusterMetadata(store);
  let refuse = false;
  const scheduler = new FlushScheduler({
    clock,
    logger: silentLogger,
    metadata,
    wal: walOver(new FaultyObjectStore(new MemoryObjectStore()), clock),
    flushBytes: FLUSH_BYTES,
    flushIntervalMs: INTERVAL_MS,
    beforeCommit: () => {
      if (refuse) throw LogError.notLeader("lease deadline passed");
    },
    onBrokenInvariant: (error) => assert.fail(`unexpected broken invariant: ${error}`),
  });
  try {
    await metadata.createTopic({ name: "t", partitions: 2 });
    const a = new FakeSource(scheduler, 0, 0, 0);
    const b = new FakeSource(scheduler, 1, 0, 0);
    refuse = true;
    a.add(10);
    b.add(10);
    clock.advance(INTERVAL_MS);
    await settle();
    // Refused before anything was written.
    const expected = [`write:${LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER}`];
    assert.deepEqual([a.outcomes, b.outcomes], [expected, expected]);
    // A store that fails the commit: its outcome is unknown.
    refuse = false;
    store.close();
    a.add(10);
    b.add(10);
    clock.advance(INTERVAL_MS);
    await settle();
    assert.equal(a.outcomes[1], `commit:${LOG_ERROR_CODE.KAFKA_STORAGE_ERROR}`);
    assert.equal(b.outcomes[1], `commit:${LOG_ERROR_CODE.KAFKA_STORAGE_ERROR}`);
  } finally {
    scheduler.close();
    await store.close();
  }
});

Deno.test("flush scheduler: drain flushes everything; discard forgets a source", async () => {
  const { store, scheduler, sources: [a, b] } = await setup();
  try {
    a.add(10);
    b.add(20);
    scheduler.discard(b, 20);
    b.pending = 0;
    assert.equal(scheduler.pendingBytes, 10);
    await scheduler.drain();
    assert.deepEqual(a.outcomes, ["committed"]);
    assert.deepEqual(b.outcomes, []);
    assert.equal(scheduler.pendingBytes, 0);
  } finally {
    scheduler.close();
    await store.close();
  }
});

Deno.test("flush scheduler: an outcome handler that throws is a broken invariant, never swallowed", async () => {
  const { clock, store, scheduler, broken, sources: [a, b] } = await setup();
  try {
    const original = a.takeFlush.bind(a);
    a.takeFlush = () => {
      const flush = original();
      return flush && {
        ...flush,
        committed: () => {
          throw new Error("bookkeeping bug");
        },
      };
    };
    a.add(10);
    b.add(10);
    clock.advance(INTERVAL_MS);
    await settle();
    assert.deepEqual(b.outcomes, ["committed"], "the other partitions are still told");
    assert.equal(broken.length, 1);
    assert.match(String(broken[0]), /bookkeeping bug/);
  } finally {
    scheduler.close();
    await store.close();
  }
});

Deno.test("flush scheduler: rounds that keep failing are counted for readiness; a success resets", async () => {
  const { clock, store, objects, scheduler, sources: [a] } = await setup();
  try {
    for (let i = 1; i <= 3; i++) {
      objects.failNext("put");
      a.add(10);
      clock.advance(INTERVAL_MS);
      await settle();
      assert.equal(scheduler.stats.failingRounds, i);
    }
    assert.match(scheduler.stats.lastError ?? "", /Injected fault/);
    a.add(10);
    clock.advance(INTERVAL_MS);
    await settle();
    assert.equal(scheduler.stats.failingRounds, 0);
    assert.equal(scheduler.stats.lastError, null);
  } finally {
    scheduler.close();
    await store.close();
  }
});
