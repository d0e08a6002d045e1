/**
 * Fetch (1), versions 4-18 (v18 only adds a field for followers).
 *
 * Returns whole stored batches as byte ranges (never re-encoded), spanning
 * segments, honouring MaxBytes (response), PartitionMaxBytes and KIP-74's
 * "at least one batch" rule. When fewer than MinBytes are available the
 * request long-polls up to MaxWaitMs and is woken in-process by commits of
 * the partitions it reads — no store is polled. Incremental fetch sessions
 * (KIP-227, v7+) are served from `fetch_sessions.ts`: an incremental request
 * reads every partition of its session and answers only those with news.
 *
 * A partition's current leader epoch in the request (v9+, KIP-320) is checked against the
 * owner's: older answers FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH (both make clients
 * refresh their metadata).
 *
 * read_committed (isolation level 1, KIP-98) reads only below the last stable offset and lists
 * the aborted transactions overlapping the returned range, so clients drop their records;
 * read_uncommitted reads up to the high watermark and lists none.
 */
import { FETCH_REQUEST, type FetchRequest } from "../protocol/generated/fetch_request.ts";
import {
  FETCH_RESPONSE,
  type FetchableTopicResponse,
  type FetchResponse,
  type PartitionData,
} from "../protocol/generated/fetch_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import type { PartitionLog } from "../log/partition_log.ts";
import type { TopicRecord } from "../metadata/cluster_metadata.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler, type RequestContext } from "./handler.ts";
import { checkLeaderEpoch } from "../metadata/leader_epochs.ts";
import {
  type FetchSession,
  FINAL_EPOCH,
  INITIAL_EPOCH,
  type SessionPartition,
} from "./fetch_sessions.ts";
import type { Broker } from "./broker.ts";
import { errorCodeFor } from "./errors.ts";
import { joinBytes } from "../util/bytes.ts";

/**
 * Most record bytes in one response by default (`--fetch-max-bytes`; Kafka's broker
 * fetch.max.bytes is 55 MiB). Smaller than what clients ask (50 MiB) on purpose: a response reads
 * up to twice its size into the segment cache (whole small segments, of which it takes part), and
 * librdkafka receives each response into a fresh buffer, which above 32 MiB glibc maps and unmaps
 * every time (page faults on every byte). With 1,000 partitions 16 MiB consumed faster.
 */
export const DEFAULT_FETCH_MAX_BYTES = 16 * 1024 * 1024;
/** Upper bound on a long poll, whatever the client asks (Kafka clients use ≤ 500 ms by default). */
const MAX_WAIT_CAP_MS = 30_000;
/** Bound on re-reads of one long poll (each wake-up re-reads once). */
const MAX_POLL_ROUNDS = 1_000;
const EMPTY_RECORDS = new Uint8Array(0);

interface Target {
  topicName: string;
  topicId: string;
  partitionIndex: number;
  fetchOffset: number;
  partitionMaxBytes: number;
  log: PartitionLog | null;
  errorCode: number;
  /** High watermark seen by the last read: a long poll waits for data beyond it. */
  seenHighWatermark: number;
  /** The session's entry, on an incremental fetch. */
  session: SessionPartition | null;
  /** The leader epoch the client believes current (-1: none); checked against the owner's. */
  currentLeaderEpoch: number;
}

