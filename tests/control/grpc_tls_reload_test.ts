/**
 * The control port's certificate is replaced on a running gRPC server (SIGHUP): new TLS
 * handshakes get the new one; a key that does not match its certificate is refused and the old
 * pair keeps being served (grpc-js would otherwise drop every new connection).
 */
import assert from "node:assert/strict";
import { connect } from "node:tls";
import { startGrpcServer } from "../../lib/control/grpc_adapter.ts";
import { CONTROL_METHODS } from "../../lib/control/control_proto.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import { makeCerts } from "../support/certs.ts";

Deno.test("control TLS: reloadTls serves the new certificate; a mismatched key is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-grpc-tls-" });
  try {
    await makeCerts(dir);
    const read = (name: string) => Deno.readTextFile(`${dir}/${name}`);
    const server = await startGrpcServer({
      hostname: "127.0.0.1",
      port: 0,
      methods: [{
        method: CONTROL_METHODS.getStatus,
        handler: { kind: "unary", handle: () => Promise.resolve({}) },
      }],
      authenticate: () => null,
      logger: silentLogger,
      tls: { cert: await read("server.pem"), key: await read("server.key"), clientCa: null },
    });
    try {
      const handshake = async (caFile: string) => {
        const ca = await read(caFile);
        return await new Promise<boolean>((resolve) => {
          const socket = connect({
            host: "127.0.0.1",
            port: server.port,
            servername: "localhost",
            ca,
            ALPNProtocols: ["h2"],
          }, () => {
            socket.destroy();
            resolve(true);
          });
          socket.on("error", () => resolve(false));
        });
      };
      assert.equal(await handshake("ca.pem"), true);
      assert.throws(() =>
        server.reloadTls({
          cert: Deno.readTextFileSync(`${dir}/server2.pem`),
          key: Deno.readTextFileSync(`${dir}/alice.key`),
          clientCa: null,
        })
      );
      assert.equal(await handshake("ca.pem"), true, "the old pair is still served");
      server.reloadTls({
        cert: await read("server2.pem"),
        key: await read("server2.key"),
        clientCa: null,
      });
      assert.equal(await handshake("ca2.pem"), true, "the new certificate");
      assert.equal(await handshake("ca.pem"), false, "not the old one");
    } finally {
      await server.stop(100);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
