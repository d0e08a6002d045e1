/**
 * Starts the real broker (`deno run -A cli.ts serve ...`) as a child process for end-to-end
 * tests, waits for its ready line and hands back its addresses and lifecycle controls.
 *
 * Owns: the child process, draining its stdout/stderr (so it never blocks on a full pipe), the
 * last lines of its output for failure messages, and a temp data dir when none is given.
 * Must not import the broker's code: tests talk to it only through ports and signals.
 *
 * Contract with `serve` (see DESIGN.md, "Command-line contract"): it logs one stderr line
 * containing `Broker ready` and `kafka="HOST:PORT"` (also `http=`, `control=`) when it accepts
 * connections; SIGTERM and SIGINT stop it gracefully with exit code 0.
 *
 * `KAFSCALE_E2E_BROKER_BIN=path/to/kafscale` runs a compiled binary instead of `deno run`.
 */

/** Where the repo root is, so `cli.ts` resolves whatever the test's working directory. */
const REPO_ROOT = new URL("../../", import.meta.url).pathname;
/** How long `serve` may take to print its ready line. */
const READY_TIMEOUT_MS = 20_000;
/** How long a graceful stop may take before the broker is killed. */
const STOP_TIMEOUT_MS = 15_000;
/** Output lines (stdout and stderr together) kept for `logs()`. */
const LOG_LINES_MAX = 400;
/** Longer output lines are cut to this many characters in `logs()`. */
const LOG_LINE_CHARS_MAX = 4_000;

