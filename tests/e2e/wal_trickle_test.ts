/**
 * The trickle that used to fill a disk with inodes (issue: one segment object per partition per
 * flush made ~972 files in 10 s for 100 records/s over 10 partitions): 100 records/s spread over
 * 100 partitions, acks=all through librdkafka, for KAFSCALE_TRICKLE_SECONDS (300 in CI), on the
 * embedded broker. The topic seals every 5 s (`segment.ms`) and keeps 30 s (`retention.ms`).
 *
 * Checked: every acknowledged record is read exactly once at its offset by a consumer reading
 * along; the number of files in the data directory stays under a bound derived from the topic's
 * settings (partitions x segments alive x 2 files, plus the write-ahead file and the metadata
 * store), and does not grow with elapsed time once sealing and retention keep pace.
 */
import assert from "node:assert/strict";
import { drainLines, startBroker } from "./broker_process.ts";
import { CLIENTS_DIR, lastJsonLine, pythonPath, REPO_ROOT, requireFile } from "./client_runner.ts";

const SECONDS = Number(Deno.env.get("KAFSCALE_TRICKLE_SECONDS") ?? "300");
const PARTITIONS = 100;
const RATE = 100;
const SEGMENT_MS = 5_000;
const RETENTION_MS = 30_000;
const RETENTION_CHECK_MS = 2_000;
const SAMPLE_MS = 5_000;
/** Segments a partition can hold at once: those within retention, plus the check delay, plus one. */
const SEGMENTS_ALIVE = Math.ceil((RETENTION_MS + RETENTION_CHECK_MS) / SEGMENT_MS) + 2;
/** .kfs + .index per segment, for every partition; the write-ahead file(s) and metadata store. */
const FILES_MAX = PARTITIONS * SEGMENTS_ALIVE * 2 + 50;
const CLIENT = `${CLIENTS_DIR}confluent_trickle.py`;

function countFiles(dir: string): number {
  let n = 0;
  for (const entry of Deno.readDirSync(dir)) {
    if (entry.isDirectory) n += countFiles(`${dir}/${entry.name}`);
    else n++;
  }
  return n;
}

Deno.test(`trickle: ${RATE} records/s over ${PARTITIONS} partitions for ${SECONDS} s keeps the file count bounded`, async () => {
  await requireFile(CLIENT);
  const broker = await startBroker({
    args: ["--retention-check-interval-ms", String(RETENTION_CHECK_MS)],
  });
  try {
    const created = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${REPO_ROOT}cli.ts`,
        "topics",
        "create",
        "trickle",
        "--partitions",
        String(PARTITIONS),
        "--config",
        `segment.ms=${SEGMENT_MS}`,
        "--config",
        `retention.ms=${RETENTION_MS}`,
        "--bootstrap-server",
        broker.bootstrap,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(created.code, 0, new TextDecoder().decode(created.stderr));

    const child = new Deno.Command(pythonPath(), {
      args: [
        "-u",
        CLIENT,
        broker.bootstrap,
        "trickle",
        String(PARTITIONS),
        String(RATE),
        String(SECONDS),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdout: string[] = [];
    const stderr: string[] = [];
    const drained = Promise.all([
      drainLines(child.stdout, (line) => void stdout.push(line)),
      drainLines(child.stderr, (line) => void stderr.push(line)),
    ]);
    const samples: { atS: number; files: number }[] = [];
    const started = Date.now();
    let exited = false;
    const status = child.status.finally(() => exited = true);
    // Bounded: the client ends by itself after SECONDS plus its catch-up time.
    while (!exited && Date.now() - started < (SECONDS + 180) * 1000) {
      await Promise.race([status, new Promise((r) => setTimeout(r, SAMPLE_MS))]);
      samples.push({ atS: (Date.now() - started) / 1000, files: countFiles(broker.dataDir) });
    }
    if (!exited) child.kill("SIGKILL");
    const { code } = await status;
    await drained;
    const summary = lastJsonLine(stdout.join("\n"));
    const context = `summary ${JSON.stringify(summary)}; stderr: ${stderr.slice(-5).join(" | ")}`;
    assert.equal(code, 0, context);
    assert.equal(summary?.ok, true, context);

    const max = Math.max(...samples.map((s) => s.files));
    console.log(
      `trickle: ${summary?.acked} records acked and read; files in the data directory: max ${max} ` +
        `(bound ${FILES_MAX}); samples ${samples.map((s) => s.files).join(" ")}`,
    );
    assert.ok(max <= FILES_MAX, `at most ${FILES_MAX} files, saw ${max}`);
    // Once retention has had a full period, the count stops growing.
    const settled = samples.filter((s) => s.atS >= (RETENTION_MS + 2 * SEGMENT_MS) / 1000);
    if (settled.length >= 6) {
      const third = Math.floor(settled.length / 3);
      const middle = Math.max(...settled.slice(third, 2 * third).map((s) => s.files));
      const last = Math.max(...settled.slice(2 * third).map((s) => s.files));
      assert.ok(last <= middle * 1.1 + 20, `file count grows: ${middle} then ${last}`);
    }
    assert.equal(await broker.stop(), 0, broker.logs());
  } finally {
    await broker.cleanup();
  }
});
