/**
 * Draining (DrainPartitions, and `serve` on SIGTERM): hand this broker's partitions to the
 * other brokers at once, without waiting for a lease to expire.
 *
 * With another live broker to take over, a drain
 * 1. marks the partitions as leaving, here (`GuardedLogManager` refuses to acquire them again,
 *    so a client with old metadata gets NOT_LEADER_OR_FOLLOWER instead of pulling the partition
 *    back) and in the metadata store (`draining/<id>` on the session lease: Metadata gives
 *    partitions nobody owns to brokers that are not draining them, lib/broker/partition_leaders.ts);
 * 2. releases each owned partition (`LogManager.releasePartition`: new appends are refused with
 *    NOT_LEADER_OR_FOLLOWER, what is pending is flushed and acknowledged, the owner key is
 *    deleted), so the next request on another broker acquires it with a new epoch;
 * 3. reports what was released by the deadline (`drained`) and what was not (`pending`; the
 *    releases go on after the answer).
 *
 * With no other broker (the embedded single-host mode, or the last broker of a cluster) there is
 * nothing to move to: the drain flushes everything pending and reports, and the broker keeps
 * serving. A drain lasts until the broker stops; nothing undoes it.
 */
import { LogError, LogManager, type PartitionLog } from "../log/log_manager.ts";
import type { ClusterMetadata, TopicPartitionRef } from "../metadata/cluster_metadata.ts";
import type { Logger } from "../util/logger.ts";
import { mapBounded } from "../log/bounded.ts";
import { ControlError, GRPC_STATUS } from "./control_error.ts";

/** Releases in flight at once. */
export const RELEASE_CONCURRENCY = 16;
/** Passes over the owned partitions in one drain (a pass catches loads that were in flight). */
export const DRAIN_PASSES_MAX = 5;

/** A LogManager that refuses to acquire the partitions a drain is handing over. */
export class GuardedLogManager extends LogManager {
  #refuse: ((topic: string, partition: number) => boolean) | null = null;

  /** Installs the check `partition()` runs before acquiring a partition it has not loaded. */
  setAcquireGuard(refuse: (topic: string, partition: number) => boolean): void {
    this.#refuse = refuse;
  }

  override partition(topic: string, partition: number): Promise<PartitionLog> {
    if (this.#refuse?.(topic, partition) && !this.loadedPartition(topic, partition)) {
      return Promise.reject(
        LogError.notLeader(
          `Partition "${topic}-${partition}" is draining to another broker; refresh metadata and retry`,
        ),
      );
    }
    return super.partition(topic, partition);
  }
}

export interface DrainRequest {
  /** null: every partition this broker owns. */
  partitions: TopicPartitionRef[] | null;
  deadlineMs: number;
  reason: string;
}

export interface DrainResult {
  drained: TopicPartitionRef[];
  pending: TopicPartitionRef[];
  /** False when there was no other broker to move to (flushed only). */
  moved: boolean;
}

export interface PartitionDrainerDeps {
  logs: LogManager;
  metadata: ClusterMetadata;
  brokerId: number;
  logger: Logger;
}

const keyOf = (topic: string, partition: number) => `${topic}/${partition}`;

export class PartitionDrainer {
  readonly #deps: PartitionDrainerDeps;
  #all = false;
  /** Partitions named by a drain ("topic/partition"). */
  readonly #named = new Map<string, TopicPartitionRef>();
  /** Partitions whose release is in flight. */
  readonly #releasing = new Set<string>();
  /** Stops the watch that publishes the drain marker again after a lease loss. */
  #unwatchMarker: (() => void) | null = null;
  #stopped = false;

  constructor(deps: PartitionDrainerDeps) {
    this.#deps = deps;
  }

  /** Whether a drain covers the partition (it must not be acquired here again). */
  refuses(topic: string, partition: number): boolean {
    // Asked for every partition of every request: no key is built while nothing drains.
    return this.#all || (this.#named.size > 0 && this.#named.has(keyOf(topic, partition)));
  }

  /** Whether the partition's release is in flight. */
  isReleasing(topic: string, partition: number): boolean {
    return this.#releasing.has(keyOf(topic, partition));
  }

  get drainingAll(): boolean {
    return this.#all;
  }

