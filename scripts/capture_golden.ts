/**
 * Golden-byte capture: runs real Kafka clients through a recording TCP proxy, against a real
 * Apache Kafka and against our broker, and writes the request and response frames they exchange
 * as fixtures for tests/protocol/golden_test.ts (decode with the generated codecs, re-encode,
 * compare bytes).
 *
 * Run by hand (it installs clients from PyPI, npm and Maven Central on first use); CI only runs
 * the tests on the committed fixtures. From the repo root:
 *
 *   deno run -A scripts/capture_golden.ts                        # every client, both brokers
 *   deno run -A scripts/capture_golden.ts --clients kcat,java    # a subset (others' dirs kept)
 *   deno run -A scripts/capture_golden.ts --brokers kafka        # only the reference Kafka
 *   deno run -A scripts/capture_golden.ts --setup-only           # install clients, capture none
 *
 * Clients (scripts/golden/): kcat (Debian's, librdkafka), confluent-kafka and kafka-python (PyPI,
 * venv .tools/golden-venv), kafkajs (npm, .tools/golden-node), Java kafka-clients (the reference
 * Kafka's jars, compiled into .tools/golden-java). Each runs a fixed list of small steps (metadata,
 * tiny produce runs in several codecs, consume, consumer groups, admin calls); a step whose API
 * keys the broker does not advertise is skipped, and a failing step is noted, not fatal.
 *
 * Brokers: "kafka" is Apache Kafka (KAFKA_REF_VERSION, default 4.1.0, jars fetched by
 * scripts/reference_kafka.sh) in a temp dir; "kafscale" is `deno run -A cli.ts serve`. Both
 * advertise the proxy's address, so every connection a client opens goes through the proxy.
 *
 * Output: tests/fixtures/golden/<client>/<ApiName>_v<version>_<request|response>_<n>.bin, each
 * one frame without its 4-byte size prefix (header + body), plus index.json per client listing
 * every file with its API key, version, kind, client version and broker, the steps that failed
 * or were skipped, and the (api, version) frames seen that our codecs do not cover. Identical
 * frames (correlation id aside) are kept once; at most FIXTURES_PER_KEY_MAX per (api, version,
 * kind) per client, the first from the reference Kafka when it has one. A client's directory is
 * rewritten only when that client was captured.
 */

import { HANDLERS } from "../lib/broker/handler_table.ts";
import { apiSchema } from "../lib/protocol/generated/apis.ts";
import { startBroker } from "../tests/e2e/broker_process.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const OUT_DIR = `${ROOT}tests/fixtures/golden`;
const TOOLS = `${ROOT}.tools`;
const VENV = `${TOOLS}/golden-venv`;
const NODE_DIR = `${TOOLS}/golden-node`;
const JAVA_DIR = `${TOOLS}/golden-java`;
const KAFKA_VERSION = Deno.env.get("KAFKA_REF_VERSION") ?? "4.1.0";
const KAFKA_LIBS = `${TOOLS}/kafka-ref/libs-${KAFKA_VERSION}`;

/** Pinned client versions installed by `setup()`. */
const PIP_PACKAGES = [
  "confluent-kafka==2.16.1",
  "kafka-python==3.0.12",
  "python-snappy==0.7.3",
  "cramjam==2.14.0",
  "lz4==4.4.5",
  "zstandard==0.25.0",
];
const NPM_PACKAGES = ["kafkajs@2.2.4"];

