/**
 * How the CLI's Kafka client reaches a secured listener: TLS (with a CA to trust, and a client
 * certificate for mTLS) and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), read from a Kafka
 * client properties file as Kafka's tools take it with `--command-config`. Keys read:
 *
 *   security.protocol          PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
 *   sasl.mechanism             PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
 *   sasl.jaas.config           ... username="U" password="P";   (Kafka's login module line)
 *   sasl.username, sasl.password   the same, plainly (take precedence)
 *   ssl.truststore.location    PEM file of the CA certificate(s) to trust
 *                              (ssl.truststore.type must be PEM when given)
 *   ssl.keystore.location      PEM file holding the client certificate and its private key
 *                              (ssl.keystore.type must be PEM when given)
 *   ssl.certificate.location, ssl.key.location   the same as two PEM files (librdkafka's names)
 *
 * Other keys are ignored, so a file written for Kafka's tools can be reused. `#` and `!` start
 * comments. Bad values are errors naming the key and the file.
 */
import { SASL_MECHANISMS, type SaslMechanism } from "../security/scram.ts";

export const SECURITY_PROTOCOLS = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] as const;
export type SecurityProtocol = (typeof SECURITY_PROTOCOLS)[number];

export interface ClientSecurity {
  protocol: SecurityProtocol;
  /** PEM of the CA certificates to trust (TLS); absent: the system's roots. */
  caCerts?: string[];
  /** PEM client certificate chain and private key (mTLS). */
  cert?: string;
  key?: string;
  sasl?: { mechanism: SaslMechanism; username: string; password: string };
}

export class ClientConfigError extends Error {
  override name = "ClientConfigError";
}

export const PLAINTEXT: ClientSecurity = { protocol: "PLAINTEXT" };

/** Parses Java properties text: `key=value` or `key: value` lines, comments, continuations. */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.replace(/\\\r?\n\s*/g, "").split(/\r?\n/);
  for (const raw of lines) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith("!")) continue;
    const m = line.match(/^([^=:\s]+)\s*[=:\s]\s*(.*)$/);
    if (m) out.set(m[1], m[2].trim());
    else out.set(line, "");
  }
  return out;
}

/** The security settings of a properties file (`--command-config`). */
export function securityFromProperties(
  props: Map<string, string>,
  where: string,
  readFile: (path: string) => string = (p) => Deno.readTextFileSync(p),
): ClientSecurity {
  const protocol = (props.get("security.protocol") ?? "PLAINTEXT").toUpperCase();
  if (!(SECURITY_PROTOCOLS as readonly string[]).includes(protocol)) {
    throw new ClientConfigError(
      `"security.protocol" in ${where} must be one of ${SECURITY_PROTOCOLS.join(", ")}, ` +
        `got "${protocol}"`,
    );
  }
  const read = (key: string): string => {
    const path = props.get(key)!;
    try {
      return readFile(path);
    } catch (err) {
      throw new ClientConfigError(
        `Cannot read "${key}" (${path}) from ${where}: ${(err as Error).message}`,
      );
    }
  };
  for (const key of ["ssl.truststore.type", "ssl.keystore.type"]) {
    const type = props.get(key);
    if (type !== undefined && type.toUpperCase() !== "PEM") {
      throw new ClientConfigError(
        `"${key}" in ${where} is "${type}"; this client reads PEM files only (convert the ` +
          `keystore with openssl or keytool)`,
      );
    }
  }
  const out: ClientSecurity = { protocol: protocol as SecurityProtocol };
  if (protocol === "SSL" || protocol === "SASL_SSL") {
    if (props.has("ssl.truststore.location")) out.caCerts = [read("ssl.truststore.location")];
    if (props.has("ssl.keystore.location")) {
      const pem = read("ssl.keystore.location");
      out.cert = pemBlocks(pem, /CERTIFICATE/);
      out.key = pemBlocks(pem, /PRIVATE KEY/);
    }
    if (props.has("ssl.certificate.location")) out.cert = read("ssl.certificate.location");
    if (props.has("ssl.key.location")) out.key = read("ssl.key.location");
    if ((out.cert === undefined) !== (out.key === undefined) || out.cert === "" || out.key === "") {
      throw new ClientConfigError(
        `${where} names a client certificate without its private key (or the reverse)`,
      );
    }
  }
  if (protocol === "SASL_PLAINTEXT" || protocol === "SASL_SSL") {
    const mechanism = (props.get("sasl.mechanism") ?? "PLAIN").toUpperCase();
    if (!(SASL_MECHANISMS as readonly string[]).includes(mechanism)) {
      throw new ClientConfigError(
        `"sasl.mechanism" in ${where} must be one of ${SASL_MECHANISMS.join(", ")}, ` +
          `got "${mechanism}"`,
      );
    }
    const jaas = props.get("sasl.jaas.config") ?? "";
    const fromJaas = (name: string) => jaas.match(new RegExp(`${name}\\s*=\\s*"([^"]*)"`))?.[1];
    const username = props.get("sasl.username") ?? fromJaas("username");
    const password = props.get("sasl.password") ?? fromJaas("password");
    if (username === undefined || password === undefined) {
      throw new ClientConfigError(
        `${where} sets ${protocol} but no user name and password: give "sasl.jaas.config" ` +
          `(username="..." password="...") or "sasl.username" and "sasl.password"`,
      );
    }
    out.sasl = { mechanism: mechanism as SaslMechanism, username, password };
  }
  return out;
}

/** The PEM blocks of `pem` whose label matches (certificates, or the private key). */
function pemBlocks(pem: string, label: RegExp): string {
  const blocks = pem.match(/-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g) ?? [];
  return blocks.filter((b) => label.test(b.slice(0, b.indexOf("\n")))).join("\n");
}
