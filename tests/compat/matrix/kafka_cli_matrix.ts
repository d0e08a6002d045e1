/**
 * The matrix scenario through Apache Kafka's own command-line tools (the Maven jars that
 * tests/e2e/kafka_tools_test.ts uses: kafka-topics, kafka-console-producer,
 * kafka-console-consumer, kafka-consumer-groups), with their default settings.
 *
 * - create: `kafka-topics --create --partitions P`.
 * - produce:<codec>: one `kafka-console-producer --compression-codec <codec>` per codec, with
 *   `parse.key` and `parse.headers` (lines `h1:<j>,h2:x<TAB>k-<j><TAB>value`); any logged send
 *   error fails the cell.
 * - consume: `kafka-console-consumer --group G --from-beginning` (the scenario reads what was
 *   produced before the group existed) printing partition, offset, headers and key; it commits
 *   with the consumer's default auto-commit, and on close.
 * - describe: `kafka-consumer-groups --describe --state` and `--members --verbose` while the
 *   console consumer is still in the group.
 * - commit: after the console consumer stopped (SIGTERM, so it closes and commits),
 *   `kafka-consumer-groups --describe` shows CURRENT-OFFSET = LOG-END-OFFSET for every partition.
 * - delete: `kafka-topics --delete`, then `--list` no longer shows the topic.
 *
 * Usage: deno run -A kafka_cli_matrix.ts BOOTSTRAP TOPIC GROUP PARTITIONS COUNT COMPRESSED_COUNT
 *          [--deadline-s S]
 * Environment: KAFKA_REF_VERSION (default 4.1.0) picks .tools/kafka-ref/{libs,tools}-VERSION.
 */
import { drainLines } from "../../e2e/broker_process.ts";
import { REPO_ROOT, runProgram, tail } from "../../e2e/client_runner.ts";

const KAFKA_VERSION = Deno.env.get("KAFKA_REF_VERSION") ?? "4.1.0";
const CLASSPATH = `${REPO_ROOT}.tools/kafka-ref/libs-${KAFKA_VERSION}/*:` +
  `${REPO_ROOT}.tools/kafka-ref/tools-${KAFKA_VERSION}/*`;
const TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand";
const PRODUCER = "org.apache.kafka.tools.ConsoleProducer";
const CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer";
const GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
/** A short-lived client JVM: quick start-up matters more than peak speed. */
const JAVA = ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"];
/** The tools log warnings only, to stderr, so stdout is the tool's answer. */
const LOG4J2 = [
  "status = error",
  "appender.err.type = Console",
  "appender.err.name = STDERR",
  "appender.err.target = SYSTEM_ERR",
  "appender.err.layout.type = PatternLayout",
  "appender.err.layout.pattern = %p %m (%c)%n",
  "rootLogger.level = WARN",
  "rootLogger.appenderRef.err.ref = STDERR",
].join("\n");
const CODECS = ["none", "gzip", "snappy", "lz4", "zstd"] as const;
const CELLS = [
  "create",
  ...CODECS.map((c) => `produce:${c}`),
  "consume",
  "commit",
  "describe",
  "delete",
];
/** One tool run: JVM start-up plus a few requests. */
const TOOL_TIMEOUT_MS = 60_000;
/** How long the console consumer may take to leave after SIGTERM. */
const CONSUMER_STOP_TIMEOUT_MS = 20_000;
const VALUE_BYTES = 100;
/** Problems listed in a failure detail before the rest are only counted. */
const ERRORS_SHOWN_MAX = 5;
/** Characters of a failure detail kept in a cell line. */
const DETAIL_CHARS_MAX = 600;

class CellFailure extends Error {}

interface Args {
  bootstrap: string;
  topic: string;
  group: string;
  partitions: number;
  count: number;
  compressedCount: number;
  deadlineAt: number;
}

function parseArgs(): Args {
  const positional: string[] = [];
  let deadlineS = 120;
  for (let i = 0; i < Deno.args.length; i++) {
    if (Deno.args[i] === "--deadline-s") deadlineS = Number(Deno.args[++i]);
    else positional.push(Deno.args[i]);
  }
  const [bootstrap, topic, group, partitions, count, compressedCount] = positional;
  const args = {
    bootstrap,
    topic,
    group,
    partitions: Number(partitions),
    count: Number(count),
    compressedCount: Number(compressedCount),
    deadlineAt: Date.now() + deadlineS * 1000,
  };
  if (
    positional.length !== 6 || !(args.partitions >= 1) || !(args.count >= 1) ||
    !(args.compressedCount >= 1) || !(deadlineS > 0)
  ) {
    console.error(
      "Usage: kafka_cli_matrix.ts BOOTSTRAP TOPIC GROUP PARTITIONS COUNT COMPRESSED_COUNT " +
        "[--deadline-s S]",
    );
    Deno.exit(2);
  }
  return args;
}

