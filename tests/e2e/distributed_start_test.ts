/**
 * Starting `kafscale serve` on a real MinIO and a real etcd (issue 5, "Start-up"): the flags,
 * the `KAFSCALE_*` variables and the AWS SDK's own `AWS_*` variables all configure the same
 * distributed broker, and an unreachable or misconfigured bucket or etcd fails the start at
 * once with exactly one stderr line that names the setting to fix.
 */
import assert from "node:assert/strict";
import { enableEtcdAuth } from "../support/etcd_auth.ts";
import type { BrokerProcess } from "./broker_process.ts";
import { startBroker } from "./broker_process.ts";
import { REPO_ROOT, runProgram } from "./client_runner.ts";
import { type Backends, distributedEnv, getHealth, startBackends } from "../support/distributed.ts";
import { createTopic, ERROR_CODES, produceProbe } from "../support/kafka_probe.ts";

/** A failed start must end within this (the S3 client retries 4 times, etcd dials 5 s). */
const FAIL_FAST_MS = 15_000;

/** Runs `serve` expecting it to fail; returns its exit code and stderr lines. */
async function failedStart(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; lines: string[]; ms: number }> {
  const start = performance.now();
  const result = await runProgram(
    [
      Deno.execPath(),
      "run",
      "-A",
      `${REPO_ROOT}cli.ts`,
      "serve",
      "--listen",
      "127.0.0.1:0",
      "--http-listen",
      "127.0.0.1:0",
      ...args,
    ],
    { timeoutMs: FAIL_FAST_MS * 2, env },
  );
  assert.equal(result.timedOut, false, `serve ${args.join(" ")} did not exit`);
  const lines = result.stderr.trimEnd().split("\n").filter((l) => l !== "");
  return { code: result.code, lines, ms: performance.now() - start };
}

async function assertServes(broker: BrokerProcess): Promise<void> {
  try {
    const ready = await getHealth(broker.httpAddr, "/readyz");
    assert.equal(ready?.status, 200, JSON.stringify(ready));
    assert.deepEqual(ready?.body.dependencies, { etcd: "ok", flush: "ok", s3: "ok" });
    const topic = `start-${Date.now()}`;
    assert.equal(await createTopic(broker.bootstrap, topic, 1, 10_000), ERROR_CODES.NONE);
    const probe = await produceProbe(broker.bootstrap, topic, 0, 10_000);
    assert.equal(probe.errorCode, ERROR_CODES.NONE, broker.logs());
    assert.match(broker.logs(), /Broker ready .*objects="s3:\/\/kafscale-test\/default\/".*etcd=/);
    assert.equal(await broker.stop(), 0, broker.logs());
  } finally {
    await broker.cleanup();
  }
}

/** Flags equivalent to `distributedEnv`. */
function distributedFlags(backends: Backends): string[] {
  const { s3, etcd } = backends;
  return [
    "--s3-bucket",
    s3.bucket,
    "--s3-endpoint",
    s3.endpoint,
    "--s3-region",
    s3.region,
    "--s3-path-style",
    "--s3-access-key",
    s3.accessKeyId,
    "--s3-secret-key",
    s3.secretAccessKey,
    "--etcd-endpoints",
    etcd.endpoint,
  ];
}

const ETCD_ROOT_PASSWORD = "root-password";

