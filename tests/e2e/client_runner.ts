/**
 * Runs the real-client programs in tests/e2e/clients/ for end-to-end tests: finds the
 * interpreters scripts/setup.sh installed, runs a program with a deadline, and reads the JSON
 * summary line each program prints last.
 *
 * Must not import the broker's code.
 */

export const REPO_ROOT = new URL("../../", import.meta.url).pathname;
export const CLIENTS_DIR = `${REPO_ROOT}tests/e2e/clients/`;
/** Lines of a program's stderr shown in a failure message. */
const STDERR_TAIL_LINES = 40;

/** The venv python with the PyPI clients (KAFSCALE_PYTHON from scripts/env.sh, else .tools). */
export function pythonPath(): string {
  return Deno.env.get("KAFSCALE_PYTHON") ?? `${REPO_ROOT}.tools/venv/bin/python`;
}

/** Throws a message that says how to install a missing client program or interpreter. */
export async function requireFile(path: string): Promise<void> {
  try {
    await Deno.stat(path);
  } catch {
    throw new Error(`Missing "${path}": run "bash scripts/setup.sh" to install the test clients.`);
  }
}

export interface ProgramResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs `cmd` to completion; kills it (SIGKILL) when `timeoutMs` passes first. */
export async function runProgram(
  cmd: string[],
  opts: { timeoutMs: number; env?: Record<string, string> },
): Promise<ProgramResult> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, opts.timeoutMs);
  try {
    const [program, ...args] = cmd;
    const out = await new Deno.Command(program, {
      args,
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1", PYTHONUNBUFFERED: "1", ...opts.env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: controller.signal,
    }).output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
      timedOut,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The last `lines` lines of `text`. */
export function tail(text: string, lines = STDERR_TAIL_LINES): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** Parses the JSON summary a client program prints as its last stdout line. */
export function lastJsonLine(stdout: string): Record<string, unknown> | undefined {
  const last = stdout.trimEnd().split("\n").at(-1) ?? "";
  try {
    const parsed = JSON.parse(last);
    return typeof parsed === "object" && parsed !== null ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** A failure message with the program's command, exit, summary and stderr tail. */
export function describeRun(cmd: string[], result: ProgramResult): string {
  return [
    `Command: ${cmd.join(" ")}`,
    `Exit code: ${result.code}${result.timedOut ? " (killed at the deadline)" : ""}`,
    `Summary: ${lastJsonLine(result.stdout) ? tail(result.stdout, 1) : "(none)"}`,
    `--- stderr (last ${STDERR_TAIL_LINES} lines) ---`,
    tail(result.stderr),
  ].join("\n");
}

/**
 * Runs confluent_verify_acked.py over `acks` (`<partition> <offset> <i>` lines, as the acked
 * producer prints them after "ACK "): every acknowledged record must be at its partition and
 * offset with its content. Returns the verifier's summary and a failure description.
 */
export async function verifyAcked(
  bootstrap: string,
  topic: string,
  partitions: number,
  acks: string[],
  deadlineS = 90,
): Promise<{ summary: Record<string, unknown> | undefined; describe: string }> {
  const ackedFile = await Deno.makeTempFile({ prefix: "kafscale-acked-", suffix: ".txt" });
  try {
    await Deno.writeTextFile(ackedFile, acks.join("\n") + "\n");
    const cmd = [
      pythonPath(),
      `${CLIENTS_DIR}confluent_verify_acked.py`,
      bootstrap,
      topic,
      String(partitions),
      ackedFile,
      "--deadline-s",
      String(deadlineS),
    ];
    const result = await runProgram(cmd, { timeoutMs: (deadlineS + 30) * 1000 });
    return { summary: lastJsonLine(result.stdout), describe: describeRun(cmd, result) };
  } finally {
    await Deno.remove(ackedFile);
  }
}
