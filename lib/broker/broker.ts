/**
 * The broker: the state every handler shares — settings, the cluster
 * metadata facade, the log manager, the clock, logger and metrics — plus
 * topic lookups and creation used by several APIs.
 *
 * Holds no durable state of its own: topics live in the MetadataStore, data
 * in the log. Must not import lib/server or lib/cli.
 */
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import type { Metrics } from "../util/metrics.ts";
import type { ClusterMetadata, TopicRecord } from "../metadata/cluster_metadata.ts";
import type { LogManager } from "../log/log_manager.ts";
import { GroupCoordinator } from "../coordinator/group_coordinator.ts";
import { ProducerIdManager } from "./producer_ids.ts";
import {
  TransactionCoordinator,
  type TxnCoordinatorConfig,
} from "../coordinator/txn_coordinator.ts";
import { BrokerMarkerWriter } from "./txn_markers.ts";
import { Authorizer } from "./authorizer.ts";
import type { InterBrokerTlsFiles } from "./inter_broker.ts";
import { type ScramCredential, scramCredential, type ScramMechanism } from "../security/scram.ts";
import { FailedLogins } from "./sasl_state.ts";
import { DEFAULT_FETCH_SESSION_SLOTS, FetchSessionCache } from "./fetch_sessions.ts";
import { type ConsumerGroup, ConsumerGroupManager } from "../coordinator/consumer_groups.ts";
import { hashName } from "./partition_leaders.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import {
  TOPIC_CONFIGS,
  topicConfigValue,
  type TopicDefaults,
  topicNameProblem,
  unknownTopicConfigMessage,
  validateTopicConfigs,
} from "./topic_config.ts";

export interface BrokerSettings {
  nodeId: number;
  /** Address advertised to clients in Metadata and FindCoordinator. */
  host: string;
  port: number;
  rack: string | null;
  autoCreateTopics: boolean;
  defaultPartitions: number;
  messageMaxBytes: number;
  segmentBytes: number;
  /**
   * The `transaction.version` feature ApiVersions finalizes (1: transactions V1; 2: V2, KIP-890
   * part 2, which Kafka 4.x clients then use). Default 2.
   */
  transactionVersion?: 1 | 2;
  /** ACL authorization on (`--authorizer acl`), and Kafka's allow.everyone.if.no.acl.found. */
  authorizer?: boolean;
  allowEveryoneIfNoAclFound?: boolean;
  /** Principals that administer credentials (`--super-users`, plus the first admin). */
  superUsers?: string[];
  /** Mechanisms of the SASL listeners (`--sasl-enabled-mechanisms`). */
  saslMechanisms?: string[];
  /** Session lifetime of a SASL login, ms (KIP-368); 0 or absent: no expiry. */
  connectionsMaxReauthMs?: number;
  /** KIP-848 groups: Kafka's group.consumer.session.timeout.ms and heartbeat.interval.ms. */
  consumerGroupSessionTimeoutMs?: number;
  consumerGroupHeartbeatIntervalMs?: number;
  /** Incremental fetch session slots (Kafka's max.incremental.fetch.session.cache.slots). */
  fetchSessionCacheSlots?: number;
  /** Most record bytes per Fetch response (Kafka's broker fetch.max.bytes); default DEFAULT_FETCH_MAX_BYTES. */
  fetchMaxBytes?: number;
  /** Advertised endpoint of each Kafka listener (`--listeners`); the first is host/port. */
  listeners?: { name: string; host: string; port: number }[];
  /** This broker's TLS files, for calls to another broker over TLS (inter_broker.ts). */
  tls?: InterBrokerTlsFiles | null;
}

/** Named limit: partitions a single topic may have. */
export const MAX_PARTITIONS_PER_TOPIC = 100_000;
/** Partitions whose objects a topic deletion removes at once. */
export const DROP_PARTITIONS_CONCURRENCY = 16;

export interface CreateTopicResult {
  errorCode: number;
  errorMessage: string | null;
  topic: TopicRecord | null;
}

