/**
 * The distributed deployment for end-to-end tests: a real etcd and a real MinIO on loopback
 * (backends.ts) and `kafscale serve` processes (tests/e2e/broker_process.ts) pointed at them
 * through the `KAFSCALE_*` environment, plus what the tests watch them with: `/readyz` and
 * `/healthz` polled with a deadline, and the acked producer (a real confluent-kafka client that
 * prints every delivery report) with waits on its reports.
 *
 * Must not import the broker's code: tests talk to brokers through ports, signals and the
 * backends' own protocols.
 */
import { type EtcdServer, type S3Server, startEtcd, startS3 } from "./backends.ts";
import { type BrokerProcess, drainLines, startBroker } from "../e2e/broker_process.ts";
import { CLIENTS_DIR, pythonPath, requireFile } from "../e2e/client_runner.ts";

/** Pause between two polls of an HTTP endpoint. */
const POLL_INTERVAL_MS = 50;
/** Bound on one HTTP poll. */
const POLL_REQUEST_TIMEOUT_MS = 5_000;
/** Stderr lines of the producer kept for failure messages. */
const STDERR_LINES_MAX = 100;

export interface Backends extends AsyncDisposable {
  etcd: EtcdServer;
  s3: S3Server;
  stop(): Promise<void>;
}

/** Starts etcd and MinIO side by side. */
export async function startBackends(): Promise<Backends> {
  const [etcd, s3] = await Promise.allSettled([startEtcd(), startS3()]);
  if (etcd.status === "rejected" || s3.status === "rejected") {
    if (etcd.status === "fulfilled") await etcd.value.stop();
    if (s3.status === "fulfilled") await s3.value.stop();
    throw etcd.status === "rejected" ? etcd.reason : (s3 as PromiseRejectedResult).reason;
  }
  const stop = async () => {
    await Promise.all([etcd.value.stop(), s3.value.stop()]);
  };
  return { etcd: etcd.value, s3: s3.value, stop, [Symbol.asyncDispose]: stop };
}

/** The `KAFSCALE_*` environment that puts a broker on these backends. */
export function distributedEnv(backends: Pick<Backends, "etcd" | "s3">): Record<string, string> {
  const { etcd, s3 } = backends;
  return {
    KAFSCALE_S3_BUCKET: s3.bucket,
    KAFSCALE_S3_ENDPOINT: s3.endpoint,
    KAFSCALE_S3_REGION: s3.region,
    KAFSCALE_S3_PATH_STYLE: "true",
    KAFSCALE_S3_ACCESS_KEY: s3.accessKeyId,
    KAFSCALE_S3_SECRET_KEY: s3.secretAccessKey,
    KAFSCALE_ETCD_ENDPOINTS: etcd.endpoint,
  };
}

/** Starts `kafscale serve` on the backends (extra `serve` flags in `args`). */
export function startDistributedBroker(
  backends: Backends,
  opts: { brokerId?: number; args?: string[]; env?: Record<string, string> } = {},
): Promise<BrokerProcess> {
  return startBroker({
    brokerId: opts.brokerId,
    args: opts.args,
    env: { ...distributedEnv(backends), ...opts.env },
  });
}

export interface HealthAnswer {
  status: number;
  body: { status?: string; ready?: boolean; dependencies?: Record<string, string> };
}

/** GETs `http://ADDR/PATH` and parses the JSON answer; null when nothing answers. */
export async function getHealth(addr: string, path: string): Promise<HealthAnswer | null> {
  try {
    const response = await fetch(`http://${addr}${path}`, {
      signal: AbortSignal.timeout(POLL_REQUEST_TIMEOUT_MS),
    });
    return { status: response.status, body: await response.json() };
  } catch {
    return null;
  }
}