const READY_PATTERN = /Broker ready/;
// deno-lint-ignore no-control-regex -- ANSI colour codes start with ESC.
const ANSI_PATTERN = /\x1b\[[0-9;]*[A-Za-z]/g;

export interface StartBrokerOptions {
  /** Data directory; a fresh temp dir (removed by `cleanup()`) when not given. */
  dataDir?: string;
  /** Extra environment variables for the broker (`KAFSCALE_*`). */
  env?: Record<string, string>;
  /** Extra `serve` arguments, after the listener and data-dir flags. */
  args?: string[];
  brokerId?: number;
  /** Defaults to 20 s. */
  readyTimeoutMs?: number;
  /**
   * Program and arguments that stand for `kafscale` (default: `deno run -A cli.ts`, or
   * `KAFSCALE_E2E_BROKER_BIN`). `serve ...` is appended. Tests of this harness use a fake.
   */
  command?: string[];
}

export interface BrokerProcess {
  /** `127.0.0.1:PORT` of the Kafka listener, as clients take it. */
  readonly bootstrap: string;
  readonly host: string;
  readonly port: number;
  /** `HOST:PORT` of the HTTP health/metrics listener, or "" when the ready line has none. */
  readonly httpAddr: string;
  /** `HOST:PORT` of the gRPC control listener, or "" when the ready line has none. */
  readonly controlAddr: string;
  readonly dataDir: string;
  readonly pid: number;
  /** SIGTERM, wait for exit (SIGKILL after 15 s, then throws); returns the exit code. */
  stop(): Promise<number>;
  /** SIGKILL (a crash), wait for exit. */
  kill(): Promise<void>;
  /** The last lines the broker printed, stdout ones prefixed `[stdout] `. */
  logs(): string;
  /** Kills the broker if it still runs and removes the data dir if this harness created it. */
  cleanup(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Keeps the last `LOG_LINES_MAX` lines. */
class LineLog {
  #lines: string[] = [];

  push(line: string): void {
    this.#lines.push(
      line.length > LOG_LINE_CHARS_MAX ? `${line.slice(0, LOG_LINE_CHARS_MAX)}...` : line,
    );
    if (this.#lines.length > LOG_LINES_MAX) this.#lines.shift();
  }

  text(): string {
    return this.#lines.join("\n");
  }
}

/**
 * Reads a child's pipe to the end, calling `onLine` for each line (without its newline). A last
 * line with no newline is passed too unless `dropUnterminated` (a process killed mid-write).
 */
export async function drainLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
  opts: { dropUnterminated?: boolean } = {},
): Promise<void> {
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let newline = pending.indexOf("\n");
    while (newline >= 0) {
      onLine(pending.slice(0, newline).replace(/\r$/, ""));
      pending = pending.slice(newline + 1);
      newline = pending.indexOf("\n");
    }
    // A child that prints without newlines must not grow this without bound.
    if (pending.length > LOG_LINE_CHARS_MAX) {
      onLine(pending);
      pending = "";
    }
  }
  if (pending.length > 0 && !opts.dropUnterminated) onLine(pending);
}

interface ReadyAddresses {
  kafka: string;
  http: string;
  control: string;
}

function field(line: string, name: string): string {
  const match = line.match(new RegExp(`${name}="?([^"\\s]+)`));
  return match ? match[1] : "";
}

/** Parses the ready line; throws when it has no Kafka address. */
export function parseReadyLine(line: string): ReadyAddresses {
  const kafka = field(line, "kafka");
  if (kafka === "") {
    throw new Error(`Broker ready line has no kafka="HOST:PORT" field: ${JSON.stringify(line)}`);
  }
  return { kafka, http: field(line, "http"), control: field(line, "control") };
}

function splitHostPort(addr: string): { host: string; port: number } {
  const colon = addr.lastIndexOf(":");
  const port = Number(addr.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65_535) {
    throw new Error(`Broker address is not HOST:PORT: ${JSON.stringify(addr)}`);
  }
  return { host: addr.slice(0, colon).replace(/^\[|\]$/g, ""), port };
}

function defaultCommand(): string[] {
  const bin = Deno.env.get("KAFSCALE_E2E_BROKER_BIN");
  if (bin) return [bin];
  return [Deno.execPath(), "run", "-A", `${REPO_ROOT}cli.ts`];
}

/** Starts `kafscale serve` on free loopback ports and waits until it is ready. */
export async function startBroker(opts: StartBrokerOptions = {}): Promise<BrokerProcess> {
  const ownsDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? await Deno.makeTempDir({ prefix: "kafscale-e2e-" });
  const [program, ...prefix] = opts.command ?? defaultCommand();
  const args = [
    ...prefix,
    "serve",
    "--listen",
    "127.0.0.1:0",
    "--http-listen",
    "127.0.0.1:0",
    "--control-listen",
    "127.0.0.1:0",
    "--data-dir",
    dataDir,
    ...(opts.brokerId === undefined ? [] : ["--broker-id", String(opts.brokerId)]),
    ...(opts.args ?? []),
  ];
  const child = new Deno.Command(program, {
    args,
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1", ...opts.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  const log = new LineLog();
  let exitCode: number | undefined;
  let resolveReady: (line: string) => void = () => {};
  const readyLine = new Promise<string>((resolve) => resolveReady = resolve);
  const drained = Promise.all([
    drainLines(child.stdout, (line) => log.push(`[stdout] ${line}`)),
    drainLines(child.stderr, (line) => {
      log.push(line);
      const plain = line.replace(ANSI_PATTERN, "");
      if (READY_PATTERN.test(plain)) resolveReady(plain);
    }),
  ]);
  const exited = child.status.then(async (status) => {
    await drained;
    exitCode = status.code;
    return status.code;
  });

  const cleanupDir = async () => {
    if (ownsDataDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  };
  const killAndWait = async () => {
    if (exitCode === undefined) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited between the check and the signal.
      }
    }
    await exited;
  };

  const readyTimeoutMs = opts.readyTimeoutMs ?? READY_TIMEOUT_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    readyLine.then((line) => ({ kind: "ready" as const, line })),
    exited.then((code) => ({ kind: "exited" as const, code })),
    new Promise<{ kind: "timeout" }>((resolve) => {
      timer = setTimeout(() => resolve({ kind: "timeout" }), readyTimeoutMs);
    }),
  ]);
  clearTimeout(timer);

  const command = [program, ...args].join(" ");
  if (outcome.kind !== "ready") {
    await killAndWait();
    await cleanupDir();
    const why = outcome.kind === "exited"
      ? `exited with code ${outcome.code} before it was ready`
      : `printed no "Broker ready" line within ${readyTimeoutMs} ms`;
    throw new Error(`Broker ${why}. Command: ${command}\n--- broker output ---\n${log.text()}`);
  }

  let addrs: ReadyAddresses;
  let hostPort: { host: string; port: number };
  try {
    addrs = parseReadyLine(outcome.line);
    hostPort = splitHostPort(addrs.kafka);
  } catch (err) {
    await killAndWait();
    await cleanupDir();
    throw err;
  }

  const stop = async (): Promise<number> => {
    if (exitCode !== undefined) return exitCode;
    try {
      child.kill("SIGTERM");
    } catch {
      // Already exited between the check and the signal.
    }
    let stopTimer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((resolve) => {
        stopTimer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(stopTimer);
    if (timedOut) {
      await killAndWait();
      throw new Error(
        `Broker did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM and was killed.\n` +
          `--- broker output ---\n${log.text()}`,
      );
    }
    return await exited;
  };
  const cleanup = async () => {
    await killAndWait();
    await cleanupDir();
  };

  return {
    bootstrap: `${hostPort.host}:${hostPort.port}`,
    host: hostPort.host,
    port: hostPort.port,
    httpAddr: addrs.http,
    controlAddr: addrs.control,
    dataDir,
    pid: child.pid,
    stop,
    kill: killAndWait,
    logs: () => log.text(),
    cleanup,
    [Symbol.asyncDispose]: cleanup,
  };
}
