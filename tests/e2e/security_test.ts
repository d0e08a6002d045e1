/**
 * Security with real clients (issue 14), against a live `kafscale serve` with three listeners
 * (PLAINTEXT on loopback, SASL_SSL, and SSL with client certificates), certificates made by
 * openssl at test time:
 *
 * - librdkafka (kcat) produces and consumes over SASL_SSL with SCRAM-SHA-512, SCRAM-SHA-256 and
 *   PLAIN; a wrong password, an unknown user and a mechanism the broker lacks fail with
 *   librdkafka's authentication error;
 * - Kafka's `kafka-configs.sh` (ConfigCommand, the Java Admin client over SASL_SSL as the first
 *   admin) adds a user with SCRAM-SHA-256, and kcat and kafka-python log in as that user (PLAIN
 *   too);
 * - mTLS: kcat and kafka-python with a certificate signed by the client CA are served on the SSL
 *   listener; without one, or with one from another CA, kcat is refused;
 * - SIGHUP: the broker's certificate is replaced by one of another CA and re-read without a
 *   restart; new connections see the new one.
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import { pythonPath, REPO_ROOT, requireFile, runProgram } from "./client_runner.ts";
import { makeCerts, serverTlsArgs, sh } from "../support/certs.ts";
import { freePort } from "../support/ports.ts";

const KAFKA_VERSION = Deno.env.get("KAFKA_REF_VERSION") ?? "4.1.0";
const CLASSPATH = `${REPO_ROOT}.tools/kafka-ref/libs-${KAFKA_VERSION}/*:` +
  `${REPO_ROOT}.tools/kafka-ref/tools-${KAFKA_VERSION}/*`;
const JAVA = ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"];
const TIMEOUT_MS = 60_000;

Deno.test("security: SASL_SSL with SCRAM and PLAIN, kafka-configs.sh users, mTLS and a certificate reload", async () => {
  await requireFile(
    `${REPO_ROOT}.tools/kafka-ref/tools-${KAFKA_VERSION}/kafka-tools-${KAFKA_VERSION}.jar`,
  );
  await requireFile(pythonPath());
  const dir = await Deno.makeTempDir({ prefix: "kafscale-security-" });
  try {
    await makeCerts(dir);
    await Deno.writeTextFile(`${dir}/admin.pw`, "adminpw\n");
    const [saslPort, sslPort] = [freePort(), freePort()];
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
    const kcatSasl = (mechanism: string, user: string, password: string, ca = "ca") =>
      `kcat -b ${sasl} -X security.protocol=SASL_SSL -X sasl.mechanisms=${mechanism} ` +
      `-X sasl.username=${user} -X sasl.password=${password} -X ssl.ca.location=${dir}/${ca}.pem`;

    // librdkafka over SASL_SSL with every mechanism.
    for (const m of ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]) {
      const p = await sh(`${kcatSasl(m, "admin", "adminpw")} -P -t sec -K: -X acks=all`, `${m}:v`);
      assert.equal(p.code, 0, p.out);
    }
    const consumed = await sh(
      `${kcatSasl("SCRAM-SHA-512", "admin", "adminpw")} -C -t sec -e -f '%k=%s\\n'`,
    );
    assert.equal(consumed.code, 0, consumed.out);
    assert.deepEqual(
      consumed.out.split("\n").filter((l) => l.includes("=")).sort(),
      ["PLAIN=v", "SCRAM-SHA-256=v", "SCRAM-SHA-512=v"],
    );
    for (
      const [m, user, password] of [
        ["SCRAM-SHA-512", "admin", "wrong"],
        ["SCRAM-SHA-256", "nobody", "adminpw"],
        ["PLAIN", "admin", "wrong"],
      ]
    ) {
      const bad = await sh(`${kcatSasl(m, user, password)} -L -m 5`);
      assert.notEqual(bad.code, 0, `${m} ${user}/${password} must fail`);
      assert.match(bad.out, /Authentication failed|SASL authentication error/);
      assert.doesNotMatch(bad.out, /adminpw/);
    }
    const gssapi = await sh(`${kcatSasl("GSSAPI", "admin", "adminpw")} -L -m 5`);
    assert.notEqual(gssapi.code, 0);

    // kafka-configs.sh (the Java Admin client, SASL_SSL as the first admin) adds bob.
    const clientConfig = `${dir}/admin.properties`;
    await Deno.writeTextFile(
      clientConfig,
      [
        "security.protocol=SASL_SSL",
        "sasl.mechanism=SCRAM-SHA-512",
        'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="adminpw";',
        `ssl.truststore.type=PEM`,
        `ssl.truststore.location=${dir}/ca.pem`,
      ].join("\n"),
    );
    const configs = async (...args: string[]) => {
      const r = await runProgram(
        [
          ...JAVA,
          "-cp",
          CLASSPATH,
          "kafka.admin.ConfigCommand",
          "--bootstrap-server",
          sasl,
          "--command-config",
          clientConfig,
          ...args,
        ],
        { timeoutMs: TIMEOUT_MS },
      );
      assert.equal(r.code, 0, `kafka-configs ${args.join(" ")}: ${r.stderr}\n${r.stdout}`);
      return r.stdout;
    };
    await configs(
      "--alter",
      "--entity-type",
      "users",
      "--entity-name",
      "bob",
      "--add-config",
      "SCRAM-SHA-256=[iterations=4096,password=bobpw]",
    );
    const described = await configs("--describe", "--entity-type", "users", "--entity-name", "bob");
    assert.match(described, /SCRAM-SHA-256=iterations=4096/);
    // bob may log in but, with the ACL authorizer, not read "sec" until kafka-acls.sh allows it.
    const denied = await sh(`${kcatSasl("SCRAM-SHA-256", "bob", "bobpw")} -C -t sec -e -f '%k\\n'`);
    assert.notEqual(denied.code, 0, denied.out);
    assert.match(denied.out, /Topic authorization failed|TOPIC_AUTHORIZATION_FAILED/i);
    const acls = async (...args: string[]) => {
      const r = await runProgram(
        [
          ...JAVA,
          "-cp",
          CLASSPATH,
          "org.apache.kafka.tools.AclCommand",
          "--bootstrap-server",
          sasl,
          "--command-config",
          clientConfig,
          ...args,
        ],
        { timeoutMs: TIMEOUT_MS },
      );
      assert.equal(r.code, 0, `kafka-acls ${args.join(" ")}: ${r.stderr}\n${r.stdout}`);
      return r.stdout;
    };
    await acls(
      "--add",
      "--allow-principal",
      "User:bob",
      "--allow-principal",
      "User:CN=alice,O=acme",
      "--operation",
      "Read",
      "--topic",
      "sec",
    );
    const listed = await acls("--list", "--topic", "sec");
    assert.match(listed, /principal=User:bob, host=\*, operation=READ, permissionType=ALLOW/);
    const asBob = await sh(`${kcatSasl("SCRAM-SHA-256", "bob", "bobpw")} -C -t sec -e -f '%k\\n'`);
    assert.equal(asBob.code, 0, asBob.out);
    const python = await runProgram([
      pythonPath(),
      "-c",
      [
        "import ssl, sys",
        "from kafka import KafkaConsumer",
        `ctx = ssl.create_default_context(cafile="${dir}/ca.pem")`,
        `c = KafkaConsumer("sec", bootstrap_servers="${sasl}", security_protocol="SASL_SSL", ssl_context=ctx, sasl_mechanism="PLAIN", sasl_plain_username="bob", sasl_plain_password="bobpw", auto_offset_reset="earliest", consumer_timeout_ms=10000)`,
        "print(sorted(m.key.decode() for m in c))",
      ].join("\n"),
    ], { timeoutMs: TIMEOUT_MS });
    assert.equal(python.code, 0, python.stderr);
    assert.match(python.stdout, /\['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'\]/);

    // mTLS on the SSL listener.
    const kcatSsl = (cert: string | null, ca = "ca") =>
      `kcat -b 127.0.0.1:${sslPort} -X security.protocol=SSL -X ssl.ca.location=${dir}/${ca}.pem` +
      (cert
        ? ` -X ssl.certificate.location=${dir}/${cert}.pem -X ssl.key.location=${dir}/${cert}.key`
        : "");
    const withCert = await sh(`${kcatSsl("alice")} -C -t sec -e -f '%k\\n'`);
    assert.equal(withCert.code, 0, withCert.out);
    // A second mTLS client: kafka-python with alice's certificate.
    const pyTls = await runProgram([
      pythonPath(),
      "-c",
      [
        "import ssl",
        "from kafka import KafkaConsumer",
        `ctx = ssl.create_default_context(cafile="${dir}/ca.pem")`,
        `ctx.load_cert_chain("${dir}/alice.pem", "${dir}/alice.key")`,
        `c = KafkaConsumer("sec", bootstrap_servers="127.0.0.1:${sslPort}", security_protocol="SSL", ssl_context=ctx, auto_offset_reset="earliest", consumer_timeout_ms=10000)`,
        "print(len(list(c)))",
      ].join("\n"),
    ], { timeoutMs: TIMEOUT_MS });
    assert.equal(pyTls.code, 0, pyTls.stderr);
    assert.equal(pyTls.stdout.trim(), "3");
    assert.equal((await sh(`${kcatSsl(null)} -L -m 5`)).code === 0, false, "no client certificate");
    assert.equal((await sh(`${kcatSsl("mallory")} -L -m 5`)).code === 0, false, "untrusted CA");
    assert.equal((await sh(`${kcatSsl("expired")} -L -m 5`)).code === 0, false, "expired");
    assert.match(broker.logs(), /client certificate expired or not yet valid/);

    // SIGHUP: a certificate of another CA, re-read without a restart.
    await Deno.copyFile(`${dir}/server2.pem`, `${dir}/server.pem`);
    await Deno.copyFile(`${dir}/server2.key`, `${dir}/server.key`);
    Deno.kill(broker.pid, "SIGHUP");
    const deadline = Date.now() + 20_000;
    let reloaded = false;
    while (!reloaded && Date.now() < deadline) {
      reloaded =
        (await sh(`${kcatSasl("SCRAM-SHA-512", "admin", "adminpw", "ca2")} -L -m 5`)).code === 0;
      if (!reloaded) await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(reloaded, `new connections see the new certificate\n${broker.logs()}`);
    assert.notEqual(
      (await sh(`${kcatSasl("SCRAM-SHA-512", "admin", "adminpw", "ca")} -L -m 5`)).code,
      0,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
