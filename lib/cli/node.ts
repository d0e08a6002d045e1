/**
 * Assembles a running broker node from its parts — object store, metadata
 * store, log manager, broker, Kafka listener, HTTP health/metrics and the gRPC
 * control service — so
 * `kafscale serve` and the tests start exactly the same thing with
 * different stores behind it.
 *
 * The node registers itself on its session lease (broker_registrar.ts), so
 * brokers sharing one metadata store know each other's addresses.
 */
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import { Metrics } from "../util/metrics.ts";
import type { ObjectStore } from "../storage/object_store.ts";
import type { MetadataStore } from "../metadata/metadata_store.ts";
import { ClusterMetadata, type TopicRecord } from "../metadata/cluster_metadata.ts";
import { MAX_TXN_OPERATIONS } from "../metadata/metadata_store.ts";
import { exitOnBrokenInvariant } from "../util/assert.ts";
import { watchStopStep } from "../util/stop_step.ts";
import {
  INTER_BROKER_PRINCIPAL,
  INTER_BROKER_USER,
  interBrokerPrincipal,
  preferredProtocol,
} from "../broker/inter_broker.ts";
import { RetentionTask } from "../log/retention.ts";
import { Broker } from "../broker/broker.ts";
import { retentionLimits } from "../broker/topic_config.ts";
import type { CompactionPolicy } from "../log/compaction/schedule.ts";
import { GroupCoordinator, type GroupCoordinatorConfig } from "../coordinator/group_coordinator.ts";
import { Dispatcher } from "../broker/dispatcher.ts";
import { HANDLERS } from "../broker/handler_table.ts";
import { KafkaServerGroup } from "../server/kafka_server.ts";
import { loadTlsMaterial } from "../server/tls_listener.ts";
import { scramCredential } from "../security/scram.ts";
import { type HealthCheck, startHttpServer } from "../control/http_server.ts";
import { consoleRoutes, THROUGHPUT_INTERVAL_MS, ThroughputHistory } from "../control/console.ts";
import { AdminClient } from "../client/admin.ts";
import {
  type DrainResult,
  GuardedLogManager,
  PartitionDrainer,
} from "../control/partition_drain.ts";
import { MetricsSamples } from "../control/metrics_samples.ts";
import { EagerTakeover } from "../control/eager_takeover.ts";
import {
  type ControlServer,
  ControlService,
  startControlServer,
} from "../control/control_service.ts";
import { VERSION } from "./version.ts";
import { BrokerRegistrar } from "./broker_registrar.ts";
import {
  advertisedAddress,
  isLoopbackHost,
  listenerAdvertisedAddress,
  type ServeConfig,
} from "./serve_config.ts";

/** Requests read ahead per connection before reading pauses. */
const MAX_IN_FLIGHT_REQUESTS = 64;
/** Broker session lease; a broker that cannot renew it stops writing. */
export const LEASE_TTL_MS = 10_000;
/** Flush rounds failing in a row after which /readyz says not ready. */
const FAILING_ROUNDS_UNREADY = 3;
/** Sparse index density: one entry per this many messages. */
const INDEX_INTERVAL_MESSAGES = 100;
/** How often the broker registration is checked against the current session lease. */
const REGISTRATION_CHECK_MS = Math.floor(LEASE_TTL_MS / 3);
/** How long a stop waits for control calls in flight (open watch streams are ended first). */
const CONTROL_STOP_GRACE_MS = 1_000;

export interface NodeDeps {
  config: ServeConfig;
  objectStore: ObjectStore;
  metadataStore: MetadataStore;
  clock: Clock;
  logger: Logger;
  /** Group coordinator settings (Kafka's group.* broker configs); defaults otherwise. */
  coordinatorConfig?: Partial<GroupCoordinatorConfig>;
  /**
   * Dependency checks for `/healthz` and `/readyz` (default: a read of each
   * store); the HTTP server gives each a deadline.
   */
  healthChecks?: HealthCheck[];
  /** How often retention runs (Kafka's log.retention.check.interval.ms; default 5 min). */
  retentionCheckIntervalMs?: number;
}

