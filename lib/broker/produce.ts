/**
 * Produce (0), versions 0-13, acks 0, 1 and -1 (v12 is v11 plus transactions V2, below; v13
 * names topics by id, KIP-516, and answers UNKNOWN_TOPIC_ID for an id it does not know).
 *
 * Batches are validated (magic 2, sizes, CRC32C, record walk for
 * uncompressed batches) and appended as bytes: only the base offset is
 * rewritten (and the timestamp for LogAppendTime topics), nothing is
 * re-encoded. v0-2 message sets (magic 0/1) are converted to one v2 batch.
 * An acks=1/-1 response waits until the data is durable in the object store
 * and committed in the metadata store; acks=0 gets no response at all.
 * Pipelined requests of one connection append in arrival order.
 *
 * Idempotent batches (a producer id, KIP-98) are checked against the
 * partition's producer state: a retried batch that is already stored gets
 * success with its ORIGINAL base offset and is not stored again; a gap gets
 * OUT_OF_ORDER_SEQUENCE_NUMBER, an old epoch INVALID_PRODUCER_EPOCH, and a
 * producer the partition has no state for, sending a sequence other than 0,
 * UNKNOWN_PRODUCER_ID with the log start offset (KIP-360: the client bumps
 * its epoch and starts over at 0).
 *
 * Transactional batches (a transactional id, KIP-98) are appended like idempotent ones once
 * the partition is known to be in the producer's Ongoing transaction: the first batch of a
 * transaction on a partition is checked with the transaction coordinator's record (KIP-890's
 * verification), so a late batch of a transaction that already ended gets INVALID_TXN_STATE
 * instead of opening a transaction nobody will end. A transactional request with a batch that
 * is not transactional (or the reverse) is INVALID_RECORD. From v12 (transactions V2) the request
 * adds its partitions to the transaction itself, all of them in one coordinator write.
 *
 * A request is handled in two passes inside the connection's in-order section: every partition
 * is checked and loaded at once (`preparePartition`), then the appends go in request order
 * (`appendReady`), so offsets follow arrival order while loads and coordinator writes overlap.
 */
import { PRODUCE_REQUEST, type ProduceRequest } from "../protocol/generated/produce_request.ts";
import {
  type BatchIndexAndErrorMessage,
  PRODUCE_RESPONSE,
  type ProduceResponse,
  type TopicProduceResponse,
} from "../protocol/generated/produce_response.ts";
import { ERROR_CODES, errorName } from "../protocol/error_codes.ts";
import {
  type BatchInfo,
  MAGIC_OFFSET,
  PRODUCER_ID_OFFSET,
  validateBatches,
} from "../protocol/record_batch.ts";
import { convertLegacyMessageSet } from "../protocol/legacy_message_set.ts";
import type { PartitionLog } from "../log/partition_log.ts";
import { isIdempotent, ProducerStateError } from "../log/producer_state.ts";
import type { TopicRecord } from "../metadata/cluster_metadata.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler, type RequestContext } from "./handler.ts";
import type { Broker } from "./broker.ts";
import { errorCodeFor } from "./errors.ts";
import { keylessRecordsRefusal } from "./keyless_records.ts";
import type { TxnProducer } from "../coordinator/txn_coordinator.ts";

interface PartitionResult {
  index: number;
  errorCode: number;
  errorMessage: string | null;
  baseOffset: number;
  logAppendTimeMs: number;
  logStartOffset: number;
  /** Produce v8+ per-record errors (KIP-467). */
  recordErrors?: BatchIndexAndErrorMessage[];
}

/** One partition's validated input, ready to append. */
interface Prepared {
  result: PartitionResult;
  /** Settles (never rejects) once the append is durable or has failed. */
  done?: Promise<void>;
}

function failed(index: number, errorCode: number, errorMessage: string | null = null): Prepared {
  return {
    result: {
      index,
      errorCode,
      errorMessage,
      baseOffset: -1,
      logAppendTimeMs: -1,
      logStartOffset: -1,
    },
  };
}

