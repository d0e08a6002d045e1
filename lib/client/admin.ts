/**
 * The admin client the CLI uses: bootstraps from one address, negotiates API
 * versions with ApiVersions, learns the cluster from Metadata, and sends
 * each request where Kafka routes it — partition requests (ListOffsets) to
 * the partition's leader, group requests to the group's coordinator
 * (FindCoordinator), the rest to the bootstrap broker. It speaks only the
 * Kafka protocol through the generated codecs, so it works against any
 * Kafka-compatible broker, not just this one.
 *
 * Failures become `AdminError`s whose message is one sentence naming what
 * failed and the broker's error (code name and message).
 */
import { type ClientSecurity, PLAINTEXT } from "./client_security.ts";
import { KafkaConnection } from "./kafka_connection.ts";
import { API_SCHEMAS } from "../protocol/generated/apis.ts";
import type { ApiSchema, MessageCodec } from "../protocol/codec.ts";
import { ERROR_CODES, errorName } from "../protocol/error_codes.ts";
import { Reader, ZERO_UUID } from "../protocol/primitives.ts";

/** How long one request may take before the client gives up on it. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Connections to brokers other than the bootstrap one. */
export const BROKER_CONNECTIONS_MAX = 64;
/** Attempts of a group request while its coordinator is loading or moving. */
export const COORDINATOR_ATTEMPTS_MAX = 100;
/** Pause between those attempts (with the bound: about 25 s, like Kafka's tools wait). */
export const COORDINATOR_RETRY_MS = 250;

export class AdminError extends Error {
  override name = "AdminError";
  constructor(message: string, readonly errorCode: number | null = null) {
    super(message);
  }
}

/** An ACL binding as the ACL APIs carry it (Kafka's codes: lib/security/acl.ts). */
export interface AclBindingSpec {
  resourceType: number;
  resourceName: string;
  patternType: number;
  principal: string;
  host: string;
  operation: number;
  permissionType: number;
}

/** A filter of DescribeAcls and DeleteAcls: null names and 1 (ANY) codes match anything. */
export interface AclFilterSpec {
  resourceType: number;
  resourceName: string | null;
  patternType: number;
  principal: string | null;
  host: string | null;
  operation: number;
  permissionType: number;
}

export interface BrokerNode {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
}

export interface PartitionInfo {
  partition: number;
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  errorCode: number;
}

export interface TopicInfo {
  name: string;
  topicId: string;
  partitions: PartitionInfo[];
}

export interface ClusterInfo {
  clusterId: string | null;
  controllerId: number;
  brokers: BrokerNode[];
  topics: TopicInfo[];
}

export interface ConfigEntry {
  name: string;
  value: string | null;
  /** Kafka's ConfigSource name: DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG, ... */
  source: string;
  readOnly: boolean;
  sensitive: boolean;
}

export interface PartitionDescription extends PartitionInfo {
  earliestOffset: number;
  latestOffset: number;
  /** Bytes in sealed segments (a Kafka broker's whole log), -1 when its leader did not say. */
  sealedBytes: number;
  /** Record bytes in the write-ahead stream, not sealed yet (0 on Apache Kafka). */
  unsealedBytes: number;
}

/** The log "directory" under which this project's brokers report unsealed bytes. */
const WRITE_AHEAD_LOG_DIR = "write-ahead";

export interface TopicDescription {
  name: string;
  topicId: string;
  partitions: PartitionDescription[];
  configs: ConfigEntry[];
}

export interface TransactionListing {
  transactionalId: string;
  producerId: number;
  state: string;
  /** The broker that answered for it. */
  coordinator: number;
}

export interface TransactionDescription {
  transactionalId: string;
  coordinator: number;
  state: string;
  producerId: number;
  producerEpoch: number;
  timeoutMs: number;
  /** When the open transaction started (unix ms), -1 when none is open. */
  startTimeMs: number;
  partitions: TopicPartitionRef[];
}

export interface GroupListing {
  groupId: string;
  state: string;
  protocolType: string;
}

export interface TopicPartitions {
  topic: string;
  partitions: number[];
}

export interface GroupMember {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  assignment: TopicPartitions[];
}

export interface GroupDescription {
  groupId: string;
  state: string;
  protocolType: string;
  protocol: string;
  coordinator: number;
  members: GroupMember[];
}

export interface GroupOffset {
  topic: string;
  partition: number;
  offset: number;
  metadata: string | null;
}

export interface TopicPartitionRef {
  topic: string;
  partition: number;
}

/** ListOffsets targets: earliest, latest, or the first offset at or after a timestamp. */
export type OffsetSpec = "earliest" | "latest" | { timestamp: number };

/** Kafka's DescribeConfigsResponse.ConfigSource names, by id. */
const CONFIG_SOURCES = [
  "UNKNOWN",
  "DYNAMIC_TOPIC_CONFIG",
  "DYNAMIC_BROKER_CONFIG",
  "DYNAMIC_DEFAULT_BROKER_CONFIG",
  "STATIC_BROKER_CONFIG",
  "DEFAULT_CONFIG",
  "DYNAMIC_BROKER_LOGGER_CONFIG",
  "CLIENT_METRICS_CONFIG",
  "GROUP_CONFIG",
];
const TOPIC_RESOURCE = 2;
const CONFIG_SET = 0;
const CONFIG_DELETE = 1;

/** Kafka's error text: the code's name, then the broker's message when there is one. */
export function describeError(code: number, message?: string | null): string {
  return message ? `${errorName(code)}: ${message}` : errorName(code);
}

function check(code: number, message: string | null | undefined, what: string): void {
  if (code !== ERROR_CODES.NONE) {
    throw new AdminError(`${what}: ${describeError(code, message)}`, code);
  }
}

