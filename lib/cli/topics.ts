/**
 * `kafscale topics create|list|describe|alter|delete`: topic administration
 * over the Kafka protocol (lib/client/admin.ts), so it works against any
 * Kafka-compatible broker. Flags follow kafka-topics.sh where they fit.
 * Must not reach into broker internals.
 */
import { AdminError, type TopicDescription } from "../client/admin.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import {
  type CliIo,
  COMMON_HELP,
  CONSOLE_IO,
  EXIT,
  onePositional,
  parseCommand,
  parseInteger,
  print,
  renderFields,
  renderTable,
  runCommand,
  UsageError,
  withAdmin,
} from "./output.ts";

const SUBCOMMANDS = ["create", "list", "describe", "alter", "delete", "trim"] as const;

export function topicsHelp(): string {
  return [
    "Usage: kafscale topics <command> [options]",
    "",
    "Manage topics over the Kafka protocol.",
    "",
    "Commands:",
    "  create NAME [--partitions N] [--config K=V]... [--if-not-exists]",
    "                        Create a topic",
    "  list                  List topics",
    "  describe [NAME...]    Partitions, leaders, offsets, sealed and unsealed bytes, configs",
    "  alter NAME (--partitions N | --config K=V...)",
    "                        Add partitions, or set (K=V) or reset (K=) topic configs",
    "  delete NAME [--if-exists]",
    "                        Delete a topic with its data and committed offsets",
    "  trim TOPIC:PARTITION --before OFFSET",
    "                        Delete a partition's records before OFFSET (DeleteRecords)",
    "",
    "Options of every command:",
    ...COMMON_HELP,
    "",
    'Run "kafscale topics <command> --help" for the options of a command.',
  ].join("\n");
}

const HELP: Record<(typeof SUBCOMMANDS)[number], string[]> = {
  create: [
    "Usage: kafscale topics create NAME [--partitions N] [--config K=V]... [--if-not-exists]",
    "",
    "Creates a topic. Replication is the object store's: there is no replication factor.",
    "",
    "Options:",
    "  --partitions N                 Partition count (default: the broker's num.partitions)",
    "  --config K=V                   A topic config, repeatable (retention.ms, retention.bytes,",
    "                                 segment.bytes, max.message.bytes, message.timestamp.type,",
    "                                 cleanup.policy)",
    "  --if-not-exists                Succeed when the topic already exists",
  ],
  list: [
    "Usage: kafscale topics list",
    "",
    "Lists topics with their partition count and topic id.",
    "",
    "Options:",
  ],
  describe: [
    "Usage: kafscale topics describe [NAME...]",
    "",
    "Describes the named topics (all when none is named): partitions with their leader,",
    "earliest and latest offsets, and every config with its source.",
    "",
    "Options:",
  ],
  alter: [
    "Usage: kafscale topics alter NAME (--partitions N | --config K=V...)",
    "",
    "Adds partitions (never removes them), or changes topic configs: K=V sets a value,",
    "K= resets it to the broker default. Other configs are left as they are.",
    "",
    "Options:",
    "  --partitions N                 The new, higher partition count",
    "  --config K=V                   A config to set (K=V) or reset (K=), repeatable",
  ],
  trim: [
    "Usage: kafscale topics trim TOPIC:PARTITION --before OFFSET",
    "",
    'Deletes the partition\'s records before OFFSET ("end": all of them, up to the high',
    "watermark), as kafka-delete-records.sh does: the log start offset moves up and the",
    'segments wholly before it are deleted. The topic\'s cleanup.policy must contain "delete".',
    "",
    "Options:",
    '  --before OFFSET                The first offset to keep, or "end"',
  ],
  delete: [
    "Usage: kafscale topics delete NAME [--if-exists]",
    "",
    "Deletes a topic, its data and every group's committed offsets for it.",
    "",
    "Options:",
    "  --if-exists                    Succeed when the topic does not exist",
  ],
};

function subcommandHelp(name: (typeof SUBCOMMANDS)[number]): string {
  return [...HELP[name], ...COMMON_HELP].join("\n");
}

