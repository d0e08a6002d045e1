/**
 * ACLs per resource type through Kafka's own tools (the Java Admin client) over SASL_PLAINTEXT
 * with SCRAM-SHA-512, `--authorizer acl` (issue 14). The first admin adds a user, bob, with
 * kafka-configs.sh; for the cluster (CREATE, by kafka-topics.sh --create), a group (DESCRIBE, by
 * kafka-consumer-groups.sh --describe) and a transactional id (DESCRIBE, by
 * kafka-transactions.sh describe), bob is denied with Kafka's authorization exception, allowed
 * once kafka-acls.sh adds the binding, and denied again when a DENY binding is added next to the
 * ALLOW (DENY wins). kafka-topics.sh --list as bob shows only the topics he may describe. Topic
 * reads and writes are covered by tests/e2e/security_test.ts.
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import { REPO_ROOT, requireFile, runProgram } from "./client_runner.ts";
import { freePort } from "../support/ports.ts";

const KAFKA_VERSION = Deno.env.get("KAFKA_REF_VERSION") ?? "4.1.0";
const CLASSPATH = `${REPO_ROOT}.tools/kafka-ref/libs-${KAFKA_VERSION}/*:` +
  `${REPO_ROOT}.tools/kafka-ref/tools-${KAFKA_VERSION}/*`;
const JAVA = ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"];
const TOOL_TIMEOUT_MS = 60_000;
const TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand";
const GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
const TRANSACTIONS_COMMAND = "org.apache.kafka.tools.TransactionsCommand";
const CONFIG_COMMAND = "kafka.admin.ConfigCommand";
const ACL_COMMAND = "org.apache.kafka.tools.AclCommand";

function clientProperties(user: string, password: string): string {
  return [
    "security.protocol=SASL_PLAINTEXT",
    "sasl.mechanism=SCRAM-SHA-512",
    "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required " +
    `username="${user}" password="${password}";`,
  ].join("\n") + "\n";
}

Deno.test("kafka-acls.sh per resource type: cluster, group and transactional id, allowed, denied, DENY winning", async () => {
  await requireFile(
    `${REPO_ROOT}.tools/kafka-ref/tools-${KAFKA_VERSION}/kafka-tools-${KAFKA_VERSION}.jar`,
  );
  const dir = await Deno.makeTempDir({ prefix: "kafscale-acls-" });
  try {
    await Deno.writeTextFile(`${dir}/admin.pw`, "adminpw\n");
    await Deno.writeTextFile(`${dir}/admin.properties`, clientProperties("admin", "adminpw"));
    await Deno.writeTextFile(`${dir}/bob.properties`, clientProperties("bob", "bobpw"));
    const saslPort = freePort();
    await using broker = await startBroker({
      args: [
        "--listeners",
        `PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:${saslPort}`,
        "--sasl-admin-user",
        "admin",
        "--sasl-admin-password-file",
        `${dir}/admin.pw`,
        "--authorizer",
        "acl",
      ],
    });
    const tool = async (as: "admin" | "bob", main: string, ...args: string[]) => {
      const r = await runProgram([
        ...JAVA,
        "-cp",
        CLASSPATH,
        main,
        "--bootstrap-server",
        `127.0.0.1:${saslPort}`,
        "--command-config",
        `${dir}/${as}.properties`,
        ...args,
      ], { timeoutMs: TOOL_TIMEOUT_MS });
      return { code: r.code, out: r.stdout + r.stderr };
    };
    const ok = async (as: "admin" | "bob", main: string, ...args: string[]) => {
      const r = await tool(as, main, ...args);
      assert.equal(r.code, 0, `${main} ${args.join(" ")} as ${as}: ${r.out}`);
      assert.doesNotMatch(r.out, /AuthorizationException/, `${main} as ${as}`);
      return r.out;
    };
    const denied = async (exception: RegExp, main: string, ...args: string[]) => {
      const r = await tool("bob", main, ...args);
      assert.match(r.out, exception, `${main} ${args.join(" ")} as bob must be denied: ${r.out}`);
    };
    const acl = (...args: string[]) => ok("admin", ACL_COMMAND, ...args);

    await ok(
      "admin",
      CONFIG_COMMAND,
      "--alter",
      "--entity-type",
      "users",
      "--entity-name",
      "bob",
      "--add-config",
      "SCRAM-SHA-512=[password=bobpw]",
    );

    // Cluster: creating a topic needs CREATE on the cluster (or the topic).
    const create = ["--create", "--topic", "acl-new", "--partitions", "1"];
    await denied(
      /TopicAuthorizationException|ClusterAuthorizationException/,
      TOPIC_COMMAND,
      ...create,
    );
    await acl("--add", "--allow-principal", "User:bob", "--operation", "Create", "--cluster");
    assert.match(await ok("bob", TOPIC_COMMAND, ...create), /Created topic acl-new/);

    // Topics bob may not describe are left out of his listing (Metadata hides them).
    await ok("admin", TOPIC_COMMAND, "--create", "--topic", "acl-hidden", "--partitions", "1");
    const topicsOf = async (as: "admin" | "bob") =>
      (await ok(as, TOPIC_COMMAND, "--list")).split("\n").filter((l) => l.startsWith("acl-"));
    assert.deepEqual((await topicsOf("admin")).sort(), ["acl-hidden", "acl-new"]);
    assert.deepEqual(await topicsOf("bob"), []);
    await acl(
      "--add",
      "--allow-principal",
      "User:bob",
      "--operation",
      "Describe",
      "--topic",
      "acl-new",
    );
    assert.deepEqual(await topicsOf("bob"), ["acl-new"]);

    // Group: describing one needs DESCRIBE on it.
    const describeGroup = ["--describe", "--group", "acl-group"];
    await denied(/GroupAuthorizationException/, GROUP_COMMAND, ...describeGroup);
    await acl(
      "--add",
      "--allow-principal",
      "User:bob",
      "--operation",
      "Describe",
      "--group",
      "acl-",
    );
    // The binding above is LITERAL "acl-": it does not cover "acl-group".
    await denied(/GroupAuthorizationException/, GROUP_COMMAND, ...describeGroup);
    await acl(
      "--add",
      "--allow-principal",
      "User:bob",
      "--operation",
      "Describe",
      "--group",
      "acl-",
      "--resource-pattern-type",
      "prefixed",
    );
    await ok("bob", GROUP_COMMAND, ...describeGroup);
    await acl(
      "--add",
      "--deny-principal",
      "User:bob",
      "--operation",
      "All",
      "--group",
      "acl-group",
    );
    await denied(/GroupAuthorizationException/, GROUP_COMMAND, ...describeGroup);

    // Transactional id: describing one needs DESCRIBE on it.
    const describeTxn = ["describe", "--transactional-id", "acl-txn"];
    // FindCoordinator for the id already needs DESCRIBE on it, as in Kafka.
    await denied(
      /TransactionalIdAuthorizationException|authorization failure/,
      TRANSACTIONS_COMMAND,
      ...describeTxn,
    );
    await acl(
      "--add",
      "--allow-principal",
      "User:bob",
      "--operation",
      "Describe",
      "--transactional-id",
      "acl-txn",
    );
    const described = await tool("bob", TRANSACTIONS_COMMAND, ...describeTxn);
    assert.doesNotMatch(described.out, /AuthorizationException/, described.out);
    assert.match(described.out, /could not be found/, described.out);

    // kafka-acls.sh --list shows what was added, DENY included.
    const listed = await acl("--list", "--principal", "User:bob");
    for (const want of [/CLUSTER/i, /acl-new/, /acl-group/, /PREFIXED/, /DENY/, /acl-txn/]) {
      assert.match(listed, want, listed);
    }
    assert.equal(await broker.stop(), 0, `Broker did not stop cleanly.\n${broker.logs()}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
