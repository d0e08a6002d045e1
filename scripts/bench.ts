/**
 * `deno task bench`: throughput and latency of a Kafka broker measured with a native librdkafka
 * client (scripts/bench/rdkafka_bench.c, compiled on demand and cached by source hash).
 *
 * Owns: building the client, starting our broker in embedded mode when no `--bootstrap` is given
 * (and timing its startup), the benchmark phases (create topic, warm-up, produce at max rate,
 * produce at a moderate rate for latency, consume), the report and cleanup of every child.
 * Must not import lib/: it treats the broker as a black box reached over TCP, so the same run
 * works against Apache Kafka (scripts/reference_kafka.sh) for comparison.
 *
 * Usage: deno task bench [--bootstrap HOST:PORT] [--record-size 1024] [--records N]
 *          [--partitions 8] [--acks all|1|0] [--batch-size BYTES] [--linger-ms MS]
 *          [--compression none|gzip|snappy|lz4|zstd] [--topic NAME] [--rate 5000]
 *          [--rate-seconds 5] [--rate-linger-ms MS] [--max-seconds 20] [--warmup-records 20000]
 *          [--label TEXT]
 *          [--keep-topic] [--json] [--backend local|minio] [--metrics HOST:PORT]
 *          [--fetch-sessions SECONDS] [--broker-pid PID]
 *
 * Memory: the report gives the broker's resident set size after start, its peak during each
 * phase and its size at the end (Linux /proc, scripts/bench/memory.ts). For our own broker that
 * is the child started here; for an external one pass `--broker-pid` (Apache Kafka's JVM:
 * `--broker-pid "$(cat .tools/kafka-ref/data-19092/kafka.pid)"`, see reference_kafka.sh).
 *
 * `--fetch-sessions S` adds a phase after the consume: franz-go (tests/compat/go/
 * fetch_session_probe, built on demand) consumes every partition of the topic from its end for S
 * seconds, once with incremental fetch sessions (KIP-227) off and once on, and the report prints
 * the Fetch request bytes per second and per request of each run. Use it with many partitions
 * (`--partitions 1000`): a full fetch names every partition, an incremental one only the changed.
 *
 * `--backend minio` runs our broker on a real MinIO and etcd started for the run (the test
 * suite's tests/support/backends.ts). The broker's `/metrics` (ours started here, or any given
 * with `--metrics`) gives the objects written to the store during the produce phases: per
 * second and per MiB produced.
 *
 * A generated topic is deleted at the end on an external broker unless --keep-topic is given;
 * our embedded broker's temp data dir is removed with it.
 */
import { parseArgs } from "node:util";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { peakDuring, readProcessMemory } from "./bench/memory.ts";

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const BENCH_SOURCE = join(REPO_ROOT, "scripts", "bench", "rdkafka_bench.c");
const BENCH_DIR = join(REPO_ROOT, ".tools", "bench");
const BENCH_BINARY = join(BENCH_DIR, "rdkafka_bench");
const BENCH_HASH_FILE = join(BENCH_DIR, "rdkafka_bench.sha256");

/** Bytes produced at max rate by default: about 12 s against Apache Kafka 4.1 on 2 cores. */
const DEFAULT_MAX_RATE_BYTES = 2 * 1024 * 1024 * 1024;
const DEFAULT_RECORDS_MIN = 10_000;
const DEFAULT_RECORDS_MAX = 5_000_000;
/** Hard cap on any produce phase, whatever --records says. */
const DEFAULT_MAX_SECONDS = 20;
const MAX_SECONDS_LIMIT = 300;
const DEFAULT_RATE = 5_000;
const DEFAULT_RATE_SECONDS = 5;
const DEFAULT_WARMUP_RECORDS = 20_000;
/** Slack on top of a phase's own bound before its child process is killed. */
const CHILD_TIMEOUT_SLACK_MS = 90_000;
const CONSUME_TIMEOUT_S = 120;
const CREATE_TOPIC_TIMEOUT_S = 30;
const BROKER_READY_TIMEOUT_MS = 60_000;
const BROKER_STOP_TIMEOUT_MS = 10_000;
const CONNECT_POLL_INTERVAL_MS = 10;
/** Broker stderr lines kept for error reports, and the longest line kept. */
const BROKER_LOG_LINES_MAX = 200;
const BROKER_LOG_LINE_CHARS_MAX = 4_096;
const BROKER_READY_PATTERN = /Broker ready/;
const BROKER_KAFKA_ADDRESS_PATTERN = /kafka="?([^"\s]+)/;
const BROKER_READY_MS_PATTERN = /ready_ms=(\d+)/;