export class Broker {
  /** Mutable only while starting: the advertised port is known once the listener is bound. */
  readonly settings: BrokerSettings;
  readonly metadata: ClusterMetadata;
  readonly logs: LogManager;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Consumer groups and committed offsets (lib/coordinator). */
  readonly coordinator: GroupCoordinator;
  /** Cluster-wide producer ids for idempotent producers (InitProducerId). */
  readonly producerIds: ProducerIdManager;
  /** The transaction coordinator (KIP-98): its records live in the metadata store. */
  readonly transactions: TransactionCoordinator;
  /** ACL decisions (`--authorizer acl`; otherwise everything is allowed). */
  readonly authorizer: Authorizer;
  /** Delays for failed SASL logins, per source host. */
  readonly failedLogins: FailedLogins = new FailedLogins();
  /** Incremental fetch sessions (KIP-227). */
  readonly fetchSessions: FetchSessionCache;
  /** Consumer groups of the KIP-848 protocol (ConsumerGroupHeartbeat) this broker coordinates. */
  readonly consumerGroups: ConsumerGroupManager;
  #clusterId = "";
  #interBrokerSecret: Promise<string> | null = null;
  readonly #interBrokerCredentials = new Map<ScramMechanism, ScramCredential>();

  /**
   * The KIP-848 group `groupId` when it has members, read from the store once per owner epoch
   * of its coordinator (for the checks of commits, joins and deletes), so a new coordinator
   * knows the group before its members' next heartbeats. When the store cannot be read, what
   * memory holds (the commit or join itself then meets the store's error).
   */
  async activeConsumerGroup(groupId: string): Promise<ConsumerGroup | null> {
    try {
      await this.consumerGroups.load(groupId, this.coordinator.ownerEpochOf(groupId));
    } catch (err) {
      this.logger.warn("Cannot read the consumer group record", {
        group: groupId,
        error: err instanceof Error ? err.message : String(err),
      });
    }
    return this.consumerGroups.active(groupId);
  }
  /**
   * Topic records by name, kept current by a metadata watch so the produce
   * and fetch paths never wait on the store; a miss reads through.
   */
  #topics = new Map<string, TopicRecord>();
  /** Topic name by id, an index over `#topics` checked on use (rebuilt on a miss). */
  #topicIdNames = new Map<string, string>();
  #unwatch: (() => void) | null = null;
  readonly #stopping = new AbortController();

  constructor(deps: {
    settings: BrokerSettings;
    metadata: ClusterMetadata;
    logs: LogManager;
    clock: Clock;
    logger: Logger;
    metrics: Metrics;
    /** Defaults to a coordinator with default settings over `metadata`. */
    coordinator?: GroupCoordinator;
    /** Defaults to blocks of PRODUCER_ID_BLOCK_SIZE ids from `metadata`. */
    producerIds?: ProducerIdManager;
    /** Transaction coordinator settings (transaction.max.timeout.ms, check interval). */
    transactions?: Partial<TxnCoordinatorConfig>;
  }) {
    this.settings = deps.settings;
    this.metadata = deps.metadata;
    this.logs = deps.logs;
    this.clock = deps.clock;
    this.logger = deps.logger;
    this.metrics = deps.metrics;
    this.consumerGroups = new ConsumerGroupManager({
      now: () => deps.clock.monotonic(),
      sessionTimeoutMs: deps.settings.consumerGroupSessionTimeoutMs ?? 45_000,
      heartbeatIntervalMs: deps.settings.consumerGroupHeartbeatIntervalMs ?? 5_000,
      store: deps.metadata,
      onLoad: (g) =>
        deps.logger.info("Loaded consumer group", {
          group: g.groupId,
          groupEpoch: g.groupEpoch,
          members: g.members.size,
        }),
    });
    this.fetchSessions = new FetchSessionCache(
      deps.clock,
      deps.settings.fetchSessionCacheSlots ?? DEFAULT_FETCH_SESSION_SLOTS,
    );
    deps.metrics.addCollector(() => {
      deps.metrics.set(
        "kafscale_fetch_sessions",
        "Incremental fetch sessions held (KIP-227)",
        this.fetchSessions.size,
      );
      deps.metrics.set(
        "kafscale_fetch_session_partitions",
        "Partitions held across incremental fetch sessions",
        this.fetchSessions.partitionCount(),
      );
      deps.metrics.setCounter(
        "kafscale_fetch_session_evictions_total",
        "Incremental fetch sessions evicted to make room for new ones",
        this.fetchSessions.evictions,
      );
    });
    this.coordinator = deps.coordinator ?? new GroupCoordinator({
      metadata: deps.metadata,
      clock: deps.clock,
      logger: deps.logger,
      metrics: deps.metrics,
    });
    this.producerIds = deps.producerIds ?? new ProducerIdManager({ metadata: deps.metadata });
    this.authorizer = new Authorizer(deps.metadata, {
      enabled: deps.settings.authorizer ?? false,
      superUsers: deps.settings.superUsers ?? [],
      allowEveryoneIfNoAclFound: deps.settings.allowEveryoneIfNoAclFound ?? false,
    }, deps.logger);
    const nodeId = deps.settings.nodeId;
    this.transactions = new TransactionCoordinator({
      metadata: deps.metadata,
      producerIds: this.producerIds,
      clock: deps.clock,
      logger: deps.logger,
      metrics: deps.metrics,
      markers: new BrokerMarkerWriter(this),
      config: deps.transactions,
      // The same placement as FindCoordinator's: the id's hash among the registered brokers.
      isCoordinatorFor: (id, brokers) => transactionCoordinatorOf(id, brokers, nodeId) === nodeId,
      listBrokerIds: async () => (await deps.metadata.listBrokers()).map((b) => b.brokerId),
    });
  }

