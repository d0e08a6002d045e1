/**
 * Drain in the distributed deployment (issue 13): two, then three `kafscale serve` processes on
 * a real MinIO and etcd, a real client producing with acks=all through all of them.
 *
 * 1. `kafscale broker drain` on broker 1 hands every partition it owns to broker 2 within
 *    seconds (no lease-expiry wait); WatchAssignments (through grpcurl) reports each move as a
 *    release by broker 1 and a takeover by broker 2 with a higher epoch; GetStatus (grpcurl)
 *    shows broker 1 owning nothing and broker 2 owning every partition.
 * 2. With broker 3 started, DrainPartitions (grpcurl) naming one partition of broker 2 moves
 *    just that one to broker 3; TriggerFlush and StreamMetrics (grpcurl) on broker 3. Then,
 *    under load again, SIGTERM on broker 2 drains it before it exits: its partitions move to
 *    broker 3 at once (broker 1 stays drained and is passed over).
 * The producer sees no failed delivery, and every acknowledged record is read back at its
 * offset, none lost or duplicated.
 */
import assert from "node:assert/strict";
import {
  CLIENTS_DIR,
  describeRun,
  lastJsonLine,
  pythonPath,
  REPO_ROOT,
  runProgram,
} from "./client_runner.ts";
import { AckedProducer, startBackends, startDistributedBroker } from "../support/distributed.ts";
import type { BrokerProcess } from "./broker_process.ts";
import { grpcurl, GrpcurlStream } from "../support/grpcurl.ts";

const PARTITIONS = 8;
const FIRST_COUNT = 300_000;
const SECOND_COUNT = 100_000;
const DRAIN_AFTER_ACKS = 4_000;
const PROGRAM_DEADLINE_S = 120;
/** Bound on a partition move: well under the 10 s session lease a crash would wait out. */
const MOVE_MAX_MS = 7_000;
const POLL_MS = 50;

type Json = Record<string, unknown>;

async function ownedBy(broker: BrokerProcess, topic: string): Promise<number[]> {
  const status = await grpcurl(broker.controlAddr, "BrokerControl/GetStatus");
  assert.equal(status.code, 0, status.stderr);
  return (status.json!.partitions as Json[])
    .filter((p) => p.topic === topic && p.state === "online")
    .map((p) => Number(p.partition))
    .sort((a, b) => a - b);
}

