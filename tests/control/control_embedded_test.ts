/**
 * The gRPC control service of an embedded broker (`kafscale serve` on a local directory and
 * the embedded metadata store), driven by grpcurl — a client that is not ours and reads
 * lib/control/broker.proto itself — and by `kafscale broker`: every RPC, the bearer token,
 * INVALID_ARGUMENT for unknown partitions, and drain's embedded-mode meaning (flush and report;
 * the broker keeps serving, there is no other broker to move to).
 */
import assert from "node:assert/strict";
import { startBroker } from "../e2e/broker_process.ts";
import {
  CLIENTS_DIR,
  describeRun,
  pythonPath,
  REPO_ROOT,
  runProgram,
} from "../e2e/client_runner.ts";
import { grpcurl, GrpcurlStream } from "../support/grpcurl.ts";

const TOKEN = "s3cr3t-token";
const PARTITIONS = 4;
const RECORDS = 2_000;
const PROGRAM_TIMEOUT_MS = 90_000;

function produce(bootstrap: string, topic: string, count: number, start: number, create: boolean) {
  const cmd = [
    pythonPath(),
    `${CLIENTS_DIR}confluent_acked_producer.py`,
    bootstrap,
    topic,
    String(PARTITIONS),
    String(count),
    "--start",
    String(start),
    "--deadline-s",
    "60",
    ...(create ? [] : ["--no-create"]),
  ];
  return runProgram(cmd, { timeoutMs: PROGRAM_TIMEOUT_MS }).then((r) => ({ cmd, ...r }));
}

async function cli(args: string[]) {
  const cmd = [Deno.execPath(), "run", "-A", `${REPO_ROOT}cli.ts`, ...args];
  return { cmd, ...(await runProgram(cmd, { timeoutMs: PROGRAM_TIMEOUT_MS })) };
}

type Json = Record<string, unknown>;
type PartitionJson = {
  topic: string;
  partition: number;
  state: string;
  leader: boolean;
  logStartOffset: string;
  logEndOffset: string;
  highWatermark: string;
};

