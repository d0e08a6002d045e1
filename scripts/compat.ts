/**
 * `deno task test:compat`: the cross-client compatibility matrix. Starts a broker on a temp data
 * directory (or uses `--bootstrap`), runs every client program of tests/compat/matrix/ with its
 * default settings, and prints the matrix client x scenario -> pass/fail, then one line per cell
 * that did not pass. Exits 1 when any cell failed. Needs `bash scripts/setup.sh` (which runs
 * scripts/setup_compat.sh) first.
 *
 *   --bootstrap HOST:PORT   run against this broker instead of starting one (e.g. Apache Kafka
 *                           from scripts/reference_kafka.sh, to check the programs themselves)
 *   --client ID[,ID...]     only these clients (ids: java-3.9.2, kafka-cli, franz-go, sarama,
 *                           kcat, confluent-pypi, confluent-debian, kafka-python, kafkajs,
 *                           platformatic)
 *   --count N               uncompressed records (default 2000)
 *   --compressed-count N    records per other codec (default 500)
 *   --readme                also write the matrix into README.md, between the
 *                           `<!-- BEGIN compat-matrix -->` and `<!-- END compat-matrix -->` lines
 *   --kgo                   instead of the matrix, run franz-go's pkg/kgo test suite against the
 *                           broker and print pass/fail/skip counts (takes minutes)
 *   --kgo-run REGEX         go test -run filter for --kgo (default: all)
 *   --kgo-skip REGEX        go test -skip filter for --kgo (default: nothing)
 *   --kgo-timeout DUR       go test -timeout for --kgo (default 10m)
 *   --kgo-records N         KGO_TEST_RECORDS for --kgo (default 100000)
 *   --librdkafka            instead of the matrix, run librdkafka's own test suite (the tests in
 *                           tests/compat/librdkafka/allowlist.txt, each in its listed mode)
 *                           against the broker and print pass/fail/skip per test; builds the
 *                           suite first when ~/.cache/kafscale has no build of the pinned release.
 *                           A broker it starts gives auto-created topics 4 partitions, as the
 *                           suite expects (for Apache Kafka: KAFKA_REF_NUM_PARTITIONS=4
 *                           scripts/reference_kafka.sh start PORT)
 *   --librdkafka-ci         only the allow-list's CI subset
 *   --librdkafka-tests LIST comma-separated test numbers instead of the allow-list, or "all" for
 *                           every broker test of the suite (quick mode unless --librdkafka-mode)
 *   --librdkafka-mode M     quick or full for every test run
 *   --librdkafka-build      only build (and cache) the suite, then exit
 */
import { parseArgs } from "node:util";
import {
  brokerTests,
  ensureBuild,
  LIBRDKAFKA_VERSION,
  readAllowList,
  runTest,
  SOURCE_PACKAGE,
  SOURCE_PACKAGE_VERSION,
  type TestMode,
  type TestResult,
} from "../tests/compat/librdkafka/librdkafka_suite.ts";
import { type BrokerProcess, startBroker } from "../tests/e2e/broker_process.ts";
import {
  anyFailed,
  type ClientRun,
  DEFAULT_OPTIONS,
  formatMatrix,
  formatNotes,
  matrixClients,
  runClient,
} from "../tests/compat/matrix/matrix.ts";
import { runKgoSuite, skipReason } from "../tests/compat/matrix/kgo_suite.ts";

const KGO_DEFAULT_SKIP = "";
const KGO_DEFAULT_RECORDS = 100_000;
const README = new URL("../README.md", import.meta.url);

/** Puts `table` between the compat-matrix markers of README.md and formats the file. */
async function writeReadme(table: string): Promise<void> {
  const text = await Deno.readTextFile(README);
  const re = /(<!-- BEGIN compat-matrix -->\n)[\s\S]*?(<!-- END compat-matrix -->)/;
  if (!re.test(text)) throw new Error('README.md has no "compat-matrix" markers');
  await Deno.writeTextFile(README, text.replace(re, `$1\n${table}\n\n$2`));
  const fmt = await new Deno.Command(Deno.execPath(), { args: ["fmt", README.pathname] }).output();
  if (!fmt.success) {
    throw new Error(`deno fmt README.md failed: ${new TextDecoder().decode(fmt.stderr)}`);
  }
  console.error("compat: README.md updated");
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`"--${name}" must be a positive integer, got "${raw}"`);
    Deno.exit(2);
  }
  return n;
}