export const PRODUCE_HANDLER = defineHandler<ProduceRequest, ProduceResponse>({
  apiKey: 0,
  name: "Produce",
  minVersion: 0,
  maxVersion: 13,
  request: PRODUCE_REQUEST,
  response: PRODUCE_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const acks = req.acks;
    const topics: { name: string; topicId: string; partitions: Prepared[] }[] = [];
    const byId = ctx.apiVersion >= 13;
    if (acks !== 0 && acks !== 1 && acks !== -1) {
      for (const t of req.topicData) {
        topics.push({
          name: t.name ?? "", // absent from v13 (topic ids)
          topicId: t.topicId ?? "",
          partitions: t.partitionData.map((p) =>
            failed(
              p.index,
              ERROR_CODES.INVALID_REQUIRED_ACKS,
              `acks must be 0, 1 or -1, got ${acks}`,
            )
          ),
        });
      }
      return response(topics);
    }
    const transactionalId = req.transactionalId ?? null;
    startLoadingPartitions(ctx, req.topicData, byId);
    // Offsets are assigned inside `sequential`, so pipelined requests of this
    // connection append in the order they arrived; durability is awaited after.
    await ctx.sequential(async () => {
      const slots: { partitions: Prepared[]; slot: number; ready: Promise<Ready | Prepared> }[] =
        [];
      for (const t of req.topicData) {
        const entry = {
          name: t.name ?? "",
          topicId: t.topicId ?? "",
          partitions: [] as Prepared[],
        };
        topics.push(entry);
        // v13 names topics by id (KIP-516): an unknown id answers UNKNOWN_TOPIC_ID, and the
        // name the ACL check needs comes from the id (a topic you may not see stays unknown).
        const found = byId ? await lookupTopicById(broker, entry.topicId) : null;
        if (typeof found === "object" && found !== null) entry.name = found.name;
        const topic = transactionalId !== null &&
            !can(ctx, OP.WRITE, RT.TRANSACTIONAL_ID, transactionalId)
          ? ERROR_CODES.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
          : byId && typeof found === "number"
          ? found
          : !can(ctx, OP.WRITE, RT.TOPIC, entry.name)
          ? ERROR_CODES.TOPIC_AUTHORIZATION_FAILED
          : byId
          ? found!
          : await lookupTopic(broker, entry.name);
        for (const p of t.partitionData) {
          if (typeof topic === "number") {
            entry.partitions.push(failed(p.index, topic));
          } else if (p.index < 0 || p.index >= topic!.partitions) {
            entry.partitions.push(failed(p.index, ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION));
          } else {
            const slot = entry.partitions.length;
            entry.partitions.push(failed(p.index, ERROR_CODES.UNKNOWN_SERVER_ERROR));
            slots.push({
              partitions: entry.partitions,
              slot,
              ready: preparePartition(
                broker,
                topic!,
                p.index,
                p.records,
                ctx.apiVersion,
                transactionalId,
              ),
            });
          }
        }
      }
      // Every partition is checked and loaded at once; a transactions-V2 request then joins all
      // its new partitions to the transaction in one coordinator write; the appends go in order.
      const prepared = await Promise.all(slots.map((s) => s.ready));
      await joinTransactions(broker, prepared);
      slots.forEach(({ partitions, slot }, i) => {
        const p = prepared[i];
        partitions[slot] = "log" in p ? appendReady(broker, p, acks) : p;
      });
    });
    await Promise.all(topics.flatMap((t) => t.partitions.map((p) => p.done)));
    if (acks === 0) return null;
    return response(topics);
  },
});

/**
 * Starts loading the request's partitions that this broker has not loaded yet, all at once and
 * before the request waits for its turn in `sequential`. A first write to a partition acquires it
 * (a metadata transaction, an fsync on the embedded store); acquired one after another inside
 * `sequential`, a producer spreading over 1 000 new partitions waited ~1 ms per partition (p99
 * 300-600 ms for a second). Started together, the acquisitions share group commits. An idempotent
 * producer's partitions also start loading their producer state (a read of the log tail). Only for
 * topics the client may write to; the in-order pass reports any failure.
 */
function startLoadingPartitions(
  ctx: RequestContext,
  topicData: ProduceRequest["topicData"],
  byId: boolean,
): void {
  const { broker } = ctx;
  const needsLoading = (topic: string, p: { index: number; records: Uint8Array | null }) => {
    const log = broker.logs.loadedPartition(topic, p.index);
    return !log || (!log.producerStateLoaded && looksIdempotent(p.records));
  };
  for (const t of topicData) {
    if (!byId && !t.partitionData.some((p) => needsLoading(t.name ?? "", p))) continue;
    // Straight to the topic cache: a failed lookup is reported (and logged) by the in-order pass.
    const lookup = byId ? broker.topicById(t.topicId ?? "") : broker.topic(t.name ?? "");
    lookup.then((topic) => {
      if (!topic || !can(ctx, OP.WRITE, RT.TOPIC, topic.name)) return;
      for (const p of t.partitionData) {
        if (p.index < 0 || p.index >= topic.partitions || !needsLoading(topic.name, p)) continue;
        broker.logs.partition(topic.name, p.index)
          .then((log) => looksIdempotent(p.records) ? log.loadProducerState() : undefined)
          .catch(() => {});
      }
    }, () => {});
  }
}

/** Whether the first batch is a v2 batch with a producer id (checked properly later). */
function looksIdempotent(records: Uint8Array | null | undefined): boolean {
  if (!records || records.byteLength < PRODUCER_ID_OFFSET + 8 || records[MAGIC_OFFSET] !== 2) {
    return false;
  }
  const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
  return view.getBigInt64(PRODUCER_ID_OFFSET) >= 0n;
}

