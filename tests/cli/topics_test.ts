/**
 * `kafscale topics` run in-process against an in-process broker: output
 * (table and JSON), exit codes and the one-line failures.
 */
import assert from "node:assert/strict";
import { runTopics } from "../../lib/cli/topics.ts";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { captureIo, tableRows } from "./cli_support.ts";

async function topics(bootstrap: string, ...args: string[]) {
  const io = captureIo();
  const code = await runTopics([...args, "--bootstrap-server", bootstrap], io);
  return { code, out: io.stdoutText(), err: io.err };
}

async function produce(bootstrap: string, topic: string, partition: number, count: number) {
  const { KafkaConnection } = await import("../../lib/client/kafka_connection.ts");
  await using conn = await KafkaConnection.connect(bootstrap);
  const records = encodeRecordBatch(
    Array.from({ length: count }, (_, i) => ({
      key: null,
      value: new TextEncoder().encode(`v${i}`),
      timestamp: Date.now(),
    })),
  );
  const res = await conn.send(API_SCHEMAS[0], 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 5_000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  });
  assert.equal(res!.responses[0].partitionResponses[0].errorCode, 0);
}

Deno.test("topics create: partitions and configs; exists fails unless --if-not-exists", async () => {
  await using b = await startTestBroker({ settings: { "default-partitions": "2" } });
  let r = await topics(
    b.bootstrap,
    "create",
    "orders",
    "--partitions",
    "3",
    "--config",
    "retention.ms=60000",
  );
  assert.deepEqual(r, { code: 0, out: 'Created topic "orders" with 3 partitions', err: [] });
  const t = await b.node.broker.topic("orders");
  assert.equal(t!.partitions, 3);
  assert.deepEqual(t!.configs, { "retention.ms": "60000" });

  r = await topics(b.bootstrap, "create", "orders");
  assert.equal(r.code, 1);
  assert.deepEqual(r.err, [
    'Cannot create topic "orders": TOPIC_ALREADY_EXISTS: Topic "orders" already exists',
  ]);
  r = await topics(b.bootstrap, "create", "orders", "--if-not-exists");
  assert.deepEqual(r, { code: 0, out: 'Topic "orders" already exists', err: [] });

  r = await topics(b.bootstrap, "create", "defaulted", "-o", "json");
  assert.equal(r.code, 0);
  const json = JSON.parse(r.out);
  assert.equal(json.partitions, 2, "the broker's default partition count");
  assert.equal(json.created, true);
  assert.equal(json.topicId, (await b.node.broker.topic("defaulted"))!.topicId);
});

Deno.test("topics create: invalid input fails with one line", async () => {
  await using b = await startTestBroker();
  const cases: [string[], number, RegExp][] = [
    [["create", "bad name"], 1, /INVALID_TOPIC_EXCEPTION/],
    [["create", "t", "--config", "compression.type=lz5"], 1, /INVALID_CONFIG.*"compression\.type"/],
    [["create", "t", "--config", "retention.ms=soon"], 1, /"retention\.ms" must be an integer/],
    [["create", "t", "--partitions", "0"], 2, /"--partitions" must be at least 1/],
    [["create", "t", "--partitions", "x"], 2, /must be an integer/],
    [["create", "t", "--config", "novalue"], 2, /KEY=VALUE/],
    [["create"], 2, /needs a topic name/],
    [["create", "a", "b"], 2, /takes one topic name/],
    [["create", "t", "--replication-factor", "3"], 2, /Unknown option/],
    [["create", "t", "-o", "yaml"], 2, /"table" or "json"/],
  ];
  for (const [args, code, pattern] of cases) {
    const r = await topics(b.bootstrap, ...args);
    assert.equal(r.code, code, args.join(" "));
    assert.equal(r.err.length, 1, args.join(" "));
    assert.ok(!r.err[0].includes("\n"), "one line");
    assert.match(r.err[0], pattern, args.join(" "));
    if (code === 2) assert.match(r.err[0], /run "kafscale topics create --help"/);
  }
  assert.deepEqual(await b.node.broker.listTopics(), []);
});

