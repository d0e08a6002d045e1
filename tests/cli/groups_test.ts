/**
 * `kafscale groups` run in-process against an in-process broker (its
 * group coordinator): list, describe with lag, delete and every
 * reset-offsets strategy, with their failures.
 */
import assert from "node:assert/strict";
import { runGroups } from "../../lib/cli/groups.ts";
import { AdminClient } from "../../lib/client/admin.ts";
import { startTestBroker, type TestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { captureIo, joinAsConsumer, tableRows } from "./cli_support.ts";

async function groups(bootstrap: string, ...args: string[]) {
  const io = captureIo();
  const code = await runGroups([...args, "--bootstrap-server", bootstrap], io);
  return { code, out: io.stdoutText(), err: io.err };
}

/** Topic "t" with 2 partitions: 10 records at timestamps base..base+9 in p0, 4 in p1. */
async function setup(b: TestBroker, base: number) {
  const admin = await AdminClient.connect(b.bootstrap);
  try {
    await admin.createTopic("t", 2, {});
    const conn = await b.connect();
    for (const [partition, count] of [[0, 10], [1, 4]]) {
      const records = encodeRecordBatch(
        Array.from({ length: count }, (_, i) => ({
          key: null,
          value: new TextEncoder().encode(`v${i}`),
          timestamp: base + i,
        })),
      );
      const res = await conn.send(API_SCHEMAS[0], 9, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 5_000,
        topicData: [{ name: "t", partitionData: [{ index: partition, records }] }],
      });
      assert.equal(res!.responses[0].partitionResponses[0].errorCode, 0);
    }
    await admin.commitOffsets("empty-group", [{
      topic: "t",
      partition: 0,
      offset: 6,
      metadata: "",
    }]);
  } finally {
    admin.close();
  }
}

async function committed(b: TestBroker, group: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const o of await b.node.broker.metadata.fetchOffsets(group)) {
    out[`${o.topic}-${o.partition}`] = o.offset;
  }
  return out;
}

Deno.test("groups list and describe: states, members, assignments and lag", async () => {
  await using b = await startTestBroker();
  await setup(b, 1_000);
  await using member = await joinAsConsumer(b.bootstrap, "live-group", "t", [0, 1]);

  let r = await groups(b.bootstrap, "list");
  assert.equal(r.code, 0);
  assert.deepEqual(tableRows(r.out), [
    ["GROUP", "STATE", "PROTOCOL-TYPE"],
    ["empty-group", "Empty", "-"], // Offsets only, committed by an admin: no protocol type.
    ["live-group", "Stable", "consumer"],
  ]);
  r = await groups(b.bootstrap, "list", "--state", "stable", "-o", "json");
  assert.deepEqual(JSON.parse(r.out), [
    { groupId: "live-group", state: "Stable", protocolType: "consumer" },
  ]);
  r = await groups(b.bootstrap, "list", "--state", "Empty,Stable");
  assert.equal(tableRows(r.out).length, 3);

  r = await groups(b.bootstrap, "describe", "empty-group");
  assert.equal(r.code, 0, r.err.join());
  let rows = tableRows(r.out);
  assert.deepEqual(rows.slice(0, 2), [["GROUP", "empty-group"], ["STATE", "Empty"]]);
  assert.deepEqual(rows.slice(-2), [
    ["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID"],
    ["t", "0", "6", "10", "4", "-"],
  ]);

  r = await groups(b.bootstrap, "describe", "live-group", "-o", "json");
  const described = JSON.parse(r.out);
  assert.equal(described.state, "Stable");
  assert.equal(described.protocol, "range");
  assert.deepEqual(described.members.map((m: { memberId: string }) => m.memberId), [
    member.memberId,
  ]);
  assert.deepEqual(described.members[0].assignment, [{ topic: "t", partitions: [0, 1] }]);
  assert.deepEqual(
    described.offsets.map((
      o: Record<string, unknown>,
    ) => [o.partition, o.currentOffset, o.logEndOffset, o.lag, o.memberId]),
    [[0, null, 10, null, member.memberId], [1, null, 4, null, member.memberId]],
  );
  r = await groups(b.bootstrap, "describe", "live-group");
  rows = tableRows(r.out);
  assert.ok(rows.some((row) => row[0] === member.memberId && row.at(-1) === "t:0,1"), r.out);

  r = await groups(b.bootstrap, "describe", "nobody");
  assert.deepEqual([r.code, r.err], [1, ['Group "nobody" does not exist']]);
});

