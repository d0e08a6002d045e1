/**
 * `kafscale metadata check|repair`: inspection and repair of the embedded
 * metadata store (`<data-dir>/.metadata`) of a stopped single-host broker.
 *
 * The store refuses to open when its log is damaged before its end (see
 * lib/metadata/embedded_metadata_store.ts): truncating there would lose
 * acknowledged writes. `repair` keeps the damaged files as backups and
 * rebuilds the state from every record that is still valid. It touches only
 * the metadata directory, never segment data. Must not reach into broker
 * internals.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  type MetadataRepairReport,
  repairEmbeddedMetadataStore,
} from "../metadata/embedded_metadata_store.ts";
import { MetadataStoreError } from "../metadata/metadata_store.ts";
import { type CliIo, CONSOLE_IO, EXIT, oneLine, renderJson, UsageError } from "./output.ts";

/** Where `serve` keeps the embedded store inside its data directory. */
const METADATA_SUBDIR = ".metadata";

export function metadataHelp(): string {
  return [
    "Usage: kafscale metadata <command> [options]",
    "",
    "Inspect and repair the embedded metadata store of a stopped broker",
    "(single-host mode; etcd has its own tools).",
    "",
    "Commands:",
    "  check     Report damage in the metadata log without changing anything",
    "  repair    Rebuild the metadata store from every valid log record,",
    "            keeping the damaged files as backups",
    "",
    "Options of every command:",
    ...OPTIONS_HELP,
    "",
    'Run "kafscale metadata <command> --help" for details.',
  ].join("\n");
}

const OPTIONS_HELP = [
  "  --data-dir DIR                 The broker's data directory; the store is DIR/.metadata",
  "                                 (default: $KAFSCALE_DATA_DIR, else ./data)",
  "  -o, --output table|json        Output format (default: table)",
  "  -h, --help                     Show this help",
];

const HELP = {
  check: [
    "Usage: kafscale metadata check [--data-dir DIR]",
    "",
    "Reads the snapshot and the log and reports every damaged stretch of the log, the",
    "revisions lost with it and the keys the damaged records seem to name. Changes",
    "nothing. Exits 0 when the log is clean, 1 when it is damaged. The broker must be",
    "stopped (the store is locked while it runs).",
  ],
  repair: [
    "Usage: kafscale metadata repair [--data-dir DIR] [--dry-run]",
    "",
    "Rebuilds a metadata store that refuses to open because its log is damaged before",
    "its end. Copies the log to wal.corrupt-<time> and the snapshot to",
    "snapshot.before-repair-<time> (both kept), replays every valid record in order,",
    "writes the result as the new snapshot and starts an empty log. Segment data is",
    "never touched. The broker must be stopped.",
    "",
    "What is lost: the changes of the damaged records whose keys were not written",
    "again later (a partition's committed end offset, a group's committed offset, a",
    "topic's config; a lost delete may bring a key back). The report names the lost",
    "revisions and the keys the damaged records seem to name: check those topics and",
    "groups after the broker starts (kafscale topics describe, kafscale groups",
    "describe), and keep the backups until you have.",
    "",
    "  --dry-run                      Report what a repair would do; change nothing",
  ],
} as const;

type Subcommand = keyof typeof HELP;

function subcommandHelp(name: Subcommand): string {
  return [...HELP[name], "", "Options:", ...OPTIONS_HELP].join("\n");
}

interface Parsed {
  metadataDir: string;
  output: "table" | "json";
  dryRun: boolean;
  help: boolean;
}

function parse(args: string[], name: Subcommand): Parsed {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        "data-dir": { type: "string" },
        output: { type: "string", short: "o" },
        help: { type: "boolean", short: "h" },
        ...(name === "repair" ? { "dry-run": { type: "boolean" } } : {}),
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify.*$/s, ""));
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (parsed.positionals.length > 0) {
    throw new UsageError(`"metadata ${name}" takes no arguments, got "${parsed.positionals[0]}"`);
  }
  const output = (values.output as string | undefined) ?? "table";
  if (output !== "table" && output !== "json") {
    throw new UsageError(`Option "--output" must be "table" or "json", got "${output}"`);
  }
  const dataDir = (values["data-dir"] as string | undefined) ??
    Deno.env.get("KAFSCALE_DATA_DIR") ?? "./data";
  return {
    metadataDir: join(dataDir, METADATA_SUBDIR),
    output,
    dryRun: values["dry-run"] === true,
    help: values.help === true,
  };
}

function render(report: MetadataRepairReport, verb: string): string {
  const lines = [`Metadata store "${report.dir}": ${verb}`];
  for (const range of report.damaged) {
    lines.push(
      `  damaged: bytes ${range.offset}..${range.offset + range.bytes} (${range.reason})` +
        (range.tornTail ? ", torn tail: the last write, never acknowledged" : ""),
    );
    if (range.possibleKeys.length > 0) {
      lines.push(`    keys it seems to name: ${range.possibleKeys.join(", ")}`);
    }
  }
  for (const [from, to] of report.missingRevisions) {
    lines.push(`  lost revisions: ${from === to ? from : `${from}..${to}`}`);
  }
  lines.push(
    `  rebuilt state: revision ${report.revision}, ${report.keys} keys, ` +
      `${report.recordsReplayed} log records replayed`,
  );
  for (const backup of report.backups) lines.push(`  backup kept: ${backup}`);
  return lines.join("\n");
}

async function check(args: string[], io: CliIo): Promise<number> {
  const cmd = parse(args, "check");
  if (cmd.help) return (io.stdout(subcommandHelp("check")), EXIT.OK);
  const report = await repairEmbeddedMetadataStore(cmd.metadataDir, { dryRun: true });
  const clean = report.damaged.length === 0;
  io.stdout(
    cmd.output === "json"
      ? renderJson(report)
      : render(report, clean ? "clean" : 'damaged; run "kafscale metadata repair"'),
  );
  return clean ? EXIT.OK : EXIT.FAILED;
}

async function repair(args: string[], io: CliIo): Promise<number> {
  const cmd = parse(args, "repair");
  if (cmd.help) return (io.stdout(subcommandHelp("repair")), EXIT.OK);
  const report = await repairEmbeddedMetadataStore(cmd.metadataDir, { dryRun: cmd.dryRun });
  const verb = report.repaired
    ? "repaired; check the topics and groups named above, then start the broker"
    : report.damaged.length === 0
    ? "clean; nothing to repair"
    : "damaged; dry run, nothing changed";
  io.stdout(cmd.output === "json" ? renderJson(report) : render(report, verb));
  return EXIT.OK;
}

export async function runMetadata(args: string[], io: CliIo = CONSOLE_IO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "-h" || sub === "--help" || sub === "help") {
    io.stdout(metadataHelp());
    return sub === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const commands = { check, repair } as const;
  if (!(sub in commands)) {
    io.stderr(`Unknown command "metadata ${sub}"; run "kafscale metadata --help" for the list`);
    return EXIT.USAGE;
  }
  try {
    return await commands[sub as keyof typeof commands](rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(oneLine(`${err.message}; run "kafscale metadata ${sub} --help" for usage`));
      return EXIT.USAGE;
    }
    const message = err instanceof Error ? err.message : String(err);
    io.stderr(
      oneLine(err instanceof MetadataStoreError ? message : `Unexpected failure: ${message}`),
    );
    return EXIT.FAILED;
  }
}
