/**
 * Store outages in the distributed deployment (issue 5, "Faults"): a broker process on a real
 * MinIO and a real etcd on loopback, one of them killed mid-stream and brought back.
 *
 * S3: a real client (confluent-kafka, acks=all, retries=0 so that every record ends in its own
 * ACK or NACK report) produces 100 000 records; MinIO is SIGKILLed after the first acks and
 * restarted once the broker has answered errors. While it is down, produce and fetch answer
 * retriable errors within the request timeout, the process stays up, `/healthz` stays 200 and
 * `/readyz` answers 503 naming the dependency. Afterwards every ACKed record is readable exactly
 * once at the offset it was acknowledged at, no NACKed record is visible (DESIGN invariants 1
 * and 5), and the broker takes writes again without a restart.
 *
 * etcd: the same shape, smaller: writes fail with retriable errors while etcd is down, and the
 * broker recovers by itself when it is back.
 */
import assert from "node:assert/strict";
import type { BrokerProcess } from "./broker_process.ts";
import { describeRun, lastJsonLine, pythonPath, runProgram } from "./client_runner.ts";
import {
  AckedProducer,
  type Backends,
  getHealth,
  pollHealth,
  startBackends,
  startDistributedBroker,
} from "../support/distributed.ts";
import {
  createTopic,
  ERROR_CODES,
  fetchProbe,
  type ProbeResult,
  produceProbe,
} from "../support/kafka_probe.ts";
import { isRetriable } from "../../lib/protocol/error_codes.ts";

const PARTITIONS = 8;
const RECORDS = 100_000;
/** MinIO is killed once this many records were acknowledged. */
const KILL_AFTER_ACKS = 10_000;
/** Kafka clients' default request timeout: answers during an outage must come sooner. */
const CLIENT_REQUEST_TIMEOUT_MS = 30_000;
/** The broker's bound on one S3 attempt here (4 attempts with backoff per operation). */
const S3_REQUEST_TIMEOUT_MS = 2_000;
const PRODUCER_DEADLINE_S = 120;
const VERIFY_DEADLINE_S = 120;
const KILL_GRACE_MS = 20_000;
/** How long the broker may take to notice an outage or a recovery in /readyz. */
const READYZ_TIMEOUT_MS = 20_000;
/**
 * The producer keeps at most this many records queued, so it is still producing when MinIO
 * comes back (otherwise, with retries=0, it fails through the rest within the outage).
 */
const PRODUCER_SETTINGS = [
  "retries=0",
  "queue.buffering.max.messages=2000",
  "max.in.flight.requests.per.connection=1",
  "linger.ms=5",
];

async function verifyAcked(
  broker: BrokerProcess,
  topic: string,
  ackedLines: string,
): Promise<Record<string, unknown>> {
  const ackedFile = await Deno.makeTempFile({ prefix: "kafscale-acked-", suffix: ".txt" });
  try {
    await Deno.writeTextFile(ackedFile, ackedLines);
    const cmd = [
      pythonPath(),
      new URL("./clients/confluent_verify_acked.py", import.meta.url).pathname,
      broker.bootstrap,
      topic,
      String(PARTITIONS),
      ackedFile,
      "--deadline-s",
      String(VERIFY_DEADLINE_S),
    ];
    const result = await runProgram(cmd, { timeoutMs: VERIFY_DEADLINE_S * 1000 + KILL_GRACE_MS });
    const summary = lastJsonLine(result.stdout);
    const context = `${describeRun(cmd, result)}\n--- broker output ---\n${broker.logs()}`;
    assert.ok(summary, `The verifier printed no summary.\n${context}`);
    assert.equal(summary.ok, true, `Acknowledged records were lost or changed.\n${context}`);
    assert.equal(summary.lost, 0, context);
    assert.equal(summary.duplicates, 0, `A record is stored twice.\n${context}`);
    return summary;
  } finally {
    await Deno.remove(ackedFile);
  }
}

function assertRetriableAnswer(what: string, probe: ProbeResult, logs: () => string): void {
  assert.ok(
    probe.errorCode !== ERROR_CODES.NONE && isRetriable(probe.errorCode),
    `${what} answered error code ${probe.errorCode}, want a retriable one.\n${logs()}`,
  );
  assert.ok(
    probe.ms < CLIENT_REQUEST_TIMEOUT_MS,
    `${what} took ${Math.round(probe.ms)} ms, longer than a client's request timeout`,
  );
}

