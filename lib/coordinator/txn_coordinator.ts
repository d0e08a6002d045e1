/**
 * The transaction coordinator (KIP-98, KIP-447): one record per transactional id in the
 * MetadataStore (not an internal topic), changed only by compare-and-swap on its revision, so
 * brokers sharing a store never apply two transitions from the same state, and the state
 * survives coordinator moves and restarts.
 *
 * States, as Kafka names them: Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit,
 * CompleteAbort (Dead is never stored: a record is deleted instead).
 *
 * - InitProducerId gives the id its producer id (new) or the next epoch, which fences every
 *   older instance (PRODUCER_FENCED). A transaction the previous instance left Ongoing is
 *   aborted first, one left in a Prepare state is completed first.
 * - AddPartitionsToTxn / AddOffsetsToTxn move the record to Ongoing and add partitions or
 *   groups; a Prepare state answers CONCURRENT_TRANSACTIONS (retriable).
 * - EndTxn stores the decision (PrepareCommit/PrepareAbort, with a new decision number) before
 *   anything else: from then on the transaction WILL end that way. Completion writes a COMMIT
 *   or ABORT marker to every partition (the marker writer; each marker carries the decision
 *   number, so a partition never applies a decision twice), applies or drops the transaction's
 *   offsets of every group, then stores CompleteCommit/CompleteAbort. Each step is idempotent;
 *   a failed or interrupted completion is finished by the next request for the id or by the
 *   background check (here or on the broker that coordinates the id after a failover).
 * - The background check also aborts transactions Ongoing for longer than their timeout,
 *   bumping the epoch so the timed-out producer is fenced.
 *
 * Must not import lib/broker, lib/server or lib/cli.
 */
import type { Clock, TimerHandle } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import type { Metrics } from "../util/metrics.ts";
import type { ClusterMetadata, TopicPartitionRef } from "../metadata/cluster_metadata.ts";
import { MetadataStoreError } from "../metadata/metadata_store.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";

export const TXN_STATES = [
  "Empty",
  "Ongoing",
  "PrepareCommit",
  "PrepareAbort",
  "CompleteCommit",
  "CompleteAbort",
  "Dead",
] as const;
export type TxnStateName = (typeof TXN_STATES)[number];

/** The stored record of one transactional id. */
export interface TxnRecord {
  producerId: number;
  producerEpoch: number;
  /** The id and epoch before the last bump (a producer retrying InitProducerId, KIP-360). */
  lastProducerId: number;
  lastProducerEpoch: number;
  timeoutMs: number;
  state: TxnStateName;
  /** [topic, partition] of the transaction, sorted. */
  partitions: [string, number][];
  groups: string[];
  /** When the transaction became Ongoing (unix ms), -1 when none is. */
  startMs: number;
  updateMs: number;
  /** Bumped by every decision (Prepare state); the markers' coordinator epoch. */
  decision: number;
}

/** Writes one decision's markers; rejects when any partition could not be written. */
export interface MarkerWriter {
  writeMarkers(marker: {
    producerId: number;
    producerEpoch: number;
    commit: boolean;
    decision: number;
    partitions: TopicPartitionRef[];
  }): Promise<void>;
}

export interface TxnCoordinatorConfig {
  /** Kafka's transaction.max.timeout.ms. */
  maxTimeoutMs: number;
  /** How often timed-out and unfinished transactions are looked for (Kafka: 10 s). */
  checkIntervalMs: number;
  /**
   * Idle time after which a transactional id with no transaction open is forgotten (Kafka's
   * transactional.id.expiration.ms, 7 days); its next producer starts with a new producer id.
   */
  idExpirationMs: number;
}

export const DEFAULT_TXN_COORDINATOR_CONFIG: Readonly<TxnCoordinatorConfig> = Object.freeze({
  maxTimeoutMs: 900_000,
  checkIntervalMs: 2_000,
  idExpirationMs: 604_800_000,
});

/** Epochs from here count as exhausted (Kafka's Short.MaxValue - 1, as lib/broker/producer_ids.ts). */
const PRODUCER_EPOCH_EXHAUSTED = 32_766;

/** Where new producer ids come from (lib/broker/producer_ids.ts). */
export interface ProducerIdSource {
  nextProducerId(): Promise<number>;
}

