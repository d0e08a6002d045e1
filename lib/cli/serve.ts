/**
 * `kafscale serve`: wires stores, log, broker, Kafka listener, HTTP
 * health/metrics and gRPC control together, logs one "Broker ready" line, and
 * stops gracefully on SIGINT/SIGTERM (drain: hand the partitions to the other
 * brokers; then stop accepting, finish in-flight requests, flush, exit 0).
 *
 * Stores: segments in S3 (`--s3-bucket`) or a local directory (`--data-dir`),
 * metadata in etcd (`--etcd-endpoints`) or the embedded store under the data
 * directory; the same log and coordinator code runs on any combination.
 * Remote stores are checked at start (bucket reachable, conditional-put
 * support probed, etcd answering a linearizable read): a missing or
 * misconfigured one fails the start with one line naming the setting.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { startAllocatorTrim } from "../util/allocator.ts";
import { type Clock, SystemClock } from "../util/clock.ts";
import { ConsoleLogger, type Logger } from "../util/logger.ts";
import type { ObjectStore } from "../storage/object_store.ts";
import { releaseDiskReserve, takeDiskReserve } from "../storage/disk_reserve.ts";
import { LocalObjectStore } from "../storage/local_object_store.ts";
// The S3 SDK and the etcd client are loaded only when configured: embedded
// mode starts without parsing them (ready time is part of the product).
import type { S3ObjectStore, S3ObjectStoreSettings } from "../storage/s3_object_store.ts";
import type { MetadataStore } from "../metadata/metadata_store.ts";
import { EmbeddedMetadataStore } from "../metadata/embedded_metadata_store.ts";
import type {
  EtcdMetadataStore,
  EtcdMetadataStoreSettings,
} from "../metadata/etcd_metadata_store.ts";
import type { HealthCheck } from "../control/http_server.ts";
import { startNode } from "./node.ts";
import { watchStopStep } from "../util/stop_step.ts";
import {
  ConfigError,
  parseConfigFile,
  resolveServeConfig,
  SERVE_SETTINGS,
  type ServeConfig,
} from "./serve_config.ts";

/** Bound on one etcd health probe (`/healthz`, `/readyz`); below the HTTP check deadline. */
const ETCD_HEALTH_TIMEOUT_MS = 1_500;
/** Written by the readiness check of a local data directory. */
const READY_PROBE_FILE = ".readyz-probe";
/** Shown on `/healthz` and `/readyz`, and logged at start, when S3 puts are not create-only. */
const NO_CONDITIONAL_PUT_NOTE = 'conditional puts are off ("If-None-Match: *" not enforced): ' +
  "a stalled former partition owner could overwrite objects, so fencing rests on epochs alone";

export function serveHelp(): string {
  const rows = SERVE_SETTINGS.map((s) => {
    const flag = s.kind === "bool"
      ? `--${s.name}`
      : `--${s.name} ${s.kind === "int" ? "N" : "VALUE"}`;
    const def = s.default === null ? "" : ` (default: ${s.default})`;
    return `  ${flag.padEnd(34)} ${s.help}${def}\n  ${"".padEnd(34)} env ${s.env}`;
  });
  return [
    "Usage: kafscale serve [options]",
    "",
    "Runs the broker: Kafka listener, segment store, metadata store, HTTP health/metrics and",
    "the gRPC control service. SIGTERM/SIGINT hand the partitions to the other brokers first.",
    "Settings come from flags, then KAFSCALE_* environment variables, then --config FILE",
    "(key=value lines or a JSON object, keys as the flag names), then defaults.",
    "",
    "Options:",
    `  ${"--config FILE".padEnd(34)} Read settings from FILE`,
    `  ${"-h, --help".padEnd(34)} Show this help`,
    ...rows,
  ].join("\n");
}

/** Parses argv into raw setting strings; throws ConfigError on unknown flags. */
export function parseServeArgs(
  args: string[],
): { help: boolean; config: string | null; flags: Map<string, string> } {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
    config: { type: "string" },
  };
  for (const s of SERVE_SETTINGS) {
    options[s.name] = { type: s.kind === "bool" ? "boolean" : "string" };
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new ConfigError((err as Error).message.replace(/\. To specify.*$/, ""));
  }
  const flags = new Map<string, string>();
  for (const [k, v] of Object.entries(parsed.values)) {
    if (k === "help" || k === "config" || v === undefined) continue;
    flags.set(k, typeof v === "boolean" ? String(v) : String(v));
  }
  return {
    help: parsed.values.help === true,
    config: typeof parsed.values.config === "string" ? parsed.values.config : null,
    flags,
  };
}

