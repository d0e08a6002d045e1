/**
 * Metadata (3), versions 0-12: brokers, cluster id, controller, topics and
 * partitions. Unknown topics are auto-created when the request allows it
 * (v4+ flag; always allowed before v4) and the broker setting does. Topics
 * can be named by id from v10. Each partition's leader is its live owner,
 * or for an unowned one a registered broker picked by hash
 * (partition_leaders.ts); with one broker, that is always this one.
 * Durability comes from the object store, so the replica and ISR lists hold
 * just the leader.
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
import { partitionLeaders } from "./partition_leaders.ts";

/** Kafka's "authorized operations not requested" marker. */
const OPERATIONS_NOT_REQUESTED = -2147483648;
/**
 * Without ACLs every operation is allowed: READ(3) WRITE(4) CREATE(5)
 * DELETE(6) ALTER(7) DESCRIBE(8) DESCRIBE_CONFIGS(10) ALTER_CONFIGS(11).
 */
const ALL_TOPIC_OPERATIONS = [3, 4, 5, 6, 7, 8, 10, 11].reduce((acc, op) => acc | (1 << op), 0);

/**
 * A topic's metadata; `leaderOf` names each partition's leader (-1: the
 * owner is alive but unreachable, reported as LEADER_NOT_AVAILABLE).
 */
export function topicMetadata(
  topic: TopicRecord,
  includeOperations: boolean,
  leaderOf: (partition: number) => number,
): MetadataResponseTopic {
  const partitions = [];
  for (let i = 0; i < topic.partitions; i++) {
    const leaderId = leaderOf(i);
    const replicas = leaderId < 0 ? [] : [leaderId];
    partitions.push({
      errorCode: leaderId < 0 ? ERROR_CODES.LEADER_NOT_AVAILABLE : ERROR_CODES.NONE,
      partitionIndex: i,
      leaderId,
      leaderEpoch: 0,
      replicaNodes: replicas,
      isrNodes: replicas,
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
    type Found = { topic: TopicRecord } | { error: MetadataResponseTopic };
    let found: Found[];
    if (all) {
      try {
        found = (await broker.listTopics()).map((topic) => ({ topic }));
      } catch (err) {
        broker.logger.warn("Metadata: listing topics failed", { err: String(err) });
        found = [];
      }
    } else {
      found = await Promise.all(req.topics!.map(async (t): Promise<Found> => {
        try {
          if (t.name === null || t.name === undefined) {
            const id = t.topicId ?? ZERO_UUID;
            const topic = await broker.topicById(id);
            return topic
              ? { topic }
              : { error: errorTopic(null, id, ERROR_CODES.UNKNOWN_TOPIC_ID) };
          }
          const result = await broker.ensureTopic(t.name, allowAutoCreate);
          return "topic" in result
            ? { topic: result.topic }
            : { error: errorTopic(t.name, ZERO_UUID, result.errorCode) };
        } catch (err) {
          broker.logger.warn("Metadata: topic lookup failed", { topic: t.name, err: String(err) });
          return {
            error: errorTopic(
              t.name ?? null,
              t.topicId ?? ZERO_UUID,
              ERROR_CODES.LEADER_NOT_AVAILABLE,
            ),
          };
        }
      }));
    }
    const leaders = await partitionLeaders(
      broker,
      found.flatMap((f) => "topic" in f ? [f.topic] : []),
    );
    const topics = found.map((f) =>
      "topic" in f
        ? topicMetadata(f.topic, includeOps, (p) => leaders.leaderOf(f.topic.name, p))
        : f.error
    );
    return {
      throttleTimeMs: 0,
      brokers: leaders.brokers,
      clusterId: broker.clusterId,
      controllerId: broker.settings.nodeId,
      topics,
      clusterAuthorizedOperations: OPERATIONS_NOT_REQUESTED,
    };
  },
});
