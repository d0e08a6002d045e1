/**
 * `kafscale broker status|drain|flush|watch`: operates a running broker through its gRPC
 * control service (`kafscale.control`, lib/control/control_service.ts), with the output
 * conventions of `topics` and `groups` (tables, or `--output json`; one line on stderr and a
 * non-zero exit on failure). Must not reach into broker internals: it speaks gRPC only.
 */
import { parseArgs } from "node:util";
import {
  type BrokerStatusResponse,
  CONTROL_METHODS,
  type DrainPartitionsResponse,
  type PartitionAssignmentEvent,
  type PartitionRef,
  type TriggerFlushResponse,
} from "../control/control_proto.ts";
import { ControlError, grpcStatusName } from "../control/control_error.ts";
import type { GrpcClient } from "../control/grpc_adapter.ts";
import {
  type CliIo,
  CONSOLE_IO,
  EXIT,
  oneLine,
  OUTPUT_FORMATS,
  type OutputFormat,
  parseInteger,
  print,
  renderFields,
  renderTable,
  runCommand,
  UsageError,
} from "./output.ts";

export const DEFAULT_CONTROL_SERVER = "127.0.0.1:9094";
/** Bound on a unary call; a drain's own deadline is added to it. */
const CALL_TIMEOUT_MS = 30_000;

const SUBCOMMANDS = ["status", "drain", "flush", "watch"] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];

const COMMON_HELP = [
  "  --control-server HOST:PORT     The broker's control listener (env KAFSCALE_CONTROL_SERVER;",
  `                                 default: ${DEFAULT_CONTROL_SERVER})`,
  "  --control-token TOKEN          Bearer token (env KAFSCALE_CONTROL_TOKEN)",
  "  --control-ca-file F            Connect over TLS, trusting this PEM CA (env",
  "                                 KAFSCALE_CONTROL_CA_FILE; for a broker with --control-tls)",
  "  --control-cert-file F, --control-key-file F",
  "                                 PEM client certificate and key (mTLS; envs",
  "                                 KAFSCALE_CONTROL_CERT_FILE, KAFSCALE_CONTROL_KEY_FILE)",
  "  -o, --output table|json        Output format (default: table)",
  "  -h, --help                     Show this help",
];

export function brokerHelp(): string {
  return [
    "Usage: kafscale broker <command> [options]",
    "",
    "Operate a running broker over its gRPC control service (kafscale.control).",
    "",
    "Commands:",
    "  status                Readiness and the partitions the broker owns, with offsets",
    "  drain [TOPIC:PARTITION...] [--deadline-seconds N] [--reason TEXT]",
    "                        Hand partitions (none named: all) to the other brokers",
    "  flush [TOPIC:PARTITION...]",
    "                        Flush pending data (none named: all) and wait until durable",
    "  watch [--broker-id N] [--count N]",
    "                        Stream partition ownership events (current owners first)",
    "",
    "Options of every command:",
    ...COMMON_HELP,
    "",
    'Run "kafscale broker <command> --help" for the options of a command.',
  ].join("\n");
}

const HELP: Record<Subcommand, string[]> = {
  status: [
    "Usage: kafscale broker status",
    "",
    "Shows the broker's id, version, readiness (as /readyz) and one line per partition it owns:",
    "state (online, draining, recovering), log start offset, log end offset, high watermark.",
  ],
  drain: [
    "Usage: kafscale broker drain [TOPIC:PARTITION...] [--deadline-seconds N] [--reason TEXT]",
    "",
    "Stops accepting produce for the partitions (NOT_LEADER_OR_FOLLOWER), flushes what is",
    "pending and releases them, so another broker takes them over at once. None named: all.",
    "With no other broker (embedded mode) it only flushes. Lists what moved and what was still",
    "pending at the deadline; exits 1 when something is pending.",
    "",
    "Options:",
    "  --deadline-seconds N           How long to wait (default: the broker's, 30)",
    "  --reason TEXT                  Logged by the broker",
  ],
  flush: [
    "Usage: kafscale broker flush [TOPIC:PARTITION...]",
    "",
    "Flushes what the broker holds for the partitions (none named: all it owns) and answers",
    "once it is durable in the object store and committed in the metadata store.",
  ],
  watch: [
    "Usage: kafscale broker watch [--broker-id N] [--count N]",
    "",
    "Streams ownership events: the current owners (assigned), then acquired, takeover and",
    "released as they happen, each with its epoch. Runs until interrupted or --count events.",
    "With --output json, one JSON object per line.",
    "",
    "Options:",
    "  --broker-id N                  Only this broker's events (default: every broker)",
    "  --count N                      Stop after N events",
  ],
};

function subcommandHelp(name: Subcommand): string {
  return [...HELP[name], "", "Options of every command:", ...COMMON_HELP].join("\n");
}

interface BrokerCommand {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  server: string;
  token: string | null;
  tls: { ca: string | null; cert: string | null; key: string | null } | undefined;
  output: OutputFormat;
  help: boolean;
}

