/**
 * The client side of SASL over a Kafka connection: SaslHandshake v1, then SaslAuthenticate
 * with PLAIN (RFC 4616) or SCRAM-SHA-256/512 (RFC 5802/7677, checking the server's final
 * signature, so a broker that does not know the password cannot pretend it does).
 */
import { randomBytes } from "node:crypto";
import { saltedPassword, scramHmac, scramKeys, type ScramMechanism } from "../security/scram.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

export class SaslClientError extends Error {
  override name = "SaslClientError";
}

/** SCRAM's client: `first()`, then `final(serverFirst)`, then `verify(serverFinal)`. */
export class ScramClient {
  readonly #mechanism: ScramMechanism;
  readonly #user: string;
  readonly #password: string;
  readonly #bare: string;
  #expectedServerSignature = "";

  constructor(mechanism: ScramMechanism, user: string, password: string, nonce?: string) {
    this.#mechanism = mechanism;
    this.#user = user;
    this.#password = password;
    const escaped = user.replace(/=/g, "=3D").replace(/,/g, "=2C");
    this.#bare = `n=${escaped},r=${nonce ?? b64(new Uint8Array(randomBytes(18)))}`;
  }

  first(): Uint8Array {
    return enc.encode(`n,,${this.#bare}`);
  }

  final(serverFirstBytes: Uint8Array): Uint8Array {
    const serverFirst = dec.decode(serverFirstBytes);
    const attrs = new Map(
      serverFirst.split(",").map((p) => [p[0], p.slice(2)] as [string, string]),
    );
    const nonce = attrs.get("r");
    const salt = attrs.get("s");
    const iterations = Number(attrs.get("i"));
    const clientNonce = this.#bare.slice(this.#bare.indexOf(",r=") + 3);
    if (!nonce || !nonce.startsWith(clientNonce) || !salt || !Number.isSafeInteger(iterations)) {
      throw new SaslClientError(`Malformed SCRAM server-first message: "${serverFirst}"`);
    }
    const salted = saltedPassword(this.#mechanism, this.#password, unb64(salt), iterations);
    const { clientKey, storedKey, serverKey } = scramKeys(this.#mechanism, salted);
    const withoutProof = `c=biws,r=${nonce}`;
    const auth = `${this.#bare},${serverFirst},${withoutProof}`;
    const signature = scramHmac(this.#mechanism, storedKey, auth);
    const proof = clientKey.map((b, i) => b ^ signature[i]);
    this.#expectedServerSignature = b64(scramHmac(this.#mechanism, serverKey, auth));
    return enc.encode(`${withoutProof},p=${b64(proof)}`);
  }

  /** Throws unless the server's final message proves it knows the credential. */
  verify(serverFinalBytes: Uint8Array): void {
    const serverFinal = dec.decode(serverFinalBytes);
    if (serverFinal !== `v=${this.#expectedServerSignature}`) {
      throw new SaslClientError(
        `The broker's SCRAM signature does not match (got "${serverFinal}"): it does not know ` +
          `the credential of "${this.#user}"`,
      );
    }
  }
}

/** PLAIN's single message: `NUL user NUL password`. */
export function plainMessage(user: string, password: string): Uint8Array {
  return enc.encode(`\u0000${user}\u0000${password}`);
}