async function matrix(bootstrap: string, values: Record<string, string | boolean | undefined>) {
  const wanted = typeof values.client === "string" ? values.client.split(",") : undefined;
  const clients = (await matrixClients()).filter((c) => !wanted || wanted.includes(c.id));
  if (clients.length === 0) {
    console.error(`"--client" matches no client: "${values.client}"`);
    return 2;
  }
  const opts = {
    ...DEFAULT_OPTIONS,
    count: positiveInt("count", values.count as string | undefined, DEFAULT_OPTIONS.count),
    compressedCount: positiveInt(
      "compressed-count",
      values["compressed-count"] as string | undefined,
      DEFAULT_OPTIONS.compressedCount,
    ),
  };
  const runs: ClientRun[] = [];
  for (const client of clients) {
    const run = await runClient(client, bootstrap, opts);
    const failed = [...run.cells.values()].filter((r) => r.status === "fail").length;
    console.error(
      `compat: ${client.label} ${run.version}: ${failed === 0 ? "ok" : `${failed} failed`} ` +
        `(${(run.ms / 1000).toFixed(1)} s)`,
    );
    runs.push(run);
  }
  const table = formatMatrix(runs);
  console.log(table);
  if (values.readme) await writeReadme(table);
  const notes = formatNotes(runs);
  if (notes) console.log(`\n${notes}`);
  return anyFailed(runs) ? 1 : 0;
}

async function kgo(bootstrap: string, values: Record<string, string | boolean | undefined>) {
  const result = await runKgoSuite(bootstrap, {
    run: (values["kgo-run"] as string | undefined) ?? "",
    skip: (values["kgo-skip"] as string | undefined) ?? KGO_DEFAULT_SKIP,
    timeout: (values["kgo-timeout"] as string | undefined) ?? "10m",
    records: positiveInt(
      "kgo-records",
      values["kgo-records"] as string | undefined,
      KGO_DEFAULT_RECORDS,
    ),
  });
  for (const [name, output] of result.output) {
    const status = result.tests.get(name) ?? "build";
    if (status === "skip") {
      console.log(`skip ${name}: ${skipReason(output)}`);
    } else {
      console.log(`${status} ${name}:\n${output}\n`);
    }
  }
  console.log(
    `franz-go ${result.franzGoVersion} pkg/kgo: ${result.passed} passed, ${result.failed} failed, ` +
      `${result.skipped} skipped, ${result.unfinished} unfinished ` +
      `(go test exit ${result.exitCode}, ${(result.ms / 1000).toFixed(0)} s)`,
  );
  return result.failed + result.unfinished === 0 && result.exitCode === 0 ? 0 : 1;
}

/** What a librdkafka run needs from a broker this script starts. */
const LIBRDKAFKA_BROKER_ARGS = [
  "--default-partitions",
  "4",
  "--group-initial-rebalance-delay-ms",
  "0",
];