/** CAS rounds one request goes through before answering a retriable error. */
const CAS_ROUNDS_MAX = 8;

export interface InitResult {
  errorCode: number;
  producerId: number;
  producerEpoch: number;
}

export interface EndResult {
  errorCode: number;
  /** The producer id and epoch for the next transaction (EndTxn v5 answers them). */
  producerId: number;
  producerEpoch: number;
}

export interface TxnDescription {
  transactionalId: string;
  record: TxnRecord;
}

/** A request's view of the producer: its id and epoch as it sent them. */
export interface TxnProducer {
  transactionalId: string;
  producerId: number;
  producerEpoch: number;
}

class Retry extends Error {}

export class TransactionCoordinator {
  readonly #metadata: ClusterMetadata;
  readonly #producerIds: ProducerIdSource;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #metrics: Metrics | null;
  readonly #markers: MarkerWriter;
  readonly #config: TxnCoordinatorConfig;
  /** Whether this broker drives the background check for an id (distributed placement). */
  readonly #isCoordinatorFor: (transactionalId: string, brokers: number[]) => boolean;
  readonly #listBrokerIds: () => Promise<number[]>;
  /** Per-id queue: one transition at a time per id in this process. */
  readonly #queues = new Map<string, Promise<unknown>>();
  #timer: TimerHandle | null = null;
  #checking: Promise<void> | null = null;
  #stopped = false;

  constructor(deps: {
    metadata: ClusterMetadata;
    producerIds: ProducerIdSource;
    clock: Clock;
    logger: Logger;
    metrics?: Metrics;
    markers: MarkerWriter;
    config?: Partial<TxnCoordinatorConfig>;
    /** Defaults: every id is this broker's. */
    isCoordinatorFor?: (transactionalId: string, brokers: number[]) => boolean;
    listBrokerIds?: () => Promise<number[]>;
  }) {
    this.#metadata = deps.metadata;
    this.#producerIds = deps.producerIds;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#metrics = deps.metrics ?? null;
    this.#markers = deps.markers;
    this.#config = { ...DEFAULT_TXN_COORDINATOR_CONFIG, ...deps.config };
    this.#isCoordinatorFor = deps.isCoordinatorFor ?? (() => true);
    this.#listBrokerIds = deps.listBrokerIds ?? (() => Promise.resolve([]));
  }

  get config(): Readonly<TxnCoordinatorConfig> {
    return this.#config;
  }

