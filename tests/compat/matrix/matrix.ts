/**
 * The cross-client compatibility matrix: which client programs exist, how to run one against a
 * bootstrap address, how to read its cells, and how to print the matrix. Shared by
 * tests/compat/matrix_test.ts (one test step per client and cell, counted in CI) and
 * scripts/compat.ts (`deno task test:compat`, prints the matrix).
 *
 * Every program runs the same scenario with the client's default settings and prints one JSON
 * line per cell, then a summary line (protocol: tests/compat/matrix/README.md). The programs
 * and their toolchains are installed by scripts/setup_compat.sh (and scripts/setup.sh).
 *
 * Must not import the broker's code: programs reach the broker only through its Kafka port.
 */
import {
  lastJsonLine,
  type ProgramResult,
  pythonPath,
  REPO_ROOT,
  runProgram,
  tail,
} from "../../e2e/client_runner.ts";

export const MATRIX_DIR = `${REPO_ROOT}tests/compat/matrix/`;
/** Where scripts/setup_compat.sh puts the Go binaries and the Java classes and jars. */
export const MATRIX_TOOLS = `${REPO_ROOT}.tools/compat-matrix/`;
export const CODECS = ["none", "gzip", "snappy", "lz4", "zstd"] as const;
/** The scenario's cells, in the order the programs run them. */
export const CELLS = [
  "create",
  ...CODECS.map((c) => `produce:${c}`),
  "consume",
  "commit",
  "describe",
  "delete",
] as const;
export type Cell = typeof CELLS[number];
export type CellStatus = "pass" | "fail" | "n/a";

export interface CellResult {
  status: CellStatus;
  ms: number;
  /** Why a cell failed or does not apply ("" when it passed). */
  detail: string;
}

export interface MatrixClient {
  /** Short id, used in topic and group names and `--client` filters. */
  id: string;
  /** Row label in the matrix. */
  label: string;
  /** Program and leading arguments; the scenario arguments follow. */
  command: string[];
  /** Files the program needs (installed by setup); a missing one fails every cell at once. */
  requires: string[];
}

export interface MatrixOptions {
  partitions: number;
  /** Records produced uncompressed. */
  count: number;
  /** Records produced with each other codec. */
  compressedCount: number;
  /** Deadline a program enforces on its whole scenario. */
  deadlineS: number;
  /** Extra environment for the program, e.g. the KAFSCALE_MATRIX_SECURITY_* settings. */
  env?: Record<string, string>;
}

export const DEFAULT_OPTIONS: MatrixOptions = {
  partitions: 3,
  count: 2000,
  compressedCount: 500,
  deadlineS: 120,
};

export interface ClientRun {
  client: MatrixClient;
  /** The client's version as the program reported it ("?" when it printed no summary). */
  version: string;
  cells: Map<Cell, CellResult>;
  code: number;
  timedOut: boolean;
  /** The last lines of the program's stderr. */
  stderr: string;
  ms: number;
}

/** Extra time before a program that ignored its own deadline is killed. */
const KILL_GRACE_MS = 30_000;
/** Lines of a program's stderr kept in a run. */
const STDERR_TAIL_LINES = 80;
/** Characters of a cell detail shown in a table. */
const TABLE_DETAIL_CHARS = 160;

/** Reads `tests/compat/matrix/versions.env` (KEY="VALUE" lines, shared with bash). */
export async function readVersions(): Promise<Record<string, string>> {
  const text = await Deno.readTextFile(`${MATRIX_DIR}versions.env`);
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)="?([^"]*)"?\s*$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

