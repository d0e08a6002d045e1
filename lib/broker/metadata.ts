/**
 * Metadata (3), versions 0-12: brokers, cluster id, controller, topics and
 * partitions. Unknown topics are auto-created when the request allows it
 * (v4+ flag; always allowed before v4) and the broker setting does. Topics
 * can be named by id from v10. Every partition is led by this broker in
 * single-broker mode; durability comes from the object store, so the
 * replica and ISR lists hold just the leader.
 */
import { METADATA_REQUEST, type MetadataRequest } from "../protocol/generated/metadata_request.ts";
import {
  METADATA_RESPONSE,
  type MetadataResponse,
  type MetadataResponseTopic,
} from "../protocol/generated/metadata_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { ZERO_UUID } from "../protocol/primitives.ts";
import type { TopicRecord } from "../metadata/cluster_metadata.ts";
import { defineHandler } from "./handler.ts";
import type { Broker } from "./broker.ts";

/** Kafka's "authorized operations not requested" marker. */
const OPERATIONS_NOT_REQUESTED = -2147483648;
/**
 * Without ACLs every operation is allowed: READ(3) WRITE(4) CREATE(5)
 * DELETE(6) ALTER(7) DESCRIBE(8) DESCRIBE_CONFIGS(10) ALTER_CONFIGS(11).
 */
const ALL_TOPIC_OPERATIONS = [3, 4, 5, 6, 7, 8, 10, 11].reduce((acc, op) => acc | (1 << op), 0);

export function topicMetadata(
  broker: Broker,
  topic: TopicRecord,
  includeOperations: boolean,
): MetadataResponseTopic {
  const nodeId = broker.settings.nodeId;
  const partitions = [];
  for (let i = 0; i < topic.partitions; i++) {
    partitions.push({
      errorCode: ERROR_CODES.NONE,
      partitionIndex: i,
      leaderId: nodeId,
      leaderEpoch: 0,
      replicaNodes: [nodeId],
      isrNodes: [nodeId],
      offlineReplicas: [],
    });
  }
  return {
    errorCode: ERROR_CODES.NONE,
    name: topic.name,
    topicId: topic.topicId,
    isInternal: false,
    partitions,
    topicAuthorizedOperations: includeOperations ? ALL_TOPIC_OPERATIONS : OPERATIONS_NOT_REQUESTED,
  };
}

function errorTopic(
  name: string | null,
  topicId: string,
  errorCode: number,
): MetadataResponseTopic {
  return {
    errorCode,
    name,
    topicId,
    isInternal: false,
    partitions: [],
    topicAuthorizedOperations: OPERATIONS_NOT_REQUESTED,
  };
}

export const METADATA_HANDLER = defineHandler<MetadataRequest, MetadataResponse>({
  apiKey: 3,
  name: "Metadata",
  minVersion: 0,
  maxVersion: 12,
  request: METADATA_REQUEST,
  response: METADATA_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const includeOps = req.includeTopicAuthorizedOperations === true;
    const allowAutoCreate = ctx.apiVersion < 4 || req.allowAutoTopicCreation !== false;
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    const all = req.topics === null || (ctx.apiVersion === 0 && req.topics.length === 0);
    let topics: MetadataResponseTopic[];
    if (all) {
      try {
        topics = (await broker.listTopics()).map((t) => topicMetadata(broker, t, includeOps));
      } catch (err) {
        broker.logger.warn("Metadata: listing topics failed", { err: String(err) });
        topics = [];
      }
    } else {
      topics = await Promise.all(req.topics!.map(async (t) => {
        try {
          if (t.name === null || t.name === undefined) {
            const id = t.topicId ?? ZERO_UUID;
            const found = await broker.topicById(id);
            return found
              ? topicMetadata(broker, found, includeOps)
              : errorTopic(null, id, ERROR_CODES.UNKNOWN_TOPIC_ID);
          }
          const result = await broker.ensureTopic(t.name, allowAutoCreate);
          return "topic" in result
            ? topicMetadata(broker, result.topic, includeOps)
            : errorTopic(t.name, ZERO_UUID, result.errorCode);
        } catch (err) {
          broker.logger.warn("Metadata: topic lookup failed", { topic: t.name, err: String(err) });
          return errorTopic(
            t.name ?? null,
            t.topicId ?? ZERO_UUID,
            ERROR_CODES.LEADER_NOT_AVAILABLE,
          );
        }
      }));
    }
    return {
      throttleTimeMs: 0,
      brokers: [{
        nodeId: broker.settings.nodeId,
        host: broker.settings.host,
        port: broker.settings.port,
        rack: broker.settings.rack,
      }],
      clusterId: broker.clusterId,
      controllerId: broker.settings.nodeId,
      topics,
      clusterAuthorizedOperations: OPERATIONS_NOT_REQUESTED,
    };
  },
});