function valueOf(j: number): string {
  const head = `v-${j}-`;
  return head + "x".repeat(Math.max(0, VALUE_BYTES - head.length));
}

class Cells {
  readonly #results = new Map<string, string>();

  #emit(cell: string, status: string, ms: number, detail = ""): void {
    this.#results.set(cell, status);
    const line: Record<string, unknown> = { cell, status, ms };
    if (detail) line.detail = detail.slice(0, DETAIL_CHARS_MAX);
    console.log(JSON.stringify(line));
    if (status === "fail") console.error(`kafka-cli ${cell}: ${detail}`);
  }

  async run(cell: string, step: () => Promise<void>): Promise<void> {
    const start = Date.now();
    try {
      await step();
      this.#emit(cell, "pass", Date.now() - start);
    } catch (err) {
      const detail = err instanceof CellFailure ? err.message : String(err);
      this.#emit(cell, "fail", Date.now() - start, detail);
    }
  }

  finish(version: string): number {
    for (const cell of CELLS) {
      if (!this.#results.has(cell)) this.#emit(cell, "fail", 0, "the program never ran this step");
    }
    const ok = ![...this.#results.values()].includes("fail");
    console.log(JSON.stringify({ client: "kafka-cli", version, ok }));
    return ok ? 0 : 1;
  }
}

/** Runs one tool to completion; throws with its output when it exits non-zero. */
/**
 * The KAFSCALE_MATRIX_SECURITY_* environment (README "Security") as a client properties file's
 * text (PEM trust store, JAAS line), or undefined for PLAINTEXT.
 */
function securityProperties(): string | undefined {
  const env = (name: string) => Deno.env.get(`KAFSCALE_MATRIX_${name}`) ?? "";
  const protocol = env("SECURITY_PROTOCOL");
  if (protocol === "" || protocol === "PLAINTEXT") return undefined;
  const lines = [`security.protocol=${protocol}`];
  if (env("SSL_CA_FILE") !== "") {
    lines.push("ssl.truststore.type=PEM", `ssl.truststore.location=${env("SSL_CA_FILE")}`);
  }
  if (protocol.startsWith("SASL_")) {
    const mechanism = env("SASL_MECHANISM") || "PLAIN";
    const module = mechanism.startsWith("SCRAM-")
      ? "org.apache.kafka.common.security.scram.ScramLoginModule"
      : "org.apache.kafka.common.security.plain.PlainLoginModule";
    lines.push(
      `sasl.mechanism=${mechanism}`,
      `sasl.jaas.config=${module} required username="${env("SASL_USERNAME")}" ` +
        `password="${env("SASL_PASSWORD")}";`,
    );
  }
  return lines.join("\n") + "\n";
}

async function tool(log4j: string, main: string, args: string[], stdin?: string) {
  const cmd = [...JAVA, `-Dlog4j2.configurationFile=${log4j}`, "-cp", CLASSPATH, main, ...args];
  if (stdin === undefined) {
    const r = await runProgram(cmd, { timeoutMs: TOOL_TIMEOUT_MS });
    if (r.code !== 0 || r.timedOut) {
      throw new CellFailure(`${main} exited ${r.code}: ${tail(r.stdout + r.stderr, 5)}`);
    }
    return r;
  }
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(TOOL_TIMEOUT_MS),
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stdin));
  await writer.close();
  const out = await child.output();
  const r = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (r.code !== 0) {
    throw new CellFailure(`${main} exited ${r.code}: ${tail(r.stdout + r.stderr, 5)}`);
  }
  return r;
}

/** The console consumer as a long-running group member. */
class ConsoleConsumer {
  readonly lines: string[] = [];
  readonly stderr: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly exited: Promise<number>;