/** The partitions a consumer-protocol assignment (ConsumerProtocolAssignment) names. */
export function parseConsumerAssignment(bytes: Uint8Array): TopicPartitions[] {
  if (bytes.byteLength < 2) return [];
  try {
    const r = new Reader(bytes);
    r.int16(); // version: every version starts with the same fields
    const topics: TopicPartitions[] = [];
    const count = r.int32();
    for (let i = 0; i < count; i++) {
      const topic = r.string();
      const n = r.int32();
      const partitions: number[] = [];
      for (let j = 0; j < n; j++) partitions.push(r.int32());
      topics.push({ topic, partitions });
    }
    return topics;
  } catch {
    return [];
  }
}

/** OffsetCommit and OffsetFetch name topics by name up to v9 (v10 names them by id). */
const TOPIC_NAMES_MAX_OFFSET_VERSION = 9;
/** Produce names topics by name up to v12 (v13 names them by id). */
export const TOPIC_NAMES_MAX_PRODUCE_VERSION = 12;

export class AdminClient {
  readonly #bootstrap: KafkaConnection;
  readonly #bootstrapAddress: string;
  readonly #clientId: string;
  readonly #security: ClientSecurity;
  readonly #timeoutMs: number;
  readonly #versions: Map<number, { min: number; max: number }>;
  readonly #connections = new Map<string, Promise<KafkaConnection>>();
  #brokers = new Map<number, BrokerNode>();

  private constructor(
    bootstrap: KafkaConnection,
    address: string,
    versions: Map<number, { min: number; max: number }>,
    options: { clientId: string; timeoutMs: number; security: ClientSecurity },
  ) {
    this.#security = options.security;
    this.#bootstrap = bootstrap;
    this.#bootstrapAddress = address;
    this.#versions = versions;
    this.#clientId = options.clientId;
    this.#timeoutMs = options.timeoutMs;
  }

