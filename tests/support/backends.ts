/**
 * Real etcd and S3-compatible (MinIO) servers for tests, on 127.0.0.1 with free ports and temp
 * data dirs, installed by `bash scripts/setup_backends.sh`.
 *
 * Owns the server processes: start, readiness (polled with a deadline), stop (SIGTERM, data dir
 * removed), kill (SIGKILL, data kept) and restart (same ports, same data). Every server runs under
 * a small `sh` watchdog whose stdin is a pipe from this process: when the test process dies
 * without stopping it, the pipe closes and the watchdog SIGKILLs the server, so no server outlives
 * a test run. An `unload` handler also kills what is left and removes the data dirs.
 *
 * A test file that shares one server between many tests starts it in a first test and stops it
 * in a last one, both with the op and resource sanitizers off (the process outlives the test
 * that started it); a test that starts its own server stops it in `finally`.
 *
 * Missing binaries fail the test with a message that says how to install them; they never skip.
 *
 * Must not import the code under test: the S3 bucket is created with a hand-signed request.
 */

/** The etcd binary; Debian's `etcd-server` package installs it here. */
const ETCD_BINARY_DEFAULT = "/usr/bin/etcd";
/** The MinIO binary that `scripts/setup_backends.sh` builds. */
import { freePorts } from "./ports.ts";

const MINIO_BINARY_DEFAULT = new URL("../../.tools/bin/minio", import.meta.url).pathname;
/** How long a server may take to answer its health check after being spawned. */
const READY_TIMEOUT_MS = 30_000;
/** Bound on one health probe. */
const PROBE_TIMEOUT_MS = 1_000;
/** Pause between health probes. */
const PROBE_INTERVAL_MS = 25;
/** How long a SIGTERM may take before the server is SIGKILLed. */
const STOP_TIMEOUT_MS = 10_000;
/** Lines of the server's log quoted in failure messages. */
const LOG_TAIL_LINES = 30;

const S3_REGION = "us-east-1";
const S3_BUCKET = "kafscale-test";
const S3_ACCESS_KEY_ID = "kafscale-test-user";
const S3_SECRET_ACCESS_KEY = "kafscale-test-secret-key";

/** Runs the server as a child and SIGKILLs it once this process's end of stdin closes. */
const WATCHDOG_SCRIPT = `
log="$1"; pidfile="$2"; shift 2
"$@" >>"$log" 2>&1 </dev/null &
server=$!
echo "$server" >"$pidfile"
# An asynchronous list gets /dev/null as stdin, so the watchdog reads a copy of ours.
exec 3<&0
(while read -r _; do :; done <&3; kill -KILL "$server" 2>/dev/null) &
watchdog=$!
wait "$server"; status=$?
kill "$watchdog" 2>/dev/null
exit "$status"
`;

export interface BackendServer {
  /** SIGTERM and wait for exit (SIGKILL after a deadline), then remove the data dir. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL (a crash) and wait for exit; the data dir is kept for `restart()`. */
  kill(): Promise<void>;
  /** Starts the server again on the same ports and data dir (killing it first if it runs). */
  restart(): Promise<void>;
  /** The server's log file (stdout and stderr). */
  readonly logPath: string;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface EtcdServer extends BackendServer {
  /** `http://127.0.0.1:PORT` (`https://` with `tls`), the client URL. */
  readonly endpoint: string;
}

/** PEM files for an etcd that serves https and requires client certificates signed by `caFile`. */
export interface EtcdTlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
  /** The client certificate the start-up probe presents. */
  clientCertFile: string;
  clientKeyFile: string;
}