  constructor(log4j: string, args: Args, extra: string[]) {
    this.#child = new Deno.Command(JAVA[0], {
      args: [
        ...JAVA.slice(1),
        `-Dlog4j2.configurationFile=${log4j}`,
        "-cp",
        CLASSPATH,
        CONSUMER,
        "--bootstrap-server",
        args.bootstrap,
        ...extra,
        "--topic",
        args.topic,
        "--group",
        args.group,
        "--from-beginning",
        "--property",
        "print.partition=true",
        "--property",
        "print.offset=true",
        "--property",
        "print.headers=true",
        "--property",
        "print.key=true",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const drained = Promise.all([
      drainLines(this.#child.stdout, (line) => this.lines.push(line)),
      drainLines(this.#child.stderr, (line) => {
        if (this.stderr.length < ERRORS_SHOWN_MAX * 4) this.stderr.push(line);
      }),
    ]);
    this.exited = this.#child.status.then(async (s) => {
      await drained;
      return s.code;
    });
  }

  /** SIGTERM: the tool's shutdown hook closes the consumer (commit, LeaveGroup). */
  async stop(): Promise<number> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const code = await Promise.race([
      this.exited,
      new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), CONSUMER_STOP_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (code === "timeout") {
      this.#child.kill("SIGKILL");
      await this.exited;
      throw new CellFailure(`console consumer did not exit within ${CONSUMER_STOP_TIMEOUT_MS} ms`);
    }
    return code;
  }
}

/** Checks the console consumer's lines: `Partition:P\tOffset:O\th1:J,h2:H\tKEY\tVALUE`. */
function verify(lines: string[], args: Args, ranges: Map<string, [number, number]>, total: number) {
  const errors: string[] = [];
  let errorCount = 0;
  const error = (message: string) => {
    errorCount++;
    if (errors.length < ERRORS_SHOWN_MAX) errors.push(message);
  };
  const seen = new Uint8Array(total);
  const offsets = new Map<number, number[]>();
  const pattern = /^Partition:(\d+)\tOffset:(\d+)\t(.*)\tk-(\d+)\t(.*)$/;
  for (const line of lines) {
    const m = pattern.exec(line);
    if (!m) {
      error(`unexpected line ${JSON.stringify(line.slice(0, 80))}`);
      continue;
    }
    const [partition, offset, headers, j] = [Number(m[1]), Number(m[2]), m[3], Number(m[4])];
    if (!(partition < args.partitions) || !(j < total)) {
      error(`unexpected record ${JSON.stringify(line.slice(0, 80))}`);
      continue;
    }
    if (!offsets.has(partition)) offsets.set(partition, []);
    offsets.get(partition)!.push(offset);
    if (seen[j]) error(`duplicate record k-${j}`);
    seen[j] = 1;
    if (m[5] !== valueOf(j)) error(`value of k-${j} is ${JSON.stringify(m[5].slice(0, 40))}`);
    if (headers !== `h1:${j},h2:x`) error(`headers of k-${j} are ${JSON.stringify(headers)}`);
  }
  const missing: Record<string, number> = {};
  let missingTotal = 0;
  for (let j = 0; j < total; j++) {
    if (seen[j]) continue;
    missingTotal++;
    for (const [codec, [start, end]] of ranges) {
      if (j >= start && j < end) missing[codec] = (missing[codec] ?? 0) + 1;
    }
  }
  if (missingTotal > 0) {
    error(`${missingTotal} of ${total} records missing: ${JSON.stringify(missing)}`);
  }
  for (const [partition, list] of offsets) {
    const sorted = [...list].sort((a, b) => a - b);
    const gap = sorted.findIndex((o, i) => o !== i);
    if (gap >= 0) error(`partition ${partition}: offsets not contiguous from 0 at ${gap}`);
  }
  if (total >= 100 * args.partitions && offsets.size < args.partitions) {
    error(`only ${offsets.size} of ${args.partitions} partitions got records`);
  }
  if (errorCount > 0) throw new CellFailure(`${errorCount} problems: ${errors.join("; ")}`);
}

