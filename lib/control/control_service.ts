/**
 * The `kafscale.control` RPCs (KafScale's proto/control/broker.proto), each doing real work:
 *
 * - GetStatus: this broker's id, version and readiness (the same answer as `/readyz`), and one
 *   PartitionStatus per partition it owns, with its offsets. `state` is one of
 *   `PARTITION_STATES`.
 * - DrainPartitions: hands the named partitions (none named: all) to other brokers
 *   (partition_drain.ts) and reports what moved by the deadline.
 * - TriggerFlush: flushes what is pending and answers once it is durable.
 * - StreamMetrics: records the streamed samples (metrics_samples.ts), shown on `/metrics`.
 * - WatchAssignments: ownership events from the metadata store's watch (assignment_watch.ts).
 *
 * Access: with a token configured, every call must carry `authorization: Bearer <token>`
 * (UNAUTHENTICATED otherwise). Unknown topics or partitions are INVALID_ARGUMENT.
 *
 * Must not import the gRPC library (grpc_adapter.ts does) or reach into lib/server.
 */
import type { LogManager } from "../log/log_manager.ts";
import type { ClusterMetadata, TopicPartitionRef } from "../metadata/cluster_metadata.ts";
import type { Logger } from "../util/logger.ts";
import {
  type Ack,
  type AssignmentWatchRequest,
  type BrokerStatusResponse,
  CONTROL_METHODS,
  type DrainPartitionsRequest,
  type DrainPartitionsResponse,
  type MetricsSample,
  type PartitionAssignmentEvent,
  type PartitionRef,
  type PartitionStatus,
  type TriggerFlushRequest,
  type TriggerFlushResponse,
} from "./control_proto.ts";
import { ControlError, GRPC_STATUS } from "./control_error.ts";
import type { PartitionDrainer } from "./partition_drain.ts";
import type { MetricsSamples } from "./metrics_samples.ts";
import { watchAssignments } from "./assignment_watch.ts";
import type { GrpcServer, MethodHandler } from "./grpc_adapter.ts";

/**
 * `PartitionStatus.state`:
 * - `online`: loaded here; this broker leads it and accepts produce;
 * - `draining`: being handed over: produce is refused (NOT_LEADER_OR_FOLLOWER), pending data is
 *   flushing, the ownership is released next;
 * - `recovering`: the owner key in the metadata store names this broker but the log is not
 *   loaded (its load is in flight, or failed and is retried by the next request).
 */
export const PARTITION_STATES = {
  online: "online",
  draining: "draining",
  recovering: "recovering",
} as const;

/** DrainPartitions' deadline when the request gives none. */
export const DEFAULT_DRAIN_DEADLINE_S = 30;
/** Longest deadline a drain may ask for. */
export const DRAIN_DEADLINE_MAX_S = 3_600;
/** Partitions one request may name. */
export const PARTITIONS_PER_REQUEST_MAX = 100_000;

export interface ControlServiceDeps {
  brokerId: number;
  version: string;
  logs: LogManager;
  metadata: ClusterMetadata;
  drainer: PartitionDrainer;
  samples: MetricsSamples;
  /** The `/readyz` verdict. */
  isReady: () => Promise<boolean>;
  logger: Logger;
}

export class ControlService {
  readonly #deps: ControlServiceDeps;

  constructor(deps: ControlServiceDeps) {
    this.#deps = deps;
  }

  async getStatus(): Promise<BrokerStatusResponse> {
    const { logs, metadata, drainer, brokerId, version } = this.#deps;
    const ready = await this.#deps.isReady().catch(() => false);
    const partitions = new Map<string, PartitionStatus>();
    for (const log of logs.loadedPartitions()) {
      const draining = drainer.isReleasing(log.topic, log.partition);
      partitions.set(`${log.topic}/${log.partition}`, {
        topic: log.topic,
        partition: log.partition,
        leader: !draining,
        state: draining ? PARTITION_STATES.draining : PARTITION_STATES.online,
        logStartOffset: log.logStartOffset,
        logEndOffset: log.logEndOffset,
        highWatermark: log.highWatermark,
      });
    }
    let owners: Awaited<ReturnType<ClusterMetadata["listPartitionOwnerEntries"]>> = [];
    try {
      owners = await metadata.listPartitionOwnerEntries();
    } catch (error) {
      // Readiness says the store is down; the loaded partitions are still worth showing.
      this.#deps.logger.debug("GetStatus: cannot list partition owners", { error: String(error) });
    }
    for (const entry of owners) {
      const key = `${entry.topic}/${entry.partition}`;
      if (entry.owner?.brokerId !== brokerId || partitions.has(key)) continue;
      const { state } = await metadata.getPartitionState(entry.topic, entry.partition).catch(
        () => ({ state: { endOffset: 0, logStartOffset: 0 } }),
      );
      partitions.set(key, {
        topic: entry.topic,
        partition: entry.partition,
        leader: false,
        state: drainer.isReleasing(entry.topic, entry.partition)
          ? PARTITION_STATES.draining
          : PARTITION_STATES.recovering,
        logStartOffset: state.logStartOffset,
        logEndOffset: state.endOffset,
        highWatermark: state.endOffset,
      });
    }
    return {
      brokerId: String(brokerId),
      version,
      ready,
      partitions: [...partitions.values()].sort(byPartition),
    };
  }

