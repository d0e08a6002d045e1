/**
 * Processes for the consumer-group end-to-end tests: group members (kafkajs, confluent-kafka,
 * kafka-python programs in tests/e2e/clients/group_consumer_*), the admin helper
 * (group_admin.py, confluent-kafka's AdminClient) and a chunked acks=all producer
 * (confluent_acked_producer.py).
 *
 * Must not import the broker's code: everything goes through the Kafka port.
 */
import { drainLines } from "./broker_process.ts";
import { CLIENTS_DIR, pythonPath, requireFile, runProgram, tail } from "./client_runner.ts";

/** Lines of a member's stderr kept for failure messages. */
const STDERR_LINES_MAX = 200;
/**
 * How long a member may take to leave after SIGTERM. A member stopped during a rebalance (the
 * previous member's LeaveGroup starts one) may first wait for its JoinGroup, which the broker
 * holds until every member has rejoined or the rebalance timeout (the members' 30 s
 * max.poll.interval.ms) has passed, and librdkafka's close() can wait for that answer.
 */
const STOP_TIMEOUT_MS = 45_000;
/** Lines of a member's stderr shown when it fails (librdkafka's group debug log included). */
const STDERR_LINES_SHOWN = 80;
/** How often `until` re-checks its condition. */
const POLL_INTERVAL_MS = 50;

export type MemberKind = "kafkajs" | "confluent" | "kafka-python" | "kcat";

/** kcat -G reports each rebalance on stderr: `% Group G rebalanced (memberid M): assigned: t [0], ...`. */
const KCAT_REBALANCE = /^% Group \S+ rebalanced \(memberid (\S+)\): (assigned|revoked): ?(.*)$/;

export interface Assignment {
  [topic: string]: number[];
}

/** One group member process and what it printed. */
export class GroupMember {
  readonly name: string;
  readonly kind: MemberKind;
  /** Every record it printed, as `[partition, offset, key]`, in order. */
  readonly records: [number, number, string][] = [];
  /** Its last committed offset per partition (the next offset to read). */
  readonly commits = new Map<number, number>();
  memberId = "";
  assignment: Assignment | null = null;
  /** Every assignment it reported, in order (a revocation shows as a smaller one). */
  readonly assignments: Assignment[] = [];
  ready = false;
  bye = false;
  readonly exited: Promise<number>;
  readonly #child: Deno.ChildProcess;
  readonly #stderr: string[] = [];
  #exitCode: number | null = null;

  private constructor(name: string, kind: MemberKind, child: Deno.ChildProcess) {
    this.name = name;
    this.kind = kind;
    this.#child = child;
    const drained = Promise.all([
      drainLines(child.stdout, (line) => this.#onLine(line), { dropUnterminated: true }),
      drainLines(child.stderr, (line) => {
        if (kind === "kcat") this.#onKcatLine(line);
        this.#stderr.push(line);
        if (this.#stderr.length > STDERR_LINES_MAX) this.#stderr.shift();
      }),
    ]);
    this.exited = child.status.then(async (s) => {
      await drained;
      this.#exitCode = s.code;
      return s.code;
    });
  }

  static async start(
    kind: MemberKind,
    name: string,
    opts: { bootstrap: string; topic: string; group: string; extra?: string[] },
  ): Promise<GroupMember> {
    const [program, ...args] = kind === "kcat" ? kcatCommand(name, opts) : [
      kind === "kafkajs" ? "node" : pythonPath(),
      `${CLIENTS_DIR}${
        {
          kafkajs: "group_consumer_kafkajs.mjs",
          confluent: "group_consumer_confluent.py",
          "kafka-python": "group_consumer_kafka_python.py",
        }[kind]
      }`,
      opts.bootstrap,
      opts.topic,
      opts.group,
      name,
      ...(opts.extra ?? []),
    ];
    if (program.includes("/")) await requireFile(program);
    const child = new Deno.Command(program, {
      args,
      // librdkafka members log their group protocol steps (debug "cgrp") to stderr, so a
      // failure message shows what a member was waiting for.
      env: { PYTHONUNBUFFERED: "1", NO_COLOR: "1", KAFSCALE_TEST_RDKAFKA_DEBUG: "cgrp" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new GroupMember(name, kind, child);
  }

  /** kcat has no "ready" or "bye": its rebalance lines on stderr carry the assignment. */
  #onKcatLine(line: string): void {
    const m = KCAT_REBALANCE.exec(line);
    if (!m) return;
    this.ready = true;
    this.memberId = m[1];
    const assignment: Assignment = {};
    if (m[2] === "assigned") {
      for (const [, topic, p] of m[3].matchAll(/(\S+) \[(\d+)\]/g)) {
        (assignment[topic] ??= []).push(Number(p));
      }
    }
    this.assignment = assignment;
    this.assignments.push(assignment);
  }

  #onLine(line: string): void {
    const space = line.indexOf(" ");
    const head = space < 0 ? line : line.slice(0, space);
    switch (head) {
      case "r": {
        const [, p, o, key] = line.split(" ");
        this.records.push([Number(p), Number(o), key ?? ""]);
        return;
      }
      case "c": {
        const [, p, o] = line.split(" ");
        this.commits.set(Number(p), Number(o));
        return;
      }
      case "assigned": {
        const rest = line.slice(space + 1);
        const gap = rest.indexOf(" ");
        this.memberId = rest.slice(0, gap);
        this.assignment = JSON.parse(rest.slice(gap + 1));
        this.assignments.push(this.assignment!);
        return;
      }
      case "ready":
        this.ready = true;
        return;
      case "bye":
        this.bye = true;
        return;
    }
  }

  get exitCode(): number | null {
    return this.#exitCode;
  }

  describe(): string {
    return `${this.name} (${this.kind}, member ${this.memberId || "-"}, exit ${this.#exitCode}, ` +
      `${this.records.length} records, assignment ${JSON.stringify(this.assignment)})\n` +
      `--- stderr ---\n${tail(this.#stderr.join("\n"), STDERR_LINES_SHOWN)}`;
  }

  /** Leaves cleanly: SIGTERM, then the program closes its consumer (LeaveGroup) and exits 0. */
  async stop(): Promise<void> {
    if (this.#exitCode !== null) return;
    this.#child.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((r) => timer = setTimeout(() => r(true), STOP_TIMEOUT_MS)),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      await this.kill();
      throw new Error(
        `${this.name} did not stop within ${STOP_TIMEOUT_MS} ms.\n${this.describe()}`,
      );
    }
  }

  /** SIGKILL: no LeaveGroup, no last commit. */
  async kill(): Promise<void> {
    if (this.#exitCode === null) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Exited between the check and the signal.
      }
    }
    await this.exited;
  }
}

/**
 * kcat as a balanced consumer (-G): records on stdout in the members' `r` format; its own
 * auto-commit. `--assignor A` in `extra` picks partition.assignment.strategy.
 */
function kcatCommand(
  name: string,
  opts: { bootstrap: string; topic: string; group: string; extra?: string[] },
): string[] {
  const extra = opts.extra ?? [];
  const at = extra.indexOf("--assignor");
  const assignor = at >= 0 ? extra[at + 1] : "range";
  return [
    "kcat",
    "-b",
    opts.bootstrap,
    "-G",
    opts.group,
    "-X",
    `client.id=${name}`,
    "-X",
    `partition.assignment.strategy=${assignor}`,
    "-X",
    "session.timeout.ms=10000",
    "-o",
    "beginning",
    "-u",
    "-f",
    "r %p %o %k\n",
    opts.topic,
  ];
}

/** Polls `condition` until it holds; throws with `what` and `context()` at the deadline. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  opts: { timeoutMs: number; what: string; context?: () => string | Promise<string> },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) {
      const context = opts.context ? `\n${await opts.context()}` : "";
      throw new Error(`Timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${context}`);
    }
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
}

export interface DescribedMember {
  member_id: string;
  client_id: string;
  host: string;
  instance_id: string | null;
  assignment: Assignment;
}

export interface GroupDescription {
  state: string;
  assignor: string;
  members: DescribedMember[];
}

/** confluent-kafka's AdminClient in a long-lived helper process (group_admin.py). */
export class GroupAdmin implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #answers: string[] = [];
  readonly #stderr: string[] = [];
  readonly #drained: Promise<unknown>;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#drained = Promise.all([
      drainLines(child.stdout, (line) => this.#answers.push(line)),
      drainLines(child.stderr, (line) => {
        this.#stderr.push(line);
        if (this.#stderr.length > STDERR_LINES_MAX) this.#stderr.shift();
      }),
    ]);
  }

