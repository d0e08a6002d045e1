/**
 * A certificate and a key that do not belong together are refused before a listener gets them
 * (Deno's tls.createSecureContext accepts them, and every handshake would then fail): at start
 * and on a SIGHUP reload, for the Kafka listeners, HTTPS and the control port.
 */
import assert from "node:assert/strict";
import { checkTlsIdentity } from "../../lib/security/tls_identity.ts";
import { loadTlsMaterial } from "../../lib/server/tls_listener.ts";
import { makeCerts } from "../support/certs.ts";

Deno.test("TLS identity: a matching pair passes; another certificate's key, or junk, is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kafscale-tls-identity-" });
  try {
    await makeCerts(dir);
    const read = (name: string) => Deno.readTextFile(`${dir}/${name}`);
    checkTlsIdentity(await read("server.pem"), await read("server.key"));
    // A chain: the first certificate is the one the key must match.
    checkTlsIdentity((await read("server.pem")) + (await read("ca.pem")), await read("server.key"));
    assert.throws(
      () =>
        checkTlsIdentity(
          Deno.readTextFileSync(`${dir}/server.pem`),
          Deno.readTextFileSync(`${dir}/server2.key`),
        ),
      /does not belong to the certificate/,
    );
    assert.throws(() => checkTlsIdentity("junk", "junk"), /no PEM certificate/);
    assert.throws(
      () => checkTlsIdentity(Deno.readTextFileSync(`${dir}/server.pem`), "junk"),
      /private key cannot be read/,
    );
    await assert.rejects(
      loadTlsMaterial({
        certFile: `${dir}/server.pem`,
        keyFile: `${dir}/server2.key`,
        clientCaFile: null,
      }),
      /"tls-cert-file" and "tls-key-file" do not make a usable TLS identity/,
    );
    const ok = await loadTlsMaterial({
      certFile: `${dir}/server.pem`,
      keyFile: `${dir}/server.key`,
      clientCaFile: `${dir}/ca.pem`,
    });
    assert.equal(ok.ca.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