async function withBroker(
  fn: (backends: Backends, broker: BrokerProcess) => Promise<void>,
  args: string[] = [],
): Promise<void> {
  const backends = await startBackends();
  try {
    const broker = await startDistributedBroker(backends, { brokerId: 1, args });
    try {
      await fn(backends, broker);
      assert.equal(await broker.stop(), 0, `The broker did not stop cleanly.\n${broker.logs()}`);
    } finally {
      await broker.cleanup();
    }
  } finally {
    await backends.stop();
  }
}

Deno.test({
  name: "distributed: MinIO killed during a 100 000-record acks=all produce, then restarted",
  async fn() {
    // No segment cache: reads go to the store, so a fetch during the outage needs it.
    await withBroker(async (backends, broker) => {
      const topic = `fault-s3-${Date.now()}`;
      const probeTopic = `${topic}-probe`;
      const http = broker.httpAddr;
      assert.equal(await createTopic(broker.bootstrap, probeTopic, 1, 10_000), ERROR_CODES.NONE);
      const warm = await produceProbe(broker.bootstrap, probeTopic, 0, 10_000);
      assert.equal(warm.errorCode, ERROR_CODES.NONE, "produce before the outage");
      assert.equal((await getHealth(http, "/readyz"))?.status, 200);

      const producer = await AckedProducer.start({
        bootstrap: broker.bootstrap,
        topic,
        partitions: PARTITIONS,
        count: RECORDS,
        deadlineS: PRODUCER_DEADLINE_S,
        settings: PRODUCER_SETTINGS,
      });
      let acksAtKill = 0;
      let acksAtRestart = 0;
      try {
        await producer.until(() => producer.acks.length >= KILL_AFTER_ACKS, {
          timeoutMs: 60_000,
          what: `${KILL_AFTER_ACKS} acks`,
        });
        await backends.s3.kill();
        acksAtKill = producer.acks.length;
        const killedAt = performance.now();

        // The producer is told: errors, not acks, for what cannot be stored.
        await producer.until(() => producer.nacks.length > 0, {
          timeoutMs: CLIENT_REQUEST_TIMEOUT_MS,
          what: "a failed delivery after MinIO was killed",
        });
        assert.match(producer.nacks[0].error, /storage|disk|KAFKA_STORAGE_ERROR/i);
        const firstNackMs = producer.nacks[0].atMs - killedAt;

        // Produce and fetch answer retriable errors in time; the process stays up.
        const produceDown = await produceProbe(
          broker.bootstrap,
          probeTopic,
          0,
          CLIENT_REQUEST_TIMEOUT_MS,
        );
        assertRetriableAnswer("Produce while MinIO is down", produceDown, broker.logs);
        const fetchDown = await fetchProbe(
          broker.bootstrap,
          topic,
          0,
          0,
          CLIENT_REQUEST_TIMEOUT_MS,
        );
        assertRetriableAnswer("Fetch while MinIO is down", fetchDown, broker.logs);
        const ready = await pollHealth(
          http,
          "/readyz",
          (a) => a.status === 503 && (a.body.dependencies?.s3 ?? "ok") !== "ok",
          { timeoutMs: READYZ_TIMEOUT_MS, what: "the S3 outage" },
        );
        assert.equal(ready.body.dependencies?.etcd, "ok");
        const live = await getHealth(http, "/healthz");
        assert.equal(live?.status, 200, "/healthz must stay 200: the broker is up");
        assert.equal(live?.body.status, "degraded");

        await backends.s3.restart();
        acksAtRestart = producer.acks.length;
        await pollHealth(http, "/readyz", (a) => a.status === 200, {
          timeoutMs: READYZ_TIMEOUT_MS,
          what: "recovery",
        });
        const code = await producer.exited;
        console.log(
          `S3 outage: ${acksAtKill} acks at the kill, ${acksAtRestart} at the restart, ` +
            `${producer.acks.length} in all, ${producer.nacks.length} failed deliveries; ` +
            `first failure ${Math.round(firstNackMs)} ms after the kill; probes while down: ` +
            `produce ${Math.round(produceDown.ms)} ms (code ${produceDown.errorCode}), ` +
            `fetch ${Math.round(fetchDown.ms)} ms (code ${fetchDown.errorCode}); /readyz said ` +
            `s3: ${JSON.stringify(ready.body.dependencies?.s3)}; ${producer.done}`,
        );
        assert.equal(
          code,
          1,
          `The producer reports its failed deliveries.\n${producer.describe()}`,
        );
        assert.equal(
          producer.acks.length + producer.nacks.length,
          RECORDS,
          `Every record ends in an ACK or a NACK.\n${producer.describe()}`,
        );
        assert.ok(
          producer.acks.length > acksAtRestart,
          `No record was acknowledged after MinIO came back.\n${producer.describe()}`,
        );
      } finally {
        await producer.kill();
      }

      // The broker recovered by itself: writes work again without a restart.
      const after = await produceProbe(broker.bootstrap, probeTopic, 0, CLIENT_REQUEST_TIMEOUT_MS);
      assert.equal(after.errorCode, ERROR_CODES.NONE, `Produce after recovery.\n${broker.logs()}`);

      const summary = await verifyAcked(broker, topic, producer.ackedLines());
      assert.equal(
        summary.unacked_present,
        0,
        `Records whose produce failed are visible.\n${JSON.stringify(summary)}`,
      );
      assert.equal(summary.records, producer.acks.length);
    }, [
      "--s3-request-timeout-ms",
      String(S3_REQUEST_TIMEOUT_MS),
      "--cache-bytes",
      "0",
      // The producer keeps one request in flight, so it gets one answer per flush window:
      // a short window keeps 100 000 records well inside its deadline (the default is 250 ms).
      "--flush-interval-ms",
      "20",
    ]);
  },
});