export const FETCH_HANDLER = defineHandler<FetchRequest, FetchResponse>({
  apiKey: 1,
  name: "Fetch",
  minVersion: 4,
  maxVersion: 18,
  request: FETCH_REQUEST,
  response: FETCH_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const version = ctx.apiVersion;
    const byId = version >= 13;
    const sessions = broker.fetchSessions;
    const sessionId = version >= 7 ? req.sessionId ?? 0 : 0;
    const sessionEpoch = version >= 7 ? req.sessionEpoch ?? FINAL_EPOCH : FINAL_EPOCH;
    let session: FetchSession | null = null;
    if (sessionEpoch === FINAL_EPOCH || sessionEpoch === INITIAL_EPOCH) {
      if (sessionId !== 0) sessions.close(sessionId);
    } else {
      const found = sessions.acquire(sessionId, sessionEpoch, byId);
      if (!found.ok) {
        return {
          throttleTimeMs: 0,
          errorCode: ERROR_CODES[found.errorCode],
          sessionId: 0,
          responses: [],
        };
      }
      session = found.session;
    }
    const lookup = new TopicLookup(broker, byId);
    const targets: Target[] = [];
    if (session) {
      await applyIncremental(session, req, lookup);
      for (const sp of session.partitions.values()) {
        const topic = await lookup.get(sp.topic, sp.topicId);
        targets.push(newTarget(ctx, topic, byId, sp.topic, sp.topicId, sp, sp));
      }
    } else {
      for (const t of req.topics) {
        const topic = await lookup.get(t.topic ?? "", t.topicId ?? "");
        for (const p of t.partitions) {
          const wanted = {
            partition: p.partition,
            fetchOffset: p.fetchOffset,
            maxBytes: p.partitionMaxBytes,
            currentLeaderEpoch: version >= 9 ? p.currentLeaderEpoch ?? -1 : -1,
          };
          targets.push(newTarget(ctx, topic, byId, t.topic ?? "", t.topicId ?? "", wanted, null));
        }
      }
    }
    // A loaded partition is attached at once; only the others wait for their load (with 1,000
    // partitions a promise per partition per fetch was a measurable share of a fetch).
    const loads: Promise<void>[] = [];
    for (const t of targets) {
      if (t.errorCode !== ERROR_CODES.NONE) continue;
      const live = broker.logs.livePartition(t.topicName, t.partitionIndex);
      if (live) attach(t, live);
      else loads.push(load(broker, t));
    }
    if (loads.length > 0) await Promise.all(loads);

    const maxBytes = Math.min(
      req.maxBytes ?? 0x7fffffff,
      broker.settings.fetchMaxBytes ?? DEFAULT_FETCH_MAX_BYTES,
    );
    const deadline = broker.clock.monotonic() +
      Math.min(Math.max(req.maxWaitMs, 0), MAX_WAIT_CAP_MS);
    const readCommitted = (req.isolationLevel ?? 0) === 1;
    let partitions = await readAll(broker, targets, maxBytes, readCommitted);
    for (let round = 0; round < MAX_POLL_ROUNDS; round++) {
      const remaining = deadline - broker.clock.monotonic();
      if (partitions.bytes >= req.minBytes || partitions.anyError || remaining <= 0) break;
      // A stopping broker answers with what it has rather than hold its stop for MaxWaitMs.
      if (broker.stopping.aborted) break;
      await waitForAny(targets, remaining, broker.stopping);
      partitions = await readAll(broker, targets, maxBytes, readCommitted);
    }
    broker.metrics.inc("kafscale_fetch_bytes_total", "Record bytes fetched", {}, partitions.bytes);

    let answered = targets.map((t, i) => ({ t, data: partitions.data[i] }));
    let responseSessionId = 0;
    if (session) {
      responseSessionId = session.id;
      answered = answered.filter(({ t, data }) => mustRespond(t.session!, data));
      for (const { t, data } of answered) {
        if (data.records && data.records.length > 0) session.rotate(t.session!);
      }
    } else if (sessionEpoch === INITIAL_EPOCH) {
      const created = sessions.create(byId, targets.length);
      if (created) {
        responseSessionId = created.id;
        for (const { t, data } of answered) {
          remember(
            created.upsert({
              topic: t.topicName,
              topicId: t.topicId,
              partition: t.partitionIndex,
              fetchOffset: t.fetchOffset,
              maxBytes: t.partitionMaxBytes,
              currentLeaderEpoch: t.currentLeaderEpoch,
            }),
            data,
          );
        }
      }
    }

    const responses: FetchableTopicResponse[] = [];
    let current: FetchableTopicResponse | null = null;
    for (const { t, data } of answered) {
      const key = byId ? t.topicId : t.topicName;
      const currentKey = current ? (byId ? current.topicId : current.topic) : null;
      if (!current || currentKey !== key) {
        current = { topic: t.topicName, topicId: t.topicId, partitions: [] };
        responses.push(current);
      }
      current.partitions.push(data);
    }
    return {
      throttleTimeMs: 0,
      errorCode: ERROR_CODES.NONE,
      sessionId: responseSessionId,
      responses,
    };
  },
});

