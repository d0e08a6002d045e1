/**
 * `kafscale produce` and `kafscale consume` against a live broker, checked with kcat
 * (librdkafka): 10 000 records with keys and headers go in through `kafscale produce` and come
 * out of kcat byte for byte, and the other way round; keyed records land on the partition the
 * Java client (murmur2) would choose; the start options and every error path answer as
 * documented (one line, exit 1 for a failure, 2 for a bad command line).
 */
import assert from "node:assert/strict";
import { type BrokerProcess, startBroker } from "./broker_process.ts";
import { REPO_ROOT } from "./client_runner.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const RECORDS = 10_000;
const TIMEOUT_MS = 120_000;

async function run(
  cmd: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
  if (input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(enc.encode(input));
    await writer.close();
  }
  const out = await child.output().finally(() => clearTimeout(timer));
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function kafscale(broker: BrokerProcess, args: string[], input?: string) {
  return run(
    [
      Deno.execPath(),
      "run",
      "-A",
      `${REPO_ROOT}cli.ts`,
      ...args,
      "--bootstrap-server",
      broker.bootstrap,
    ],
    input,
  );
}

function kcat(broker: BrokerProcess, args: string[], input?: string) {
  return run(["kcat", "-b", broker.bootstrap, ...args], input);
}

/** Record i: a key, a value with non-ASCII text and a tab, and two headers. */
function record(i: number) {
  return { key: `key-${i}`, value: `value ${i} ✓\twith tab`, headers: { n: String(i), src: "t" } };
}

Deno.test("produce/consume: 10 000 records through kafscale produce, read back by kcat byte for byte", async () => {
  await using broker = await startBroker();
  assert.equal((await kafscale(broker, ["topics", "create", "pc", "--partitions", "4"])).code, 0);
  const input = Array.from({ length: RECORDS }, (_, i) => JSON.stringify(record(i))).join("\n");
  const produced = await kafscale(broker, [
    "produce",
    "pc",
    "--format",
    "json",
    "--compression",
    "lz4",
  ], input);
  assert.equal(produced.code, 0, produced.stderr);
  assert.equal(produced.stderr, "");

  const read = await kcat(broker, ["-C", "-t", "pc", "-e", "-q", "-f", "%k|%s|%h\\n"]);
  assert.equal(read.code, 0, read.stderr);
  const got = read.stdout.split("\n").filter((l) => l !== "").sort();
  const want = Array.from({ length: RECORDS }, (_, i) => {
    const r = record(i);
    return `${r.key}|${r.value}|n=${i},src=t`;
  }).sort();
  assert.equal(got.length, RECORDS);
  assert.deepEqual(got, want);
});

Deno.test("produce/consume: 10 000 records produced by kcat, read back by kafscale consume byte for byte", async () => {
  await using broker = await startBroker();
  assert.equal((await kafscale(broker, ["topics", "create", "kc", "--partitions", "3"])).code, 0);
  const input = Array.from({ length: RECORDS }, (_, i) => `key-${i}:value ${i} ✓`).join("\n");
  const produced = await kcat(broker, [
    "-P",
    "-t",
    "kc",
    "-K:",
    "-H",
    "src=kcat",
    "-z",
    "snappy",
    "-X",
    "acks=all",
  ], input);
  assert.equal(produced.code, 0, produced.stderr);

  const read = await kafscale(broker, [
    "consume",
    "kc",
    "--from-beginning",
    "--end",
    "--format",
    "json",
  ]);
  assert.equal(read.code, 0, read.stderr);
  const rows = read.stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
  assert.equal(rows.length, RECORDS);
  const got = rows.map((r) => `${r.key}|${r.value}|${JSON.stringify(r.headers)}`).sort();
  const want = Array.from({ length: RECORDS }, (_, i) => `key-${i}|value ${i} ✓|{"src":"kcat"}`)
    .sort();
  assert.deepEqual(got, want);
  // Offsets per partition are contiguous from 0, in order.
  for (const p of [0, 1, 2]) {
    const offsets = rows.filter((r) => r.partition === p).map((r) => r.offset);
    assert.deepEqual(offsets, offsets.map((_, i) => i), `partition ${p}`);
  }
  // A kcat-style template, --count and --partition.
  const some = await kafscale(broker, [
    "consume",
    "kc",
    "--partition",
    "1",
    "--offset",
    "2",
    "--count",
    "2",
    "--format",
    "%t/%p/%o %K %S %h\\n",
  ]);
  assert.equal(some.code, 0, some.stderr);
  const lines = some.stdout.trim().split("\n");
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^kc\/1\/2 \d+ \d+ src=kcat$/);
  assert.match(lines[1], /^kc\/1\/3 /);
});

