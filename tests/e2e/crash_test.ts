/**
 * Durability across a crash (DESIGN.md invariants 1, 3, 6): a real client (confluent-kafka)
 * produces with acks=all and reports every acknowledgement; the broker is SIGKILLed mid-stream,
 * restarted on the same data dir, takes more records, and every acknowledged record must be
 * readable at the partition and offset it was acknowledged at, with its exact content.
 */
import assert from "node:assert/strict";
import { drainLines, startBroker } from "./broker_process.ts";
import {
  CLIENTS_DIR,
  describeRun,
  lastJsonLine,
  pythonPath,
  requireFile,
  runProgram,
  tail,
} from "./client_runner.ts";

const PARTITIONS = 8;
/** Records the first producer tries to send; the crash must come well before the last. */
const COUNT_BEFORE_CRASH = 200_000;
/** Acknowledgements seen before the broker is killed. */
const KILL_AFTER_ACKS = 5_000;
/** Records produced after the restart (new offsets must not reuse acknowledged ones). */
const COUNT_AFTER_RESTART = 2_000;
/** How long the first producer may take to reach KILL_AFTER_ACKS. */
const ACKS_DEADLINE_MS = 90_000;
/** Deadline of each program run after the restart (producer, verifier). */
const PROGRAM_DEADLINE_S = 60;
const KILL_GRACE_MS = 30_000;
/** Producer stderr lines kept for failure messages. */
const STDERR_LINES_MAX = 100;

const PRODUCER = `${CLIENTS_DIR}confluent_acked_producer.py`;
const VERIFIER = `${CLIENTS_DIR}confluent_verify_acked.py`;

/** Starts the acked producer, waits for `KILL_AFTER_ACKS` acks, then calls `crash`. */
async function produceUntilCrash(
  bootstrap: string,
  topic: string,
  crash: () => Promise<void>,
): Promise<{ acks: string[]; acksBeforeCrash: number }> {
  const child = new Deno.Command(pythonPath(), {
    args: [
      "-u",
      PRODUCER,
      bootstrap,
      topic,
      String(PARTITIONS),
      String(COUNT_BEFORE_CRASH),
      "--deadline-s",
      String(ACKS_DEADLINE_MS / 1000 + 30), // Outlives the wait: it is killed at the crash.
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const acks: string[] = [];
  const stderr: string[] = [];
  let reached: () => void = () => {};
  const reachedAcks = new Promise<void>((resolve) => reached = resolve);
  const drained = Promise.all([
    drainLines(child.stdout, (line) => {
      if (!line.startsWith("ACK ")) return;
      acks.push(line.slice(4));
      if (acks.length >= KILL_AFTER_ACKS) reached();
    }, { dropUnterminated: true }),
    drainLines(child.stderr, (line) => {
      stderr.push(line);
      if (stderr.length > STDERR_LINES_MAX) stderr.shift();
    }),
  ]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let acksBeforeCrash = 0;
  try {
    const first = await Promise.race([
      reachedAcks.then(() => "acks" as const),
      child.status.then(() => "exited" as const),
      new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), ACKS_DEADLINE_MS);
      }),
    ]);
    assert.equal(
      first,
      "acks",
      `The producer saw ${acks.length} acks (${first}) before the crash point of ` +
        `${KILL_AFTER_ACKS}.\n--- producer stderr ---\n${stderr.join("\n")}`,
    );
    await crash();
    acksBeforeCrash = acks.length;
  } finally {
    clearTimeout(timer);
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    await drained;
  }
  return { acks, acksBeforeCrash };
}

Deno.test("acknowledged records survive a broker SIGKILL mid-stream", async () => {
  await requireFile(pythonPath());
  const topic = `crash-${Date.now()}`;
  const first = await startBroker();
  try {
    const { acks, acksBeforeCrash } = await produceUntilCrash(
      first.bootstrap,
      topic,
      () => first.kill(),
    );
    assert.ok(
      acks.length < COUNT_BEFORE_CRASH,
      `All ${COUNT_BEFORE_CRASH} records were acked before the crash (${acksBeforeCrash} at the ` +
        "kill); raise COUNT_BEFORE_CRASH so the kill lands mid-stream.",
    );

    const second = await startBroker({ dataDir: first.dataDir });
    try {
      const produceCmd = [
        pythonPath(),
        PRODUCER,
        second.bootstrap,
        topic,
        String(PARTITIONS),
        String(COUNT_AFTER_RESTART),
        "--start",
        String(COUNT_BEFORE_CRASH),
        "--no-create",
        "--deadline-s",
        String(PROGRAM_DEADLINE_S),
      ];
      const after = await runProgram(produceCmd, {
        timeoutMs: PROGRAM_DEADLINE_S * 1000 + KILL_GRACE_MS,
      });
      const afterContext = () =>
        `${describeRun(produceCmd, after)}\n--- broker output ---\n${second.logs()}`;
      assert.equal(after.code, 0, `Producing after the restart failed.\n${afterContext()}`);
      const afterAcks = after.stdout.split("\n").filter((l) => l.startsWith("ACK "));
      assert.equal(afterAcks.length, COUNT_AFTER_RESTART, afterContext());

      const ackedFile = await Deno.makeTempFile({ prefix: "kafscale-acked-", suffix: ".txt" });
      try {
        const lines = [...acks, ...afterAcks.map((l) => l.slice(4))];
        await Deno.writeTextFile(ackedFile, lines.join("\n") + "\n");
        const verifyCmd = [
          pythonPath(),
          VERIFIER,
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
        const context = `${acks.length} acked before the crash (${acksBeforeCrash} when the ` +
          `kill was sent), ${afterAcks.length} after.\n${describeRun(verifyCmd, verify)}\n` +
          `--- broker output ---\n${second.logs()}`;
        console.log(
          `crash: ${acksBeforeCrash} acks when the kill was sent, ${acks.length} in all before ` +
            `the crash, ${afterAcks.length} after the restart; verifier: ${tail(verify.stdout, 1)}`,
        );
        assert.ok(summary, `The verifier printed no summary.\n${context}`);
        assert.equal(summary.ok, true, `Acknowledged records were lost or changed.\n${context}`);
        assert.equal(summary.lost, 0, context);
        assert.equal(verify.code, 0, context);
      } finally {
        await Deno.remove(ackedFile);
      }
      assert.equal(await second.stop(), 0, `Broker did not stop cleanly.\n${second.logs()}`);
    } finally {
      await second.cleanup();
    }
  } finally {
    await first.cleanup();
  }
});
