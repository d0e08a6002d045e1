/**
 * Network partitions between a broker and its stores (issue 5, "Faults"), made with a TCP proxy
 * that stops forwarding (tests/support/tcp_proxy.ts): the stores do not refuse, they go silent,
 * so the broker's own deadlines must answer for them.
 *
 * S3 silent: produce and fetch answer retriable errors within a client's request timeout,
 * `/readyz` names the dependency, and once the partition heals the broker serves the data
 * acknowledged before it and takes new writes, without a restart.
 *
 * etcd silent for longer than the broker's session lease: etcd expires the lease (and with it
 * the broker's registration and partition ownerships). Writes stop with retriable errors; once
 * the partition heals the broker notices, takes a new lease, registers again and serves the
 * partition again, on its own.
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import { distributedEnv, getHealth, pollHealth, startBackends } from "../support/distributed.ts";
import { TcpProxy } from "../support/tcp_proxy.ts";
import {
  createTopic,
  ERROR_CODES,
  fetchProbe,
  type ProbeResult,
  produceProbe,
} from "../support/kafka_probe.ts";
import { isRetriable } from "../../lib/protocol/error_codes.ts";

/** Kafka clients' default request timeout: answers during a partition must come sooner. */
const CLIENT_REQUEST_TIMEOUT_MS = 30_000;
const S3_REQUEST_TIMEOUT_MS = 1_000;
const HEALTH_TIMEOUT_MS = 20_000;
/** The broker's session lease is 10 s (lib/cli/node.ts); etcd rounds and checks once a second. */
const LEASE_EXPIRY_TIMEOUT_MS = 30_000;
const RECOVERY_TIMEOUT_MS = 30_000;
const BROKER_ID = 1;
/** Pause between two looks at etcd or two produce attempts while waiting for a change. */
const POLL_INTERVAL_MS = 100;

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

