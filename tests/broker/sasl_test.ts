/**
 * SASL at the broker (issue 14) over loopback TCP through the generated codecs: on a
 * SASL_PLAINTEXT listener only ApiVersions and the SASL exchange are answered before login,
 * PLAIN and SCRAM-SHA-256/512 at every SaslAuthenticate version, wrong passwords and unknown
 * users, the pre-authentication frame cap, session lifetimes (KIP-368), and the credential APIs
 * (DescribeUserScramCredentials, AlterUserScramCredentials) with their super-user rule. The
 * PLAINTEXT listener answers SaslHandshake with UNSUPPORTED_SASL_MECHANISM, as before.
 */
import assert from "node:assert/strict";
import { pbkdf2Sync, randomBytes } from "node:crypto";
import { startTestBroker, type TestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { KafkaConnection, KafkaConnectionError } from "../../lib/client/kafka_connection.ts";
import { plainLogin, scramLogin } from "../support/sasl_client.ts";

const HANDSHAKE = API_SCHEMAS[17];
const AUTHENTICATE = API_SCHEMAS[36];
const METADATA = API_SCHEMAS[3];
const DESCRIBE_SCRAM = API_SCHEMAS[50];
const ALTER_SCRAM = API_SCHEMAS[51];
const enc = new TextEncoder();

async function saslBroker(
  extra: Record<string, string> = {},
): Promise<TestBroker & { sasl: string }> {
  const password = await Deno.makeTempFile();
  await Deno.writeTextFile(password, "adminpw\n");
  const b = await startTestBroker({
    settings: {
      listeners: "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
      "sasl-admin-user": "admin",
      "sasl-admin-password-file": password,
      ...extra,
    },
  });
  const addr = b.node.listenerAddresses.find((l) => l.name === "SASL_PLAINTEXT")!.addr;
  return Object.assign(b, { sasl: `127.0.0.1:${addr.port}` });
}

const metadata = (conn: KafkaConnection) =>
  conn.send(METADATA, 9, {
    topics: [],
    allowAutoTopicCreation: false,
    includeTopicAuthorizedOperations: false,
  });

async function closedByBroker(conn: KafkaConnection, request: () => Promise<unknown>) {
  await assert.rejects(request(), KafkaConnectionError);
  await conn.closedByPeer();
}

Deno.test("SASL_PLAINTEXT: nothing but ApiVersions and the SASL exchange before login; PLAIN and SCRAM at every version", async () => {
  await using b = await saslBroker();
  const early = await KafkaConnection.connect(b.sasl);
  await closedByBroker(early, () => metadata(early));
  for (let v = 0; v <= 2; v++) {
    for (const mechanism of ["SCRAM-SHA-256", "SCRAM-SHA-512"] as const) {
      const conn = await KafkaConnection.connect(b.sasl);
      const r = await scramLogin(conn, v, mechanism, "admin", "adminpw");
      assert.equal(r.errorCode, E.NONE, `${mechanism} v${v}`);
      const md = await metadata(conn);
      assert.equal(md!.brokers[0].port, Number(b.sasl.split(":")[1]), "this listener's endpoint");
      conn.close();
    }
    const conn = await KafkaConnection.connect(b.sasl);
    assert.equal((await plainLogin(conn, v, "admin", "adminpw")).errorCode, E.NONE, `PLAIN v${v}`);
    assert.ok(await metadata(conn));
    conn.close();
  }
  // The PLAINTEXT listener has no SASL; its Metadata names its own endpoint.
  const plain = await b.connect();
  const hs = await plain.send(HANDSHAKE, 1, { mechanism: "PLAIN" });
  assert.deepEqual([hs!.errorCode, hs!.mechanisms], [E.UNSUPPORTED_SASL_MECHANISM, []]);
  assert.equal((await metadata(plain))!.brokers[0].port, Number(b.bootstrap.split(":")[1]));
});

Deno.test("SASL: a wrong password, an unknown user or an unknown mechanism fail; the connection closes after a failed login", async () => {
  await using b = await saslBroker();
  for (const [user, password] of [["admin", "wrong"], ["nobody", "adminpw"]]) {
    const conn = await KafkaConnection.connect(b.sasl);
    const r = await scramLogin(conn, 2, "SCRAM-SHA-512", user, password);
    assert.equal(r.errorCode, E.SASL_AUTHENTICATION_FAILED);
    assert.doesNotMatch(r.errorMessage ?? "", new RegExp(password), "no secret in the message");
    await closedByBroker(conn, () => metadata(conn));
    const p = await KafkaConnection.connect(b.sasl);
    assert.equal((await plainLogin(p, 1, user, password)).errorCode, E.SASL_AUTHENTICATION_FAILED);
    p.close();
  }
  const conn = await KafkaConnection.connect(b.sasl);
  const hs = await conn.send(HANDSHAKE, 1, { mechanism: "GSSAPI" });
  assert.equal(hs!.errorCode, E.UNSUPPORTED_SASL_MECHANISM);
  assert.deepEqual(hs!.mechanisms, ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]);
  const noHandshake = await KafkaConnection.connect(b.sasl);
  const r = await noHandshake.send(AUTHENTICATE, 1, { authBytes: enc.encode("x") });
  assert.equal(r!.errorCode, E.ILLEGAL_SASL_STATE);
  conn.close();
  noHandshake.close();
});

