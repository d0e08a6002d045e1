/**
 * Producer ids for idempotent producers, unique across the cluster: each
 * broker reserves blocks of ids from one counter in the MetadataStore (a
 * compare-and-swap, ClusterMetadata.allocateProducerIdBlock) and hands them
 * out from memory, like Kafka's ProducerIdManager. A broker that restarts
 * abandons the rest of its block; ids are never reused.
 *
 * Epochs follow KIP-360 for a producer without a transactional id: a request
 * naming its current id and epoch gets the same id with the epoch bumped,
 * which fences the producer's older in-flight batches and lets it restart
 * its sequences at 0; once the epoch is exhausted, a new id with epoch 0.
 *
 * Holds no durable state of its own. Must not import lib/server or lib/cli.
 */
import type { ClusterMetadata } from "../metadata/cluster_metadata.ts";

/** Ids reserved per MetadataStore round trip (Kafka's ProducerIdsBlock size). */
export const PRODUCER_ID_BLOCK_SIZE = 1000;
/**
 * Epochs from here on count as exhausted: a bump starts a new producer id
 * (Kafka's TransactionMetadata.isEpochExhausted: Short.MaxValue - 1).
 */
export const PRODUCER_EPOCH_EXHAUSTED = 32_766;
/** Largest producer id handed out: ids travel as int64 but must stay exact numbers. */
export const PRODUCER_ID_MAX = Number.MAX_SAFE_INTEGER;
/** Block reservations one caller waits through before giving up (others drained each block). */
export const PRODUCER_ID_REFILLS_MAX = 8;

/** Retriable: concurrent callers drained every block this caller waited for. */
export class ProducerIdsExhaustedError extends Error {
  override name = "ProducerIdsExhaustedError";
}

export interface ProducerIdAndEpoch {
  producerId: number;
  producerEpoch: number;
}

export class ProducerIdManager {
  readonly #metadata: Pick<ClusterMetadata, "allocateProducerIdBlock">;
  readonly #blockSize: number;
  #next = 0;
  #end = 0;
  /** The block reservation in flight, shared by every caller waiting for an id. */
  #refill: Promise<void> | null = null;

  constructor(deps: {
    metadata: Pick<ClusterMetadata, "allocateProducerIdBlock">;
    blockSize?: number;
  }) {
    const blockSize = deps.blockSize ?? PRODUCER_ID_BLOCK_SIZE;
    if (!Number.isSafeInteger(blockSize) || blockSize < 1) {
      throw new RangeError(`Producer id block size must be a positive integer, got ${blockSize}`);
    }
    this.#metadata = deps.metadata;
    this.#blockSize = blockSize;
  }

  /** A producer id no broker has handed out before. Throws the store's error when it fails. */
  async nextProducerId(): Promise<number> {
    for (let refill = 0; refill <= PRODUCER_ID_REFILLS_MAX; refill++) {
      if (this.#next < this.#end) return this.#next++;
      if (refill === PRODUCER_ID_REFILLS_MAX) break;
      this.#refill ??= this.#reserveBlock().finally(() => {
        this.#refill = null;
      });
      await this.#refill;
    }
    throw new ProducerIdsExhaustedError(
      `Producer ids ran out ${PRODUCER_ID_REFILLS_MAX} times while waiting: too many ` +
        "InitProducerId requests at once; retry",
    );
  }

  /**
   * InitProducerId for a producer without a transactional id: a new id with
   * epoch 0, or, given the producer's current id and epoch (v3+, KIP-360),
   * the same id with the next epoch.
   */
  async initProducerId(current: ProducerIdAndEpoch | null): Promise<ProducerIdAndEpoch> {
    if (current !== null && current.producerEpoch < PRODUCER_EPOCH_EXHAUSTED) {
      return { producerId: current.producerId, producerEpoch: current.producerEpoch + 1 };
    }
    return { producerId: await this.nextProducerId(), producerEpoch: 0 };
  }

  async #reserveBlock(): Promise<void> {
    const start = await this.#metadata.allocateProducerIdBlock(this.#blockSize);
    const end = start + this.#blockSize;
    if (!Number.isSafeInteger(end) || end > PRODUCER_ID_MAX) {
      throw new Error(
        `Broken invariant: the producer id counter reached ${start}, beyond ${PRODUCER_ID_MAX}`,
      );
    }
    this.#next = start;
    this.#end = end;
  }
}
