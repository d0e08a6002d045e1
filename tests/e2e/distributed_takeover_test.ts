/**
 * Takeover in the distributed deployment (issue 5, DESIGN invariant 3): a real client
 * (confluent-kafka, acks=all) produces through broker 1 on a real MinIO and etcd; broker 1 is
 * SIGKILLed mid-stream. Broker 2 — another process, another node id, the same bucket and etcd —
 * waits out broker 1's partition leases (etcd expires them; nothing is handed over), acquires
 * the partitions with a new epoch, serves every acknowledged record at the offset it was
 * acknowledged at, and takes new records without reusing an offset.
 */
import assert from "node:assert/strict";
import {
  CLIENTS_DIR,
  describeRun,
  lastJsonLine,
  pythonPath,
  runProgram,
  tail,
} from "./client_runner.ts";
import { AckedProducer, startBackends, startDistributedBroker } from "../support/distributed.ts";

const PARTITIONS = 8;
/** Records the first producer tries to send; the kill must land well before the last. */
const COUNT_BEFORE_KILL = 200_000;
const KILL_AFTER_ACKS = 5_000;
const COUNT_AFTER_TAKEOVER = 2_000;
const PROGRAM_DEADLINE_S = 90;
const KILL_GRACE_MS = 20_000;
/**
 * Bound on the takeover: broker 1's session lease (10 s, lib/cli/node.ts), etcd's whole-second
 * rounding, the clients' retries, and slack for a loaded CI machine.
 */
const TAKEOVER_MAX_MS = 25_000;

Deno.test({
  name: "distributed: a second broker takes over a SIGKILLed broker's partitions",
  async fn() {
    await using backends = await startBackends();
    const topic = `takeover-${Date.now()}`;
    const first = await startDistributedBroker(backends, { brokerId: 1 });
    let acks: string[];
    try {
      const producer = await AckedProducer.start({
        bootstrap: first.bootstrap,
        topic,
        partitions: PARTITIONS,
        count: COUNT_BEFORE_KILL,
        deadlineS: PROGRAM_DEADLINE_S,
      });
      try {
        await producer.until(() => producer.acks.length >= KILL_AFTER_ACKS, {
          timeoutMs: 60_000,
          what: `${KILL_AFTER_ACKS} acks`,
        });
        await first.kill();
      } finally {
        await producer.kill();
      }
      assert.ok(
        producer.acks.length < COUNT_BEFORE_KILL,
        "Every record was acked before the kill; raise COUNT_BEFORE_KILL",
      );
      acks = producer.ackedLines().trimEnd().split("\n");
    } finally {
      await first.cleanup();
    }

    const second = await startDistributedBroker(backends, { brokerId: 2 });
    try {
      const killedAt = performance.now();
      const produceCmd = [
        pythonPath(),
        `${CLIENTS_DIR}confluent_acked_producer.py`,
        second.bootstrap,
        topic,
        String(PARTITIONS),
        String(COUNT_AFTER_TAKEOVER),
        "--start",
        String(COUNT_BEFORE_KILL),
        "--no-create",
        "--deadline-s",
        String(PROGRAM_DEADLINE_S),
      ];
      const after = await runProgram(produceCmd, {
        timeoutMs: PROGRAM_DEADLINE_S * 1000 + KILL_GRACE_MS,
      });
      const takeoverMs = performance.now() - killedAt;
      const afterContext = () =>
        `${describeRun(produceCmd, after)}\n--- broker 2 output ---\n${second.logs()}`;
      assert.equal(after.code, 0, `Producing through broker 2 failed.\n${afterContext()}`);
      const afterAcks = after.stdout.split("\n").filter((l) => l.startsWith("ACK "));
      assert.equal(afterAcks.length, COUNT_AFTER_TAKEOVER, afterContext());
      assert.ok(
        takeoverMs < TAKEOVER_MAX_MS,
        `Broker 2 took ${Math.round(takeoverMs)} ms to take over.\n${afterContext()}`,
      );
      assert.match(second.logs(), /Acquired partition/);

      const ackedFile = await Deno.makeTempFile({ prefix: "kafscale-acked-", suffix: ".txt" });
      try {
        const lines = [...acks, ...afterAcks.map((l) => l.slice(4))];
        await Deno.writeTextFile(ackedFile, lines.join("\n") + "\n");
        const verifyCmd = [
          pythonPath(),
          `${CLIENTS_DIR}confluent_verify_acked.py`,
          second.bootstrap,
          topic,
          String(PARTITIONS),
          ackedFile,
          "--deadline-s",
          String(PROGRAM_DEADLINE_S),
        ];
        const verify = await runProgram(verifyCmd, {
          timeoutMs: PROGRAM_DEADLINE_S * 1000 + KILL_GRACE_MS,
        });
        const summary = lastJsonLine(verify.stdout);
        const context = `${acks.length} acked through broker 1, ${afterAcks.length} through ` +
          `broker 2.\n${describeRun(verifyCmd, verify)}\n--- broker 2 output ---\n${second.logs()}`;
        console.log(
          `takeover: ${acks.length} acks through broker 1 before its SIGKILL; broker 2 took ` +
            `${Math.round(takeoverMs)} ms to take over and ack ${afterAcks.length} more; ` +
            `verifier: ${tail(verify.stdout, 1)}`,
        );
        assert.ok(summary, `The verifier printed no summary.\n${context}`);
        assert.equal(summary.ok, true, `Acknowledged records were lost or changed.\n${context}`);
        assert.equal(summary.lost, 0, context);
        assert.equal(verify.code, 0, context);
      } finally {
        await Deno.remove(ackedFile);
      }
      assert.equal(await second.stop(), 0, `Broker 2 did not stop cleanly.\n${second.logs()}`);
    } finally {
      await second.cleanup();
    }
  },
});