export async function loadServeConfig(args: string[]): Promise<ServeConfig | "help"> {
  const parsed = parseServeArgs(args);
  if (parsed.help) return "help";
  let file: { path: string; entries: Map<string, string> } | null = null;
  const configPath = parsed.config ?? Deno.env.get("KAFSCALE_CONFIG") ?? null;
  if (configPath) {
    let text: string;
    try {
      text = await Deno.readTextFile(configPath);
    } catch (err) {
      throw new ConfigError(`Cannot read config file "${configPath}": ${(err as Error).message}`);
    }
    file = { path: configPath, entries: parseConfigFile(text, configPath) };
  }
  return resolveServeConfig(parsed.flags, Deno.env.toObject(), file);
}

export async function runServe(args: string[]): Promise<number> {
  let config: ServeConfig | "help";
  try {
    config = await loadServeConfig(args);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Cannot start: ${err.message}`);
      return 2;
    }
    throw err;
  }
  if (config === "help") {
    console.log(serveHelp());
    return 0;
  }
  const logger = new ConsoleLogger(config.logLevel, {}, undefined, config.logFormat);
  try {
    return await serveNode(config, logger);
  } catch (err) {
    console.error(startFailureLine(err));
    return 1;
  }
}

/** One line: "Cannot start: …", without a doubled prefix or the SDKs' multi-line details. */
function startFailureLine(err: unknown): string {
  const message = (err instanceof Error ? err.message : String(err))
    .replace(/\s*\n\s*/g, " ")
    .replace(/^Cannot start: /, "");
  return `Cannot start: ${message}`;
}

/**
 * A store's start-up check as a health check: null when it passes, else its reason (the
 * checks word their errors for start-up; a running broker is not starting).
 */
async function healthOf(check: () => Promise<void>): Promise<string | null> {
  try {
    await check();
    return null;
  } catch (err) {
    return (err instanceof Error ? err.message : String(err)).replace(/^Cannot start: /, "");
  }
}

/** The stores behind the node: S3 or a local directory, etcd or the embedded store. */
interface Stores {
  objectStore: ObjectStore;
  metadataStore: MetadataStore;
  healthChecks: HealthCheck[];
  /** For the ready line. */
  describe: Record<string, string>;
  close(): Promise<void>;
}

async function serveNode(config: ServeConfig, logger: Logger): Promise<number> {
  const clock = new SystemClock();
  const stores = await openStores(config, clock, logger);
  let node;
  try {
    node = await startNode({
      config,
      objectStore: stores.objectStore,
      metadataStore: stores.metadataStore,
      healthChecks: stores.healthChecks,
      clock,
      logger,
    });
  } catch (err) {
    await stores.close();
    throw err;
  }
  const { kafkaAddress, httpAddress, controlAddress, broker } = node;
  logger.info("Broker ready", {
    kafka: `${kafkaAddress.hostname}:${kafkaAddress.port}`,
    ...(node.listenerAddresses.length > 1 || node.listenerAddresses[0].name !== "PLAINTEXT"
      ? {
        listeners: node.listenerAddresses
          .map((l) => `${l.name}://${l.addr.hostname}:${l.addr.port}`)
          .join(","),
      }
      : {}),
    http: `${httpAddress.hostname}:${httpAddress.port}`,
    control: `${controlAddress.hostname}:${controlAddress.port}`,
    advertised: `${broker.settings.host}:${broker.settings.port}`,
    node: config.brokerId,
    ...stores.describe,
    ready_ms: Math.round(performance.now()),
  });
  // Listen for the stop signal first: the reserve takes a moment to write.
  const stopSignal = waitForStopSignal();
  // SIGHUP re-reads the TLS files (a renewed certificate), without a restart.
  const reloadTls = () => {
    node.reloadTls().then(
      () => logger.info("Reloaded the TLS certificate, key and client CAs"),
      (err) =>
        logger.error("TLS files not reloaded; the listeners keep the previous ones", {
          error: err instanceof Error ? err.message : String(err),
        }),
    );
  };
  Deno.addSignalListener("SIGHUP", reloadTls);
  const reserve = config.etcdEndpoints.length === 0
    ? takeDiskReserve(config.dataDir, logger)
    : Promise.resolve(false);
  // Memory freed after bursts goes back to the system (lib/util/allocator.ts).
  const stopTrimming = startAllocatorTrim(logger);
  const signal = await stopSignal;
  await stopTrimming();
  Deno.removeSignalListener("SIGHUP", reloadTls);
  await reserve;
  logger.info("Stopping", { signal });
  // Hand the partitions to the other brokers first, so they move at once (no lease expiry).
  const drained = await node.drain(signal, config.shutdownTimeoutMs).catch((err) => {
    logger.warn("Drain before stop failed; the partitions move when the lease ends", {
      error: err instanceof Error ? err.message : String(err),
    });
    return null;
  });
  if (drained && drained.pending.length > 0) {
    logger.warn("Drain before stop left partitions pending", { pending: drained.pending.length });
  }
  await node.stop();
  await watchStopStep(logger, "metadata and object stores", () => stores.close());
  logger.info("Stopped");
  return 0;
}

