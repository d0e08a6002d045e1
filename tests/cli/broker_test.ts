/**
 * `kafscale broker`: help at every level, usage errors (exit 2), and one line naming the RPC and
 * the gRPC status when the control server cannot be reached (exit 1). The RPCs themselves are
 * tested against real brokers in tests/control/control_embedded_test.ts.
 */
import assert from "node:assert/strict";
import { runBroker } from "../../lib/cli/broker.ts";
import { captureIo } from "./cli_support.ts";

async function broker(env: Record<string, string>, ...args: string[]) {
  const io = captureIo();
  const code = await runBroker(args, io, env);
  return { code, out: io.stdoutText(), err: io.err };
}

Deno.test("kafscale broker: help, usage errors and an unreachable control server", async () => {
  const help = await broker({}, "--help");
  assert.equal(help.code, 0);
  for (const sub of ["status", "drain", "flush", "watch"]) {
    assert.match(help.out, new RegExp(`^  ${sub}`, "m"));
    const subHelp = await broker({}, sub, "--help");
    assert.equal(subHelp.code, 0);
    assert.match(subHelp.out, new RegExp(`^Usage: kafscale broker ${sub}`));
    assert.match(subHelp.out, /--control-server HOST:PORT/);
  }
  assert.equal((await broker({})).code, 2);
  const unknown = await broker({}, "restart");
  assert.equal(unknown.code, 2);
  assert.match(unknown.err[0], /Unknown command "broker restart"/);

  const badPartition = await broker({}, "drain", "orders");
  assert.equal(badPartition.code, 2);
  assert.match(
    badPartition.err[0],
    /TOPIC:PARTITION, got "orders"; run "kafscale broker drain --help"/,
  );
  const badServer = await broker({}, "status", "--control-server", "nohost");
  assert.equal(badServer.code, 2);
  assert.match(badServer.err[0], /"--control-server" must be HOST:PORT/);
  const badOutput = await broker({}, "status", "-o", "yaml");
  assert.equal(badOutput.code, 2);

  // A port nothing listens on (taken, then released): UNAVAILABLE, one line, exit 1.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const down = await broker({ KAFSCALE_CONTROL_SERVER: `127.0.0.1:${port}` }, "status");
  assert.equal(down.code, 1);
  assert.equal(down.err.length, 1);
  assert.match(
    down.err[0],
    new RegExp(
      `^GetStatus failed \\(UNAVAILABLE\\): Cannot reach the control server "127\\.0\\.0\\.1:${port}"`,
    ),
  );
});
