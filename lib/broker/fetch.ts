/**
 * Fetch (1), versions 4-17.
 *
 * Returns whole stored batches as byte ranges (never re-encoded), spanning
 * segments, honouring MaxBytes (response), PartitionMaxBytes and KIP-74's
 * "at least one batch" rule. When fewer than MinBytes are available the
 * request long-polls up to MaxWaitMs and is woken in-process by commits of
 * the partitions it reads — no store is polled. Incremental fetch sessions
 * (KIP-227) are declined by answering session id 0, which every client
 * handles by sending full fetch requests.
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
import { defineHandler } from "./handler.ts";
import type { Broker } from "./broker.ts";
import { errorCodeFor } from "./errors.ts";

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
}

export const FETCH_HANDLER = defineHandler<FetchRequest, FetchResponse>({
  apiKey: 1,
  name: "Fetch",
  minVersion: 4,
  maxVersion: 17,
  request: FETCH_REQUEST,
  response: FETCH_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const version = ctx.apiVersion;
    if ((req.sessionId ?? 0) !== 0) {
      return {
        throttleTimeMs: 0,
        errorCode: ERROR_CODES.FETCH_SESSION_ID_NOT_FOUND,
        sessionId: 0,
        responses: [],
      };
    }
    const byId = version >= 13;
    const targets: Target[] = [];
    for (const t of req.topics) {
      const topic = await safeTopic(
        broker,
        byId ? { id: t.topicId ?? "" } : { name: t.topic ?? "" },
      );
      const missingCode = byId
        ? ERROR_CODES.UNKNOWN_TOPIC_ID
        : ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
      for (const p of t.partitions) {
        const target: Target = {
          topicName: topic?.name ?? t.topic ?? "",
          topicId: t.topicId ?? topic?.topicId ?? "",
          partitionIndex: p.partition,
          fetchOffset: p.fetchOffset,
          partitionMaxBytes: p.partitionMaxBytes,
          log: null,
          errorCode: ERROR_CODES.NONE,
          seenHighWatermark: -1,
        };
        if (!topic) target.errorCode = missingCode;
        else if (!can(ctx, OP.READ, RT.TOPIC, topic.name)) {
          target.errorCode = ERROR_CODES.TOPIC_AUTHORIZATION_FAILED;
        } else if (p.partition < 0 || p.partition >= topic.partitions) {
          target.errorCode = ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
        }
        targets.push(target);
      }
    }
    await Promise.all(targets.map(async (t) => {
      if (t.errorCode !== ERROR_CODES.NONE) return;
      try {
        t.log = await broker.logs.partition(t.topicName, t.partitionIndex);
      } catch (err) {
        t.errorCode = errorCodeFor(err, broker.logger, "Fetch");
      }
    }));

    const maxBytes = req.maxBytes ?? 0x7fffffff;
    const deadline = broker.clock.monotonic() +
      Math.min(Math.max(req.maxWaitMs, 0), MAX_WAIT_CAP_MS);
    const readCommitted = (req.isolationLevel ?? 0) === 1;
    let partitions = await readAll(broker, targets, maxBytes, readCommitted);
    for (let round = 0; round < MAX_POLL_ROUNDS; round++) {
      const remaining = deadline - broker.clock.monotonic();
      if (partitions.bytes >= req.minBytes || partitions.anyError || remaining <= 0) break;
      await waitForAny(targets, remaining);
      partitions = await readAll(broker, targets, maxBytes, readCommitted);
    }
    broker.metrics.inc("kafscale_fetch_bytes_total", "Record bytes fetched", {}, partitions.bytes);

    const responses: FetchableTopicResponse[] = [];
    let current: FetchableTopicResponse | null = null;
    targets.forEach((t, i) => {
      const key = version >= 13 ? t.topicId : t.topicName;
      const currentKey = current ? (version >= 13 ? current.topicId : current.topic) : null;
      if (!current || currentKey !== key) {
        current = { topic: t.topicName, topicId: t.topicId, partitions: [] };
        responses.push(current);
      }
      current.partitions.push(partitions.data[i]);
    });
    return { throttleTimeMs: 0, errorCode: ERROR_CODES.NONE, sessionId: 0, responses };
  },
});

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
  // Sequential on purpose: the response-level byte budget is shared in order.
  for (const t of targets) {
    if (!t.log) {
      data.push(emptyPartition(t.partitionIndex, t.errorCode));
      anyError = true;
      continue;
    }
    try {
      const budget = Math.max(0, Math.min(t.partitionMaxBytes, maxBytes - bytes));
      const read = await t.log.read(t.fetchOffset, budget, {
        minOneBatch: bytes === 0,
        readCommitted,
      });
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
        part.records = concat(read.chunks, read.bytes);
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

/** One chunk is passed through as is; several are joined (segments live in separate buffers). */
function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

async function waitForAny(targets: Target[], timeoutMs: number): Promise<void> {
  const abort = new AbortController();
  const waits = targets
    .filter((t) => t.log)
    .map((t) =>
      t.log!.waitForData(Math.max(t.fetchOffset, t.seenHighWatermark), timeoutMs, abort.signal)
    );
  if (waits.length === 0) return;
  try {
    await Promise.race(waits);
  } finally {
    abort.abort();
    await Promise.allSettled(waits);
  }
}