async function openStores(config: ServeConfig, clock: Clock, logger: Logger): Promise<Stores> {
  // Metadata first: opening it logs nothing, so a failed start prints exactly one line.
  const metadata = await openMetadataStore(config, clock, logger);
  let objects;
  try {
    objects = await openObjectStore(config, clock, logger);
  } catch (err) {
    await metadata.store.close();
    throw err;
  }
  return {
    objectStore: objects.store,
    metadataStore: metadata.store,
    healthChecks: [metadata.check, objects.check],
    describe: { ...objects.describe, ...metadata.describe },
    async close() {
      await metadata.store.close();
      await objects.store.close();
    },
  };
}

interface Opened<T> {
  store: T;
  check: HealthCheck;
  describe: Record<string, string>;
}

export async function openObjectStore(
  config: ServeConfig,
  clock: Clock,
  logger: Logger,
): Promise<Opened<ObjectStore>> {
  if (config.s3Bucket === null) {
    await Deno.mkdir(config.dataDir, { recursive: true });
    const store = new LocalObjectStore(config.dataDir);
    await store.cleanupTempFiles();
    return {
      store,
      check: { name: "objects", check: () => dataDirReadiness(config.dataDir) },
      describe: { data: config.dataDir },
    };
  }
  const settings: S3ObjectStoreSettings = {
    bucket: config.s3Bucket,
    region: config.s3Region,
    forcePathStyle: config.s3PathStyle,
    conditionalPut: config.s3ConditionalPut,
    requestTimeoutMs: config.s3RequestTimeoutMs,
  };
  if (config.s3Endpoint !== null) settings.endpoint = config.s3Endpoint;
  if (config.s3KmsArn !== null) settings.kmsKeyId = config.s3KmsArn;
  if (config.s3AccessKey !== null && config.s3SecretKey !== null) {
    settings.credentials = {
      accessKeyId: config.s3AccessKey,
      secretAccessKey: config.s3SecretKey,
      ...(config.s3SessionToken === null ? {} : { sessionToken: config.s3SessionToken }),
    };
  }
  let store: S3ObjectStore;
  try {
    const { S3ObjectStore } = await import("../storage/s3_object_store.ts");
    store = await S3ObjectStore.open(settings, { clock, logger });
  } catch (err) {
    throw new Error(withS3Settings(err), { cause: err });
  }
  if (!store.supportsConditionalPut) {
    logger.warn(`S3 ${NO_CONDITIONAL_PUT_NOTE}`, {
      bucket: config.s3Bucket,
      setting: `"--s3-conditional-put" / KAFSCALE_S3_CONDITIONAL_PUT = ${config.s3ConditionalPut}`,
    });
  }
  return {
    store,
    check: {
      name: "s3",
      check: () => healthOf(() => store.checkBucket()),
      note: () => store.supportsConditionalPut ? null : NO_CONDITIONAL_PUT_NOTE,
    },
    describe: {
      objects: `s3://${config.s3Bucket}/${config.namespace}/`,
      s3_endpoint: config.s3Endpoint ?? `aws:${config.s3Region}`,
      conditional_put: String(store.supportsConditionalPut),
    },
  };
}