  static async start(bootstrap: string): Promise<GroupAdmin> {
    await requireFile(pythonPath());
    const child = new Deno.Command(pythonPath(), {
      args: [`${CLIENTS_DIR}group_admin.py`, bootstrap],
      env: { PYTHONUNBUFFERED: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new GroupAdmin(child);
  }

  /** One request, answered in order; throws the helper's error. */
  request<T>(req: Record<string, unknown>): Promise<T> {
    const run = this.#queue.then(async () => {
      const before = this.#answers.length;
      await this.#writer.write(new TextEncoder().encode(JSON.stringify(req) + "\n"));
      await until(() => this.#answers.length > before, {
        timeoutMs: 30_000,
        what: `an answer to ${JSON.stringify(req)}`,
        context: () => tail(this.#stderr.join("\n")),
      });
      const answer = JSON.parse(this.#answers[before]);
      if (answer.error) throw new Error(`Admin ${JSON.stringify(req)} failed: ${answer.error}`);
      return answer as T;
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  describe(group: string): Promise<GroupDescription> {
    return this.request({ op: "describe", group });
  }

  list(states: string[] = []): Promise<{ groups: { group_id: string; state: string }[] }> {
    return this.request({ op: "list", states });
  }

  offsets(
    group: string,
    topic: string,
    partitions: number,
  ): Promise<{ committed: number[]; end: number[] }> {
    return this.request({ op: "offsets", group, topic, partitions });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.#child.status;
    await this.#drained;
  }
}

/** Produces records `start..start+count-1` with acks=all; returns `[partition, offset, i]` acks. */
export async function produce(
  bootstrap: string,
  topic: string,
  partitions: number,
  start: number,
  count: number,
): Promise<[number, number, number][]> {
  const cmd = [
    pythonPath(),
    `${CLIENTS_DIR}confluent_acked_producer.py`,
    bootstrap,
    topic,
    String(partitions),
    String(count),
    "--start",
    String(start),
    "--no-create",
    "--deadline-s",
    "60",
  ];
  const result = await runProgram(cmd, { timeoutMs: 90_000 });
  const acks: [number, number, number][] = [];
  for (const line of result.stdout.split("\n")) {
    if (!line.startsWith("ACK ")) continue;
    const [, p, o, i] = line.split(" ");
    acks.push([Number(p), Number(o), Number(i)]);
  }
  if (result.code !== 0 || acks.length !== count) {
    throw new Error(
      `Producer acked ${acks.length} of ${count} (exit ${result.code}).\n${tail(result.stderr)}`,
    );
  }
  return acks;
}