Deno.test({
  name: "distributed: etcd killed under writes, then restarted; the broker recovers by itself",
  async fn() {
    await withBroker(async (backends, broker) => {
      const topic = `fault-etcd-${Date.now()}`;
      const http = broker.httpAddr;
      assert.equal(await createTopic(broker.bootstrap, topic, 1, 10_000), ERROR_CODES.NONE);
      const before = await produceProbe(broker.bootstrap, topic, 0, 10_000, 10);
      assert.equal(before.errorCode, ERROR_CODES.NONE, "produce before the outage");

      await backends.etcd.kill();
      const produceDown = await produceProbe(
        broker.bootstrap,
        topic,
        0,
        CLIENT_REQUEST_TIMEOUT_MS,
      );
      assertRetriableAnswer("Produce while etcd is down", produceDown, broker.logs);
      const fetchDown = await fetchProbe(broker.bootstrap, topic, 0, 0, CLIENT_REQUEST_TIMEOUT_MS);
      // The partition was released by the failed commit: reloading it needs etcd.
      assertRetriableAnswer("Fetch while etcd is down", fetchDown, broker.logs);
      const ready = await pollHealth(
        http,
        "/readyz",
        (a) => a.status === 503 && (a.body.dependencies?.etcd ?? "ok") !== "ok",
        { timeoutMs: READYZ_TIMEOUT_MS, what: "the etcd outage" },
      );
      assert.equal(ready.body.dependencies?.s3, "ok");
      assert.equal((await getHealth(http, "/healthz"))?.status, 200);

      await backends.etcd.restart();
      await pollHealth(http, "/readyz", (a) => a.status === 200, {
        timeoutMs: READYZ_TIMEOUT_MS,
        what: "recovery",
      });
      // Bounded: the broker takes writes again once its lease keep-alive got through.
      const deadline = performance.now() + READYZ_TIMEOUT_MS;
      let after: ProbeResult;
      for (;;) {
        after = await produceProbe(broker.bootstrap, topic, 0, CLIENT_REQUEST_TIMEOUT_MS, 10);
        if (after.errorCode === ERROR_CODES.NONE || performance.now() > deadline) break;
        assert.ok(isRetriable(after.errorCode), `code ${after.errorCode}`);
      }
      assert.equal(after.errorCode, ERROR_CODES.NONE, `Produce after recovery.\n${broker.logs()}`);
      const read = await fetchProbe(broker.bootstrap, topic, 0, 0, CLIENT_REQUEST_TIMEOUT_MS);
      assert.equal(read.errorCode, ERROR_CODES.NONE);
      assert.ok((read.bytes ?? 0) > 0, "the records acknowledged before the outage are readable");
      console.log(
        `etcd outage: produce answered code ${produceDown.errorCode} in ` +
          `${Math.round(produceDown.ms)} ms, fetch code ${fetchDown.errorCode} in ` +
          `${Math.round(fetchDown.ms)} ms`,
      );
    });
  },
});
