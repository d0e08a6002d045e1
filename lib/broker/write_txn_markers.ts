/**
 * WriteTxnMarkers (27), versions 0-1: a transaction coordinator on another broker asks this
 * one to append COMMIT or ABORT markers to partitions it owns (lib/broker/txn_markers.ts is
 * the sending side). The coordinator epoch is the decision number that keeps a partition from
 * applying one decision twice. Only brokers (and principals allowed CLUSTER_ACTION on the cluster,
 * see super_users.ts) may send it: anyone else could commit or abort other producers'
 * transactions. The others get CLUSTER_AUTHORIZATION_FAILED for every partition.
 */
import {
  WRITE_TXN_MARKERS_REQUEST,
  type WriteTxnMarkersRequest,
} from "../protocol/generated/write_txn_markers_request.ts";
import {
  WRITE_TXN_MARKERS_RESPONSE,
  type WriteTxnMarkersResponse,
} from "../protocol/generated/write_txn_markers_response.ts";
import type { TopicPartitionRef } from "../metadata/cluster_metadata.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { defineHandler } from "./handler.ts";
import { writeLocalMarkers } from "./txn_markers.ts";
import { isSuperUser } from "./super_users.ts";
import { OPERATIONS } from "../security/acl.ts";

export const WRITE_TXN_MARKERS_HANDLER = defineHandler<
  WriteTxnMarkersRequest,
  WriteTxnMarkersResponse
>({
  apiKey: 27,
  name: "WriteTxnMarkers",
  minVersion: 0,
  maxVersion: 1,
  request: WRITE_TXN_MARKERS_REQUEST,
  response: WRITE_TXN_MARKERS_RESPONSE,
  async handle(req, ctx) {
    const allowed = isSuperUser(ctx, OPERATIONS.CLUSTER_ACTION);
    const markers = [];
    for (const m of req.markers) {
      const partitions: TopicPartitionRef[] = m.topics.flatMap((t) =>
        t.partitionIndexes.map((partition) => ({ topic: t.name, partition }))
      );
      const codes = new Map<TopicPartitionRef, number>();
      if (allowed) {
        const written = await writeLocalMarkers(ctx.broker, {
          producerId: m.producerId,
          producerEpoch: m.producerEpoch,
          commit: m.transactionResult,
          decision: m.coordinatorEpoch,
          partitions,
        });
        for (const [tp, code] of written.codes) codes.set(tp, code);
        for (const tp of written.elsewhere) codes.set(tp, ERROR_CODES.NOT_LEADER_OR_FOLLOWER);
      } else {
        for (const tp of partitions) codes.set(tp, ERROR_CODES.CLUSTER_AUTHORIZATION_FAILED);
      }
      let i = 0;
      markers.push({
        producerId: m.producerId,
        topics: m.topics.map((t) => ({
          name: t.name,
          partitions: t.partitionIndexes.map((partitionIndex) => ({
            partitionIndex,
            errorCode: codes.get(partitions[i++]) ?? ERROR_CODES.UNKNOWN_SERVER_ERROR,
          })),
        })),
      });
    }
    return { markers };
  },
});