function parse(
  args: string[],
  options: Record<string, { type: "string" | "boolean" }>,
  env: Record<string, string | undefined>,
): BrokerCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        "control-server": { type: "string" },
        "control-token": { type: "string" },
        "control-ca-file": { type: "string" },
        "control-cert-file": { type: "string" },
        "control-key-file": { type: "string" },
        output: { type: "string", short: "o" },
        help: { type: "boolean", short: "h" },
        ...options,
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify.*$/s, ""));
  }
  const values = parsed.values as BrokerCommand["values"];
  const output = (values.output as string | undefined) ?? "table";
  if (!(OUTPUT_FORMATS as readonly string[]).includes(output)) {
    throw new UsageError(`Option "--output" must be "table" or "json", got "${output}"`);
  }
  const server = (values["control-server"] as string | undefined) ??
    env.KAFSCALE_CONTROL_SERVER ?? DEFAULT_CONTROL_SERVER;
  if (!/^(\[[^\]]+\]|[^:,\s]+):\d{1,5}$/.test(server)) {
    throw new UsageError(`Option "--control-server" must be HOST:PORT, got "${server}"`);
  }
  const token = (values["control-token"] as string | undefined) ??
    env.KAFSCALE_CONTROL_TOKEN ?? null;
  const file = (flag: string, envName: string): string | null => {
    const path = (values[flag] as string | undefined) ?? env[envName] ?? null;
    if (path === null || path === "") return null;
    try {
      return Deno.readTextFileSync(path);
    } catch (err) {
      throw new UsageError(`Cannot read "--${flag}" (${path}): ${(err as Error).message}`);
    }
  };
  const ca = file("control-ca-file", "KAFSCALE_CONTROL_CA_FILE");
  const cert = file("control-cert-file", "KAFSCALE_CONTROL_CERT_FILE");
  const key = file("control-key-file", "KAFSCALE_CONTROL_KEY_FILE");
  if ((cert === null) !== (key === null)) {
    throw new UsageError('"--control-cert-file" and "--control-key-file" go together');
  }
  return {
    values,
    positionals: parsed.positionals,
    server,
    token: token === "" ? null : token,
    tls: ca !== null || cert !== null ? { ca, cert, key } : undefined,
    output: output as OutputFormat,
    help: values.help === true,
  };
}

/** `TOPIC:PARTITION` arguments. */
function parsePartitions(positionals: string[]): PartitionRef[] {
  return positionals.map((arg) => {
    const colon = arg.lastIndexOf(":");
    if (colon <= 0) {
      throw new UsageError(`Partitions are named TOPIC:PARTITION, got "${arg}"`);
    }
    return {
      topic: arg.slice(0, colon),
      partition: parseInteger(arg.slice(colon + 1), `Partition of "${arg}"`, 0),
    };
  });
}