  /** Starts the background check (timeouts, unfinished completions). */
  start(): void {
    if (this.#timer || this.#stopped) return;
    const tick = () => {
      this.#timer = null;
      if (this.#stopped) return;
      this.#checking = this.checkTransactions().catch((err) => {
        this.#logger.warn("Transaction check failed; tried again later", { err: String(err) });
      }).finally(() => {
        this.#checking = null;
        if (!this.#stopped) {
          this.#timer = this.#clock.setTimeout(tick, this.#config.checkIntervalMs);
        }
      });
    };
    this.#timer = this.#clock.setTimeout(tick, this.#config.checkIntervalMs);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = null;
    await this.#checking;
    await Promise.allSettled([...this.#queues.values()]);
  }

  // ---- requests -------------------------------------------------------------

  /** InitProducerId with a transactional id. */
  initProducerId(
    transactionalId: string,
    timeoutMs: number,
    current: { producerId: number; producerEpoch: number } | null,
  ): Promise<InitResult> {
    const fail = (errorCode: number): InitResult => ({
      errorCode,
      producerId: -1,
      producerEpoch: -1,
    });
    if (!transactionalId) return Promise.resolve(fail(ERROR_CODES.INVALID_REQUEST));
    if (
      !Number.isSafeInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > this.#config.maxTimeoutMs
    ) {
      return Promise.resolve(fail(ERROR_CODES.INVALID_TRANSACTION_TIMEOUT));
    }
    return this.#serial(transactionalId, async () => {
      // Set once this request has aborted or completed a transaction itself: from then on the
      // record carries the epoch it bumped, not the producer's.
      let changedByUs = false;
      for (let round = 0; round < CAS_ROUNDS_MAX; round++) {
        try {
          const loaded = await this.#load(transactionalId);
          const now = this.#clock.now();
          if (!loaded) {
            const producerId = await this.#producerIds.nextProducerId();
            const record: TxnRecord = {
              producerId,
              producerEpoch: 0,
              lastProducerId: -1,
              lastProducerEpoch: -1,
              timeoutMs,
              state: "Empty",
              partitions: [],
              groups: [],
              startMs: -1,
              updateMs: now,
              decision: 0,
            };
            await this.#store(transactionalId, record, 0);
            this.#count("init");
            return { errorCode: ERROR_CODES.NONE, producerId, producerEpoch: 0 };
          }
          const { record, revision } = loaded;
          // The producer's own id and epoch (KIP-360) are checked until this request changes
          // anything itself (another writer's change is checked again).
          if (!changedByUs && current && current.producerId >= 0) {
            const isCurrent = current.producerId === record.producerId &&
              current.producerEpoch === record.producerEpoch;
            const isLast = current.producerId === record.lastProducerId &&
              current.producerEpoch === record.lastProducerEpoch;
            if (isLast && record.state === "Empty") {
              // A retry of the InitProducerId that made the current epoch.
              return {
                errorCode: ERROR_CODES.NONE,
                producerId: record.producerId,
                producerEpoch: record.producerEpoch,
              };
            }
            if (!isCurrent) return fail(ERROR_CODES.PRODUCER_FENCED);
          }
          if (record.state === "PrepareCommit" || record.state === "PrepareAbort") {
            await this.#complete(transactionalId, record, revision);
            changedByUs = true;
            continue;
          }
          if (record.state === "Ongoing") {
            // The previous instance's transaction is aborted, with a bumped epoch that fences it.
            await this.#abortOngoing(transactionalId, record, revision, "a new producer instance");
            changedByUs = true;
            continue;
          }
          const bumped = bumpEpoch(record, await this.#maybeNewId(record));
          const next: TxnRecord = {
            ...bumped,
            timeoutMs,
            state: "Empty",
            partitions: [],
            groups: [],
            startMs: -1,
            updateMs: now,
          };
          await this.#store(transactionalId, next, revision);
          this.#count("init");
          return {
            errorCode: ERROR_CODES.NONE,
            producerId: next.producerId,
            producerEpoch: next.producerEpoch,
          };
        } catch (err) {
          if (err instanceof Retry) continue;
          return fail(this.#codeFor(err, "InitProducerId"));
        }
      }
      return fail(ERROR_CODES.CONCURRENT_TRANSACTIONS);
    });
  }

  /**
   * AddPartitionsToTxn (and, with `groups`, AddOffsetsToTxn): one error code for the request.
   * `verifyOnly` (v4, brokers checking a produce) answers whether the partitions are already
   * in the Ongoing transaction of this producer and epoch, changing nothing.
   */
  addToTransaction(
    p: TxnProducer,
    add: { partitions?: TopicPartitionRef[]; groups?: string[]; verifyOnly?: boolean },
  ): Promise<number> {
    return this.#serial(p.transactionalId, async () => {
      for (let round = 0; round < CAS_ROUNDS_MAX; round++) {
        try {
          const loaded = await this.#load(p.transactionalId);
          const check = checkProducer(loaded?.record ?? null, p);
          if (check !== ERROR_CODES.NONE) return check;
          const { record, revision } = loaded!;
          if (record.state === "PrepareCommit" || record.state === "PrepareAbort") {
            // Finish what the last EndTxn decided, then the client's retry goes through.
            await this.#complete(p.transactionalId, record, revision).catch(() => {});
            return ERROR_CODES.CONCURRENT_TRANSACTIONS;
          }
          const partitions = new Set(record.partitions.map(([t, i]) => partitionKey(t, i)));
          const groups = new Set(record.groups);
          const missing = (add.partitions ?? []).filter((x) =>
            !partitions.has(partitionKey(x.topic, x.partition))
          );
          const missingGroups = (add.groups ?? []).filter((g) => !groups.has(g));
          if (add.verifyOnly) {
            return record.state === "Ongoing" && missing.length === 0 &&
                missingGroups.length === 0
              ? ERROR_CODES.NONE
              : ERROR_CODES.INVALID_TXN_STATE;
          }
          if (record.state === "Ongoing" && missing.length === 0 && missingGroups.length === 0) {
            return ERROR_CODES.NONE;
          }
          const now = this.#clock.now();
          const ongoing = record.state === "Ongoing";
          const next: TxnRecord = {
            ...record,
            state: "Ongoing",
            partitions: sortPartitions([
              ...(ongoing ? record.partitions : []),
              ...missing.map((x): [string, number] => [x.topic, x.partition]),
            ]),
            groups: [...(ongoing ? record.groups : []), ...missingGroups].sort(),
            startMs: ongoing ? record.startMs : now,
            updateMs: now,
          };
          if (!ongoing) {
            // A new transaction: partitions of the last one were completed and dropped.
            next.partitions = sortPartitions(
              (add.partitions ?? []).map((x): [string, number] => [x.topic, x.partition]),
            );
            next.groups = [...new Set(add.groups ?? [])].sort();
          }
          await this.#store(p.transactionalId, next, revision);
          return ERROR_CODES.NONE;
        } catch (err) {
          if (err instanceof Retry) continue;
          return this.#codeFor(err, "AddPartitionsToTxn");
        }
      }
      return ERROR_CODES.CONCURRENT_TRANSACTIONS;
    });
  }