  async drainPartitions(request: DrainPartitionsRequest): Promise<DrainPartitionsResponse> {
    const named = await this.#checkPartitions(request.partitions);
    const seconds = request.deadlineSeconds === 0
      ? DEFAULT_DRAIN_DEADLINE_S
      : request.deadlineSeconds;
    if (seconds < 0 || seconds > DRAIN_DEADLINE_MAX_S) {
      throw new ControlError(
        GRPC_STATUS.INVALID_ARGUMENT,
        `"deadline_seconds" must be between 0 (default ${DEFAULT_DRAIN_DEADLINE_S}) and ` +
          `${DRAIN_DEADLINE_MAX_S}, got ${request.deadlineSeconds}`,
      );
    }
    const result = await this.#deps.drainer.drain({
      partitions: named.length === 0 ? null : named,
      deadlineMs: seconds * 1000,
      reason: request.reason === "" ? "DrainPartitions" : request.reason,
    });
    return {
      drained: result.drained.map(toRef).sort(byPartition),
      pending: result.pending.map(toRef).sort(byPartition),
    };
  }

  async triggerFlush(request: TriggerFlushRequest): Promise<TriggerFlushResponse> {
    const { logs } = this.#deps;
    const named = await this.#checkPartitions(request.partitions);
    const all = request.allAssigned || named.length === 0;
    await logs.flushPending();
    const targets = all ? logs.loadedPartitions() : named.flatMap((p) => {
      const log = logs.loadedPartition(p.topic, p.partition);
      return log ? [log] : [];
    });
    const unflushed = targets.filter((log) => !log.closed && log.highWatermark < log.logEndOffset);
    if (unflushed.length > 0) {
      throw new ControlError(
        GRPC_STATUS.UNAVAILABLE,
        `Flush did not make ${describe(unflushed)} durable (the object or metadata store ` +
          `refused it); retry`,
      );
    }
    return { flushed: targets.map(toRef).sort(byPartition) };
  }

  async streamMetrics(samples: AsyncIterable<MetricsSample>): Promise<Ack> {
    const senders = new Set<string>();
    let count = 0;
    for await (const sample of samples) {
      this.#deps.samples.record(sample);
      senders.add(sample.brokerId);
      count++;
    }
    const from = [...senders].map((s) => `"${s}"`).join(", ");
    return {
      message: count === 0
        ? "No samples received"
        : `Recorded ${count} sample${count === 1 ? "" : "s"} from ${from}; see /metrics`,
    };
  }

  async watchAssignments(
    request: AssignmentWatchRequest,
    write: (event: PartitionAssignmentEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    let brokerId: number | null = null;
    if (request.brokerId.trim() !== "") {
      const text = request.brokerId.trim();
      if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
        throw new ControlError(
          GRPC_STATUS.INVALID_ARGUMENT,
          `"broker_id" must be a broker's node id (a whole number) or empty, got "${request.brokerId}"`,
        );
      }
      brokerId = Number(text);
    }
    await watchAssignments(this.#deps.metadata, brokerId, (event) => {
      write({
        partition: { topic: event.topic, partition: event.partition },
        brokerId: String(event.brokerId),
        status: event.status,
        epoch: event.epoch,
      });
    }, signal);
  }

  /** The RPC table for the gRPC adapter. */
  handlers(): {
    method: (typeof CONTROL_METHODS)[keyof typeof CONTROL_METHODS];
    handler: MethodHandler;
  }[] {
    return [
      {
        method: CONTROL_METHODS.getStatus,
        handler: { kind: "unary", handle: () => this.getStatus() },
      },
      {
        method: CONTROL_METHODS.drainPartitions,
        handler: {
          kind: "unary",
          handle: (req) => this.drainPartitions(req as DrainPartitionsRequest),
        },
      },
      {
        method: CONTROL_METHODS.triggerFlush,
        handler: {
          kind: "unary",
          handle: (req) => this.triggerFlush(req as TriggerFlushRequest),
        },
      },
      {
        method: CONTROL_METHODS.streamMetrics,
        handler: {
          kind: "clientStream",
          handle: (reqs) => this.streamMetrics(reqs as AsyncIterable<MetricsSample>),
        },
      },
      {
        method: CONTROL_METHODS.watchAssignments,
        handler: {
          kind: "serverStream",
          handle: (req, ctx, write) =>
            this.watchAssignments(req as AssignmentWatchRequest, write, ctx.signal),
        },
      },
    ];
  }

  /** Named partitions, deduplicated; INVALID_ARGUMENT naming any that does not exist. */
  async #checkPartitions(refs: PartitionRef[]): Promise<TopicPartitionRef[]> {
    if (refs.length > PARTITIONS_PER_REQUEST_MAX) {
      throw new ControlError(
        GRPC_STATUS.INVALID_ARGUMENT,
        `The request names ${refs.length} partitions; the limit is ${PARTITIONS_PER_REQUEST_MAX}`,
      );
    }
    const unique = new Map(refs.map((r) => [`${r.topic}/${r.partition}`, toRef(r)]));
    const topics = new Map<string, number | null>();
    for (const name of new Set(refs.map((r) => r.topic))) {
      const record = await this.#deps.metadata.getTopic(name).catch((error) => {
        throw new ControlError(
          GRPC_STATUS.UNAVAILABLE,
          `Cannot look up topic "${name}" in the metadata store: ${String(error)}`,
        );
      });
      topics.set(name, record && record.state === "active" ? record.partitions : null);
    }
    const unknown = [...unique.values()].filter((r) => {
      const count = topics.get(r.topic);
      return count === null || count === undefined || r.partition < 0 || r.partition >= count;
    });
    if (unknown.length > 0) {
      throw new ControlError(
        GRPC_STATUS.INVALID_ARGUMENT,
        `Unknown partition${unknown.length === 1 ? "" : "s"}: ${describe(unknown)}`,
      );
    }
    return [...unique.values()];
  }
}