async function withClient<T>(cmd: BrokerCommand, fn: (client: GrpcClient) => Promise<T>) {
  const { GrpcClient } = await import("../control/grpc_adapter.ts");
  const client = new GrpcClient(cmd.server, { token: cmd.token, tls: cmd.tls });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

const refName = (p: PartitionRef) => `${p.topic}:${p.partition}`;

async function status(cmd: BrokerCommand, io: CliIo): Promise<number> {
  if (cmd.positionals.length > 0) {
    throw new UsageError(`"broker status" takes no arguments, got "${cmd.positionals[0]}"`);
  }
  const answer = await withClient(
    cmd,
    (c) => c.unary<BrokerStatusResponse>(CONTROL_METHODS.getStatus, {}, CALL_TIMEOUT_MS),
  );
  const table = [
    renderFields([
      ["BROKER", answer.brokerId],
      ["VERSION", answer.version],
      ["READY", answer.ready ? "yes" : "no"],
      ["PARTITIONS", answer.partitions.length],
    ]),
    ...(answer.partitions.length === 0 ? [] : [
      "",
      renderTable(
        ["TOPIC", "PARTITION", "STATE", "LEADER", "LOG-START", "LOG-END", "HIGH-WATERMARK"],
        answer.partitions.map((p) => [
          p.topic,
          p.partition,
          p.state,
          p.leader ? "yes" : "no",
          p.logStartOffset,
          p.logEndOffset,
          p.highWatermark,
        ]),
      ),
    ]),
  ].join("\n");
  print(io, cmd.output, answer, table);
  return EXIT.OK;
}

async function drain(cmd: BrokerCommand, io: CliIo): Promise<number> {
  const partitions = parsePartitions(cmd.positionals);
  const deadlineSeconds = cmd.values["deadline-seconds"] === undefined
    ? 0
    : parseInteger(cmd.values["deadline-seconds"] as string, 'Option "--deadline-seconds"', 1);
  const reason = (cmd.values.reason as string | undefined) ?? "kafscale broker drain";
  const answer = await withClient(cmd, (c) =>
    c.unary<DrainPartitionsResponse>(
      CONTROL_METHODS.drainPartitions,
      { partitions, reason, deadlineSeconds },
      CALL_TIMEOUT_MS + (deadlineSeconds === 0 ? 30 : deadlineSeconds) * 1000,
    ));
  const rows = [
    ...answer.drained.map((p) => [p.topic, p.partition, "drained"]),
    ...answer.pending.map((p) => [p.topic, p.partition, "pending"]),
  ];
  const table = rows.length === 0
    ? "Nothing to drain: the broker owns no partitions"
    : `${renderTable(["TOPIC", "PARTITION", "RESULT"], rows)}\n\n${answer.drained.length} ` +
      `drained, ${answer.pending.length} pending`;
  print(io, cmd.output, answer, table);
  if (answer.pending.length > 0) {
    io.stderr(
      `Drain left ${answer.pending.length} partition(s) pending at the deadline: ${
        answer.pending.slice(0, 10).map(refName).join(", ")
      }`,
    );
    return EXIT.FAILED;
  }
  return EXIT.OK;
}

async function flush(cmd: BrokerCommand, io: CliIo): Promise<number> {
  const partitions = parsePartitions(cmd.positionals);
  const answer = await withClient(cmd, (c) =>
    c.unary<TriggerFlushResponse>(
      CONTROL_METHODS.triggerFlush,
      { partitions, allAssigned: partitions.length === 0 },
      CALL_TIMEOUT_MS,
    ));
  const table = answer.flushed.length === 0
    ? "Nothing to flush: the broker owns none of these partitions"
    : `${renderTable(["TOPIC", "PARTITION"], answer.flushed.map((p) => [p.topic, p.partition]))}` +
      `\n\n${answer.flushed.length} partition(s) durable`;
  print(io, cmd.output, answer, table);
  return EXIT.OK;
}

async function watch(cmd: BrokerCommand, io: CliIo, signal?: AbortSignal): Promise<number> {
  if (cmd.positionals.length > 0) {
    throw new UsageError(`"broker watch" takes no arguments, got "${cmd.positionals[0]}"`);
  }
  const brokerId = cmd.values["broker-id"] === undefined
    ? ""
    : String(parseInteger(cmd.values["broker-id"] as string, 'Option "--broker-id"', 0));
  const count = cmd.values.count === undefined
    ? Infinity
    : parseInteger(cmd.values.count as string, 'Option "--count"', 1);
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  let seen = 0;
  const widths = [10, 24, 10, 8, 6];
  const line = (cells: (string | number)[]) =>
    cells.map((c, i) => String(c).padEnd(widths[i])).join("  ").trimEnd();
  if (cmd.output === "table") io.stdout(line(["STATUS", "TOPIC", "PARTITION", "BROKER", "EPOCH"]));
  try {
    await withClient(cmd, (c) =>
      c.serverStream<PartitionAssignmentEvent>(
        CONTROL_METHODS.watchAssignments,
        { brokerId },
        (event) => {
          if (seen >= count) return;
          seen++;
          const p = event.partition ?? { topic: "", partition: 0 };
          io.stdout(
            cmd.output === "json"
              ? JSON.stringify({ ...event, partition: p })
              : line([event.status, p.topic, p.partition, event.brokerId, event.epoch]),
          );
          if (seen >= count) stop.abort();
        },
        stop.signal,
      ));
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    signal?.removeEventListener("abort", onAbort);
  }
  return EXIT.OK;
}

const RUNNERS: Record<
  Subcommand,
  {
    options: Record<string, { type: "string" | "boolean" }>;
    run(cmd: BrokerCommand, io: CliIo): Promise<number>;
  }
> = {
  status: { options: {}, run: status },
  drain: {
    options: { "deadline-seconds": { type: "string" }, reason: { type: "string" } },
    run: drain,
  },
  flush: { options: {}, run: flush },
  watch: {
    options: { "broker-id": { type: "string" }, count: { type: "string" } },
    run: (cmd, io) => watch(cmd, io),
  },
};

export async function runBroker(
  args: string[],
  io: CliIo = CONSOLE_IO,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "-h" || sub === "--help" || sub === "help") {
    io.stdout(brokerHelp());
    return sub === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
    io.stderr(`Unknown command "broker ${sub}"; run "kafscale broker --help" for the list`);
    return EXIT.USAGE;
  }
  const name = sub as Subcommand;
  return await runCommand(io, `kafscale broker ${name}`, async () => {
    const cmd = parse(rest, RUNNERS[name].options, env);
    if (cmd.help) return (io.stdout(subcommandHelp(name)), EXIT.OK);
    try {
      return await RUNNERS[name].run(cmd, io);
    } catch (err) {
      if (!(err instanceof ControlError)) throw err;
      const method = { status: "GetStatus", drain: "DrainPartitions", flush: "TriggerFlush" }[
        name as "status"
      ] ?? "WatchAssignments";
      io.stderr(oneLine(`${method} failed (${grpcStatusName(err.code)}): ${err.message}`));
      return EXIT.FAILED;
    }
  });
}
