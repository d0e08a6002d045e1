/**
 * `kafscale transactions list|describe|abort`: transactional ids over the Kafka protocol
 * (ListTransactions, DescribeTransactions, InitProducerId through lib/client/admin.ts), like
 * kafka-transactions.sh. `abort` fences the id's producer the way a new instance of it would:
 * the coordinator aborts the transaction left open and bumps the epoch, so the old producer can
 * neither write nor commit. Must not reach into broker internals.
 */
import {
  type CliIo,
  COMMON_HELP,
  CONSOLE_IO,
  EXIT,
  onePositional,
  parseCommand,
  print,
  renderFields,
  renderTable,
  runCommand,
  UsageError,
  withAdmin,
} from "./output.ts";

export function transactionsHelp(): string {
  return [
    "Usage: kafscale transactions <command> [options]",
    "",
    "Inspect and abort transactions (transactional producers) over the Kafka protocol.",
    "",
    "Commands:",
    "  list [--state S]      List transactional ids with their producer id and state",
    "  describe ID           State, producer, timeout, start time and partitions of an id",
    "  abort ID              Abort the id's open transaction and fence its producer",
    "",
    "Options of every command:",
    ...COMMON_HELP,
    "",
    'Run "kafscale transactions <command> --help" for the options of a command.',
  ].join("\n");
}

const HELP = {
  list: [
    "Usage: kafscale transactions list [--state S]",
    "",
    "Lists transactional ids with their producer id and state.",
    "",
    "Options:",
    "  --state S                      Only ids in these states (comma-separated or repeated):",
    "                                 Empty, Ongoing, PrepareCommit, PrepareAbort,",
    "                                 CompleteCommit, CompleteAbort",
  ],
  describe: [
    "Usage: kafscale transactions describe ID",
    "",
    "Describes a transactional id at its coordinator: state, producer id and epoch,",
    "transaction timeout, when the open transaction started and its partitions.",
    "",
    "Options:",
  ],
  abort: [
    "Usage: kafscale transactions abort ID",
    "",
    "Aborts the open transaction of a transactional id (a producer that hangs or died",
    "mid-transaction) by fencing its producer, as a new instance of it would: the",
    "coordinator writes ABORT markers and bumps the epoch. The old producer's next",
    "send or commit fails with PRODUCER_FENCED; restart it to go on.",
    "",
    "Options:",
  ],
} as const;

type Subcommand = keyof typeof HELP;

function subcommandHelp(name: Subcommand): string {
  return [...HELP[name], ...COMMON_HELP].join("\n");
}

async function list(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, { state: { type: "string", multiple: true } });
  if (cmd.help) return (io.stdout(subcommandHelp("list")), EXIT.OK);
  if (cmd.positionals.length > 0) {
    throw new UsageError(`"transactions list" takes no arguments, got "${cmd.positionals[0]}"`);
  }
  const states = ((cmd.values.state as string[] | undefined) ?? [])
    .flatMap((s) => s.split(","))
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return await withAdmin(cmd, async (admin) => {
    const txns = await admin.listTransactions(states);
    print(
      io,
      cmd.output,
      txns,
      renderTable(
        ["TRANSACTIONAL-ID", "PRODUCER-ID", "STATE", "COORDINATOR"],
        txns.map((t) => [t.transactionalId, t.producerId, t.state, t.coordinator]),
      ),
    );
    return EXIT.OK;
  });
}

async function describe(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, {});
  if (cmd.help) return (io.stdout(subcommandHelp("describe")), EXIT.OK);
  const id = onePositional(cmd.positionals, "transactions", "describe");
  return await withAdmin(cmd, async (admin) => {
    const t = await admin.describeTransaction(id);
    const table = renderFields([
      ["TRANSACTIONAL-ID", t.transactionalId],
      ["COORDINATOR", t.coordinator],
      ["STATE", t.state],
      ["PRODUCER-ID", t.producerId],
      ["PRODUCER-EPOCH", t.producerEpoch],
      ["TIMEOUT-MS", t.timeoutMs],
      ["STARTED", t.startTimeMs < 0 ? null : new Date(t.startTimeMs).toISOString()],
      [
        "PARTITIONS",
        t.partitions.map((p) => `${p.topic}-${p.partition}`).join(" ") || null,
      ],
    ]);
    print(io, cmd.output, t, table);
    return EXIT.OK;
  });
}

async function abort(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, {});
  if (cmd.help) return (io.stdout(subcommandHelp("abort")), EXIT.OK);
  const id = onePositional(cmd.positionals, "transactions", "abort");
  return await withAdmin(cmd, async (admin) => {
    const before = await admin.describeTransaction(id);
    const epoch = await admin.fenceTransactionalId(id);
    const result = {
      transactionalId: id,
      stateBefore: before.state,
      aborted: before.state === "Ongoing",
      producerId: before.producerId,
      producerEpoch: epoch,
    };
    print(
      io,
      cmd.output,
      result,
      before.state === "Ongoing"
        ? `Aborted the open transaction of "${id}"; its producer is fenced (epoch now ${epoch})`
        : `"${id}" had no open transaction (${before.state}); its producer is fenced (epoch ` +
          `now ${epoch})`,
    );
    return EXIT.OK;
  });
}

export async function runTransactions(args: string[], io: CliIo = CONSOLE_IO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "-h" || sub === "--help" || sub === "help") {
    io.stdout(transactionsHelp());
    return sub === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const commands = { list, describe, abort } as const;
  if (!(sub in commands)) {
    io.stderr(
      `Unknown command "transactions ${sub}"; run "kafscale transactions --help" for the list`,
    );
    return EXIT.USAGE;
  }
  return await runCommand(
    io,
    `kafscale transactions ${sub}`,
    () => commands[sub as keyof typeof commands](rest, io),
  );
}
