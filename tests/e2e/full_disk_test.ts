/**
 * A full local disk (DESIGN.md invariant 1, and "bad input loses nothing: ... a full disk"): the
 * embedded broker's data directory is a small tmpfs, filled up while a librdkafka producer
 * (acks=all, no retries) keeps writing. Produce must answer errors, never acknowledge what it
 * could not store, and the broker must stay up. Everything acknowledged survives a restart on
 * the still-full disk, and once space returns produce works again without a restart.
 *
 * Needs root (it mounts a tmpfs); CI runs as root.
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import {
  CLIENTS_DIR,
  describeRun,
  pythonPath,
  requireFile,
  runProgram,
  verifyAcked,
} from "./client_runner.ts";

const PARTITIONS = 4;
/** tmpfs size: room for the broker's metadata and some data, full well before the producer ends. */
const DISK_MIB = 24;
/** Left free by the filler file, then used up by the producer. */
const FREE_MIB = 6;
/** More than fits in FREE_MIB (records are ~130 bytes stored). */
const RECORDS = 100_000;
const DEADLINE_S = 60;
const PRODUCER = `${CLIENTS_DIR}confluent_acked_producer.py`;

async function run(cmd: string[]): Promise<void> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  assert.equal(out.code, 0, `${cmd.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

async function produce(
  bootstrap: string,
  topic: string,
  start: number,
  count: number,
  create: boolean,
) {
  const cmd = [
    pythonPath(),
    PRODUCER,
    bootstrap,
    topic,
    String(PARTITIONS),
    String(count),
    "--start",
    String(start),
    "--deadline-s",
    String(DEADLINE_S),
    "--set",
    "retries=0",
    ...(create ? [] : ["--no-create"]),
  ];
  const result = await runProgram(cmd, { timeoutMs: (DEADLINE_S + 30) * 1000 });
  const lines = result.stdout.split("\n");
  return {
    result,
    describe: () => describeRun(cmd, result),
    acks: lines.filter((l) => l.startsWith("ACK ")).map((l) => l.slice(4)),
    nacks: lines.filter((l) => l.startsWith("NACK ")),
  };
}

Deno.test({
  name: "full disk: produce errors instead of acks, acked data survives a restart, work resumes",
  ignore: Deno.uid() !== 0,
  async fn() {
    await requireFile(pythonPath());
    const mountPoint = await Deno.makeTempDir({ prefix: "kafscale-full-disk-" });
    await run(["mount", "-t", "tmpfs", "-o", `size=${DISK_MIB}m`, "tmpfs", mountPoint]);
    const dataDir = `${mountPoint}/data`;
    const filler = `${mountPoint}/filler`;
    const topic = `full-${Date.now()}`;
    try {
      let broker = await startBroker({ dataDir });
      try {
        // Take all but about FREE_MIB of the disk: the broker holds its 4 MiB start-up reserve
        // (lib/storage/disk_reserve.ts, written right after it is ready) and under 1 MiB of its
        // own files.
        const reserve = `${dataDir}/.reserve`;
        for (let i = 0; i < 200; i++) {
          const size = await Deno.stat(reserve).then((s) => s.size, () => 0);
          if (size === 4 * 1024 * 1024) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal((await Deno.stat(reserve)).size, 4 * 1024 * 1024, "the reserve is taken");
        await run([
          "dd",
          "if=/dev/zero",
          `of=${filler}`,
          "bs=1M",
          `count=${DISK_MIB - FREE_MIB - 5}`,
        ]);
        const first = await produce(broker.bootstrap, topic, 0, RECORDS, true);
        assert.ok(first.acks.length > 0, `some records fit.\n${first.describe()}`);
        assert.ok(first.nacks.length > 0, `the disk filled up.\n${first.describe()}`);
        assert.equal(first.acks.length + first.nacks.length, RECORDS, first.describe());
        assert.match(first.nacks[0], /storage|disk|KAFKA_STORAGE_ERROR|timed out/i);
        const health = await fetch(`http://${broker.httpAddr}/healthz`);
        await health.body?.cancel();
        assert.equal(health.status, 200, "the broker stays up");
        const ready = await fetch(`http://${broker.httpAddr}/readyz`);
        const readyBody = await ready.text();
        assert.equal(ready.status, 503, `not ready while the disk is full: ${readyBody}`);
        // Which write meets the full disk first depends on timing: a round's write-ahead append
        // (rounds fail: the flush check) or the embedded metadata log's (the metadata check).
        assert.match(readyBody, /flush rounds failed|metadata log.*No space left/);

        // Restart on the still-full disk: every acknowledged record is there.
        await broker.stop();
        broker = await startBroker({ dataDir });
        const verify = async (acks: string[]) => {
          const { summary, describe } = await verifyAcked(
            broker.bootstrap,
            topic,
            PARTITIONS,
            acks,
            DEADLINE_S,
          );
          assert.equal(summary?.lost, 0, `${describe}\n${broker.logs()}`);
          assert.equal(summary?.ok, true, `${describe}\n${broker.logs()}`);
          return summary;
        };
        await verify(first.acks);

        // Space returns: produce works again, without a restart.
        await Deno.remove(filler);
        const second = await produce(broker.bootstrap, topic, RECORDS, 2_000, false);
        assert.equal(second.acks.length, 2_000, second.describe());
        const summary = await verify([...first.acks, ...second.acks]);
        console.log(
          `full disk: ${first.acks.length} acked and ${first.nacks.length} refused while filling; ` +
            `all acked read back after a restart on the full disk; ${second.acks.length} acked ` +
            `once space returned; ${JSON.stringify(summary)}`,
        );
        assert.equal(await broker.stop(), 0, broker.logs());
      } finally {
        await broker.cleanup();
      }
    } finally {
      await run(["umount", "-l", mountPoint]);
      await Deno.remove(mountPoint, { recursive: true });
    }
  },
});