  /**
   * EndTxn: stores the decision, then completes it (markers, offsets). With transactions V2
   * (`bumpEpoch`, EndTxn v5, KIP-890 part 2) the decision also bumps the epoch: the markers carry
   * the new one, which fences every late batch of the ended transaction at the partitions, and
   * the answer gives it to the producer for its next transaction (a new producer id once the
   * epoch is exhausted). A retry from the epoch before the bump gets the same answer.
   */
  endTransaction(p: TxnProducer, commit: boolean, bumpEpoch = false): Promise<EndResult> {
    return this.#serial(p.transactionalId, async () => {
      const fail = (errorCode: number): EndResult => ({
        errorCode,
        producerId: -1,
        producerEpoch: -1,
      });
      for (let round = 0; round < CAS_ROUNDS_MAX; round++) {
        try {
          const loaded = await this.#load(p.transactionalId);
          if (!loaded) return fail(ERROR_CODES.INVALID_PRODUCER_ID_MAPPING);
          const { record, revision } = loaded;
          const ok = (r: TxnRecord): EndResult => ({
            errorCode: ERROR_CODES.NONE,
            producerId: r.producerId,
            producerEpoch: r.producerEpoch,
          });
          const matches = (state: TxnStateName) =>
            state === (commit ? "CompleteCommit" : "CompleteAbort") ||
            state === (commit ? "PrepareCommit" : "PrepareAbort");
          const retried = bumpEpoch && p.producerId === record.lastProducerId &&
            p.producerEpoch === record.lastProducerEpoch && matches(record.state);
          if (!retried) {
            const check = checkProducer(record, p);
            if (check !== ERROR_CODES.NONE) return fail(check);
          }
          const ended = record.state === "Empty" || record.state === "CompleteCommit" ||
            record.state === "CompleteAbort";
          if (bumpEpoch && !retried && ended) {
            // V2: no transaction is open at this epoch. Aborting it anyway is allowed (a client
            // whose produces all failed cannot know whether a partition joined): it bumps the
            // epoch and has nothing to mark. Committing it is not.
            if (commit) return fail(ERROR_CODES.INVALID_TXN_STATE);
            const bumped = nextEpoch(record);
            const next: TxnRecord = {
              ...(bumped.producerEpoch >= PRODUCER_EPOCH_EXHAUSTED
                ? {
                  ...bumped,
                  producerId: await this.#producerIds.nextProducerId(),
                  producerEpoch: 0,
                }
                : bumped),
              state: "CompleteAbort",
              partitions: [],
              groups: [],
              startMs: -1,
              updateMs: this.#clock.now(),
            };
            await this.#store(p.transactionalId, next, revision);
            this.#count("empty_abort");
            return ok(next);
          }
          switch (record.state) {
            case "CompleteCommit":
            case "CompleteAbort":
              return matches(record.state) ? ok(record) : fail(ERROR_CODES.INVALID_TXN_STATE);
            case "PrepareCommit":
            case "PrepareAbort": {
              if (!matches(record.state)) return fail(ERROR_CODES.INVALID_TXN_STATE);
              return ok(await this.#complete(p.transactionalId, record, revision));
            }
            case "Ongoing": {
              const decided: TxnRecord = {
                ...(bumpEpoch ? nextEpoch(record) : record),
                state: commit ? "PrepareCommit" : "PrepareAbort",
                decision: record.decision + 1,
                updateMs: this.#clock.now(),
              };
              const rev = await this.#store(p.transactionalId, decided, revision);
              try {
                return ok(await this.#complete(p.transactionalId, decided, rev));
              } catch (err) {
                // The decision is stored: it will be completed (next request, background check).
                this.#logger.warn("Transaction decided but not completed yet; retried", {
                  transactionalId: p.transactionalId,
                  state: decided.state,
                  err: String(err),
                });
                return ok(decided);
              }
            }
            default:
              return fail(ERROR_CODES.INVALID_TXN_STATE);
          }
        } catch (err) {
          if (err instanceof Retry) continue;
          return fail(this.#codeFor(err, "EndTxn"));
        }
      }
      return fail(ERROR_CODES.CONCURRENT_TRANSACTIONS);
    });
  }

  /**
   * Whether a producer may commit offsets in its transaction (TxnOffsetCommit): the id is this
   * producer's at this epoch and the group was added to its Ongoing transaction.
   */
  async checkOffsetCommit(p: TxnProducer, groupId: string): Promise<number> {
    try {
      const loaded = await this.#load(p.transactionalId);
      const check = checkProducer(loaded?.record ?? null, p);
      if (check !== ERROR_CODES.NONE) return check;
      const record = loaded!.record;
      if (record.state !== "Ongoing" || !record.groups.includes(groupId)) {
        return ERROR_CODES.INVALID_TXN_STATE;
      }
      return ERROR_CODES.NONE;
    } catch (err) {
      return this.#codeFor(err, "TxnOffsetCommit");
    }
  }

  /**
   * Whether a transactional produce of `partition` belongs to the producer's Ongoing
   * transaction (KIP-890's verification): a late batch of an ended transaction is refused.
   */
  async verifyPartition(p: TxnProducer, partition: TopicPartitionRef): Promise<number> {
    try {
      const loaded = await this.#load(p.transactionalId);
      if (!loaded) return ERROR_CODES.INVALID_PRODUCER_ID_MAPPING;
      const r = loaded.record;
      if (r.producerId !== p.producerId) return ERROR_CODES.INVALID_PRODUCER_ID_MAPPING;
      if (p.producerEpoch < r.producerEpoch) return ERROR_CODES.INVALID_PRODUCER_EPOCH;
      const key = partitionKey(partition.topic, partition.partition);
      if (r.state !== "Ongoing" || !r.partitions.some(([t, i]) => partitionKey(t, i) === key)) {
        return ERROR_CODES.INVALID_TXN_STATE;
      }
      return ERROR_CODES.NONE;
    } catch (err) {
      return this.#codeFor(err, "Produce");
    }
  }

  async describe(transactionalId: string): Promise<TxnRecord | null> {
    return (await this.#load(transactionalId))?.record ?? null;
  }

  async list(): Promise<TxnDescription[]> {
    return (await this.#metadata.listTransactions()).map((e) => ({
      transactionalId: e.transactionalId,
      record: decodeRecord(e.value),
    }));
  }

  /** Aborts the id's Ongoing transaction now (`kafscale transactions abort`), fencing it. */
  abort(transactionalId: string): Promise<number> {
    return this.#serial(transactionalId, async () => {
      for (let round = 0; round < CAS_ROUNDS_MAX; round++) {
        try {
          const loaded = await this.#load(transactionalId);
          if (!loaded) return ERROR_CODES.TRANSACTIONAL_ID_NOT_FOUND;
          const { record, revision } = loaded;
          if (record.state === "Ongoing") {
            await this.#abortOngoing(transactionalId, record, revision, "an operator");
          } else if (record.state === "PrepareCommit" || record.state === "PrepareAbort") {
            await this.#complete(transactionalId, record, revision);
          }
          return ERROR_CODES.NONE;
        } catch (err) {
          if (err instanceof Retry) continue;
          return this.#codeFor(err, "abort");
        }
      }
      return ERROR_CODES.CONCURRENT_TRANSACTIONS;
    });
  }

  /**
   * One background pass: completes decided transactions and aborts timed-out ones, for the
   * ids this broker coordinates.
   */
  async checkTransactions(): Promise<void> {
    const all = await this.#metadata.listTransactions();
    if (all.length === 0) return;
    const brokers = await this.#listBrokerIds().catch(() => []);
    const now = this.#clock.now();
    for (const e of all) {
      if (this.#stopped) return;
      if (!this.#isCoordinatorFor(e.transactionalId, brokers)) continue;
      const record = decodeRecord(e.value);
      const decided = record.state === "PrepareCommit" || record.state === "PrepareAbort";
      const timedOut = record.state === "Ongoing" && now - record.startMs > record.timeoutMs;
      const expired = !decided && record.state !== "Ongoing" &&
        now - record.updateMs > this.#config.idExpirationMs;
      if (expired) {
        await this.#metadata.deleteTransactionIfRevision(e.transactionalId, e.modRevision)
          .then((deleted) => deleted && this.#count("expired"))
          .catch((err) => {
            this.#logger.warn("Cannot expire a transactional id yet; retried later", {
              transactionalId: e.transactionalId,
              err: String(err),
            });
          });
        continue;
      }
      if (!decided && !timedOut) continue;
      await this.#serial(e.transactionalId, async () => {
        const loaded = await this.#load(e.transactionalId);
        if (!loaded) return;
        const r = loaded.record;
        if (r.state === "PrepareCommit" || r.state === "PrepareAbort") {
          await this.#complete(e.transactionalId, r, loaded.revision);
        } else if (r.state === "Ongoing" && this.#clock.now() - r.startMs > r.timeoutMs) {
          await this.#abortOngoing(e.transactionalId, r, loaded.revision, "its timeout");
          this.#count("timeout_abort");
        }
      }).catch((err) => {
        this.#logger.warn("Cannot finish a transaction yet; retried later", {
          transactionalId: e.transactionalId,
          err: String(err),
        });
      });
    }
  }

  // ---- internals --------------------------------------------------------------

  /** Aborts an Ongoing transaction with a bumped epoch (fences its producer), then completes. */
  async #abortOngoing(
    transactionalId: string,
    record: TxnRecord,
    revision: number,
    why: string,
  ): Promise<void> {
    const bumped = bumpEpoch(record, await this.#maybeNewId(record));
    // The markers must carry the transaction's producer id; a new id only starts after.
    const decided: TxnRecord = {
      ...record,
      producerEpoch: bumped.producerId === record.producerId
        ? bumped.producerEpoch
        : record.producerEpoch,
      lastProducerId: record.producerId,
      lastProducerEpoch: record.producerEpoch,
      state: "PrepareAbort",
      decision: record.decision + 1,
      updateMs: this.#clock.now(),
    };
    this.#logger.info("Aborting an ongoing transaction", {
      transactionalId,
      producerId: record.producerId,
      producerEpoch: record.producerEpoch,
      because: why,
    });
    const rev = await this.#store(transactionalId, decided, revision);
    await this.#complete(transactionalId, decided, rev);
  }

  /**
   * Writes the decision's markers and offsets, then stores the Complete state (with a new
   * producer id when the epoch the markers carry is the last one). Returns the stored record.
   */
  async #complete(
    transactionalId: string,
    record: TxnRecord,
    revision: number,
  ): Promise<TxnRecord> {
    const commit = record.state === "PrepareCommit";
    if (record.partitions.length > 0) {
      await this.#markers.writeMarkers({
        producerId: record.producerId,
        producerEpoch: record.producerEpoch,
        commit,
        decision: record.decision,
        partitions: record.partitions.map(([topic, partition]) => ({ topic, partition })),
      });
    }
    for (const group of record.groups) {
      await this.#metadata.completeTxnOffsets(group, record.producerId, commit);
    }
    const exhausted = record.producerEpoch >= PRODUCER_EPOCH_EXHAUSTED;
    const done: TxnRecord = {
      ...record,
      ...(exhausted
        ? { producerId: await this.#producerIds.nextProducerId(), producerEpoch: 0 }
        : {}),
      state: commit ? "CompleteCommit" : "CompleteAbort",
      partitions: [],
      groups: [],
      startMs: -1,
      updateMs: this.#clock.now(),
    };
    await this.#store(transactionalId, done, revision);
    this.#count(commit ? "commit" : "abort");
    return done;
  }

  /** A new producer id when the epoch is exhausted (the id's last bump). */
  async #maybeNewId(record: TxnRecord): Promise<number | null> {
    return record.producerEpoch >= PRODUCER_EPOCH_EXHAUSTED - 1
      ? await this.#producerIds.nextProducerId()
      : null;
  }

  async #load(transactionalId: string): Promise<{ record: TxnRecord; revision: number } | null> {
    const entry = await this.#metadata.getTransaction(transactionalId);
    return entry ? { record: decodeRecord(entry.value), revision: entry.modRevision } : null;
  }

  /** Stores by compare-and-swap; throws Retry when another writer came first. */
  async #store(transactionalId: string, record: TxnRecord, revision: number): Promise<number> {
    const result = await this.#metadata.putTransactionIfRevision(
      transactionalId,
      encodeRecord(record),
      revision,
    );
    if (result === "conflict") throw new Retry();
    return result;
  }

  #serial<T>(transactionalId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(transactionalId) ?? Promise.resolve();
    const run = previous.catch(() => {}).then(fn);
    const tail = run.catch(() => {});
    this.#queues.set(transactionalId, tail);
    tail.then(() => {
      if (this.#queues.get(transactionalId) === tail) this.#queues.delete(transactionalId);
    });
    return run;
  }

  #codeFor(err: unknown, what: string): number {
    if (err instanceof MetadataStoreError) {
      this.#logger.warn(`${what}: the metadata store failed; clients retry`, { err: err.message });
      return ERROR_CODES.COORDINATOR_NOT_AVAILABLE;
    }
    if (err instanceof MarkerWriteError) {
      this.#logger.warn(`${what}: transaction markers not written yet; clients retry`, {
        err: err.message,
      });
      return ERROR_CODES.CONCURRENT_TRANSACTIONS;
    }
    throw err;
  }

  #count(kind: string): void {
    this.#metrics?.inc("kafscale_transactions_total", "Transaction coordinator transitions", {
      kind,
    });
  }
}

