/**
 * Checks that a PEM certificate (chain) and private key make a usable TLS identity: the first
 * certificate parses, the key parses, and the key is the certificate's. Deno's
 * `tls.createSecureContext` accepts a key of another certificate, and a listener given one
 * then fails every handshake, so a reload (SIGHUP) checks first and keeps the old pair.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/** Throws an Error saying what is wrong, or returns. */
export function checkTlsIdentity(certPem: string, keyPem: string): void {
  const first = certPem.match(PEM_CERTIFICATE)?.[0];
  if (!first) throw new Error("the certificate file holds no PEM certificate");
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(first);
  } catch (err) {
    throw new Error(`the certificate cannot be read: ${(err as Error).message}`);
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new Error(`the private key cannot be read: ${(err as Error).message}`);
  }
  if (!cert.checkPrivateKey(key)) {
    throw new Error(`the private key does not belong to the certificate (${cert.subject})`);
  }
}
