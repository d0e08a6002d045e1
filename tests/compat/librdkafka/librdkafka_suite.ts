/**
 * Runs librdkafka's own integration test suite (`tests/` of the librdkafka source) against a
 * broker. `scripts/compat.ts --librdkafka` drives it; CI runs the allow-listed tests through
 * scripts/test.sh.
 *
 * Source: the npm package @confluentinc/kafka-javascript ships librdkafka's complete source,
 * `tests/` included, under `deps/librdkafka/` (the PyPI sdist of confluent-kafka does not), so it
 * comes through npm, a registry every CI machine reaches. The tarball is checked against the pinned
 * integrity, built once (configure, the library, then `tests/test-runner`) and cached outside the
 * repository, keyed by version, because CI starts from a fresh clone each time:
 * `$KAFSCALE_CACHE_DIR` or `${XDG_CACHE_HOME:-~/.cache}/kafscale`/librdkafka-tests-<versions>/.
 * A cold build takes about 2-3 minutes on 2 cores and needs a C/C++ toolchain, make, and the
 * zlib, OpenSSL and RapidJSON headers (build-essential, zlib1g-dev, libssl-dev, rapidjson-dev;
 * scripts/setup_compat.sh installs them).
 *
 * Each test number runs in its own `test-runner` process (`TESTS=NNNN`, `-L` skips the broker-less
 * sub-tests that share the number, `-E` skips sockem), so a hung test is killed on its own and
 * every result is attributed. `LD_LIBRARY_PATH` points at the fresh build, never at the system's
 * librdkafka.
 *
 * Must not import the broker's code.
 */

/** The npm package that carries librdkafka's source, pinned with its registry integrity. */
export const SOURCE_PACKAGE = "@confluentinc/kafka-javascript";
export const SOURCE_PACKAGE_VERSION = "1.10.1";
const SOURCE_PACKAGE_INTEGRITY =
  "sha512-KVePUBn21EqCVP9mfxzEuM3SYJHHEF7X+iiC2e43QQgDSyEaksInmCGooT3w5q+cNAdkSCrK71j0ICfqoSqZLw==";
/** The librdkafka release inside it (its `package.json` "librdkafka" field; checked at build). */
export const LIBRDKAFKA_VERSION = "2.15.1";
/**
 * OpenSSL is built in (test 0064 sets `security.protocol=ssl` on a client it never connects);
 * the other optional features are left out: no broker test we run needs them (SASL tests are
 * excluded until the broker serves SASL), and the build's dependencies stay a C/C++ toolchain
 * and a few headers.
 */
const CONFIGURE_FLAGS = [
  "--enable-ssl",
  "--disable-gssapi",
  "--disable-curl",
  "--disable-sasl",
  "--disable-zstd",
  "--disable-lz4-ext",
  "--disable-regex-ext",
];
/**
 * Headers the build needs: zlib, OpenSSL, and RapidJSON, which the suite's statistics tests
 * (0053, 0110) need to parse the client's JSON statistics (without it they skip).
 */
const REQUIRED_HEADERS = ["zlib.h", "openssl/ssl.h", "rapidjson/schema.h"];
/** The broker version the suite is told (`TEST_KAFKA_VERSION`): the API surface we emulate. */
export const TEST_KAFKA_VERSION = "4.1.0";

/** How long one test number may run before it is killed, per mode. */
const TEST_TIMEOUT_MS = { quick: 240_000, full: 600_000 } as const;
/** Lines of a failed test's output kept for the report. */
const FAIL_OUTPUT_LINES_MAX = 25;
/** Bound on the build steps (configure, make). */
const BUILD_STEP_TIMEOUT_MS = 20 * 60_000;

export type TestMode = "quick" | "full";
export type TestStatus = "pass" | "fail" | "skip" | "timeout";

export interface SubTestResult {
  name: string;
  /** PASSED, FAILED or SKIPPED, as the test runner's summary says. */
  state: string;
  /** The failure or skip reason from the summary. */
  reason: string;
}

export interface TestResult {
  /** Four-digit test number, e.g. "0081". */
  number: string;
  mode: TestMode;
  status: TestStatus;
  subTests: SubTestResult[];
  ms: number;
  /** The last lines of the output, for failures and timeouts. */
  output: string;
}

