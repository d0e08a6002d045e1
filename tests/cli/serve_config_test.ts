/**
 * `kafscale serve` settings for the distributed deployment: S3 credentials, KMS key,
 * conditional-put mode and request timeout, etcd auth and TLS files — from flags, from the
 * `KAFSCALE_*` environment (KafScale's names) and from a config file, in that precedence — and
 * the combinations that fail fast naming the setting.
 */
import assert from "node:assert/strict";
import { ConfigError, resolveServeConfig, SERVE_SETTINGS } from "../../lib/cli/serve_config.ts";
import { serveHelp, withS3Settings } from "../../lib/cli/serve.ts";

function resolve(
  flags: Record<string, string> = {},
  env: Record<string, string> = {},
  file: Record<string, string> | null = null,
) {
  return resolveServeConfig(
    new Map(Object.entries(flags)),
    env,
    file ? { path: "kafscale.conf", entries: new Map(Object.entries(file)) } : null,
  );
}

Deno.test("serve config: embedded defaults leave every remote store setting unset", () => {
  const c = resolve();
  assert.equal(c.s3Bucket, null);
  assert.deepEqual(c.etcdEndpoints, []);
  assert.equal(c.s3AccessKey, null);
  assert.equal(c.s3ConditionalPut, "auto");
  assert.equal(c.s3RequestTimeoutMs, 5_000);
  assert.equal(c.etcdUsername, null);
});

Deno.test("serve config: KafScale's environment names configure S3 and etcd", () => {
  const c = resolve({}, {
    KAFSCALE_S3_BUCKET: "segments",
    KAFSCALE_S3_ENDPOINT: "http://127.0.0.1:9000",
    KAFSCALE_S3_PATH_STYLE: "true",
    KAFSCALE_S3_ACCESS_KEY: "AKIA",
    KAFSCALE_S3_SECRET_KEY: "secret",
    KAFSCALE_S3_SESSION_TOKEN: "token",
    KAFSCALE_S3_KMS_ARN: "arn:aws:kms:us-east-1:1:key/k",
    KAFSCALE_S3_CONDITIONAL_PUT: "off",
    KAFSCALE_S3_REQUEST_TIMEOUT_MS: "1500",
    KAFSCALE_ETCD_ENDPOINTS: "http://10.0.0.1:2379, https://10.0.0.2:2379",
    KAFSCALE_ETCD_USERNAME: "root",
    KAFSCALE_ETCD_PASSWORD: "pw",
    KAFSCALE_ETCD_CA_FILE: "/etc/ca.pem",
    KAFSCALE_ETCD_CERT_FILE: "/etc/cert.pem",
    KAFSCALE_ETCD_KEY_FILE: "/etc/key.pem",
  });
  assert.equal(c.s3Bucket, "segments");
  assert.equal(c.s3PathStyle, true);
  assert.deepEqual([c.s3AccessKey, c.s3SecretKey, c.s3SessionToken], ["AKIA", "secret", "token"]);
  assert.equal(c.s3KmsArn, "arn:aws:kms:us-east-1:1:key/k");
  assert.equal(c.s3ConditionalPut, "off");
  assert.equal(c.s3RequestTimeoutMs, 1500);
  assert.deepEqual(c.etcdEndpoints, ["http://10.0.0.1:2379", "https://10.0.0.2:2379"]);
  assert.deepEqual([c.etcdUsername, c.etcdPassword], ["root", "pw"]);
  assert.deepEqual(
    [c.etcdCaFile, c.etcdCertFile, c.etcdKeyFile],
    ["/etc/ca.pem", "/etc/cert.pem", "/etc/key.pem"],
  );
});

Deno.test("serve config: flags beat the environment, which beats the config file", () => {
  const c = resolve(
    { "s3-secret-key": "from-flag" },
    { KAFSCALE_S3_ACCESS_KEY: "from-env", KAFSCALE_S3_SECRET_KEY: "from-env" },
    { "s3-bucket": "from-file", "s3-access-key": "from-file", "etcd-endpoints": "http://e:2379" },
  );
  assert.equal(c.s3Bucket, "from-file");
  assert.equal(c.s3AccessKey, "from-env");
  assert.equal(c.s3SecretKey, "from-flag");
  assert.deepEqual(c.etcdEndpoints, ["http://e:2379"]);
});