export interface S3Server extends BackendServer {
  /** `http://127.0.0.1:PORT`; use path-style addressing. */
  readonly endpoint: string;
  readonly bucket: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/**
 * Starts a single-member etcd on loopback. `KAFSCALE_ETCD_BIN` overrides the binary; `extraArgs`
 * go after the usual flags; `tls` makes it serve https with mutual TLS.
 */
export async function startEtcd(
  opts: { extraArgs?: string[]; tls?: EtcdTlsFiles } = {},
): Promise<EtcdServer> {
  const binary = Deno.env.get("KAFSCALE_ETCD_BIN") ?? ETCD_BINARY_DEFAULT;
  await requireBinary(binary, "etcd");
  return await withFreshPorts(2, async ([clientPort, peerPort]) => {
    const tls = opts.tls;
    const endpoint = `${tls ? "https" : "http"}://127.0.0.1:${clientPort}`;
    const tlsArgs = tls
      ? [
        `--cert-file=${tls.certFile}`,
        `--key-file=${tls.keyFile}`,
        `--trusted-ca-file=${tls.caFile}`,
        "--client-cert-auth",
      ]
      : [];

    const peer = `http://127.0.0.1:${peerPort}`;
    const server = new ManagedServer("etcd", binary, (dataDir) => ({
      args: [
        "--name=test",
        `--data-dir=${dataDir}/etcd`,
        `--listen-client-urls=${endpoint}`,
        `--advertise-client-urls=${endpoint}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=test=${peer}`,
        "--initial-cluster-state=new",
        "--logger=zap",
        "--log-level=warn",
        // Tests do not survive power loss; skipping fsync makes every write ~10x faster.
        "--unsafe-no-fsync",
        ...tlsArgs,
        ...(opts.extraArgs ?? []),
      ],
      env: {},
    }), () => probeEtcd(endpoint, tls));
    await server.start();
    return Object.assign(server.controls(), { endpoint });
  });
}

/**
 * Starts MinIO on loopback with one bucket (`kafscale-test`) and static credentials.
 * `KAFSCALE_MINIO_BIN` overrides the binary.
 */
export async function startS3(): Promise<S3Server> {
  const binary = Deno.env.get("KAFSCALE_MINIO_BIN") ?? MINIO_BINARY_DEFAULT;
  await requireBinary(binary, "MinIO");
  return await withFreshPorts(2, async ([port, consolePort]) => {
    const endpoint = `http://127.0.0.1:${port}`;
    const server = new ManagedServer("minio", binary, (dataDir) => ({
      args: [
        "server",
        `${dataDir}/minio`,
        "--address",
        `127.0.0.1:${port}`,
        "--console-address",
        `127.0.0.1:${consolePort}`,
        "--quiet",
      ],
      env: {
        MINIO_ROOT_USER: S3_ACCESS_KEY_ID,
        MINIO_ROOT_PASSWORD: S3_SECRET_ACCESS_KEY,
        MINIO_BROWSER: "off",
        MINIO_UPDATE: "off",
        MINIO_CI_CD: "1",
        // Loopback only: keep MinIO from probing the network or phoning home.
        MINIO_CALLHOME_ENABLE: "off",
      },
    }), () => probeMinio(endpoint));
    await server.start();
    try {
      await createBucket(endpoint, S3_BUCKET);
    } catch (error) {
      await server.stop();
      throw error;
    }
    return Object.assign(server.controls(), {
      endpoint,
      bucket: S3_BUCKET,
      region: S3_REGION,
      accessKeyId: S3_ACCESS_KEY_ID,
      secretAccessKey: S3_SECRET_ACCESS_KEY,
    });
  });
}

interface LaunchSpec {
  args: string[];
  env: Record<string, string>;
}

/** Servers not stopped yet, killed by the `unload` handler. */
const liveServers = new Set<ManagedServer>();

globalThis.addEventListener("unload", () => {
  for (const server of liveServers) server.killSync();
});

class ManagedServer {
  readonly #name: string;
  readonly #binary: string;
  readonly #launch: (dataDir: string) => LaunchSpec;
  readonly #probe: () => Promise<boolean>;
  #dataDir = "";
  #child: Deno.ChildProcess | null = null;
  #watchdogPipe: WritableStreamDefaultWriter<Uint8Array> | null = null;
  #stopped = false;

  constructor(
    name: string,
    binary: string,
    launch: (dataDir: string) => LaunchSpec,
    probe: () => Promise<boolean>,
  ) {
    this.#name = name;
    this.#binary = binary;
    this.#launch = launch;
    this.#probe = probe;
  }

  get logPath(): string {
    return `${this.#dataDir}/server.log`;
  }

  controls(): BackendServer {
    return {
      stop: () => this.stop(),
      kill: () => this.kill(),
      restart: () => this.restart(),
      logPath: this.logPath,
      [Symbol.asyncDispose]: () => this.stop(),
    };
  }

