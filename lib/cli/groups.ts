/**
 * `kafscale groups list|describe|delete|reset-offsets`: consumer group
 * administration over the Kafka protocol (lib/client/admin.ts), so it works
 * against any Kafka-compatible broker. Flags and the reset rules follow
 * kafka-consumer-groups.sh: offsets are reset only for an empty group,
 * targets are clamped to the partition's earliest..latest range, and
 * nothing is committed without `--execute`. Must not reach into broker
 * internals.
 */
import {
  type AdminClient,
  AdminError,
  type GroupDescription,
  type GroupOffset,
  type TopicPartitionRef,
} from "../client/admin.ts";
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

/** States a group's offsets may be reset in (Kafka's rule: no live members). */
const RESETTABLE_STATES = new Set(["Empty", "Dead"]);
const STRATEGIES = ["to-earliest", "to-latest", "to-offset", "to-datetime", "shift-by"] as const;

export function groupsHelp(): string {
  return [
    "Usage: kafscale groups <command> [options]",
    "",
    "Manage consumer groups over the Kafka protocol.",
    "",
    "Commands:",
    "  list [--state S]      List groups, optionally only those in state S",
    "  describe GROUP        Members, assignments, committed offsets and lag per partition",
    "  delete GROUP          Delete an empty group and its committed offsets",
    "  reset-offsets GROUP --topic T (--to-earliest|--to-latest|--to-offset N|",
    "                --to-datetime ISO|--shift-by N) (--dry-run|--execute)",
    "                        Move an empty group's committed offsets",
    "",
    "Options of every command:",
    ...COMMON_HELP,
    "",
    'Run "kafscale groups <command> --help" for the options of a command.',
  ].join("\n");
}

const HELP = {
  list: [
    "Usage: kafscale groups list [--state S]",
    "",
    "Lists consumer groups with their state and protocol type.",
    "",
    "Options:",
    "  --state S                      Only groups in these states (comma-separated or",
    "                                 repeated): Empty, Stable, PreparingRebalance,",
    "                                 CompletingRebalance, Dead",
  ],
  describe: [
    "Usage: kafscale groups describe GROUP",
    "",
    "Describes a group: state, members with their assignments, and per partition the",
    "committed offset, the log end offset and the lag.",
    "",
    "Options:",
  ],
  delete: [
    "Usage: kafscale groups delete GROUP",
    "",
    "Deletes a group that has no active members, with its committed offsets.",
    "",
    "Options:",
  ],
  "reset-offsets": [
    "Usage: kafscale groups reset-offsets GROUP --topic T (--to-earliest | --to-latest |",
    "         --to-offset N | --to-datetime ISO | --shift-by N) (--dry-run | --execute)",
    "",
    "Moves the committed offsets of an empty group (no active members). Targets outside a",
    "partition's earliest..latest range are clamped to it. --dry-run prints the plan;",
    "--execute commits it.",
    "",
    "Options:",
    "  --topic T[:P,P...]             Topic (all partitions, or the listed ones), repeatable",
    "  --to-earliest                  The earliest offset still in the log",
    "  --to-latest                    The log end offset",
    "  --to-offset N                  Offset N",
    "  --to-datetime ISO              The first offset at or after the time (e.g.",
    "                                 2024-05-01T12:00:00Z; no zone means local time);",
    "                                 the log end when there is none",
    "  --shift-by N                   The committed offset plus N (N may be negative)",
    "  --dry-run                      Print the new offsets without committing them",
    "  --execute                      Commit the new offsets",
  ],
} as const;

type Subcommand = keyof typeof HELP;

function subcommandHelp(name: Subcommand): string {
  return [...HELP[name], ...COMMON_HELP].join("\n");
}

const key = (topic: string, partition: number) => `${topic}/${partition}`;
const byTopicPartition = (a: TopicPartitionRef, b: TopicPartitionRef) =>
  a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition;