/** Every client of the matrix, in the order of the README's table. */
export async function matrixClients(): Promise<MatrixClient[]> {
  const versions = await readVersions();
  const javaVersions = (versions.JAVA_CLIENT_VERSIONS ?? "").split(/\s+/).filter((v) => v);
  const cliVersion = versions.KAFKA_CLI_VERSION ?? "4.1.0";
  const python = (script: string, interpreter = pythonPath()) => ({
    command: [interpreter, `${MATRIX_DIR}python/${script}`],
    requires: [interpreter],
  });
  const nodeModules = `${REPO_ROOT}tests/compat/node/node_modules/`;
  const java = (v: string, groupProtocol?: string) => {
    const classes = `${MATRIX_TOOLS}java/classes-${v}`;
    const libs = `${MATRIX_TOOLS}java/libs-${v}`;
    return {
      id: groupProtocol ? `java-${v}-${groupProtocol}-protocol` : `java-${v}`,
      label: `Java kafka-clients ${v.split(".").slice(0, 2).join(".")}` +
        (groupProtocol ? ` (group.protocol=${groupProtocol})` : ""),
      command: [
        "java",
        "-Xmx256m",
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        ...(groupProtocol ? [`-Dkafscale.group.protocol=${groupProtocol}`] : []),
        "-cp",
        `${classes}:${libs}/*`,
        "MatrixClient",
      ],
      requires: [`${classes}/MatrixClient.class`],
    };
  };
  return [
    ...javaVersions.map((v) => java(v)),
    // Kafka 4.x clients also speak the KIP-848 consumer group protocol.
    ...javaVersions.filter((v) => Number(v.split(".")[0]) >= 4).map((v) => java(v, "consumer")),
    {
      id: "kafka-cli",
      label: "Kafka CLI tools",
      command: [Deno.execPath(), "run", "-A", `${MATRIX_DIR}kafka_cli_matrix.ts`],
      requires: [`${REPO_ROOT}.tools/kafka-ref/tools-${cliVersion}/kafka-tools-${cliVersion}.jar`],
    },
    {
      id: "franz-go",
      label: "franz-go",
      command: [`${MATRIX_TOOLS}bin/franz_go`],
      requires: [`${MATRIX_TOOLS}bin/franz_go`],
    },
    {
      id: "sarama",
      label: "sarama",
      command: [`${MATRIX_TOOLS}bin/sarama`],
      requires: [`${MATRIX_TOOLS}bin/sarama`],
    },
    { id: "kcat", label: "kcat (Debian)", ...python("kcat_matrix.py") },
    { id: "confluent-pypi", label: "confluent-kafka (PyPI)", ...python("confluent_matrix.py") },
    {
      id: "confluent-debian",
      label: "confluent-kafka (Debian)",
      ...python("confluent_matrix.py", "/usr/bin/python3"),
    },
    { id: "kafka-python", label: "kafka-python", ...python("kafka_python_matrix.py") },
    {
      id: "kafkajs",
      label: "kafkajs",
      command: ["node", `${MATRIX_DIR}node/kafkajs_matrix.mjs`],
      requires: [`${nodeModules}kafkajs/package.json`],
    },
    {
      id: "platformatic",
      label: "@platformatic/kafka (Deno)",
      command: [
        Deno.execPath(),
        "run",
        "-A",
        "--node-modules-dir=manual",
        `${MATRIX_DIR}node/platformatic_matrix.mjs`,
      ],
      requires: [`${nodeModules}@platformatic/kafka/package.json`],
    },
  ];
}

async function missingFile(paths: string[]): Promise<string | undefined> {
  for (const path of paths) {
    try {
      await Deno.stat(path);
    } catch {
      return path;
    }
  }
  return undefined;
}

function allCells(status: CellStatus, detail: string): Map<Cell, CellResult> {
  return new Map(CELLS.map((c) => [c, { status, ms: 0, detail }]));
}

/** Reads the cell lines a program printed; cells it never reported fail with `why`. */
export function parseCells(stdout: string, why: string): Map<Cell, CellResult> {
  const cells = new Map<Cell, CellResult>();
  for (const line of stdout.split("\n")) {
    if (!line.startsWith('{"cell"')) continue;
    try {
      const parsed = JSON.parse(line);
      if (!(CELLS as readonly string[]).includes(parsed.cell)) continue;
      const status: CellStatus = ["pass", "fail", "n/a"].includes(parsed.status)
        ? parsed.status
        : "fail";
      cells.set(parsed.cell, {
        status,
        ms: Number(parsed.ms) || 0,
        detail: String(parsed.detail ?? ""),
      });
    } catch {
      // A torn line from a killed program: the cell counts as never reported.
    }
  }
  for (const cell of CELLS) {
    if (!cells.has(cell)) cells.set(cell, { status: "fail", ms: 0, detail: why });
  }
  return cells;
}