/** A marker could not be written to some partition (retriable). */
export class MarkerWriteError extends Error {
  override name = "MarkerWriteError";
}

function checkProducer(record: TxnRecord | null, p: TxnProducer): number {
  if (!record || record.producerId !== p.producerId) {
    return ERROR_CODES.INVALID_PRODUCER_ID_MAPPING;
  }
  if (p.producerEpoch !== record.producerEpoch) return ERROR_CODES.PRODUCER_FENCED;
  return ERROR_CODES.NONE;
}

/** The next epoch of the same producer id, remembering the one before (V2's per-transaction bump). */
function nextEpoch(record: TxnRecord): TxnRecord {
  return {
    ...record,
    lastProducerId: record.producerId,
    lastProducerEpoch: record.producerEpoch,
    producerEpoch: record.producerEpoch + 1,
  };
}

function bumpEpoch(record: TxnRecord, newId: number | null): TxnRecord {
  return {
    ...record,
    lastProducerId: record.producerId,
    lastProducerEpoch: record.producerEpoch,
    producerId: newId ?? record.producerId,
    producerEpoch: newId === null ? record.producerEpoch + 1 : 0,
  };
}

function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function sortPartitions(list: [string, number][]): [string, number][] {
  const seen = new Map<string, [string, number]>();
  for (const x of list) seen.set(partitionKey(x[0], x[1]), x);
  return [...seen.values()].sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]);
}

export function encodeRecord(record: TxnRecord): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(record));
}

export function decodeRecord(value: Uint8Array): TxnRecord {
  const r = JSON.parse(new TextDecoder().decode(value)) as TxnRecord;
  if (!TXN_STATES.includes(r.state) || !Number.isSafeInteger(r.producerId)) {
    throw new Error(`Malformed transaction record (state ${String(r.state)})`);
  }
  return r;
}