async function list(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, { state: { type: "string", multiple: true } });
  if (cmd.help) return (io.stdout(subcommandHelp("list")), EXIT.OK);
  if (cmd.positionals.length > 0) {
    throw new UsageError(`"groups list" takes no arguments, got "${cmd.positionals[0]}"`);
  }
  const states = ((cmd.values.state as string[] | undefined) ?? [])
    .flatMap((s) => s.split(","))
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return await withAdmin(cmd, async (admin) => {
    const groups = await admin.listGroups(states);
    print(
      io,
      cmd.output,
      groups,
      renderTable(
        ["GROUP", "STATE", "PROTOCOL-TYPE"],
        groups.map((g) => [g.groupId, g.state, g.protocolType || null]),
      ),
    );
    return EXIT.OK;
  });
}

interface OffsetRow {
  topic: string;
  partition: number;
  currentOffset: number | null;
  logEndOffset: number;
  lag: number | null;
  memberId: string | null;
  clientId: string | null;
  host: string | null;
}

async function describeRows(
  admin: AdminClient,
  group: GroupDescription,
  offsets: GroupOffset[],
): Promise<OffsetRow[]> {
  const owners = new Map<string, { memberId: string; clientId: string; host: string }>();
  for (const m of group.members) {
    for (const a of m.assignment) {
      for (const p of a.partitions) {
        owners.set(key(a.topic, p), {
          memberId: m.memberId,
          clientId: m.clientId,
          host: m.clientHost,
        });
      }
    }
  }
  const committed = new Map(offsets.map((o) => [key(o.topic, o.partition), o.offset]));
  const refs = new Map<string, TopicPartitionRef>();
  for (const o of offsets) refs.set(key(o.topic, o.partition), o);
  for (const m of group.members) {
    for (const a of m.assignment) {
      for (const p of a.partitions) refs.set(key(a.topic, p), { topic: a.topic, partition: p });
    }
  }
  const all = [...refs.values()].sort(byTopicPartition);
  // Offsets of a deleted topic have no log end: report what is known.
  const existing = new Set((await admin.metadata(null)).topics.map((t) => t.name));
  const ends = await admin.listOffsets(all.filter((r) => existing.has(r.topic)), "latest");
  return all.map((r) => {
    const k = key(r.topic, r.partition);
    const current = committed.get(k) ?? null;
    const end = ends.get(k) ?? -1;
    const owner = owners.get(k);
    return {
      topic: r.topic,
      partition: r.partition,
      currentOffset: current,
      logEndOffset: end,
      lag: current === null || end < 0 ? null : Math.max(0, end - current),
      memberId: owner?.memberId ?? null,
      clientId: owner?.clientId ?? null,
      host: owner?.host ?? null,
    };
  });
}

async function describe(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, {});
  if (cmd.help) return (io.stdout(subcommandHelp("describe")), EXIT.OK);
  const groupId = onePositional(cmd.positionals, "groups", "describe");
  return await withAdmin(cmd, async (admin) => {
    const group = await admin.describeGroup(groupId);
    const offsets = await admin.fetchOffsets(groupId);
    if (group.state === "Dead" && offsets.length === 0) {
      throw new AdminError(`Group "${groupId}" does not exist`);
    }
    const rows = await describeRows(admin, group, offsets);
    const json = {
      groupId: group.groupId,
      state: group.state,
      protocolType: group.protocolType,
      protocol: group.protocol,
      coordinator: group.coordinator,
      members: group.members,
      offsets: rows,
    };
    const table = [
      renderFields([
        ["GROUP", group.groupId],
        ["STATE", group.state],
        ["PROTOCOL-TYPE", group.protocolType || null],
        ["PROTOCOL", group.protocol || null],
        ["COORDINATOR", group.coordinator],
        ["MEMBERS", group.members.length],
      ]),
      ...(group.members.length === 0 ? [] : [
        "",
        renderTable(
          ["MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"],
          group.members.map((m) => [
            m.memberId,
            m.clientId,
            m.clientHost,
            m.assignment.map((a) => `${a.topic}:${a.partitions.join(",")}`).join(" ") || null,
          ]),
        ),
      ]),
      "",
      renderTable(
        ["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID"],
        rows.map((r) => [
          r.topic,
          r.partition,
          r.currentOffset,
          r.logEndOffset < 0 ? null : r.logEndOffset,
          r.lag,
          r.memberId,
        ]),
      ),
    ].join("\n");
    print(io, cmd.output, json, table);
    return EXIT.OK;
  });
}