async function lookupTopic(broker: Broker, name: string): Promise<TopicRecord | number> {
  try {
    return (await broker.topic(name)) ?? ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
  } catch (err) {
    return errorCodeFor(err, broker.logger, "Produce topic lookup");
  }
}

async function lookupTopicById(broker: Broker, id: string): Promise<TopicRecord | number> {
  try {
    return (await broker.topicById(id)) ?? ERROR_CODES.UNKNOWN_TOPIC_ID;
  } catch (err) {
    return errorCodeFor(err, broker.logger, "Produce topic lookup");
  }
}

/** A partition whose batches passed every check, ready to append. */
interface Ready {
  topic: string;
  index: number;
  log: PartitionLog;
  records: Uint8Array;
  batches: BatchInfo[];
  totalRecords: number;
  now: number;
  logAppendTime: boolean;
  /** Transactions V2 (Produce v12+): the partition joins the producer's transaction first. */
  join: TxnProducer | null;
  /** Set by `joinTransactions` when joining failed. */
  refused?: Prepared;
}

/**
 * Checks a partition's batches, loads its log and (transactional batches) checks that the
 * partition is in the producer's Ongoing transaction, or marks it to join it (v12+). Appends
 * nothing.
 */
async function preparePartition(
  broker: Broker,
  topic: TopicRecord,
  index: number,
  input: Uint8Array | null,
  apiVersion: number,
  transactionalId: string | null,
): Promise<Ready | Prepared> {
  if (input === null || input.length === 0) {
    return failed(index, ERROR_CODES.CORRUPT_MESSAGE, "Produce request has no records");
  }
  const now = broker.clock.now();
  let records = input;
  if (input.length > MAGIC_OFFSET && input[MAGIC_OFFSET] < 2) {
    if (apiVersion >= 3) {
      return failed(
        index,
        ERROR_CODES.INVALID_RECORD,
        `Produce v${apiVersion} requires record batches of magic 2`,
      );
    }
    const converted = convertLegacyMessageSet(input, now);
    if (!converted.ok) return failed(index, converted.errorCode, converted.message);
    if (converted.count === 0) return failed(index, ERROR_CODES.NONE);
    records = converted.batch;
  }
  const maxBatchBytes = Number(broker.topicConfig(topic, "max.message.bytes"));
  const valid = validateBatches(records, { maxBatchBytes, allowZstd: apiVersion >= 7 });
  if (!valid.ok) return failed(index, valid.errorCode, valid.message);
  // Compacted topics refuse records without a key (keyless_records.ts).
  const keyless = keylessRecordsRefusal(topic.name, topic.configs, index, records, valid.batches);
  if (keyless) {
    const refused = failed(index, ERROR_CODES.INVALID_RECORD, keyless.errorMessage);
    refused.result.recordErrors = keyless.recordErrors;
    return refused;
  }
  const transactional = valid.batches.filter((b) => b.isTransactional);
  if (transactional.length > 0 && transactionalId === null) {
    return failed(
      index,
      ERROR_CODES.INVALID_RECORD,
      "Transactional batches need a transactional id",
    );
  }
  if (transactionalId !== null && transactional.length !== valid.batches.length) {
    return failed(
      index,
      ERROR_CODES.INVALID_RECORD,
      "A transactional producer's batches must all be transactional",
    );
  }
  if (valid.batches.some((b) => b.isControl)) {
    return failed(index, ERROR_CODES.INVALID_RECORD, "Producers cannot write control batches");
  }
  const logAppendTime = broker.topicConfig(topic, "message.timestamp.type") === "LogAppendTime";
  let log: PartitionLog;
  try {
    log = await broker.logs.partition(topic.name, index);
    if (valid.batches.some(isIdempotent)) await log.loadProducerState();
  } catch (err) {
    return failed(index, errorCodeFor(err, broker.logger, "Produce"));
  }
  // KIP-890: the first batch of a transaction on this partition must belong to the producer's
  // Ongoing transaction, as its coordinator's record says (transactions V1); from Produce v12
  // (V2) it adds the partition to the transaction itself (`joinTransactions`).
  let join: TxnProducer | null = null;
  if (transactionalId !== null) {
    const { producerId, producerEpoch } = transactional[0];
    if (log.pendingTransactionOf(producerId) === undefined) {
      const producer = { transactionalId, producerId, producerEpoch };
      if (apiVersion >= 12) {
        join = producer;
      } else {
        const partition = { topic: topic.name, partition: index };
        const code = await broker.transactions.verifyPartition(producer, partition);
        if (code !== ERROR_CODES.NONE) return notInTransaction(topic.name, index, producer, code);
      }
    }
  }
  return {
    topic: topic.name,
    index,
    log,
    records,
    batches: valid.batches,
    totalRecords: valid.totalRecords,
    now,
    logAppendTime,
    join,
  };
}