Deno.test("produce: keyed records land where the Java client's murmur2 partitioner puts them", async () => {
  await using broker = await startBroker();
  for (const t of ["ours", "theirs"]) {
    assert.equal((await kafscale(broker, ["topics", "create", t, "--partitions", "7"])).code, 0);
  }
  const keys = Array.from({ length: 200 }, (_, i) => `user-${i * 7919}`);
  const input = keys.map((k) => `${k}:v`).join("\n");
  assert.equal(
    (await kafscale(broker, ["produce", "ours", "--key-delimiter", ":"], input)).code,
    0,
  );
  const theirs = await kcat(
    broker,
    ["-P", "-t", "theirs", "-K:", "-X", "partitioner=murmur2"],
    input,
  );
  assert.equal(theirs.code, 0, theirs.stderr);
  const where = async (topic: string) => {
    const out = await kcat(broker, ["-C", "-t", topic, "-e", "-q", "-f", "%k %p\\n"]);
    return new Map(out.stdout.trim().split("\n").map((l) => l.split(" ") as [string, string]));
  };
  assert.deepEqual(await where("ours"), await where("theirs"));
});

Deno.test("produce/consume: start options and every error path", async () => {
  await using broker = await startBroker();
  assert.equal((await kafscale(broker, ["topics", "create", "e", "--partitions", "1"])).code, 0);
  assert.equal((await kafscale(broker, ["produce", "e"], "one\ntwo\n")).code, 0);
  const midpoint = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal((await kafscale(broker, ["produce", "e", "--acks", "1"], "three\n")).code, 0);
  const fromTime = await kafscale(broker, ["consume", "e", "--from-time", midpoint, "--end"]);
  assert.equal(fromTime.stdout, "three\n");
  const all = await kafscale(broker, ["consume", "e", "--from-beginning", "--count", "3"]);
  assert.equal(all.stdout, "one\ntwo\nthree\n");

  const fails: [string[], string | undefined, number, RegExp][] = [
    [["produce", "nope"], "x\n", 1, /Topic "nope" does not exist/],
    [["produce", "e", "--partition", "5"], "x\n", 1, /no partition 5/],
    [["produce", "e", "--format", "json"], '{"key":"k"}\nnot json\n', 2, /Line 2 is not JSON/],
    [["produce", "e", "--key-delimiter", ":"], "no delimiter\n", 2, /Line 1 has no key delimiter/],
    [["produce", "e", "--acks", "2"], "x\n", 2, /"--acks" takes 0, 1 or all/],
    [["produce", "e", "--compression", "brotli"], "x\n", 2, /"--compression" takes/],
    [["produce", "e", "--header", "novalue"], "x\n", 2, /"--header" takes K=V/],
    [["produce", "e", "--file", "/nonexistent/records.txt"], undefined, 1, /Cannot read/],
    [["consume", "nope", "--end"], undefined, 1, /Topic "nope" does not exist/],
    [["consume", "e", "--from-beginning", "--offset", "1"], undefined, 2, /at most one/],
    [["consume", "e", "--from-time", "yesterday"], undefined, 2, /ISO date/],
    [["consume", "e", "--partition", "3", "--end"], undefined, 1, /no partition 3/],
    [["consume"], undefined, 2, /Expected one topic name/],
  ];
  for (const [args, input, code, message] of fails) {
    const r = await kafscale(broker, args, input);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  }
  // Nothing of the failed produces was written.
  const after = await kafscale(broker, ["consume", "e", "--from-beginning", "--end"]);
  assert.equal(after.stdout, "one\ntwo\nthree\n");
});

