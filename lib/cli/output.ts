/**
 * Output conventions shared by the admin subcommands (`topics`, `groups`):
 * plain tables in the style of kafka-topics.sh and rpk (upper-case
 * headers, columns separated by two spaces, no borders) or JSON on request,
 * written through a `CliIo` so tests can capture them. Failures are one
 * line on stderr and a non-zero exit code.
 */
import {
  ClientConfigError,
  type ClientSecurity,
  parseProperties,
  PLAINTEXT,
  securityFromProperties,
} from "../client/client_security.ts";
import { parseArgs } from "node:util";
import { AdminClient, AdminError } from "../client/admin.ts";
import { KafkaConnectionError } from "../client/kafka_connection.ts";

export const OUTPUT_FORMATS = ["table", "json"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export const DEFAULT_BOOTSTRAP_SERVER = "localhost:9092";

/** Exit codes: success, a failed operation, a bad command line. */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2 } as const;

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export const CONSOLE_IO: CliIo = {
  stdout: (text) => console.log(text),
  stderr: (text) => console.error(text),
};

/** A bad command line: reported with a pointer to `--help`, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Columns padded to their widest cell, two spaces apart; trailing spaces trimmed. */
export function renderTable(headers: string[], rows: (string | number | null)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null ? "-" : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r) =>
      r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd()
    )
    .join("\n");
}

/** `KEY  value` lines, keys padded to the widest. */
export function renderFields(fields: [string, string | number | null][]): string {
  const width = Math.max(...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${k.padEnd(width)}  ${v === null ? "-" : v}`.trimEnd()).join(
    "\n",
  );
}

export function renderJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** Folds a failure into one line: newlines in broker messages must not split it. */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, " ").trim();
}

/** Options every admin subcommand takes. */
export const COMMON_OPTIONS = {
  "bootstrap-server": { type: "string" },
  "command-config": { type: "string" },
  output: { type: "string", short: "o" },
  help: { type: "boolean", short: "h" },
} as const;

export const COMMON_HELP = [
  "  --bootstrap-server HOST:PORT   Broker to connect to; a comma-separated list is tried in order",
  `                                 (default: ${DEFAULT_BOOTSTRAP_SERVER})`,
  "  --command-config FILE          Client properties for a secured listener, as Kafka's tools",
  "                                 take them: security.protocol, sasl.mechanism,",
  "                                 sasl.jaas.config, ssl.truststore.location (PEM), ...",
  "  -o, --output table|json        Output format (default: table)",
  "  -h, --help                     Show this help",
];

type OptionSpec = Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean }
>;

export interface ParsedCommand {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  bootstrap: string;
  /** TLS and SASL settings from `--command-config` (PLAINTEXT without it). */
  security: ClientSecurity;
  output: OutputFormat;
  help: boolean;
}

/**
 * `--shift-by -3` as Kafka's tools take it: a string option followed by a
 * negative number becomes `--shift-by=-3` (parseArgs would read `-3` as a
 * flag).
 */
function joinNegativeValues(args: string[], options: OptionSpec): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const name = arg.startsWith("--") && !arg.includes("=") ? arg.slice(2) : null;
    if (name && options[name]?.type === "string" && /^-\d+$/.test(args[i + 1] ?? "")) {
      out.push(`${arg}=${args[++i]}`);
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** Parses a subcommand's arguments (strict: unknown options are usage errors). */
export function parseCommand(args: string[], options: OptionSpec): ParsedCommand {
  const all: OptionSpec = { ...COMMON_OPTIONS, ...options };
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(args, all),
      options: all,
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify.*$/s, ""));
  }
  const values = parsed.values as ParsedCommand["values"];
  const output = (values.output as string | undefined) ?? "table";
  if (!(OUTPUT_FORMATS as readonly string[]).includes(output)) {
    throw new UsageError(`Option "--output" must be "table" or "json", got "${output}"`);
  }
  const bootstrap = (values["bootstrap-server"] as string | undefined) ?? DEFAULT_BOOTSTRAP_SERVER;
  if (!bootstrap.split(",").every((a) => /^[^,]+:\d+$/.test(a.trim()))) {
    throw new UsageError(
      `Option "--bootstrap-server" must be HOST:PORT (or a comma-separated list), got "${bootstrap}"`,
    );
  }
  return {
    values,
    positionals: parsed.positionals,
    bootstrap,
    security: commandConfig(values["command-config"] as string | undefined),
    output: output as OutputFormat,
    help: values.help === true,
  };
}

/** Parses a whole number option; `what` names it in the error. */
export function parseInteger(value: string, what: string, min = -Infinity): number {
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`${what} must be an integer, got "${value}"`);
  }
  const n = Number(value);
  if (n < min) throw new UsageError(`${what} must be at least ${min}, got "${value}"`);
  return n;
}

/**
 * Runs a subcommand body and turns its failure into one stderr line and an
 * exit code: usage errors 2 (with a pointer to `--help`), operation
 * failures (and anything unexpected, such as an undecodable answer) 1.
 */
export async function runCommand(
  io: CliIo,
  helpCommand: string,
  body: () => Promise<number>,
): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(oneLine(`${err.message}; run "${helpCommand} --help" for usage`));
      return EXIT.USAGE;
    }
    if (err instanceof AdminError || err instanceof KafkaConnectionError) {
      io.stderr(oneLine(err.message));
      return EXIT.FAILED;
    }
    // A broker answer this client cannot decode, or a bug: still one line.
    io.stderr(oneLine(`Unexpected failure: ${err instanceof Error ? err.message : String(err)}`));
    return EXIT.FAILED;
  }
}

/** Writes JSON or the table, as `--output` asked. */
export function print(io: CliIo, format: OutputFormat, json: unknown, table: string): void {
  io.stdout(format === "json" ? renderJson(json) : table);
}

/** The security settings of `--command-config FILE` (PLAINTEXT without one). */
export function commandConfig(path: string | undefined): ClientSecurity {
  if (path === undefined) return PLAINTEXT;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    throw new UsageError(`Cannot read "--command-config" ${path}: ${(err as Error).message}`);
  }
  try {
    return securityFromProperties(parseProperties(text), `"${path}"`);
  } catch (err) {
    if (err instanceof ClientConfigError) throw new UsageError(err.message);
    throw err;
  }
}

/** Runs `fn` with an admin client on the command's bootstrap servers, closing it afterwards. */
export async function withAdmin<T>(
  cmd: { bootstrap: string; security?: ClientSecurity },
  fn: (admin: AdminClient) => Promise<T>,
): Promise<T> {
  const admin = await AdminClient.connect(cmd.bootstrap, { security: cmd.security });
  try {
    return await fn(admin);
  } finally {
    admin.close();
  }
}

/** The single positional argument of `<noun> <command>`, e.g. the topic of "topics delete". */
export function onePositional(
  positionals: string[],
  noun: "topics" | "groups" | "transactions",
  command: string,
): string {
  const what = { topics: "topic name", groups: "group id", transactions: "transactional id" }[noun];
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0
        ? `"${noun} ${command}" needs a ${what}`
        : `"${noun} ${command}" takes one ${what}, got ${positionals.length}`,
    );
  }
  return positionals[0];
}
