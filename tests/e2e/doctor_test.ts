/**
 * `kafscale doctor`: each check with a failing setup — an unwritable or non-directory data
 * directory, a dead S3, bad etcd credentials, a port in use — and the passing and warning cases
 * (exit 0 all fine, 3 warnings only, 1 errors, 2 a configuration serve would refuse).
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "./client_runner.ts";
import { distributedEnv, startBackends } from "../support/distributed.ts";
import { freePorts } from "../support/backends.ts";
import { enableEtcdAuth } from "../support/etcd_auth.ts";

const dec = new TextDecoder();

async function doctor(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}cli.ts`, "doctor", ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/** Local ports for the three listeners, free when the test starts. */
function ports(): string[] {
  const [kafka, http, control] = freePorts(3);
  return [
    "--listen",
    `127.0.0.1:${kafka}`,
    "--http-listen",
    `127.0.0.1:${http}`,
    "--control-listen",
    `127.0.0.1:${control}`,
  ];
}

Deno.test("doctor: a fresh data directory and free ports pass (exit 0)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-doctor-" });
  try {
    const r = await doctor(["--data-dir", `${dir}/data`, ...ports()]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^OK +data directory +".*\/data" will be created/m);
    assert.match(r.out, /^OK +disk space +[\d.]+ GiB and \d+ inodes free/m);
    assert.match(r.out, /^OK +kafka port +127\.0\.0\.1:\d+ is free/m);
    const json = await doctor(["--data-dir", dir, "--output", "json", ...ports()]);
    assert.equal(json.code, 0, json.out);
    const checks = JSON.parse(json.out).checks;
    assert.ok(checks.every((c: { status: string }) => c.status === "ok"), json.out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("doctor: an unwritable or non-directory data directory is an error (exit 1)", async () => {
  // /proc takes no new files, even from root.
  const unwritable = await doctor(["--data-dir", "/proc/kafscale", ...ports()]);
  assert.equal(unwritable.code, 1, unwritable.out);
  assert.match(unwritable.out, /^ERROR +data directory +"\/proc" is not writable/m);
  const file = await Deno.makeTempFile({ prefix: "kafscale-doctor-" });
  try {
    const notDir = await doctor(["--data-dir", file, ...ports()]);
    assert.equal(notDir.code, 1, notDir.out);
    assert.match(notDir.out, /^ERROR +data directory +".*" is not a directory/m);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("doctor: a port in use is an error naming it", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (busy.addr as Deno.NetAddr).port;
  const dir = await Deno.makeTempDir({ prefix: "kafscale-doctor-" });
  try {
    const r = await doctor([
      "--data-dir",
      dir,
      ...ports().slice(2),
      "--listen",
      `127.0.0.1:${port}`,
    ]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, new RegExp(`^ERROR +kafka port +127\\.0\\.0\\.1:${port} is in use`, "m"));
  } finally {
    busy.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("doctor: a configuration serve would refuse exits 2 with the setting named", async () => {
  const r = await doctor(["--s3-access-key", "k"]);
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, /^ERROR config: .*s3/m);
});

Deno.test("doctor: dead S3, bad etcd credentials, and S3 without conditional puts", async () => {
  const deadS3 = await doctor([
    "--s3-bucket",
    "b",
    "--s3-endpoint",
    `http://127.0.0.1:${freePorts(1)[0]}`,
    "--s3-access-key",
    "a",
    "--s3-secret-key",
    "s",
    "--etcd-endpoints",
    `http://127.0.0.1:${freePorts(1)[0]}`,
    ...ports(),
  ]);
  assert.equal(deadS3.code, 1, deadS3.out);
  assert.match(deadS3.out, /^ERROR +s3 +S3 bucket "b" at .* is not reachable/m);
  assert.match(deadS3.out, /^ERROR +etcd +etcd at .* is not reachable/m);

  await using backends = await startBackends();
  const { etcd } = backends;
  // The stores come from the KAFSCALE_* environment, as for a broker on them.
  const env = distributedEnv(backends);
  const fine = await doctor(ports(), env);
  assert.equal(fine.code, 0, fine.out);
  assert.match(fine.out, /^OK +s3 conditional puts +enforced/m);
  assert.match(fine.out, /^OK +etcd +.* answers/m);

  const weak = await doctor(["--s3-conditional-put", "off", ...ports()], env);
  assert.equal(weak.code, 3, weak.out);
  assert.match(weak.out, /^WARN +s3 conditional puts +not enforced/m);

  await enableEtcdAuth(etcd.endpoint, "root", "root-password");
  const wrong = await doctor(
    ["--etcd-username", "root", "--etcd-password", "wrong", ...ports()],
    env,
  );
  assert.equal(wrong.code, 1, wrong.out);
  assert.match(wrong.out, /^ERROR +etcd +.*(authentication failed|invalid)/im);
  const right = await doctor(
    ["--etcd-username", "root", "--etcd-password", "root-password", ...ports()],
    env,
  );
  assert.equal(right.code, 0, right.out);
});
