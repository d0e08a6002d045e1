/**
 * SCRAM (RFC 5802, SHA-256/512 per RFC 7677 and Kafka's KIP-84) and PLAIN (RFC 4616) on the
 * server side: salted credentials, the two-message SCRAM exchange, and the PLAIN check against
 * the same salted credentials (so no password is ever stored).
 *
 * Pure apart from node:crypto: callers pass the stored credential and the nonce source.
 * Messages are parsed strictly; anything malformed is a `SaslError` with a message that never
 * contains a secret.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

export const SCRAM_MECHANISMS = {
  "SCRAM-SHA-256": { hash: "sha256", keyBytes: 32, kafkaType: 1 },
  "SCRAM-SHA-512": { hash: "sha512", keyBytes: 64, kafkaType: 2 },
} as const;
export type ScramMechanism = keyof typeof SCRAM_MECHANISMS;
export const SASL_MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** Kafka's bounds on SCRAM iterations (ScramMechanism.minIterations / maxIterations). */
export const SCRAM_ITERATIONS_MIN = 4096;
export const SCRAM_ITERATIONS_MAX = 16384;
export const SCRAM_ITERATIONS_DEFAULT = 8192;

/** A stored SCRAM credential: never the password. */
export interface ScramCredential {
  mechanism: ScramMechanism;
  /** base64 */
  salt: string;
  iterations: number;
  /** base64 of H(ClientKey) */
  storedKey: string;
  /** base64 of HMAC(SaltedPassword, "Server Key") */
  serverKey: string;
}

export class SaslError extends Error {
  override name = "SaslError";
}

export function isScramMechanism(name: string): name is ScramMechanism {
  return Object.hasOwn(SCRAM_MECHANISMS, name);
}

function hmac(mechanism: ScramMechanism, key: Uint8Array, data: string | Uint8Array): Uint8Array {
  return new Uint8Array(
    createHmac(SCRAM_MECHANISMS[mechanism].hash, key).update(data).digest(),
  );
}

function hash(mechanism: ScramMechanism, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash(SCRAM_MECHANISMS[mechanism].hash).update(data).digest());
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
function unb64(text: string, what: string): Uint8Array {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    throw new SaslError(`Invalid base64 in ${what}`);
  }
}

/** Hi(password, salt, iterations) (RFC 5802): what AlterUserScramCredentials carries. */
export function saltedPassword(
  mechanism: ScramMechanism,
  password: string,
  salt: Uint8Array,
  iterations: number,
): Uint8Array {
  const { hash: h, keyBytes } = SCRAM_MECHANISMS[mechanism];
  return new Uint8Array(pbkdf2Sync(password.normalize("NFKC"), salt, iterations, keyBytes, h));
}

/** The salted credential of `password` (a fresh random salt unless given). */
export function scramCredential(
  mechanism: ScramMechanism,
  password: string,
  iterations = SCRAM_ITERATIONS_DEFAULT,
  salt: Uint8Array = new Uint8Array(randomBytes(32)),
): ScramCredential {
  if (
    !Number.isSafeInteger(iterations) || iterations < SCRAM_ITERATIONS_MIN ||
    iterations > SCRAM_ITERATIONS_MAX
  ) {
    throw new RangeError(
      `SCRAM iterations must be ${SCRAM_ITERATIONS_MIN}-${SCRAM_ITERATIONS_MAX}, got ${iterations}`,
    );
  }
  const { hash: h, keyBytes } = SCRAM_MECHANISMS[mechanism];
  const salted = new Uint8Array(
    pbkdf2Sync(password.normalize("NFKC"), salt, iterations, keyBytes, h),
  );
  return credentialFromSaltedPassword(mechanism, salted, salt, iterations);
}

/** The credential from a salted password (AlterUserScramCredentials sends one). */
export function credentialFromSaltedPassword(
  mechanism: ScramMechanism,
  saltedPassword: Uint8Array,
  salt: Uint8Array,
  iterations: number,
): ScramCredential {
  const keys = scramKeys(mechanism, saltedPassword);
  return {
    mechanism,
    salt: b64(salt),
    iterations,
    storedKey: b64(keys.storedKey),
    serverKey: b64(keys.serverKey),
  };
}

/** RFC 5802's keys of a salted password: ClientKey, StoredKey = H(ClientKey), ServerKey. */
export function scramKeys(
  mechanism: ScramMechanism,
  saltedPassword: Uint8Array,
): { clientKey: Uint8Array; storedKey: Uint8Array; serverKey: Uint8Array } {
  const clientKey = hmac(mechanism, saltedPassword, "Client Key");
  return {
    clientKey,
    storedKey: hash(mechanism, clientKey),
    serverKey: hmac(mechanism, saltedPassword, "Server Key"),
  };
}

/** HMAC with the mechanism's hash (signatures over the auth message). */
export function scramHmac(
  mechanism: ScramMechanism,
  key: Uint8Array,
  data: string | Uint8Array,
): Uint8Array {
  return hmac(mechanism, key, data);
}

/** Whether `password` matches the credential (PLAIN checks this way; constant time). */
export function passwordMatches(credential: ScramCredential, password: string): boolean {
  const fresh = scramCredential(
    credential.mechanism,
    password,
    credential.iterations,
    unb64(credential.salt, "stored salt"),
  );
  return safeEqual(unb64(fresh.storedKey, "key"), unb64(credential.storedKey, "stored key"));
}

function safeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** PLAIN (RFC 4616): `[authzid] NUL authcid NUL password`. */
export function parsePlain(message: Uint8Array): { user: string; password: string } {
  const text = new TextDecoder("utf-8", { fatal: false }).decode(message);
  const parts = text.split("\u0000");
  if (parts.length !== 3) throw new SaslError("Malformed PLAIN message");
  const [authzid, user, password] = parts;
  if (user === "" || password === "") throw new SaslError("PLAIN needs a user name and password");
  if (authzid !== "" && authzid !== user) {
    throw new SaslError("PLAIN authorization id must be empty or the user name");
  }
  return { user, password };
}

/** SCRAM's `saslname` escaping (RFC 5802 section 5.1). */
function unescapeName(name: string): string {
  if (/=(?!2C|3D)/.test(name)) throw new SaslError("Invalid escape in SCRAM user name");
  return name.replaceAll("=2C", ",").replaceAll("=3D", "=");
}

function attributes(message: string, what: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(",")) {
    const m = /^([a-zA-Z])=(.*)$/s.exec(part);
    if (!m) throw new SaslError(`Malformed SCRAM ${what}`);
    out.set(m[1], m[2]);
  }
  return out;
}

/**
 * One SCRAM exchange on the server: `first()` takes client-first and answers server-first,
 * then `final()` takes client-final and answers server-final, or throws SaslError.
 */
export class ScramServer {
  readonly mechanism: ScramMechanism;
  readonly #lookup: (user: string) => Promise<ScramCredential | null>;
  readonly #nonce: () => string;
  #state:
    | { step: "first" }
    | {
      step: "final";
      user: string;
      credential: ScramCredential | null;
      clientFirstBare: string;
      serverFirst: string;
      nonce: string;
      gs2Header: string;
    }
    | { step: "done"; user: string } = { step: "first" };

  constructor(
    mechanism: ScramMechanism,
    lookup: (user: string) => Promise<ScramCredential | null>,
    nonce: () => string = () => b64(new Uint8Array(randomBytes(24))),
  ) {
    this.mechanism = mechanism;
    this.#lookup = lookup;
    this.#nonce = nonce;
  }

  /** The authenticated user, once `final` succeeded. */
  get user(): string | null {
    return this.#state.step === "done" ? this.#state.user : null;
  }

  /** The user name the client claimed (for logs; not authenticated yet). */
  get claimedUser(): string | null {
    return this.#state.step === "final" ? this.#state.user : this.user;
  }

  async first(message: Uint8Array): Promise<Uint8Array> {
    if (this.#state.step !== "first") throw new SaslError("Unexpected SCRAM client-first message");
    const text = new TextDecoder().decode(message);
    // gs2-header: "n,," or "y,," (no channel binding); "p=" (binding) is not offered.
    const m = /^([ny]),(a=[^,]*)?,(.*)$/s.exec(text);
    if (!m) {
      throw new SaslError(
        text.startsWith("p=")
          ? "SCRAM channel binding is not supported"
          : "Malformed SCRAM client-first message",
      );
    }
    const gs2Header = text.slice(0, text.length - m[3].length);
    const clientFirstBare = m[3];
    const attrs = attributes(clientFirstBare, "client-first message");
    const user = attrs.get("n");
    const clientNonce = attrs.get("r");
    if (!user || !clientNonce) throw new SaslError("SCRAM client-first lacks a user or nonce");
    if (attrs.has("m")) throw new SaslError("SCRAM extensions are not supported");
    const name = unescapeName(user);
    const credential = await this.#lookup(name);
    // An unknown user gets a made-up salt, so the answer does not tell whether it exists.
    const salt = credential?.salt ?? b64(hash(this.mechanism, new TextEncoder().encode(name)));
    const iterations = credential?.iterations ?? SCRAM_ITERATIONS_DEFAULT;
    const nonce = clientNonce + this.#nonce();
    const serverFirst = `r=${nonce},s=${salt},i=${iterations}`;
    this.#state = {
      step: "final",
      user: name,
      credential,
      clientFirstBare,
      serverFirst,
      nonce,
      gs2Header,
    };
    return new TextEncoder().encode(serverFirst);
  }

  final(message: Uint8Array): Uint8Array {
    const s = this.#state;
    if (s.step !== "final") throw new SaslError("Unexpected SCRAM client-final message");
    const text = new TextDecoder().decode(message);
    const proofAt = text.lastIndexOf(",p=");
    if (proofAt < 0) throw new SaslError("SCRAM client-final lacks a proof");
    const withoutProof = text.slice(0, proofAt);
    const attrs = attributes(text, "client-final message");
    if (attrs.get("c") !== b64(new TextEncoder().encode(s.gs2Header))) {
      throw new SaslError("SCRAM channel binding does not match the client-first message");
    }
    // Kafka checks that the nonce ends with the server-first nonce, not that it equals it, and
    // librdkafka 2.0 (Debian's, under kcat) sends the client nonce once more in front.
    if (!(attrs.get("r") ?? "").endsWith(s.nonce)) {
      throw new SaslError("SCRAM nonce does not match");
    }
    const proof = unb64(attrs.get("p") ?? "", "SCRAM proof");
    const authMessage = `${s.clientFirstBare},${s.serverFirst},${withoutProof}`;
    const credential = s.credential;
    if (credential === null) throw new SaslError("Authentication failed");
    const storedKey = unb64(credential.storedKey, "stored key");
    const signature = hmac(this.mechanism, storedKey, authMessage);
    if (proof.length !== signature.length) throw new SaslError("Authentication failed");
    const clientKey = xor(proof, signature);
    if (!safeEqual(hash(this.mechanism, clientKey), storedKey)) {
      throw new SaslError("Authentication failed");
    }
    const serverSignature = hmac(
      this.mechanism,
      unb64(credential.serverKey, "server key"),
      authMessage,
    );
    this.#state = { step: "done", user: s.user };
    return new TextEncoder().encode(`v=${b64(serverSignature)}`);
  }
}