  async start(): Promise<void> {
    this.#dataDir = await Deno.makeTempDir({ prefix: `kafscale-${this.#name}-` });
    liveServers.add(this);
    try {
      await this.#spawn();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  async restart(): Promise<void> {
    if (this.#stopped) {
      throw new Error(`The ${this.#name} test server was stopped; start a new one`);
    }
    await this.kill();
    await this.#spawn();
  }

  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    const pid = await this.#serverPid();
    if (pid !== null) signal(pid, "SIGKILL");
    await this.#reap(child);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const child = this.#child;
    if (child) {
      const pid = await this.#serverPid();
      if (pid !== null) signal(pid, "SIGTERM");
      const timer = setTimeout(() => {
        if (pid !== null) signal(pid, "SIGKILL");
      }, STOP_TIMEOUT_MS);
      try {
        await this.#reap(child);
      } finally {
        clearTimeout(timer);
      }
    }
    liveServers.delete(this);
    if (this.#dataDir) await Deno.remove(this.#dataDir, { recursive: true }).catch(() => {});
  }

  /** For the `unload` handler: no awaiting possible there. */
  killSync(): void {
    try {
      const pid = Number(Deno.readTextFileSync(`${this.#dataDir}/server.pid`).trim());
      if (pid > 0) signal(pid, "SIGKILL");
    } catch {
      // Not started or already gone.
    }
    try {
      this.#child?.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    try {
      Deno.removeSync(this.#dataDir, { recursive: true });
    } catch {
      // Nothing to remove.
    }
  }

  async #spawn(): Promise<void> {
    const { args, env } = this.#launch(this.#dataDir);
    await Deno.remove(`${this.#dataDir}/server.pid`).catch(() => {});
    const child = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        WATCHDOG_SCRIPT,
        "watchdog",
        this.logPath,
        `${this.#dataDir}/server.pid`,
        this.#binary,
        ...args,
      ],
      env,
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#child = child;
    this.#watchdogPipe = child.stdin.getWriter();
    let exited = false;
    child.status.then(() => exited = true, () => exited = true);
    const deadline = performance.now() + READY_TIMEOUT_MS;
    while (!(await this.#probe())) {
      if (exited) {
        await this.#reap(child);
        throw new Error(
          `The ${this.#name} test server exited during start-up; its log:\n${await this
            .#logTail()}`,
        );
      }
      if (performance.now() > deadline) {
        await this.kill();
        throw new Error(
          `The ${this.#name} test server did not become ready within ${READY_TIMEOUT_MS} ms; ` +
            `its log:\n${await this.#logTail()}`,
        );
      }
      await delay(PROBE_INTERVAL_MS);
    }
  }

  /** Waits for the watchdog (which exits with the server) and closes its stdin pipe. */
  async #reap(child: Deno.ChildProcess): Promise<void> {
    await child.status;
    if (this.#child === child) this.#child = null;
    const pipe = this.#watchdogPipe;
    this.#watchdogPipe = null;
    await pipe?.close().catch(() => {});
  }

  async #serverPid(): Promise<number | null> {
    // The watchdog writes the pid right after forking; a kill may come before it did.
    const deadline = performance.now() + PROBE_TIMEOUT_MS;
    while (performance.now() < deadline) {
      try {
        const pid = Number((await Deno.readTextFile(`${this.#dataDir}/server.pid`)).trim());
        if (pid > 0) return pid;
      } catch {
        // Not written yet.
      }
      await delay(PROBE_INTERVAL_MS);
    }
    return null;
  }

  async #logTail(): Promise<string> {
    try {
      const lines = (await Deno.readTextFile(this.logPath)).trimEnd().split("\n");
      return lines.slice(-LOG_TAIL_LINES).join("\n");
    } catch {
      return "(no log)";
    }
  }
}

async function requireBinary(path: string, what: string): Promise<void> {
  try {
    const info = await Deno.stat(path);
    if (info.isFile && (info.mode === null || (info.mode & 0o111) !== 0)) return;
  } catch {
    // Reported below.
  }
  throw new Error(
    `Cannot start the ${what} test server: "${path}" is missing or not executable; ` +
      `run "bash scripts/setup_backends.sh" to install it`,
  );
}

