/**
 * A connection's SASL exchange (SaslHandshake picks the mechanism, SaslAuthenticate runs it) and
 * the login checks every SASL handler shares: credential lookup in the metadata store, the
 * failed-login delay per source address, and the log lines (never with a secret).
 */
import {
  passwordMatches,
  type SaslMechanism,
  type ScramCredential,
  type ScramServer,
} from "../security/scram.ts";
import type { ConnectionSecurity } from "../server/connection.ts";
import type { Broker } from "./broker.ts";
import { INTER_BROKER_USER } from "./inter_broker.ts";

export interface SaslState {
  mechanism: SaslMechanism;
  scram: ScramServer | null;
  /** Set after a failed login: the connection is closed on its next request. */
  failed: boolean;
}

export function saslStateOf(security: ConnectionSecurity): SaslState | null {
  return (security.sasl as SaslState | null) ?? null;
}

/** The SASL mechanisms the broker enables (`--sasl-enabled-mechanisms`). */
export function enabledMechanisms(broker: Broker): SaslMechanism[] {
  return (broker.settings.saslMechanisms ?? []) as SaslMechanism[];
}

/** A user's credential for a SCRAM mechanism (the brokers' own user's from their secret). */
export function scramLookup(broker: Broker, mechanism: "SCRAM-SHA-256" | "SCRAM-SHA-512") {
  return async (user: string): Promise<ScramCredential | null> =>
    user === INTER_BROKER_USER
      ? await broker.interBrokerCredential(mechanism)
      : await broker.metadata.getScramCredential(user, mechanism);
}

/** PLAIN: the password checked against the user's SCRAM-SHA-512 or SCRAM-SHA-256 credential. */
export async function plainLogin(broker: Broker, user: string, password: string): Promise<boolean> {
  if (user === INTER_BROKER_USER) {
    return passwordMatches(await broker.interBrokerCredential("SCRAM-SHA-512"), password);
  }
  for (const mechanism of ["SCRAM-SHA-512", "SCRAM-SHA-256"] as const) {
    const credential = await broker.metadata.getScramCredential(user, mechanism);
    if (credential) return passwordMatches(credential, password);
  }
  return false;
}

/** Window over which failed logins count, and bounds on the delay they earn. */
const FAILURE_WINDOW_MS = 60_000;
const FAILURE_DELAY_STEP_MS = 100;
const FAILURE_DELAY_MAX_MS = 5_000;
const FAILURE_HOSTS_MAX = 10_000;

function hostOf(address: string): string {
  const i = address.lastIndexOf(":");
  return i < 0 ? address : address.slice(0, i);
}

/**
 * Failed logins per source host (one per broker). Each failure waits before it is answered:
 * 100 ms per failure from that host in the last minute, at most 5 s (Kafka delays failed logins
 * too, connection.failed.authentication.delay.ms), which slows password guessing down. At most
 * FAILURE_HOSTS_MAX hosts are remembered.
 */
export class FailedLogins {
  readonly #hosts = new Map<string, { count: number; sinceMs: number }>();

  /** Records a failed login from `address`; resolves when its answer may be sent. */
  async delay(address: string, nowMs: number): Promise<void> {
    const host = hostOf(address);
    let f = this.#hosts.get(host);
    if (!f || nowMs - f.sinceMs > FAILURE_WINDOW_MS) {
      if (this.#hosts.size >= FAILURE_HOSTS_MAX) {
        this.#hosts.delete(this.#hosts.keys().next().value!);
      }
      f = { count: 0, sinceMs: nowMs };
      this.#hosts.set(host, f);
    }
    f.count++;
    const delay = Math.min(FAILURE_DELAY_MAX_MS, f.count * FAILURE_DELAY_STEP_MS);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