/** Frames larger than this are forwarded but not recorded. */
const FRAME_RECORD_MAX_BYTES = 256 * 1024;
/** Frames larger than this close the proxied connection (Kafka's default socket limit). */
const FRAME_MAX_BYTES = 100 * 1024 * 1024;
/** Frames recorded per broker run; later ones are forwarded only. */
const FRAMES_RECORDED_MAX = 50_000;
/** Requests awaiting their response per connection (acks=0 Produce never gets one). */
const PENDING_PER_CONNECTION_MAX = 4096;
/** Proxy read buffer. */
const PROXY_CHUNK_BYTES = 64 * 1024;
/** A recorded frame larger than this is not written as a fixture. */
const FIXTURE_MAX_BYTES = 64 * 1024;
/** Fixtures kept per (api, version, kind) per client. */
const FIXTURES_PER_KEY_MAX = 2;
/** Warn when all fixtures together grow past this. */
const FIXTURES_TOTAL_WARN_BYTES = 2 * 1024 * 1024;
/** How long one client's whole run may take before it is killed. */
const CLIENT_TIMEOUT_MS = 300_000;
/** How long the reference Kafka may take to start. */
const KAFKA_START_TIMEOUT_MS = 120_000;
const KAFKA_STOP_TIMEOUT_MS = 30_000;
/** Lines of a client's output kept in the console log and notes. */
const CLIENT_OUTPUT_LINES_MAX = 400;

type Kind = "request" | "response";

interface Frame {
  client: string;
  broker: string;
  kind: Kind;
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  bytes: Uint8Array;
}

interface ClientSpec {
  /** Fixture directory name. */
  name: string;
  /** Installs what the client needs (idempotent). */
  setup(): Promise<void>;
  /** Human-readable client version, e.g. "kcat 1.7.1 (librdkafka 2.0.2)". */
  version(): Promise<string>;
  /** Program and arguments for one capture run. */
  command(bootstrap: string, topic: string): string[];
}

// ---------------------------------------------------------------------------------------------
// Processes

async function run(cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: opts.cwd ?? ROOT,
    env: opts.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const text = stdout + new TextDecoder().decode(out.stderr);
    throw new Error(`Command failed (exit ${out.code}): ${cmd.join(" ")}\n${text.slice(-4000)}`);
  }
  return stdout;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitFor(what: string, deadlineMs: number, check: () => Promise<boolean>) {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`Timed out after ${deadlineMs} ms waiting for ${what}`);
}

// ---------------------------------------------------------------------------------------------
// Clients

const KCAT: ClientSpec = {
  name: "kcat",
  async setup() {
    if (!await exists("/usr/bin/kcat")) {
      throw new Error('kcat is missing: run "apt-get install -y kcat"');
    }
  },
  async version() {
    const text = await run(["kcat", "-V"]);
    const m = text.match(/Version (\S+) .*?librdkafka (\S+)/s);
    return m ? `kcat ${m[1]} (librdkafka ${m[2]})` : "kcat (unknown version)";
  },
  command: (bootstrap, topic) => ["bash", `${ROOT}scripts/golden/kcat.sh`, bootstrap, topic],
};

async function setupVenv() {
  const py = `${VENV}/bin/python`;
  if (!await exists(py)) await run(["python3", "-m", "venv", VENV]);
  const have = await run([py, "-m", "pip", "freeze"]);
  const missing = PIP_PACKAGES.filter((p) => !have.toLowerCase().includes(p.toLowerCase()));
  if (missing.length > 0) await run([py, "-m", "pip", "install", "-q", ...missing]);
}

const CONFLUENT: ClientSpec = {
  name: "confluent-kafka",
  setup: setupVenv,
  async version() {
    // version() is a string in recent releases, a (string, int) tuple in older ones.
    const code = "import confluent_kafka as c; v = c.version(); " +
      "print(v if isinstance(v, str) else v[0], c.libversion()[0])";
    const [py, lib] = (await run([`${VENV}/bin/python`, "-c", code])).trim().split(" ");
    return `confluent-kafka ${py} (librdkafka ${lib})`;
  },
  command: (bootstrap, topic) => [
    `${VENV}/bin/python`,
    `${ROOT}scripts/golden/confluent_client.py`,
    bootstrap,
    topic,
  ],
};

const KAFKA_PYTHON: ClientSpec = {
  name: "kafka-python",
  setup: setupVenv,
  async version() {
    const code = "import kafka; print(kafka.__version__)";
    return `kafka-python ${(await run([`${VENV}/bin/python`, "-c", code])).trim()}`;
  },
  command: (bootstrap, topic) => [
    `${VENV}/bin/python`,
    `${ROOT}scripts/golden/kafka_python_client.py`,
    bootstrap,
    topic,
  ],
};