/** Whether etcd holds the key, asked through etcd's own JSON gateway (not the broker's client). */
async function etcdHasKey(endpoint: string, key: string): Promise<boolean> {
  const response = await fetch(`${endpoint}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: btoa(key) }),
    signal: AbortSignal.timeout(5_000),
  });
  const body = await response.json();
  return Number(body.count ?? 0) > 0;
}

async function until(
  condition: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

/** Produces until the broker accepts (bounded); returns the last answer. */
async function produceUntilAccepted(
  bootstrap: string,
  topic: string,
  timeoutMs: number,
): Promise<ProbeResult> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const answer = await produceProbe(bootstrap, topic, 0, CLIENT_REQUEST_TIMEOUT_MS, 5);
    if (answer.errorCode === ERROR_CODES.NONE || performance.now() > deadline) return answer;
    assert.ok(isRetriable(answer.errorCode), `code ${answer.errorCode}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

Deno.test("distributed: S3 goes silent behind a partition, then heals", async () => {
  await using backends = await startBackends();
  await using proxy = TcpProxy.start(backends.s3.endpoint);
  const broker = await startBroker({
    brokerId: BROKER_ID,
    env: { ...distributedEnv(backends), KAFSCALE_S3_ENDPOINT: proxy.url },
    // No segment cache: a fetch of old data needs the store.
    args: ["--s3-request-timeout-ms", String(S3_REQUEST_TIMEOUT_MS), "--cache-bytes", "0"],
  });
  try {
    const topic = `partition-s3-${Date.now()}`;
    assert.equal(await createTopic(broker.bootstrap, topic, 1, 10_000), ERROR_CODES.NONE);
    const before = await produceProbe(broker.bootstrap, topic, 0, 10_000, 10);
    assert.equal(before.errorCode, ERROR_CODES.NONE);

    proxy.cut();
    const [produceCut, fetchCut] = await Promise.all([
      produceProbe(broker.bootstrap, topic, 0, CLIENT_REQUEST_TIMEOUT_MS, 10),
      fetchProbe(broker.bootstrap, topic, 0, 0, CLIENT_REQUEST_TIMEOUT_MS),
    ]);
    assertRetriableAnswer("Produce while S3 is silent", produceCut, broker.logs);
    assertRetriableAnswer("Fetch while S3 is silent", fetchCut, broker.logs);
    const ready = await pollHealth(
      broker.httpAddr,
      "/readyz",
      (a) => a.status === 503 && (a.body.dependencies?.s3 ?? "ok") !== "ok",
      { timeoutMs: HEALTH_TIMEOUT_MS, what: "the silent S3" },
    );
    assert.equal((await getHealth(broker.httpAddr, "/healthz"))?.status, 200);

    proxy.restore();
    await pollHealth(broker.httpAddr, "/readyz", (a) => a.status === 200, {
      timeoutMs: HEALTH_TIMEOUT_MS,
      what: "recovery",
    });
    const after = await produceUntilAccepted(broker.bootstrap, topic, RECOVERY_TIMEOUT_MS);
    assert.equal(after.errorCode, ERROR_CODES.NONE, broker.logs());
    const read = await fetchProbe(broker.bootstrap, topic, 0, 0, CLIENT_REQUEST_TIMEOUT_MS);
    assert.equal(read.errorCode, ERROR_CODES.NONE);
    assert.ok((read.bytes ?? 0) > 0, "the records acknowledged before the partition are served");
    console.log(
      `S3 partition: produce answered code ${produceCut.errorCode} in ` +
        `${Math.round(produceCut.ms)} ms, fetch code ${fetchCut.errorCode} in ` +
        `${Math.round(fetchCut.ms)} ms; /readyz said s3: ${
          JSON.stringify(ready.body.dependencies?.s3)
        }`,
    );
    assert.equal(await broker.stop(), 0, broker.logs());
  } finally {
    await broker.cleanup();
  }
});

Deno.test("distributed: etcd silent past the session lease; the broker re-registers and recovers", async () => {
  await using backends = await startBackends();
  await using proxy = TcpProxy.start(backends.etcd.endpoint);
  const broker = await startBroker({
    brokerId: BROKER_ID,
    env: { ...distributedEnv(backends), KAFSCALE_ETCD_ENDPOINTS: proxy.url },
  });
  try {
    const etcd = backends.etcd.endpoint;
    const registration = `/kafscale/brokers/${BROKER_ID}`;
    const topic = `partition-etcd-${Date.now()}`;
    const owner = `/kafscale/partitions/${topic}/0/owner`;
    assert.equal(await createTopic(broker.bootstrap, topic, 1, 10_000), ERROR_CODES.NONE);
    const before = await produceProbe(broker.bootstrap, topic, 0, 10_000, 10);
    assert.equal(before.errorCode, ERROR_CODES.NONE);
    assert.ok(await etcdHasKey(etcd, registration), "registered at start");
    assert.ok(await etcdHasKey(etcd, owner), "owns the partition it wrote");

    proxy.cut();
    const produceCut = await produceProbe(broker.bootstrap, topic, 0, CLIENT_REQUEST_TIMEOUT_MS);
    assertRetriableAnswer("Produce while etcd is silent", produceCut, broker.logs);
    const ready = await pollHealth(
      broker.httpAddr,
      "/readyz",
      (a) => a.status === 503 && (a.body.dependencies?.etcd ?? "ok") !== "ok",
      { timeoutMs: HEALTH_TIMEOUT_MS, what: "the silent etcd" },
    );
    // etcd itself runs on: the lease nobody renews expires, taking what hangs on it.
    await until(
      async () => !(await etcdHasKey(etcd, registration)) && !(await etcdHasKey(etcd, owner)),
      LEASE_EXPIRY_TIMEOUT_MS,
      "etcd expiring the broker's lease",
    );
    const cutMs = performance.now();

    proxy.restore();
    const after = await produceUntilAccepted(broker.bootstrap, topic, RECOVERY_TIMEOUT_MS);
    assert.equal(
      after.errorCode,
      ERROR_CODES.NONE,
      `Produce after the partition.\n${broker.logs()}`,
    );
    const recoveredMs = performance.now() - cutMs;
    await until(() => etcdHasKey(etcd, registration), RECOVERY_TIMEOUT_MS, "re-registration");
    assert.ok(await etcdHasKey(etcd, owner), "owns the partition again");
    const read = await fetchProbe(broker.bootstrap, topic, 0, 0, CLIENT_REQUEST_TIMEOUT_MS);
    assert.equal(read.errorCode, ERROR_CODES.NONE);
    assert.ok((read.bytes ?? 0) > 0, "the records acknowledged before the partition are served");
    await pollHealth(broker.httpAddr, "/readyz", (a) => a.status === 200, {
      timeoutMs: HEALTH_TIMEOUT_MS,
      what: "recovery",
    });
    assert.match(broker.logs(), /Broker session lease expired/);
    console.log(
      `etcd partition: produce answered code ${produceCut.errorCode} in ` +
        `${Math.round(produceCut.ms)} ms; /readyz said etcd: ${
          JSON.stringify(ready.body.dependencies?.etcd)
        }; writes accepted ${Math.round(recoveredMs)} ms after the partition healed`,
    );
    assert.equal(await broker.stop(), 0, broker.logs());
  } finally {
    await broker.cleanup();
  }
});
