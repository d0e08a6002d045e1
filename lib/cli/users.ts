/**
 * `kafscale users create|list|delete`: SCRAM users over the Kafka protocol
 * (AlterUserScramCredentials, DescribeUserScramCredentials), like `kafka-configs.sh
 * --entity-type users`. The password is salted here (SCRAM's Hi) and never sent. Changing
 * credentials needs a super user, or a listener without authentication (the loopback PLAINTEXT
 * listener of an edge host). Must not reach into broker internals.
 */
import { randomBytes } from "node:crypto";
import {
  saltedPassword,
  SCRAM_ITERATIONS_DEFAULT,
  SCRAM_MECHANISMS,
  type ScramMechanism,
} from "../security/scram.ts";
import {
  type CliIo,
  COMMON_HELP,
  CONSOLE_IO,
  EXIT,
  parseCommand,
  parseInteger,
  print,
  renderTable,
  runCommand,
  UsageError,
  withAdmin,
} from "./output.ts";

export function usersHelp(): string {
  return [
    "Usage: kafscale users <command> [options]",
    "",
    "Manage the SCRAM users of SASL listeners over the Kafka protocol.",
    "",
    "Commands:",
    "  create NAME           Create or change a user's credentials (both SCRAM mechanisms)",
    "  list                  List users with their mechanisms and iterations",
    "  delete NAME           Delete a user's credentials",
    "",
    "Options of every command:",
    ...COMMON_HELP,
    "",
    'Run "kafscale users <command> --help" for the options of a command.',
  ].join("\n");
}

const HELP = {
  create: [
    "Usage: kafscale users create NAME (--password P | --password-file F) [--mechanism M]",
    "         [--iterations N]",
    "",
    "Creates or changes a user's SCRAM credentials. The password is salted here and never sent;",
    "PLAIN logins check the same credentials.",
    "",
    "Options:",
    "  --password P                   The password (visible in the process list: prefer a file)",
    "  --password-file F              A file whose first line is the password",
    "  --mechanism M                  SCRAM-SHA-256 or SCRAM-SHA-512 (default: both)",
    "  --iterations N                 4096-16384 (default 8192)",
  ],
  list: [
    "Usage: kafscale users list",
    "",
    "Lists users with their mechanisms and iterations.",
    "",
    "Options:",
  ],
  delete: [
    "Usage: kafscale users delete NAME [--mechanism M]",
    "",
    "Deletes a user's credentials (both mechanisms unless one is named).",
    "",
    "Options:",
    "  --mechanism M                  SCRAM-SHA-256 or SCRAM-SHA-512 (default: both)",
  ],
} as const;

type Subcommand = keyof typeof HELP;

function subcommandHelp(name: Subcommand): string {
  return [...HELP[name], ...COMMON_HELP].join("\n");
}

function oneUser(positionals: string[], command: string): string {
  if (positionals.length !== 1) {
    throw new UsageError(`"users ${command}" takes one user name, got ${positionals.length}`);
  }
  return positionals[0];
}

function mechanismsOf(value: unknown): ScramMechanism[] {
  if (value === undefined) return ["SCRAM-SHA-256", "SCRAM-SHA-512"];
  if (typeof value !== "string" || !Object.hasOwn(SCRAM_MECHANISMS, value)) {
    throw new UsageError(`"--mechanism" must be SCRAM-SHA-256 or SCRAM-SHA-512, got "${value}"`);
  }
  return [value as ScramMechanism];
}

const MECHANISM_NAMES = new Map<number, string>(
  Object.entries(SCRAM_MECHANISMS).map(([name, m]) => [m.kafkaType, name]),
);

async function create(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, {
    password: { type: "string" },
    "password-file": { type: "string" },
    mechanism: { type: "string" },
    iterations: { type: "string" },
  });
  if (cmd.help) return (io.stdout(subcommandHelp("create")), EXIT.OK);
  const user = oneUser(cmd.positionals, "create");
  let password = cmd.values.password as string | undefined;
  const file = cmd.values["password-file"] as string | undefined;
  if ((password === undefined) === (file === undefined)) {
    throw new UsageError('"users create" needs exactly one of "--password" and "--password-file"');
  }
  if (file !== undefined) {
    try {
      password = (await Deno.readTextFile(file)).split(/\r?\n/)[0];
    } catch (err) {
      throw new UsageError(`Cannot read "--password-file" ("${file}"): ${(err as Error).message}`);
    }
  }
  if (!password) throw new UsageError("The password is empty");
  const iterations = cmd.values.iterations === undefined
    ? SCRAM_ITERATIONS_DEFAULT
    : parseInteger(cmd.values.iterations as string, "--iterations");
  const mechanisms = mechanismsOf(cmd.values.mechanism);
  return await withAdmin(cmd, async (admin) => {
    await admin.alterScramUsers({
      upsertions: mechanisms.map((m) => {
        const salt = new Uint8Array(randomBytes(32));
        return {
          name: user,
          mechanism: SCRAM_MECHANISMS[m].kafkaType,
          iterations,
          salt,
          saltedPassword: saltedPassword(m, password!, salt, iterations),
        };
      }),
    });
    print(
      io,
      cmd.output,
      { user, mechanisms, iterations },
      `Credentials of "${user}" set (${mechanisms.join(", ")})`,
    );
    return EXIT.OK;
  });
}

async function list(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, {});
  if (cmd.help) return (io.stdout(subcommandHelp("list")), EXIT.OK);
  if (cmd.positionals.length > 0) {
    throw new UsageError(`"users list" takes no arguments, got "${cmd.positionals[0]}"`);
  }
  return await withAdmin(cmd, async (admin) => {
    const users = [...(await admin.describeScramUsers())].map(([user, creds]) => ({
      user,
      credentials: creds.map(([m, iterations]) => ({
        mechanism: MECHANISM_NAMES.get(m) ?? String(m),
        iterations,
      })),
    }));
    print(
      io,
      cmd.output,
      users,
      renderTable(
        ["USER", "MECHANISMS"],
        users.map((u) => [
          u.user,
          u.credentials.map((c) => `${c.mechanism}(${c.iterations})`).join(" "),
        ]),
      ),
    );
    return EXIT.OK;
  });
}

async function remove(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, { mechanism: { type: "string" } });
  if (cmd.help) return (io.stdout(subcommandHelp("delete")), EXIT.OK);
  const user = oneUser(cmd.positionals, "delete");
  const wanted = mechanismsOf(cmd.values.mechanism);
  return await withAdmin(cmd, async (admin) => {
    const existing = (await admin.describeScramUsers([user])).get(user) ?? [];
    const types = new Set(existing.map(([m]) => m));
    const deletions = wanted
      .map((m) => SCRAM_MECHANISMS[m].kafkaType)
      .filter((t) => types.has(t))
      .map((mechanism) => ({ name: user, mechanism }));
    if (deletions.length > 0) await admin.alterScramUsers({ deletions });
    print(io, cmd.output, { user, deleted: deletions.length }, `Credentials of "${user}" deleted`);
    return EXIT.OK;
  });
}

export async function runUsers(args: string[], io: CliIo = CONSOLE_IO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "-h" || sub === "--help" || sub === "help") {
    io.stdout(usersHelp());
    return sub === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const commands = { create, list, delete: remove } as const;
  if (!(sub in commands)) {
    io.stderr(`Unknown command "users ${sub}"; run "kafscale users --help" for the list`);
    return EXIT.USAGE;
  }
  return await runCommand(
    io,
    `kafscale users ${sub}`,
    () => commands[sub as keyof typeof commands](rest, io),
  );
}
