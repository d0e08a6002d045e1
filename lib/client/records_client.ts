/**
 * Producing and fetching records over the Kafka protocol for the `kafscale produce` and
 * `kafscale consume` commands, on top of the admin client's connections (leaders come from
 * its cluster metadata). Small and synchronous in spirit: one request per leader at a time,
 * which is what a command-line tool needs, not a high-throughput client.
 *
 * Partitioning follows the Java client's default: a keyed record goes to
 * murmur2(key) mod partitions (so the same key lands where Java producers put it), a keyless
 * one to the partitions in turn.
 */
import { API_SCHEMAS } from "../protocol/generated/apis.ts";
import { ZERO_UUID } from "../protocol/primitives.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { COMPRESSION } from "../protocol/record_batch.ts";
import {
  type ConsumedRecord,
  decodeRecordBatches,
  encodeRecordBatch,
  type ProducerRecord,
} from "../protocol/records.ts";
import { compressRecords, decompressRecords } from "../log/compaction/record_codecs.ts";
import { MAX_DECOMPRESSED_BATCH_BYTES } from "../protocol/records.ts";
import {
  type AdminClient,
  AdminError,
  describeError,
  TOPIC_NAMES_MAX_PRODUCE_VERSION,
  type TopicInfo,
} from "./admin.ts";

/** Records per batch, and bytes per batch (before compression), a producer sends. */
export const PRODUCE_BATCH_RECORDS_MAX = 5_000;
export const PRODUCE_BATCH_BYTES_MAX = 900 * 1024;
/** Attempts of a produce whose partitions answer a retriable error (leader moved, ...). */
export const PRODUCE_ATTEMPTS_MAX = 5;
/** Errors after which a produce is retried with fresh metadata. */
const RETRIABLE = new Set<number>([
  ERROR_CODES.NOT_LEADER_OR_FOLLOWER,
  ERROR_CODES.LEADER_NOT_AVAILABLE,
  ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION,
  ERROR_CODES.REQUEST_TIMED_OUT,
  ERROR_CODES.NOT_ENOUGH_REPLICAS,
  ERROR_CODES.KAFKA_STORAGE_ERROR,
]);

export type CompressionName = "none" | "gzip" | "snappy" | "lz4" | "zstd";
export const COMPRESSION_CHOICES: readonly CompressionName[] = [
  "none",
  "gzip",
  "snappy",
  "lz4",
  "zstd",
];

