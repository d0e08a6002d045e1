/**
 * The client side of SASL for broker tests: SaslHandshake v1 then SaslAuthenticate with SCRAM
 * (RFC 5802, checking the server's signature) or PLAIN, over a KafkaConnection.
 */
import assert from "node:assert/strict";
import type { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { ScramClient } from "../../lib/client/sasl_client.ts";
import { saltedPassword } from "../../lib/security/scram.ts";

const HANDSHAKE = API_SCHEMAS[17];
const AUTHENTICATE = API_SCHEMAS[36];
const enc = new TextEncoder();

/** SCRAM's client side (RFC 5802), for SHA-256 and SHA-512 (lib/client/sasl_client.ts). */
export async function scramLogin(
  conn: KafkaConnection,
  version: number,
  mechanism: "SCRAM-SHA-256" | "SCRAM-SHA-512",
  user: string,
  password: string,
) {
  const hs = await conn.send(HANDSHAKE, 1, { mechanism });
  assert.equal(hs!.errorCode, E.NONE);
  const scram = new ScramClient(mechanism, user, password);
  const first = await conn.send(AUTHENTICATE, version, { authBytes: scram.first() });
  if (first!.errorCode !== E.NONE) return first!;
  const final = await conn.send(AUTHENTICATE, version, {
    authBytes: scram.final(first!.authBytes),
  });
  // The server proves it knows the credential.
  if (final!.errorCode === E.NONE) scram.verify(final!.authBytes);
  return final!;
}

export async function plainLogin(
  conn: KafkaConnection,
  version: number,
  user: string,
  password: string,
) {
  const hs = await conn.send(HANDSHAKE, 1, { mechanism: "PLAIN" });
  assert.equal(hs!.errorCode, E.NONE);
  return (await conn.send(AUTHENTICATE, version, {
    authBytes: enc.encode(`\u0000${user}\u0000${password}`),
  }))!;
}

/** An AlterUserScramCredentials upsertion giving `name` the SCRAM-SHA-512 `password`. */
export function scramSha512Upsertion(name: string, password: string) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  return {
    name,
    mechanism: 2,
    iterations: 4096,
    salt,
    saltedPassword: saltedPassword("SCRAM-SHA-512", password, salt, 4096),
  };
}