/** A short FNV-1a hash of the build's flags and headers: a changed build gets its own entry. */
function flagsTag(): string {
  let h = 0x811c9dc5;
  for (const c of [...CONFIGURE_FLAGS, ...REQUIRED_HEADERS].join(" ")) {
    h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

/** Where the build is cached: outside the clone, keyed by versions and configure flags. */
export function cacheDir(): string {
  const explicit = Deno.env.get("KAFSCALE_CACHE_DIR");
  const base = explicit ??
    `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`}/kafscale`;
  return `${base}/librdkafka-tests-${SOURCE_PACKAGE_VERSION}-${LIBRDKAFKA_VERSION}-${flagsTag()}`;
}

/** librdkafka's source tree (with the build in it) inside the cache. */
export function sourceDir(): string {
  return `${cacheDir()}/librdkafka`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; what: string; env?: Record<string, string> },
): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    env: opts.env,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), BUILD_STEP_TIMEOUT_MS);
  try {
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    if (!out.success) {
      const tail = text.split("\n").slice(-30).join("\n");
      throw new Error(`${opts.what} failed (exit ${out.code}):\n${tail}`);
    }
    return text;
  } finally {
    clearTimeout(timer);
  }
}

async function sha512Integrity(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-512", await Deno.readFile(path));
  let binary = "";
  for (const b of new Uint8Array(digest)) binary += String.fromCharCode(b);
  return `sha512-${btoa(binary)}`;
}

/**
 * The path of a built `tests/test-runner`, building it first when the cache has none. `log`
 * receives one line per step.
 */
export async function ensureBuild(log: (line: string) => void = console.error): Promise<string> {
  const dir = cacheDir();
  const runner = `${sourceDir()}/tests/test-runner`;
  if (await exists(`${dir}/.complete`) && await exists(runner)) return runner;
  const needs = ["command -v cc", "command -v c++", "command -v make", "command -v npm"]
    .concat(REQUIRED_HEADERS.map((h) => `test -f /usr/include/${h}`));
  for (const check of needs) {
    try {
      await run("sh", ["-c", check], { what: check });
    } catch {
      throw new Error(
        `Cannot build librdkafka's tests: "${check}" failed; install build-essential, ` +
          "zlib1g-dev, libssl-dev, rapidjson-dev and npm (apt-get install -y build-essential " +
          "zlib1g-dev libssl-dev rapidjson-dev npm), or run scripts/setup_compat.sh",
      );
    }
  }
  const parent = dir.slice(0, dir.lastIndexOf("/"));
  await Deno.mkdir(parent, { recursive: true });
  const work = await Deno.makeTempDir({ dir: parent, prefix: ".librdkafka-build-" });
  try {
    const spec = `${SOURCE_PACKAGE}@${SOURCE_PACKAGE_VERSION}`;
    log(`librdkafka: fetching ${spec} (librdkafka ${LIBRDKAFKA_VERSION} source) from npm`);
    await run("npm", ["pack", spec, "--pack-destination", work, "--silent"], {
      cwd: work,
      what: `npm pack ${spec}`,
    });
    const tgz = [...Deno.readDirSync(work)].find((e) => e.name.endsWith(".tgz"))?.name;
    if (!tgz) throw new Error(`npm pack ${spec} wrote no tarball`);
    const integrity = await sha512Integrity(`${work}/${tgz}`);
    if (integrity !== SOURCE_PACKAGE_INTEGRITY) {
      throw new Error(`${spec} does not match its pinned integrity: got "${integrity}"`);
    }
    await run("tar", ["xzf", tgz, "package/package.json", "package/deps/librdkafka"], {
      cwd: work,
      what: "tar",
    });
    const pkg = JSON.parse(await Deno.readTextFile(`${work}/package/package.json`));
    if (pkg.librdkafka !== LIBRDKAFKA_VERSION) {
      throw new Error(`${spec} carries librdkafka "${pkg.librdkafka}", not ${LIBRDKAFKA_VERSION}`);
    }
    const src = `${work}/package/deps/librdkafka`;
    const jobs = String(Math.max(1, Math.min(navigator.hardwareConcurrency ?? 1, 4)));
    log(`librdkafka: building ${LIBRDKAFKA_VERSION} and its test runner (a few minutes)`);
    await run("./configure", CONFIGURE_FLAGS, { cwd: src, what: "librdkafka configure" });
    await run("make", ["-j", jobs, "libs"], { cwd: src, what: "make libs" });
    await run("make", ["-j", jobs, "test-runner"], { cwd: `${src}/tests`, what: "make tests" });
    // Publish atomically: a concurrent build that finished first wins.
    await Deno.mkdir(dir, { recursive: true });
    try {
      await Deno.rename(src, sourceDir());
    } catch (err) {
      if (!(await exists(runner))) throw err;
    }
    await Deno.writeTextFile(`${dir}/.complete`, `${spec} librdkafka ${LIBRDKAFKA_VERSION}\n`);
    log(`librdkafka: built ${runner}`);
    return runner;
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/**
 * The suite's broker test numbers, from the test table in `tests/test.c`: every entry not
 * flagged TEST_F_LOCAL (no broker) or TEST_F_MANUAL (only run by hand), grouped by number
 * (the runner selects by number), with the names and flags of each.
 */
export async function brokerTests(): Promise<Map<string, { name: string; flags: string }[]>> {
  const text = await Deno.readTextFile(`${sourceDir()}/tests/test.c`);
  const start = text.indexOf("struct test tests[] = {");
  const table = text.slice(start, text.indexOf("};", start));
  const byNumber = new Map<string, { name: string; flags: string }[]>();
  for (const m of table.matchAll(/_TEST\(\s*((\d{4})\w*)\s*,\s*([^,)]*(?:\([^)]*\))?[^,)]*)/g)) {
    const flags = m[3].replace(/\s+/g, " ").trim();
    if (/TEST_F_LOCAL|TEST_F_MANUAL/.test(flags)) continue;
    const list = byNumber.get(m[2]) ?? [];
    list.push({ name: m[1], flags });
    byNumber.set(m[2], list);
  }
  return byNumber;
}

