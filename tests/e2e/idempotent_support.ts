/**
 * Shared by the idempotent-producer end-to-end tests: the three real producers (Java
 * kafka-clients, franz-go, librdkafka through confluent-kafka), building them, creating a topic,
 * running a producer while reading its ACK lines, and checking the consumed topic.
 *
 * Every producer program takes `BOOTSTRAP TOPIC COUNT`-style arguments, prints
 * `ACK <partition> <offset> <i>` per acknowledged record and exits 0 only when every record was
 * acknowledged. Records are those of clients/roundtrip_common.py, so one verifier
 * (clients/confluent_verify_acked.py) checks them all.
 *
 * Must not import the broker's code; the protocol codecs and the small client are fine.
 */
import assert from "node:assert/strict";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { CREATE_TOPICS_REQUEST } from "../../lib/protocol/generated/create_topics_request.ts";
import { CREATE_TOPICS_RESPONSE } from "../../lib/protocol/generated/create_topics_response.ts";
import { drainLines } from "./broker_process.ts";
import {
  CLIENTS_DIR,
  describeRun,
  lastJsonLine,
  pythonPath,
  REPO_ROOT,
  requireFile,
  runProgram,
} from "./client_runner.ts";

/** Where the compat builds land (tests/compat/{go,java}/build.sh). */
const GO_PROGRAM = `${REPO_ROOT}.tools/go-compat/idempotent_producer`;
/** How long a compat build may take (first Go build downloads modules). */
const BUILD_TIMEOUT_MS = 300_000;
/** Deadline of one verifier run. */
const VERIFY_DEADLINE_S = 90;
const KILL_GRACE_MS = 30_000;
/** Producer stderr lines kept for failure messages. */
const STDERR_LINES_MAX = 60;
/** Deadline each producer program gives itself. */
export const PRODUCE_DEADLINE_S = 120;

export interface ProducerProgram {
  name: string;
  /** Builds or checks the program; throws a message saying how to install what is missing. */
  prepare(): Promise<void>;
  command(bootstrap: string, topic: string, partitions: number, count: number): string[];
}

async function build(script: string, tool: string, env?: Record<string, string>): Promise<void> {
  const cmd = ["bash", `${REPO_ROOT}${script}`];
  const result = await runProgram(cmd, { timeoutMs: BUILD_TIMEOUT_MS, env });
  assert.equal(
    result.code,
    0,
    `Cannot build the ${tool} producer ("bash scripts/setup.sh" installs the toolchains).\n` +
      describeRun(cmd, result),
  );
}

/** Java kafka-clients `version` with its defaults: idempotent, acks=all, 5 requests in flight. */
export function javaProducer(version: string): ProducerProgram {
  const classpath = [
    `${REPO_ROOT}.tools/java-compat/classes-${version}`,
    `${REPO_ROOT}.tools/java-compat/libs-${version}/*`,
  ].join(":");
  return {
    name: `java kafka-clients ${version}`,
    prepare: () =>
      build("tests/compat/java/build.sh", "Java", { KAFSCALE_JAVA_CLIENT_VERSION: version }),
    command: (bootstrap, topic, _partitions, count) => [
      "java",
      "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
      "-cp",
      classpath,
      "IdempotentProducer",
      bootstrap,
      topic,
      String(count),
      "--deadline-s",
      String(PRODUCE_DEADLINE_S),
    ],
  };
}

export const JAVA_PRODUCER = javaProducer("3.9.1");

/** franz-go with its defaults: idempotent, acks=all. */
export const FRANZ_GO_PRODUCER: ProducerProgram = {
  name: "franz-go",
  prepare: () => build("tests/compat/go/build.sh", "Go"),
  command: (bootstrap, topic, _partitions, count) => [
    GO_PROGRAM,
    bootstrap,
    topic,
    String(count),
    "--deadline-s",
    String(PRODUCE_DEADLINE_S),
  ],
};

/** librdkafka (confluent-kafka) with enable.idempotence=true, otherwise its defaults. */
export const LIBRDKAFKA_PRODUCER: ProducerProgram = {
  name: "librdkafka",
  prepare: () => requireFile(pythonPath()),
  command: (bootstrap, topic, partitions, count) => [
    pythonPath(),
    "-u",
    `${CLIENTS_DIR}confluent_acked_producer.py`,
    bootstrap,
    topic,
    String(partitions),
    String(count),
    "--no-create",
    "--deadline-s",
    String(PRODUCE_DEADLINE_S),
    "--set",
    "enable.idempotence=true",
  ],
};

/** How often `waitFor` re-checks its condition. */
const POLL_INTERVAL_MS = 10;

/**
 * Polls `condition` until it holds (true) or `timeoutMs` passes (false); `wake` (optional) ends
 * a wait early. Bounded by the deadline.
 */
