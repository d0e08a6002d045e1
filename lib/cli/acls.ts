/**
 * `kafscale acls create|list|delete`: ACL bindings over the Kafka protocol (CreateAcls,
 * DescribeAcls, DeleteAcls), with `kafka-acls.sh`'s model and option names: principals to allow
 * or deny, operations, one resource (topic, group, the cluster, or a transactional id) and its
 * pattern type. Managing ACLs needs ALTER (create, delete) or DESCRIBE (list) on the cluster, or
 * a super user. Must not reach into broker internals.
 */
import type { AclBindingSpec, AclFilterSpec } from "../client/admin.ts";
import {
  CLUSTER_NAME,
  OPERATIONS,
  PATTERN_TYPES,
  PERMISSIONS,
  RESOURCE_TYPES,
} from "../security/acl.ts";
import {
  type CliIo,
  COMMON_HELP,
  CONSOLE_IO,
  EXIT,
  parseCommand,
  type ParsedCommand,
  print,
  renderTable,
  runCommand,
  UsageError,
  withAdmin,
} from "./output.ts";

export function aclsHelp(): string {
  return [
    "Usage: kafscale acls <command> [options]",
    "",
    "Manage the ACLs of a broker run with --authorizer acl, over the Kafka protocol.",
    "",
    "Commands:",
    "  create      Add bindings: principals allowed or denied operations on a resource",
    "  list        List bindings (all, or those matching the options)",
    "  delete      Remove the bindings matching the options",
    "",
    "Options of every command:",
    ...COMMON_HELP,
    "",
    'Run "kafscale acls <command> --help" for the options of a command.',
  ].join("\n");
}

const RESOURCE_HELP = [
  "  --topic NAME | --group NAME | --transactional-id ID | --cluster",
  "                                 The resource (one)",
  "  --resource-pattern-type T      literal or prefixed (create; default literal); list and",
  "                                 delete also take any and match",
];

const HELP = {
  create: [
    "Usage: kafscale acls create (--allow-principal P | --deny-principal P)... --operation OP...",
    "         (--topic NAME | --group NAME | --transactional-id ID | --cluster)",
    "         [--resource-pattern-type literal|prefixed] [--allow-host H] [--deny-host H]",
    "",
    "Adds one binding per principal and operation. Principals are User:NAME (a SASL user or a",
    "certificate's subject); User:* is everyone. Operations: All, Read, Write, Create, Delete,",
    "Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite.",
    "",
    "Options:",
    "  --allow-principal P            A principal to allow (repeatable)",
    "  --deny-principal P             A principal to deny (repeatable; DENY wins over ALLOW)",
    "  --operation OP                 An operation (repeatable)",
    "  --allow-host H, --deny-host H  The host the binding applies to (default *)",
    ...RESOURCE_HELP,
  ],
  list: [
    "Usage: kafscale acls list [resource options] [--principal P]",
    "",
    "Lists the bindings matching the options (every binding without any).",
    "",
    "Options:",
    "  --principal P                  Only bindings of this principal",
    ...RESOURCE_HELP,
  ],
  delete: [
    "Usage: kafscale acls delete (resource options | --principal P) [--operation OP]...",
    "         [--allow-principal P | --deny-principal P]...",
    "",
    "Removes the bindings matching the options, and prints them. A resource or a principal is",
    "required, so a bare delete cannot remove every binding.",
    "",
    "Options:",
    "  --principal P                  Bindings of this principal (either permission)",
    "  --allow-principal P            ALLOW bindings of this principal (repeatable)",
    "  --deny-principal P             DENY bindings of this principal (repeatable)",
    "  --operation OP                 Only this operation (repeatable; default any)",
    ...RESOURCE_HELP,
  ],
} as const;

type Subcommand = keyof typeof HELP;

const OPTIONS = {
  "allow-principal": { type: "string", multiple: true },
  "deny-principal": { type: "string", multiple: true },
  principal: { type: "string" },
  operation: { type: "string", multiple: true },
  "allow-host": { type: "string" },
  "deny-host": { type: "string" },
  topic: { type: "string" },
  group: { type: "string" },
  "transactional-id": { type: "string" },
  cluster: { type: "boolean" },
  "resource-pattern-type": { type: "string" },
} as const;

const NAMES = {
  resource: invert(RESOURCE_TYPES),
  pattern: invert(PATTERN_TYPES),
  operation: invert(OPERATIONS),
  permission: invert(PERMISSIONS),
};