async function librdkafka(bootstrap: string, values: Record<string, string | boolean | undefined>) {
  const runner = await ensureBuild();
  const mode = values["librdkafka-mode"] as string | undefined;
  if (mode !== undefined && mode !== "quick" && mode !== "full") {
    console.error(`"--librdkafka-mode" must be quick or full, got "${mode}"`);
    return 2;
  }
  const list = await readAllowList();
  const suite = await brokerTests();
  const wanted = values["librdkafka-tests"] as string | undefined;
  let plan: { number: string; mode: TestMode }[];
  if (wanted === "all") {
    plan = [...suite.keys()].sort().map((number) => ({ number, mode: "quick" }));
  } else if (wanted !== undefined) {
    plan = wanted.split(",").map((number) => ({
      number,
      mode: list.allowed.find((e) => e.number === number)?.mode ?? "quick",
    }));
  } else {
    plan = list.allowed.filter((e) => !values["librdkafka-ci"] || e.ci);
  }
  if (mode) plan = plan.map((p) => ({ ...p, mode: mode as TestMode }));
  const work = await Deno.makeTempDir({ prefix: "kafscale-librdkafka-" });
  const results: TestResult[] = [];
  const started = performance.now();
  try {
    for (const p of plan) {
      const r = await runTest(runner, bootstrap, p.number, p.mode, work);
      results.push(r);
      // The broker sub-tests only: -L filters the broker-less ones that share the number.
      const names = new Set((suite.get(r.number) ?? []).map((t) => t.name));
      const subs = r.subTests.filter((s) => s.state !== "PASSED" && names.has(s.name))
        .map((s) => `${s.name} ${s.state}${s.reason ? `: ${s.reason}` : ""}`);
      console.log(
        `${r.status} ${r.number} ${r.mode} (${(r.ms / 1000).toFixed(1)} s)` +
          (subs.length > 0 ? ` [${subs.join("; ")}]` : ""),
      );
      if (r.status === "fail" || r.status === "timeout") console.log(`${r.output}\n`);
    }
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  const count = (s: string) => results.filter((r) => r.status === s).length;
  // A run that executed nothing (no allow-list, no build) is a failure, never a quiet pass.
  const failed = count("fail") + count("timeout") + (results.length === 0 ? 1 : 0);
  if (wanted === undefined && !values["librdkafka-ci"]) {
    for (const [number, why] of list.excluded) console.log(`excluded ${number}: ${why}`);
  }
  console.log(
    `librdkafka ${LIBRDKAFKA_VERSION} tests (${SOURCE_PACKAGE}@${SOURCE_PACKAGE_VERSION}): ` +
      `${count("pass")} passed, ${failed} failed, ${count("skip")} skipped ` +
      `(${count("timeout")} timed out; ${((performance.now() - started) / 1000).toFixed(0)} s)`,
  );
  return failed === 0 ? 0 : 1;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      bootstrap: { type: "string" },
      client: { type: "string" },
      count: { type: "string" },
      "compressed-count": { type: "string" },
      readme: { type: "boolean" },
      kgo: { type: "boolean" },
      "kgo-run": { type: "string" },
      "kgo-skip": { type: "string" },
      "kgo-timeout": { type: "string" },
      "kgo-records": { type: "string" },
      librdkafka: { type: "boolean" },
      "librdkafka-ci": { type: "boolean" },
      "librdkafka-tests": { type: "string" },
      "librdkafka-mode": { type: "string" },
      "librdkafka-build": { type: "boolean" },
    },
  });
  if (values["librdkafka-build"]) {
    await ensureBuild(); // Says something only when it builds.
    return 0;
  }
  if (values.readme && (values.client !== undefined || values.bootstrap !== undefined)) {
    console.error(
      '"--readme" records the full matrix against this broker: drop "--client" and ' +
        '"--bootstrap"',
    );
    return 2;
  }
  let broker: BrokerProcess | undefined;
  try {
    let bootstrap = values.bootstrap;
    if (bootstrap === undefined) {
      broker = await startBroker(values.librdkafka ? { args: LIBRDKAFKA_BROKER_ARGS } : {});
      bootstrap = broker.bootstrap;
      console.error(`compat: broker on ${bootstrap} (data ${broker.dataDir})`);
    }
    if (values.librdkafka) return await librdkafka(bootstrap, values);
    return values.kgo ? await kgo(bootstrap, values) : await matrix(bootstrap, values);
  } finally {
    if (broker) {
      const code = await broker.stop().catch(() => -1);
      if (code !== 0) console.error(`compat: broker exited ${code}:\n${broker.logs()}`);
      await broker.cleanup();
    }
  }
}

Deno.exit(await main());