/** The bearer-token check of every call (null: no token configured, every call passes). */
export function bearerAuthenticator(
  token: string | null,
): (header: string | null) => string | null {
  if (token === null) return () => null;
  const expected = new TextEncoder().encode(token);
  return (header) => {
    const match = header === null ? null : /^Bearer\s+(.+)$/i.exec(header.trim());
    if (!match) {
      return 'Missing bearer token: send "authorization: Bearer <token>" (the broker\'s ' +
        '"--control-token" / KAFSCALE_CONTROL_TOKEN)';
    }
    return constantTimeEqual(new TextEncoder().encode(match[1]), expected)
      ? null
      : "Invalid bearer token";
  };
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

function toRef(p: { topic: string; partition: number }): PartitionRef {
  return { topic: p.topic, partition: p.partition };
}

function byPartition(a: PartitionRef, b: PartitionRef): number {
  return a.topic.localeCompare(b.topic) || a.partition - b.partition;
}

/** `"t-0", "t-1"` (the first ten, then a count). */
function describe(refs: { topic: string; partition: number }[]): string {
  const names = refs.slice(0, 10).map((r) => `"${r.topic}-${r.partition}"`).join(", ");
  return refs.length > 10 ? `${names} and ${refs.length - 10} more` : names;
}

export interface ControlServer {
  address: { hostname: string; port: number };
  /** New connections get this certificate, key and client CA (SIGHUP); without TLS, nothing. */
  reloadTls(tls: { cert: string; key: string; clientCa: string | null }): void;
  stop(graceMs: number): Promise<void>;
}

/** Starts the gRPC server (the adapter is loaded here, on first use). */
export async function startControlServer(opts: {
  hostname: string;
  port: number;
  token: string | null;
  service: ControlService;
  logger: Logger;
  /** TLS for the control port; with `clientCa`, client certificates are required. */
  tls?: { cert: string; key: string; clientCa: string | null };
}): Promise<ControlServer> {
  const { startGrpcServer } = await import("./grpc_adapter.ts");
  const server: GrpcServer = await startGrpcServer({
    hostname: opts.hostname,
    port: opts.port,
    methods: opts.service.handlers(),
    authenticate: bearerAuthenticator(opts.token),
    logger: opts.logger,
    tls: opts.tls,
  });
  return {
    address: { hostname: opts.hostname, port: server.port },
    reloadTls: (tls) => server.reloadTls(tls),
    stop: (graceMs) => server.stop(graceMs),
  };
}
