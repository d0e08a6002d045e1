/**
 * `kafscale serve`: wires stores, log, broker, Kafka listener and HTTP
 * health/metrics together, logs one "Broker ready" line, and stops
 * gracefully on SIGINT/SIGTERM (stop accepting, finish in-flight requests,
 * flush, exit 0).
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { SystemClock } from "../util/clock.ts";
import { ConsoleLogger, type Logger } from "../util/logger.ts";
import { LocalObjectStore } from "../storage/local_object_store.ts";
import { EmbeddedMetadataStore } from "../metadata/embedded_metadata_store.ts";
import { startNode } from "./node.ts";
import {
  ConfigError,
  parseConfigFile,
  resolveServeConfig,
  SERVE_SETTINGS,
  type ServeConfig,
} from "./serve_config.ts";

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
    "Runs the broker: Kafka listener, segment store, metadata store and HTTP health/metrics.",
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
  const logger = new ConsoleLogger(config.logLevel);
  if (config.s3Bucket !== null || config.etcdEndpoints.length > 0) {
    console.error(
      'Cannot start: "--s3-bucket" and "--etcd-endpoints" are not available in this build yet; ' +
        'use "--data-dir" (embedded mode)',
    );
    return 2;
  }
  try {
    return await serveEmbedded(config, logger);
  } catch (err) {
    console.error(`Cannot start: ${(err as Error).message}`);
    return 1;
  }
}

async function serveEmbedded(config: ServeConfig, logger: Logger): Promise<number> {
  await Deno.mkdir(config.dataDir, { recursive: true });
  const objectStore = new LocalObjectStore(config.dataDir);
  await objectStore.cleanupTempFiles();
  const clock = new SystemClock();
  const metadataStore = await EmbeddedMetadataStore.open(join(config.dataDir, ".metadata"), {
    clock,
    logger,
  });
  let node;
  try {
    node = await startNode({ config, objectStore, metadataStore, clock, logger });
  } catch (err) {
    await metadataStore.close();
    throw err;
  }
  const { kafkaAddress, httpAddress, broker } = node;
  logger.info("Broker ready", {
    kafka: `${kafkaAddress.hostname}:${kafkaAddress.port}`,
    http: `${httpAddress.hostname}:${httpAddress.port}`,
    advertised: `${broker.settings.host}:${broker.settings.port}`,
    node: config.brokerId,
    data: config.dataDir,
    ready_ms: Math.round(performance.now()),
  });
  const signal = await waitForStopSignal();
  logger.info("Stopping", { signal });
  await node.stop();
  await metadataStore.close();
  await objectStore.close();
  logger.info("Stopped");
  return 0;
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
