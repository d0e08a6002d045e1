/**
 * Compaction in a running broker, seen through a real client (kcat, librdkafka): keyed records
 * and tombstones go in, and once the broker has sealed and compacted them a consumer reading
 * from the start sees the latest record of each key at its original offset, tombstones gone after
 * delete.retention.ms. With `compact,delete`, retention removes old segments as well.
 */
import assert from "node:assert/strict";
import { type BrokerProcess, startBroker } from "./broker_process.ts";
import { REPO_ROOT } from "./client_runner.ts";

const dec = new TextDecoder();
/** Longest wait for the broker's background passes (seal every 1 s, compaction every 5 s). */
const DEADLINE_MS = 60_000;
/** Longest one kcat or CLI run may take. */
const COMMAND_TIMEOUT_MS = 30_000;

async function run(cmd: string, args: string[], input?: string): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
  }
  // A consumer that never reaches the end (fetching inside a gap forever) fails the test.
  const timer = setTimeout(() => child.kill("SIGKILL"), COMMAND_TIMEOUT_MS);
  const out = await child.output().finally(() => clearTimeout(timer));
  assert.equal(out.code, 0, `${cmd} ${args.join(" ")}: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout);
}

function createTopic(broker: BrokerProcess, name: string, configs: string[]): Promise<string> {
  return run(Deno.execPath(), [
    "run",
    "-A",
    `${REPO_ROOT}cli.ts`,
    "topics",
    "create",
    name,
    "--partitions",
    "1",
    ...configs.flatMap((c) => ["--config", c]),
    "--bootstrap-server",
    broker.bootstrap,
  ]);
}

/** Produces `key:value` lines; an empty value is a tombstone (-Z: empty means null). */
function produce(broker: BrokerProcess, topic: string, lines: string[]): Promise<string> {
  return run(
    "kcat",
    ["-P", "-b", broker.bootstrap, "-t", topic, "-K:", "-Z", "-X", "acks=all"],
    lines.join("\n") + "\n",
  );
}

/** Everything from the start: [offset, key, value or null]. */
async function consume(
  broker: BrokerProcess,
  topic: string,
): Promise<[number, string, string | null][]> {
  const out = await run("kcat", [
    "-C",
    "-b",
    broker.bootstrap,
    "-t",
    topic,
    "-e",
    "-Z",
    "-f",
    "%o|%k|%S|%s\\n",
  ]);
  return out.split("\n").filter((l) => l !== "").map((line) => {
    const [offset, key, size, ...value] = line.split("|");
    return [Number(offset), key, size === "-1" ? null : value.join("|")];
  });
}

async function until<T>(
  what: string,
  check: () => Promise<T | null>,
  logs: () => string,
): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== null) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`Timed out waiting for ${what} (${String(last)})\n${logs()}`);
}

Deno.test("compaction e2e: kcat reads the latest record per key at its offset; tombstones go after delete.retention.ms", async () => {
  const broker = await startBroker({ args: ["--seal-max-age-ms", "1000"] });
  try {
    await createTopic(broker, "profiles", [
      "cleanup.policy=compact",
      "min.cleanable.dirty.ratio=0.01",
      "delete.retention.ms=3000",
    ]);
    const keys = Array.from({ length: 20 }, (_, i) => `user-${i}`);
    // Three rounds of every key, then tombstones for the first five.
    for (const round of [1, 2, 3]) {
      await produce(
        broker,
        "profiles",
        keys.map((k) => `${k}:v${round}-${k}`),
      );
    }
    await produce(broker, "profiles", keys.slice(0, 5).map((k) => `${k}:`));
    const all = await consume(broker, "profiles");
    assert.equal(all.length, 65, "before compaction every record is there");
    const offsetOf = new Map(all.map(([o, k, v]) => [`${k}=${v}`, o]));

    // Compacted: one record per key; the tombstones stay for now (delete.retention.ms).
    const compacted = await until("the first compaction", async () => {
      const records = await consume(broker, "profiles");
      return records.length === 20 ? records : null;
    }, () => broker.logs());
    for (let i = 1; i < compacted.length; i++) assert.ok(compacted[i][0] > compacted[i - 1][0]);
    for (const [offset, key, value] of compacted) {
      const tombstoned = keys.indexOf(key) < 5;
      assert.equal(value, tombstoned ? null : `v3-${key}`, key);
      assert.equal(offset, offsetOf.get(`${key}=${value}`), `${key} keeps its offset`);
    }
    // After delete.retention.ms the tombstones go too.
    const final = await until("tombstones past delete.retention.ms to go", async () => {
      const records = await consume(broker, "profiles");
      return records.length === 15 ? records : null;
    }, () => broker.logs());
    assert.deepEqual(final.map((r) => r[1]).sort(), keys.slice(5).sort());

    // New records continue at the high watermark, after the gaps.
    await produce(broker, "profiles", ["user-0:back"]);
    const after = await consume(broker, "profiles");
    assert.deepEqual(after[after.length - 1], [65, "user-0", "back"]);
    const metrics = await (await fetch(`http://${broker.httpAddr}/metrics`)).text();
    assert.match(metrics, /^kafscale_compaction_records_removed [1-9]/m);
    assert.match(metrics, /^kafscale_partition_dirty_ratio\{partition="0",topic="profiles"\} /m);
  } finally {
    await broker.stop();
    await broker.cleanup();
  }
});

Deno.test("compaction e2e: compact,delete applies both compaction and retention", async () => {
  const broker = await startBroker({
    args: ["--seal-max-age-ms", "1000", "--retention-check-interval-ms", "1000"],
  });
  try {
    // retention.bytes=1 deletes every segment but the newest (by size, so the outcome does not
    // depend on when compaction and retention each get their turn).
    await createTopic(broker, "both", [
      "cleanup.policy=compact,delete",
      "min.cleanable.dirty.ratio=0.01",
      "retention.bytes=1",
    ]);
    await produce(broker, "both", ["a:old", "b:old"]);
    // Sealed before the next ones arrive, so the old ones are in a segment of their own.
    await new Promise((r) => setTimeout(r, 2_500));
    await produce(broker, "both", ["c:1", "c:2", "c:3", "d:1"]);
    // Compaction keeps c:3 and d:1 of the new segment; retention removes the old segment.
    const records = await until("compaction and retention", async () => {
      const all = await consume(broker, "both");
      const keys = all.map((r) => `${r[1]}:${r[2]}`).join(",");
      return keys === "c:3,d:1" ? all : null;
    }, () => broker.logs());
    assert.deepEqual(records.map((r) => r[0]), [4, 5]);
  } finally {
    await broker.stop();
    await broker.cleanup();
  }
});