Deno.test("serve config: contradictory or malformed store settings name the setting", () => {
  const cases: [Record<string, string>, Record<string, string>, RegExp][] = [
    [{ "s3-bucket": "b", "s3-access-key": "k" }, {}, /"s3-access-key" is set but "s3-secret-key"/],
    [{ "s3-bucket": "b", "s3-secret-key": "s" }, {}, /"s3-secret-key" is set but "s3-access-key"/],
    [{ "s3-bucket": "b", "s3-session-token": "t" }, {}, /"s3-session-token" is set but/],
    [{}, { KAFSCALE_S3_ENDPOINT: "http://x:9000" }, /"s3-endpoint" is set but "s3-bucket"/],
    [{ "s3-kms-arn": "arn" }, {}, /"s3-kms-arn" is set but "s3-bucket" is not/],
    [{ "s3-path-style": "true" }, {}, /"s3-path-style" is set but "s3-bucket" is not/],
    [{ "s3-bucket": "b", "s3-endpoint": "ftp://x" }, {}, /"s3-endpoint" must be an http/],
    [{ "s3-bucket": "b", "s3-conditional-put": "yes" }, {}, /must be auto, on or off, got "yes"/],
    [{ "s3-request-timeout-ms": "10" }, {}, /"--s3-request-timeout-ms" must be between 100/],
    [{ "etcd-endpoints": "10.0.0.1:2379" }, {}, /"etcd-endpoints" entries must look like/],
    [{ "etcd-endpoints": "http://10.0.0.1" }, {}, /"etcd-endpoints" entries must look like/],
    [{ "etcd-username": "root" }, {}, /"etcd-username" is set but "etcd-endpoints" is not/],
    [{}, { KAFSCALE_ETCD_CA_FILE: "/ca" }, /"etcd-ca-file" is set but "etcd-endpoints"/],
    [
      { "etcd-endpoints": "http://e:2379", "etcd-password": "pw" },
      {},
      /"etcd-password" is set but "etcd-username" is not/,
    ],
    [
      { "etcd-endpoints": "http://e:2379", "etcd-cert-file": "/c" },
      {},
      /"etcd-cert-file" and "etcd-key-file" must be set together/,
    ],
    [{}, { KAFSCALE_S3_SECRET_KEY: " " }, /"KAFSCALE_S3_SECRET_KEY" must not be empty/],
  ];
  for (const [flags, env, message] of cases) {
    assert.throws(() => resolve(flags, env), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, message);
      return true;
    });
  }
});

Deno.test("serve --help lists every store setting with its environment variable", () => {
  const help = serveHelp();
  for (const name of ["s3-access-key", "s3-kms-arn", "etcd-password", "etcd-key-file"]) {
    const spec = SERVE_SETTINGS.find((s) => s.name === name)!;
    assert.match(help, new RegExp(`--${name} VALUE`));
    assert.ok(help.includes(`env ${spec.env}`), spec.env);
  }
  assert.ok(!/secret-key VALUE.*default/.test(help), "no default shown for secrets");
});

Deno.test("serve config: log format text by default, journald under systemd, json on request", () => {
  assert.equal(resolve().logFormat, "text");
  assert.equal(resolve({}, { JOURNAL_STREAM: "8:12345" }).logFormat, "journald");
  assert.equal(resolve({ "log-format": "json" }, { JOURNAL_STREAM: "8:12345" }).logFormat, "json");
  assert.equal(resolve({}, { KAFSCALE_LOG_FORMAT: "json" }).logFormat, "json");
  assert.throws(
    () => resolve({ "log-format": "xml" }),
    /"log-format" must be text, json or journald/,
  );
});

Deno.test("S3 start-up errors name the settings that decide them, whatever port the endpoint has", () => {
  const refused = 'S3 bucket "b" at "http://127.0.0.1:40317" is not reachable: cannot connect: ' +
    "Connection refused (os error 111) (after 4 attempts); check the endpoint URL and that the " +
    "server runs";
  assert.match(withS3Settings(new Error(refused)), /\(settings: "--s3-endpoint"/);
  const denied = 'S3 bucket "b" at "http://127.0.0.1:9000": access denied; check the credentials ' +
    "(static keys or AWS_* environment variables)";
  assert.match(withS3Settings(new Error(denied)), /\(settings: "--s3-access-key"/);
  const missing = 'S3 bucket "b" at "http://127.0.0.1:40300" does not exist';
  assert.match(withS3Settings(new Error(missing)), /\(settings: "--s3-bucket"/);
});
