/**
 * Certificates for security tests, made by openssl at test time: CAs "ca", "ca2" and "rogue";
 * "server" (CN=localhost, SAN localhost and 127.0.0.1) signed by "ca", "server2" by "ca2"; client
 * certificates "alice" (by "ca"), "mallory" (by "rogue") and "expired" (by "ca", expired).
 * Each NAME has NAME.pem and NAME.key in the directory.
 */
import assert from "node:assert/strict";
import { runProgram } from "../e2e/client_runner.ts";

const TIMEOUT_MS = 60_000;

/** Runs a bash command line (with `input` as a here-document on stdin); code and output. */
export async function sh(cmd: string, input?: string): Promise<{ code: number; out: string }> {
  const r = await runProgram([
    "bash",
    "-c",
    input === undefined ? cmd : `${cmd} <<'EOF'\n${input}\nEOF`,
  ], {
    timeoutMs: TIMEOUT_MS,
  });
  return { code: r.code, out: r.stdout + r.stderr };
}

/** A CA, a server certificate for 127.0.0.1 signed by it, and client certificates. */
export async function makeCerts(dir: string): Promise<void> {
  const ok = async (cmd: string) => {
    const r = await sh(`cd ${dir} && ${cmd}`);
    assert.equal(r.code, 0, `${cmd}: ${r.out}`);
  };
  for (const ca of ["ca", "ca2", "rogue"]) {
    await ok(
      `openssl req -x509 -newkey rsa:2048 -nodes -keyout ${ca}.key -out ${ca}.pem -days 2 -subj /CN=${ca}`,
    );
  }
  await ok("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > san.cnf");
  // X.509 v3 client certificates (rustls, which Deno's TLS client uses, refuses v1 ones).
  await ok("printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth' > client.cnf");
  for (const [name, ca] of [["server", "ca"], ["server2", "ca2"]]) {
    await ok(
      `openssl req -newkey rsa:2048 -nodes -keyout ${name}.key -out ${name}.csr -subj /CN=localhost`,
    );
    await ok(
      `openssl x509 -req -in ${name}.csr -CA ${ca}.pem -CAkey ${ca}.key -CAcreateserial -out ${name}.pem -days 2 -extfile san.cnf`,
    );
  }
  for (
    const [name, ca, days] of [["alice", "ca", 2], ["mallory", "rogue", 2], ["expired", "ca", -1]]
  ) {
    await ok(
      `openssl req -newkey rsa:2048 -nodes -keyout ${name}.key -out ${name}.csr -subj /O=acme/CN=${name}`,
    );
    await ok(
      `openssl x509 -req -in ${name}.csr -CA ${ca}.pem -CAkey ${ca}.key -CAcreateserial -out ${name}.pem -days ${days} -extfile client.cnf`,
    );
  }
}

/** `serve` flags for the server certificate of `makeCerts(dir)`, requiring clients signed by its CA. */
export function serverTlsArgs(dir: string): string[] {
  return [
    "--tls-cert-file",
    `${dir}/server.pem`,
    "--tls-key-file",
    `${dir}/server.key`,
    "--tls-client-ca-file",
    `${dir}/ca.pem`,
  ];
}
