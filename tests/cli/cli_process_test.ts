/**
 * Shell level: every `kafscale topics` and `kafscale groups` subcommand run
 * as its own process (`deno run -A cli.ts ...`, or KAFSCALE_E2E_BROKER_BIN)
 * against a live `kafscale serve` on loopback with a temp data dir,
 * checking stdout, stderr and exit codes, error paths included.
 */
import assert from "node:assert/strict";
import { startBroker } from "../e2e/broker_process.ts";
import { type ProgramResult, runProgram } from "../e2e/client_runner.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { tableRows } from "./cli_support.ts";

/** One CLI run: start-up of a Deno process plus one admin round trip. */
const CLI_TIMEOUT_MS = 30_000;

function cliCommand(): string[] {
  const bin = Deno.env.get("KAFSCALE_E2E_BROKER_BIN");
  return bin ? [bin] : [Deno.execPath(), "run", "-A", "cli.ts"];
}

async function kafscale(...args: string[]): Promise<ProgramResult> {
  const result = await runProgram([...cliCommand(), ...args], { timeoutMs: CLI_TIMEOUT_MS });
  assert.equal(result.timedOut, false, `kafscale ${args.join(" ")} timed out`);
  return result;
}

/** Asserts success with nothing on stderr; returns stdout. */
function ok(r: ProgramResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}, stderr: ${r.stderr}`);
  assert.equal(r.stderr, "", what);
  return r.stdout.trimEnd();
}

/** Asserts a failure: the exit code, nothing on stdout, exactly one stderr line. */
function fails(r: ProgramResult, code: number, pattern: RegExp, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${r.code}, stdout: ${r.stdout}`);
  assert.equal(r.stdout, "", what);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `${what}: one stderr line, got:\n${r.stderr}`);
  assert.match(lines[0], pattern, what);
}

