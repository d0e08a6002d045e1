/**
 * Takes over released partitions at once. Partitions are otherwise acquired on a client's first
 * request; after a drain (or a clean stop, or an expired lease) that would leave a partition
 * unowned until a client asks for it. This broker watches the owner keys (the metadata store's
 * watch, no polling) and, when one is deleted, acquires the partition if Metadata would name
 * this broker for it (lib/broker/partition_leaders.ts: not draining, picked by the hash), so the
 * hand-over completes without waiting for traffic and every broker agrees on who takes what.
 */
import type { Broker } from "../broker/broker.ts";
import { partitionLeaders } from "../broker/partition_leaders.ts";
import type { LogManager } from "../log/log_manager.ts";
import type { ClusterMetadata } from "../metadata/cluster_metadata.ts";
import type { Logger } from "../util/logger.ts";
import type { PartitionDrainer } from "./partition_drain.ts";

/** Releases arriving within this window are looked up together (a drain releases many). */
export const TAKEOVER_BATCH_MS = 20;
/** Released partitions held for the next batch. */
export const TAKEOVER_QUEUE_MAX = 100_000;

export interface EagerTakeoverDeps {
  broker: Broker;
  logs: LogManager;
  metadata: ClusterMetadata;
  drainer: PartitionDrainer;
  logger: Logger;
}

export class EagerTakeover {
  readonly #deps: EagerTakeoverDeps;
  /** Released partitions by topic. */
  #queue = new Map<string, Set<number>>();
  #queued = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #running: Promise<void> = Promise.resolve();
  #unwatch: (() => void) | null = null;

  constructor(deps: EagerTakeoverDeps) {
    this.#deps = deps;
  }

  start(): void {
    this.#unwatch = this.#deps.metadata.watchPartitionOwners((event) => {
      if (event.owner !== null || this.#queued >= TAKEOVER_QUEUE_MAX) return;
      if (!this.#queue.has(event.topic)) this.#queue.set(event.topic, new Set());
      this.#queue.get(event.topic)!.add(event.partition);
      this.#queued++;
      this.#timer ??= setTimeout(() => {
        this.#timer = null;
        this.#running = this.#running.then(() => this.#takeOver());
      }, TAKEOVER_BATCH_MS);
    });
  }

  async stop(): Promise<void> {
    this.#unwatch?.();
    this.#unwatch = null;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#queue.clear();
    await this.#running;
  }

  async #takeOver(): Promise<void> {
    const { broker, logs, metadata, drainer, logger } = this.#deps;
    const batch = this.#queue;
    this.#queue = new Map();
    this.#queued = 0;
    if (this.#unwatch === null || drainer.drainingAll) return;
    for (const [topic, partitions] of batch) {
      try {
        const record = await metadata.getTopic(topic);
        if (!record || record.state !== "active") continue;
        const leaders = await partitionLeaders(broker, [record]);
        const mine = [...partitions].filter((p) =>
          p < record.partitions && !drainer.refuses(topic, p) &&
          leaders.leaderOf(topic, p) === broker.settings.nodeId &&
          !logs.loadedPartition(topic, p)
        );
        // Each acquisition is independent: one that loses a race to a client elsewhere is fine.
        await Promise.allSettled(mine.map((p) => logs.partition(topic, p)));
      } catch (error) {
        logger.debug("Takeover lookup failed; clients will acquire on their next request", {
          topic,
          error: String(error),
        });
      }
    }
  }
}