Deno.test("groups reset-offsets: every strategy, dry run and execute", async () => {
  await using b = await startTestBroker();
  const base = 1_700_000_000_000;
  await setup(b, base);
  const reset = (...args: string[]) => groups(b.bootstrap, "reset-offsets", "empty-group", ...args);

  let r = await reset("--topic", "t", "--to-earliest", "--dry-run");
  assert.equal(r.code, 0, r.err.join());
  assert.deepEqual(tableRows(r.out), [
    ["GROUP", "TOPIC", "PARTITION", "PREVIOUS-OFFSET", "NEW-OFFSET"],
    ["empty-group", "t", "0", "6", "0"],
    ["empty-group", "t", "1", "-", "0"],
    ["(dry run: nothing was committed; use --execute to commit)"],
  ]);
  assert.deepEqual(await committed(b, "empty-group"), { "t-0": 6 }, "dry run commits nothing");

  const plans: [string[], Record<string, number>][] = [
    [["--to-latest"], { "t-0": 10, "t-1": 4 }],
    [["--to-offset", "2"], { "t-0": 2, "t-1": 2 }],
    [["--to-offset", "7"], { "t-0": 7, "t-1": 4 }], // clamped to the log end
    [["--shift-by", "-5"], { "t-0": 2, "t-1": 0 }], // clamped to the earliest
    [["--shift-by", "3"], { "t-0": 5, "t-1": 3 }],
    [["--to-datetime", new Date(base + 3).toISOString()], { "t-0": 3, "t-1": 3 }],
    [["--to-datetime", new Date(base + 60_000).toISOString()], { "t-0": 10, "t-1": 4 }],
    [["--to-earliest"], { "t-0": 0, "t-1": 0 }],
  ];
  for (const [strategy, expected] of plans) {
    r = await reset("--topic", "t", ...strategy, "--execute", "-o", "json");
    assert.equal(r.code, 0, `${strategy.join(" ")}: ${r.err.join()}`);
    const json = JSON.parse(r.out);
    assert.equal(json.executed, true);
    assert.deepEqual(await committed(b, "empty-group"), expected, strategy.join(" "));
  }
  // One partition only.
  r = await reset("--topic", "t:1", "--to-latest", "--execute");
  assert.equal(r.code, 0);
  assert.deepEqual(await committed(b, "empty-group"), { "t-0": 0, "t-1": 4 });
});

Deno.test("groups reset-offsets: refuses active groups and bad arguments", async () => {
  await using b = await startTestBroker();
  await setup(b, 1_000);
  await using _member = await joinAsConsumer(b.bootstrap, "live-group", "t", [0]);
  let r = await groups(
    b.bootstrap,
    "reset-offsets",
    "live-group",
    "--topic",
    "t",
    "--to-earliest",
    "--execute",
  );
  assert.equal(r.code, 1);
  assert.match(r.err[0], /Cannot reset the offsets of group "live-group": it is Stable/);
  assert.deepEqual(await committed(b, "live-group"), {});

  const usage: [string[], RegExp][] = [
    [["--topic", "t", "--dry-run"], /Choose a reset target/],
    [["--topic", "t", "--to-earliest", "--to-latest", "--dry-run"], /Choose one reset target/],
    [["--topic", "t", "--to-earliest"], /"--dry-run".*"--execute"/],
    [["--topic", "t", "--to-earliest", "--dry-run", "--execute"], /"--dry-run".*"--execute"/],
    [["--to-earliest", "--dry-run"], /needs "--topic T"/],
    [["--topic", "t", "--to-offset", "-1", "--dry-run"], /at least 0/],
    [["--topic", "t", "--to-datetime", "yesterday", "--dry-run"], /ISO date-time/],
    [["--topic", "t:x", "--to-earliest", "--dry-run"], /must be an integer/],
  ];
  for (const [args, pattern] of usage) {
    r = await groups(b.bootstrap, "reset-offsets", "empty-group", ...args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.err[0], pattern, args.join(" "));
  }
  const failures: [string[], RegExp][] = [
    [["--topic", "ghost", "--to-earliest", "--dry-run"], /Topic "ghost" does not exist/],
    [["--topic", "t:5", "--to-earliest", "--dry-run"], /no partition 5/],
    [["--topic", "t:1", "--shift-by", "1", "--dry-run"], /no committed offset for "t-1"/],
  ];
  for (const [args, pattern] of failures) {
    r = await groups(b.bootstrap, "reset-offsets", "empty-group", ...args);
    assert.equal(r.code, 1, args.join(" "));
    assert.match(r.err[0], pattern, args.join(" "));
  }
  assert.deepEqual(await committed(b, "empty-group"), { "t-0": 6 });
});