const KAFKAJS: ClientSpec = {
  name: "kafkajs",
  async setup() {
    if (await exists(`${NODE_DIR}/node_modules/kafkajs/package.json`)) return;
    await Deno.mkdir(NODE_DIR, { recursive: true });
    if (!await exists(`${NODE_DIR}/package.json`)) {
      await Deno.writeTextFile(`${NODE_DIR}/package.json`, '{ "private": true }\n');
    }
    await run(["npm", "install", "--no-audit", "--no-fund", ...NPM_PACKAGES], { cwd: NODE_DIR });
  },
  async version() {
    const pkg = JSON.parse(
      await Deno.readTextFile(`${NODE_DIR}/node_modules/kafkajs/package.json`),
    );
    return `kafkajs ${pkg.version}`;
  },
  command: (bootstrap, topic) => [
    "node",
    `${ROOT}scripts/golden/kafkajs_client.mjs`,
    bootstrap,
    topic,
  ],
};

/** Java kafka-clients from the reference Kafka's jars (the version the broker runs). */
function javaClient(libsVersion: string): ClientSpec {
  const libs = `${TOOLS}/kafka-ref/libs-${libsVersion}`;
  return goldenClient(
    libsVersion === KAFKA_VERSION ? "java" : `java-${libsVersion}`,
    libs,
    `${JAVA_DIR}/${libsVersion}`,
    async () => {
      if (await exists(`${libs}/.complete`)) return;
      await run(["bash", `${ROOT}scripts/reference_kafka.sh`, "fetch"], {
        env: { KAFKA_REF_VERSION: libsVersion },
      });
    },
  );
}

/**
 * A newer kafka-clients release than the reference Kafka's (fetched from Maven Central by
 * scripts/golden/pom.xml) running GoldenClient: it sends the newest request versions (Kafka 4.4:
 * Produce v13, Fetch v18, Metadata v13, ListOffsets v11, DescribeGroups v6, ApiVersions v5).
 */
function newerJavaClient(version: string): ClientSpec {
  const libs = `${JAVA_DIR}/libs-${version}`;
  return goldenClient(
    `java-${version}`,
    libs,
    `${JAVA_DIR}/modern-${version}`,
    () => fetchClientJars(version, libs),
  );
}

/** Newer kafka-clients releases than the reference Kafka, for the newest request versions. */
const NEWER_JAVA_VERSIONS = ["4.4.0"];

/** kafka-clients `version` and its codecs from Maven Central into `libs` (once). */
async function fetchClientJars(version: string, libs: string): Promise<void> {
  if (await exists(`${libs}/.complete`)) return;
  await run([
    "mvn",
    "-q",
    "-B",
    "-Dstyle.color=never",
    "-f",
    `${ROOT}scripts/golden/pom.xml`,
    "dependency:copy-dependencies",
    `-Dkafka.version=${version}`,
    `-DoutputDirectory=${libs}`,
  ]);
  await Deno.writeTextFile(`${libs}/.complete`, "");
}

/** scripts/golden/GoldenClient.java compiled into `classes` against the jars in `libs`. */
function goldenClient(
  name: string,
  libs: string,
  classes: string,
  fetchLibs: () => Promise<void>,
): ClientSpec {
  const classpath = () => `${classes}:${libs}/*`;
  return {
    name,
    async setup() {
      await fetchLibs();
      const source = `${ROOT}scripts/golden/GoldenClient.java`;
      const compiled = `${classes}/GoldenClient.class`;
      if (
        await exists(compiled) &&
        (await Deno.stat(compiled)).mtime! >= (await Deno.stat(source)).mtime!
      ) return;
      await Deno.mkdir(classes, { recursive: true });
      await run(["javac", "-d", classes, "-cp", `${libs}/*`, source]);
    },
    async version() {
      const code = await run(["java", "-cp", classpath(), "GoldenClient", "--version"]);
      return `kafka-clients ${code.trim().split("\n").pop()} (Java)`;
    },
    command: (bootstrap, topic) => [
      "java",
      "-Xmx256m",
      "-cp",
      classpath(),
      "GoldenClient",
      bootstrap,
      topic,
    ],
  };
}