/** Ports that were free a moment ago (listen on port 0, note the port, close). */
/** Starts of a test server on new ports when the ones found free were taken before it bound them. */
const PORT_ATTEMPTS = 3;

/**
 * Runs `start` on `count` free ports; when the server reports a port already in use (another
 * suite running side by side took it between the check and the bind), again on new ones.
 */
async function withFreshPorts<T>(
  count: number,
  start: (ports: number[]) => Promise<T>,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await start(freePorts(count));
    } catch (error) {
      if (attempt >= PORT_ATTEMPTS || !/already in use/i.test(String(error))) throw error;
    }
  }
}

/** Free loopback ports below the ephemeral range (`ports.ts`). */
export { freePorts };

async function probeEtcd(endpoint: string, tls?: EtcdTlsFiles): Promise<boolean> {
  // With TLS, a client made per probe: the server's restarts probe again long after this one.
  const client = tls
    ? Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(tls.caFile)],
      cert: await Deno.readTextFile(tls.clientCertFile),
      key: await Deno.readTextFile(tls.clientKeyFile),
    })
    : undefined;
  try {
    const body = await probe(`${endpoint}/health`, client);
    return body !== null && /"health"\s*:\s*"true"/.test(body);
  } finally {
    client?.close();
  }
}

async function probeMinio(endpoint: string): Promise<boolean> {
  return (await probe(`${endpoint}/minio/health/ready`)) !== null;
}

/** The body of a 200 answer, or null. */
async function probe(url: string, client?: Deno.HttpClient): Promise<string | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS), client });
    const body = await response.text();
    return response.ok ? body : null;
  } catch {
    return null;
  }
}

function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch {
    // Already exited.
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- A minimal AWS Signature V4 client for creating the bucket ------------------------------

async function createBucket(endpoint: string, bucket: string): Promise<void> {
  const url = new URL(`${endpoint}/${bucket}`);
  // MinIO answers its readiness probe before it serves bucket calls on a busy machine (503
  // XMinioServerNotInitialized): retried until the start-up deadline.
  const deadline = performance.now() + READY_TIMEOUT_MS;
  for (;;) {
    const headers = await signV4("PUT", url, new Uint8Array(0));
    const response = await fetch(url, {
      method: "PUT",
      headers,
      signal: AbortSignal.timeout(READY_TIMEOUT_MS),
    });
    const body = await response.text();
    if (response.ok || body.includes("BucketAlreadyOwnedByYou")) return;
    if (response.status !== 503 || performance.now() > deadline) {
      throw new Error(`Cannot create the test bucket "${bucket}": HTTP ${response.status} ${body}`);
    }
    await delay(PROBE_INTERVAL_MS);
  }
}

async function signV4(method: string, url: URL, body: Uint8Array): Promise<Headers> {
  const now = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const date = now.slice(0, 8);
  const payloadHash = hex(await sha256(body));
  const signed: Record<string, string> = {
    host: url.host,
    "x-amz-content-sha256": payloadHash,
    "x-amz-date": now,
  };
  const names = Object.keys(signed).sort();
  const canonicalRequest = [
    method,
    url.pathname,
    url.search.slice(1),
    ...names.map((n) => `${n}:${signed[n]}`),
    "",
    names.join(";"),
    payloadHash,
  ].join("\n");
  const scope = `${date}/${S3_REGION}/s3/aws4_request`;
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    now,
    scope,
    hex(await sha256(new TextEncoder().encode(canonicalRequest))),
  ].join("\n");
  let key: Uint8Array = new TextEncoder().encode(`AWS4${S3_SECRET_ACCESS_KEY}`);
  for (const part of [date, S3_REGION, "s3", "aws4_request"]) key = await hmac(key, part);
  const signature = hex(await hmac(key, stringToSign));
  const headers = new Headers(signed);
  headers.delete("host");
  headers.set(
    "authorization",
    `AWS4-HMAC-SHA256 Credential=${S3_ACCESS_KEY_ID}/${scope}, SignedHeaders=${
      names.join(";")
    }, Signature=${signature}`,
  );
  return headers;
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource));
}

async function hmac(key: Uint8Array, text: string): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    key as BufferSource,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(
    await crypto.subtle.sign("HMAC", cryptoKey, new TextEncoder().encode(text)),
  );
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
