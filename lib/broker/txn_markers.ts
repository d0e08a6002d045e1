/**
 * Writes a transaction decision's COMMIT or ABORT markers to its partitions (the coordinator's
 * MarkerWriter): partitions this broker owns (or can take, in embedded mode) through their
 * log's append path; partitions another broker owns with WriteTxnMarkers to that broker, as
 * Kafka's coordinator does. A partition of a topic deleted since needs no marker. Any other
 * failure rejects, and the coordinator tries the whole decision again later: markers carry the
 * decision number, so partitions that already hold one do not append it twice.
 */
import type { TopicPartitionRef } from "../metadata/cluster_metadata.ts";
import { LOG_ERROR_CODE, LogError } from "../log/log_error.ts";
import { mapBounded } from "../log/bounded.ts";
import { KafkaConnection } from "../client/kafka_connection.ts";
import { interBrokerEndpoint, interBrokerSecurity } from "./inter_broker.ts";
import { WRITE_TXN_MARKERS_REQUEST } from "../protocol/generated/write_txn_markers_request.ts";
import { WRITE_TXN_MARKERS_RESPONSE } from "../protocol/generated/write_txn_markers_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { MarkerWriteError, type MarkerWriter } from "../coordinator/txn_coordinator.ts";
import type { Broker } from "./broker.ts";

/** Partitions written at once by one decision. */
const MARKER_CONCURRENCY = 16;
/** Bound on one WriteTxnMarkers round trip to another broker. */
const REMOTE_TIMEOUT_MS = 30_000;

export interface Marker {
  producerId: number;
  producerEpoch: number;
  commit: boolean;
  decision: number;
  partitions: TopicPartitionRef[];
}

/**
 * Appends the marker to each partition this broker serves. Returns the partitions owned by
 * other brokers and the Kafka error code of each partition that failed.
 */
export async function writeLocalMarkers(
  broker: Broker,
  m: Marker,
): Promise<{ elsewhere: TopicPartitionRef[]; codes: Map<TopicPartitionRef, number> }> {
  const elsewhere: TopicPartitionRef[] = [];
  const codes = new Map<TopicPartitionRef, number>();
  await mapBounded(m.partitions, MARKER_CONCURRENCY, async (tp) => {
    try {
      const log = await broker.logs.partition(tp.topic, tp.partition);
      await log.appendMarker(m.producerId, m.producerEpoch, m.commit, m.decision);
      codes.set(tp, ERROR_CODES.NONE);
    } catch (err) {
      if (err instanceof LogError && err.code === LOG_ERROR_CODE.UNKNOWN_TOPIC_OR_PARTITION) {
        codes.set(tp, ERROR_CODES.NONE); // deleted with its data: nothing left to mark
      } else if (err instanceof LogError && err.code === LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER) {
        elsewhere.push(tp);
      } else {
        broker.logger.warn("Cannot write a transaction marker; retried", {
          topic: tp.topic,
          partition: tp.partition,
          err: err instanceof Error ? err.message : String(err),
        });
        codes.set(tp, err instanceof LogError ? err.code : ERROR_CODES.UNKNOWN_SERVER_ERROR);
      }
    }
  });
  return { elsewhere, codes };
}

export class BrokerMarkerWriter implements MarkerWriter {
  readonly #broker: Broker;

  constructor(broker: Broker) {
    this.#broker = broker;
  }

  async writeMarkers(m: Marker): Promise<void> {
    const { elsewhere, codes } = await writeLocalMarkers(this.#broker, m);
    const failed = [...codes].filter(([, code]) => code !== ERROR_CODES.NONE);
    if (elsewhere.length > 0) failed.push(...await this.#writeRemote(m, elsewhere));
    if (failed.length > 0) {
      throw new MarkerWriteError(
        `Markers not written to ${failed.length} partition(s), e.g. "${failed[0][0].topic}-` +
          `${failed[0][0].partition}" (error ${failed[0][1]})`,
      );
    }
  }

  /** WriteTxnMarkers to each partition's owner; returns the partitions that failed. */
  async #writeRemote(
    m: Marker,
    partitions: TopicPartitionRef[],
  ): Promise<[TopicPartitionRef, number][]> {
    const broker = this.#broker;
    const brokers = new Map((await broker.metadata.listBrokers()).map((b) => [b.brokerId, b]));
    const byOwner = new Map<number, TopicPartitionRef[]>();
    const failed: [TopicPartitionRef, number][] = [];
    for (const tp of partitions) {
      const owner = await broker.metadata.getPartitionOwner(tp.topic, tp.partition);
      if (!owner || owner.brokerId === broker.settings.nodeId || !brokers.has(owner.brokerId)) {
        failed.push([tp, ERROR_CODES.NOT_LEADER_OR_FOLLOWER]);
        continue;
      }
      const list = byOwner.get(owner.brokerId) ?? [];
      list.push(tp);
      byOwner.set(owner.brokerId, list);
    }
    for (const [brokerId, list] of byOwner) {
      const b = brokers.get(brokerId)!;
      let conn: KafkaConnection | null = null;
      const timer = setTimeout(() => conn?.close(), REMOTE_TIMEOUT_MS);
      try {
        const endpoint = interBrokerEndpoint(b);
        conn = await KafkaConnection.connect(
          `${endpoint.host}:${endpoint.port}`,
          "kafscale-txn-coordinator",
          await interBrokerSecurity(endpoint.protocol, {
            saslMechanisms: broker.settings.saslMechanisms ?? [],
            tls: broker.settings.tls ?? null,
            secret: () => broker.interBrokerSecret(),
          }),
        );
        const topics = new Map<string, number[]>();
        for (const tp of list) {
          topics.set(tp.topic, [...(topics.get(tp.topic) ?? []), tp.partition]);
        }
        const res = await conn.send(
          { request: WRITE_TXN_MARKERS_REQUEST, response: WRITE_TXN_MARKERS_RESPONSE },
          1,
          {
            markers: [{
              producerId: m.producerId,
              producerEpoch: m.producerEpoch,
              transactionResult: m.commit,
              coordinatorEpoch: m.decision,
              topics: [...topics].map(([name, partitionIndexes]) => ({ name, partitionIndexes })),
            }],
          },
        );
        for (const t of res?.markers[0]?.topics ?? []) {
          for (const p of t.partitions) {
            if (p.errorCode !== ERROR_CODES.NONE) {
              failed.push([{ topic: t.name, partition: p.partitionIndex }, p.errorCode]);
            }
          }
        }
      } catch (err) {
        broker.logger.warn("WriteTxnMarkers to another broker failed; retried", {
          brokerId,
          err: err instanceof Error ? err.message : String(err),
        });
        for (const tp of list) failed.push([tp, ERROR_CODES.NETWORK_EXCEPTION]);
      } finally {
        clearTimeout(timer);
        conn?.close();
      }
    }
    return failed;
  }
}