  async start(): Promise<void> {
    this.#unwatch = this.metadata.watchTopics((name, record) => {
      if (record) this.#topics.set(name, record);
      else this.#topics.delete(name);
    });
    this.#clusterId = await this.metadata.getOrCreateClusterId();
    for (const t of await this.metadata.listTopics()) {
      if (!this.#topics.has(t.name)) this.#topics.set(t.name, t);
    }
    await this.authorizer.start();
    this.transactions.start();
  }

  /** Aborted once the broker begins to stop: long-polls (Fetch) answer at once from then on. */
  get stopping(): AbortSignal {
    return this.#stopping.signal;
  }

  /** The first step of a stop: parked Fetch requests answer now, so connections drain quickly. */
  beginStop(): void {
    this.#stopping.abort();
  }

  stop(): void {
    this.#stopping.abort();
    this.#unwatch?.();
    this.#unwatch = null;
    void this.transactions.stop();
    this.authorizer.stop();
  }

  /** A topic record in any state, from the cache or read through from the store. */
  async #lookup(name: string): Promise<TopicRecord | null> {
    const cached = this.#topics.get(name);
    if (cached) return cached;
    const stored = await this.metadata.getTopic(name);
    if (stored) this.#topics.set(name, stored);
    return stored;
  }

  /** A topic from the cache only (no store read): for synchronous callers such as sealing. */
  cachedTopic(name: string): TopicRecord | undefined {
    return this.#topics.get(name);
  }

  get clusterId(): string {
    return this.#clusterId;
  }

  /** What brokers log in to each other with (inter_broker.ts), read from the store once. */
  interBrokerSecret(): Promise<string> {
    this.#interBrokerSecret ??= this.metadata.getOrCreateInterBrokerSecret().catch((err) => {
      this.#interBrokerSecret = null; // read again next time
      throw err;
    });
    return this.#interBrokerSecret;
  }

  /** The reserved broker user's credential for `mechanism`, derived from the secret once. */
  async interBrokerCredential(mechanism: ScramMechanism): Promise<ScramCredential> {
    let credential = this.#interBrokerCredentials.get(mechanism);
    if (!credential) {
      credential = scramCredential(mechanism, await this.interBrokerSecret());
      this.#interBrokerCredentials.set(mechanism, credential);
    }
    return credential;
  }

  get topicDefaults(): TopicDefaults {
    return {
      messageMaxBytes: this.settings.messageMaxBytes,
      segmentBytes: this.settings.segmentBytes,
    };
  }

  /** The effective value of a topic config key. */
  topicConfig(topic: TopicRecord, key: string): string {
    return topicConfigValue(topic.configs, key, this.topicDefaults);
  }

  /** An active topic, or null. */
  async topic(name: string): Promise<TopicRecord | null> {
    const t = await this.#lookup(name);
    return t && t.state === "active" ? t : null;
  }

  /** An active topic by id (Fetch v13+, Metadata v10+), or null. */
  async topicById(topicId: string): Promise<TopicRecord | null> {
    const known = this.#topics.get(this.#topicIdNames.get(topicId) ?? "");
    if (known?.topicId === topicId) return known.state === "active" ? known : null;
    for (const t of this.#topics.values()) this.#topicIdNames.set(t.topicId, t.name);
    const cached = this.#topics.get(this.#topicIdNames.get(topicId) ?? "");
    if (cached?.topicId === topicId) return cached.state === "active" ? cached : null;
    // Not cached: a topic another broker created whose watch event has not arrived yet.
    return (await this.listTopics()).find((t) => t.topicId === topicId) ?? null;
  }

  /** The active topics this broker knows now (its watched cache; no store read). */
  cachedTopics(): TopicRecord[] {
    return [...this.#topics.values()].filter((t) => t.state === "active");
  }

  async listTopics(): Promise<TopicRecord[]> {
    const all = await this.metadata.listTopics();
    for (const t of all) this.#topics.set(t.name, t);
    return all.filter((t) => t.state === "active");
  }

  /**
   * The topic, auto-creating it with the default partition count when the
   * request and the broker both allow it. Returns the Kafka error code when
   * it does not exist.
   */
  async ensureTopic(
    name: string,
    allowAutoCreate: boolean,
  ): Promise<{ topic: TopicRecord } | { errorCode: number }> {
    const existing = await this.#lookup(name);
    if (existing) {
      return existing.state === "active"
        ? { topic: existing }
        : { errorCode: ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION };
    }
    if (!allowAutoCreate || !this.settings.autoCreateTopics) {
      return { errorCode: ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION };
    }
    if (topicNameProblem(name)) return { errorCode: ERROR_CODES.INVALID_TOPIC_EXCEPTION };
    const created = await this.createTopic(name, this.settings.defaultPartitions, {}, false);
    if (created.topic) return { topic: created.topic };
    if (created.errorCode === ERROR_CODES.TOPIC_ALREADY_EXISTS) {
      const raced = await this.topic(name);
      if (raced) return { topic: raced };
    }
    return { errorCode: created.errorCode };
  }

  /** Creates a topic after validating name, partition count and configs. */
  async createTopic(
    name: string,
    partitions: number,
    configs: Record<string, string>,
    validateOnly: boolean,
  ): Promise<CreateTopicResult> {
    const nameProblem = topicNameProblem(name);
    if (nameProblem) return fail(ERROR_CODES.INVALID_TOPIC_EXCEPTION, nameProblem);
    const count = partitions === -1 ? this.settings.defaultPartitions : partitions;
    if (!Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS_PER_TOPIC) {
      return fail(
        ERROR_CODES.INVALID_PARTITIONS,
        `Number of partitions must be between 1 and ${MAX_PARTITIONS_PER_TOPIC}, got ${partitions}`,
      );
    }
    const configProblem = validateTopicConfigs(configs);
    if (configProblem) return fail(ERROR_CODES.INVALID_CONFIG, configProblem);
    const existing = await this.metadata.getTopic(name);
    if (existing) {
      return fail(
        ERROR_CODES.TOPIC_ALREADY_EXISTS,
        existing.state === "deleting"
          ? `Topic "${name}" is marked for deletion`
          : `Topic "${name}" already exists`,
      );
    }
    if (validateOnly) {
      return {
        errorCode: ERROR_CODES.NONE,
        errorMessage: null,
        topic: {
          name,
          topicId: "AAAAAAAAAAAAAAAAAAAAAA",
          partitions: count,
          configs,
          createdMs: this.clock.now(),
          state: "active",
        },
      };
    }
    const outcome = await this.metadata.createTopic({ name, partitions: count, configs });
    if (outcome === "exists") {
      return fail(ERROR_CODES.TOPIC_ALREADY_EXISTS, `Topic "${name}" already exists`);
    }
    const topic = await this.metadata.getTopic(name);
    this.logger.info("Created topic", { topic: name, partitions: count });
    return { errorCode: ERROR_CODES.NONE, errorMessage: null, topic };
  }

  /**
   * Deletes a topic: marks it "deleting" (so produce, fetch and listings stop
   * seeing it at once), deletes every partition's objects, then removes its
   * metadata and every group's committed offsets for it. A deletion cut
   * short by a failure leaves the topic "deleting"; deleting it again
   * finishes the job. A topic recreated under the name starts empty.
   */
  async deleteTopic(name: string): Promise<void> {
    const marked = await this.metadata.setTopicState(name, "deleting");
    if (!marked) return;
    this.#topics.set(name, marked);
    for (let from = 0; from < marked.partitions; from += DROP_PARTITIONS_CONCURRENCY) {
      const to = Math.min(marked.partitions, from + DROP_PARTITIONS_CONCURRENCY);
      const drops = [];
      for (let p = from; p < to; p++) drops.push(this.logs.dropPartition(name, p));
      await Promise.all(drops);
    }
    await this.metadata.deleteTopicMetadata(name);
    this.#topics.delete(name);
    this.logger.info("Deleted topic", { topic: name, partitions: marked.partitions });
  }

  /** Grows an active topic to `count` partitions (CreatePartitions). */
  async createPartitions(
    name: string,
    count: number,
    validateOnly: boolean,
  ): Promise<{ errorCode: number; errorMessage: string | null }> {
    const topic = await this.metadata.getTopic(name);
    if (!topic || topic.state !== "active") {
      return { errorCode: ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: null };
    }
    if (!Number.isInteger(count) || count <= topic.partitions || count > MAX_PARTITIONS_PER_TOPIC) {
      return {
        errorCode: ERROR_CODES.INVALID_PARTITIONS,
        errorMessage: count <= topic.partitions
          ? `Topic "${name}" has ${topic.partitions} partitions; the new count must be higher, ` +
            `got ${count}`
          : `Number of partitions must be at most ${MAX_PARTITIONS_PER_TOPIC}, got ${count}`,
      };
    }
    if (validateOnly) return { errorCode: ERROR_CODES.NONE, errorMessage: null };
    const outcome = await this.metadata.addPartitions(name, count);
    if (outcome === "not-found") {
      return { errorCode: ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: null };
    }
    if (outcome === "invalid-count") {
      return {
        errorCode: ERROR_CODES.INVALID_PARTITIONS,
        errorMessage: `Topic "${name}" already has ${count} or more partitions`,
      };
    }
    this.#topics.set(name, outcome);
    this.logger.info("Added partitions", { topic: name, partitions: count });
    return { errorCode: ERROR_CODES.NONE, errorMessage: null };
  }

  /**
   * Changes an active topic's config overrides: `null` removes a key; with
   * `replace` the overrides become exactly the non-null `changes`
   * (AlterConfigs). Every key must be on the whitelist (INVALID_CONFIG names
   * the first that is not).
   */
  async alterTopicConfigs(
    name: string,
    changes: Record<string, string | null>,
    options: { replace: boolean; validateOnly: boolean },
  ): Promise<{ errorCode: number; errorMessage: string | null }> {
    const unknown = Object.keys(changes).find((k) =>
      !TOPIC_CONFIGS.some((c) => c.name === k && c.alterable)
    );
    if (unknown !== undefined) {
      return {
        errorCode: ERROR_CODES.INVALID_CONFIG,
        errorMessage: unknownTopicConfigMessage(unknown),
      };
    }
    const set: Record<string, string> = {};
    for (const [k, v] of Object.entries(changes)) if (v !== null) set[k] = v;
    const problem = validateTopicConfigs(set);
    if (problem) return { errorCode: ERROR_CODES.INVALID_CONFIG, errorMessage: problem };
    const topic = await this.metadata.getTopic(name);
    if (!topic || topic.state !== "active") {
      return { errorCode: ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: null };
    }
    // Cross-key rules (the compaction lags) hold for the result, as Kafka checks them.
    const merged = options.replace ? set : { ...topic.configs, ...set };
    for (const [k, v] of Object.entries(changes)) if (v === null) delete merged[k];
    const conflict = validateTopicConfigs(merged);
    if (conflict) return { errorCode: ERROR_CODES.INVALID_CONFIG, errorMessage: conflict };
    if (options.validateOnly) return { errorCode: ERROR_CODES.NONE, errorMessage: null };
    const updated = await this.metadata.updateTopicConfigs(name, changes, {
      replace: options.replace,
    });
    if (!updated) return { errorCode: ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: null };
    this.#topics.set(name, updated);
    this.logger.info("Altered topic configs", { topic: name, configs: JSON.stringify(changes) });
    return { errorCode: ERROR_CODES.NONE, errorMessage: null };
  }
}

function fail(errorCode: number, errorMessage: string): CreateTopicResult {
  return { errorCode, errorMessage, topic: null };
}

/**
 * The broker coordinating a transactional id: its hash among the registered brokers (this one
 * when none is registered, as in embedded mode).
 */
export function transactionCoordinatorOf(
  transactionalId: string,
  brokerIds: number[],
  selfId: number,
): number {
  const ids = [...new Set([...brokerIds, selfId])].sort((a, b) => a - b);
  return ids[hashName(transactionalId) % ids.length];
}