function invert(codes: Record<string, number>): Map<number, string> {
  return new Map(Object.entries(codes).map(([name, code]) => [code, name]));
}

/** `Read`, `read`, `DESCRIBE_CONFIGS`, `DescribeConfigs` and `describe-configs` alike. */
function operationCode(name: string): number {
  const wanted = name.replace(/[-_\s]/g, "").toUpperCase();
  for (const [key, code] of Object.entries(OPERATIONS)) {
    if (key.replace(/_/g, "") === wanted && code !== OPERATIONS.ANY) return code;
  }
  throw new UsageError(
    `Unknown operation "${name}"; use one of All, Read, Write, Create, Delete, Alter, Describe, ` +
      "ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite",
  );
}

function principalOf(value: string): string {
  if (!/^[A-Za-z]+:.+$/.test(value)) {
    throw new UsageError(`A principal is TYPE:NAME (e.g. User:alice), got "${value}"`);
  }
  return value;
}

function list(value: unknown): string[] {
  return Array.isArray(value) ? value as string[] : [];
}

/** The resource named by the options, or null when none is (list, delete by principal). */
function resourceOf(cmd: ParsedCommand): { type: number; name: string } | null {
  const v = cmd.values;
  const given: { type: number; name: string }[] = [];
  if (v.topic !== undefined) given.push({ type: RESOURCE_TYPES.TOPIC, name: v.topic as string });
  if (v.group !== undefined) given.push({ type: RESOURCE_TYPES.GROUP, name: v.group as string });
  if (v["transactional-id"] !== undefined) {
    given.push({ type: RESOURCE_TYPES.TRANSACTIONAL_ID, name: v["transactional-id"] as string });
  }
  if (v.cluster === true) given.push({ type: RESOURCE_TYPES.CLUSTER, name: CLUSTER_NAME });
  if (given.length > 1) {
    throw new UsageError("Name one resource: --topic, --group, --transactional-id or --cluster");
  }
  return given[0] ?? null;
}

function patternOf(cmd: ParsedCommand, allowed: string[], fallback: number): number {
  const value = cmd.values["resource-pattern-type"] as string | undefined;
  if (value === undefined) return fallback;
  const name = value.toUpperCase();
  if (!allowed.includes(name)) {
    throw new UsageError(
      `"--resource-pattern-type" must be ${allowed.map((a) => a.toLowerCase()).join(" or ")}, ` +
        `got "${value}"`,
    );
  }
  return PATTERN_TYPES[name as keyof typeof PATTERN_TYPES];
}

function describeBinding(b: AclBindingSpec): string[] {
  return [
    b.principal,
    NAMES.permission.get(b.permissionType) ?? String(b.permissionType),
    NAMES.operation.get(b.operation) ?? String(b.operation),
    NAMES.resource.get(b.resourceType) ?? String(b.resourceType),
    b.resourceName,
    NAMES.pattern.get(b.patternType) ?? String(b.patternType),
    b.host,
  ];
}

function printBindings(io: CliIo, cmd: ParsedCommand, bindings: AclBindingSpec[]): void {
  const rows = bindings.map(describeBinding);
  print(
    io,
    cmd.output,
    rows.map(([principal, permission, operation, resourceType, resourceName, pattern, host]) => ({
      principal,
      permission,
      operation,
      resourceType,
      resourceName,
      patternType: pattern,
      host,
    })),
    renderTable(
      ["PRINCIPAL", "PERMISSION", "OPERATION", "RESOURCE", "NAME", "PATTERN", "HOST"],
      rows,
    ),
  );
}