/** A loopback port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("distributed start-up: flags, KAFSCALE_* and AWS_* variables; fail fast on bad stores", async (t) => {
  await using backends = await startBackends();
  const env = distributedEnv(backends);

  await t.step("flags only", async () => {
    await assertServes(await startBroker({ args: distributedFlags(backends) }));
  });

  await t.step("KAFSCALE_* environment only", async () => {
    await assertServes(await startBroker({ env }));
  });

  await t.step("credentials from AWS_* through the SDK's default chain", async () => {
    const { KAFSCALE_S3_ACCESS_KEY, KAFSCALE_S3_SECRET_KEY, ...rest } = env;
    await assertServes(
      await startBroker({
        env: {
          ...rest,
          AWS_ACCESS_KEY_ID: KAFSCALE_S3_ACCESS_KEY,
          AWS_SECRET_ACCESS_KEY: KAFSCALE_S3_SECRET_KEY,
          // No profile files or instance metadata: the environment must be enough.
          AWS_CONFIG_FILE: "/nonexistent",
          AWS_SHARED_CREDENTIALS_FILE: "/nonexistent",
          AWS_EC2_METADATA_DISABLED: "true",
        },
      }),
    );
  });

  await t.step("bad stores fail the start with one line naming the setting", async () => {
    const cases: { what: string; env: Record<string, string>; message: RegExp }[] = [
      {
        what: "missing bucket",
        env: { ...env, KAFSCALE_S3_BUCKET: "no-such-bucket" },
        message: /"no-such-bucket".*does not exist.*"--s3-bucket" \/ KAFSCALE_S3_BUCKET/,
      },
      {
        what: "unreachable S3 endpoint",
        env: { ...env, KAFSCALE_S3_ENDPOINT: `http://127.0.0.1:${closedPort()}` },
        message:
          /not reachable: cannot connect: Connection refused.*"--s3-endpoint" \/ KAFSCALE_S3_ENDPOINT/,
      },
      {
        what: "wrong secret key",
        env: { ...env, KAFSCALE_S3_SECRET_KEY: "wrong-secret" },
        message: /access denied.*"--s3-secret-key" \/ KAFSCALE_S3_SECRET_KEY/,
      },
      {
        what: "unreachable etcd",
        env: { ...env, KAFSCALE_ETCD_ENDPOINTS: `http://127.0.0.1:${closedPort()}` },
        message: /etcd at "http:\/\/127\.0\.0\.1:\d+" is not reachable.*"--etcd-endpoints"/,
      },
    ];
    const results = await Promise.all(cases.map((c) => failedStart([], c.env)));
    cases.forEach((c, i) => {
      const { code, lines, ms } = results[i];
      const context = `${c.what}: exit ${code} after ${Math.round(ms)} ms:\n${lines.join("\n")}`;
      assert.equal(code, 1, context);
      assert.equal(lines.length, 1, `one line only. ${context}`);
      assert.match(lines[0], /^Cannot start: /, context);
      assert.match(lines[0], c.message, context);
      assert.ok(ms < FAIL_FAST_MS, `not fast. ${context}`);
    });
  });

  // Last: etcd keeps auth on from here.
  await t.step("etcd with auth: the right password serves, a wrong one fails fast", async () => {
    await enableEtcdAuth(backends.etcd.endpoint, "root", ETCD_ROOT_PASSWORD);
    const { code, lines } = await failedStart([], {
      ...env,
      KAFSCALE_ETCD_USERNAME: "root",
      KAFSCALE_ETCD_PASSWORD: "wrong-password",
    });
    assert.equal(code, 1, lines.join("\n"));
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0], /^Cannot start: etcd at .*(authentication failed|invalid)/i);
    assert.match(lines[0], /"--etcd-password" \/ KAFSCALE_ETCD_PASSWORD/);
    await assertServes(
      await startBroker({
        env: { ...env, KAFSCALE_ETCD_USERNAME: "root", KAFSCALE_ETCD_PASSWORD: ETCD_ROOT_PASSWORD },
      }),
    );
  });

  await t.step("contradictory settings fail before any store is contacted", async () => {
    const cases: { args: string[]; env: Record<string, string>; message: RegExp }[] = [
      {
        args: [],
        env: { ...env, KAFSCALE_S3_SECRET_KEY: "" },
        message: /"KAFSCALE_S3_SECRET_KEY" must not be empty/,
      },
      {
        args: ["--s3-bucket", "b", "--s3-access-key", "k"],
        env: {},
        message: /"s3-access-key" is set but "s3-secret-key" is not/,
      },
      {
        args: ["--etcd-username", "root"],
        env: {},
        message: /"etcd-username" is set but "etcd-endpoints" is not/,
      },
      {
        args: ["--s3-endpoint", "http://127.0.0.1:9000"],
        env: {},
        message: /"s3-endpoint" is set but "s3-bucket" is not/,
      },
      {
        args: ["--s3-bucket", "b", "--s3-conditional-put", "maybe"],
        env: {},
        message: /"s3-conditional-put" must be auto, on or off, got "maybe"/,
      },
      {
        args: ["--etcd-endpoints", "127.0.0.1:2379"],
        env: {},
        message: /"etcd-endpoints" entries must look like "http:\/\/127\.0\.0\.1:2379"/,
      },
    ];
    const results = await Promise.all(cases.map((c) => failedStart(c.args, c.env)));
    cases.forEach((c, i) => {
      const { code, lines } = results[i];
      const context = `${c.args.join(" ")}: exit ${code}:\n${lines.join("\n")}`;
      assert.equal(code, 2, context);
      assert.equal(lines.length, 1, context);
      assert.match(lines[0], /^Cannot start: /, context);
      assert.match(lines[0], c.message, context);
    });
  });
});