Deno.test("topics list and describe: tables and JSON", async () => {
  await using b = await startTestBroker();
  await topics(
    b.bootstrap,
    "create",
    "beta",
    "--partitions",
    "2",
    "--config",
    "retention.bytes=4096",
  );
  await topics(b.bootstrap, "create", "alpha");
  await produce(b.bootstrap, "beta", 1, 5);
  const ids = {
    alpha: (await b.node.broker.topic("alpha"))!.topicId,
    beta: (await b.node.broker.topic("beta"))!.topicId,
  };

  let r = await topics(b.bootstrap, "list");
  assert.equal(r.code, 0);
  assert.deepEqual(tableRows(r.out), [
    ["NAME", "PARTITIONS", "TOPIC-ID"],
    ["alpha", "1", ids.alpha],
    ["beta", "2", ids.beta],
  ]);
  r = await topics(b.bootstrap, "list", "--output", "json");
  assert.deepEqual(JSON.parse(r.out), [
    { name: "alpha", partitions: 1, topicId: ids.alpha },
    { name: "beta", partitions: 2, topicId: ids.beta },
  ]);

  r = await topics(b.bootstrap, "describe", "beta");
  assert.equal(r.code, 0);
  const rows = tableRows(r.out);
  assert.deepEqual(rows.slice(0, 3), [["TOPIC", "beta"], ["TOPIC-ID", ids.beta], [
    "PARTITIONS",
    "2",
  ]]);
  assert.deepEqual(rows[3], ["CONFIG", "VALUE", "SOURCE"]);
  assert.ok(rows.some((row) => row.join(" ") === "retention.bytes 4096 DYNAMIC_TOPIC_CONFIG"));
  assert.ok(rows.some((row) => row.join(" ") === "retention.ms 604800000 DEFAULT_CONFIG"));
  const header = rows.findIndex((row) => row[0] === "PARTITION");
  // The 5 records are still in the write-ahead stream: nothing sealed yet.
  const unsealed = (await b.node.broker.logs.partition("beta", 1)).unsealedBytes;
  assert.ok(unsealed > 0);
  assert.deepEqual(rows.slice(header), [
    [
      "PARTITION",
      "LEADER",
      "EPOCH",
      "REPLICAS",
      "ISR",
      "EARLIEST",
      "LATEST",
      "SEALED-BYTES",
      "UNSEALED-BYTES",
    ],
    // The leader epoch is the owner's, 1 for partition 1 (first acquisition); partition 0,
    // which nothing had opened when the metadata was read, shows the epoch its first
    // acquisition takes: 1 too.
    ["0", "0", "1", "0", "0", "0", "0", "0", "0"],
    ["1", "0", "1", "0", "0", "0", "5", "0", String(unsealed)],
  ]);

  r = await topics(b.bootstrap, "describe", "-o", "json");
  const all = JSON.parse(r.out);
  assert.deepEqual(all.map((t: { name: string }) => t.name), ["alpha", "beta"]);
  assert.deepEqual(all[1].partitions[1], {
    partition: 1,
    leader: 0,
    leaderEpoch: 1,
    replicas: [0],
    isr: [0],
    earliestOffset: 0,
    latestOffset: 5,
    sealedBytes: 0,
    unsealedBytes: unsealed,
  });
  assert.deepEqual(
    all[1].configs.find((c: { name: string }) => c.name === "retention.bytes"),
    {
      name: "retention.bytes",
      value: "4096",
      source: "DYNAMIC_TOPIC_CONFIG",
      readOnly: false,
      sensitive: false,
    },
  );

  r = await topics(b.bootstrap, "describe", "beta", "ghost");
  assert.deepEqual([r.code, r.err], [1, ['Topic "ghost" does not exist']]);
  r = await topics(b.bootstrap, "list", "extra");
  assert.equal(r.code, 2);
});

