/**
 * The client side of SASL for broker tests: SaslHandshake v1 then SaslAuthenticate with SCRAM
 * (RFC 5802, checking the server's signature) or PLAIN, over a KafkaConnection.
 */
import assert from "node:assert/strict";
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import type { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";

const HANDSHAKE = API_SCHEMAS[17];
const AUTHENTICATE = API_SCHEMAS[36];
const enc = new TextEncoder();
const dec = new TextDecoder();
const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

/** SCRAM's client side (RFC 5802), for SHA-256 and SHA-512. */
export async function scramLogin(
  conn: KafkaConnection,
  version: number,
  mechanism: "SCRAM-SHA-256" | "SCRAM-SHA-512",
  user: string,
  password: string,
) {
  const [hash, bytes] = mechanism === "SCRAM-SHA-256"
    ? ["sha256", 32] as const
    : ["sha512", 64] as const;
  const hs = await conn.send(HANDSHAKE, 1, { mechanism });
  assert.equal(hs!.errorCode, E.NONE);
  const bare = `n=${user},r=${b64(new Uint8Array(randomBytes(12)))}`;
  const first = await conn.send(AUTHENTICATE, version, { authBytes: enc.encode(`n,,${bare}`) });
  if (first!.errorCode !== E.NONE) return first!;
  const serverFirst = dec.decode(first!.authBytes);
  const attrs = new Map(serverFirst.split(",").map((p) => [p[0], p.slice(2)] as [string, string]));
  const salted = pbkdf2Sync(password, unb64(attrs.get("s")!), Number(attrs.get("i")), bytes, hash);
  const clientKey = createHmac(hash, salted).update("Client Key").digest();
  const storedKey = createHash(hash).update(clientKey).digest();
  const withoutProof = `c=biws,r=${attrs.get("r")}`;
  const auth = `${bare},${serverFirst},${withoutProof}`;
  const signature = createHmac(hash, storedKey).update(auth).digest();
  const proof = new Uint8Array(clientKey.map((b, i) => b ^ signature[i]));
  const final = await conn.send(AUTHENTICATE, version, {
    authBytes: enc.encode(`${withoutProof},p=${b64(proof)}`),
  });
  if (final!.errorCode === E.NONE) {
    const serverKey = createHmac(hash, salted).update("Server Key").digest();
    const expected = b64(new Uint8Array(createHmac(hash, serverKey).update(auth).digest()));
    assert.equal(dec.decode(final!.authBytes), `v=${expected}`, "the server proves itself");
  }
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