/** Polls `/PATH` until `accept` holds; throws with the last answer at the deadline. */
export async function pollHealth(
  addr: string,
  path: string,
  accept: (answer: HealthAnswer) => boolean,
  opts: { timeoutMs: number; what: string },
): Promise<HealthAnswer> {
  const deadline = performance.now() + opts.timeoutMs;
  let last: HealthAnswer | null = null;
  while (performance.now() < deadline) {
    last = await getHealth(addr, path);
    if (last && accept(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  throw new Error(
    `${path} did not show ${opts.what} within ${opts.timeoutMs} ms; last answer: ` +
      JSON.stringify(last),
  );
}

/** One `ACK <partition> <offset> <i>` report. */
export interface Ack {
  partition: number;
  offset: number;
  i: number;
  /** `performance.now()` when the line arrived. */
  atMs: number;
}

/** One `NACK <i> <error>` report. */
export interface Nack {
  i: number;
  error: string;
  atMs: number;
}

export interface AckedProducerOptions {
  bootstrap: string;
  topic: string;
  partitions: number;
  count: number;
  start?: number;
  create?: boolean;
  deadlineS: number;
  /** librdkafka settings (`retries=0`). */
  settings?: string[];
  /** Records per second at most (`--rate`); absent: as fast as the client can. */
  rate?: number;
}

/**
 * tests/e2e/clients/confluent_acked_producer.py as a child process whose reports are collected
 * as they arrive; `until` waits for a condition on them.
 */
export class AckedProducer {
  readonly acks: Ack[] = [];
  readonly nacks: Nack[] = [];
  /** The `DONE ...` line, once printed. */
  done: string | null = null;
  readonly #child: Deno.ChildProcess;
  readonly #stderr: string[] = [];
  readonly #drained: Promise<unknown>;
  readonly #listeners = new Set<() => void>();
  #exitCode: number | null = null;
  readonly exited: Promise<number>;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#drained = Promise.all([
      drainLines(child.stdout, (line) => this.#onLine(line), { dropUnterminated: true }),
      drainLines(child.stderr, (line) => {
        this.#stderr.push(line);
        if (this.#stderr.length > STDERR_LINES_MAX) this.#stderr.shift();
      }),
    ]);
    this.exited = child.status.then(async (status) => {
      await this.#drained;
      this.#exitCode = status.code;
      this.#notify();
      return status.code;
    });
  }

  static async start(opts: AckedProducerOptions): Promise<AckedProducer> {
    await requireFile(pythonPath());
    const args = [
      "-u",
      `${CLIENTS_DIR}confluent_acked_producer.py`,
      opts.bootstrap,
      opts.topic,
      String(opts.partitions),
      String(opts.count),
      "--start",
      String(opts.start ?? 0),
      "--deadline-s",
      String(opts.deadlineS),
      ...(opts.create === false ? ["--no-create"] : []),
      ...(opts.rate ? ["--rate", String(opts.rate)] : []),
      ...(opts.settings ?? []).flatMap((s) => ["--set", s]),
    ];
    const child = new Deno.Command(pythonPath(), {
      args,
      env: { PYTHONUNBUFFERED: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new AckedProducer(child);
  }

  get exitCode(): number | null {
    return this.#exitCode;
  }

  /** Resolves once `condition` holds (checked after every report); rejects at the deadline. */
  until(condition: () => boolean, opts: { timeoutMs: number; what: string }): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (condition()) {
          finish();
          resolve();
        } else if (this.#exitCode !== null) {
          finish();
          reject(new Error(`The producer exited before ${opts.what}.\n${this.describe()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new Error(
            `The producer did not reach ${opts.what} in ${opts.timeoutMs} ms.\n${this.describe()}`,
          ),
        );
      }, opts.timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      this.#listeners.add(check);
    });
  }

  /** SIGKILLs the producer if it runs and waits for it. */
  async kill(): Promise<void> {
    if (this.#exitCode === null) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Exited meanwhile.
      }
    }
    await this.exited;
  }

  /** `<partition> <offset> <i>` lines for confluent_verify_acked.py. */
  ackedLines(): string {
    return this.acks.map((a) => `${a.partition} ${a.offset} ${a.i}\n`).join("");
  }

  describe(): string {
    return [
      `acks=${this.acks.length} nacks=${this.nacks.length} exit=${this.#exitCode} done=${this.done}`,
      ...(this.nacks.length > 0 ? [`first NACK: ${this.nacks[0].i} ${this.nacks[0].error}`] : []),
      "--- producer stderr ---",
      ...this.#stderr,
    ].join("\n");
  }

  #onLine(line: string): void {
    const now = performance.now();
    if (line.startsWith("ACK ")) {
      const [partition, offset, i] = line.slice(4).split(" ").map(Number);
      this.acks.push({ partition, offset, i, atMs: now });
    } else if (line.startsWith("NACK ")) {
      const rest = line.slice(5);
      const space = rest.indexOf(" ");
      this.nacks.push({ i: Number(rest.slice(0, space)), error: rest.slice(space + 1), atMs: now });
    } else if (line.startsWith("DONE ")) {
      this.done = line;
    }
    this.#notify();
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}
