/**
 * Assembles a running broker node from its parts — object store, metadata
 * store, log manager, broker, Kafka listener and HTTP health/metrics — so
 * `kafscale serve` and the tests start exactly the same thing with
 * different stores behind it.
 */
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import { Metrics } from "../util/metrics.ts";
import type { ObjectStore } from "../storage/object_store.ts";
import type { MetadataStore } from "../metadata/metadata_store.ts";
import { ClusterMetadata } from "../metadata/cluster_metadata.ts";
import { LogManager } from "../log/log_manager.ts";
import { Broker } from "../broker/broker.ts";
import { Dispatcher } from "../broker/dispatcher.ts";
import { HANDLERS } from "../broker/handler_table.ts";
import { KafkaServer } from "../server/kafka_server.ts";
import { startHttpServer } from "../control/http_server.ts";
import { advertisedAddress, type ServeConfig } from "./serve_config.ts";

/** Requests read ahead per connection before reading pauses. */
const MAX_IN_FLIGHT_REQUESTS = 64;
/** Broker session lease; a broker that cannot renew it stops writing. */
const LEASE_TTL_MS = 10_000;
/** Sparse index density: one entry per this many messages. */
const INDEX_INTERVAL_MESSAGES = 100;

export interface NodeDeps {
  config: ServeConfig;
  objectStore: ObjectStore;
  metadataStore: MetadataStore;
  clock: Clock;
  logger: Logger;
}

export interface RunningNode {
  broker: Broker;
  kafkaAddress: Deno.NetAddr;
  httpAddress: Deno.NetAddr;
  metrics: Metrics;
  /** Graceful stop: no new requests, in-flight ones answered, pending data flushed. */
  stop(): Promise<void>;
}

export async function startNode(deps: NodeDeps): Promise<RunningNode> {
  const { config, objectStore, metadataStore, clock, logger } = deps;
  const metrics = new Metrics();
  const metadata = new ClusterMetadata(metadataStore);
  const logs = new LogManager({
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
    },
  });
  await logs.start();
  const initial = advertisedAddress(config, config.listen.port);
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
    },
    metadata,
    logs,
    clock,
    logger,
    metrics,
  });
  try {
    await broker.start();
  } catch (err) {
    await logs.close();
    throw err;
  }
  const server = new KafkaServer(
    {
      hostname: config.listen.host,
      port: config.listen.port,
      maxFrameBytes: config.maxFrameBytes,
      maxInFlightRequests: MAX_IN_FLIGHT_REQUESTS,
      maxConnections: config.maxConnections,
    },
    new Dispatcher(broker, HANDLERS),
    logger,
  );
  let kafkaAddress: Deno.NetAddr;
  try {
    kafkaAddress = server.listen();
  } catch (err) {
    await logs.close();
    throw new Error(
      `Cannot listen on "${config.listen.host}:${config.listen.port}": ${(err as Error).message}`,
    );
  }
  const advertised = advertisedAddress(config, kafkaAddress.port);
  broker.settings.host = advertised.host;
  broker.settings.port = advertised.port;

  let ready = false;
  let http;
  try {
    http = startHttpServer({
      hostname: config.httpListen.host,
      port: config.httpListen.port,
      metrics,
      logger,
      isReady: () => ready,
      checks: [
        {
          name: "metadata",
          check: async () => (await metadataStore.get("/kafscale/cluster/id"), null),
        },
        {
          name: "objects",
          check: async () => (await objectStore.list(`${config.namespace}/`), null),
        },
      ],
    });
  } catch (err) {
    await server.stop(0);
    await logs.close();
    throw new Error(
      `Cannot listen on "${config.httpListen.host}:${config.httpListen.port}" (HTTP): ${
        (err as Error).message
      }`,
    );
  }
  ready = true;
  return {
    broker,
    kafkaAddress,
    httpAddress: http.addr,
    metrics,
    async stop() {
      ready = false;
      await server.stop(config.shutdownTimeoutMs);
      broker.stop();
      await logs.close();
      await http.stop();
    },
  };
}