type ProduceResult = {
  ok: boolean;
  sent: number;
  records: number;
  bytes: number;
  seconds: number;
  mb_per_s: number;
  records_per_s: number;
  target_rate: number;
  latency_ms: { p50: number; p99: number; p99_9: number; max: number };
  errors: number;
  undelivered: number;
  first_error?: string;
  config: Record<string, string>;
};

type ConsumeResult = {
  ok: boolean;
  partitions: number;
  records: number;
  expected: number;
  bytes: number;
  seconds: number;
  mb_per_s: number;
  records_per_s: number;
  first_record_ms: number;
  errors: number;
  first_error?: string;
};

type CreateTopicResult = {
  ok: boolean;
  how: string;
  partitions: number;
  seconds: number;
  create_error?: string;
  error?: string;
};

type BrokerStartup = {
  readyMs: number;
  reportedReadyMs: number | null;
  firstConnectMs: number | null;
};

type Machine = {
  nproc: number;
  cpuModel: string;
  memTotalGiB: number;
  deno: string;
  librdkafka: string;
  os: string;
};

type BenchOptions = {
  bootstrap: string | undefined;
  recordSize: number;
  records: number;
  partitions: number;
  acks: string;
  batchSize: string | undefined;
  lingerMs: string | undefined;
  compression: string;
  topic: string;
  rate: number;
  rateSeconds: number;
  /** linger.ms of the fixed-rate (latency) phase; default `lingerMs`. */
  rateLingerMs: string | undefined;
  maxSeconds: number;
  warmupRecords: number;
  label: string | undefined;
  json: boolean;
  /** True when the topic name was generated, so the run may delete the topic afterwards. */
  freshTopic: boolean;
  keepTopic: boolean;
  backend: "local" | "minio";
  /** HOST:PORT of the broker's HTTP listener, for /metrics (set for our own broker). */
  metrics: string | undefined;
  /** Seconds of each fetch-session probe run (`--fetch-sessions`); 0 skips the phase. */
  fetchSessionSeconds: number;
  /** Pid of an external broker whose memory the report gives (`--broker-pid`). */
  brokerPid: number | null;
};

/** The broker's resident memory, bytes (null where /proc could not tell). */
type MemoryResult = {
  pid: number;
  after_start_rss: number | null;
  peak: { max_rate: number | null; moderate: number | null; consume: number | null };
  end_rss: number | null;
};

/** Objects the broker wrote to its store during the produce phases (from its /metrics). */
type ObjectsResult = {
  objects: number;
  seconds: number;
  mib: number;
  per_second: number;
  per_mib: number;
  wal_rounds: number;
  segments_sealed: number;
};

/** Child processes and temp dirs that must not outlive this script. */
class Cleanup {
  #children = new Set<Deno.ChildProcess>();
  #tasks: Array<() => Promise<void>> = [];

  track(child: Deno.ChildProcess): void {
    this.#children.add(child);
    child.status.finally(() => this.#children.delete(child));
  }

  defer(task: () => Promise<void>): void {
    this.#tasks.push(task);
  }

  async run(): Promise<void> {
    for (const child of this.#children) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
    }
    while (this.#tasks.length > 0) {
      const task = this.#tasks.pop()!;
      try {
        await task();
      } catch (error) {
        console.error(`bench: cleanup step failed: ${error}`);
      }
    }
  }
}

function fail(message: string): never {
  throw new Error(message);
}

function parseIntFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0 || !Number.isInteger(parsed)) {
    fail(`Invalid "--${name}": "${value}"; pass a non-negative integer.`);
  }
  return parsed;
}

