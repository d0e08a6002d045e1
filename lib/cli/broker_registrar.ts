/**
 * Keeps this broker's registration (`brokers/<id>`: its advertised address) in the metadata
 * store, on the log manager's session lease: other brokers sharing the store read it to send
 * clients here (Metadata), and it disappears with this broker's partition ownerships when the
 * lease ends (SIGKILL, lease expiry, graceful stop).
 *
 * When the log manager replaces a lost lease, the registration is written again on the new one.
 * Checked every `checkIntervalMs` on the injected clock; nothing else polls the store.
 */
import type { Clock, TimerHandle } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import type { BrokerRegistration, ClusterMetadata } from "../metadata/cluster_metadata.ts";

/** What the registrar needs from the log manager. */
export interface SessionLeaseSource {
  /** The current session lease id; 0 while there is none. */
  readonly leaseId: number;
}

export interface BrokerRegistrarDeps {
  metadata: ClusterMetadata;
  session: SessionLeaseSource;
  clock: Clock;
  logger: Logger;
  registration: BrokerRegistration;
  checkIntervalMs: number;
}

export class BrokerRegistrar {
  readonly #deps: BrokerRegistrarDeps;
  /** The lease the registration was last written on (0: none). */
  #registeredLease = 0;
  #timer: TimerHandle | null = null;
  #inFlight: Promise<void> | null = null;
  #stopped = false;

  constructor(deps: BrokerRegistrarDeps) {
    if (!(deps.checkIntervalMs > 0)) {
      throw new RangeError(`checkIntervalMs must be positive, got ${deps.checkIntervalMs}`);
    }
    this.#deps = deps;
  }

  /** The lease the registration is on (0: not registered). */
  get registeredLease(): number {
    return this.#registeredLease;
  }

  /** Registers on the current lease (rejects when the store refuses), then keeps it current. */
  async start(): Promise<void> {
    const leaseId = this.#deps.session.leaseId;
    if (leaseId === 0) throw new Error("The broker has no session lease to register on");
    await this.#deps.metadata.registerBroker(this.#deps.registration, leaseId);
    this.#registeredLease = leaseId;
    this.#schedule();
  }

  /** Stops checking; the registration stays until its lease ends. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = null;
    await this.#inFlight;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#deps.clock.setTimeout(() => {
      this.#timer = null;
      this.#inFlight = this.#check().finally(() => {
        this.#inFlight = null;
        this.#schedule();
      });
    }, this.#deps.checkIntervalMs);
  }

  async #check(): Promise<void> {
    // 0: the lease was lost; the log manager grants a new one on the next partition load.
    const leaseId = this.#deps.session.leaseId;
    if (leaseId === 0 || leaseId === this.#registeredLease) return;
    try {
      await this.#deps.metadata.registerBroker(this.#deps.registration, leaseId);
      this.#registeredLease = leaseId;
      this.#deps.logger.info("Registered the broker on its new session lease", {
        node: this.#deps.registration.brokerId,
        leaseId,
      });
    } catch (err) {
      this.#deps.logger.warn("Cannot register the broker; retrying", { err: String(err) });
    }
  }
}
