/**
 * A stalled owner (DESIGN invariant 4): broker 1 owns every partition and is SIGSTOPped in the
 * middle of an acks=all stream, with appends pending. Its lease expires; broker 2 (same MinIO
 * and etcd) takes the partitions over and acknowledges more records. Then broker 1 is SIGCONTed:
 * it wakes up with its old rounds, seals and collections due, past its lease deadline. It must
 * write, delete and reuse nothing: every record acknowledged by either broker is read back
 * exactly once at its acknowledged offset, also after broker 1 ran for a while, and broker 2
 * keeps taking records.
 */
import assert from "node:assert/strict";
import { CLIENTS_DIR, describeRun, pythonPath, runProgram, verifyAcked } from "./client_runner.ts";
import { AckedProducer, startBackends, startDistributedBroker } from "../support/distributed.ts";

const PARTITIONS = 4;
const COUNT_BEFORE_STALL = 200_000;
const STALL_AFTER_ACKS = 5_000;
/** Broker 1's session lease is 10 s; wait it out with slack. */
const LEASE_WAIT_MS = 13_000;
/** How long broker 1 runs again before the data is checked. */
const AWAKE_MS = 6_000;
const COUNT_AFTER = 2_000;
const DEADLINE_S = 90;

async function produce(bootstrap: string, topic: string, start: number, count: number) {
  const cmd = [
    pythonPath(),
    `${CLIENTS_DIR}confluent_acked_producer.py`,
    bootstrap,
    topic,
    String(PARTITIONS),
    String(count),
    "--start",
    String(start),
    "--no-create",
    "--deadline-s",
    String(DEADLINE_S),
  ];
  const result = await runProgram(cmd, { timeoutMs: (DEADLINE_S + 30) * 1000 });
  assert.equal(result.code, 0, describeRun(cmd, result));
  const acks = result.stdout.split("\n").filter((l) => l.startsWith("ACK ")).map((l) => l.slice(4));
  assert.equal(acks.length, count, describeRun(cmd, result));
  return acks;
}

Deno.test({
  name:
    "distributed: a stalled owner woken after its lease expired writes, deletes and reuses nothing",
  async fn() {
    await using backends = await startBackends();
    const topic = `stall-${Date.now()}`;
    const first = await startDistributedBroker(backends, { brokerId: 1 });
    let second: Awaited<ReturnType<typeof startDistributedBroker>> | null = null;
    try {
      const producer = await AckedProducer.start({
        bootstrap: first.bootstrap,
        topic,
        partitions: PARTITIONS,
        count: COUNT_BEFORE_STALL,
        deadlineS: DEADLINE_S,
      });
      let acks: string[];
      try {
        await producer.until(() => producer.acks.length >= STALL_AFTER_ACKS, {
          timeoutMs: 60_000,
          what: `${STALL_AFTER_ACKS} acks`,
        });
        Deno.kill(first.pid, "SIGSTOP");
      } finally {
        await producer.kill();
      }
      acks = producer.ackedLines().trimEnd().split("\n");
      await new Promise((r) => setTimeout(r, LEASE_WAIT_MS));

      second = await startDistributedBroker(backends, { brokerId: 2 });
      const during = await produce(second.bootstrap, topic, COUNT_BEFORE_STALL, COUNT_AFTER);
      assert.match(second.logs(), /Acquired partition/);

      // Broker 1 wakes up with everything it had in flight.
      Deno.kill(first.pid, "SIGCONT");
      await new Promise((r) => setTimeout(r, AWAKE_MS));
      const after = await produce(
        second.bootstrap,
        topic,
        COUNT_BEFORE_STALL + COUNT_AFTER,
        COUNT_AFTER,
      );
      acks = [...acks, ...during, ...after];

      const { summary, describe } = await verifyAcked(second.bootstrap, topic, PARTITIONS, acks);
      const context = `${describe}\n--- broker 1 ---\n${first.logs()}\n--- broker 2 ---\n` +
        second.logs();
      console.log(`stall: ${acks.length} acked in all; verifier: ${JSON.stringify(summary)}`);
      assert.equal(summary?.lost, 0, context);
      assert.equal(summary?.duplicates, 0, context);
      assert.equal(summary?.ok, true, context);
      // Broker 1 noticed it lost its lease and stopped writing.
      assert.match(first.logs(), /lease (may have )?expired|stopped writing|taken over/i);
      assert.equal(await second.stop(), 0, second.logs());
    } finally {
      try {
        Deno.kill(first.pid, "SIGCONT");
      } catch {
        // Already gone.
      }
      await second?.cleanup();
      await first.cleanup();
    }
  },
});