  /**
   * Connects to `bootstrap` (HOST:PORT, or a comma-separated list tried in
   * order, as Kafka's tools take it) and reads the broker's API versions.
   */
  static async connect(
    bootstrap: string,
    options: { clientId?: string; timeoutMs?: number; security?: ClientSecurity } = {},
  ): Promise<AdminClient> {
    const addresses = bootstrap.split(",").map((a) => a.trim()).filter((a) => a !== "");
    let lastError: unknown = new AdminError(`No bootstrap address in "${bootstrap}"`);
    for (const address of addresses.slice(0, BROKER_CONNECTIONS_MAX)) {
      try {
        return await AdminClient.#connectOne(address, options);
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  static async #connectOne(
    bootstrap: string,
    options: { clientId?: string; timeoutMs?: number; security?: ClientSecurity },
  ): Promise<AdminClient> {
    const clientId = options.clientId ?? "kafscale-cli";
    const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const security = options.security ?? PLAINTEXT;
    const conn = await KafkaConnection.connect(bootstrap, clientId, security);
    try {
      const res = await withTimeout(
        conn.send(API_SCHEMAS[18], 3, {
          clientSoftwareName: "kafscale-cli",
          clientSoftwareVersion: "0.1.0",
        }),
        timeoutMs,
        `ApiVersions to "${bootstrap}"`,
      );
      check(res!.errorCode, null, `Broker "${bootstrap}" refused ApiVersions`);
      const versions = new Map(
        res!.apiKeys.map((k) => [k.apiKey, { min: k.minVersion, max: k.maxVersion }]),
      );
      return new AdminClient(conn, bootstrap, versions, { clientId, timeoutMs, security });
    } catch (err) {
      conn.close();
      throw err;
    }
  }

  close(): void {
    this.#bootstrap.close();
    for (const c of this.#connections.values()) c.then((conn) => conn.close(), () => undefined);
    this.#connections.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Whether the broker serves this API at all. */
  supports(apiKey: number): boolean {
    return this.#versions.has(apiKey);
  }

  /**
   * The highest version both sides speak, from `atLeast` up to `atMost` (callers that name
   * topics by name cap Produce at 12 and OffsetCommit/OffsetFetch at 9: later versions name
   * them by id).
   */
  version(
    schema: ApiSchema,
    atLeast = schema.request.minVersion,
    atMost = schema.request.maxVersion,
  ): number {
    const apiKey = schema.request.apiKey;
    const theirs = this.#versions.get(apiKey);
    const min = Math.max(atLeast, schema.request.minVersion, theirs?.min ?? Infinity);
    const max = Math.min(schema.request.maxVersion, atMost, theirs?.max ?? -1);
    if (!theirs || max < min) {
      throw new AdminError(
        `The broker does not support ${schema.name}` +
          (theirs ? ` at a version this client speaks (${min}+)` : ""),
      );
    }
    return max;
  }

  async #send<Req, Res>(
    conn: KafkaConnection,
    codecs: { name: string; request: MessageCodec<Req>; response: MessageCodec<Res> },
    version: number,
    body: Req,
  ): Promise<Res> {
    const res = await withTimeout(
      conn.send(codecs, version, body),
      this.#timeoutMs,
      `${codecs.name} request`,
    );
    return res!;
  }

  /** Sends one request to broker `nodeId` (by cluster metadata), with the client's timeout. */
  async request<Req, Res>(
    nodeId: number,
    codecs: { name: string; request: MessageCodec<Req>; response: MessageCodec<Res> },
    version: number,
    body: Req,
  ): Promise<Res> {
    return await this.#send(await this.#connectionTo(nodeId), codecs, version, body);
  }

  async #connectionTo(nodeId: number): Promise<KafkaConnection> {
    const node = this.#brokers.get(nodeId);
    if (!node) {
      throw new AdminError(`Broker ${nodeId} is not in the cluster metadata; retry`);
    }
    const address = `${node.host.includes(":") ? `[${node.host}]` : node.host}:${node.port}`;
    if (address === this.#bootstrapAddress) return this.#bootstrap;
    let conn = this.#connections.get(address);
    if (!conn) {
      if (this.#connections.size >= BROKER_CONNECTIONS_MAX) {
        throw new AdminError(`More than ${BROKER_CONNECTIONS_MAX} brokers to talk to`);
      }
      conn = KafkaConnection.connect(address, this.#clientId, this.#security);
      this.#connections.set(address, conn);
      conn.catch(() => this.#connections.delete(address));
    }
    return await conn;
  }

  // ---- cluster and topics -----------------------------------------------------

  /** Brokers and topics: all topics when `topics` is null. Unknown topics are never created. */
  async metadata(topics: string[] | null): Promise<ClusterInfo> {
    const schema = API_SCHEMAS[3];
    const version = this.version(schema, topics === null ? 1 : 4);
    const res = await this.#send(this.#bootstrap, schema, version, {
      topics: topics === null ? null : topics.map((name) => ({ topicId: ZERO_UUID, name })),
      allowAutoTopicCreation: false,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    });
    const brokers = res.brokers.map((b) => ({
      nodeId: b.nodeId,
      host: b.host,
      port: b.port,
      rack: b.rack ?? null,
    }));
    this.#brokers = new Map(brokers.map((b) => [b.nodeId, b]));
    return {
      clusterId: res.clusterId ?? null,
      controllerId: res.controllerId ?? -1,
      brokers,
      topics: res.topics.map((t) => {
        if (t.errorCode !== ERROR_CODES.NONE) {
          const what = t.errorCode === ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION
            ? `Topic "${t.name}" does not exist`
            : `Cannot describe topic "${t.name}"`;
          throw new AdminError(
            t.errorCode === ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION
              ? what
              : `${what}: ${describeError(t.errorCode)}`,
            t.errorCode,
          );
        }
        return {
          name: t.name ?? "",
          topicId: t.topicId ?? ZERO_UUID,
          partitions: t.partitions.map((p) => ({
            partition: p.partitionIndex,
            leader: p.leaderId,
            leaderEpoch: p.leaderEpoch ?? -1,
            replicas: p.replicaNodes,
            isr: p.isrNodes,
            errorCode: p.errorCode,
          })).sort((a, b) => a.partition - b.partition),
        };
      }).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    };
  }

  /** Creates a topic; `partitions` -1 takes the broker's default. */
  async createTopic(
    name: string,
    partitions: number,
    configs: Record<string, string>,
    options: { validateOnly?: boolean } = {},
  ): Promise<{ topicId: string; partitions: number }> {
    const schema = API_SCHEMAS[19];
    const version = this.version(schema, partitions === -1 ? 4 : 0);
    const res = await this.#send(this.#bootstrap, schema, version, {
      topics: [{
        name,
        numPartitions: partitions,
        replicationFactor: version >= 4 ? -1 : 1,
        assignments: [],
        configs: Object.entries(configs).map(([k, v]) => ({ name: k, value: v })),
      }],
      timeoutMs: this.#timeoutMs,
      validateOnly: options.validateOnly ?? false,
    });
    const t = res.topics[0];
    check(t.errorCode, t.errorMessage, `Cannot create topic "${name}"`);
    return { topicId: t.topicId ?? ZERO_UUID, partitions: t.numPartitions ?? partitions };
  }

  /** Deletes a topic by name. */
  async deleteTopic(name: string): Promise<void> {
    const schema = API_SCHEMAS[20];
    const version = this.version(schema);
    const res = await this.#send(this.#bootstrap, schema, version, {
      topicNames: [name],
      topics: [{ name, topicId: ZERO_UUID }],
      timeoutMs: this.#timeoutMs,
    });
    const r = res.responses[0];
    if (r.errorCode === ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION) {
      throw new AdminError(`Topic "${name}" does not exist`, r.errorCode);
    }
    check(r.errorCode, r.errorMessage, `Cannot delete topic "${name}"`);
  }

  /** Grows a topic to `count` partitions. */
  async createPartitions(name: string, count: number): Promise<void> {
    const schema = API_SCHEMAS[37];
    const res = await this.#send(this.#bootstrap, schema, this.version(schema), {
      topics: [{ name, count, assignments: null }],
      timeoutMs: this.#timeoutMs,
      validateOnly: false,
    });
    const r = res.results[0];
    if (r.errorCode === ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION) {
      throw new AdminError(`Topic "${name}" does not exist`, r.errorCode);
    }
    check(r.errorCode, r.errorMessage, `Cannot add partitions to "${name}"`);
  }

  /** Every config entry of each topic, by topic name. */
  async describeTopicConfigs(names: string[]): Promise<Map<string, ConfigEntry[]>> {
    const out = new Map<string, ConfigEntry[]>();
    if (names.length === 0) return out;
    const schema = API_SCHEMAS[32];
    const res = await this.#send(this.#bootstrap, schema, this.version(schema), {
      resources: names.map((name) => ({
        resourceType: TOPIC_RESOURCE,
        resourceName: name,
        configurationKeys: null,
      })),
      includeSynonyms: false,
      includeDocumentation: false,
    });
    for (const r of res.results) {
      check(r.errorCode, r.errorMessage, `Cannot describe the configs of "${r.resourceName}"`);
      out.set(
        r.resourceName,
        r.configs.map((c) => ({
          name: c.name,
          value: c.value,
          source: c.configSource !== undefined
            ? (CONFIG_SOURCES[c.configSource] ?? "UNKNOWN")
            : (c.isDefault ? "DEFAULT_CONFIG" : "DYNAMIC_TOPIC_CONFIG"),
          readOnly: c.readOnly,
          sensitive: c.isSensitive,
        })).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
      );
    }
    return out;
  }

  /**
   * Sets and removes topic config overrides, keeping the others
   * (IncrementalAlterConfigs; brokers without it get a describe and a
   * whole-set AlterConfigs).
   */
  async alterTopicConfigs(
    name: string,
    set: Record<string, string>,
    remove: string[] = [],
  ): Promise<void> {
    if (this.supports(44)) {
      const schema = API_SCHEMAS[44];
      const res = await this.#send(this.#bootstrap, schema, this.version(schema), {
        resources: [{
          resourceType: TOPIC_RESOURCE,
          resourceName: name,
          configs: [
            ...Object.entries(set).map(([k, v]) => ({
              name: k,
              configOperation: CONFIG_SET,
              value: v,
            })),
            ...remove.map((k) => ({ name: k, configOperation: CONFIG_DELETE, value: null })),
          ],
        }],
        validateOnly: false,
      });
      const r = res.responses[0];
      check(r.errorCode, r.errorMessage, `Cannot alter the configs of "${name}"`);
      return;
    }
    const current = (await this.describeTopicConfigs([name])).get(name) ?? [];
    const configs: Record<string, string> = {};
    for (const c of current) {
      if (c.source === "DYNAMIC_TOPIC_CONFIG" && c.value !== null) configs[c.name] = c.value;
    }
    for (const k of remove) delete configs[k];
    Object.assign(configs, set);
    const schema = API_SCHEMAS[33];
    const res = await this.#send(this.#bootstrap, schema, this.version(schema), {
      resources: [{
        resourceType: TOPIC_RESOURCE,
        resourceName: name,
        configs: Object.entries(configs).map(([k, v]) => ({ name: k, value: v })),
      }],
      validateOnly: false,
    });
    const r = res.responses[0];
    check(r.errorCode, r.errorMessage, `Cannot alter the configs of "${name}"`);
  }

  /** Partitions, leaders, earliest and latest offsets, and configs of each topic. */
  async describeTopics(names: string[] | null): Promise<TopicDescription[]> {
    const cluster = await this.metadata(names);
    // A partition without a leader right now has no offsets to report (-1), not a failure.
    const refs = cluster.topics.flatMap((t) =>
      t.partitions.filter((p) => p.leader >= 0).map((p) => ({
        topic: t.name,
        partition: p.partition,
      }))
    );
    const [earliest, latest, configs] = await Promise.all([
      this.listOffsets(refs, "earliest", cluster),
      this.listOffsets(refs, "latest", cluster),
      this.describeTopicConfigs(cluster.topics.map((t) => t.name)),
    ]);
    // After ListOffsets, so every leader has the partitions loaded.
    const sizes = await this.logDirSizes(refs, cluster);
    return cluster.topics.map((t) => ({
      name: t.name,
      topicId: t.topicId,
      partitions: t.partitions.map((p) => ({
        ...p,
        earliestOffset: earliest.get(`${t.name}/${p.partition}`) ?? -1,
        latestOffset: latest.get(`${t.name}/${p.partition}`) ?? -1,
        sealedBytes: sizes.get(`${t.name}/${p.partition}`)?.sealed ?? -1,
        unsealedBytes: sizes.get(`${t.name}/${p.partition}`)?.unsealed ?? -1,
      })),
      configs: configs.get(t.name) ?? [],
    }));
  }

  /**
   * Stored bytes by `topic/partition` (DescribeLogDirs to each partition's leader): in sealed
   * segments, and in the write-ahead stream (this project's brokers report it as the
   * `write-ahead` log dir; any other log dir counts as sealed, so Apache Kafka's logs are too).
   */
  async logDirSizes(
    refs: TopicPartitionRef[],
    cluster: ClusterInfo,
  ): Promise<Map<string, { sealed: number; unsealed: number }>> {
    const out = new Map<string, { sealed: number; unsealed: number }>();
    const leaders = new Set<number>();
    for (const t of cluster.topics) {
      for (const p of t.partitions) if (p.leader >= 0) leaders.add(p.leader);
    }
    const wanted = new Set(refs.map((r) => `${r.topic}/${r.partition}`));
    const schema = API_SCHEMAS[35];
    const version = this.version(schema, 0);
    await Promise.all([...leaders].map(async (leader) => {
      const conn = await this.#connectionTo(leader);
      const byTopic = new Map<string, number[]>();
      for (const r of refs) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r.partition]);
      const res = await this.#send(conn, schema, version, {
        topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
      });
      for (const dir of res.results) {
        if (dir.errorCode !== 0) continue;
        for (const t of dir.topics) {
          for (const p of t.partitions) {
            const key = `${t.name}/${p.partitionIndex}`;
            if (!wanted.has(key)) continue;
            const entry = out.get(key) ?? { sealed: 0, unsealed: 0 };
            if (dir.logDir === WRITE_AHEAD_LOG_DIR) entry.unsealed += p.partitionSize;
            else entry.sealed += p.partitionSize;
            out.set(key, entry);
          }
        }
      }
    }));
    return out;
  }

  /**
   * Offsets by `topic/partition`, each asked of its partition's leader. A
   * timestamp with no record at or after it maps to -1.
   */
  async listOffsets(
    refs: TopicPartitionRef[],
    spec: OffsetSpec,
    cluster?: ClusterInfo,
  ): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (refs.length === 0) return out;
    const topics = [...new Set(refs.map((r) => r.topic))];
    const known = cluster ?? await this.metadata(topics);
    const leaders = new Map<string, number>();
    for (const t of known.topics) {
      for (const p of t.partitions) leaders.set(`${t.name}/${p.partition}`, p.leader);
    }
    const byLeader = new Map<number, TopicPartitionRef[]>();
    for (const ref of refs) {
      const leader = leaders.get(`${ref.topic}/${ref.partition}`);
      if (leader === undefined) {
        throw new AdminError(`Partition ${ref.partition} of topic "${ref.topic}" does not exist`);
      }
      if (leader < 0) {
        throw new AdminError(
          `Partition ${ref.partition} of topic "${ref.topic}" has no leader; retry`,
        );
      }
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), ref]);
    }
    const timestamp = spec === "earliest" ? -2 : spec === "latest" ? -1 : spec.timestamp;
    const schema = API_SCHEMAS[2];
    const version = this.version(schema, 1);
    await Promise.all([...byLeader].map(async ([leader, group]) => {
      const conn = await this.#connectionTo(leader);
      const byTopic = new Map<string, number[]>();
      for (const r of group) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r.partition]);
      const res = await this.#send(conn, schema, version, {
        replicaId: -1,
        isolationLevel: 0,
        topics: [...byTopic].map(([name, partitions]) => ({
          name,
          partitions: partitions.map((p) => ({
            partitionIndex: p,
            currentLeaderEpoch: -1,
            timestamp,
            maxNumOffsets: 1,
          })),
        })),
        timeoutMs: this.#timeoutMs,
      });
      for (const t of res.topics) {
        for (const p of t.partitions) {
          check(
            p.errorCode,
            null,
            `Cannot list offsets of partition ${p.partitionIndex} of "${t.name}"`,
          );
          out.set(`${t.name}/${p.partitionIndex}`, p.offset ?? -1);
        }
      }
    }));
    return out;
  }

  /**
   * Deletes the records of one partition before `before` (-1: everything up to the high
   * watermark) on its leader (DeleteRecords); returns the partition's new log start offset.
   */
  async deleteRecords(ref: TopicPartitionRef, before: number): Promise<number> {
    const cluster = await this.metadata([ref.topic]);
    const partition = cluster.topics.find((t) => t.name === ref.topic)?.partitions
      .find((p) => p.partition === ref.partition);
    if (!partition) {
      throw new AdminError(`Partition ${ref.partition} of topic "${ref.topic}" does not exist`);
    }
    if (partition.leader < 0) {
      throw new AdminError(
        `Partition ${ref.partition} of topic "${ref.topic}" has no leader; retry`,
      );
    }
    const conn = await this.#connectionTo(partition.leader);
    const schema = API_SCHEMAS[21];
    const res = await this.#send(conn, schema, this.version(schema, 0), {
      topics: [{
        name: ref.topic,
        partitions: [{ partitionIndex: ref.partition, offset: before }],
      }],
      timeoutMs: this.#timeoutMs,
    });
    const result = res.topics[0]?.partitions[0];
    if (!result) throw new AdminError(`DeleteRecords answered nothing for "${ref.topic}"`);
    check(
      result.errorCode,
      null,
      `Cannot delete records of partition ${ref.partition} of "${ref.topic}"`,
    );
    return result.lowWatermark;
  }

  // ---- SCRAM users -----------------------------------------------------------------------

  /** Users with SCRAM credentials: name -> [mechanism type, iterations][]. */
  async describeScramUsers(
    names: string[] | null = null,
  ): Promise<Map<string, [number, number][]>> {
    const schema = API_SCHEMAS[50];
    const res = await this.#send(this.#bootstrap, schema, this.version(schema), {
      users: names === null ? null : names.map((name) => ({ name })),
    });
    check(res.errorCode, res.errorMessage, "Cannot describe SCRAM credentials");
    const out = new Map<string, [number, number][]>();
    for (const r of res.results) {
      check(r.errorCode, r.errorMessage, `Cannot describe the credentials of "${r.user}"`);
      out.set(r.user, r.credentialInfos.map((c) => [c.mechanism, c.iterations]));
    }
    return out;
  }

  /** Upserts and deletes SCRAM credentials (salted on this side: the password never travels). */
  async alterScramUsers(change: {
    upsertions?: {
      name: string;
      mechanism: number;
      iterations: number;
      salt: Uint8Array;
      saltedPassword: Uint8Array;
    }[];
    deletions?: { name: string; mechanism: number }[];
  }): Promise<void> {
    const schema = API_SCHEMAS[51];
    const res = await this.#send(this.#bootstrap, schema, this.version(schema), {
      upsertions: change.upsertions ?? [],
      deletions: change.deletions ?? [],
    });
    for (const r of res.results) {
      check(r.errorCode, r.errorMessage, `Cannot change the credentials of "${r.user}"`);
    }
  }

  // ---- ACLs ---------------------------------------------------------------------------

  /** Creates ACL bindings (CreateAcls); fails on the first binding the broker refused. */
  async createAcls(bindings: AclBindingSpec[]): Promise<void> {
    const schema = API_SCHEMAS[30];
    const res = await this.#send(this.#bootstrap, schema, this.version(schema, 1), {
      creations: bindings.map((b) => ({
        resourceType: b.resourceType,
        resourceName: b.resourceName,
        resourcePatternType: b.patternType,
        principal: b.principal,
        host: b.host,
        operation: b.operation,
        permissionType: b.permissionType,
      })),
    });
    res.results.forEach((r, i) =>
      check(r.errorCode, r.errorMessage, `Cannot create ACL ${JSON.stringify(bindings[i])}`)
    );
  }

  /** The bindings matching `filter` (DescribeAcls). */
  async describeAcls(filter: AclFilterSpec): Promise<AclBindingSpec[]> {
    const schema = API_SCHEMAS[29];
    const res = await this.#send(this.#bootstrap, schema, this.version(schema, 1), {
      resourceTypeFilter: filter.resourceType,
      resourceNameFilter: filter.resourceName,
      patternTypeFilter: filter.patternType,
      principalFilter: filter.principal,
      hostFilter: filter.host,
      operation: filter.operation,
      permissionType: filter.permissionType,
    });
    check(res.errorCode, res.errorMessage, "Cannot describe ACLs");
    return res.resources.flatMap((r) =>
      r.acls.map((a) => ({
        resourceType: r.resourceType,
        resourceName: r.resourceName,
        patternType: r.patternType ?? 3,
        principal: a.principal,
        host: a.host,
        operation: a.operation,
        permissionType: a.permissionType,
      }))
    );
  }

  /** Deletes the bindings matching each filter (DeleteAcls); returns those deleted. */
  async deleteAcls(filters: AclFilterSpec[]): Promise<AclBindingSpec[]> {
    const schema = API_SCHEMAS[31];
    const res = await this.#send(this.#bootstrap, schema, this.version(schema, 1), {
      filters: filters.map((f) => ({
        resourceTypeFilter: f.resourceType,
        resourceNameFilter: f.resourceName,
        patternTypeFilter: f.patternType,
        principalFilter: f.principal,
        hostFilter: f.host,
        operation: f.operation,
        permissionType: f.permissionType,
      })),
    });
    const out: AclBindingSpec[] = [];
    for (const r of res.filterResults) {
      check(r.errorCode, r.errorMessage, "Cannot delete ACLs");
      for (const m of r.matchingAcls) {
        check(m.errorCode, m.errorMessage, "Cannot delete an ACL");
        out.push({
          resourceType: m.resourceType,
          resourceName: m.resourceName,
          patternType: m.patternType ?? 3,
          principal: m.principal,
          host: m.host,
          operation: m.operation,
          permissionType: m.permissionType,
        });
      }
    }
    return out;
  }

  // ---- transactions -------------------------------------------------------------------

  /** Every transactional id on every broker, optionally only those in `states`. */
  async listTransactions(states: string[] = []): Promise<TransactionListing[]> {
    const cluster = await this.metadata([]);
    const schema = API_SCHEMAS[66];
    const version = this.version(schema);
    const all = new Map<string, TransactionListing>();
    await Promise.all(cluster.brokers.map(async (b) => {
      const res = await this.#send(await this.#connectionTo(b.nodeId), schema, version, {
        stateFilters: states,
        producerIdFilters: [],
        durationFilter: -1,
      });
      check(res.errorCode, null, `Cannot list transactions on broker ${b.nodeId}`);
      for (const t of res.transactionStates) {
        all.set(t.transactionalId, {
          transactionalId: t.transactionalId,
          producerId: t.producerId,
          state: t.transactionState,
          coordinator: b.nodeId,
        });
      }
    }));
    return [...all.values()].sort((a, b) =>
      a.transactionalId < b.transactionalId ? -1 : a.transactionalId > b.transactionalId ? 1 : 0
    );
  }

  /** A transactional id's state at its coordinator. */
  describeTransaction(transactionalId: string): Promise<TransactionDescription> {
    const what = `Cannot describe transactional id "${transactionalId}"`;
    return this.#withCoordinator(transactionalId, what, async ({ nodeId, conn }) => {
      const schema = API_SCHEMAS[65];
      const res = await this.#send(conn, schema, this.version(schema), {
        transactionalIds: [transactionalId],
      });
      const t = res.transactionStates[0];
      checkCoordinator(t.errorCode, null);
      check(t.errorCode, null, what);
      return {
        transactionalId,
        coordinator: nodeId,
        state: t.transactionState,
        producerId: t.producerId,
        producerEpoch: t.producerEpoch,
        timeoutMs: t.transactionTimeoutMs,
        startTimeMs: t.transactionStartTimeMs,
        partitions: t.topics.flatMap((x) =>
          x.partitions.map((partition) => ({ topic: x.topic, partition }))
        ),
      };
    }, 1);
  }

  /**
   * Fences the producer of `transactionalId` as a new instance would: InitProducerId at its
   * coordinator bumps the epoch and aborts the transaction left open. Returns the new epoch.
   */
  fenceTransactionalId(transactionalId: string, timeoutMs = 60_000): Promise<number> {
    const what = `Cannot abort the transaction of "${transactionalId}"`;
    return this.#withCoordinator(transactionalId, what, async ({ conn }) => {
      const schema = API_SCHEMAS[22];
      const res = await this.#send(conn, schema, this.version(schema), {
        transactionalId,
        transactionTimeoutMs: timeoutMs,
        producerId: -1,
        producerEpoch: -1,
      });
      // A transaction still being completed answers CONCURRENT_TRANSACTIONS: ask again.
      if (res.errorCode === ERROR_CODES.CONCURRENT_TRANSACTIONS) {
        throw new CoordinatorNotReady(describeError(res.errorCode, null));
      }
      checkCoordinator(res.errorCode, null);
      check(res.errorCode, null, what);
      return res.producerEpoch;
    }, 1);
  }

  // ---- consumer groups --------------------------------------------------------------

  /** Every group on every broker, optionally only those in `states` (case-insensitive). */
  async listGroups(states: string[] = []): Promise<GroupListing[]> {
    const cluster = await this.metadata([]);
    const schema = API_SCHEMAS[16];
    const version = this.version(schema);
    const wanted = new Set(states.map((s) => s.toLowerCase()));
    const all = new Map<string, GroupListing>();
    const listOn = async (nodeId: number) => {
      const conn = await this.#connectionTo(nodeId);
      for (let attempt = 0;; attempt++) {
        const res = await this.#send(conn, schema, version, {
          statesFilter: version >= 4 ? states : [],
          typesFilter: [],
        });
        // A coordinator still loading its groups answers COORDINATOR_LOAD_IN_PROGRESS.
        if (
          !COORDINATOR_NOT_READY_CODES.has(res.errorCode) || attempt >= COORDINATOR_ATTEMPTS_MAX
        ) {
          check(res.errorCode, null, `Cannot list groups on broker ${nodeId}`);
          return res.groups;
        }
        await new Promise((r) => setTimeout(r, COORDINATOR_RETRY_MS));
      }
    };
    await Promise.all(cluster.brokers.map(async (b) => {
      for (const g of await listOn(b.nodeId)) {
        all.set(g.groupId, {
          groupId: g.groupId,
          state: g.groupState ?? "",
          protocolType: g.protocolType,
        });
      }
    }));
    let groups = [...all.values()];
    if (groups.some((g) => g.state === "")) {
      // Brokers before ListGroups v4 do not say the state: describe to learn it.
      for (const g of groups) {
        if (g.state === "") g.state = (await this.describeGroup(g.groupId)).state;
      }
    }
    if (wanted.size > 0) groups = groups.filter((g) => wanted.has(g.state.toLowerCase()));
    return groups.sort((a, b) => a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0);
  }

  /**
   * Runs `fn` against the coordinator of `group`, finding it again and
   * retrying (bounded) while it is loading or has moved: what Kafka's admin
   * client does, and what a broker that just created its offsets topic needs.
   */
  async #withCoordinator<T>(
    group: string,
    what: string,
    fn: (c: { nodeId: number; conn: KafkaConnection }) => Promise<T>,
    keyType: 0 | 1 = 0,
  ): Promise<T> {
    let last = "";
    for (let attempt = 0; attempt < COORDINATOR_ATTEMPTS_MAX; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, COORDINATOR_RETRY_MS));
      try {
        return await fn(await this.#coordinator(group, keyType));
      } catch (err) {
        if (!(err instanceof CoordinatorNotReady)) throw err;
        last = err.message;
      }
    }
    throw new AdminError(`${what}: ${last}; the group coordinator is not ready, retry later`);
  }

  /** The node id of the broker coordinating `group` (retried while there is none yet). */
  async groupCoordinator(group: string): Promise<number> {
    return await this.#withCoordinator(
      group,
      `Cannot find the coordinator of group "${group}"`,
      ({ nodeId }) => Promise.resolve(nodeId),
    );
  }

  /** The broker coordinating `group` (throws CoordinatorNotReady while there is none). */
  async #coordinator(
    group: string,
    keyType: 0 | 1 = 0,
  ): Promise<{ nodeId: number; conn: KafkaConnection }> {
    const schema = API_SCHEMAS[10];
    const version = this.version(schema, keyType === 1 ? 1 : 0);
    const res = await this.#send(this.#bootstrap, schema, version, {
      key: group,
      keyType,
      coordinatorKeys: [group],
    });
    const c = version >= 4 ? res.coordinators![0] : {
      nodeId: res.nodeId!,
      host: res.host!,
      port: res.port!,
      errorCode: res.errorCode!,
      errorMessage: res.errorMessage ?? null,
    };
    checkCoordinator(c.errorCode, c.errorMessage);
    check(c.errorCode, c.errorMessage, `Cannot find the coordinator of group "${group}"`);
    this.#brokers.set(c.nodeId, { nodeId: c.nodeId, host: c.host, port: c.port, rack: null });
    return { nodeId: c.nodeId, conn: await this.#connectionTo(c.nodeId) };
  }

  /** The group's state, protocol and members with their assignments. */
  describeGroup(group: string): Promise<GroupDescription> {
    const what = `Cannot describe group "${group}"`;
    return this.#withCoordinator(group, what, async ({ nodeId, conn }) => {
      const schema = API_SCHEMAS[15];
      const res = await this.#send(conn, schema, this.version(schema), {
        groups: [group],
        includeAuthorizedOperations: false,
      });
      const g = res.groups[0];
      checkCoordinator(g.errorCode, null);
      // From v6 (KIP-1043) a group that does not exist (Kafka 4.x: also one with committed
      // offsets and no members) is GROUP_ID_NOT_FOUND; older versions said state "Dead". So is a
      // group of the KIP-848 consumer protocol: ConsumerGroupDescribe describes it.
      const dead = g.errorCode === ERROR_CODES.GROUP_ID_NOT_FOUND ||
        (g.errorCode === ERROR_CODES.NONE && g.groupState === "Dead");
      if (dead) {
        const consumer = await this.#describeConsumerGroup(conn, group, nodeId);
        if (consumer) return consumer;
        return {
          groupId: group,
          state: "Dead",
          protocolType: "",
          protocol: "",
          coordinator: nodeId,
          members: [],
        };
      }
      check(g.errorCode, null, what);
      return {
        groupId: g.groupId,
        state: g.groupState,
        protocolType: g.protocolType,
        protocol: g.protocolData,
        coordinator: nodeId,
        members: g.members.map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId ?? null,
          clientId: m.clientId,
          clientHost: m.clientHost,
          assignment: g.protocolType === "consumer"
            ? parseConsumerAssignment(m.memberAssignment)
            : [],
        })),
      };
    });
  }

  /** A KIP-848 group through ConsumerGroupDescribe; null when it is not one (or not served). */
  async #describeConsumerGroup(
    conn: KafkaConnection,
    group: string,
    nodeId: number,
  ): Promise<GroupDescription | null> {
    const schema = API_SCHEMAS[69];
    if (!this.#versions.has(schema.request.apiKey)) return null;
    const res = await this.#send(conn, schema, this.version(schema), {
      groupIds: [group],
      includeAuthorizedOperations: false,
    });
    const g = res.groups[0];
    checkCoordinator(g.errorCode, g.errorMessage ?? null);
    // GROUP_ID_NOT_FOUND ("not a consumer group"), or a refusal: the classic answer stands.
    if (g.errorCode !== ERROR_CODES.NONE) return null;
    return {
      groupId: g.groupId,
      state: g.groupState,
      protocolType: "consumer",
      protocol: g.assignorName,
      coordinator: nodeId,
      members: g.members.map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.instanceId ?? null,
        clientId: m.clientId,
        clientHost: m.clientHost,
        assignment: m.assignment.topicPartitions.map((t) => ({
          topic: t.topicName,
          partitions: [...t.partitions],
        })),
      })),
    };
  }

  /** The group's committed offsets (partitions without one are left out). */
  fetchOffsets(group: string): Promise<GroupOffset[]> {
    const what = `Cannot fetch the offsets of group "${group}"`;
    return this.#withCoordinator(group, what, async ({ conn }) => {
      const schema = API_SCHEMAS[9];
      const version = this.version(schema, 2, TOPIC_NAMES_MAX_OFFSET_VERSION);
      const res = await this.#send(conn, schema, version, {
        groupId: group,
        topics: null,
        groups: [{ groupId: group, memberId: null, memberEpoch: -1, topics: null }],
        requireStable: false,
      });
      const topics = version >= 8 ? res.groups![0].topics : res.topics!;
      const errorCode = version >= 8 ? res.groups![0].errorCode : res.errorCode ?? 0;
      checkCoordinator(errorCode, null);
      check(errorCode, null, what);
      const out: GroupOffset[] = [];
      for (const t of topics) {
        for (const p of t.partitions) {
          checkCoordinator(p.errorCode, null);
          check(p.errorCode, null, `${what} for "${t.name}-${p.partitionIndex}"`);
          if (p.committedOffset < 0) continue;
          out.push({
            topic: t.name ?? "",
            partition: p.partitionIndex,
            offset: p.committedOffset,
            metadata: p.metadata,
          });
        }
      }
      return out.sort((a, b) =>
        a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition
      );
    });
  }

  /** Commits offsets for an empty group, as Kafka's tools do (generation -1, no member). */
  commitOffsets(group: string, offsets: GroupOffset[]): Promise<void> {
    const what = `Cannot commit offsets for group "${group}"`;
    return this.#withCoordinator(group, what, async ({ conn }) => {
      const schema = API_SCHEMAS[8];
      const version = this.version(schema, 2, TOPIC_NAMES_MAX_OFFSET_VERSION);
      const byTopic = new Map<string, GroupOffset[]>();
      for (const o of offsets) byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), o]);
      const res = await this.#send(conn, schema, version, {
        groupId: group,
        generationIdOrMemberEpoch: -1,
        memberId: "",
        groupInstanceId: null,
        retentionTimeMs: -1,
        topics: [...byTopic].map(([name, list]) => ({
          name,
          partitions: list.map((o) => ({
            partitionIndex: o.partition,
            committedOffset: o.offset,
            committedLeaderEpoch: -1,
            commitTimestamp: -1,
            committedMetadata: o.metadata ?? "",
          })),
        })),
      });
      for (const t of res.topics) {
        for (const p of t.partitions) {
          checkCoordinator(p.errorCode, null);
          check(p.errorCode, null, `${what} on "${t.name}-${p.partitionIndex}"`);
        }
      }
    });
  }

  /** Deletes an empty group and its committed offsets. */
  deleteGroup(group: string): Promise<void> {
    const what = `Cannot delete group "${group}"`;
    return this.#withCoordinator(group, what, async ({ conn }) => {
      const schema = API_SCHEMAS[42];
      const res = await this.#send(conn, schema, this.version(schema), { groupsNames: [group] });
      const r = res.results[0];
      checkCoordinator(r.errorCode, null);
      if (r.errorCode === ERROR_CODES.GROUP_ID_NOT_FOUND) {
        throw new AdminError(`Group "${group}" does not exist`, r.errorCode);
      }
      if (r.errorCode === ERROR_CODES.NON_EMPTY_GROUP) {
        throw new AdminError(
          `${what}: it has active members; stop its consumers first`,
          r.errorCode,
        );
      }
      check(r.errorCode, null, what);
    });
  }
}

/** The coordinator is loading, moving or not elected yet: find it again and retry. */
class CoordinatorNotReady extends Error {
  override name = "CoordinatorNotReady";
}

const COORDINATOR_NOT_READY_CODES: ReadonlySet<number> = new Set([
  ERROR_CODES.COORDINATOR_NOT_AVAILABLE,
  ERROR_CODES.COORDINATOR_LOAD_IN_PROGRESS,
  ERROR_CODES.NOT_COORDINATOR,
]);

function checkCoordinator(code: number, message: string | null): void {
  if (COORDINATOR_NOT_READY_CODES.has(code)) {
    throw new CoordinatorNotReady(describeError(code, message));
  }
}

/** Rejects after `timeoutMs` (clearing its timer either way). */
async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new AdminError(`${what} got no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