async function create(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, OPTIONS);
  if (cmd.help) return (io.stdout(subcommandHelp("create")), EXIT.OK);
  const resource = resourceOf(cmd);
  if (!resource) {
    throw new UsageError(
      '"acls create" needs a resource: --topic, --group, --transactional-id or --cluster',
    );
  }
  const allow = list(cmd.values["allow-principal"]).map(principalOf);
  const deny = list(cmd.values["deny-principal"]).map(principalOf);
  if (allow.length + deny.length === 0) {
    throw new UsageError('"acls create" needs --allow-principal or --deny-principal');
  }
  const operations = list(cmd.values.operation).map(operationCode);
  if (operations.length === 0) throw new UsageError('"acls create" needs --operation');
  const patternType = patternOf(cmd, ["LITERAL", "PREFIXED"], PATTERN_TYPES.LITERAL);
  const bindings: AclBindingSpec[] = [];
  for (
    const [principals, permissionType, host] of [
      [allow, PERMISSIONS.ALLOW, (cmd.values["allow-host"] as string | undefined) ?? "*"],
      [deny, PERMISSIONS.DENY, (cmd.values["deny-host"] as string | undefined) ?? "*"],
    ] as const
  ) {
    for (const principal of principals) {
      for (const operation of operations) {
        bindings.push({
          resourceType: resource.type,
          resourceName: resource.name,
          patternType,
          principal,
          host,
          operation,
          permissionType,
        });
      }
    }
  }
  return await withAdmin(cmd, async (admin) => {
    await admin.createAcls(bindings);
    printBindings(io, cmd, bindings);
    return EXIT.OK;
  });
}

function filterOf(cmd: ParsedCommand, principal: string | null, permissionType: number) {
  const resource = resourceOf(cmd);
  const filter: AclFilterSpec = {
    resourceType: resource?.type ?? RESOURCE_TYPES.ANY,
    resourceName: resource?.name ?? null,
    patternType: patternOf(
      cmd,
      ["ANY", "MATCH", "LITERAL", "PREFIXED"],
      resource ? PATTERN_TYPES.LITERAL : PATTERN_TYPES.ANY,
    ),
    principal,
    host: null,
    operation: OPERATIONS.ANY,
    permissionType,
  };
  return filter;
}

async function listAcls(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, OPTIONS);
  if (cmd.help) return (io.stdout(subcommandHelp("list")), EXIT.OK);
  const principal = cmd.values.principal === undefined
    ? null
    : principalOf(cmd.values.principal as string);
  const filter = filterOf(cmd, principal, PERMISSIONS.ANY);
  return await withAdmin(cmd, async (admin) => {
    printBindings(io, cmd, await admin.describeAcls(filter));
    return EXIT.OK;
  });
}

async function remove(args: string[], io: CliIo): Promise<number> {
  const cmd = parseCommand(args, OPTIONS);
  if (cmd.help) return (io.stdout(subcommandHelp("delete")), EXIT.OK);
  const byPermission: [string | null, number][] = [
    ...list(cmd.values["allow-principal"]).map((p): [string, number] => [
      principalOf(p),
      PERMISSIONS.ALLOW,
    ]),
    ...list(cmd.values["deny-principal"]).map((p): [string, number] => [
      principalOf(p),
      PERMISSIONS.DENY,
    ]),
  ];
  if (cmd.values.principal !== undefined) {
    byPermission.push([principalOf(cmd.values.principal as string), PERMISSIONS.ANY]);
  }
  if (!resourceOf(cmd) && byPermission.length === 0) {
    throw new UsageError(
      '"acls delete" needs a resource (--topic, --group, --transactional-id, --cluster) or a ' +
        "principal",
    );
  }
  if (byPermission.length === 0) byPermission.push([null, PERMISSIONS.ANY]);
  const operations = list(cmd.values.operation).map(operationCode);
  const filters: AclFilterSpec[] = [];
  for (const [principal, permissionType] of byPermission) {
    for (const operation of operations.length > 0 ? operations : [OPERATIONS.ANY]) {
      filters.push({ ...filterOf(cmd, principal, permissionType), operation });
    }
  }
  return await withAdmin(cmd, async (admin) => {
    printBindings(io, cmd, await admin.deleteAcls(filters));
    return EXIT.OK;
  });
}

function subcommandHelp(name: Subcommand): string {
  return [...HELP[name], ...COMMON_HELP].join("\n");
}

export async function runAcls(args: string[], io: CliIo = CONSOLE_IO): Promise<number> {
  const [command, ...rest] = args;
  const commands: Record<Subcommand, (a: string[], io: CliIo) => Promise<number>> = {
    create,
    list: listAcls,
    delete: remove,
  };
  if (command === undefined || command === "-h" || command === "--help") {
    io.stdout(aclsHelp());
    return command === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (!Object.hasOwn(commands, command)) {
    io.stderr(`Unknown command "acls ${command}"; run "kafscale acls --help" for the list`);
    return EXIT.USAGE;
  }
  return await runCommand(
    io,
    `kafscale acls ${command}`,
    () => commands[command as Subcommand](rest, io),
  );
}