export async function waitFor(
  condition: () => boolean,
  timeoutMs: number,
  wake?: Promise<unknown>,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let woken = false;
  wake?.then(() => woken = true);
  while (!condition() && !woken && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  return condition();
}

/** Creates a topic through the broker (the Go and Java programs do not create topics). */
export async function createTopic(
  bootstrap: string,
  topic: string,
  partitions: number,
): Promise<void> {
  const conn = await KafkaConnection.connect(bootstrap, "idempotent-e2e");
  try {
    const res = await conn.send(
      { request: CREATE_TOPICS_REQUEST, response: CREATE_TOPICS_RESPONSE },
      4,
      {
        topics: [{
          name: topic,
          numPartitions: partitions,
          replicationFactor: 1,
          assignments: [],
          configs: [],
        }],
        timeoutMs: 10_000,
        validateOnly: false,
      },
    );
    const result = res?.topics[0];
    assert.equal(result?.errorCode, 0, `CreateTopics "${topic}": ${JSON.stringify(result)}`);
  } finally {
    conn.close();
    await conn.closedByPeer().catch(() => {});
  }
}

/** The sum of a Prometheus counter's samples on the broker's /metrics (0 when absent). */
export async function scrapeCounter(httpAddr: string, name: string): Promise<number> {
  const res = await fetch(`http://${httpAddr}/metrics`);
  const text = await res.text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return sum;
}

/** One acknowledged record. */
export interface Ack {
  partition: number;
  offset: number;
  i: number;
}

export function parseAck(line: string): Ack | null {
  const m = /^ACK (\d+) (\d+) (\d+)$/.exec(line);
  return m ? { partition: Number(m[1]), offset: Number(m[2]), i: Number(m[3]) } : null;
}

export interface RunningProducer {
  acks: Ack[];
  stderr: () => string;
  stdoutTail: () => string;
  /** Settles with the exit code once the program exited and its output was read. */
  exited: Promise<number>;
  /** Exit code; kills the program when `timeoutMs` passes first. */
  finished(timeoutMs: number): Promise<{ code: number; timedOut: boolean }>;
}

/** Starts a producer program and collects its ACK lines as they come. */
export function startProducer(cmd: string[]): RunningProducer {
  const [program, ...args] = cmd;
  const child = new Deno.Command(program, {
    args,
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1", PYTHONUNBUFFERED: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const acks: Ack[] = [];
  const stderr: string[] = [];
  const others: string[] = [];
  const drained = Promise.all([
    drainLines(child.stdout, (line) => {
      const ack = parseAck(line);
      if (!ack) {
        others.push(line);
        if (others.length > STDERR_LINES_MAX) others.shift();
        return;
      }
      acks.push(ack);
    }),
    drainLines(child.stderr, (line) => {
      stderr.push(line);
      if (stderr.length > STDERR_LINES_MAX) stderr.shift();
    }),
  ]);
  const status = child.status.then(async (s) => {
    await drained;
    return s.code;
  });
  return {
    acks,
    stderr: () => stderr.join("\n"),
    stdoutTail: () => others.join("\n"),
    exited: status,
    async finished(timeoutMs) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = await Promise.race([
        status.then(() => false),
        new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), timeoutMs)),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        try {
          child.kill("SIGKILL");
        } catch {
          // Exited between the timeout and the kill.
        }
      }
      return { code: await status, timedOut };
    },
  };
}

export interface VerifySummary {
  records: number;
  duplicates: number;
  lost: number;
  ok: boolean;
  text: string;
}

/**
 * Reads the whole topic with confluent_verify_acked.py: every acknowledged record must be at its
 * acknowledged partition and offset, offsets gapless; counts duplicates (a key seen twice).
 */
export async function verifyTopic(
  bootstrap: string,
  topic: string,
  partitions: number,
  acks: Ack[],
): Promise<VerifySummary> {
  const ackedFile = await Deno.makeTempFile({ prefix: "kafscale-acked-", suffix: ".txt" });
  try {
    await Deno.writeTextFile(
      ackedFile,
      acks.map((a) => `${a.partition} ${a.offset} ${a.i}`).join("\n") + "\n",
    );
    const cmd = [
      pythonPath(),
      `${CLIENTS_DIR}confluent_verify_acked.py`,
      bootstrap,
      topic,
      String(partitions),
      ackedFile,
      "--deadline-s",
      String(VERIFY_DEADLINE_S),
    ];
    const result = await runProgram(cmd, { timeoutMs: VERIFY_DEADLINE_S * 1000 + KILL_GRACE_MS });
    const summary = lastJsonLine(result.stdout);
    assert.ok(summary, `The verifier printed no summary.\n${describeRun(cmd, result)}`);
    return {
      records: Number(summary.records),
      duplicates: Number(summary.duplicates),
      lost: Number(summary.lost),
      ok: summary.ok === true && result.code === 0,
      text: describeRun(cmd, result),
    };
  } finally {
    await Deno.remove(ackedFile);
  }
}

/**
 * Checks one producer's acknowledgements: every record 0..count-1 acknowledged exactly once,
 * and within each partition the records in the order they were sent (idempotence keeps order).
 * Returns problems, empty when all is well.
 */
export function checkAcks(acks: Ack[], count: number): string[] {
  const problems: string[] = [];
  const seen = new Uint8Array(count);
  for (const a of acks) {
    if (a.i < 0 || a.i >= count) problems.push(`ack for unknown record ${a.i}`);
    else if (seen[a.i]++ > 0) problems.push(`record ${a.i} acknowledged twice`);
  }
  const missing = seen.reduce((n, s) => n + (s === 0 ? 1 : 0), 0);
  if (missing > 0) problems.push(`${missing} of ${count} records never acknowledged`);
  const byPartition = new Map<number, Ack[]>();
  for (const a of acks) {
    const list = byPartition.get(a.partition);
    if (list) list.push(a);
    else byPartition.set(a.partition, [a]);
  }
  for (const [p, list] of byPartition) {
    list.sort((x, y) => x.offset - y.offset);
    for (let k = 1; k < list.length; k++) {
      if (list[k].offset === list[k - 1].offset) {
        problems.push(`partition ${p} offset ${list[k].offset} acknowledged for two records`);
      } else if (list[k].i < list[k - 1].i) {
        problems.push(
          `partition ${p}: record ${list[k].i} at offset ${list[k].offset} follows record ` +
            `${list[k - 1].i}; records were reordered`,
        );
      }
    }
  }
  return problems.slice(0, 20);
}