  async drain(request: DrainRequest): Promise<DrainResult> {
    const { logs, logger, brokerId } = this.#deps;
    const started = performance.now();
    const left = () => Math.max(0, request.deadlineMs - (performance.now() - started));
    if (!(await beforeDeadline(this.#anotherBroker(), left(), "list the brokers"))) {
      // Nothing to move to: flush, report, keep serving.
      await withDeadline(logs.flushPending(), left());
      const flushed = request.partitions ?? logs.loadedPartitions().map(refOf);
      const pending = flushed.filter((p) => {
        const log = logs.loadedPartition(p.topic, p.partition);
        return log !== undefined && log.highWatermark < log.logEndOffset;
      });
      const pendingKeys = new Set(pending.map((p) => keyOf(p.topic, p.partition)));
      logger.info("Drain: no other broker to move partitions to; flushed", {
        reason: request.reason,
        partitions: flushed.length,
      });
      return {
        drained: flushed.filter((p) => !pendingKeys.has(keyOf(p.topic, p.partition))),
        pending,
        moved: false,
      };
    }
    if (request.partitions === null) this.#all = true;
    for (const p of request.partitions ?? []) this.#named.set(keyOf(p.topic, p.partition), p);
    await beforeDeadline(this.#publish(), left(), "publish the drain marker");
    logger.info("Draining partitions", {
      reason: request.reason,
      partitions: request.partitions === null ? "all" : request.partitions.length,
    });

    const drained = new Map<string, TopicPartitionRef>();
    const failed = new Map<string, TopicPartitionRef>();
    const work = this.#releaseAll(request.partitions, drained, failed);
    await withDeadline(work, left());
    const targets = request.partitions ??
      [...(await beforeDeadline(this.#owned(), Math.max(left(), 1_000), "list owned partitions"))
        .values()];
    const pending = [...failed.values(), ...targets].filter((p) =>
      !drained.has(keyOf(p.topic, p.partition))
    );
    const unique = new Map(pending.map((p) => [keyOf(p.topic, p.partition), p]));
    logger.info("Drain answered", {
      reason: request.reason,
      drained: drained.size,
      pending: unique.size,
      ms: Math.round(performance.now() - started),
      broker: brokerId,
    });
    return { drained: [...drained.values()], pending: [...unique.values()], moved: true };
  }

  /** Releases the targets, pass after pass, until none is owned here or the passes run out. */
  async #releaseAll(
    named: TopicPartitionRef[] | null,
    drained: Map<string, TopicPartitionRef>,
    failed: Map<string, TopicPartitionRef>,
  ): Promise<void> {
    for (let pass = 0; pass < DRAIN_PASSES_MAX; pass++) {
      const owned = await this.#owned();
      const targets = named === null
        ? [...owned.values()]
        : named.filter((p) => owned.has(keyOf(p.topic, p.partition)));
      if (named !== null) {
        // Named partitions this broker does not own have nothing to hand over.
        for (const p of named) {
          if (!owned.has(keyOf(p.topic, p.partition))) drained.set(keyOf(p.topic, p.partition), p);
        }
      }
      if (targets.length === 0) return;
      await mapBounded(targets, RELEASE_CONCURRENCY, async (p) => {
        const key = keyOf(p.topic, p.partition);
        this.#releasing.add(key);
        try {
          await this.#release(p);
          drained.set(key, p);
          failed.delete(key);
        } catch (error) {
          failed.set(key, p);
          this.#deps.logger.warn("Drain: cannot release a partition; retrying", {
            partition: `${p.topic}-${p.partition}`,
            error: error instanceof Error ? error.message : String(error),
          });
        } finally {
          this.#releasing.delete(key);
        }
      });
    }
  }

  async #release(p: TopicPartitionRef): Promise<void> {
    const { logs, metadata, brokerId } = this.#deps;
    if (await logs.releasePartition(p.topic, p.partition)) return;
    // Owned in the store but not loaded here (a load failed after acquiring): drop the key.
    const owner = await metadata.getPartitionOwner(p.topic, p.partition);
    if (owner && owner.brokerId === brokerId) {
      await metadata.releasePartition(p.topic, p.partition, owner);
    }
  }

  /** Partitions this broker owns: loaded here or recorded as its in the store. */
  async #owned(): Promise<Map<string, TopicPartitionRef>> {
    const { logs, metadata, brokerId } = this.#deps;
    const out = new Map<string, TopicPartitionRef>();
    for (const log of logs.loadedPartitions()) out.set(keyOf(log.topic, log.partition), refOf(log));
    for (const entry of await metadata.listPartitionOwnerEntries()) {
      if (entry.owner?.brokerId === brokerId) {
        out.set(keyOf(entry.topic, entry.partition), {
          topic: entry.topic,
          partition: entry.partition,
        });
      }
    }
    return out;
  }

  /** Whether a registered broker other than this one is not draining everything. */
  async #anotherBroker(): Promise<boolean> {
    const { metadata, brokerId } = this.#deps;
    const [brokers, drains] = await Promise.all([
      metadata.listBrokers(),
      metadata.listBrokerDrains(),
    ]);
    const leaving = new Set(drains.filter((d) => d.all).map((d) => d.brokerId));
    return brokers.some((b) => b.brokerId !== brokerId && !leaving.has(b.brokerId));
  }

  /** Stops keeping the drain marker (the broker is stopping). */
  stop(): void {
    this.#stopped = true;
    this.#unwatchMarker?.();
    this.#unwatchMarker = null;
  }

  async #publish(): Promise<void> {
    const { logs, metadata, brokerId, logger } = this.#deps;
    // The marker hangs on the session lease: if the lease is lost, publish it on the new one,
    // or Metadata would send clients to a broker that refuses the partitions.
    this.#unwatchMarker ??= metadata.watchBrokerDrainLease(brokerId, () => {
      if (this.#stopped) return;
      this.#publish().catch((error) =>
        logger.warn("Cannot publish the drain marker again", { error: String(error) })
      );
    });
    await metadata.putBrokerDrain(
      { brokerId, all: this.#all, partitions: this.#all ? [] : [...this.#named.values()] },
      await logs.sessionLease(),
    );
  }
}

function refOf(log: { topic: string; partition: number }): TopicPartitionRef {
  return { topic: log.topic, partition: log.partition };
}

/** `work`'s result, or a rejection naming `what` when the deadline passes first. */
async function beforeDeadline<T>(work: Promise<T>, deadlineMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new ControlError(
                GRPC_STATUS.UNAVAILABLE,
                `Drain: the metadata store did not answer in time to ${what}`,
              ),
            ),
          deadlineMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for `work` or the deadline, whichever comes first; `work` goes on either way. */
async function withDeadline(work: Promise<unknown>, deadlineMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      work.catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, deadlineMs)))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