export interface RunningNode {
  broker: Broker;
  /** The first listener's bound address. */
  kafkaAddress: Deno.NetAddr;
  /** Every Kafka listener's name and bound address. */
  listenerAddresses: { name: string; addr: Deno.NetAddr }[];
  httpAddress: Deno.NetAddr;
  /** The gRPC control listener (kafscale.control). */
  controlAddress: { hostname: string; port: number };
  metrics: Metrics;
  /** The background retention task (`runOnce()` runs a pass now). */
  retention: RetentionTask;
  /**
   * Hands every owned partition to the other brokers (DrainPartitions with none named; with no
   * other broker it only flushes). `serve` runs it on SIGTERM before `stop()`.
   */
  drain(reason: string, deadlineMs: number): Promise<DrainResult>;
  /** Re-reads the TLS certificate, key and client CAs of the TLS listeners (SIGHUP). */
  reloadTls(): Promise<void>;
  /** Graceful stop: no new requests, in-flight ones answered, pending data flushed. */
  stop(): Promise<void>;
}

export async function startNode(deps: NodeDeps): Promise<RunningNode> {
  const { config, objectStore, metadataStore, clock, logger } = deps;
  // The gRPC library loads while the stores start (it is needed only at the end).
  const grpcLoading = import("../control/grpc_adapter.ts").catch(() => undefined);
  const metrics = new Metrics();
  const metadata = new ClusterMetadata(metadataStore, {
    // One transaction per flush round on the embedded store; etcd caps transactions.
    txnOpsMax: config.etcdEndpoints.length > 0 ? config.etcdMaxTxnOps : MAX_TXN_OPERATIONS,
  });
  // The broker (constructed below) keeps the topic cache the sealing policy reads.
  const topics: { broker: Broker | null } = { broker: null };
  const logs = new GuardedLogManager({
    objectStore,
    metadata,
    clock,
    logger,
    brokerId: config.brokerId,
    config: {
      namespace: config.namespace,
      segmentBytesMax: config.segmentBytes,
      flushIntervalMs: config.flushIntervalMs,
      flushBytes: config.flushBytes,
      cacheBytesMax: config.cacheBytes,
      indexIntervalMessages: INDEX_INTERVAL_MESSAGES,
      leaseTtlMs: LEASE_TTL_MS,
      producerIdExpirationMs: config.producerIdExpirationMs,
      sealMaxAgeMs: config.sealMaxAgeMs,
      // S3 PUTs ignore the pace (PutOptions.pace); only a local disk is paced.
      segmentWriteRateMin: config.segmentWriteRateMin,
      compactionDedupeBufferBytes: config.compactionBufferBytes,
    },
    onBrokenInvariant: exitOnBrokenInvariant(logger),
    sealPolicyFor: (name) => {
      const broker = topics.broker;
      const topic = broker?.cachedTopic(name);
      if (!broker || !topic) return undefined;
      return {
        segmentBytes: Number(broker.topicConfig(topic, "segment.bytes")),
        segmentMs: Number(broker.topicConfig(topic, "segment.ms")),
        compaction: compactionPolicyOf(broker, topic),
      };
    },
  });
  const drainer = new PartitionDrainer({ logs, metadata, brokerId: config.brokerId, logger });
  logs.setAcquireGuard((topic, partition) => drainer.refuses(topic, partition));
  await logs.start();
  const initial = advertisedAddress(config, config.listen.port);
  const coordinator = new GroupCoordinator({
    metadata,
    clock,
    logger,
    metrics,
    config: {
      initialRebalanceDelayMs: config.groupInitialRebalanceDelayMs,
      minSessionTimeoutMs: config.groupMinSessionTimeoutMs,
      maxSessionTimeoutMs: config.groupMaxSessionTimeoutMs,
      ...deps.coordinatorConfig,
    },
    // Group owner keys hang on the session lease, so brokers sharing the store agree on
    // who coordinates each group (FindCoordinator) and a dead broker's groups move on.
    ownership: {
      brokerId: config.brokerId,
      get leaseId() {
        return logs.leaseId;
      },
      sessionLease: () => logs.sessionLease(),
    },
  });
  const broker = new Broker({
    settings: {
      nodeId: config.brokerId,
      host: initial.host,
      port: initial.port,
      rack: null,
      autoCreateTopics: config.autoCreateTopics,
      defaultPartitions: config.defaultPartitions,
      messageMaxBytes: config.messageMaxBytes,
      segmentBytes: config.segmentBytes,
      transactionVersion: config.transactionVersion === 1 ? 1 : 2,
      fetchSessionCacheSlots: config.fetchSessionCacheSlots,
      fetchMaxBytes: config.fetchMaxBytes,
      consumerGroupSessionTimeoutMs: config.groupConsumerSessionTimeoutMs,
      consumerGroupHeartbeatIntervalMs: config.groupConsumerHeartbeatIntervalMs,
      saslMechanisms: config.saslEnabledMechanisms.split(",").map((m) => m.trim()).filter((m) =>
        m !== ""
      ),
      connectionsMaxReauthMs: config.connectionsMaxReauthMs,
      superUsers: superUsersOf(config),
      authorizer: config.authorizer === "acl",
      allowEveryoneIfNoAclFound: config.allowEveryoneIfNoAclFound,
      tls: config.tlsCertFile !== null && config.tlsKeyFile !== null
        ? {
          certFile: config.tlsCertFile,
          keyFile: config.tlsKeyFile,
          clientCaFile: config.tlsClientCaFile,
        }
        : null,
    },
    metadata,
    logs,
    clock,
    logger,
    metrics,
    coordinator,
    transactions: {
      maxTimeoutMs: config.transactionMaxTimeoutMs,
      checkIntervalMs: config.transactionCheckIntervalMs,
      idExpirationMs: config.transactionalIdExpirationMs,
    },
  });
  topics.broker = broker;
  try {
    await bootstrapAdmin(config, metadata, logger);
  } catch (err) {
    await logs.close();
    throw err;
  }
  try {
    await broker.start();
  } catch (err) {
    await logs.close();
    throw err;
  }
  const tls = config.tlsCertFile !== null && config.tlsKeyFile !== null
    ? {
      certFile: config.tlsCertFile,
      keyFile: config.tlsKeyFile,
      clientCaFile: config.tlsClientCaFile,
    }
    : undefined;
  const server = new KafkaServerGroup(
    config.kafkaListeners.map((l) => ({
      hostname: l.bind.host,
      port: l.bind.port,
      listenerName: l.name,
      protocol: l.protocol,
      // Client certificates (mTLS) authenticate SSL listeners; SASL_SSL ones log in with SASL.
      tls: tls && l.protocol === "SASL_SSL" ? { ...tls, clientCaFile: null } : tls,
      maxFrameBytes: config.maxFrameBytes,
      maxInFlightRequests: MAX_IN_FLIGHT_REQUESTS,
      maxConnections: config.maxConnections,
      ...(l.protocol.startsWith("SASL_")
        ? {
          unauthenticatedMaxFrameBytes: config.saslMaxReceiveBytes,
          authTimeoutMs: config.saslAuthTimeoutMs,
        }
        : {}),
    })),
    new Dispatcher(broker, HANDLERS),
    logger,
    { queuedMaxRequestBytes: config.queuedMaxRequestBytes, maxFrameBytes: config.maxFrameBytes },
  );
  let bound: { name: string; protocol: string; addr: Deno.NetAddr }[];
  try {
    bound = await server.listen();
  } catch (err) {
    await logs.close();
    const names = config.kafkaListeners.map((l) => `${l.name}://${l.bind.host}:${l.bind.port}`);
    throw new Error(`Cannot listen on ${names.join(", ")}: ${(err as Error).message}`);
  }
  const kafkaAddress = bound[0].addr;
  const listeners = bound.map((b, i) => ({
    name: b.name,
    protocol: b.protocol,
    ...listenerAdvertisedAddress(config.kafkaListeners[i], b.addr.port),
  }));
  const advertised = { host: listeners[0].host, port: listeners[0].port };
  broker.settings.host = advertised.host;
  broker.settings.port = advertised.port;
  broker.settings.listeners = listeners;
  warnUnauthenticatedListeners(config, logger);
  await warnInterBrokerPrincipal(config, listeners, logger);
  // Other brokers sharing the metadata store send clients here (Metadata).
  const registrar = new BrokerRegistrar({
    metadata,
    session: logs,
    clock,
    logger,
    registration: {
      brokerId: config.brokerId,
      host: advertised.host,
      port: advertised.port,
      rack: null,
      startedMs: clock.now(),
      listeners: listeners.map(({ name, protocol, host, port }) => ({
        name,
        protocol,
        host,
        port,
      })),
    },
    checkIntervalMs: REGISTRATION_CHECK_MS,
  });
  try {
    await registrar.start();
  } catch (err) {
    await server.stop(0);
    broker.stop();
    await logs.close();
    throw new Error(
      `Cannot register broker ${config.brokerId} in the metadata store: ${(err as Error).message}`,
    );
  }

  metrics.addCollector(() => {
    const flush = logs.flushStats;
    metrics.set("kafscale_flush_rounds", "Flush rounds run", flush.rounds);
    metrics.set(
      "kafscale_flush_partition_flushes",
      "Partition shares of flush rounds committed or failed",
      flush.flushes,
    );
    metrics.set("kafscale_flush_failed", "Partition flushes that failed", flush.failedFlushes);
    metrics.set("kafscale_flush_write_ms", "Time spent writing ahead", flush.writeMs);
    metrics.set("kafscale_flush_commit_ms", "Time spent committing end offsets", flush.commitMs);
    const wal = logs.walStats;
    metrics.set("kafscale_wal_rounds", "Flush rounds written ahead", wal.rounds);
    metrics.set("kafscale_wal_bytes", "Bytes written ahead", wal.bytes);
    metrics.set(
      "kafscale_objects_written",
      "Objects created in the object store (write-ahead files or objects, segments, indexes)",
      logs.objectsWritten,
    );
    const gc = logs.walGcStats;
    metrics.set(
      "kafscale_wal_objects_outstanding",
      "Write-ahead objects still referenced at the last garbage collection",
      gc.objectsOutstanding,
    );
    metrics.set(
      "kafscale_wal_bytes_outstanding",
      "Bytes of ranges in write-ahead objects still referenced at the last garbage collection",
      gc.bytesOutstanding,
    );
    metrics.set(
      "kafscale_wal_objects_deleted",
      "Write-ahead objects deleted once fully sealed",
      gc.objectsDeleted,
    );
    metrics.set(
      "kafscale_wal_index_records",
      "Write-ahead index records in the metadata store at the last garbage collection",
      gc.indexRecords,
    );
    metrics.set(
      "kafscale_wal_index_ranges",
      "Ranges those index records named",
      gc.indexRanges,
    );
    metrics.set(
      "kafscale_wal_index_records_merged",
      "Index records garbage collection replaced by merged ones (naming only unsealed ranges)",
      gc.recordsMerged,
    );
    metrics.set("kafscale_unsealed_bytes", "Record bytes not sealed yet", logs.unsealedBytes);
    const seal = logs.sealStats;
    metrics.set("kafscale_seal_segments", "Segments sealed", seal.segments);
    metrics.set("kafscale_seal_bytes", "Bytes of sealed segments", seal.bytes);
    metrics.set("kafscale_seal_ms", "Time spent sealing (reads to commit)", seal.totalMs);
    metrics.set("kafscale_seal_failures", "Seals that failed and were retried", seal.failures);
    const compaction = logs.compactionStats;
    metrics.setCounter("kafscale_compaction_runs", "Compaction runs", compaction.runs);
    metrics.setCounter(
      "kafscale_compaction_failures",
      "Compaction runs that failed (the old segments stay; retried)",
      compaction.failures,
    );
    metrics.setCounter(
      "kafscale_compaction_bytes_in",
      "Bytes of record batches compaction read",
      compaction.bytesIn,
    );
    metrics.setCounter(
      "kafscale_compaction_bytes_out",
      "Bytes of record batches compaction kept",
      compaction.bytesOut,
    );
    metrics.setCounter(
      "kafscale_compaction_records_removed",
      "Records compaction removed (superseded, expired tombstones, keyless)",
      compaction.recordsRemoved,
    );
    metrics.setCounter("kafscale_compaction_ms", "Time spent compacting", compaction.totalMs);
    // Per compacted partition this broker owns (rebuilt on each render: partitions move).
    metrics.reset("kafscale_partition_dirty_ratio");
    metrics.reset("kafscale_partition_seconds_since_compaction");
    const now = Date.now();
    for (const log of logs.loadedPartitions()) {
      const broker = topics.broker;
      const topic = broker?.cachedTopic(log.topic);
      if (!broker || !topic || !compactionPolicyOf(broker, topic)) continue;
      const labels = { topic: log.topic, partition: log.partition };
      metrics.set(
        "kafscale_partition_dirty_ratio",
        "Share of a compacted partition's sealed bytes not compacted yet",
        log.dirtyRatio,
        labels,
      );
      const last = log.lastCompactionMs;
      metrics.set(
        "kafscale_partition_seconds_since_compaction",
        "Seconds since the partition's last compaction run on this broker (-1: none yet)",
        last === null ? -1 : Math.round((now - last) / 1000),
        labels,
      );
    }
    metrics.set(
      "kafscale_flush_pending_bytes",
      "Appended bytes waiting for a flush",
      logs.pendingBytes,
    );
    metrics.set(
      "kafscale_segment_cache_bytes",
      "Bytes held by the segment cache",
      logs.cache.bytes,
    );
    metrics.set("kafscale_connections", "Open client connections", server.connectionCount);
    const memory = Deno.memoryUsage();
    metrics.set("kafscale_memory_rss_bytes", "Resident set size of the process", memory.rss);
    metrics.set("kafscale_memory_heap_used_bytes", "JavaScript heap in use", memory.heapUsed);
    metrics.set(
      "kafscale_memory_external_bytes",
      "Memory of buffers outside the JavaScript heap (record bytes, caches)",
      memory.external,
    );
    metrics.set(
      "kafscale_request_memory_bytes",
      "Bytes held by requests being read or queued (bounded by --queued-max-request-bytes)",
      server.requestMemory?.usedBytes ?? 0,
    );
    metrics.set(
      "kafscale_request_memory_waiting",
      "Connections not reading because the request memory bound is reached",
      server.requestMemory?.waiting ?? 0,
    );
  });
  let ready = false;
  let http: ReturnType<typeof startHttpServer>;
  // The console reads the cluster over the Kafka protocol from this broker's own listener.
  const history = new ThroughputHistory();
  const sample = () =>
    history.record(Date.now(), {
      produceBytes: metrics.value("kafscale_produce_bytes_total"),
      fetchBytes: metrics.value("kafscale_fetch_bytes_total"),
      produceRecords: metrics.value("kafscale_produce_records_total"),
      flushRounds: logs.flushStats.rounds,
      flushMs: logs.flushStats.writeMs + logs.flushStats.commitMs,
    });
  sample();
  const sampler = setInterval(sample, THROUGHPUT_INTERVAL_MS);
  let consoleAdmin: Promise<AdminClient> | null = null;
  const routes = consoleRoutes({
    admin: () => consoleAdmin ??= AdminClient.connect(`${advertised.host}:${advertised.port}`),
    resetAdmin: () => {
      const old = consoleAdmin;
      consoleAdmin = null;
      old?.then((a) => a.close(), () => undefined);
    },
    health: () => http.report(),
    broker: {
      nodeId: config.brokerId,
      version: VERSION,
      kafka: `${advertised.host}:${advertised.port}`,
    },
    history,
  });
  const stopConsole = async () => {
    clearInterval(sampler);
    const old = consoleAdmin;
    consoleAdmin = null;
    await old?.then((a) => a.close(), () => undefined);
  };
  // HTTPS and the control port's TLS use the broker's certificate (read again on SIGHUP).
  const portTls = config.tlsCertFile !== null && config.tlsKeyFile !== null &&
      (config.httpTls || config.controlTls)
    ? await readPortTls(config)
    : null;
  if (!isLoopbackHost(config.httpListen.host) && config.httpToken === null) {
    logger.warn(
      "The HTTP listener is not on loopback and has no token: metrics and the console are open to its network",
      {
        http: `${config.httpListen.host}:${config.httpListen.port}`,
        hint: 'set "--http-token" (and "--http-tls")',
      },
    );
  }
  try {
    http = startHttpServer({
      routes,
      hostname: config.httpListen.host,
      port: config.httpListen.port,
      tls: config.httpTls && portTls ? { cert: portTls.cert, key: portTls.key } : undefined,
      token: config.httpToken,
      openPaths: config.httpOpenPaths.split(",").map((p) => p.trim()).filter((p) => p !== ""),
      metrics,
      logger,
      isReady: () => ready,
      checks: [
        ...(deps.healthChecks ?? [
          {
            name: "metadata",
            check: async () => (await metadataStore.get("/kafscale/cluster/id"), null),
          },
          {
            name: "objects",
            check: async () => (await objectStore.list(`${config.namespace}/`), null),
          },
        ]),
        {
          // Stores can answer a probe while every flush round fails (a full disk, a refused
          // write): then produce cannot succeed, and the broker must not say it is ready.
          name: "flush",
          check: () => {
            const { failingRounds, lastError } = logs.flushStats;
            return Promise.resolve(
              failingRounds >= FAILING_ROUNDS_UNREADY
                ? `the last ${failingRounds} flush rounds failed: ${lastError}`
                : null,
            );
          },
        },
      ],
    });
  } catch (err) {
    await stopConsole();
    await server.stop(0);
    await registrar.stop();
    await logs.close();
    throw new Error(
      `Cannot listen on "${config.httpListen.host}:${config.httpListen.port}" (HTTP): ${
        (err as Error).message
      }`,
    );
  }
  const retention = new RetentionTask({
    logs,
    metadata,
    clock,
    logger,
    brokerId: config.brokerId,
    intervalMs: deps.retentionCheckIntervalMs ?? config.retentionCheckIntervalMs,
    // Retention applies only when cleanup.policy contains "delete".
    policyFor: (topic) => retentionLimits(topic.configs, broker.topicDefaults),
  });
  retention.start();
  // Partitions released by a drain elsewhere are taken over at once, not on first use.
  const takeover = new EagerTakeover({ broker, logs, metadata, drainer, logger });
  takeover.start();
  const samples = new MetricsSamples(() => clock.now());
  metrics.addCollector(() => samples.collectInto(metrics));
  const httpServer = http;
  let control: ControlServer;
  try {
    await grpcLoading;
    control = await startControlServer({
      hostname: config.controlListen.host,
      port: config.controlListen.port,
      token: config.controlToken,
      tls: config.controlTls && portTls ? portTls : undefined,
      logger,
      service: new ControlService({
        brokerId: config.brokerId,
        version: VERSION,
        logs,
        metadata,
        drainer,
        samples,
        isReady: async () => (await httpServer.report()).status === "ok",
        logger,
      }),
    });
  } catch (err) {
    await takeover.stop();
    await retention.stop();
    await server.stop(0);
    broker.stop();
    await registrar.stop();
    await logs.close();
    await stopConsole();
    await http.stop();
    throw new Error(
      `Cannot listen on "${config.controlListen.host}:${config.controlListen.port}" (gRPC ` +
        `control): ${(err as Error).message}`,
    );
  }
  ready = true;
  return {
    broker,
    kafkaAddress,
    listenerAddresses: bound.map((b) => ({ name: b.name, addr: b.addr })),
    httpAddress: http.addr,
    controlAddress: control.address,
    metrics,
    retention,
    drain: (reason, deadlineMs) => drainer.drain({ partitions: null, deadlineMs, reason }),
    async reloadTls() {
      await server.reloadTls();
      // HTTPS and the control port serve the same certificate: read again, given to both.
      if (portTls === null) return;
      const files = await readPortTls(config);
      if (config.httpTls) await http.reloadTls({ cert: files.cert, key: files.key });
      if (config.controlTls) control.reloadTls(files);
    },
    async stop() {
      ready = false;
      // Each step says so when it takes long, so a stop that hangs names where.
      const step = (name: string, run: () => Promise<unknown> | unknown) =>
        watchStopStep(logger, name, run);
      await step("control server", () => control.stop(CONTROL_STOP_GRACE_MS));
      await step("takeover", () => takeover.stop());
      drainer.stop();
      await step("retention", () => retention.stop());
      // The listener stops reading first; then the coordinator answers the JoinGroup and
      // SyncGroup requests it holds (NOT_COORDINATOR), and parked Fetch requests answer with
      // what they have, so the drain does not wait for them.
      const serverStopped = server.stop(config.shutdownTimeoutMs);
      broker.beginStop();
      await step("group coordinator", () => coordinator.stop());
      // Produce requests already read wait for a flush: run it now rather than
      // after the flush interval, so they are answered before the connections close.
      await step("last flush", () => logs.flushPending());
      await step("Kafka listener", () => serverStopped);
      broker.stop();
      await step("registration", () => registrar.stop());
      // Revoking the session lease removes the registration too.
      await step("partition logs (sealing)", () => logs.close());
      await step("console", () => stopConsole());
      await step("HTTP server", () => http.stop());
    },
  };
}