Deno.test("groups delete: empty groups go, active and unknown ones fail", async () => {
  await using b = await startTestBroker();
  await setup(b, 1_000);
  await using member = await joinAsConsumer(b.bootstrap, "live-group", "t", [0]);
  let r = await groups(b.bootstrap, "delete", "live-group");
  assert.equal(r.code, 1);
  assert.match(r.err[0], /Cannot delete group "live-group": it has active members/);
  r = await groups(b.bootstrap, "delete", "empty-group");
  assert.deepEqual(r, { code: 0, out: 'Deleted group "empty-group"', err: [] });
  assert.deepEqual(await committed(b, "empty-group"), {});
  r = await groups(b.bootstrap, "delete", "empty-group");
  assert.deepEqual([r.code, r.err], [1, ['Group "empty-group" does not exist']]);
  await member.leave();
  r = await groups(b.bootstrap, "delete", "live-group", "-o", "json");
  assert.deepEqual([r.code, JSON.parse(r.out)], [0, { groupId: "live-group", deleted: true }]);
});

Deno.test("groups: help at every level and unknown commands", async () => {
  let io = captureIo();
  assert.equal(await runGroups(["--help"], io), 0);
  assert.match(io.stdoutText(), /Usage: kafscale groups <command>/);
  for (const sub of ["list", "describe", "delete", "reset-offsets"]) {
    io = captureIo();
    assert.equal(await runGroups([sub, "-h"], io), 0, sub);
    assert.match(io.stdoutText(), new RegExp(`^Usage: kafscale groups ${sub}`), sub);
  }
  io = captureIo();
  assert.equal(await runGroups(["rebalance"], io), 2);
  assert.equal(io.err.length, 1);
  io = captureIo();
  assert.equal(await runGroups(["describe", "--bootstrap-server", "127.0.0.1:9"], io), 2);
  assert.match(io.err[0], /needs a group id/);
});

Deno.test("groups describe: a KIP-848 group is described through ConsumerGroupDescribe", async () => {
  await using b = await startTestBroker();
  await setup(b, 1_000);
  const conn = await b.connect();
  const joined = (await conn.send(API_SCHEMAS[68], 1, {
    groupId: "kip848-group",
    memberId: "m-1",
    memberEpoch: 0,
    instanceId: null,
    rackId: null,
    rebalanceTimeoutMs: 30_000,
    subscribedTopicNames: ["t"],
    subscribedTopicRegex: null,
    serverAssignor: "range",
    topicPartitions: null,
  }))!;
  assert.equal(joined.errorCode, 0, joined.errorMessage ?? "");
  const r = await groups(b.bootstrap, "describe", "kip848-group", "-o", "json");
  assert.equal(r.code, 0, r.err.join());
  const described = JSON.parse(r.out);
  assert.equal(described.state, "Stable");
  assert.equal(described.protocolType, "consumer");
  assert.equal(described.protocol, "range");
  assert.deepEqual(described.members.map((m: { memberId: string }) => m.memberId), ["m-1"]);
  assert.deepEqual(described.members[0].assignment, [{ topic: "t", partitions: [0, 1] }]);
});
