/**
 * Java applications in e2e tests (Kafka Connect, Kafka Streams, kafka-clients programs of
 * tests/compat/stateful/java): the jars scripts/setup_compat.sh fetches, a process wrapper with
 * bounded output, polling with deadlines, and readers and writers of test topics.
 */
import assert from "node:assert/strict";
import { type BrokerProcess, drainLines } from "./broker_process.ts";
import { REPO_ROOT, requireFile } from "./client_runner.ts";
import { AdminClient } from "../../lib/client/admin.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import {
  type ConsumedRecord,
  decodeRecordBatches,
  encodeRecordBatch,
} from "../../lib/protocol/records.ts";

const VERSIONS = await Deno.readTextFile(`${REPO_ROOT}tests/compat/stateful/versions.env`);
export const VERSION = VERSIONS.match(/^STATEFUL_KAFKA_VERSION="?([^"\s]+)"?/m)![1];
const TOOLS = `${REPO_ROOT}.tools/compat-stateful`;
export const CLASSPATH = `${TOOLS}/classes-${VERSION}:${TOOLS}/libs-${VERSION}/*`;
/** Small heap, quick start-up: these JVMs do little work. */
const JAVA = ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"];
/** slf4j-simple: warnings and errors to stderr; the programs' own lines go to stdout. */
const LOGGING = ["-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"];
/** A JVM start plus a group join (the broker's initial rebalance delay is 3 s). */
export const START_TIMEOUT_MS = 60_000;
/** Work after start: N records, or a few hundred words. */
export const WORK_TIMEOUT_MS = 60_000;
/** A graceful stop (Connect commits offsets, Streams flushes and commits). */
export const STOP_TIMEOUT_MS = 30_000;
/** Between two looks at a polled condition. */
const POLL_INTERVAL_MS = 200;
/** Lines of stderr kept for failure messages. */
const STDERR_LINES_MAX = 200;
/** Stdout lines kept: the programs print one line per record or word. */
const STDOUT_LINES_MAX = 100_000;

export const enc = new TextEncoder();
export const dec = new TextDecoder();