/**
 * Older Java kafka-clients releases (scripts/golden/pom.xml fetches them) running
 * GoldenLegacyClient: each picks older request versions, so together they cover most of the
 * version ranges our broker advertises.
 */
function legacyJavaClient(version: string): ClientSpec {
  const libs = `${JAVA_DIR}/libs-${version}`;
  const classes = `${JAVA_DIR}/legacy-${version}`;
  const classpath = () => `${classes}:${libs}/*`;
  return {
    name: `java-${version}`,
    async setup() {
      await fetchClientJars(version, libs);
      const source = `${ROOT}scripts/golden/GoldenLegacyClient.java`;
      const compiled = `${classes}/GoldenLegacyClient.class`;
      if (
        await exists(compiled) &&
        (await Deno.stat(compiled)).mtime! >= (await Deno.stat(source)).mtime!
      ) return;
      await Deno.mkdir(classes, { recursive: true });
      await run(["javac", "-nowarn", "-d", classes, "-cp", `${libs}/*`, source]);
    },
    async version() {
      const out = await run(["java", "-cp", classpath(), "GoldenLegacyClient", "--version"]);
      return `kafka-clients ${out.trim().split("\n").pop()} (Java)`;
    },
    command: (bootstrap, topic) => [
      "java",
      "-Xmx256m",
      "-cp",
      classpath(),
      "GoldenLegacyClient",
      bootstrap,
      topic,
    ],
  };
}

/** Older kafka-clients releases, chosen for the request versions they send. */
const LEGACY_JAVA_VERSIONS = [
  "0.11.0.3",
  "1.0.2",
  "1.1.1",
  "2.0.1",
  "2.1.1",
  "2.2.2",
  "2.3.1",
  "2.4.1",
  "2.7.2",
  "2.8.2",
  "3.0.2",
  "3.1.2",
  "3.5.2",
  "3.7.2",
  "3.9.1",
];

function allClients(): ClientSpec[] {
  return [
    KCAT,
    CONFLUENT,
    KAFKA_PYTHON,
    KAFKAJS,
    javaClient(KAFKA_VERSION),
    ...NEWER_JAVA_VERSIONS.map(newerJavaClient),
    ...LEGACY_JAVA_VERSIONS.map(legacyJavaClient),
  ];
}

// ---------------------------------------------------------------------------------------------
// Brokers

interface RunningBroker {
  /** Label stored in index.json. */
  label: string;
  /** Where the proxy forwards to. */
  port: number;
  /** API keys the broker serves (clients skip steps needing others). */
  apiKeys: number[] | "all";
  stop(): Promise<void>;
}

