/**
 * Runs franz-go's own `pkg/kgo` test suite against a broker: its integration tests take the seed
 * broker from `KGO_SEEDS`. The franz-go version is the one tests/compat/matrix/go/go.mod pins;
 * its module source comes from the Go proxy (`go mod download`) and is copied to a temp dir,
 * since the module cache is read-only. `scripts/compat.ts --kgo` runs this (outside CI: the
 * suite takes minutes).
 *
 * Settings the suite reads: KGO_TEST_RF=1 (one broker; the suite defaults to replication factor
 * 3), KGO_LOG_LEVEL=none, KGO_TEST_RECORDS (records its ETL tests chain through; default 500000).
 *
 * Must not import the broker's code.
 */
import { MATRIX_DIR } from "./matrix.ts";

export interface KgoOptions {
  /** `go test -run` filter ("" runs everything). */
  run: string;
  /** `go test -skip` filter ("" skips nothing). */
  skip: string;
  /** `go test -timeout`, e.g. "10m". */
  timeout: string;
  /** KGO_TEST_RECORDS; undefined keeps the suite's default. */
  records?: number;
  /** More of the suite's settings (e.g. KGO_TEST_SCRAM and KGO_TEST_SCRAM_SEEDS). */
  env?: Record<string, string>;
}

export type KgoStatus = "pass" | "fail" | "skip" | "unfinished";

export interface KgoResult {
  franzGoVersion: string;
  /** Top-level tests by name. */
  tests: Map<string, KgoStatus>;
  /** Output of each failed or unfinished test (last lines), and of skipped ones (reason). */
  output: Map<string, string>;
  passed: number;
  failed: number;
  skipped: number;
  unfinished: number;
  exitCode: number;
  ms: number;
}

/**
 * Tests left out of the run (`go test -skip`), and why: the known, by-design failure.
 */
export const KGO_EXCLUDED = {
  TestConsumeRegex: "expects Kafka's internal __consumer_offsets topic; committed offsets live " +
    "in the metadata store, so the broker has no such topic",
  Test848RegexBrokerResolves: "the same expectation (__consumer_offsets in Metadata and matched " +
    "by a KIP-848 regex subscription)",
} as const;

/** A `go test -skip` pattern for exactly these top-level tests. */
export function skipPattern(names: readonly string[]): string {
  return names.length === 0 ? "" : `^(${names.join("|")})$`;
}

/** The reason a skipped test gave: its first output line that is not a run/pause marker. */
export function skipReason(output: string): string {
  const line = output.split("\n").map((l) => l.trim()).find((l) =>
    l !== "" && !/^(=== |--- )/.test(l)
  );
  return line?.replace(/^\S+_test\.go:\d+: /, "") ?? "";
}

/** Lines of a test's output kept for the report. */
const OUTPUT_LINES_MAX = 15;
/** Extra time past `go test -timeout` before the run is killed (compiling comes first). */
const KILL_GRACE_MS = 5 * 60_000;

/** `go` from PATH, else the official installer's /usr/local/go/bin/go (as scripts/setup_*.sh). */
async function goBinary(): Promise<string> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").filter((d) => d)) {
    try {
      await Deno.stat(`${dir}/go`);
      return `${dir}/go`;
    } catch {
      // Not in this directory.
    }
  }
  return "/usr/local/go/bin/go";
}

async function franzGoVersion(): Promise<string> {
  const goMod = await Deno.readTextFile(`${MATRIX_DIR}go/go.mod`);
  const m = /github\.com\/twmb\/franz-go (v[^\s]+)/.exec(goMod);
  if (!m) throw new Error(`No github.com/twmb/franz-go requirement in ${MATRIX_DIR}go/go.mod`);
  return m[1];
}

async function run(cmd: string[], cwd: string, env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

function parseTimeoutMs(timeout: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(timeout);
  if (!m) throw new Error(`Timeout must look like "600s", "10m" or "1h", got "${timeout}"`);
  return Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as "s" | "m" | "h"];
}

/** Reads `go test -json` events into per-test results. */
export function parseGoTestJson(
  text: string,
): { tests: Map<string, KgoStatus>; output: Map<string, string[]> } {
  const tests = new Map<string, KgoStatus>();
  const output = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    let e: { Action?: string; Test?: string; Output?: string };
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    if (!e.Test || e.Test.includes("/")) continue;
    if (e.Action === "run") tests.set(e.Test, "unfinished");
    if (e.Action === "pass" || e.Action === "fail" || e.Action === "skip") {
      tests.set(e.Test, e.Action);
    }
    if (e.Action === "output" && e.Output) {
      const lines = output.get(e.Test) ?? [];
      lines.push(e.Output.trimEnd());
      if (lines.length > OUTPUT_LINES_MAX) lines.shift();
      output.set(e.Test, lines);
    }
  }
  return { tests, output };
}

/** Runs the suite against `bootstrap`; throws when the source cannot be fetched or copied. */
export async function runKgoSuite(bootstrap: string, opts: KgoOptions): Promise<KgoResult> {
  const start = Date.now();
  const version = await franzGoVersion();
  const go = await goBinary();
  const download = await run(
    [go, "mod", "download", "-json", `github.com/twmb/franz-go@${version}`],
    `${MATRIX_DIR}go`,
  );
  if (download.code !== 0) {
    throw new Error(`go mod download of franz-go ${version} failed: ${download.stderr}`);
  }
  const dir = JSON.parse(download.stdout).Dir as string;
  const work = await Deno.makeTempDir({ prefix: "kgo-suite-" });
  try {
    const copy = await run(["cp", "-R", `${dir}/.`, work], work);
    if (copy.code !== 0) throw new Error(`Copying ${dir} failed: ${copy.stderr}`);
    await run(["chmod", "-R", "u+w", work], work);
    const env: Record<string, string> = {
      KGO_SEEDS: bootstrap,
      KGO_TEST_RF: "1",
      KGO_LOG_LEVEL: "none",
      GOFLAGS: "-buildvcs=false",
    };
    if (opts.records !== undefined) env.KGO_TEST_RECORDS = String(opts.records);
    Object.assign(env, opts.env ?? {});
    const args = [go, "test", "-count=1", "-json", `-timeout=${opts.timeout}`];
    if (opts.run) args.push(`-run=${opts.run}`);
    if (opts.skip) args.push(`-skip=${opts.skip}`);
    args.push(".");
    const child = new Deno.Command(args[0], {
      args: args.slice(1),
      cwd: `${work}/pkg/kgo`,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(parseTimeoutMs(opts.timeout) + KILL_GRACE_MS),
    }).spawn();
    const out = await child.output();
    const { tests, output } = parseGoTestJson(new TextDecoder().decode(out.stdout));
    const kept = new Map<string, string>();
    const counts = { pass: 0, fail: 0, skip: 0, unfinished: 0 };
    for (const [name, status] of tests) {
      counts[status]++;
      if (status !== "pass") kept.set(name, (output.get(name) ?? []).join("\n"));
    }
    if (tests.size === 0) {
      kept.set("(build)", new TextDecoder().decode(out.stderr).slice(-4000));
    }
    return {
      franzGoVersion: version,
      tests,
      output: kept,
      passed: counts.pass,
      failed: counts.fail,
      skipped: counts.skip,
      unfinished: counts.unfinished,
      exitCode: out.code,
      ms: Date.now() - start,
    };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}
