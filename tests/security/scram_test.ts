/**
 * SCRAM and PLAIN on the server side: RFC 7677's SCRAM-SHA-256 test vector byte for byte, a full
 * SCRAM-SHA-512 exchange against a client written from RFC 5802, wrong proofs, unknown users,
 * tampered nonces and channel binding, and PLAIN checked against the salted credential.
 */
import assert from "node:assert/strict";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import {
  parsePlain,
  passwordMatches,
  SaslError,
  scramCredential,
  ScramServer,
} from "../../lib/security/scram.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));

Deno.test("SCRAM-SHA-256: RFC 7677's example exchange, byte for byte", async () => {
  const credential = scramCredential(
    "SCRAM-SHA-256",
    "pencil",
    4096,
    unb64("W22ZaJ0SNY7soEsUEjb6gQ=="),
  );
  const server = new ScramServer(
    "SCRAM-SHA-256",
    (user) => Promise.resolve(user === "user" ? credential : null),
    () => "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  );
  const serverFirst = await server.first(enc.encode("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
  assert.equal(
    dec.decode(serverFirst),
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  );
  const serverFinal = server.final(enc.encode(
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  ));
  assert.equal(dec.decode(serverFinal), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  assert.equal(server.user, "user");
});

/** The client side of RFC 5802, for SHA-512. */
function clientFinal(
  serverFirst: string,
  clientFirstBare: string,
  password: string,
  nonce = (r: string) => r,
) {
  const attrs = new Map(serverFirst.split(",").map((p) => [p[0], p.slice(2)] as [string, string]));
  const salted = pbkdf2Sync(password, unb64(attrs.get("s")!), Number(attrs.get("i")), 64, "sha512");
  const clientKey = createHmac("sha512", salted).update("Client Key").digest();
  const storedKey = createHash("sha512").update(clientKey).digest();
  const withoutProof = `c=biws,r=${nonce(attrs.get("r")!)}`;
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const signature = createHmac("sha512", storedKey).update(authMessage).digest();
  const proof = clientKey.map((b, i) => b ^ signature[i]);
  return `${withoutProof},p=${b64(new Uint8Array(proof))}`;
}

Deno.test("SCRAM-SHA-512: a right password authenticates; a wrong one, an unknown user or a changed nonce do not", async () => {
  const credential = scramCredential("SCRAM-SHA-512", "s3cret");
  const lookup = (user: string) => Promise.resolve(user === "alice" ? credential : null);
  const exchange = async (user: string, password: string, tamper = (s: string) => s) => {
    const server = new ScramServer("SCRAM-SHA-512", lookup);
    const bare = `n=${user},r=clientnonce123`;
    const first = dec.decode(await server.first(enc.encode(`n,,${bare}`)));
    server.final(enc.encode(tamper(clientFinal(first, bare, password))));
    return server.user;
  };
  assert.equal(await exchange("alice", "s3cret"), "alice");
  await assert.rejects(exchange("alice", "wrong"), SaslError);
  await assert.rejects(exchange("bob", "s3cret"), SaslError);
  await assert.rejects(
    exchange("alice", "s3cret", (s) => s.replace(/r=([^,]*)/, "r=$1x")),
    /nonce does not match/,
  );
  // As Kafka: a nonce that ends with the server's is taken (librdkafka 2.0 sends its own nonce
  // once more in front); the proof covers the message as sent.
  const repeated = new ScramServer("SCRAM-SHA-512", lookup);
  const bare = "n=alice,r=cn";
  const first = dec.decode(await repeated.first(enc.encode(`n,,${bare}`)));
  repeated.final(enc.encode(clientFinal(first, bare, "s3cret", (r) => `cn${r}`)));
  assert.equal(repeated.user, "alice");
  await assert.rejects(
    exchange("alice", "s3cret", (s) => s.replace("c=biws", "c=eSws")),
    /channel binding/,
  );
  const server = new ScramServer("SCRAM-SHA-512", lookup);
  await assert.rejects(server.first(enc.encode("p=tls-unique,,n=alice,r=x")), /channel binding/);
  await assert.rejects(server.first(enc.encode("garbage")), /Malformed/);
  assert.throws(
    () => new ScramServer("SCRAM-SHA-512", lookup).final(enc.encode("c=biws")),
    SaslError,
  );
});

Deno.test("PLAIN: parsed strictly and checked against the salted credential", () => {
  assert.deepEqual(parsePlain(enc.encode("\u0000alice\u0000pw")), {
    user: "alice",
    password: "pw",
  });
  assert.deepEqual(parsePlain(enc.encode("alice\u0000alice\u0000pw")), {
    user: "alice",
    password: "pw",
  });
  assert.throws(() => parsePlain(enc.encode("bob\u0000alice\u0000pw")), SaslError);
  assert.throws(() => parsePlain(enc.encode("alice:pw")), SaslError);
  const credential = scramCredential("SCRAM-SHA-256", "pw");
  assert.equal(passwordMatches(credential, "pw"), true);
  assert.equal(passwordMatches(credential, "pW"), false);
  // Looked for with a password base64 cannot spell (a space), so a random salt or key never
  // matches it by chance (with "pw" this failed about once in a few hundred runs).
  const secret = "pw with spaces!";
  assert.ok(
    !JSON.stringify(scramCredential("SCRAM-SHA-256", secret)).includes(secret),
    "the password is not stored",
  );
  assert.throws(() => scramCredential("SCRAM-SHA-256", "pw", 100), RangeError);
});