// deno-lint-ignore no-control-regex -- ANSI colour codes start with ESC.
const ANSI = /\x1b\[[0-9;]*[A-Za-z]|\x1b\(B/g;

/** The rows of the runner's summary table (`| name | STATE | 1.2s | reason`). */
export function parseSummary(output: string): SubTestResult[] {
  const rows: SubTestResult[] = [];
  for (const raw of output.replace(ANSI, "").split("\n")) {
    const m = raw.match(/^\|\s*(\S+)\s*\|\s*([A-Z_]+)\s*\|\s*[\d.]+s\s*\|\s?(.*)$/);
    if (!m || m[1] === "<MAIN>") continue;
    rows.push({ name: m[1], state: m[2], reason: m[3].trim() });
  }
  return rows;
}

/** A test number's status from its process's exit and summary rows. */
export function statusOf(exitCode: number, rows: SubTestResult[]): TestStatus {
  if (exitCode !== 0 || rows.some((r) => r.state !== "PASSED" && r.state !== "SKIPPED")) {
    return "fail";
  }
  if (rows.length > 0 && rows.every((r) => r.state === "SKIPPED")) return "skip";
  return rows.some((r) => r.state === "PASSED") ? "pass" : "fail";
}

/** Runs one test number against `bootstrap` and reports it. */
export async function runTest(
  runner: string,
  bootstrap: string,
  number: string,
  mode: TestMode,
  workDir: string,
): Promise<TestResult> {
  const testsDir = runner.slice(0, runner.lastIndexOf("/"));
  const conf = `${workDir}/test.conf`;
  await Deno.writeTextFile(conf, `metadata.broker.list=${bootstrap}\n`);
  const args = ["-L", "-E", ...(mode === "quick" ? ["-Q"] : [])];
  const started = performance.now();
  const child = new Deno.Command(runner, {
    args,
    cwd: testsDir,
    env: {
      TESTS: number,
      RDKAFKA_TEST_CONF: conf,
      TEST_KAFKA_VERSION,
      LD_LIBRARY_PATH: `${testsDir}/../src:${testsDir}/../src-cpp`,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, TEST_TIMEOUT_MS[mode]);
  const out = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const subTests = parseSummary(text);
  const status = timedOut ? "timeout" : statusOf(out.code, subTests);
  const output = status === "fail" || status === "timeout"
    ? text.replace(ANSI, "").split("\n").slice(-FAIL_OUTPUT_LINES_MAX).join("\n")
    : "";
  return { number, mode, status, subTests, ms: performance.now() - started, output };
}

/** One line of allowlist.txt. */
export interface AllowListEntry {
  number: string;
  mode: TestMode;
  /** In the subset CI runs. */
  ci: boolean;
  /** What the test covers (the rest of the line). */
  note: string;
}

export interface AllowList {
  allowed: AllowListEntry[];
  /** Excluded test numbers and why. */
  excluded: Map<string, string>;
}

export const ALLOW_LIST_PATH = new URL("./allowlist.txt", import.meta.url);

/**
 * Parses allowlist.txt: `NNNN quick|full [ci] note` allows a test, `-NNNN reason` excludes one
 * with its reason; `#` starts a comment line. Throws on anything else, and on a number listed
 * twice.
 */
export function parseAllowList(text: string): AllowList {
  const allowed: AllowListEntry[] = [];
  const excluded = new Map<string, string>();
  const seen = new Set<string>();
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const ok = line.match(/^(\d{4})\s+(quick|full)(\s+ci)?(?:\s+(.*))?$/);
    const no = line.match(/^-(\d{4})\s+(\S.*)$/);
    const number = ok?.[1] ?? no?.[1];
    if (!number) throw new Error(`allowlist.txt line ${i + 1} is not understood: "${line}"`);
    if (seen.has(number)) throw new Error(`allowlist.txt lists "${number}" twice`);
    seen.add(number);
    if (ok) {
      allowed.push({ number, mode: ok[2] as TestMode, ci: ok[3] !== undefined, note: ok[4] ?? "" });
    } else {
      excluded.set(number, no![2]);
    }
  });
  return { allowed, excluded };
}

export async function readAllowList(): Promise<AllowList> {
  return parseAllowList(await Deno.readTextFile(ALLOW_LIST_PATH));
}