async function until(condition: () => boolean, deadlineAt: number, what: string) {
  while (!condition()) {
    if (Date.now() > deadlineAt) throw new CellFailure(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function main(): Promise<number> {
  const args = parseArgs();
  const cells = new Cells();
  const log4j = await Deno.makeTempFile({ prefix: "kafka-cli-log4j2-", suffix: ".properties" });
  await Deno.writeTextFile(log4j, LOG4J2);
  const security = securityProperties();
  const clientConfig = security === undefined
    ? undefined
    : await Deno.makeTempFile({ prefix: "kafka-cli-client-", suffix: ".properties" });
  if (clientConfig !== undefined) await Deno.writeTextFile(clientConfig, security!);
  const withConfig = (flag: string) => clientConfig === undefined ? [] : [flag, clientConfig];
  const bs = ["--bootstrap-server", args.bootstrap, ...withConfig("--command-config")];
  const ranges = new Map<string, [number, number]>();
  let total = 0;
  for (const codec of CODECS) {
    const n = codec === "none" ? args.count : args.compressedCount;
    ranges.set(codec, [total, total + n]);
    total += n;
  }
  try {
    await cells.run("create", async () => {
      const r = await tool(log4j, TOPIC_COMMAND, [
        ...bs,
        "--create",
        "--topic",
        args.topic,
        "--partitions",
        String(args.partitions),
      ]);
      if (!r.stdout.includes(`Created topic ${args.topic}.`)) {
        throw new CellFailure(`unexpected output: ${tail(r.stdout, 3)}`);
      }
    });
    for (const [codec, [start, end]] of ranges) {
      await cells.run(`produce:${codec}`, async () => {
        let input = "";
        for (let j = start; j < end; j++) input += `h1:${j},h2:x\tk-${j}\t${valueOf(j)}\n`;
        const r = await tool(log4j, PRODUCER, [
          "--bootstrap-server",
          args.bootstrap,
          ...withConfig("--producer.config"),
          "--topic",
          args.topic,
          ...(codec === "none" ? [] : ["--compression-codec", codec]),
          "--property",
          "parse.key=true",
          "--property",
          "parse.headers=true",
        ], input);
        if (/ERROR|Exception/.test(r.stderr)) {
          throw new CellFailure(`send errors: ${tail(r.stderr, 5)}`);
        }
      });
    }
    const consumer = new ConsoleConsumer(log4j, args, withConfig("--consumer.config"));
    try {
      await cells.run("consume", async () => {
        await until(
          () => consumer.lines.length >= total,
          args.deadlineAt,
          `${total} records (got ${consumer.lines.length}; ${consumer.stderr.join(" | ")})`,
        );
        verify(consumer.lines, args, ranges, total);
      });
      await cells.run("describe", async () => {
        const state = await tool(log4j, GROUP_COMMAND, [
          ...bs,
          "--describe",
          "--group",
          args.group,
          "--state",
        ]);
        if (
          !new RegExp(`^${args.group}\\s+\\S+\\s+\\(\\d+\\)\\s+\\S+\\s+Stable\\s+1\\s*$`, "m")
            .test(state.stdout)
        ) {
          throw new CellFailure(`--state: want Stable with 1 member: ${tail(state.stdout, 3)}`);
        }
        const members = await tool(log4j, GROUP_COMMAND, [
          ...bs,
          "--describe",
          "--group",
          args.group,
          "--members",
          "--verbose",
        ]);
        const all = Array.from({ length: args.partitions }, (_, i) => i).join(",");
        // 3.x prints "topic(0,1,2)"; 4.x adds epoch columns and prints "topic:0,1,2".
        const row = new RegExp(
          `^${args.group}\\s+\\S+\\s+\\S+\\s+\\S+\\s+${args.partitions}\\s.*` +
            `\\s${args.topic}(:${all}|\\(${all}\\))\\s`,
          "m",
        );
        if (!row.test(members.stdout)) {
          throw new CellFailure(
            `--members --verbose: want one member owning ${args.topic}(${all}): ` +
              tail(members.stdout, 3),
          );
        }
      });
    } finally {
      const code = await consumer.stop();
      if (code !== 0 && code !== 143) console.error(`console consumer exited ${code}`);
    }
    await cells.run("commit", async () => {
      const r = await tool(log4j, GROUP_COMMAND, [...bs, "--describe", "--group", args.group]);
      const rows = [
        ...r.stdout.matchAll(
          new RegExp(`^${args.group}\\s+${args.topic}\\s+(\\d+)\\s+(\\S+)\\s+(\\S+)`, "gm"),
        ),
      ];
      const committed = Object.fromEntries(rows.map((m) => [m[1], m[2]]));
      const ends = Object.fromEntries(rows.map((m) => [m[1], m[3]]));
      if (rows.length !== args.partitions || JSON.stringify(committed) !== JSON.stringify(ends)) {
        throw new CellFailure(
          `committed ${JSON.stringify(committed)} differ from end offsets ${JSON.stringify(ends)}`,
        );
      }
    });
    await cells.run("delete", async () => {
      await tool(log4j, TOPIC_COMMAND, [...bs, "--delete", "--topic", args.topic]);
      const r = await tool(log4j, TOPIC_COMMAND, [...bs, "--list"]);
      if (r.stdout.split("\n").includes(args.topic)) {
        throw new CellFailure(`"${args.topic}" is still listed after --delete`);
      }
    });
  } finally {
    await Deno.remove(log4j).catch(() => {});
    if (clientConfig !== undefined) await Deno.remove(clientConfig).catch(() => {});
  }
  return cells.finish(KAFKA_VERSION);
}

Deno.exit(await main());