/** A counter's value on the broker's /metrics (0 when absent). */
export async function metric(broker: BrokerProcess, name: string): Promise<number> {
  const res = await fetch(`http://${broker.httpAddr}/metrics`);
  const text = await res.text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

/** Fails (with the setup command to run) unless scripts/setup_compat.sh built the Java apps. */
export async function jarsInstalled(): Promise<void> {
  await requireFile(`${TOOLS}/libs-${VERSION}/.complete`);
  await requireFile(`${TOOLS}/classes-${VERSION}/.stamp`);
}

/** Polls `check` until it returns true; throws naming `what` after `timeoutMs`. */
export async function until(
  what: string,
  timeoutMs: number,
  check: () => boolean | Promise<boolean>,
  detail: () => string = () => "",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms: ${what}\n${detail()}`);
    }
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
}

/** A Java program with its output drained into bounded line buffers. */
export class JavaProcess {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #drained: Promise<unknown>;
  #exit: Deno.CommandStatus | null = null;

  constructor(name: string, mainClass: string, args: string[]) {
    this.#child = new Deno.Command(JAVA[0], {
      args: [
        ...JAVA.slice(1),
        ...LOGGING,
        `-Dkafscale.test=${name}`,
        "-cp",
        CLASSPATH,
        mainClass,
        ...args,
      ],
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const keep = (lines: string[], max: number) => (line: string) => {
      lines.push(line);
      if (lines.length > max) lines.shift();
    };
    this.#drained = Promise.all([
      drainLines(this.#child.stdout, keep(this.stdout, STDOUT_LINES_MAX)),
      drainLines(this.#child.stderr, keep(this.stderr, STDERR_LINES_MAX)),
    ]);
    this.#child.status.then((s) => this.#exit = s);
  }

  get exited(): boolean {
    return this.#exit !== null;
  }

  output(): string {
    return `stdout (last lines):\n${this.stdout.slice(-20).join("\n")}\n` +
      `stderr (last lines):\n${this.stderr.slice(-60).join("\n")}`;
  }

  /** Waits for a stdout line matching `pattern`; fails early when the program exits. */
  async waitForLine(
    pattern: RegExp,
    timeoutMs: number,
    context: () => string = () => "",
  ): Promise<RegExpMatchArray> {
    let found: RegExpMatchArray | null = null;
    const detail = () => [this.output(), context()].filter((s) => s !== "").join("\n");
    await until(`a line matching ${pattern}`, timeoutMs, () => {
      if (this.exited) throw new Error(`Exited before printing ${pattern}:\n${detail()}`);
      for (const line of this.stdout) {
        found = line.match(pattern);
        if (found) return true;
      }
      return false;
    }, detail);
    return found!;
  }

  /** Waits for the program to end on its own (SIGKILL after `timeoutMs`); its exit status. */
  async exit(timeoutMs: number): Promise<Deno.CommandStatus> {
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, timeoutMs);
    try {
      const status = await this.#child.status;
      await this.#drained;
      return status;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL (a crash): nothing is flushed or committed; resolves once the process is gone. */
  async kill(): Promise<void> {
    if (!this.exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    await this.#child.status;
    await this.#drained;
  }

  /** SIGTERM (a graceful stop), then SIGKILL after the deadline; resolves with the exit status. */
  async stop(): Promise<Deno.CommandStatus> {
    if (!this.exited) this.#child.kill("SIGTERM");
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, STOP_TIMEOUT_MS);
    try {
      const status = await this.#child.status;
      await this.#drained;
      return status;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Every record of `topic` (all partitions), read from offset 0 to the high watermark. */
export async function readTopic(
  bootstrap: string,
  topic: string,
  isolationLevel: 0 | 1 = 0,
): Promise<ConsumedRecord[]> {
  using admin = await AdminClient.connect(bootstrap);
  const [described] = await admin.describeTopics([topic]);
  const conn = await KafkaConnection.connect(bootstrap, "kafscale-e2e-reader");
  try {
    const all: ConsumedRecord[] = [];
    for (const p of described.partitions) {
      let offset = p.earliestOffset;
      // Bounded: each round moves past at least one batch, and the end is fixed.
      for (let round = 0; offset < p.latestOffset && round < 10_000; round++) {
        const res = await conn.send(API_SCHEMAS[1], 12, {
          replicaId: -1,
          maxWaitMs: 0,
          minBytes: 1,
          maxBytes: 4 * 1024 * 1024,
          isolationLevel,
          sessionId: 0,
          sessionEpoch: -1,
          topics: [{
            topic,
            topicId: "AAAAAAAAAAAAAAAAAAAAAA",
            partitions: [{
              partition: p.partition,
              currentLeaderEpoch: -1,
              fetchOffset: offset,
              lastFetchedEpoch: -1,
              logStartOffset: -1,
              partitionMaxBytes: 4 * 1024 * 1024,
            }],
          }],
          forgottenTopicsData: [],
          rackId: "",
        });
        const part = res!.responses[0].partitions[0];
        assert.equal(part.errorCode, ERROR_CODES.NONE, `fetch ${topic}-${p.partition}`);
        const { records, batches } = decodeRecordBatches(part.records ?? new Uint8Array());
        if (batches.length === 0) break;
        // As clients do: control records (transaction markers) are not data, and under
        // read_committed a listed aborted transaction's records are dropped up to its marker.
        const aborted = (part.abortedTransactions ?? []).map((a) => ({
          ...a,
          end: batches.find((b) =>
            b.isControl && b.producerId === a.producerId && b.baseOffset >= a.firstOffset
          )?.baseOffset ?? Infinity,
        }));
        const batchOf = (o: number) =>
          batches.find((b) =>
            b.baseOffset <= o && o <= b.baseOffset + b.lastOffsetDelta
          )!;
        all.push(...records.filter((r) => {
          if (r.offset < offset || r.offset >= p.latestOffset) return false;
          const b = batchOf(r.offset);
          return !b.isControl && !aborted.some((a) =>
            a.producerId === b.producerId && a.firstOffset <= r.offset && r.offset < a.end
          );
        }));
        offset = batches.at(-1)!.baseOffset + batches.at(-1)!.lastOffsetDelta + 1;
      }
    }
    return all;
  } finally {
    conn.close();
  }
}

export const WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"];

/** `lines` lines of 1-5 words from a seeded generator, and how often each word occurs. */
export function lines(seed: number, count: number): { lines: string[]; words: number } {
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state;
  };
  const out: string[] = [];
  let words = 0;
  for (let i = 0; i < count; i++) {
    const n = 1 + (next() % 5);
    out.push(Array.from({ length: n }, () => WORDS[next() % WORDS.length]).join(" "));
    words += n;
  }
  return { lines: out, words };
}

export function countWords(all: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of all) for (const w of line.split(" ")) counts.set(w, (counts.get(w) ?? 0) + 1);
  return counts;
}

export async function produceLines(bootstrap: string, topic: string, all: string[]): Promise<void> {
  const conn = await KafkaConnection.connect(bootstrap, "kafscale-e2e-producer");
  try {
    // Two partitions, alternating, so the repartition topic really moves words between tasks.
    for (const partition of [0, 1]) {
      const mine = all.filter((_, i) => i % 2 === partition);
      const res = await conn.send(API_SCHEMAS[0], 9, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 10_000,
        topicData: [{
          name: topic,
          partitionData: [{
            index: partition,
            records: encodeRecordBatch(
              mine.map((l) => ({ key: null, value: enc.encode(l), timestamp: Date.now() })),
            ),
          }],
        }],
      });
      assert.equal(res!.responses[0].partitionResponses[0].errorCode, ERROR_CODES.NONE);
    }
  } finally {
    conn.close();
  }
}

/** The latest count per word in the output topic (Long values, big-endian). */
export async function latestCounts(
  bootstrap: string,
  topic: string,
  isolationLevel: 0 | 1 = 0,
): Promise<Map<string, number>> {
  const latest = new Map<string, number>();
  for (const r of await readTopic(bootstrap, topic, isolationLevel)) {
    const view = new DataView(r.value!.buffer, r.value!.byteOffset, r.value!.byteLength);
    latest.set(dec.decode(r.key!), Number(view.getBigInt64(0)));
  }
  return latest;
}

/** A free loopback port (a broker restarted on it keeps its address for running clients). */
export { freePort } from "../support/ports.ts";