function parseOptions(args: string[]): BenchOptions {
  const { values } = parseArgs({
    args,
    options: {
      bootstrap: { type: "string" },
      "record-size": { type: "string" },
      records: { type: "string" },
      partitions: { type: "string" },
      acks: { type: "string" },
      "batch-size": { type: "string" },
      "linger-ms": { type: "string" },
      compression: { type: "string" },
      topic: { type: "string" },
      rate: { type: "string" },
      "rate-seconds": { type: "string" },
      "rate-linger-ms": { type: "string" },
      "max-seconds": { type: "string" },
      "warmup-records": { type: "string" },
      label: { type: "string" },
      "keep-topic": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      backend: { type: "string" },
      metrics: { type: "string" },
      "fetch-sessions": { type: "string" },
      "broker-pid": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(
      "Usage: deno task bench [--bootstrap HOST:PORT] [--record-size 1024] [--records N]\n" +
        "  [--partitions 8] [--acks all|1|0] [--batch-size BYTES] [--linger-ms MS]\n" +
        "  [--compression none|gzip|snappy|lz4|zstd] [--topic NAME] [--rate 5000]\n" +
        "  [--rate-seconds 5] [--rate-linger-ms MS] [--max-seconds 20] [--warmup-records 20000]\n" +
        "  [--label TEXT] [--keep-topic] [--json] [--backend local|minio] [--metrics HOST:PORT]\n" +
        "  [--fetch-sessions SECONDS] [--broker-pid PID]\n" +
        "Without --bootstrap, starts `deno run -A cli.ts serve` on a temp data dir (or, with\n" +
        "--backend minio, on a MinIO and etcd started for the run) and stops it.\n" +
        "The report gives the broker's memory (resident set size: after start, peak per phase,\n" +
        "at the end): ours when started here, an external one's with --broker-pid (Linux).",
    );
    Deno.exit(0);
  }
  const recordSize = parseIntFlag("record-size", values["record-size"], 1024);
  if (recordSize > 1024 * 1024) fail(`Invalid "--record-size": "${recordSize}"; max is 1048576.`);
  const defaultRecords = Math.min(
    DEFAULT_RECORDS_MAX,
    Math.max(DEFAULT_RECORDS_MIN, Math.round(DEFAULT_MAX_RATE_BYTES / Math.max(recordSize, 1))),
  );
  const acks = values.acks ?? "all";
  if (!["all", "-1", "0", "1"].includes(acks)) {
    fail(`Invalid "--acks": "${acks}"; use all, 1 or 0.`);
  }
  const maxSeconds = parseIntFlag("max-seconds", values["max-seconds"], DEFAULT_MAX_SECONDS);
  if (maxSeconds < 1 || maxSeconds > MAX_SECONDS_LIMIT) {
    fail(`Invalid "--max-seconds": "${maxSeconds}"; use 1..${MAX_SECONDS_LIMIT}.`);
  }
  return {
    bootstrap: values.bootstrap,
    recordSize,
    records: parseIntFlag("records", values.records, defaultRecords),
    partitions: parseIntFlag("partitions", values.partitions, 8),
    acks,
    batchSize: values["batch-size"],
    lingerMs: values["linger-ms"],
    compression: values.compression ?? "none",
    topic: values.topic ?? `bench-${Date.now().toString(36)}`,
    rate: parseIntFlag("rate", values.rate, DEFAULT_RATE),
    rateSeconds: parseIntFlag("rate-seconds", values["rate-seconds"], DEFAULT_RATE_SECONDS),
    rateLingerMs: values["rate-linger-ms"],
    maxSeconds,
    warmupRecords: parseIntFlag("warmup-records", values["warmup-records"], DEFAULT_WARMUP_RECORDS),
    label: values.label,
    json: values.json,
    freshTopic: values.topic === undefined,
    keepTopic: values["keep-topic"],
    backend: parseBackend(values.backend),
    metrics: values.metrics,
    fetchSessionSeconds: parseIntFlag("fetch-sessions", values["fetch-sessions"], 0),
    brokerPid: values["broker-pid"] === undefined
      ? null
      : parseIntFlag("broker-pid", values["broker-pid"], 0),
  };
}

function parseBackend(value: string | undefined): "local" | "minio" {
  if (value === undefined || value === "local" || value === "minio") return value ?? "local";
  fail(`Invalid "--backend": "${value}"; use local or minio.`);
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function readTextOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Compiles rdkafka_bench.c unless the cached binary was built from the same source. */
async function ensureBenchBinary(): Promise<string> {
  const hash = await sha256Hex(await Deno.readFile(BENCH_SOURCE));
  const cached = await readTextOrNull(BENCH_HASH_FILE);
  const binaryExists = await Deno.stat(BENCH_BINARY).then(() => true, () => false);
  if (cached?.trim() === hash && binaryExists) return BENCH_BINARY;
  await Deno.mkdir(BENCH_DIR, { recursive: true });
  console.error(`bench: compiling ${BENCH_SOURCE}`);
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("gcc", {
      args: ["-O2", "-o", BENCH_BINARY, BENCH_SOURCE, "-lrdkafka"],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      fail('Cannot build the benchmark client: "gcc" is missing; run "apt-get install -y gcc".');
    }
    throw error;
  }
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr);
    const hint = stderr.includes("rdkafka.h")
      ? ' Install librdkafka: "apt-get install -y librdkafka-dev".'
      : "";
    fail(`Cannot build the benchmark client:${hint}\n${stderr}`);
  }
  await Deno.writeTextFile(BENCH_HASH_FILE, hash + "\n");
  return BENCH_BINARY;
}

/** Runs one rdkafka_bench mode and returns its JSON line; the child is killed after timeoutMs. */
async function runBench<T>(
  cleanup: Cleanup,
  binary: string,
  mode: string,
  args: string[],
  timeoutMs: number,
): Promise<T> {
  const child = new Deno.Command(binary, {
    args: [mode, ...args],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  cleanup.track(child);
  const timer = setTimeout(() => {
    console.error(`bench: "${mode}" exceeded ${timeoutMs} ms, killing it`);
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, timeoutMs);
  try {
    const output = await child.output();
    const text = new TextDecoder().decode(output.stdout).trim();
    const line = text.split("\n").filter((l) => l.startsWith("{")).at(-1);
    if (line === undefined) {
      fail(`"rdkafka_bench ${mode}" printed no result (exit code ${output.code}).`);
    }
    const result = JSON.parse(line) as T & { ok: boolean; error?: string };
    if (result.error !== undefined && !result.ok) {
      fail(`"rdkafka_bench ${mode}" failed: ${result.error}`);
    }
    return result;
  } finally {
    clearTimeout(timer);
  }
}

/** What tests/compat/go/fetch_session_probe prints. */
interface FetchSessionProbe {
  ok: boolean;
  sessions: boolean;
  seconds: number;
  fetch_requests: number;
  fetch_request_bytes: number;
  fetch_request_bytes_per_s: number;
  bytes_per_request: number;
}

/** Builds the Go probe (tests/compat/go/build.sh, cached by source hash); its path. */
async function ensureFetchSessionProbe(): Promise<string> {
  const build = await new Deno.Command("bash", {
    args: [join(REPO_ROOT, "tests", "compat", "go", "build.sh")],
    stdout: "inherit",
    stderr: "inherit",
    stdin: "null",
  }).output();
  if (!build.success) fail("Building tests/compat/go (fetch_session_probe) failed; see above.");
  return join(REPO_ROOT, ".tools", "go-compat", "fetch_session_probe");
}

async function runFetchSessionProbe(
  cleanup: Cleanup,
  probe: string,
  args: string[],
  timeoutMs: number,
): Promise<FetchSessionProbe> {
  const child = new Deno.Command(probe, {
    args,
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  cleanup.track(child);
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, timeoutMs);
  try {
    const output = await child.output();
    const line = new TextDecoder().decode(output.stdout).trim().split("\n").at(-1) ?? "";
    if (!line.startsWith("{")) {
      fail(`fetch_session_probe printed no result (exit code ${output.code}).`);
    }
    return JSON.parse(line) as FetchSessionProbe;
  } finally {
    clearTimeout(timer);
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Keeps the last lines of the broker's stderr for error reports; bounded in count and width. */
class LineTail {
  #lines: string[] = [];

  push(line: string): void {
    this.#lines.push(line.slice(0, BROKER_LOG_LINE_CHARS_MAX));
    if (this.#lines.length > BROKER_LOG_LINES_MAX) this.#lines.shift();
  }

  text(): string {
    return this.#lines.join("\n");
  }
}

/** Reads a child's stderr line by line forever (so the pipe never fills), calling onLine. */
async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let newline = pending.indexOf("\n");
    while (newline >= 0) {
      onLine(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
      newline = pending.indexOf("\n");
    }
    if (pending.length > BROKER_LOG_LINE_CHARS_MAX) {
      onLine(pending);
      pending = "";
    }
  }
  if (pending.length > 0) onLine(pending);
}

async function canConnect(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/** Starts our broker in embedded mode; returns its Kafka address and startup timings. */
async function startOurBroker(
  cleanup: Cleanup,
  backend: "local" | "minio",
): Promise<{ bootstrap: string; metrics: string; startup: BrokerStartup; pid: number }> {
  const dataDir = await Deno.makeTempDir({ prefix: "kafscale-bench-" });
  cleanup.defer(() => Deno.remove(dataDir, { recursive: true }));
  let env: Record<string, string> = {};
  if (backend === "minio") {
    console.error("bench: starting MinIO and etcd (tests/support/backends.ts)");
    const { startEtcd, startS3 } = await import("../tests/support/backends.ts");
    const { distributedEnv } = await import("../tests/support/distributed.ts");
    const [s3, etcd] = await Promise.all([startS3(), startEtcd()]);
    cleanup.defer(() => etcd.stop());
    cleanup.defer(() => s3.stop());
    env = distributedEnv({ s3, etcd });
  }
  // Fixed ports (picked free just before) let us time the first TCP connect from spawn on.
  const kafkaPort = freePort();
  const httpPort = freePort();
  const spawnedAt = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "cli.ts",
      "serve",
      "--listen",
      `127.0.0.1:${kafkaPort}`,
      "--http-listen",
      `127.0.0.1:${httpPort}`,
      "--control-listen",
      "127.0.0.1:0",
      "--data-dir",
      dataDir,
    ],
    env,
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  cleanup.track(child);

  const tail = new LineTail();
  let readyLine: string | null = null;
  let readyMs = 0;
  const pump = pumpLines(child.stderr, (line) => {
    tail.push(line);
    if (readyLine === null && BROKER_READY_PATTERN.test(line)) {
      readyLine = line;
      readyMs = performance.now() - spawnedAt;
    }
  }).catch(() => {});
  // Deferred tasks run last-in first-out: stop the broker, then drain its stderr.
  cleanup.defer(() => pump);
  cleanup.defer(() => stopBroker(child));

  let exited: Deno.CommandStatus | null = null;
  child.status.then((status) => exited = status);
  let firstConnectMs: number | null = null;
  const deadline = spawnedAt + BROKER_READY_TIMEOUT_MS;
  while (performance.now() < deadline && exited === null) {
    if (firstConnectMs === null && await canConnect(kafkaPort)) {
      firstConnectMs = performance.now() - spawnedAt;
    }
    if (readyLine !== null && firstConnectMs !== null) break;
    await new Promise((resolve) => setTimeout(resolve, CONNECT_POLL_INTERVAL_MS));
  }
  if (exited !== null) {
    fail(
      `Our broker exited during startup (code ${
        (exited as Deno.CommandStatus).code
      }); its stderr:\n${tail.text()}`,
    );
  }
  if (readyLine === null) {
    fail(
      `Our broker printed no "Broker ready" line within ${BROKER_READY_TIMEOUT_MS} ms; its stderr:\n${tail.text()}`,
    );
  }
  const line = readyLine as string;
  const address = line.match(BROKER_KAFKA_ADDRESS_PATTERN)?.[1] ?? `127.0.0.1:${kafkaPort}`;
  const reported = line.match(BROKER_READY_MS_PATTERN)?.[1];
  return {
    bootstrap: address,
    metrics: `127.0.0.1:${httpPort}`,
    pid: child.pid,
    startup: {
      readyMs,
      reportedReadyMs: reported === undefined ? null : Number(reported),
      firstConnectMs,
    },
  };
}

type CounterSnapshot = { at: number; counters: Record<string, number> } | null;

/** Objects the broker wrote between two snapshots, per second and per MiB of `bytes`. */
function objectsBetween(
  from: CounterSnapshot,
  to: CounterSnapshot,
  bytes: number,
): ObjectsResult | null {
  if (!from || !to) return null;
  const delta = (name: string) => to.counters[name] - from.counters[name];
  const seconds = (to.at - from.at) / 1000;
  const mib = bytes / (1024 * 1024);
  const written = delta("kafscale_objects_written");
  return {
    objects: written,
    seconds,
    mib,
    per_second: written / seconds,
    per_mib: mib > 0 ? written / mib : 0,
    wal_rounds: delta("kafscale_wal_rounds"),
    segments_sealed: delta("kafscale_seal_segments"),
  };
}

/** Counters from the broker's Prometheus text (0 for the ones it does not have). */
async function readCounters(addr: string, names: string[]): Promise<Record<string, number>> {
  const text = await (await fetch(`http://${addr}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const name of names) {
    const match = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "m"));
    out[name] = match ? Number(match[1]) : 0;
  }
  return out;
}

const OBJECT_COUNTERS = [
  "kafscale_objects_written",
  "kafscale_wal_rounds",
  "kafscale_seal_segments",
];

async function stopBroker(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    return; // Already exited.
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), BROKER_STOP_TIMEOUT_MS);
  });
  const result = await Promise.race([child.status, timedOut]);
  clearTimeout(timer);
  if (result === "timeout") {
    console.error(`bench: broker ignored SIGTERM for ${BROKER_STOP_TIMEOUT_MS} ms, killing it`);
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
  }
}

/** Best effort: a broker without DeleteTopics just keeps the topic. */
async function deleteTopicQuietly(
  cleanup: Cleanup,
  binary: string,
  bootstrap: string,
  topic: string,
): Promise<void> {
  try {
    await runBench(
      cleanup,
      binary,
      "delete-topic",
      ["--bootstrap", bootstrap, "--topic", topic],
      CREATE_TOPIC_TIMEOUT_S * 1000 + CHILD_TIMEOUT_SLACK_MS,
    );
  } catch (error) {
    console.error(`bench: could not delete topic "${topic}": ${(error as Error).message}`);
  }
}

async function describeMachine(binary: string): Promise<Machine> {
  const cpuinfo = await readTextOrNull("/proc/cpuinfo") ?? "";
  const meminfo = await readTextOrNull("/proc/meminfo") ?? "";
  const memKiB = Number(meminfo.match(/^MemTotal:\s+(\d+)/m)?.[1] ?? 0);
  const version = await new Deno.Command(binary, { args: ["version"], stdout: "piped" }).output();
  const librdkafka = (JSON.parse(new TextDecoder().decode(version.stdout)) as {
    librdkafka: string;
  }).librdkafka;
  return {
    nproc: navigator.hardwareConcurrency,
    cpuModel: cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? "unknown",
    memTotalGiB: Math.round(memKiB / 1024 / 1024 * 10) / 10,
    deno: Deno.version.deno,
    librdkafka,
    os: `${Deno.build.os} ${Deno.osRelease()}`,
  };
}

function produceArgs(options: BenchOptions, bootstrap: string): string[] {
  const args = [
    "--bootstrap",
    bootstrap,
    "--topic",
    options.topic,
    "--record-size",
    String(options.recordSize),
    "--acks",
    options.acks,
    "--compression",
    options.compression,
  ];
  if (options.lingerMs !== undefined) args.push("--linger-ms", options.lingerMs);
  if (options.batchSize !== undefined) args.push("--batch-size", options.batchSize);
  return args;
}

function fmt(value: number, digits = 1): string {
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function renderReport(report: {
  target: string;
  bootstrap: string;
  options: BenchOptions;
  machine: Machine;
  startup: BrokerStartup | null;
  topic: CreateTopicResult;
  maxRate: ProduceResult;
  moderate: ProduceResult | null;
  consume: ConsumeResult;
  objects: { maxRate: ObjectsResult | null; moderate: ObjectsResult | null };
  memory: MemoryResult | null;
  fetchSessions: { off: FetchSessionProbe; on: FetchSessionProbe } | null;
}): string {
  const { options, machine, maxRate, moderate, consume, startup, objects, memory } = report;
  const config = maxRate.config;
  const lines = [
    `Benchmark: ${report.target} at ${report.bootstrap}`,
    `Machine: ${machine.nproc} cores, ${machine.cpuModel}, ${machine.memTotalGiB} GiB, ` +
    `${machine.os}, deno ${machine.deno}, librdkafka ${machine.librdkafka}`,
    `Topic "${options.topic}": ${report.topic.partitions} partitions (${report.topic.how}), ` +
    `record ${options.recordSize} B, acks=${options.acks}, linger.ms=${config["linger.ms"]}, ` +
    `batch.size=${config["batch.size"]}, compression=${config["compression.type"]}`,
  ];
  if (report.topic.partitions !== options.partitions) {
    lines.push(
      `Note: asked for ${options.partitions} partitions, got ${report.topic.partitions}` +
        (report.topic.create_error ? ` (${report.topic.create_error})` : ""),
    );
  }
  if (startup !== null) {
    lines.push(
      `Startup: ready line after ${fmt(startup.readyMs, 0)} ms (broker says ${
        startup.reportedReadyMs ?? "?"
      } ms), first TCP connect after ${
        startup.firstConnectMs === null ? "n/a" : fmt(startup.firstConnectMs, 0) + " ms"
      }`,
    );
  }
  const header = [
    "phase",
    "records",
    "seconds",
    "MB/s",
    "records/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
  ];
  const rows: string[][] = [header];
  const produceRow = (name: string, r: ProduceResult) => [
    name,
    fmt(r.records, 0),
    fmt(r.seconds, 2),
    fmt(r.mb_per_s),
    fmt(r.records_per_s, 0),
    fmt(r.latency_ms.p50, 2),
    fmt(r.latency_ms.p99, 2),
    fmt(r.latency_ms.p99_9, 2),
  ];
  rows.push(produceRow("produce max rate", maxRate));
  if (moderate !== null) {
    const linger = options.rateLingerMs === undefined ? "" : `, linger ${options.rateLingerMs} ms`;
    rows.push(produceRow(`produce ${fmt(moderate.target_rate, 0)}/s${linger}`, moderate));
  }
  rows.push([
    "consume",
    fmt(consume.records, 0),
    fmt(consume.seconds, 2),
    fmt(consume.mb_per_s),
    fmt(consume.records_per_s, 0),
    "",
    "",
    "",
  ]);
  const widths = header.map((_, col) => Math.max(...rows.map((row) => row[col].length)));
  const renderRow = (row: string[]) =>
    row.map((cell, col) => col === 0 ? cell.padEnd(widths[col]) : cell.padStart(widths[col]))
      .join("  ");
  lines.push("", renderRow(rows[0]), widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows.slice(1)) lines.push(renderRow(row));
  const errors = maxRate.errors + (moderate?.errors ?? 0) + consume.errors;
  lines.push(
    "",
    `MB = 2^20 bytes of record values. Latency: rd_kafka_produce() to delivery report. ` +
      `Errors: ${errors}.`,
  );
  const objectLine = (phase: string, o: ObjectsResult | null) => {
    if (o === null) return;
    lines.push(
      `Objects written to the store during ${phase} (${fmt(o.mib, 1)} MiB in ` +
        `${fmt(o.seconds, 1)} s): ${o.objects} = ${fmt(o.per_second, 2)}/s, ` +
        `${fmt(o.per_mib * 1024, 0)} per GiB; ${o.wal_rounds} flush rounds, ` +
        `${o.segments_sealed} segments sealed.`,
    );
  };
  objectLine("produce at max rate", objects.maxRate);
  objectLine("produce at a fixed rate", objects.moderate);
  if (memory !== null) lines.push(memoryLine(memory, moderate?.target_rate ?? null));
  if (report.fetchSessions !== null) {
    const probe = (name: string, r: FetchSessionProbe) =>
      `  sessions ${name}: ${fmt(r.fetch_request_bytes_per_s, 0)} B/s of Fetch requests, ` +
      `${fmt(r.bytes_per_request, 0)} B per request (${r.fetch_requests} requests in ` +
      `${fmt(r.seconds, 1)} s)`;
    lines.push(
      `Fetch requests of an idle franz-go consumer of all ${report.topic.partitions} partitions ` +
        `(FetchMaxWait 200 ms), incremental fetch sessions (KIP-227) off, then on:`,
      probe("off", report.fetchSessions.off),
      probe("on", report.fetchSessions.on),
    );
  }
  if (maxRate.sent < options.records) {
    lines.push(
      `Note: max-rate phase stopped at the ${options.maxSeconds} s bound after ` +
        `${maxRate.sent} of ${options.records} records.`,
    );
  }
  return lines.join("\n");
}

/** MiB, or n/a where /proc could not tell. */
function mib(bytes: number | null): string {
  return bytes === null ? "n/a" : `${fmt(bytes / (1024 * 1024), 0)} MiB`;
}

function memoryLine(memory: MemoryResult, rate: number | null): string {
  const peaks = [`${mib(memory.peak.max_rate)} during produce at max rate`];
  if (rate !== null) peaks.push(`${mib(memory.peak.moderate)} at ${fmt(rate, 0)}/s`);
  peaks.push(`${mib(memory.peak.consume)} during consume`);
  return `Broker memory (resident, pid ${memory.pid}): ${mib(memory.after_start_rss)} before ` +
    `the topic was created; peak ${peaks.join(", ")}; ${mib(memory.end_rss)} at the end.`;
}

async function main(): Promise<void> {
  const options = parseOptions(Deno.args);
  const cleanup = new Cleanup();
  const onSignal = () => {
    console.error("bench: interrupted, cleaning up");
    cleanup.run().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const binary = await ensureBenchBinary();
    const machine = await describeMachine(binary);
    let bootstrap = options.bootstrap;
    let startup: BrokerStartup | null = null;
    let target = options.label ?? `broker at ${bootstrap}`;
    let metrics = options.metrics;
    let pid = options.brokerPid;
    if (bootstrap === undefined) {
      console.error(`bench: starting our broker (${options.backend}, temp data dir)`);
      const started = await startOurBroker(cleanup, options.backend);
      bootstrap = started.bootstrap;
      metrics = started.metrics;
      startup = started.startup;
      pid = started.pid;
      target = options.label ??
        (options.backend === "minio"
          ? "KafScale for Deno (MinIO + etcd)"
          : "KafScale for Deno (embedded)");
    }
    const afterStart = pid === null ? null : await readProcessMemory(pid);
    console.error(`bench: creating topic "${options.topic}"`);
    const topic = await runBench<CreateTopicResult>(
      cleanup,
      binary,
      "create-topic",
      [
        "--bootstrap",
        bootstrap,
        "--topic",
        options.topic,
        "--partitions",
        String(options.partitions),
        "--timeout-s",
        String(CREATE_TOPIC_TIMEOUT_S),
      ],
      CREATE_TOPIC_TIMEOUT_S * 1000 + CHILD_TIMEOUT_SLACK_MS,
    );
    const base = produceArgs(options, bootstrap);
    const produce = (records: number, seconds: number, rate: number, extra: string[] = []) =>
      runBench<ProduceResult>(
        cleanup,
        binary,
        "produce",
        [
          ...base,
          ...extra,
          "--records",
          String(records),
          "--duration-s",
          String(seconds),
          "--rate",
          String(rate),
        ],
        seconds * 1000 + CHILD_TIMEOUT_SLACK_MS,
      );
    let produced = 0;
    if (options.warmupRecords > 0) {
      console.error(`bench: warm-up, ${options.warmupRecords} records`);
      produced += (await produce(options.warmupRecords, options.maxSeconds, 0)).records;
    }
    // Object counters around each produce phase (our brokers' /metrics).
    const snapshot = async () =>
      metrics
        ? { at: performance.now(), counters: await readCounters(metrics, OBJECT_COUNTERS) }
        : null;
    const beforeMax = await snapshot();
    console.error(`bench: produce at max rate, ${options.records} records`);
    const { result: maxRate, peakBytes: maxRatePeak } = await peakDuring(
      pid,
      () => produce(options.records, options.maxSeconds, 0),
    );
    produced += maxRate.records;
    const afterMax = await snapshot();
    let moderate: ProduceResult | null = null;
    let moderatePeak: number | null = null;
    if (options.rate > 0 && options.rateSeconds > 0) {
      console.error(`bench: produce at ${options.rate} records/s for ${options.rateSeconds} s`);
      ({ result: moderate, peakBytes: moderatePeak } = await peakDuring(pid, () =>
        produce(
          options.rate * options.rateSeconds,
          Math.min(options.rateSeconds * 2, options.maxSeconds + options.rateSeconds),
          options.rate,
          options.rateLingerMs === undefined ? [] : ["--linger-ms", options.rateLingerMs],
        )));
      produced += moderate.records;
    }
    const afterModerate = await snapshot();
    const objects = {
      maxRate: objectsBetween(beforeMax, afterMax, maxRate.bytes),
      moderate: moderate ? objectsBetween(afterMax, afterModerate, moderate.bytes) : null,
    };
    console.error(`bench: consume ${produced} records from the beginning`);
    const { result: consume, peakBytes: consumePeak } = await peakDuring(
      pid,
      () =>
        runBench<ConsumeResult>(
          cleanup,
          binary,
          "consume",
          [
            "--bootstrap",
            bootstrap!,
            "--topic",
            options.topic,
            "--records",
            String(produced),
            "--timeout-s",
            String(CONSUME_TIMEOUT_S),
          ],
          CONSUME_TIMEOUT_S * 1000 + CHILD_TIMEOUT_SLACK_MS,
        ),
    );
    const memory: MemoryResult | null = pid === null ? null : {
      pid,
      after_start_rss: afterStart?.rssBytes ?? null,
      peak: { max_rate: maxRatePeak, moderate: moderatePeak, consume: consumePeak },
      end_rss: (await readProcessMemory(pid))?.rssBytes ?? null,
    };
    let fetchSessions: { off: FetchSessionProbe; on: FetchSessionProbe } | null = null;
    if (options.fetchSessionSeconds > 0) {
      const probe = await ensureFetchSessionProbe();
      const run = (mode: "on" | "off") => {
        console.error(`bench: fetch sessions ${mode}, ${options.fetchSessionSeconds} s`);
        return runFetchSessionProbe(cleanup, probe, [
          bootstrap!,
          options.topic,
          String(options.fetchSessionSeconds),
          mode,
        ], options.fetchSessionSeconds * 1000 + CHILD_TIMEOUT_SLACK_MS);
      };
      fetchSessions = { off: await run("off"), on: await run("on") };
    }
    if (options.bootstrap !== undefined && options.freshTopic && !options.keepTopic) {
      await deleteTopicQuietly(cleanup, binary, bootstrap, options.topic);
    }
    const report = {
      target,
      bootstrap,
      options,
      machine,
      startup,
      topic,
      maxRate,
      moderate,
      consume,
      objects,
      memory,
      fetchSessions,
    };
    if (options.json) {
      console.log(JSON.stringify(report, null, 2));
    } else {
      console.log(renderReport(report));
    }
    const failed = !maxRate.ok || (moderate !== null && !moderate.ok) || !consume.ok ||
      (fetchSessions !== null && (!fetchSessions.off.ok || !fetchSessions.on.ok));
    if (failed) Deno.exitCode = 1;
  } finally {
    await cleanup.run();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    console.error(`bench: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
}