Deno.test("topics alter: partitions or configs; errors name the problem", async () => {
  await using b = await startTestBroker();
  await topics(
    b.bootstrap,
    "create",
    "t",
    "--config",
    "retention.ms=1000",
    "--config",
    "segment.bytes=1048576",
  );
  let r = await topics(b.bootstrap, "alter", "t", "--partitions", "4");
  assert.deepEqual(r, { code: 0, out: 'Altered topic "t": 4 partitions', err: [] });
  assert.equal((await b.node.broker.topic("t"))!.partitions, 4);

  r = await topics(
    b.bootstrap,
    "alter",
    "t",
    "--config",
    "retention.bytes=99",
    "--config",
    "retention.ms=",
  );
  assert.deepEqual(r, {
    code: 0,
    out: 'Altered topic "t": retention.bytes=99, retention.ms (default)',
    err: [],
  });
  assert.deepEqual((await b.node.broker.topic("t"))!.configs, {
    "segment.bytes": "1048576",
    "retention.bytes": "99",
  });

  const failures: [string[], number, RegExp][] = [
    [["alter", "t", "--partitions", "2"], 1, /INVALID_PARTITIONS/],
    [["alter", "t", "--config", "flush.ms=-1"], 1, /INVALID_CONFIG.*"flush\.ms"/],
    [["alter", "ghost", "--partitions", "9"], 1, /Topic "ghost" does not exist/],
    [["alter", "t"], 2, /either "--partitions N" or "--config K=V"/],
    [["alter", "t", "--partitions", "5", "--config", "retention.ms=1"], 2, /either/],
  ];
  for (const [args, code, pattern] of failures) {
    r = await topics(b.bootstrap, ...args);
    assert.equal(r.code, code, args.join(" "));
    assert.equal(r.err.length, 1);
    assert.match(r.err[0], pattern, args.join(" "));
  }
  assert.equal((await b.node.broker.topic("t"))!.partitions, 4);
});

Deno.test("topics delete: removes the topic; missing fails unless --if-exists", async () => {
  await using b = await startTestBroker();
  await topics(b.bootstrap, "create", "gone");
  let r = await topics(b.bootstrap, "delete", "gone");
  assert.deepEqual(r, { code: 0, out: 'Deleted topic "gone"', err: [] });
  assert.equal(await b.node.broker.topic("gone"), null);
  r = await topics(b.bootstrap, "delete", "gone");
  assert.deepEqual([r.code, r.err], [1, ['Topic "gone" does not exist']]);
  r = await topics(b.bootstrap, "delete", "gone", "--if-exists", "-o", "json");
  assert.deepEqual([r.code, JSON.parse(r.out)], [0, { name: "gone", deleted: false }]);
});

Deno.test("topics: help at every level, unknown commands, unreachable brokers", async () => {
  let io = captureIo();
  assert.equal(await runTopics(["--help"], io), 0);
  assert.match(io.stdoutText(), /Usage: kafscale topics <command>/);
  for (const sub of ["create", "list", "describe", "alter", "delete"]) {
    io = captureIo();
    assert.equal(await runTopics([sub, "--help"], io), 0, sub);
    assert.match(io.stdoutText(), new RegExp(`^Usage: kafscale topics ${sub}`), sub);
    assert.match(io.stdoutText(), /--bootstrap-server HOST:PORT/, sub);
  }
  io = captureIo();
  assert.equal(await runTopics(["frobnicate"], io), 2);
  assert.deepEqual(io.err, [
    'Unknown command "topics frobnicate"; run "kafscale topics --help" for the list',
  ]);
  io = captureIo();
  assert.equal(await runTopics([], io), 2);
  // A closed port: one line, exit 1.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  io = captureIo();
  assert.equal(await runTopics(["list", "--bootstrap-server", `127.0.0.1:${port}`], io), 1);
  assert.equal(io.err.length, 1);
  assert.match(io.err[0], new RegExp(`^Cannot connect to "127\\.0\\.0\\.1:${port}"`));
  // A list is tried in order: the closed port first, then a live broker.
  {
    await using b = await startTestBroker();
    io = captureIo();
    const both = `127.0.0.1:${port},${b.bootstrap}`;
    assert.equal(await runTopics(["list", "--bootstrap-server", both], io), 0, io.err.join());
  }
  io = captureIo();
  assert.equal(await runTopics(["list", "--bootstrap-server", "nohost"], io), 2);
  assert.match(io.err[0], /HOST:PORT/);
});