async function startKafka(advertisedPort: number): Promise<RunningBroker> {
  if (!await exists(`${KAFKA_LIBS}/.complete`)) {
    await run(["bash", `${ROOT}scripts/reference_kafka.sh`, "fetch"]);
  }
  const dir = await Deno.makeTempDir({ prefix: "golden-kafka-" });
  const port = freePort();
  const controllerPort = freePort();
  const props = `${dir}/server.properties`;
  // The reference_kafka.sh settings, except that clients are told the proxy's address.
  await Deno.writeTextFile(
    props,
    [
      "process.roles=broker,controller",
      "node.id=1",
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${advertisedPort}`,
      "controller.listener.names=CONTROLLER",
      "inter.broker.listener.name=PLAINTEXT",
      "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
      `log.dirs=${dir}/kraft-logs`,
      "num.partitions=1",
      "default.replication.factor=1",
      "auto.create.topics.enable=true",
      "offsets.topic.replication.factor=1",
      "offsets.topic.num.partitions=1",
      "transaction.state.log.replication.factor=1",
      "transaction.state.log.min.isr=1",
      "transaction.state.log.num.partitions=1",
      "share.coordinator.state.topic.replication.factor=1",
      "share.coordinator.state.topic.min.isr=1",
      "group.initial.rebalance.delay.ms=0",
      "",
    ].join("\n"),
  );
  const java = [
    "java",
    "-Xms1g",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-Djava.awt.headless=true",
    `-Dlog4j2.configurationFile=${ROOT}scripts/reference_kafka/log4j2.properties`,
    "-cp",
    `${KAFKA_LIBS}/*`,
  ];
  const uuid = (await run([...java, "kafka.tools.StorageTool", "random-uuid"])).trim().split(
    "\n",
  ).pop()!;
  await run([...java, "kafka.tools.StorageTool", "format", "-t", uuid, "-c", props]);
  const log = `${dir}/kafka.log`;
  const child = new Deno.Command("bash", {
    args: ["-c", `exec "$@" >>"${log}" 2>&1`, "kafka", ...java, "kafka.Kafka", props],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const stop = async () => {
    if (!exited) {
      child.kill("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        status,
        new Promise((r) => timer = setTimeout(r, KAFKA_STOP_TIMEOUT_MS)),
      ]);
      clearTimeout(timer);
      if (!exited) child.kill("SIGKILL");
      await status;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await waitFor("Kafka to start", KAFKA_START_TIMEOUT_MS, async () => {
      if (exited) throw new Error(`Kafka exited during startup; see "${log}"`);
      const text = await Deno.readTextFile(log).catch(() => "");
      return text.includes("Kafka Server started");
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { label: `apache-kafka ${KAFKA_VERSION}`, port, apiKeys: "all", stop };
}

async function startKafscale(advertisedPort: number): Promise<RunningBroker> {
  const broker = await startBroker({
    args: ["--advertised-listener", `127.0.0.1:${advertisedPort}`],
  });
  return {
    label: "kafscale",
    port: broker.port,
    apiKeys: [...HANDLERS.keys()].sort((a, b) => a - b),
    stop: async () => {
      await broker.stop().catch(() => {});
      await broker.cleanup();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Recording proxy

/** Splits a byte stream into Kafka frames (int32 size + payload). */
class FrameSplitter {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  /** Bytes of an oversized frame still to skip. */
  #skip = 0;

  constructor(readonly onFrame: (payload: Uint8Array) => void) {}

  push(chunk: Uint8Array): void {
    let data = chunk;
    if (this.#skip > 0) {
      const n = Math.min(this.#skip, data.length);
      this.#skip -= n;
      data = data.subarray(n);
    }
    if (data.length === 0) return;
    this.#chunks.push(data.slice());
    this.#buffered += data.length;
    for (;;) {
      if (this.#buffered < 4) return;
      const head = this.#peek(4);
      const size = new DataView(head.buffer).getInt32(0);
      if (size < 0 || size > FRAME_MAX_BYTES) {
        throw new Error(`Frame size ${size} is outside 0..${FRAME_MAX_BYTES}`);
      }
      if (size > FRAME_RECORD_MAX_BYTES) {
        this.#take(4);
        const n = Math.min(size, this.#buffered);
        this.#take(n);
        this.#skip = size - n;
        continue;
      }
      if (this.#buffered < 4 + size) return;
      this.#take(4);
      this.onFrame(this.#take(size));
    }
  }

  #peek(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let p = 0;
    for (const c of this.#chunks) {
      const k = Math.min(n - p, c.length);
      out.set(c.subarray(0, k), p);
      p += k;
      if (p === n) break;
    }
    return out;
  }

  #take(n: number): Uint8Array {
    const out = this.#peek(n);
    let left = n;
    while (left > 0) {
      const c = this.#chunks[0];
      if (c.length <= left) {
        this.#chunks.shift();
        left -= c.length;
      } else {
        this.#chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.#buffered -= n;
    return out;
  }
}

class RecordingProxy {
  readonly frames: Frame[] = [];
  /** Set before each client runs: connections accepted meanwhile belong to it. */
  client = "";
  broker = "";
  targetPort = 0;
  #listener: Deno.Listener;
  #conns = new Set<Deno.Conn>();
  #accepting: Promise<void>;
  #tasks = new Set<Promise<void>>();

  constructor() {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  async #accept() {
    for await (const conn of this.#listener) {
      const task = this.#handle(conn).catch(() => {}).finally(() => this.#tasks.delete(task));
      this.#tasks.add(task);
    }
  }

  async #handle(client: Deno.Conn) {
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.targetPort });
    } catch {
      client.close();
      return;
    }
    this.#conns.add(client);
    this.#conns.add(upstream);
    const owner = { client: this.client, broker: this.broker };
    const pending = new Map<number, { apiKey: number; apiVersion: number }>();
    const record = (f: Omit<Frame, "client" | "broker">) => {
      if (this.frames.length < FRAMES_RECORDED_MAX) this.frames.push({ ...owner, ...f });
    };
    const requests = new FrameSplitter((bytes) => {
      if (bytes.length < 8) return;
      const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const apiKey = v.getInt16(0);
      const apiVersion = v.getInt16(2);
      const correlationId = v.getInt32(4);
      if (pending.size < PENDING_PER_CONNECTION_MAX) {
        pending.set(correlationId, { apiKey, apiVersion });
      }
      record({ kind: "request", apiKey, apiVersion, correlationId, bytes });
    });
    const responses = new FrameSplitter((bytes) => {
      if (bytes.length < 4) return;
      const correlationId = new DataView(bytes.buffer, bytes.byteOffset).getInt32(0);
      const req = pending.get(correlationId);
      if (req === undefined) return;
      pending.delete(correlationId);
      record({ kind: "response", ...req, correlationId, bytes });
    });
    const close = () => {
      for (const c of [client, upstream]) {
        if (this.#conns.delete(c)) {
          try {
            c.close();
          } catch {
            // Already closed by the other direction.
          }
        }
      }
    };
    await Promise.all([
      pipe(client, upstream, requests).finally(close),
      pipe(upstream, client, responses).finally(close),
    ]);
  }

  async close() {
    this.#listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // Already closed.
      }
    }
    this.#conns.clear();
    await this.#accepting.catch(() => {});
    await Promise.all([...this.#tasks]);
  }
}

async function pipe(from: Deno.Conn, to: Deno.Conn, splitter: FrameSplitter) {
  const buf = new Uint8Array(PROXY_CHUNK_BYTES);
  for (;;) {
    let n: number | null;
    try {
      n = await from.read(buf);
    } catch {
      return;
    }
    if (n === null) return;
    const chunk = buf.subarray(0, n);
    let written = 0;
    while (written < n) written += await to.write(chunk.subarray(written));
    splitter.push(chunk);
  }
}

// ---------------------------------------------------------------------------------------------
// Running clients

interface ClientRun {
  notes: string[];
}

async function runClient(
  spec: ClientSpec,
  bootstrap: string,
  topic: string,
  apiKeys: number[] | "all",
): Promise<ClientRun> {
  const cmd = spec.command(bootstrap, topic);
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: ROOT,
    env: {
      GOLDEN_APIS: apiKeys === "all" ? "all" : apiKeys.join(","),
      GOLDEN_NODE_DIR: NODE_DIR,
      KAFKAJS_NO_PARTITIONER_WARNING: "1",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const keep = (line: string) => {
    if (lines.length < CLIENT_OUTPUT_LINES_MAX) lines.push(line);
  };
  const drain = async (s: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const text of s.pipeThrough(new TextDecoderStream())) {
      rest += text;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      parts.forEach(keep);
    }
    if (rest) keep(rest);
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((r) =>
    timer = setTimeout(() => r("timeout"), CLIENT_TIMEOUT_MS)
  );
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  const outcome = await Promise.race([child.status, timedOut]);
  clearTimeout(timer);
  if (outcome === "timeout") {
    child.kill("SIGKILL");
    await child.status;
  }
  await drained;
  const notes = lines.filter((l) => /^GOLDEN step .* (fail|skip)/.test(l)).map((l) =>
    l.replace(/^GOLDEN step /, "")
  );
  for (const l of lines) {
    if (l.startsWith("GOLDEN ")) console.error(`  [${spec.name}] ${l.slice(7)}`);
  }
  if (outcome === "timeout") notes.push(`killed after ${CLIENT_TIMEOUT_MS} ms`);
  else if (!outcome.success) {
    notes.push(`exited with code ${outcome.code}`);
    console.error(lines.slice(-30).map((l) => `  [${spec.name}] ${l}`).join("\n"));
  }
  return { notes };
}

// ---------------------------------------------------------------------------------------------
// Fixtures

interface IndexEntry {
  file: string;
  apiKey: number;
  apiName: string;
  apiVersion: number;
  kind: Kind;
  client: string;
  clientVersion: string;
  broker: string;
  bytes: number;
}

interface ClientIndex {
  client: string;
  clientVersion: string;
  brokers: string[];
  /** Steps that failed or were skipped, per broker. */
  notes: Record<string, string[]>;
  /** Frames seen that the generated codecs cannot decode (unknown API or version). */
  notCovered: string[];
  fixtures: IndexEntry[];
}

function codecCovers(apiKey: number, apiVersion: number): boolean {
  const s = apiSchema(apiKey);
  return s !== undefined && apiVersion >= s.minVersion && apiVersion <= s.maxVersion;
}

/** Frame bytes with the correlation id zeroed, for de-duplication. */
function dedupeKey(f: Frame): string {
  const b = f.bytes.slice();
  const at = f.kind === "request" ? 4 : 0;
  b.fill(0, at, at + 4);
  let s = "";
  for (let i = 0; i < b.length; i += 4096) {
    s += String.fromCharCode(...b.subarray(i, i + 4096));
  }
  return s;
}

function selectFixtures(frames: Frame[], brokerOrder: string[]): Frame[] {
  const byKey = new Map<string, Frame[]>();
  for (const f of frames) {
    if (!codecCovers(f.apiKey, f.apiVersion) || f.bytes.length > FIXTURE_MAX_BYTES) continue;
    const k = `${f.apiKey}/${f.apiVersion}/${f.kind}`;
    const list = byKey.get(k) ?? [];
    list.push(f);
    byKey.set(k, list);
  }
  const chosen: Frame[] = [];
  for (const list of byKey.values()) {
    const seen = new Set<string>();
    const distinct = list.filter((f) => {
      const k = dedupeKey(f);
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    // First: the earliest frame from the preferred broker (the reference Kafka). Then the
    // largest of the rest (most records, most fields), preferring another broker.
    distinct.sort((a, b) => brokerOrder.indexOf(a.broker) - brokerOrder.indexOf(b.broker));
    const picks = distinct.slice(0, 1);
    const rest = distinct.slice(1).sort((a, b) =>
      Number(picks.some((p) => p.broker === a.broker)) -
        Number(picks.some((p) => p.broker === b.broker)) ||
      b.bytes.length - a.bytes.length
    );
    picks.push(...rest.slice(0, FIXTURES_PER_KEY_MAX - 1));
    chosen.push(...picks);
  }
  return chosen.sort((a, b) =>
    a.apiKey - b.apiKey || a.apiVersion - b.apiVersion || a.kind.localeCompare(b.kind)
  );
}

async function writeClientFixtures(
  client: string,
  clientVersion: string,
  frames: Frame[],
  brokers: string[],
  notes: Record<string, string[]>,
): Promise<number> {
  const dir = `${OUT_DIR}/${client}`;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  const counters = new Map<string, number>();
  const fixtures: IndexEntry[] = [];
  let total = 0;
  for (const f of selectFixtures(frames, brokers)) {
    const apiName = apiSchema(f.apiKey)!.name;
    const base = `${apiName}_v${f.apiVersion}_${f.kind}`;
    const n = (counters.get(base) ?? 0) + 1;
    counters.set(base, n);
    const file = `${base}_${n}.bin`;
    await Deno.writeFile(`${dir}/${file}`, f.bytes);
    total += f.bytes.length;
    fixtures.push({
      file,
      apiKey: f.apiKey,
      apiName,
      apiVersion: f.apiVersion,
      kind: f.kind,
      client,
      clientVersion,
      broker: f.broker,
      bytes: f.bytes.length,
    });
  }
  const notCovered = [
    ...new Set(
      frames.filter((f) => !codecCovers(f.apiKey, f.apiVersion)).map((f) =>
        `${apiSchema(f.apiKey)?.name ?? `api ${f.apiKey}`} v${f.apiVersion} ${f.kind} (${f.broker})`
      ),
    ),
  ].sort();
  const index: ClientIndex = { client, clientVersion, brokers, notes, notCovered, fixtures };
  await Deno.writeTextFile(`${dir}/index.json`, JSON.stringify(index, null, 2) + "\n");
  return total;
}

// ---------------------------------------------------------------------------------------------
// Main

function parseArgs(args: string[]) {
  const opts = { clients: [] as string[], brokers: ["kafka", "kafscale"], setupOnly: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--clients") opts.clients = args[++i].split(",");
    else if (a === "--brokers") opts.brokers = args[++i].split(",");
    else if (a === "--setup-only") opts.setupOnly = true;
    else {
      throw new Error(
        `Unknown argument "${a}"; use --clients a,b --brokers kafka,kafscale --setup-only`,
      );
    }
  }
  return opts;
}

async function main() {
  const opts = parseArgs(Deno.args);
  const known = allClients();
  const clients = opts.clients.length === 0 ? known : opts.clients.map((name) => {
    const c = known.find((k) => k.name === name);
    if (!c) {
      throw new Error(
        `Unknown client "${name}"; choose from ${known.map((k) => k.name).join(", ")}`,
      );
    }
    return c;
  });
  for (const c of clients) {
    console.error(`setup: ${c.name}`);
    await c.setup();
  }
  if (opts.setupOnly) return;
  const versions = new Map<string, string>();
  for (const c of clients) versions.set(c.name, await c.version());

  const frames: Frame[] = [];
  const notes = new Map<string, Record<string, string[]>>();
  const brokerLabels: string[] = [];
  for (const which of opts.brokers) {
    const proxy = new RecordingProxy();
    let broker: RunningBroker | undefined;
    try {
      console.error(`broker: starting ${which}`);
      if (which === "kafka") broker = await startKafka(proxy.port);
      else if (which === "kafscale") broker = await startKafscale(proxy.port);
      else throw new Error(`Unknown broker "${which}"; use kafka or kafscale`);
      brokerLabels.push(broker.label);
      proxy.targetPort = broker.port;
      proxy.broker = broker.label;
      for (const c of clients) {
        console.error(`capture: ${c.name} (${versions.get(c.name)}) against ${broker.label}`);
        proxy.client = c.name;
        const topic = `golden-${c.name.replace(/[^a-z0-9]/g, "")}`;
        const { notes: n } = await runClient(
          c,
          `127.0.0.1:${proxy.port}`,
          topic,
          broker.apiKeys,
        );
        const perClient = notes.get(c.name) ?? {};
        perClient[broker.label] = n;
        notes.set(c.name, perClient);
      }
    } finally {
      await proxy.close();
      await broker?.stop();
    }
    frames.push(...proxy.frames);
  }

  if (opts.clients.length === 0) {
    // A full run owns the whole fixture tree: drop directories of clients no longer captured.
    for await (const entry of Deno.readDir(OUT_DIR)) {
      if (entry.isDirectory && !clients.some((c) => c.name === entry.name)) {
        await Deno.remove(`${OUT_DIR}/${entry.name}`, { recursive: true });
      }
    }
  }
  let total = 0;
  for (const c of clients) {
    const mine = frames.filter((f) => f.client === c.name);
    const bytes = await writeClientFixtures(
      c.name,
      versions.get(c.name)!,
      mine,
      brokerLabels,
      notes.get(c.name) ?? {},
    );
    total += bytes;
    console.error(`wrote ${c.name}: ${mine.length} frames seen, ${bytes} fixture bytes`);
  }
  await run([Deno.execPath(), "fmt", OUT_DIR]);
  if (total > FIXTURES_TOTAL_WARN_BYTES) {
    console.error(`warning: fixtures of this run total ${total} bytes; keep them under 2 MB`);
  }
}

if (import.meta.main) await main();