function notInTransaction(topic: string, index: number, p: TxnProducer, code: number): Prepared {
  return failed(
    index,
    RETRIABLE_VERIFICATION.has(code) ? ERROR_CODES.NOT_ENOUGH_REPLICAS : code,
    `Partition "${topic}-${index}" is not in an ongoing transaction of producer ` +
      `${p.producerId} epoch ${p.producerEpoch} (${errorName(code)})`,
  );
}

/**
 * Adds every partition marked `join` to its producer's transaction: one coordinator write per
 * producer (a request carries one), not one per partition, which the coordinator would run one
 * after another. A partition that could not join gets `refused`.
 */
async function joinTransactions(broker: Broker, prepared: (Ready | Prepared)[]): Promise<void> {
  const byProducer = new Map<string, Ready[]>();
  for (const p of prepared) {
    if (!("log" in p) || p.join === null) continue;
    const key = `${p.join.producerId}/${p.join.producerEpoch}`;
    const group = byProducer.get(key);
    if (group) group.push(p);
    else byProducer.set(key, [p]);
  }
  await Promise.all([...byProducer.values()].map(async (group) => {
    const producer = group[0].join!;
    const partitions = [...new Map(group.map((p) => [`${p.topic}/${p.index}`, p])).values()]
      .map((p) => ({ topic: p.topic, partition: p.index }));
    const code = await broker.transactions.addToTransaction(producer, { partitions });
    if (code === ERROR_CODES.NONE) return;
    for (const p of group) p.refused = notInTransaction(p.topic, p.index, producer, code);
  }));
}

/** Appends a prepared partition: offsets now, in request order; `done` settles on durability. */
function appendReady(broker: Broker, ready: Ready, acks: 0 | 1 | -1): Prepared {
  if (ready.refused) return ready.refused;
  const { index, log, records, now, logAppendTime } = ready;
  const result: PartitionResult = {
    index,
    errorCode: ERROR_CODES.NONE,
    errorMessage: null,
    baseOffset: -1,
    logAppendTimeMs: logAppendTime ? now : -1,
    logStartOffset: -1,
  };
  // append() assigns offsets synchronously; its promise settles on durability.
  const pending = log.append(records, ready.batches, {
    acks,
    logAppendTimeMs: logAppendTime ? now : undefined,
  });
  broker.metrics.inc("kafscale_produce_bytes_total", "Record bytes produced", {}, records.length);
  broker.metrics.inc("kafscale_produce_records_total", "Records produced", {}, ready.totalRecords);
  return {
    result,
    done: pending.then(
      (r) => {
        result.baseOffset = r.baseOffset;
        result.logStartOffset = r.logStartOffset;
        if (r.duplicate) {
          broker.metrics.inc(
            "kafscale_produce_duplicate_batches_total",
            "Retried idempotent batches answered with their original offsets, not stored again",
          );
        }
      },
      (err) => {
        if (err instanceof ProducerStateError) {
          result.errorCode = err.code;
          result.logStartOffset = err.logStartOffset;
          broker.metrics.inc(
            "kafscale_produce_sequence_errors_total",
            "Idempotent batches refused for their sequence or epoch",
            { code: String(err.code) },
          );
        } else {
          result.errorCode = errorCodeFor(err, broker.logger, "Produce");
        }
        result.errorMessage = err instanceof Error ? err.message : String(err);
      },
    ),
  };
}

/**
 * Coordinator answers that only mean "not now" (a transaction still completing, a coordinator
 * without its store): the produce answer is NOT_ENOUGH_REPLICAS, which every producer retries, as
 * Kafka answers a produce whose verification failed that way.
 */
const RETRIABLE_VERIFICATION = new Set<number>([
  ERROR_CODES.CONCURRENT_TRANSACTIONS,
  ERROR_CODES.COORDINATOR_NOT_AVAILABLE,
  ERROR_CODES.COORDINATOR_LOAD_IN_PROGRESS,
  ERROR_CODES.NOT_COORDINATOR,
]);

function response(
  topics: { name: string; topicId: string; partitions: Prepared[] }[],
): ProduceResponse {
  const responses: TopicProduceResponse[] = topics.map((t) => ({
    name: t.name,
    topicId: t.topicId,
    partitionResponses: t.partitions.map(({ result }) => ({
      index: result.index,
      errorCode: result.errorCode,
      baseOffset: result.baseOffset,
      logAppendTimeMs: result.logAppendTimeMs,
      logStartOffset: result.logStartOffset,
      recordErrors: result.recordErrors ?? [],
      errorMessage: result.errorCode === ERROR_CODES.NONE ? null : result.errorMessage,
    })),
  }));
  return { responses, throttleTimeMs: 0 };
}