Deno.test("kafscale topics and groups: every subcommand against a live broker", async () => {
  await using broker = await startBroker();
  const bs = ["--bootstrap-server", broker.bootstrap];

  // ---- help and usage --------------------------------------------------------------
  assert.match(ok(await kafscale("--help"), "--help"), /topics\s+Manage topics/);
  assert.match(ok(await kafscale("topics", "--help"), "topics --help"), /Commands:/);
  assert.match(ok(await kafscale("groups", "--help"), "groups --help"), /reset-offsets/);
  for (const sub of ["create", "list", "describe", "alter", "delete"]) {
    const help = ok(await kafscale("topics", sub, "--help"), `topics ${sub} --help`);
    assert.match(help, new RegExp(`^Usage: kafscale topics ${sub}`));
  }
  for (const sub of ["list", "describe", "delete", "reset-offsets"]) {
    const help = ok(await kafscale("groups", sub, "--help"), `groups ${sub} --help`);
    assert.match(help, new RegExp(`^Usage: kafscale groups ${sub}`));
  }
  fails(await kafscale("topics", "explode", ...bs), 2, /Unknown command "topics explode"/, "bad");
  fails(await kafscale("topics", "list", "--bogus", ...bs), 2, /--help" for usage$/, "bad flag");

  // ---- topics ---------------------------------------------------------------------
  let out = ok(
    await kafscale(
      "topics",
      "create",
      "orders",
      "--partitions",
      "2",
      "--config",
      "retention.ms=3600000",
      ...bs,
    ),
    "create",
  );
  assert.equal(out, 'Created topic "orders" with 2 partitions');
  fails(
    await kafscale("topics", "create", "orders", ...bs),
    1,
    /^Cannot create topic "orders": TOPIC_ALREADY_EXISTS/,
    "create twice",
  );
  ok(await kafscale("topics", "create", "orders", "--if-not-exists", ...bs), "--if-not-exists");
  fails(
    await kafscale("topics", "create", "x", "--config", "min.insync.replicas=0", ...bs),
    1,
    /INVALID_CONFIG.*"min\.insync\.replicas"/,
    "bad config",
  );
  ok(await kafscale("topics", "create", "scratch", ...bs), "create scratch");

  out = ok(await kafscale("topics", "list", ...bs), "list");
  assert.deepEqual(tableRows(out).map((r) => r.slice(0, 2)), [
    ["NAME", "PARTITIONS"],
    ["orders", "2"],
    ["scratch", "1"],
  ]);

  {
    await using conn = await KafkaConnection.connect(broker.bootstrap);
    const records = encodeRecordBatch(
      Array.from({ length: 6 }, (_, i) => ({
        key: null,
        value: new TextEncoder().encode(`m${i}`),
        timestamp: Date.now(),
      })),
    );
    const res = await conn.send(API_SCHEMAS[0], 9, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 5_000,
      topicData: [{ name: "orders", partitionData: [{ index: 1, records }] }],
    });
    assert.equal(res!.responses[0].partitionResponses[0].errorCode, 0);
  }

  const described = JSON.parse(
    ok(await kafscale("topics", "describe", "orders", "-o", "json", ...bs), "describe"),
  );
  assert.equal(described.length, 1);
  assert.deepEqual(
    described[0].partitions.map((
      p: Record<string, number>,
    ) => [p.partition, p.earliestOffset, p.latestOffset]),
    [[0, 0, 0], [1, 0, 6]],
  );
  const retention = described[0].configs.find((c: { name: string }) => c.name === "retention.ms");
  assert.deepEqual([retention.value, retention.source], ["3600000", "DYNAMIC_TOPIC_CONFIG"]);
  out = ok(await kafscale("topics", "describe", ...bs), "describe all");
  assert.match(out, /^TOPIC\s+orders$/m);
  assert.match(out, /^TOPIC\s+scratch$/m);
  fails(
    await kafscale("topics", "describe", "nope", ...bs),
    1,
    /^Topic "nope" does not exist$/,
    "describe missing",
  );

  out = ok(
    await kafscale("topics", "alter", "orders", "--partitions", "3", ...bs),
    "alter partitions",
  );
  assert.equal(out, 'Altered topic "orders": 3 partitions');
  out = ok(
    await kafscale(
      "topics",
      "alter",
      "orders",
      "--config",
      "retention.bytes=1048576",
      "--config",
      "retention.ms=",
      ...bs,
    ),
    "alter configs",
  );
  assert.equal(out, 'Altered topic "orders": retention.bytes=1048576, retention.ms (default)');
  fails(
    await kafscale("topics", "alter", "orders", "--partitions", "1", ...bs),
    1,
    /INVALID_PARTITIONS/,
    "shrink",
  );
  fails(
    await kafscale("topics", "alter", "orders", ...bs),
    2,
    /either "--partitions N"/,
    "alter nothing",
  );
  out = ok(await kafscale("topics", "describe", "orders", ...bs), "describe after alter");
  assert.match(out, /^PARTITIONS\s+3$/m);
  assert.match(out, /^retention\.bytes\s+1048576\s+DYNAMIC_TOPIC_CONFIG$/m);
  assert.match(out, /^retention\.ms\s+604800000\s+DEFAULT_CONFIG$/m);

  // ---- groups ---------------------------------------------------------------------
  out = ok(await kafscale("groups", "list", ...bs), "groups list (none)");
  assert.deepEqual(tableRows(out), [["GROUP", "STATE", "PROTOCOL-TYPE"]]);
  out = ok(
    await kafscale(
      "groups",
      "reset-offsets",
      "billing",
      "--topic",
      "orders",
      "--to-latest",
      "--dry-run",
      ...bs,
    ),
    "reset dry run",
  );
  assert.match(out, /^billing\s+orders\s+1\s+-\s+6$/m);
  assert.match(out, /dry run/);
  fails(
    await kafscale("groups", "describe", "billing", ...bs),
    1,
    /^Group "billing" does not exist$/,
    "dry",
  );
  ok(
    await kafscale(
      "groups",
      "reset-offsets",
      "billing",
      "--topic",
      "orders:1",
      "--to-offset",
      "2",
      "--execute",
      ...bs,
    ),
    "reset execute",
  );
  out = ok(await kafscale("groups", "list", "--state", "Empty", ...bs), "groups list --state");
  assert.deepEqual(tableRows(out).map((r) => r.slice(0, 2)), [["GROUP", "STATE"], [
    "billing",
    "Empty",
  ]]);
  out = ok(await kafscale("groups", "describe", "billing", ...bs), "groups describe");
  assert.match(out, /^STATE\s+Empty$/m);
  assert.match(out, /^orders\s+1\s+2\s+6\s+4\s+-$/m);
  const json = JSON.parse(
    ok(await kafscale("groups", "describe", "billing", "-o", "json", ...bs), "json"),
  );
  assert.deepEqual(
    json.offsets.map((o: Record<string, number>) => [o.partition, o.currentOffset, o.lag]),
    [
      [1, 2, 4],
    ],
  );
  fails(
    await kafscale(
      "groups",
      "reset-offsets",
      "billing",
      "--topic",
      "orders",
      "--to-earliest",
      ...bs,
    ),
    2,
    /"--dry-run".*"--execute"/,
    "reset without mode",
  );
  out = ok(await kafscale("groups", "delete", "billing", ...bs), "groups delete");
  assert.equal(out, 'Deleted group "billing"');
  fails(
    await kafscale("groups", "delete", "billing", ...bs),
    1,
    /^Group "billing" does not exist$/,
    "again",
  );

  // ---- delete, and a broker that is gone --------------------------------------------
  assert.equal(
    ok(await kafscale("topics", "delete", "orders", ...bs), "delete"),
    'Deleted topic "orders"',
  );
  fails(
    await kafscale("topics", "delete", "orders", ...bs),
    1,
    /^Topic "orders" does not exist$/,
    "again",
  );
  ok(await kafscale("topics", "delete", "orders", "--if-exists", ...bs), "--if-exists");
  out = ok(await kafscale("topics", "list", "-o", "json", ...bs), "list after delete");
  assert.deepEqual(JSON.parse(out).map((t: { name: string }) => t.name), ["scratch"]);

  assert.equal(await broker.stop(), 0);
  fails(
    await kafscale("topics", "list", ...bs),
    1,
    /^Cannot connect to "127\.0\.0\.1:\d+"/,
    "down",
  );
  fails(await kafscale("groups", "list", ...bs), 1, /^Cannot connect to/, "groups down");
});
