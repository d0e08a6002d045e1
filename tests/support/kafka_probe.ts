/**
 * Single Kafka requests against a running broker, timed, for tests that check how a broker
 * answers while one of its stores is down: create a topic, produce one batch with acks=all,
 * fetch from an offset. Speaks through the project's small client (lib/client), one fresh
 * connection per probe, each bounded by a deadline.
 */
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";

const PRODUCE_VERSION = 9;
const FETCH_VERSION = 12;
const CREATE_TOPICS_VERSION = 7;

export interface ProbeResult {
  errorCode: number;
  /** Wall time from sending the request to its answer. */
  ms: number;
  /** Fetch: record bytes returned. */
  bytes?: number;
}

/** Runs `fn` on a fresh connection; rejects when it takes longer than `timeoutMs`. */
async function withConnection<T>(
  bootstrap: string,
  timeoutMs: number,
  fn: (conn: KafkaConnection) => Promise<T>,
): Promise<T> {
  const conn = await KafkaConnection.connect(bootstrap, "kafscale-probe");
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      fn(conn),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`The broker did not answer within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    conn.close();
    await conn.closedByPeer();
  }
}

export function createTopic(
  bootstrap: string,
  name: string,
  partitions: number,
  timeoutMs: number,
): Promise<number> {
  return withConnection(bootstrap, timeoutMs, async (conn) => {
    const res = await conn.send(API_SCHEMAS[19], CREATE_TOPICS_VERSION, {
      topics: [{
        name,
        numPartitions: partitions,
        replicationFactor: 1,
        assignments: [],
        configs: [],
      }],
      timeoutMs,
      validateOnly: false,
    });
    return res!.topics[0].errorCode;
  });
}

/** Produces `count` small records to one partition with acks=all. */
export function produceProbe(
  bootstrap: string,
  topic: string,
  partition: number,
  timeoutMs: number,
  count = 1,
): Promise<ProbeResult> {
  const records = encodeRecordBatch(
    Array.from({ length: count }, (_, i) => ({
      key: new TextEncoder().encode(`probe-${i}`),
      value: new TextEncoder().encode(`probe-${Date.now()}`),
    })),
  );
  return withConnection(bootstrap, timeoutMs, async (conn) => {
    const start = performance.now();
    const res = await conn.send(API_SCHEMAS[0], PRODUCE_VERSION, {
      transactionalId: null,
      acks: -1,
      timeoutMs,
      topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
    });
    const errorCode = res!.responses[0].partitionResponses[0].errorCode;
    return { errorCode, ms: performance.now() - start };
  });
}

/** Fetches from `offset` without waiting (maxWaitMs 0). */
export function fetchProbe(
  bootstrap: string,
  topic: string,
  partition: number,
  offset: number,
  timeoutMs: number,
): Promise<ProbeResult> {
  return withConnection(bootstrap, timeoutMs, async (conn) => {
    const start = performance.now();
    const res = await conn.send(API_SCHEMAS[1], FETCH_VERSION, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1024 * 1024,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [{
        topic,
        topicId: "AAAAAAAAAAAAAAAAAAAAAA",
        partitions: [{
          partition,
          currentLeaderEpoch: -1,
          fetchOffset: offset,
          lastFetchedEpoch: -1,
          logStartOffset: -1,
          partitionMaxBytes: 1024 * 1024,
        }],
      }],
      forgottenTopicsData: [],
      rackId: "",
    });
    const part = res!.responses[0].partitions[0];
    return {
      errorCode: part.errorCode,
      ms: performance.now() - start,
      bytes: part.records?.byteLength ?? 0,
    };
  });
}

export { ERROR_CODES };