/**
 * Readiness of a local data directory in O(1), whatever it holds: it is a directory and takes a
 * small write (a vanished, read-only or unwritable directory fails). Listing the namespace here
 * made a large, healthy data directory miss the check deadline and report not ready (issue 17).
 */
export async function dataDirReadiness(dir: string): Promise<string | null> {
  const info = await Deno.stat(dir);
  if (!info.isDirectory) return `"${dir}" is not a directory`;
  await Deno.writeFile(join(dir, READY_PROBE_FILE), READY_PROBE_BYTES);
  return null;
}

const READY_PROBE_BYTES = new TextEncoder().encode("ready\n");

/** The etcd store's start-up message, plus the credential settings when those were refused. */
function withEtcdSettings(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (!/auth|password|permission|user name/i.test(message)) return message;
  return `${message} (settings: ${settingNames(["etcd-username", "etcd-password"])})`;
}

function settingNames(names: string[]): string {
  return names.map((n) => SERVE_SETTINGS.find((s) => s.name === n)!)
    .map((s) => `"--${s.name}" / ${s.env}`)
    .join(", ");
}

/**
 * The S3 store's start-up message, plus the settings that decide what it complains about. Matched
 * on the store's own words only: the message names the endpoint, whose port may hold "403".
 */
export function withS3Settings(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const names = /does not exist/.test(message)
    ? ["s3-bucket"]
    : /access denied|check the credentials/i.test(message)
    ? ["s3-access-key", "s3-secret-key"]
    : /region|path-style/.test(message)
    ? ["s3-region", "s3-path-style", "s3-endpoint"]
    : ["s3-endpoint", "s3-bucket"];
  return `${message} (settings: ${settingNames(names)})`;
}

export async function openMetadataStore(
  config: ServeConfig,
  clock: Clock,
  logger: Logger,
): Promise<Opened<MetadataStore>> {
  if (config.etcdEndpoints.length === 0) {
    await Deno.mkdir(config.dataDir, { recursive: true });
    // Free the ballast first, so start-up has room even on a disk produce filled up.
    if (await releaseDiskReserve(config.dataDir)) {
      logger.debug("Released the start-up disk reserve", { dir: config.dataDir });
    }
    const store = await EmbeddedMetadataStore.open(join(config.dataDir, ".metadata"), {
      clock,
      logger,
    });
    return {
      store,
      check: {
        name: "metadata",
        check: async () => (await store.get("/kafscale/cluster/id"), null),
      },
      describe: { metadata: join(config.dataDir, ".metadata") },
    };
  }
  const settings: EtcdMetadataStoreSettings = { endpoints: config.etcdEndpoints };
  if (config.etcdUsername !== null) {
    settings.username = config.etcdUsername;
    settings.password = config.etcdPassword ?? "";
  }
  if (config.etcdCaFile !== null || config.etcdCertFile !== null) {
    settings.tls = {
      ...(config.etcdCaFile === null ? {} : { caFile: config.etcdCaFile }),
      ...(config.etcdCertFile === null ? {} : { certFile: config.etcdCertFile }),
      ...(config.etcdKeyFile === null ? {} : { keyFile: config.etcdKeyFile }),
    };
  }
  let store: EtcdMetadataStore;
  try {
    const { EtcdMetadataStore } = await import("../metadata/etcd_metadata_store.ts");
    store = await EtcdMetadataStore.open(settings, { clock, logger });
  } catch (err) {
    throw new Error(withEtcdSettings(err), { cause: err });
  }
  return {
    store,
    check: {
      name: "etcd",
      check: () => healthOf(() => store.checkHealth(ETCD_HEALTH_TIMEOUT_MS)),
    },
    describe: { etcd: config.etcdEndpoints.join(",") },
  };
}

function waitForStopSignal(): Promise<string> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    const handlers = signals.map((sig) => {
      const h = () => {
        signals.forEach((s, i) => Deno.removeSignalListener(s, handlers[i]));
        resolve(sig);
      };
      Deno.addSignalListener(sig, h);
      return h;
    });
  });
}
