/**
 * How brokers call each other (WriteTxnMarkers, from a transaction coordinator to the owner of a
 * partition). A broker logs in to another as the reserved user `__kafscale_broker`, with a secret
 * the first broker created in the metadata store (`cluster/inter-broker-secret`): every broker
 * reads it there, so it needs no configuration, and it protects nothing from whoever can read the
 * metadata store (they can do anything already). Like Kafka's broker principal, the principal
 * `User:__kafscale_broker` is allowed every operation; clients cannot create or remove
 * credentials for that name.
 *
 * The listener: SASL_PLAINTEXT, then SASL_SSL (logged in with the first of SCRAM-SHA-512,
 * SCRAM-SHA-256, PLAIN this broker enables), then PLAINTEXT, then SSL. Over TLS the other broker's
 * certificate must be signed by a CA of `--tls-client-ca-file` or by one in this broker's
 * `--tls-cert-file` chain (or be that same self-signed certificate, shared by the brokers), and
 * this broker's certificate is its client certificate.
 */
import type { BrokerRegistration } from "../metadata/cluster_metadata.ts";
import type { ClientSecurity, SecurityProtocol } from "../client/client_security.ts";
import type { SaslMechanism } from "../security/scram.ts";
import { X509Certificate } from "node:crypto";
import { certificatePrincipal } from "../server/tls_listener.ts";

export const INTER_BROKER_USER = "__kafscale_broker";
export const INTER_BROKER_PRINCIPAL = `User:${INTER_BROKER_USER}`;

const PREFERENCE: SecurityProtocol[] = ["SASL_PLAINTEXT", "SASL_SSL", "PLAINTEXT", "SSL"];
const MECHANISMS: SaslMechanism[] = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"];

/** This broker's TLS files, read when another broker is called over TLS. */
export interface InterBrokerTlsFiles {
  certFile: string;
  keyFile: string;
  clientCaFile: string | null;
}

/** The listener of `target` to call, by the preference above. */
export function interBrokerEndpoint(
  target: BrokerRegistration,
): { host: string; port: number; protocol: SecurityProtocol } {
  const listeners = (target.listeners ?? []).map((l) => ({
    host: l.host,
    port: l.port,
    // Registrations written before listeners carried a protocol named it as the listener.
    protocol: (l.protocol ?? l.name) as SecurityProtocol,
  }));
  const protocol = preferredProtocol(listeners.map((l) => l.protocol));
  return listeners.find((l) => l.protocol === protocol) ??
    { host: target.host, port: target.port, protocol: "PLAINTEXT" };
}

/** Which of a broker's listener protocols other brokers call it over (PLAINTEXT: none). */
export function preferredProtocol(protocols: readonly string[]): SecurityProtocol {
  return PREFERENCE.find((p) => protocols.includes(p)) ?? "PLAINTEXT";
}

/**
 * The principal another broker gets when it calls this one over `protocol`: the reserved user
 * over SASL, its certificate's subject over SSL with client certificates (brokers share the
 * certificate or its CA), else `User:ANONYMOUS`.
 */
export function interBrokerPrincipal(
  protocol: SecurityProtocol,
  local: { certPem: string | null; clientCa: boolean },
): string {
  if (protocol === "SASL_PLAINTEXT" || protocol === "SASL_SSL") return INTER_BROKER_PRINCIPAL;
  if (protocol === "SSL" && local.clientCa && local.certPem !== null) {
    return certificatePrincipal(new X509Certificate(local.certPem));
  }
  return "User:ANONYMOUS";
}

/** How to connect to a listener of `protocol` as this broker. */
export async function interBrokerSecurity(
  protocol: SecurityProtocol,
  local: {
    saslMechanisms: readonly string[];
    tls: InterBrokerTlsFiles | null;
    secret: () => Promise<string>;
  },
): Promise<ClientSecurity> {
  const security: ClientSecurity = { protocol };
  if (protocol === "SASL_PLAINTEXT" || protocol === "SASL_SSL") {
    const mechanism = MECHANISMS.find((m) => local.saslMechanisms.includes(m)) ?? MECHANISMS[0];
    security.sasl = { mechanism, username: INTER_BROKER_USER, password: await local.secret() };
  }
  if ((protocol === "SSL" || protocol === "SASL_SSL") && local.tls) {
    const cert = await Deno.readTextFile(local.tls.certFile);
    security.cert = cert;
    security.key = await Deno.readTextFile(local.tls.keyFile);
    security.caCerts = [cert];
    if (local.tls.clientCaFile) {
      security.caCerts.push(await Deno.readTextFile(local.tls.clientCaFile));
    }
  }
  return security;
}