Deno.test({
  name: "control (embedded): every RPC through grpcurl and kafscale broker",
  async fn() {
    await using broker = await startBroker({ args: ["--control-token", TOKEN] });
    const addr = broker.controlAddr;
    assert.match(
      addr,
      /^127\.0\.0\.1:\d+$/,
      `No control= address in the ready line.\n${broker.logs()}`,
    );
    const topic = `control-${Date.now()}`;
    const watch = await GrpcurlStream.start(addr, "AssignmentStream/WatchAssignments", {}, {
      token: TOKEN,
    });
    try {
      // Access control: no token, a wrong token.
      const anonymous = await grpcurl(addr, "BrokerControl/GetStatus");
      assert.notEqual(anonymous.code, 0);
      assert.match(anonymous.stderr, /Code: Unauthenticated/);
      assert.match(anonymous.stderr, /Missing bearer token/);
      const wrong = await grpcurl(addr, "BrokerControl/GetStatus", {}, { token: "nope" });
      assert.match(wrong.stderr, /Code: Unauthenticated[\s\S]*Invalid bearer token/);

      const produced = await produce(broker.bootstrap, topic, RECORDS, 0, true);
      assert.equal(produced.code, 0, describeRun(produced.cmd, produced));

      // GetStatus: readiness and one entry per owned partition with real offsets.
      const status = await grpcurl(addr, "BrokerControl/GetStatus", {}, { token: TOKEN });
      assert.equal(status.code, 0, status.stderr);
      const answer = status.json as Json;
      assert.equal(answer.brokerId, "0");
      assert.equal(answer.ready, true);
      assert.match(String(answer.version), /^\d+\.\d+\.\d+/);
      const parts = (answer.partitions as PartitionJson[]).filter((p) => p.topic === topic);
      assert.equal(parts.length, PARTITIONS, JSON.stringify(answer));
      let total = 0;
      for (const p of parts) {
        assert.equal(p.state, "online");
        assert.equal(p.leader, true);
        assert.equal(p.logStartOffset, "0");
        assert.equal(p.logEndOffset, p.highWatermark);
        total += Number(p.highWatermark);
      }
      assert.equal(total, RECORDS);

      // WatchAssignments saw each partition acquired, with its epoch.
      await watch.until(
        (ms) => ms.filter((m) => (m.partition as Json)?.topic === topic).length >= PARTITIONS,
        { timeoutMs: 10_000, what: `${PARTITIONS} acquisitions` },
      );
      for (const m of watch.messages.filter((m) => (m.partition as Json)?.topic === topic)) {
        assert.equal(m.status, "acquired");
        assert.equal(m.brokerId, "0");
        assert.ok(Number(m.epoch) >= 1, JSON.stringify(m));
      }

      // TriggerFlush: unknown partitions are INVALID_ARGUMENT; all_assigned flushes every one.
      const unknown = await grpcurl(addr, "BrokerControl/TriggerFlush", {
        partitions: [{ topic, partition: PARTITIONS }, { topic: "no-such-topic", partition: 0 }],
      }, { token: TOKEN });
      assert.match(unknown.stderr, /Code: InvalidArgument/);
      assert.match(unknown.stderr, new RegExp(`"${topic}-${PARTITIONS}"`));
      assert.match(unknown.stderr, /"no-such-topic-0"/);
      const flushed = await grpcurl(addr, "BrokerControl/TriggerFlush", { all_assigned: true }, {
        token: TOKEN,
      });
      assert.equal(flushed.code, 0, flushed.stderr);
      assert.equal(
        (flushed.json!.flushed as Json[]).filter((p) => p.topic === topic).length,
        PARTITIONS,
      );

      // StreamMetrics: two samples from one sender; the latest shows on /metrics.
      const streamed = await grpcurl(
        addr,
        "BrokerControl/StreamMetrics",
        '{"broker_id":"sidecar-1","timestamp_ms":1700000000000,"gauges":{"cpu":0.25}}' +
          '{"broker_id":"sidecar-1","timestamp_ms":1700000001000,"gauges":{"cpu":0.5},' +
          '"counters":{"requests":42}}',
        { token: TOKEN },
      );
      assert.equal(streamed.code, 0, streamed.stderr);
      assert.match(String(streamed.json!.message), /Recorded 2 samples from "sidecar-1"/);
      const metrics = await (await fetch(`http://${broker.httpAddr}/metrics`)).text();
      assert.match(metrics, /kafscale_remote_gauge\{broker="sidecar-1",name="cpu"\} 0\.5/);
      assert.match(metrics, /kafscale_remote_counter\{broker="sidecar-1",name="requests"\} 42/);
      assert.match(
        metrics,
        /kafscale_remote_sample_timestamp_ms\{broker="sidecar-1"\} 1700000001000/,
      );
      const badSample = await grpcurl(addr, "BrokerControl/StreamMetrics", { gauges: { x: 1 } }, {
        token: TOKEN,
      });
      assert.match(badSample.stderr, /Code: InvalidArgument[\s\S]*broker_id/);

      // DrainPartitions in embedded mode: flushed and reported; the broker keeps serving.
      const drained = await grpcurl(addr, "BrokerControl/DrainPartitions", {
        reason: "test",
        deadline_seconds: 10,
      }, { token: TOKEN });
      assert.equal(drained.code, 0, drained.stderr);
      assert.equal((drained.json!.drained as Json[]).filter((p) => p.topic === topic).length, 4);
      assert.deepEqual(drained.json!.pending, []);
      const badDeadline = await grpcurl(addr, "BrokerControl/DrainPartitions", {
        deadline_seconds: -1,
      }, { token: TOKEN });
      assert.match(badDeadline.stderr, /Code: InvalidArgument[\s\S]*deadline_seconds/);
      const more = await produce(broker.bootstrap, topic, 200, RECORDS, false);
      assert.equal(more.code, 0, describeRun(more.cmd, more));

      // The CLI: status (JSON and table), flush, drain, watch.
      const common = ["--control-server", addr, "--control-token", TOKEN];
      const st = await cli(["broker", "status", ...common, "-o", "json"]);
      assert.equal(st.code, 0, describeRun(st.cmd, st));
      const cliStatus = JSON.parse(st.stdout);
      assert.equal(cliStatus.ready, true);
      const cliParts = (cliStatus.partitions as { topic: string; highWatermark: number }[])
        .filter((p) => p.topic === topic);
      assert.equal(cliParts.reduce((n, p) => n + p.highWatermark, 0), RECORDS + 200);
      const table = await cli(["broker", "status", ...common]);
      assert.match(table.stdout, /^READY\s+yes$/m);
      assert.match(
        table.stdout,
        new RegExp(`^${topic}\\s+0\\s+online\\s+yes\\s+0\\s+\\d+\\s+\\d+$`, "m"),
      );
      const noToken = await cli(["broker", "status", "--control-server", addr]);
      assert.equal(noToken.code, 1);
      assert.match(noToken.stderr, /GetStatus failed \(UNAUTHENTICATED\): Missing bearer token/);
      const fl = await cli(["broker", "flush", `${topic}:0`, `${topic}:1`, ...common]);
      assert.equal(fl.code, 0, describeRun(fl.cmd, fl));
      assert.match(fl.stdout, /2 partition\(s\) durable/);
      const badFlush = await cli(["broker", "flush", `${topic}:99`, ...common]);
      assert.equal(badFlush.code, 1);
      assert.match(badFlush.stderr, /TriggerFlush failed \(INVALID_ARGUMENT\): Unknown partition/);
      const dr = await cli(["broker", "drain", ...common, "--deadline-seconds", "5"]);
      assert.equal(dr.code, 0, describeRun(dr.cmd, dr));
      assert.match(dr.stdout, /4 drained, 0 pending/);
      const wa = await cli(["broker", "watch", "--count", "4", "-o", "json", ...common]);
      assert.equal(wa.code, 0, describeRun(wa.cmd, wa));
      const events = wa.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(events.length, 4);
      assert.ok(events.every((e) => e.status === "assigned" && e.brokerId === "0"), wa.stdout);
    } finally {
      await watch.stop();
    }
    assert.equal(await broker.stop(), 0, broker.logs());
    assert.match(
      broker.logs(),
      /Drain: no other broker to move partitions to; flushed reason="SIGTERM"/,
    );
  },
});
