/**
 * The CLI against secured listeners (issue 14): a live `kafscale serve` with a SASL_SSL listener
 * (SCRAM, the ACL authorizer, a first admin) and an SSL listener that requires client
 * certificates; the CLI runs in-process with `--command-config` files as Kafka's tools take them.
 *
 * - The admin creates a user (`kafscale users`), a topic, and ACLs (`kafscale acls create`,
 *   LITERAL and PREFIXED); the user is denied before and served after, then denied again after
 *   `kafscale acls delete`; `kafscale acls list` shows exactly the bindings.
 * - mTLS: the CLI with a client certificate is `User:CN=alice,O=acme`, sees only the topics an
 *   ACL lets it describe.
 * - A wrong password, a missing CA and a bad config file fail with one clear line.
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import { makeCerts, serverTlsArgs } from "../support/certs.ts";
import { freePorts } from "../support/backends.ts";
import { runAcls } from "../../lib/cli/acls.ts";
import { runUsers } from "../../lib/cli/users.ts";
import { runTopics } from "../../lib/cli/topics.ts";
import { runConsume, runProduce } from "../../lib/cli/records.ts";
import { captureIo, tableRows } from "../cli/cli_support.ts";

type Run = (args: string[], io: ReturnType<typeof captureIo>) => Promise<number>;

async function cli(run: Run, args: string[]) {
  const io = captureIo();
  const code = await run(args, io);
  return { code, out: io.stdoutText(), err: io.err.join("\n") };
}

const produce: Run = (args, io) =>
  runProduce(args, io, ReadableStream.from([new TextEncoder().encode("k1:v1\nk2:v2\n")]));

const consume: Run = async (args, io) => {
  const chunks: string[] = [];
  const code = await runConsume(args, io, (b) => chunks.push(new TextDecoder().decode(b)));
  io.stdout(chunks.join(""));
  return code;
};

Deno.test("CLI over SASL_SSL and mTLS: users, topics, produce and consume, kafscale acls", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-cli-security-" });
  try {
    await makeCerts(dir);
    await Deno.writeTextFile(`${dir}/admin.pw`, "adminpw\n");
    const [saslPort, sslPort] = freePorts(2);
    await using broker = await startBroker({
      args: [
        "--listeners",
        `PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:${saslPort},SSL://127.0.0.1:${sslPort}`,
        ...serverTlsArgs(dir),
        "--sasl-admin-user",
        "admin",
        "--sasl-admin-password-file",
        `${dir}/admin.pw`,
        "--authorizer",
        "acl",
      ],
    });
    const sasl = `127.0.0.1:${saslPort}`;
    const ssl = `127.0.0.1:${sslPort}`;
    const saslConfig = async (name: string, mechanism: string, user: string, password: string) => {
      const path = `${dir}/${name}.properties`;
      await Deno.writeTextFile(
        path,
        [
          "# as for kafka-topics.sh --command-config",
          "security.protocol=SASL_SSL",
          `sasl.mechanism=${mechanism}`,
          "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\",
          `  username="${user}" password="${password}";`,
          "ssl.truststore.type=PEM",
          `ssl.truststore.location=${dir}/ca.pem`,
        ].join("\n"),
      );
      return path;
    };
    const admin = ["--bootstrap-server", sasl, "--command-config"];
    const adminConfig = await saslConfig("admin", "SCRAM-SHA-512", "admin", "adminpw");
    const asAdmin = (...args: string[]) => [...args, ...admin, adminConfig];

    let r = await cli(runUsers, asAdmin("create", "alice", "--password", "alicepw"));
    assert.equal(r.code, 0, r.err);
    r = await cli(runTopics, asAdmin("create", "acl-t", "--partitions", "1"));
    assert.equal(r.code, 0, r.err);
    const aliceConfig = await saslConfig("alice", "SCRAM-SHA-256", "alice", "alicepw");
    const asAlice = (
      ...args: string[]
    ) => [...args, "--bootstrap-server", sasl, "--command-config", aliceConfig];

    // Denied until an ACL allows it.
    r = await cli(produce, asAlice("acl-t", "--key-delimiter", ":"));
    assert.equal(r.code, 1);
    assert.match(r.err, /TOPIC_AUTHORIZATION_FAILED/);
    r = await cli(
      runAcls,
      asAdmin(
        "create",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Write",
        "--operation",
        "Describe",
        "--topic",
        "acl-t",
      ),
    );
    assert.equal(r.code, 0, r.err);
    r = await cli(produce, asAlice("acl-t", "--key-delimiter", ":"));
    assert.equal(r.code, 0, r.err);
    r = await cli(consume, asAlice("acl-t", "--from-beginning", "--end"));
    assert.equal(r.code, 1, "no READ yet");
    assert.match(r.err, /TOPIC_AUTHORIZATION_FAILED/);
    r = await cli(
      runAcls,
      asAdmin(
        "create",
        "--allow-principal",
        "User:alice",
        "--operation",
        "read",
        "--topic",
        "acl-",
        "--resource-pattern-type",
        "prefixed",
      ),
    );
    assert.equal(r.code, 0, r.err);
    r = await cli(consume, asAlice("acl-t", "--from-beginning", "--end"));
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.out.trim().split("\n"), ["v1", "v2"]);

    r = await cli(runAcls, asAdmin("list", "--principal", "User:alice"));
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(tableRows(r.out).slice(1).map((row) => row.join(" ")).sort(), [
      "User:alice ALLOW DESCRIBE TOPIC acl-t LITERAL *",
      "User:alice ALLOW READ TOPIC acl- PREFIXED *",
      "User:alice ALLOW WRITE TOPIC acl-t LITERAL *",
    ]);
    const json = JSON.parse(
      (await cli(runAcls, asAdmin("list", "--topic", "acl-t", "-o", "json"))).out,
    );
    assert.deepEqual(json.map((b: { operation: string }) => b.operation).sort(), [
      "DESCRIBE",
      "WRITE",
    ]);

    // Alice may not manage ACLs.
    r = await cli(
      runAcls,
      asAlice("create", "--allow-principal", "User:alice", "--operation", "All", "--cluster"),
    );
    assert.equal(r.code, 1);
    assert.match(r.err, /CLUSTER_AUTHORIZATION_FAILED/);

    // Deleting the LITERAL bindings takes WRITE away again.
    r = await cli(
      runAcls,
      asAdmin("delete", "--topic", "acl-t", "--allow-principal", "User:alice"),
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(tableRows(r.out).length - 1, 2, r.out);
    r = await cli(produce, asAlice("acl-t", "--key-delimiter", ":"));
    assert.equal(r.code, 1);
    assert.match(r.err, /TOPIC_AUTHORIZATION_FAILED/);

    // mTLS: the certificate's subject is the principal.
    await Deno.writeTextFile(
      `${dir}/alice-keystore.pem`,
      (await Deno.readTextFile(`${dir}/alice.pem`)) + (await Deno.readTextFile(`${dir}/alice.key`)),
    );
    const mtlsConfig = `${dir}/mtls.properties`;
    await Deno.writeTextFile(
      mtlsConfig,
      `security.protocol=SSL\nssl.truststore.location=${dir}/ca.pem\n` +
        `ssl.keystore.type=PEM\nssl.keystore.location=${dir}/alice-keystore.pem\n`,
    );
    const mtls = ["--bootstrap-server", ssl, "--command-config", mtlsConfig];
    r = await cli(runTopics, ["list", ...mtls]);
    assert.equal(r.code, 0, r.err);
    assert.ok(!r.out.includes("acl-t"), `the certificate may not describe acl-t yet:\n${r.out}`);
    r = await cli(
      runAcls,
      asAdmin(
        "create",
        "--allow-principal",
        "User:CN=alice,O=acme",
        "--operation",
        "Describe",
        "--topic",
        "acl-t",
      ),
    );
    assert.equal(r.code, 0, r.err);
    r = await cli(runTopics, ["list", ...mtls]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /acl-t/);

    // Failures: one line each, nothing secret in it.
    const wrong = await saslConfig("wrong", "SCRAM-SHA-512", "admin", "nope");
    r = await cli(runTopics, ["list", "--bootstrap-server", sasl, "--command-config", wrong]);
    assert.equal(r.code, 1);
    assert.match(r.err, /Cannot log in to "127\.0\.0\.1:\d+" as "admin" with SCRAM-SHA-512/);
    assert.doesNotMatch(r.err, /nope/);
    await Deno.writeTextFile(`${dir}/noca.properties`, "security.protocol=SSL\n");
    r = await cli(runTopics, [
      "list",
      "--bootstrap-server",
      ssl,
      "--command-config",
      `${dir}/noca.properties`,
    ]);
    assert.equal(r.code, 1);
    assert.match(r.err, /over TLS/);
    await Deno.writeTextFile(`${dir}/bad.properties`, "security.protocol=KERBEROS\n");
    r = await cli(runTopics, [
      "list",
      "--bootstrap-server",
      sasl,
      "--command-config",
      `${dir}/bad.properties`,
    ]);
    assert.equal(r.code, 2);
    assert.match(r.err, /"security.protocol" in ".*bad.properties" must be one of/);
    assert.equal(await broker.stop(), 0, broker.logs());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
