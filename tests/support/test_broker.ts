/**
 * An in-process broker on loopback for broker-level tests: the same
 * `startNode` that `kafscale serve` runs, over in-memory stores by default.
 */
import { type RunningNode, startNode } from "../../lib/cli/node.ts";
import { resolveServeConfig } from "../../lib/cli/serve_config.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { MemoryMetadataStore } from "../../lib/metadata/memory_metadata_store.ts";
import type { ObjectStore } from "../../lib/storage/object_store.ts";
import type { MetadataStore } from "../../lib/metadata/metadata_store.ts";
import { type Clock, SystemClock } from "../../lib/util/clock.ts";
import { silentLogger } from "../../lib/util/logger.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";

export interface TestBroker extends AsyncDisposable {
  node: RunningNode;
  bootstrap: string;
  objectStore: ObjectStore;
  metadataStore: MetadataStore;
  connect(): Promise<KafkaConnection>;
  stop(): Promise<void>;
}

export async function startTestBroker(
  opts: {
    settings?: Record<string, string>;
    objectStore?: ObjectStore;
    metadataStore?: MetadataStore;
    /** The broker's clock (its lease deadlines go by `monotonic()`); the system's by default. */
    clock?: Clock;
  } = {},
): Promise<TestBroker> {
  const flags = new Map<string, string>([
    ["listen", "127.0.0.1:0"],
    ["http-listen", "127.0.0.1:0"],
    ["control-listen", "127.0.0.1:0"],
    ["flush-interval-ms", "1"],
    ...Object.entries(opts.settings ?? {}),
  ]);
  const config = resolveServeConfig(flags, {}, null);
  const objectStore = opts.objectStore ?? new MemoryObjectStore();
  const metadataStore = opts.metadataStore ?? new MemoryMetadataStore();
  const node = await startNode({
    config,
    objectStore,
    metadataStore,
    clock: opts.clock ?? new SystemClock(),
    logger: silentLogger,
  });
  const bootstrap = `127.0.0.1:${node.kafkaAddress.port}`;
  const connections: KafkaConnection[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const c of connections) c.close();
    await Promise.all(connections.map((c) => c.closedByPeer()));
    await node.stop();
    if (!opts.metadataStore) await metadataStore.close();
    if (!opts.objectStore) await objectStore.close();
  };
  return {
    node,
    bootstrap,
    objectStore,
    metadataStore,
    async connect() {
      const c = await KafkaConnection.connect(bootstrap, "kafscale-test");
      connections.push(c);
      return c;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