Deno.test("SASL: a frame larger than --sasl-max-receive-bytes before login closes the connection, nothing allocated", async () => {
  await using b = await saslBroker({ "sasl-max-receive-bytes": "4096" });
  const conn = await KafkaConnection.connect(b.sasl);
  const frame = new Uint8Array(8);
  new DataView(frame.buffer).setInt32(0, 1_000_000);
  await conn.sendRaw(frame);
  await conn.closedByPeer();
  // After login the regular bound applies.
  const ok = await KafkaConnection.connect(b.sasl);
  assert.equal((await plainLogin(ok, 2, "admin", "adminpw")).errorCode, E.NONE);
  assert.ok(
    await ok.send(METADATA, 9, {
      topics: [{ name: "x".repeat(5000), topicId: "AAAAAAAAAAAAAAAAAAAAAA" }],
      allowAutoTopicCreation: false,
      includeTopicAuthorizedOperations: false,
    }),
  );
  ok.close();
});

Deno.test("SASL: the session lifetime (KIP-368) is announced, and an expired session must log in again", async () => {
  await using b = await saslBroker({ "connections-max-reauth-ms": "300" });
  const conn = await KafkaConnection.connect(b.sasl);
  const r = await plainLogin(conn, 1, "admin", "adminpw");
  assert.equal(r.sessionLifetimeMs, 300);
  assert.ok(await metadata(conn));
  await new Promise((res) => setTimeout(res, 400));
  // Re-authentication on the same connection renews the session.
  assert.equal((await plainLogin(conn, 1, "admin", "adminpw")).errorCode, E.NONE);
  assert.ok(await metadata(conn));
  await new Promise((res) => setTimeout(res, 400));
  await closedByBroker(conn, () => metadata(conn));
});

Deno.test("AlterUserScramCredentials and DescribeUserScramCredentials: new users log in; only super users may change credentials", async () => {
  await using b = await saslBroker();
  const admin = await KafkaConnection.connect(b.sasl);
  assert.equal((await scramLogin(admin, 2, "SCRAM-SHA-512", "admin", "adminpw")).errorCode, E.NONE);
  const salt = new Uint8Array(randomBytes(16));
  const salted = new Uint8Array(pbkdf2Sync("alicepw", salt, 4096, 64, "sha512"));
  const altered = await admin.send(ALTER_SCRAM, 0, {
    deletions: [{ name: "ghost", mechanism: 1 }],
    upsertions: [
      { name: "alice", mechanism: 2, iterations: 4096, salt, saltedPassword: salted },
      { name: "weak", mechanism: 2, iterations: 10, salt, saltedPassword: salted },
      { name: "odd", mechanism: 9, iterations: 4096, salt, saltedPassword: salted },
    ],
  });
  assert.deepEqual(
    altered!.results.map((r) => [r.user, r.errorCode]),
    [
      ["ghost", E.RESOURCE_NOT_FOUND],
      ["alice", E.NONE],
      ["weak", E.UNACCEPTABLE_CREDENTIAL],
      ["odd", E.UNSUPPORTED_SASL_MECHANISM],
    ],
  );
  const described = await admin.send(DESCRIBE_SCRAM, 0, { users: null });
  assert.deepEqual(
    described!.results.map((
      r,
    ) => [r.user, r.credentialInfos.map((c) => [c.mechanism, c.iterations])]),
    [["admin", [[1, 8192], [2, 8192]]], ["alice", [[2, 4096]]]],
  );
  const missing = await admin.send(DESCRIBE_SCRAM, 0, { users: [{ name: "bob" }] });
  assert.equal(missing!.results[0].errorCode, E.RESOURCE_NOT_FOUND);
  // alice logs in with the new credential, but is no super user.
  const alice = await KafkaConnection.connect(b.sasl);
  assert.equal((await scramLogin(alice, 2, "SCRAM-SHA-512", "alice", "alicepw")).errorCode, E.NONE);
  const denied = await alice.send(ALTER_SCRAM, 0, {
    deletions: [{ name: "admin", mechanism: 2 }],
    upsertions: [],
  });
  assert.equal(denied!.results[0].errorCode, E.CLUSTER_AUTHORIZATION_FAILED);
  const hidden = await alice.send(DESCRIBE_SCRAM, 0, { users: null });
  assert.equal(hidden!.errorCode, E.CLUSTER_AUTHORIZATION_FAILED);
  // Deleting alice's credential ends her logins.
  const deleted = await admin.send(ALTER_SCRAM, 0, {
    deletions: [{ name: "alice", mechanism: 2 }],
    upsertions: [],
  });
  assert.equal(deleted!.results[0].errorCode, E.NONE);
  const again = await KafkaConnection.connect(b.sasl);
  assert.equal(
    (await scramLogin(again, 2, "SCRAM-SHA-512", "alice", "alicepw")).errorCode,
    E.SASL_AUTHENTICATION_FAILED,
  );
  for (const c of [admin, alice, again]) c.close();
});

Deno.test("DescribeClientQuotas v0-1: no quotas are enforced, so every filter matches nothing", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  for (const v of [0, 1]) {
    const res = await conn.send(API_SCHEMAS[48], v, {
      components: [{ entityType: "user", matchType: 1, match: null }],
      strict: false,
    });
    assert.deepEqual([res!.errorCode, res!.entries], [E.NONE, []], `v${v}`);
  }
});
