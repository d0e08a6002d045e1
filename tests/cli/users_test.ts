/**
 * `kafscale users` run in-process against an in-process broker (through its loopback PLAINTEXT
 * listener, which authenticates no one and so may manage credentials): create, list, delete, and
 * the user then logging in over SASL_PLAINTEXT with SCRAM and PLAIN; bad input.
 */
import assert from "node:assert/strict";
import { runUsers } from "../../lib/cli/users.ts";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { captureIo, tableRows } from "./cli_support.ts";

async function users(bootstrap: string, ...args: string[]) {
  const io = captureIo();
  const code = await runUsers([...args, "--bootstrap-server", bootstrap], io);
  return { code, out: io.stdoutText(), err: io.err.join("\n") };
}

async function plainLogin(address: string, user: string, password: string): Promise<number> {
  const conn = await KafkaConnection.connect(address);
  try {
    await conn.send(API_SCHEMAS[17], 1, { mechanism: "PLAIN" });
    const r = await conn.send(API_SCHEMAS[36], 2, {
      authBytes: new TextEncoder().encode(`\u0000${user}\u0000${password}`),
    });
    return r!.errorCode;
  } finally {
    conn.close();
  }
}

Deno.test("kafscale users create, list and delete; the user logs in", async () => {
  await using b = await startTestBroker({
    settings: { listeners: "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0" },
  });
  const sasl = `127.0.0.1:${b.node.listenerAddresses[1].addr.port}`;
  const pwFile = await Deno.makeTempFile();
  await Deno.writeTextFile(pwFile, "s3cret\nignored");
  const created = await users(b.bootstrap, "create", "carol", "--password-file", pwFile);
  assert.equal(created.code, 0, created.err);
  const one = await users(
    b.bootstrap,
    "create",
    "dave",
    "--password",
    "x1",
    "--mechanism",
    "SCRAM-SHA-256",
    "--iterations",
    "4096",
  );
  assert.equal(one.code, 0, one.err);
  const listed = await users(b.bootstrap, "list");
  assert.deepEqual(tableRows(listed.out).slice(1), [
    ["carol", "SCRAM-SHA-256(8192) SCRAM-SHA-512(8192)"],
    ["dave", "SCRAM-SHA-256(4096)"],
  ]);
  assert.equal(await plainLogin(sasl, "carol", "s3cret"), E.NONE);
  assert.equal(await plainLogin(sasl, "carol", "ignored"), E.SASL_AUTHENTICATION_FAILED);
  const deleted = await users(b.bootstrap, "delete", "carol");
  assert.equal(deleted.code, 0, deleted.err);
  assert.equal(await plainLogin(sasl, "carol", "s3cret"), E.SASL_AUTHENTICATION_FAILED);
  const json = JSON.parse((await users(b.bootstrap, "list", "--output", "json")).out);
  assert.deepEqual(json.map((u: { user: string }) => u.user), ["dave"]);
  // Bad input: a clear message and exit 2.
  const both = await users(b.bootstrap, "create", "x");
  assert.equal(both.code, 2);
  assert.match(both.err, /exactly one of "--password" and "--password-file"/);
  const mech = await users(b.bootstrap, "create", "x", "--password", "p", "--mechanism", "MD5");
  assert.equal(mech.code, 2);
  const iters = await users(b.bootstrap, "create", "x", "--password", "p", "--iterations", "10");
  assert.equal(iters.code, 1);
  assert.match(iters.err, /UNACCEPTABLE_CREDENTIAL/);
  await Deno.remove(pwFile);
});