/** Runs one client's program against `bootstrap` with a fresh topic and group. */
export async function runClient(
  client: MatrixClient,
  bootstrap: string,
  opts: MatrixOptions = DEFAULT_OPTIONS,
): Promise<ClientRun> {
  const start = Date.now();
  const missing = await missingFile(client.requires);
  if (missing !== undefined) {
    const detail = `Missing "${missing}": run "bash scripts/setup_compat.sh".`;
    return {
      client,
      version: "?",
      cells: allCells("fail", detail),
      code: -1,
      timedOut: false,
      stderr: detail,
      ms: 0,
    };
  }
  const suffix = `${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
  const cmd = [
    ...client.command,
    bootstrap,
    `matrix-${client.id}-${suffix}`,
    `matrix-group-${client.id}-${suffix}`,
    String(opts.partitions),
    String(opts.count),
    String(opts.compressedCount),
    "--deadline-s",
    String(opts.deadlineS),
  ];
  let result: ProgramResult;
  try {
    result = await runProgram(cmd, {
      timeoutMs: opts.deadlineS * 1000 + KILL_GRACE_MS,
      env: { KAFKAJS_NO_PARTITIONER_WARNING: "1", ...opts.env },
    });
  } catch (err) {
    const detail = `Cannot start "${cmd[0]}": ${err instanceof Error ? err.message : err}`;
    return {
      client,
      version: "?",
      cells: allCells("fail", detail),
      code: -1,
      timedOut: false,
      stderr: detail,
      ms: Date.now() - start,
    };
  }
  const stderr = tail(result.stderr, STDERR_TAIL_LINES);
  const lastLine = stderr.split("\n").at(-1) ?? "";
  const why = result.timedOut
    ? `the program was killed at its deadline (${opts.deadlineS} s) before this step`
    : `the program exited ${result.code} before this step: ${lastLine}`;
  const summary = lastJsonLine(result.stdout);
  return {
    client,
    version: typeof summary?.version === "string" ? summary.version : "?",
    cells: parseCells(result.stdout, why),
    code: result.code,
    timedOut: result.timedOut,
    stderr,
    ms: Date.now() - start,
  };
}

const STATUS_MARK: Record<CellStatus, string> = { pass: "pass", fail: "**FAIL**", "n/a": "n/a" };

/** The matrix as a markdown table: one row per client, one column per cell. */
export function formatMatrix(runs: ClientRun[]): string {
  const header = ["Client", "Version", ...CELLS.map((c) => c.replace("produce:", "produce "))];
  const rows = runs.map((run) => [
    run.client.label,
    run.version,
    ...CELLS.map((c) => STATUS_MARK[run.cells.get(c)!.status]),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cols: string[]) => `| ${cols.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [
    line(header),
    `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`,
    ...rows.map(line),
  ].join("\n");
}

/** One line per cell that is not a pass: `client / cell: status: detail`. */
export function formatNotes(runs: ClientRun[]): string {
  const lines: string[] = [];
  for (const run of runs) {
    for (const cell of CELLS) {
      const r = run.cells.get(cell)!;
      if (r.status === "pass") continue;
      const detail = r.detail.replace(/\s+/g, " ").slice(0, TABLE_DETAIL_CHARS);
      lines.push(`- ${run.client.label} / ${cell}: ${r.status}: ${detail}`);
    }
  }
  return lines.join("\n");
}

/** Whether any cell of the runs failed. */
export function anyFailed(runs: ClientRun[]): boolean {
  return runs.some((run) => [...run.cells.values()].some((r) => r.status === "fail"));
}
