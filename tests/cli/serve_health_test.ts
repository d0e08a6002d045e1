/**
 * `serve`'s health checks (issue 17): readiness of a local data directory costs O(1) whatever
 * it holds (findings 3), and S3 without conditional puts is shown on /healthz and /readyz and
 * warned about at start (finding 4).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { dataDirReadiness } from "../../lib/cli/serve.ts";
import { startHttpServer } from "../../lib/control/http_server.ts";
import { LocalObjectStore } from "../../lib/storage/local_object_store.ts";
import { Metrics } from "../../lib/util/metrics.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import { type S3Server, startS3 } from "../support/backends.ts";
import { startBroker } from "../e2e/broker_process.ts";

/** Objects in the "large" data directory: listing them all is what readiness must not do. */
const OBJECTS = 2_000;
const PARTITION_DIRS = 20;

async function largeDataDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-readyz-" });
  for (let p = 0; p < PARTITION_DIRS; p++) {
    const partition = join(dir, "default", "orders", String(p));
    await Deno.mkdir(partition, { recursive: true });
    for (let i = 0; i < OBJECTS / PARTITION_DIRS; i++) {
      const base = String(i).padStart(20, "0");
      await Deno.writeFile(join(partition, `segment-${base}.kfs`), new Uint8Array(1));
    }
  }
  return dir;
}

Deno.test("Readiness of a large data directory does not list it", async () => {
  const dir = await largeDataDir();
  const readDir = Deno.readDir;
  const readDirSync = Deno.readDirSync;
  const listed: string[] = [];
  try {
    // Any listing would show here: readiness must cost the same with 2 000 objects as with none.
    Deno.readDir = (path) => (listed.push(String(path)), readDir(path));
    Deno.readDirSync = (path) => (listed.push(String(path)), readDirSync(path));
    for (let i = 0; i < 3; i++) assert.equal(await dataDirReadiness(dir), null);
    assert.deepEqual(listed, []);
    // The stubs do see a listing (what readiness did before: list the namespace).
    await new LocalObjectStore(dir).list("default/");
    assert.ok(listed.length > 0);
  } finally {
    Deno.readDir = readDir;
    Deno.readDirSync = readDirSync;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Readiness of a data directory fails when it is gone or not a directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-readyz-" });
  try {
    const file = join(dir, "file");
    await Deno.writeFile(file, new Uint8Array(1));
    assert.equal(await dataDirReadiness(file), `"${file}" is not a directory`);
    await assert.rejects(dataDirReadiness(join(dir, "missing")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Health bodies carry a dependency's note without making it unready", async () => {
  const http = startHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    metrics: new Metrics(),
    logger: silentLogger,
    isReady: () => true,
    checks: [
      { name: "s3", check: () => Promise.resolve(null), note: () => "conditional puts are off" },
      { name: "etcd", check: () => Promise.resolve(null) },
    ],
  });
  try {
    for (const path of ["/readyz", "/healthz"]) {
      const response = await fetch(`http://127.0.0.1:${http.addr.port}${path}`);
      assert.equal(response.status, 200, path);
      assert.deepEqual(await response.json(), {
        status: "ok",
        ready: true,
        dependencies: { s3: "ok", etcd: "ok" },
        notes: { s3: "conditional puts are off" },
      });
    }
  } finally {
    await http.stop();
  }
});

function s3Flags(s3: S3Server): string[] {
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
  ];
}

Deno.test({
  name: "serve on MinIO with conditional puts off warns at start and says so on /readyz",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const s3 = await startS3();
    try {
      {
        await using broker = await startBroker({
          args: [...s3Flags(s3), "--s3-conditional-put", "off"],
        });
        assert.match(broker.logs(), /WARN S3 conditional puts are off/);
        const ready = await fetch(`http://${broker.httpAddr}/readyz`);
        assert.equal(ready.status, 200);
        const body = await ready.json();
        assert.match(body.notes?.s3 ?? "", /conditional puts are off/);
      }
      // MinIO enforces If-None-Match: probed, no warning, no note.
      await using broker = await startBroker({ args: s3Flags(s3) });
      assert.doesNotMatch(broker.logs(), /conditional puts are off/);
      const body = await (await fetch(`http://${broker.httpAddr}/healthz`)).json();
      assert.equal(body.notes, undefined);
    } finally {
      await s3.stop();
    }
  },
});