/** Serves the target from `log` unless the client's leader epoch says otherwise. */
function attach(t: Target, log: PartitionLog): void {
  const check = checkLeaderEpoch(t.currentLeaderEpoch, log.leaderEpoch);
  if (check === "ok") t.log = log;
  else {
    t.errorCode = check === "fenced"
      ? ERROR_CODES.FENCED_LEADER_EPOCH
      : ERROR_CODES.UNKNOWN_LEADER_EPOCH;
  }
}

/** Acquires or loads the target's partition, then attaches it (or records why not). */
async function load(broker: Broker, t: Target): Promise<void> {
  try {
    attach(t, await broker.logs.partition(t.topicName, t.partitionIndex));
  } catch (err) {
    t.errorCode = errorCodeFor(err, broker.logger, "Fetch");
  }
}

/** Topic records looked up once per request, by name or (v13+) by id. */
class TopicLookup {
  readonly #broker: Broker;
  readonly #byId: boolean;
  readonly #seen = new Map<string, TopicRecord | null>();

  constructor(broker: Broker, byId: boolean) {
    this.#broker = broker;
    this.#byId = byId;
  }

  async get(name: string, id: string): Promise<TopicRecord | null> {
    const key = this.#byId ? id : name;
    if (this.#seen.has(key)) return this.#seen.get(key)!;
    const topic = await safeTopic(this.#broker, this.#byId ? { id } : { name });
    this.#seen.set(key, topic);
    return topic;
  }
}

function newTarget(
  ctx: RequestContext,
  topic: TopicRecord | null,
  byId: boolean,
  name: string,
  id: string,
  wanted: { partition: number; fetchOffset: number; maxBytes: number; currentLeaderEpoch: number },
  session: SessionPartition | null,
): Target {
  const target: Target = {
    topicName: topic?.name ?? name,
    topicId: id || topic?.topicId || "",
    partitionIndex: wanted.partition,
    fetchOffset: wanted.fetchOffset,
    partitionMaxBytes: wanted.maxBytes,
    log: null,
    errorCode: ERROR_CODES.NONE,
    seenHighWatermark: -1,
    session,
    currentLeaderEpoch: wanted.currentLeaderEpoch,
  };
  if (!topic) {
    target.errorCode = byId ? ERROR_CODES.UNKNOWN_TOPIC_ID : ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
  } else if (!can(ctx, OP.READ, RT.TOPIC, topic.name)) {
    target.errorCode = ERROR_CODES.TOPIC_AUTHORIZATION_FAILED;
  } else if (wanted.partition < 0 || wanted.partition >= topic.partitions) {
    target.errorCode = ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
  }
  return target;
}

/** Applies an incremental request to its session: forgotten partitions go, named ones are added or moved. */
async function applyIncremental(
  session: FetchSession,
  req: FetchRequest,
  lookup: TopicLookup,
): Promise<void> {
  for (const f of req.forgottenTopicsData ?? []) {
    const topic = await lookup.get(f.topic ?? "", f.topicId ?? "");
    for (const partition of f.partitions) {
      session.forget(topic?.name ?? f.topic ?? "", f.topicId ?? topic?.topicId ?? "", partition);
    }
  }
  for (const t of req.topics) {
    const topic = await lookup.get(t.topic ?? "", t.topicId ?? "");
    for (const p of t.partitions) {
      session.upsert({
        topic: topic?.name ?? t.topic ?? "",
        topicId: t.topicId || topic?.topicId || "",
        partition: p.partition,
        fetchOffset: p.fetchOffset,
        maxBytes: p.partitionMaxBytes,
        currentLeaderEpoch: p.currentLeaderEpoch ?? -1,
      });
    }
  }
}

/**
 * Whether an incremental response must carry a partition (Kafka's rule): it
 * has records or an error, or its high watermark, last stable offset or log
 * start offset changed since last sent. Records what is sent.
 */
function mustRespond(sp: SessionPartition, data: PartitionData): boolean {
  const changed = data.errorCode !== ERROR_CODES.NONE ||
    (data.records !== null && data.records.length > 0) ||
    data.highWatermark !== sp.sentHighWatermark ||
    (data.lastStableOffset ?? -1) !== sp.sentLastStableOffset ||
    (data.logStartOffset ?? -1) !== sp.sentLogStartOffset;
  if (changed) remember(sp, data);
  return changed;
}

function remember(sp: SessionPartition, data: PartitionData): void {
  sp.sentHighWatermark = data.highWatermark;
  sp.sentLastStableOffset = data.lastStableOffset ?? -1;
  sp.sentLogStartOffset = data.logStartOffset ?? -1;
}

async function safeTopic(
  broker: Broker,
  ref: { name: string } | { id: string },
): Promise<TopicRecord | null> {
  try {
    return "id" in ref ? await broker.topicById(ref.id) : await broker.topic(ref.name);
  } catch {
    return null;
  }
}

function emptyPartition(index: number, errorCode: number): PartitionData {
  return {
    partitionIndex: index,
    errorCode,
    highWatermark: -1,
    lastStableOffset: -1,
    logStartOffset: -1,
    abortedTransactions: null,
    preferredReadReplica: -1,
    // Empty, never null: librdkafka reads a null as a message set of size -1 and
    // drops the whole response (Kafka sends MemoryRecords.EMPTY here too).
    records: EMPTY_RECORDS,
  };
}

async function readAll(
  broker: Broker,
  targets: Target[],
  maxBytes: number,
  readCommitted: boolean,
): Promise<{ data: PartitionData[]; bytes: number; anyError: boolean }> {
  let bytes = 0;
  let anyError = false;
  const data: PartitionData[] = [];
  // Set once a partition's next batch did not fit what was left of the response: the
  // partitions after it get no budget (as Kafka's, whose slice of that partition takes the
  // rest), so they cost nothing to answer. Trying each with the small remainder would load
  // every such partition's segment for nothing: with 1,000 partitions, every request.
  let full = false;
  // Sequential on purpose: the response-level byte budget is shared in order.
  for (const t of targets) {
    if (!t.log) {
      data.push(emptyPartition(t.partitionIndex, t.errorCode));
      anyError = true;
      continue;
    }
    try {
      const left = full ? 0 : Math.max(0, maxBytes - bytes);
      const budget = Math.min(t.partitionMaxBytes, left);
      const minOneBatch = bytes === 0 && !full;
      // No budget: the offsets alone, synchronously (most partitions of a fetch over many).
      const read = budget <= 0 && !minOneBatch
        ? t.log.position(t.fetchOffset)
        : await t.log.read(t.fetchOffset, budget, { minOneBatch, readCommitted });
      if (read.stoppedShort && left <= t.partitionMaxBytes) full = true;
      t.seenHighWatermark = read.highWatermark;
      const part = emptyPartition(t.partitionIndex, ERROR_CODES.NONE);
      part.highWatermark = read.highWatermark;
      part.lastStableOffset = read.lastStableOffset;
      part.logStartOffset = read.logStartOffset;
      if (readCommitted) {
        part.abortedTransactions = read.bytes === 0
          ? []
          : t.log.abortedTransactions(t.fetchOffset, read.lastStableOffset - 1).map((a) => ({
            producerId: a.producerId,
            firstOffset: a.firstOffset,
          }));
      }
      if (read.outOfRange) {
        part.errorCode = ERROR_CODES.OFFSET_OUT_OF_RANGE;
        anyError = true;
      } else {
        // One chunk goes as it is; several (from separate buffers) are joined.
        part.records = read.chunks.length === 1
          ? read.chunks[0]
          : joinBytes(read.chunks, read.bytes);
        bytes += read.bytes;
      }
      data.push(part);
    } catch (err) {
      data.push(emptyPartition(t.partitionIndex, errorCodeFor(err, broker.logger, "Fetch")));
      anyError = true;
    }
  }
  return { data, bytes, anyError };
}

async function waitForAny(
  targets: Target[],
  timeoutMs: number,
  stopping: AbortSignal,
): Promise<void> {
  const abort = new AbortController();
  const waits = targets
    .filter((t) => t.log)
    .map((t) =>
      t.log!.waitForData(Math.max(t.fetchOffset, t.seenHighWatermark), timeoutMs, abort.signal)
    );
  if (waits.length === 0) return;
  const onStop = () => abort.abort();
  stopping.addEventListener("abort", onStop, { once: true });
  try {
    await Promise.race(waits);
  } finally {
    stopping.removeEventListener("abort", onStop);
    abort.abort();
    await Promise.allSettled(waits);
  }
}