/** `K=V` pairs into a record; `allowEmpty` lets `K=` through (reset to default). */
function parseConfigs(values: string[], allowEmpty: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of values) {
    const eq = kv.indexOf("=");
    if (eq <= 0 || (!allowEmpty && eq === kv.length - 1)) {
      throw new UsageError(`Option "--config" takes KEY=VALUE, got "${kv}"`);
    }
    const key = kv.slice(0, eq).trim();
    if (key in out) throw new UsageError(`Config "${key}" is given twice`);
    out[key] = kv.slice(eq + 1);
  }
  return out;
}

async function create(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, {
    partitions: { type: "string" },
    config: { type: "string", multiple: true },
    "if-not-exists": { type: "boolean" },
  });
  if (cmd.help) return (io.stdout(subcommandHelp("create")), EXIT.OK);
  const name = onePositional(cmd.positionals, "topics", "create");
  const partitions = cmd.values.partitions === undefined
    ? -1
    : parseInteger(cmd.values.partitions as string, 'Option "--partitions"', 1);
  const configs = parseConfigs((cmd.values.config as string[] | undefined) ?? [], false);
  return await withAdmin(cmd, async (admin) => {
    try {
      const created = await admin.createTopic(name, partitions, configs);
      print(
        io,
        cmd.output,
        { name, topicId: created.topicId, partitions: created.partitions, created: true },
        `Created topic "${name}" with ${created.partitions} partition` +
          (created.partitions === 1 ? "" : "s"),
      );
      return EXIT.OK;
    } catch (err) {
      if (
        cmd.values["if-not-exists"] === true && err instanceof AdminError &&
        err.errorCode === ERROR_CODES.TOPIC_ALREADY_EXISTS
      ) {
        print(io, cmd.output, { name, created: false }, `Topic "${name}" already exists`);
        return EXIT.OK;
      }
      throw err;
    }
  });
}

async function list(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, {});
  if (cmd.help) return (io.stdout(subcommandHelp("list")), EXIT.OK);
  if (cmd.positionals.length > 0) {
    throw new UsageError(`"topics list" takes no arguments, got "${cmd.positionals[0]}"`);
  }
  return await withAdmin(cmd, async (admin) => {
    const { topics } = await admin.metadata(null);
    const rows = topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.length,
      topicId: t.topicId,
    }));
    print(
      io,
      cmd.output,
      rows,
      renderTable(
        ["NAME", "PARTITIONS", "TOPIC-ID"],
        rows.map((r) => [
          r.name,
          r.partitions,
          r.topicId,
        ]),
      ),
    );
    return EXIT.OK;
  });
}

function describeTable(t: TopicDescription): string {
  return [
    renderFields([["TOPIC", t.name], ["TOPIC-ID", t.topicId], [
      "PARTITIONS",
      t.partitions.length,
    ]]),
    "",
    renderTable(
      ["CONFIG", "VALUE", "SOURCE"],
      t.configs.map((c) => [c.name, c.sensitive ? "(sensitive)" : c.value, c.source]),
    ),
    "",
    renderTable(
      [
        "PARTITION",
        "LEADER",
        "EPOCH",
        "REPLICAS",
        "ISR",
        "EARLIEST",
        "LATEST",
        "SEALED-BYTES",
        "UNSEALED-BYTES",
      ],
      t.partitions.map((p) => [
        p.partition,
        p.leader,
        p.leaderEpoch,
        p.replicas.join(","),
        p.isr.join(","),
        p.earliestOffset,
        p.latestOffset,
        p.sealedBytes,
        p.unsealedBytes,
      ]),
    ),
  ].join("\n");
}

async function describe(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, {});
  if (cmd.help) return (io.stdout(subcommandHelp("describe")), EXIT.OK);
  return await withAdmin(cmd, async (admin) => {
    const topics = await admin.describeTopics(cmd.positionals.length > 0 ? cmd.positionals : null);
    const json = topics.map((t) => ({
      name: t.name,
      topicId: t.topicId,
      partitions: t.partitions.map((p) => ({
        partition: p.partition,
        leader: p.leader,
        leaderEpoch: p.leaderEpoch,
        replicas: p.replicas,
        isr: p.isr,
        earliestOffset: p.earliestOffset,
        latestOffset: p.latestOffset,
        sealedBytes: p.sealedBytes,
        unsealedBytes: p.unsealedBytes,
      })),
      configs: t.configs,
    }));
    print(io, cmd.output, json, topics.map(describeTable).join("\n\n"));
    return EXIT.OK;
  });
}