async function remove(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, {});
  if (cmd.help) return (io.stdout(subcommandHelp("delete")), EXIT.OK);
  const groupId = onePositional(cmd.positionals, "groups", "delete");
  return await withAdmin(cmd, async (admin) => {
    await admin.deleteGroup(groupId);
    print(io, cmd.output, { groupId, deleted: true }, `Deleted group "${groupId}"`);
    return EXIT.OK;
  });
}

type Strategy =
  | { kind: "to-earliest" }
  | { kind: "to-latest" }
  | { kind: "to-offset"; offset: number }
  | { kind: "to-datetime"; timestamp: number }
  | { kind: "shift-by"; delta: number };

function parseStrategy(values: Record<string, unknown>): Strategy {
  const given = STRATEGIES.filter((s) => values[s] !== undefined);
  if (given.length !== 1) {
    throw new UsageError(
      given.length === 0
        ? `Choose a reset target: ${STRATEGIES.map((s) => `--${s}`).join(", ")}`
        : `Choose one reset target, got ${given.map((s) => `--${s}`).join(" and ")}`,
    );
  }
  const kind = given[0];
  switch (kind) {
    case "to-earliest":
    case "to-latest":
      return { kind };
    case "to-offset":
      return {
        kind,
        offset: parseInteger(values["to-offset"] as string, 'Option "--to-offset"', 0),
      };
    case "shift-by":
      return { kind, delta: parseInteger(values["shift-by"] as string, 'Option "--shift-by"') };
    case "to-datetime": {
      const text = values["to-datetime"] as string;
      const timestamp = Date.parse(text);
      if (!Number.isFinite(timestamp)) {
        throw new UsageError(
          `Option "--to-datetime" must be an ISO date-time like 2024-05-01T12:00:00Z, ` +
            `got "${text}"`,
        );
      }
      return { kind, timestamp };
    }
  }
}

/** `T` (every partition) or `T:0,2` (those partitions). */
function parseTopicArg(value: string): { topic: string; partitions: number[] | null } {
  const colon = value.lastIndexOf(":");
  if (colon < 0) return { topic: value, partitions: null };
  const topic = value.slice(0, colon);
  const partitions = value.slice(colon + 1).split(",").map((p) =>
    parseInteger(p, `Partition "${p}" of "--topic ${value}"`, 0)
  );
  if (topic === "") throw new UsageError(`Option "--topic" needs a topic name, got "${value}"`);
  return { topic, partitions };
}

interface ResetPlan {
  topic: string;
  partition: number;
  previousOffset: number | null;
  newOffset: number;
}