/**
 * The broker's certificate, key and client CA, as HTTPS and the control port serve them: read
 * and checked as the Kafka listeners' are (`loadTlsMaterial`).
 */
async function readPortTls(
  config: ServeConfig,
): Promise<{ cert: string; key: string; clientCa: string | null }> {
  const material = await loadTlsMaterial({
    certFile: config.tlsCertFile!,
    keyFile: config.tlsKeyFile!,
    clientCaFile: config.tlsClientCaFile,
  });
  return { cert: material.cert, key: material.key, clientCa: material.caPem };
}

/** A topic's compaction settings when its cleanup.policy includes "compact", else undefined. */
function compactionPolicyOf(broker: Broker, topic: TopicRecord): CompactionPolicy | undefined {
  const config = (key: string) => broker.topicConfig(topic, key);
  const policies = String(config("cleanup.policy")).split(",").map((p) => p.trim());
  if (!policies.includes("compact")) return undefined;
  return {
    minCompactionLagMs: Number(config("min.compaction.lag.ms")),
    maxCompactionLagMs: Number(config("max.compaction.lag.ms")),
    deleteRetentionMs: Number(config("delete.retention.ms")),
    minCleanableDirtyRatio: Number(config("min.cleanable.dirty.ratio")),
  };
}

/**
 * Plaintext is the embedded default, which is right on loopback; a listener any host can reach
 * that authenticates no one gets a warning at start (README "Security").
 */
