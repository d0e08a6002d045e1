/**
 * grpcurl (github.com/fullstorydev/grpcurl, built by scripts/setup_backends.sh into
 * .tools/bin) as the control service's outside client: it reads lib/control/broker.proto
 * itself, so these calls check the wire contract, not our own codec.
 *
 * Must not import the broker's code.
 */
import { drainLines } from "../e2e/broker_process.ts";
import { REPO_ROOT, requireFile } from "../e2e/client_runner.ts";

export const GRPCURL = `${REPO_ROOT}.tools/bin/grpcurl`;
/** Bound on one unary grpcurl call. */
const CALL_TIMEOUT_MS = 60_000;
/** Stream messages kept by `GrpcurlStream`. */
const STREAM_MESSAGES_MAX = 100_000;

export interface GrpcurlResult {
  code: number;
  /** The answer (unary), parsed; null when the call failed. */
  json: Record<string, unknown> | null;
  stdout: string;
  stderr: string;
}

function baseArgs(token: string | null): string[] {
  return [
    "-plaintext",
    "-emit-defaults",
    "-import-path",
    `${REPO_ROOT}lib/control`,
    "-proto",
    "broker.proto",
    ...(token === null ? [] : ["-H", `authorization: Bearer ${token}`]),
  ];
}

/** `grpcurl -d DATA ADDR kafscale.control.SERVICE/METHOD`; `data` is sent as given. */
export async function grpcurl(
  addr: string,
  method: string,
  data: string | object = {},
  opts: { token?: string | null; timeoutMs?: number } = {},
): Promise<GrpcurlResult> {
  await requireFile(GRPCURL);
  const body = typeof data === "string" ? data : JSON.stringify(data);
  const out = await new Deno.Command(GRPCURL, {
    args: [...baseArgs(opts.token ?? null), "-d", body, addr, `kafscale.control.${method}`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(opts.timeoutMs ?? CALL_TIMEOUT_MS),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  let json: Record<string, unknown> | null = null;
  if (out.code === 0 && stdout.trim() !== "") json = JSON.parse(stdout);
  return { code: out.code, json, stdout, stderr };
}

/** Splits grpcurl's stream output (pretty-printed JSON objects, one after another). */
class JsonObjectSplitter {
  #buf = "";
  #depth = 0;
  #inString = false;
  #escaped = false;

  push(text: string, onObject: (obj: Record<string, unknown>) => void): void {
    for (const ch of text) {
      if (this.#depth === 0 && ch !== "{") continue;
      this.#buf += ch;
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (ch === "\\") this.#escaped = true;
        else if (ch === '"') this.#inString = false;
        continue;
      }
      if (ch === '"') this.#inString = true;
      else if (ch === "{") this.#depth++;
      else if (ch === "}" && --this.#depth === 0) {
        onObject(JSON.parse(this.#buf));
        this.#buf = "";
      }
    }
  }
}

/** A server-streaming call (WatchAssignments) whose messages are collected as they arrive. */
export class GrpcurlStream {
  readonly messages: Record<string, unknown>[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #stderr: string[] = [];
  readonly #listeners = new Set<() => void>();
  readonly exited: Promise<number>;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    const splitter = new JsonObjectSplitter();
    const drained = Promise.all([
      (async () => {
        for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
          splitter.push(chunk, (obj) => {
            if (this.messages.length < STREAM_MESSAGES_MAX) this.messages.push(obj);
            for (const l of [...this.#listeners]) l();
          });
        }
      })(),
      drainLines(child.stderr, (line) => this.#stderr.push(line)),
    ]);
    this.exited = child.status.then(async (s) => {
      await drained;
      for (const l of [...this.#listeners]) l();
      return s.code;
    });
  }

  static async start(
    addr: string,
    method: string,
    data: object,
    opts: { token?: string | null } = {},
  ): Promise<GrpcurlStream> {
    await requireFile(GRPCURL);
    const child = new Deno.Command(GRPCURL, {
      args: [
        ...baseArgs(opts.token ?? null),
        "-d",
        JSON.stringify(data),
        addr,
        `kafscale.control.${method}`,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new GrpcurlStream(child);
  }

  /** Resolves once `condition` holds on the messages so far; rejects at the deadline. */
  until(
    condition: (messages: Record<string, unknown>[]) => boolean,
    opts: { timeoutMs: number; what: string },
  ): Promise<void> {
    if (condition(this.messages)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let exited = false;
      this.exited.then(() => (exited = true));
      const check = () => {
        if (condition(this.messages)) {
          done();
          resolve();
        } else if (exited) {
          done();
          reject(new Error(`grpcurl exited before ${opts.what}.\n${this.describe()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`No ${opts.what} within ${opts.timeoutMs} ms.\n${this.describe()}`));
      }, opts.timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      this.#listeners.add(check);
    });
  }

  describe(): string {
    return [
      `${this.messages.length} messages; last: ${JSON.stringify(this.messages.slice(-5))}`,
      "--- grpcurl stderr ---",
      ...this.#stderr.slice(-20),
    ].join("\n");
  }

  /** Ends the call (SIGTERM) and waits for grpcurl to exit. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Exited already.
    }
    await this.exited;
  }
}