/** Kafka's murmur2 (the Java producer's default partitioner hash). */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  const length = data.length;
  let h = (0x9747b28c ^ length) | 0;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const rest = length & 3;
  if (rest === 3) h ^= data[whole + 2] << 16;
  if (rest >= 2) h ^= data[whole + 1] << 8;
  if (rest >= 1) {
    h ^= data[whole];
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** The Java client's partition for a key. */
export function partitionForKey(key: Uint8Array, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

/** Produces records, batched per partition, to each partition's leader. */
export class RecordProducer {
  readonly #admin: AdminClient;
  readonly #topic: string;
  readonly #acks: -1 | 0 | 1;
  readonly #codec: { id: number; compress(records: Uint8Array): Uint8Array } | undefined;
  #info: TopicInfo | null = null;
  #next = 0;

  constructor(
    admin: AdminClient,
    topic: string,
    options: { acks: -1 | 0 | 1; compression: CompressionName },
  ) {
    this.#admin = admin;
    this.#topic = topic;
    this.#acks = options.acks;
    const id = COMPRESSION[options.compression];
    this.#codec = id === COMPRESSION.none
      ? undefined
      : { id, compress: (records) => compressRecords(id, records) };
  }

  /** Partition count (after the first send or `partitions()`). */
  async partitions(): Promise<number> {
    return (await this.#metadata(false)).partitions.length;
  }

  async #metadata(refresh: boolean): Promise<TopicInfo> {
    if (this.#info && !refresh) return this.#info;
    // metadata() throws AdminError naming the topic when it does not exist.
    const cluster = await this.#admin.metadata([this.#topic]);
    const info = cluster.topics.find((t) => t.name === this.#topic);
    if (!info) {
      throw new AdminError(
        `Topic "${this.#topic}" does not exist`,
        ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION,
      );
    }
    this.#info = info;
    return info;
  }

  /**
   * Sends `records` (in order per partition) and resolves when every one was acknowledged
   * (acks 0: sent). A record's `partition`, when set, is used as is. Throws AdminError naming
   * the partition and the error once a partition fails for good.
   */
  async send(records: (ProducerRecord & { partition?: number })[]): Promise<void> {
    const info = await this.#metadata(false);
    const count = info.partitions.length;
    const byPartition = new Map<number, ProducerRecord[]>();
    for (const r of records) {
      let p = r.partition;
      if (p === undefined) {
        p = r.key ? partitionForKey(r.key, count) : this.#next++ % count;
      } else if (p < 0 || p >= count) {
        throw new AdminError(
          `Topic "${this.#topic}" has ${count} partitions; there is no partition ${p}`,
          ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION,
        );
      }
      const list = byPartition.get(p) ?? [];
      list.push(r);
      byPartition.set(p, list);
    }
    // Batches in order per partition; each request carries at most one batch per partition,
    // so a retry never reorders records of a partition.
    const queues = new Map<number, Uint8Array[]>();
    for (const [p, list] of byPartition) queues.set(p, this.#batches(list));
    // Bounded: every round sends at least one batch, or counts towards the retry limit.
    for (let failures = 0; [...queues.values()].some((q) => q.length > 0);) {
      const heads = new Map<number, Uint8Array>();
      for (const [p, q] of queues) if (q.length > 0) heads.set(p, q[0]);
      const failed = await this.#sendHeads(heads);
      for (const p of heads.keys()) if (!failed.has(p)) queues.get(p)!.shift();
      if (failed.size === 0) {
        failures = 0;
        continue;
      }
      const round = failures++;
      if (failures >= PRODUCE_ATTEMPTS_MAX) {
        const [p, code] = failed.entries().next().value!;
        throw new AdminError(
          `Cannot produce to partition ${p} of "${this.#topic}": ${describeError(code)}`,
          code,
        );
      }
      await this.#metadata(true);
      await new Promise((r) => setTimeout(r, 100 * Math.min(10, round + 1)));
    }
  }

  #batches(records: ProducerRecord[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    let current: ProducerRecord[] = [];
    let bytes = 0;
    const flush = () => {
      if (current.length === 0) return;
      out.push(encodeRecordBatch(current, { baseTimestamp: Date.now(), codec: this.#codec }));
      current = [];
      bytes = 0;
    };
    for (const r of records) {
      const size = (r.key?.length ?? 0) + (r.value?.length ?? 0) + 32 +
        (r.headers ?? []).reduce((n, h) => n + h.key.length + (h.value?.length ?? 0) + 8, 0);
      if (current.length >= PRODUCE_BATCH_RECORDS_MAX || bytes + size > PRODUCE_BATCH_BYTES_MAX) {
        flush();
      }
      current.push({ ...r, timestamp: r.timestamp ?? Date.now() });
      bytes += size;
    }
    flush();
    return out;
  }

  /** One request per leader; returns the partitions that answered a retriable error. */
  async #sendHeads(heads: Map<number, Uint8Array>): Promise<Map<number, number>> {
    const info = await this.#metadata(false);
    const byLeader = new Map<number, number[]>();
    const failed = new Map<number, number>();
    for (const p of heads.keys()) {
      const leader = info.partitions.find((x) => x.partition === p)?.leader ?? -1;
      if (leader < 0) {
        failed.set(p, ERROR_CODES.LEADER_NOT_AVAILABLE);
        continue;
      }
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), p]);
    }
    const schema = API_SCHEMAS[0];
    const version = this.#admin.version(schema, 3, TOPIC_NAMES_MAX_PRODUCE_VERSION);
    await Promise.all([...byLeader].map(async ([leader, partitions]) => {
      const body = {
        transactionalId: null,
        acks: this.#acks,
        timeoutMs: 30_000,
        topicData: [{
          name: this.#topic,
          partitionData: partitions.map((p) => ({ index: p, records: heads.get(p)! })),
        }],
      };
      if (this.#acks === 0) {
        await this.#admin.request(leader, schema, version, body).catch(() => undefined);
        return;
      }
      const res = await this.#admin.request(leader, schema, version, body);
      for (const t of res.responses) {
        for (const p of t.partitionResponses) {
          if (p.errorCode === ERROR_CODES.NONE) continue;
          if (!RETRIABLE.has(p.errorCode)) {
            throw new AdminError(
              `Cannot produce to partition ${p.index} of "${this.#topic}": ` +
                describeError(p.errorCode, p.errorMessage),
              p.errorCode,
            );
          }
          failed.set(p.index, p.errorCode);
        }
      }
    }));
    return failed;
  }
}

/** A record as `kafscale consume` prints it. */
export interface FetchedRecord extends ConsumedRecord {
  partition: number;
}

/**
 * Fetches records of a topic's partitions from given offsets, in order per partition, from
 * each partition's leader (Fetch v11, read_uncommitted).
 */
export class RecordFetcher {
  readonly #admin: AdminClient;
  readonly #topic: string;
  readonly #positions: Map<number, number>;
  #info: TopicInfo | null = null;
  /** High watermark per partition, from the last fetch. */
  readonly highWatermarks = new Map<number, number>();

  constructor(admin: AdminClient, topic: string, positions: Map<number, number>) {
    this.#admin = admin;
    this.#topic = topic;
    this.#positions = new Map(positions);
  }

  /** The next offset to read per partition. */
  get positions(): ReadonlyMap<number, number> {
    return this.#positions;
  }

  /** Whether every partition's position reached its high watermark at the last fetch. */
  atEnd(): boolean {
    for (const [p, pos] of this.#positions) {
      const hw = this.highWatermarks.get(p);
      if (hw === undefined || pos < hw) return false;
    }
    return true;
  }

  /** One fetch round over every partition (waits up to `maxWaitMs` for data). */
  async fetch(maxWaitMs: number): Promise<FetchedRecord[]> {
    let info = this.#info;
    if (!info) {
      const cluster = await this.#admin.metadata([this.#topic]);
      info = cluster.topics.find((t) => t.name === this.#topic) ?? null;
      if (!info) throw new AdminError(`Topic "${this.#topic}" does not exist`);
      this.#info = info;
    }
    const byLeader = new Map<number, number[]>();
    for (const p of this.#positions.keys()) {
      const leader = info.partitions.find((x) => x.partition === p)?.leader ?? -1;
      if (leader < 0) {
        this.#info = null; // refresh next time
        continue;
      }
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), p]);
    }
    const schema = API_SCHEMAS[1];
    const version = this.#admin.version(schema, 4);
    const out: FetchedRecord[] = [];
    await Promise.all([...byLeader].map(async ([leader, partitions]) => {
      const res = await this.#admin.request(leader, schema, version, {
        replicaId: -1,
        maxWaitMs,
        minBytes: 1,
        maxBytes: 16 << 20,
        isolationLevel: 0,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [{
          topic: this.#topic,
          topicId: info.topicId || ZERO_UUID, // v13+ name topics by id
          partitions: partitions.map((p) => ({
            partition: p,
            currentLeaderEpoch: -1,
            fetchOffset: this.#positions.get(p)!,
            lastFetchedEpoch: -1,
            logStartOffset: -1,
            partitionMaxBytes: 4 << 20,
          })),
        }],
        forgottenTopicsData: [],
        rackId: "",
      });
      for (const t of res.responses) {
        for (const p of t.partitions) {
          if (p.errorCode !== ERROR_CODES.NONE) {
            if (p.errorCode === ERROR_CODES.NOT_LEADER_OR_FOLLOWER) {
              this.#info = null;
              continue;
            }
            throw new AdminError(
              `Cannot fetch partition ${p.partitionIndex} of "${this.#topic}": ` +
                describeError(p.errorCode),
              p.errorCode,
            );
          }
          this.highWatermarks.set(p.partitionIndex, p.highWatermark);
          if (!p.records || p.records.byteLength === 0) continue;
          const { records, batches } = decodeRecordBatches(p.records, {
            inflate: (codec, payload) =>
              decompressRecords(codec, payload, MAX_DECOMPRESSED_BATCH_BYTES),
          });
          const from = this.#positions.get(p.partitionIndex)!;
          let next = from;
          for (const r of records) {
            if (r.offset < from) continue;
            out.push({ ...r, partition: p.partitionIndex });
          }
          // Move past whole batches (gaps of compacted topics, control batches included).
          for (const b of batches) next = Math.max(next, b.baseOffset + b.lastOffsetDelta + 1);
          this.#positions.set(p.partitionIndex, next);
        }
      }
    }));
    return out;
  }
}
