/**
 * The `kafscale` command: dispatches to one file per subcommand. The same
 * program runs as `deno run -A cli.ts …` and as the compiled binary.
 */
import { runServe } from "./serve.ts";
import { runTopics } from "./topics.ts";
import { runGroups } from "./groups.ts";
import { runTransactions } from "./transactions.ts";
import { runUsers } from "./users.ts";
import { runAcls } from "./acls.ts";
import { runMetadata } from "./metadata.ts";
import { runBroker } from "./broker.ts";
import { runConsume, runProduce } from "./records.ts";
import { runDoctor } from "./doctor.ts";
import { VERSION } from "./version.ts";

export { VERSION };

export function mainHelp(): string {
  return [
    "Usage: kafscale <command> [options]",
    "",
    "A Kafka-protocol-compatible broker whose log lives in object storage.",
    "",
    "Commands:",
    "  serve     Run the broker",
    "  topics    Manage topics (create, list, describe, alter, delete)",
    "  groups    Manage consumer groups (list, describe, delete, reset-offsets)",
    "  transactions  List, describe and abort transactions",
    "  users     Manage SCRAM users of SASL listeners (create, list, delete)",
    "  acls      Manage ACLs of a broker run with --authorizer acl (create, list, delete)",
    "  metadata  Check or repair the embedded metadata store of a stopped broker",
    "  broker    Control a running broker over gRPC (status, drain, flush, watch)",
    "  produce   Produce records from stdin or a file (one per line, or JSON lines)",
    "  consume   Print records of a topic (kcat-style format, or JSON lines)",
    "  doctor    Check a configuration (disk, S3, etcd, ports, files) without starting",
    "",
    "Options:",
    "  -h, --help     Show this help",
    "  --version      Print the version",
    "",
    'Run "kafscale <command> --help" for the options of a command.',
  ].join("\n");
}

export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case undefined:
    case "-h":
    case "--help":
    case "help":
      console.log(mainHelp());
      return command === undefined ? 2 : 0;
    case "--version":
      console.log(`kafscale ${VERSION}`);
      return 0;
    case "serve":
      return await runServe(rest);
    case "topics":
      return await runTopics(rest);
    case "groups":
      return await runGroups(rest);
    case "transactions":
      return await runTransactions(rest);
    case "users":
      return await runUsers(rest);
    case "acls":
      return await runAcls(rest);
    case "metadata":
      return await runMetadata(rest);
    case "broker":
      return await runBroker(rest);
    case "produce":
      return await runProduce(rest);
    case "consume":
      return await runConsume(rest);
    case "doctor":
      return await runDoctor(rest);
    default:
      console.error(`Unknown command "${command}"; run "kafscale --help" for the list`);
      return 2;
  }
}