Deno.test("consume --group: commits what it printed; the next member of the group goes on from there", async () => {
  await using broker = await startBroker({ args: ["--group-initial-rebalance-delay-ms", "0"] });
  assert.equal((await kafscale(broker, ["topics", "create", "grp", "--partitions", "4"])).code, 0);
  const input = Array.from({ length: 100 }, (_, i) => `k${i}:v${i}`).join("\n");
  assert.equal((await kafscale(broker, ["produce", "grp", "-K", ":"], input)).code, 0);
  const first = await kafscale(broker, [
    "consume",
    "grp",
    "--group",
    "g",
    "--from-beginning",
    "--count",
    "60",
    "--format",
    "%k\\n",
  ]);
  assert.equal(first.code, 0, first.stderr);
  const rest = await kafscale(broker, [
    "consume",
    "grp",
    "--group",
    "g",
    "--end",
    "--format",
    "%k\\n",
  ]);
  assert.equal(rest.code, 0, rest.stderr);
  const a = first.stdout.trim().split("\n");
  const b = rest.stdout.trim().split("\n");
  assert.equal(a.length, 60);
  assert.equal(b.length, 40);
  assert.deepEqual(
    [...a, ...b].sort(),
    Array.from({ length: 100 }, (_, i) => `k${i}`).sort(),
    "every record once across the two members",
  );
  // The group's committed offsets are at the log end: nothing left to read.
  const described = await kafscale(broker, ["groups", "describe", "g", "--output", "json"]);
  assert.equal(described.code, 0, described.stderr);
  const offsets = JSON.parse(described.stdout).offsets as { lag: number }[];
  assert.equal(offsets.length, 4);
  assert.ok(offsets.every((o) => o.lag === 0), described.stdout);
  const again = await kafscale(broker, ["consume", "grp", "--group", "g", "--end"]);
  assert.equal(again.stdout, "");
  const bad = await kafscale(broker, ["consume", "grp", "--group", "g", "--partition", "0"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /"--group" takes a group id, and goes with neither/);
});

Deno.test("consume --group: two members share the partitions, each record goes to one; SIGTERM commits and leaves", async () => {
  await using broker = await startBroker({ args: ["--group-initial-rebalance-delay-ms", "0"] });
  assert.equal((await kafscale(broker, ["topics", "create", "two", "--partitions", "4"])).code, 0);
  const start = () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${REPO_ROOT}cli.ts`,
        "consume",
        "two",
        "--group",
        "g2",
        "--from-beginning",
        "--format",
        "%p %k\\n",
        "--bootstrap-server",
        broker.bootstrap,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = { text: "" };
    const reading = (async () => {
      for await (const chunk of child.stdout) out.text += dec.decode(chunk);
    })();
    return { child, out, reading };
  };
  const members = async () => {
    const r = await kafscale(broker, ["groups", "describe", "g2", "--output", "json"]);
    return r.code === 0
      ? JSON.parse(r.stdout).members as { assignment: { partitions: number[] }[] }[]
      : [];
  };
  const until = async (what: string, check: () => Promise<boolean> | boolean) => {
    for (let i = 0; i < 200; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`Timed out waiting for ${what}`);
  };
  const a = start();
  await until("the first member", async () => (await members()).length === 1);
  const b = start();
  try {
    await until("two members with two partitions each", async () => {
      const m = await members();
      const owned = m.map((x) => x.assignment.flatMap((t) => t.partitions).sort());
      return m.length === 2 && owned.every((p) => p.length === 2) &&
        new Set(owned.flat()).size === 4;
    });
    const input = Array.from({ length: 200 }, (_, i) => `k${i}:v${i}`).join("\n");
    assert.equal((await kafscale(broker, ["produce", "two", "-K", ":"], input)).code, 0);
    const lines = () =>
      [...a.out.text.trim().split("\n"), ...b.out.text.trim().split("\n")]
        .filter((l) => l !== "");
    await until("every record at one member", () => lines().length >= 200);
    const keys = lines().map((l) => l.split(" ")[1]).sort();
    assert.deepEqual(keys, Array.from({ length: 200 }, (_, i) => `k${i}`).sort());
    const partitionsOf = (text: string) =>
      new Set(text.trim().split("\n").filter((l) => l !== "").map((l) => l.split(" ")[0]));
    const shared = [...partitionsOf(a.out.text)].filter((p) => partitionsOf(b.out.text).has(p));
    assert.deepEqual(shared, [], "no partition read by both members");
  } finally {
    a.child.kill("SIGTERM");
    b.child.kill("SIGTERM");
    assert.equal((await a.child.status).code, 0);
    assert.equal((await b.child.status).code, 0);
    await a.reading;
    await b.reading;
  }
  // Both left (the group is empty at once, not after the session timeout) and committed all.
  await until("both members gone", async () => (await members()).length === 0);
  const described = await kafscale(broker, ["groups", "describe", "g2", "--output", "json"]);
  const offsets = JSON.parse(described.stdout).offsets as { lag: number }[];
  assert.ok(offsets.length === 4 && offsets.every((o) => o.lag === 0), described.stdout);
});