function warnUnauthenticatedListeners(config: ServeConfig, logger: Logger): void {
  for (const l of config.kafkaListeners) {
    const open = l.protocol === "PLAINTEXT" || (l.protocol === "SSL" && !config.tlsClientCaFile);
    if (open && !isLoopback(l.bind.host)) {
      logger.warn(
        "Listener accepts clients from the network without authentication: anyone who reaches " +
          "it can read and write every topic; use SASL_SSL (or mTLS) there",
        { listener: l.name, address: `${l.bind.host}:${l.bind.port}` },
      );
    }
  }
}

/**
 * With ACLs on, a broker sharing etcd with others must let them write transaction markers here
 * (WriteTxnMarkers needs CLUSTER_ACTION). Over SASL they log in as the reserved broker user,
 * always allowed; over SSL they are their certificate's subject, and over PLAINTEXT (or SSL
 * without client certificates) `User:ANONYMOUS`, which then must be a super user or hold an ACL
 * for it. A warning at start names the principal, instead of a failed commit much later.
 */
async function warnInterBrokerPrincipal(
  config: ServeConfig,
  listeners: { protocol: string }[],
  logger: Logger,
): Promise<void> {
  if (config.authorizer !== "acl" || config.etcdEndpoints.length === 0) return;
  const protocol = preferredProtocol(listeners.map((l) => l.protocol));
  let certPem: string | null = null;
  if (protocol === "SSL" && config.tlsCertFile !== null) {
    certPem = await Deno.readTextFile(config.tlsCertFile);
  }
  const principal = interBrokerPrincipal(protocol, {
    certPem,
    clientCa: config.tlsClientCaFile !== null,
  });
  if (principal === INTER_BROKER_PRINCIPAL || superUsersOf(config).includes(principal)) return;
  logger.warn(
    "Other brokers call this one as a principal that is not a super user: unless an ACL allows " +
      "it ClusterAction on the cluster, transactions whose partitions are on several brokers " +
      "cannot write their markers here; add it to --super-users",
    { principal, protocol },
  );
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

/** `--super-users` (Kafka's `User:a;User:b`) plus the first admin. */
function superUsersOf(config: ServeConfig): string[] {
  const users = (config.superUsers ?? "").split(";").map((u) => u.trim()).filter((u) => u !== "");
  if (config.saslAdminUser !== null) users.push(`User:${config.saslAdminUser}`);
  return [...new Set(users)];
}

/**
 * Creates the first admin's SCRAM credentials (both mechanisms) when it has none, from
 * `--sasl-admin-password-file` or KAFSCALE_SASL_ADMIN_PASSWORD; existing credentials are kept
 * (they may have been changed since).
 */
async function bootstrapAdmin(
  config: ServeConfig,
  metadata: ClusterMetadata,
  logger: Logger,
): Promise<void> {
  const user = config.saslAdminUser;
  if (user === null) return;
  if (user === INTER_BROKER_USER) {
    throw new Error(
      `"sasl-admin-user" cannot be "${INTER_BROKER_USER}": brokers log in to each other as it`,
    );
  }
  let password: string | undefined;
  if (config.saslAdminPasswordFile !== null) {
    try {
      password = (await Deno.readTextFile(config.saslAdminPasswordFile)).split(/\r?\n/)[0];
    } catch (err) {
      throw new Error(
        `Cannot read "sasl-admin-password-file" ("${config.saslAdminPasswordFile}"): ` +
          (err as Error).message,
      );
    }
  } else {
    password = Deno.env.get("KAFSCALE_SASL_ADMIN_PASSWORD");
  }
  if (!password) {
    throw new Error(
      '"sasl-admin-user" needs a password: set "sasl-admin-password-file" or ' +
        "KAFSCALE_SASL_ADMIN_PASSWORD",
    );
  }
  for (const mechanism of ["SCRAM-SHA-256", "SCRAM-SHA-512"] as const) {
    if (await metadata.getScramCredential(user, mechanism)) continue;
    await metadata.putScramCredential(user, scramCredential(mechanism, password));
    logger.info("Created the first admin's SCRAM credential", { user, mechanism });
  }
}