async function planReset(
  admin: AdminClient,
  groupId: string,
  topicArgs: { topic: string; partitions: number[] | null }[],
  strategy: Strategy,
): Promise<ResetPlan[]> {
  const cluster = await admin.metadata([...new Set(topicArgs.map((t) => t.topic))]);
  const partitionsOf = new Map(cluster.topics.map((t) => [t.name, t.partitions.length]));
  const refs = new Map<string, TopicPartitionRef>();
  for (const t of topicArgs) {
    const count = partitionsOf.get(t.topic)!;
    for (const p of t.partitions ?? Array.from({ length: count }, (_, i) => i)) {
      if (p >= count) {
        throw new AdminError(`Topic "${t.topic}" has no partition ${p} (it has ${count})`);
      }
      refs.set(key(t.topic, p), { topic: t.topic, partition: p });
    }
  }
  const targets = [...refs.values()].sort(byTopicPartition);
  const [earliest, latest, committed] = await Promise.all([
    admin.listOffsets(targets, "earliest", cluster),
    admin.listOffsets(targets, "latest", cluster),
    admin.fetchOffsets(groupId),
  ]);
  const current = new Map(committed.map((o) => [key(o.topic, o.partition), o.offset]));
  const atTime = strategy.kind === "to-datetime"
    ? await admin.listOffsets(targets, { timestamp: strategy.timestamp }, cluster)
    : null;
  return targets.map((r) => {
    const k = key(r.topic, r.partition);
    const low = earliest.get(k)!;
    const high = latest.get(k)!;
    const previous = current.get(k) ?? null;
    let wanted: number;
    switch (strategy.kind) {
      case "to-earliest":
        wanted = low;
        break;
      case "to-latest":
        wanted = high;
        break;
      case "to-offset":
        wanted = strategy.offset;
        break;
      case "to-datetime": {
        const found = atTime!.get(k) ?? -1;
        wanted = found < 0 ? high : found;
        break;
      }
      case "shift-by":
        if (previous === null) {
          throw new AdminError(
            `Group "${groupId}" has no committed offset for "${r.topic}-${r.partition}" to ` +
              `shift; use --to-earliest, --to-latest or --to-offset`,
          );
        }
        wanted = previous + strategy.delta;
        break;
    }
    return {
      topic: r.topic,
      partition: r.partition,
      previousOffset: previous,
      newOffset: Math.min(Math.max(wanted, low), high),
    };
  });
}

async function resetOffsets(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, {
    topic: { type: "string", multiple: true },
    "to-earliest": { type: "boolean" },
    "to-latest": { type: "boolean" },
    "to-offset": { type: "string" },
    "to-datetime": { type: "string" },
    "shift-by": { type: "string" },
    "dry-run": { type: "boolean" },
    execute: { type: "boolean" },
  });
  if (cmd.help) return (io.stdout(subcommandHelp("reset-offsets")), EXIT.OK);
  const groupId = onePositional(cmd.positionals, "groups", "reset-offsets");
  const topicArgs = ((cmd.values.topic as string[] | undefined) ?? []).map(parseTopicArg);
  if (topicArgs.length === 0) throw new UsageError(`"groups reset-offsets" needs "--topic T"`);
  const strategy = parseStrategy(cmd.values);
  const dryRun = cmd.values["dry-run"] === true;
  const execute = cmd.values.execute === true;
  if (dryRun === execute) {
    throw new UsageError(`Choose one of "--dry-run" (print the plan) or "--execute" (commit it)`);
  }
  return await withAdmin(cmd, async (admin) => {
    const group = await admin.describeGroup(groupId);
    if (!RESETTABLE_STATES.has(group.state)) {
      throw new AdminError(
        `Cannot reset the offsets of group "${groupId}": it is ${group.state} with ` +
          `${group.members.length} member(s); stop its consumers first`,
      );
    }
    const plan = await planReset(admin, groupId, topicArgs, strategy);
    if (execute) {
      await admin.commitOffsets(
        groupId,
        plan.map((p) => ({
          topic: p.topic,
          partition: p.partition,
          offset: p.newOffset,
          metadata: "",
        })),
      );
    }
    print(
      io,
      cmd.output,
      { groupId, executed: execute, offsets: plan },
      renderTable(
        ["GROUP", "TOPIC", "PARTITION", "PREVIOUS-OFFSET", "NEW-OFFSET"],
        plan.map((p) => [groupId, p.topic, p.partition, p.previousOffset, p.newOffset]),
      ) + (execute ? "" : "\n(dry run: nothing was committed; use --execute to commit)"),
    );
    return EXIT.OK;
  });
}

export async function runGroups(args: string[], io: CliIo = CONSOLE_IO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "-h" || sub === "--help" || sub === "help") {
    io.stdout(groupsHelp());
    return sub === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const commands = { list, describe, delete: remove, "reset-offsets": resetOffsets } as const;
  if (!(sub in commands)) {
    io.stderr(`Unknown command "groups ${sub}"; run "kafscale groups --help" for the list`);
    return EXIT.USAGE;
  }
  return await runCommand(
    io,
    `kafscale groups ${sub}`,
    () => commands[sub as keyof typeof commands](rest, io),
  );
}