/** Polls GetStatus until `broker` owns `count` partitions of `topic`; returns the time it took. */
async function waitOwned(
  broker: BrokerProcess,
  topic: string,
  count: number,
  timeoutMs: number,
): Promise<number> {
  const started = performance.now();
  let last: number[] = [];
  while (performance.now() - started < timeoutMs) {
    last = await ownedBy(broker, topic);
    if (last.length === count) return performance.now() - started;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new Error(
    `Broker at ${broker.controlAddr} owns ${JSON.stringify(last)} of "${topic}", not ${count} ` +
      `partitions, after ${timeoutMs} ms.\n--- broker output ---\n${broker.logs()}`,
  );
}

/**
 * DrainPartitions (grpcurl) for one named partition: it moves to `to` at once and stays away
 * from `from`; TriggerFlush and StreamMetrics (grpcurl) on the new owner.
 */
async function drainOnePartition(
  from: BrokerProcess,
  to: BrokerProcess,
  topic: string,
  partition: number,
): Promise<void> {
  const drained = await grpcurl(from.controlAddr, "BrokerControl/DrainPartitions", {
    partitions: [{ topic, partition }],
    reason: "one partition",
    deadline_seconds: 10,
  });
  assert.equal(drained.code, 0, drained.stderr);
  assert.deepEqual(drained.json, { drained: [{ topic, partition }], pending: [] });
  const started = performance.now();
  while (!(await ownedBy(to, topic)).includes(partition)) {
    assert.ok(
      performance.now() - started < MOVE_MAX_MS,
      `${topic}-${partition} did not move to ${to.controlAddr}.\n${to.logs()}`,
    );
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  assert.ok(!(await ownedBy(from, topic)).includes(partition), `${topic}-${partition} came back`);
  const unknown = await grpcurl(to.controlAddr, "BrokerControl/DrainPartitions", {
    partitions: [{ topic, partition: PARTITIONS }],
  });
  assert.match(unknown.stderr, /Code: InvalidArgument[\s\S]*Unknown partition/);
  const flushed = await grpcurl(to.controlAddr, "BrokerControl/TriggerFlush", {
    partitions: [{ topic, partition }],
  });
  assert.equal(flushed.code, 0, flushed.stderr);
  assert.deepEqual(flushed.json, { flushed: [{ topic, partition }] });
  const sample = await grpcurl(to.controlAddr, "BrokerControl/StreamMetrics", {
    broker_id: "2",
    gauges: { moved_partitions: 1 },
  });
  assert.equal(sample.code, 0, sample.stderr);
  const metrics = await (await fetch(`http://${to.httpAddr}/metrics`)).text();
  assert.match(metrics, /kafscale_remote_gauge\{broker="2",name="moved_partitions"\} 1/);
}

function eventsOf(watch: GrpcurlStream, topic: string, partition: number): Json[] {
  return watch.messages.filter((m) =>
    (m.partition as Json)?.topic === topic && Number((m.partition as Json).partition) === partition
  );
}

/** For each moved partition: a release by `from`, then a takeover by `to` at a higher epoch. */
function assertMoved(
  watch: GrpcurlStream,
  topic: string,
  moved: number[],
  from: string,
  to: string,
) {
  for (const p of moved) {
    const events = eventsOf(watch, topic, p);
    const released = events.findIndex((e) => e.status === "released" && e.brokerId === from);
    assert.ok(released >= 0, `No release of ${topic}-${p} by ${from}: ${JSON.stringify(events)}`);
    const takeover = events.findIndex((e, i) =>
      i > released && e.status === "takeover" && e.brokerId === to
    );
    assert.ok(
      takeover > released,
      `No takeover of ${topic}-${p} by ${to}: ${JSON.stringify(events)}`,
    );
    assert.ok(
      Number(events[takeover].epoch) > Number(events[released].epoch),
      `Epochs of ${topic}-${p} do not increase: ${JSON.stringify(events)}`,
    );
  }
}

async function verifyAcked(bootstrap: string, topic: string, lines: string): Promise<Json> {
  const ackedFile = await Deno.makeTempFile({ prefix: "kafscale-acked-", suffix: ".txt" });
  try {
    await Deno.writeTextFile(ackedFile, lines);
    const cmd = [
      pythonPath(),
      `${CLIENTS_DIR}confluent_verify_acked.py`,
      bootstrap,
      topic,
      String(PARTITIONS),
      ackedFile,
      "--deadline-s",
      String(PROGRAM_DEADLINE_S),
    ];
    const run = await runProgram(cmd, { timeoutMs: PROGRAM_DEADLINE_S * 1000 + 20_000 });
    const summary = lastJsonLine(run.stdout);
    assert.ok(summary, `The verifier printed no summary.\n${describeRun(cmd, run)}`);
    assert.equal(summary.ok, true, describeRun(cmd, run));
    return summary;
  } finally {
    await Deno.remove(ackedFile);
  }
}

Deno.test({
  name: "distributed: drain and SIGTERM move partitions at once under acks=all load",
  async fn() {
    await using backends = await startBackends();
    await using b1 = await startDistributedBroker(backends, { brokerId: 1 });
    await using b2 = await startDistributedBroker(backends, { brokerId: 2 });
    const topic = `drain-${Date.now()}`;
    const watch = await GrpcurlStream.start(
      b2.controlAddr,
      "AssignmentStream/WatchAssignments",
      {},
    );
    let acked = "";
    try {
      // ---- 1. kafscale broker drain on broker 1 -------------------------------------------
      const producer = await AckedProducer.start({
        bootstrap: `${b1.bootstrap},${b2.bootstrap}`,
        topic,
        partitions: PARTITIONS,
        count: FIRST_COUNT,
        deadlineS: PROGRAM_DEADLINE_S,
      });
      let moved: number[];
      try {
        await producer.until(() => producer.acks.length >= DRAIN_AFTER_ACKS, {
          timeoutMs: 60_000,
          what: `${DRAIN_AFTER_ACKS} acks`,
        });
        moved = await ownedBy(b1, topic);
        assert.ok(moved.length > 0, `Broker 1 owns no partition to drain.\n${b1.logs()}`);
        const started = performance.now();
        assert.equal(
          producer.done,
          null,
          "The producer finished before the drain; raise FIRST_COUNT",
        );
        const cmd = [
          Deno.execPath(),
          "run",
          "-A",
          `${REPO_ROOT}cli.ts`,
          "broker",
          "drain",
          "--control-server",
          b1.controlAddr,
          "--deadline-seconds",
          "10",
          "-o",
          "json",
        ];
        const drain = await runProgram(cmd, { timeoutMs: 60_000 });
        const acksAtAnswer = producer.acks.length;
        assert.equal(drain.code, 0, `${describeRun(cmd, drain)}\n--- broker 1 ---\n${b1.logs()}`);
        const answer = JSON.parse(drain.stdout);
        assert.deepEqual(answer.pending, []);
        assert.deepEqual(
          (answer.drained as Json[]).filter((p) => p.topic === topic).map((p) => p.partition)
            .sort(),
          moved,
        );
        assert.deepEqual(await ownedBy(b1, topic), [], "Broker 1 still owns partitions");
        const takeoverMs = await waitOwned(b2, topic, PARTITIONS, MOVE_MAX_MS);
        console.log(
          `drain: ${acksAtAnswer} acks when broker 1 answered; it handed ${moved.length} ` +
            `partitions over; broker 2 owned all ` +
            `${PARTITIONS} ${Math.round(performance.now() - started)} ms after the drain began ` +
            `(${Math.round(takeoverMs)} ms after it answered)`,
        );
        await watch.until(
          () => moved.every((p) => eventsOf(watch, topic, p).some((e) => e.status === "takeover")),
          { timeoutMs: 10_000, what: "a takeover event for every drained partition" },
        );
        assertMoved(watch, topic, moved, "1", "2");
        // A drained broker does not take partitions back, whatever the client asks it.
        assert.deepEqual(await ownedBy(b1, topic), []);
        const exit = await producer.exited;
        assert.equal(exit, 0, producer.describe());
      } finally {
        await producer.kill();
      }
      assert.equal(producer.nacks.length, 0, producer.describe());
      assert.equal(producer.acks.length, FIRST_COUNT, producer.describe());
      acked += producer.ackedLines();
    } finally {
      await watch.stop();
    }

    // ---- 2. SIGTERM on broker 2 drains it; broker 3 takes over --------------------------
    await using b3 = await startDistributedBroker(backends, { brokerId: 3 });
    const watch3 = await GrpcurlStream.start(b3.controlAddr, "AssignmentStream/WatchAssignments", {
      broker_id: "3",
    });
    try {
      // Broker 2 owns every partition now; one named partition moves first, without load.
      const before = await ownedBy(b2, topic);
      assert.equal(
        before.length,
        PARTITIONS,
        `Broker 2 does not own every partition.\n${b2.logs()}`,
      );
      await drainOnePartition(b2, b3, topic, before[0]);
      const producer = await AckedProducer.start({
        bootstrap: `${b2.bootstrap},${b3.bootstrap}`,
        topic,
        partitions: PARTITIONS,
        count: SECOND_COUNT,
        start: FIRST_COUNT,
        create: false,
        deadlineS: PROGRAM_DEADLINE_S,
      });
      try {
        await producer.until(() => producer.acks.length >= DRAIN_AFTER_ACKS, {
          timeoutMs: 60_000,
          what: `${DRAIN_AFTER_ACKS} acks in the second run`,
        });
        assert.ok((await ownedBy(b2, topic)).length > 0, `Broker 2 owns nothing.\n${b2.logs()}`);
        // SIGTERM lands under load: the producer is still sending.
        assert.ok(
          producer.done === null && producer.acks.length < SECOND_COUNT,
          "The producer finished before broker 2's SIGTERM; raise SECOND_COUNT",
        );
        const stopped = performance.now();
        assert.equal(await b2.stop(), 0, `Broker 2 did not stop cleanly.\n${b2.logs()}`);
        const stopMs = performance.now() - stopped;
        assert.match(b2.logs(), /Draining partitions reason="SIGTERM"/);
        assert.match(b2.logs(), /Released partition/);
        const takeoverMs = await waitOwned(b3, topic, PARTITIONS, MOVE_MAX_MS);
        console.log(
          `SIGTERM: broker 2 drained and exited in ${Math.round(stopMs)} ms; broker 3 owned all ` +
            `${PARTITIONS} partitions ${Math.round(takeoverMs)} ms later`,
        );
        assert.deepEqual(await ownedBy(b1, topic), [], "Broker 1 (drained) took partitions back");
        await watch3.until(
          () =>
            before.every((p) => eventsOf(watch3, topic, p).some((e) => e.status === "takeover")),
          { timeoutMs: 10_000, what: "broker 3's takeovers" },
        );
        for (const p of before) {
          const takeover = eventsOf(watch3, topic, p).find((e) => e.status === "takeover")!;
          assert.equal(takeover.brokerId, "3");
        }
        assert.equal(await producer.exited, 0, producer.describe());
      } finally {
        await producer.kill();
      }
      assert.equal(producer.nacks.length, 0, producer.describe());
      assert.equal(producer.acks.length, SECOND_COUNT, producer.describe());
      acked += producer.ackedLines();
    } finally {
      await watch3.stop();
    }

    const summary = await verifyAcked(b3.bootstrap, topic, acked);
    assert.equal(summary.lost, 0, JSON.stringify(summary));
    assert.equal(summary.duplicates, 0, JSON.stringify(summary));
    assert.equal(summary.unacked_present, 0, JSON.stringify(summary));
    assert.equal(summary.records, FIRST_COUNT + SECOND_COUNT, JSON.stringify(summary));
  },
});