async function alter(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, {
    partitions: { type: "string" },
    config: { type: "string", multiple: true },
  });
  if (cmd.help) return (io.stdout(subcommandHelp("alter")), EXIT.OK);
  const name = onePositional(cmd.positionals, "topics", "alter");
  const hasPartitions = cmd.values.partitions !== undefined;
  const configArgs = (cmd.values.config as string[] | undefined) ?? [];
  if (hasPartitions === (configArgs.length > 0)) {
    throw new UsageError(`"topics alter" needs either "--partitions N" or "--config K=V"`);
  }
  return await withAdmin(cmd, async (admin) => {
    if (hasPartitions) {
      const count = parseInteger(cmd.values.partitions as string, 'Option "--partitions"', 1);
      await admin.createPartitions(name, count);
      print(
        io,
        cmd.output,
        { name, partitions: count },
        `Altered topic "${name}": ${count} partitions`,
      );
      return EXIT.OK;
    }
    const configs = parseConfigs(configArgs, true);
    const set: Record<string, string> = {};
    const reset: string[] = [];
    for (const [k, v] of Object.entries(configs)) {
      if (v === "") reset.push(k);
      else set[k] = v;
    }
    await admin.alterTopicConfigs(name, set, reset);
    const changes = [
      ...Object.entries(set).map(([k, v]) => `${k}=${v}`),
      ...reset.map((k) => `${k} (default)`),
    ];
    print(
      io,
      cmd.output,
      { name, set, reset },
      `Altered topic "${name}": ${changes.join(", ")}`,
    );
    return EXIT.OK;
  });
}

async function remove(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, { "if-exists": { type: "boolean" } });
  if (cmd.help) return (io.stdout(subcommandHelp("delete")), EXIT.OK);
  const name = onePositional(cmd.positionals, "topics", "delete");
  return await withAdmin(cmd, async (admin) => {
    try {
      await admin.deleteTopic(name);
      print(io, cmd.output, { name, deleted: true }, `Deleted topic "${name}"`);
      return EXIT.OK;
    } catch (err) {
      if (
        cmd.values["if-exists"] === true && err instanceof AdminError &&
        err.errorCode === ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION
      ) {
        print(io, cmd.output, { name, deleted: false }, `Topic "${name}" does not exist`);
        return EXIT.OK;
      }
      throw err;
    }
  });
}

async function trim(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, { before: { type: "string" } });
  if (cmd.help) return (io.stdout(subcommandHelp("trim")), EXIT.OK);
  const target = onePositional(cmd.positionals, "topics", "trim");
  const colon = target.lastIndexOf(":");
  const topic = target.slice(0, colon);
  const partition = Number(target.slice(colon + 1));
  if (colon <= 0 || !/^\d+$/.test(target.slice(colon + 1)) || !Number.isSafeInteger(partition)) {
    throw new UsageError(`Expected TOPIC:PARTITION, got "${target}"`);
  }
  const before = cmd.values.before;
  if (typeof before !== "string") throw new UsageError('Option "--before" is required');
  if (before !== "end" && !/^\d+$/.test(before)) {
    throw new UsageError(`Option "--before" takes an offset or "end", got "${before}"`);
  }
  const offset = before === "end" ? -1 : Number(before);
  return await withAdmin(cmd, async (admin) => {
    const start = await admin.deleteRecords({ topic, partition }, offset);
    print(
      io,
      cmd.output,
      { topic, partition, logStartOffset: start },
      `Partition ${partition} of "${topic}" now starts at offset ${start}`,
    );
    return EXIT.OK;
  });
}

export async function runTopics(args: string[], io: CliIo = CONSOLE_IO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "-h" || sub === "--help" || sub === "help") {
    io.stdout(topicsHelp());
    return sub === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const commands = { create, list, describe, alter, delete: remove, trim } as const;
  if (!(sub in commands)) {
    io.stderr(`Unknown command "topics ${sub}"; run "kafscale topics --help" for the list`);
    return EXIT.USAGE;
  }
  return await runCommand(
    io,
    `kafscale topics ${sub}`,
    () => commands[sub as keyof typeof commands](rest, io),
  );
}
