/**
 * Metadata (3), versions 0-13: brokers, cluster id, controller, topics and
 * partitions. Unknown topics are auto-created when the request allows it
 * (v4+ flag; always allowed before v4) and the broker setting does. Topics
 * can be named by id from v10. Each partition's leader is its live owner,
 * or for an unowned one a registered broker picked by hash
 * (partition_leaders.ts); with one broker, that is always this one.
 * Durability comes from the object store, so the replica and ISR lists hold
 * just the leader. A partition's leader epoch is its owner's epoch; an unowned one's is the epoch
 * its next acquisition takes. Topic (v8+) and cluster (v8-10) authorized operations, when asked
 * for, are every operation (no authorizer; authorized_operations.ts).
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
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { partitionLeaders } from "./partition_leaders.ts";
import {
  authorizedOperations,
  CLUSTER_OPERATIONS,
  OPERATIONS_NOT_REQUESTED,
  TOPIC_OPERATIONS,
} from "./authorized_operations.ts";

/**
 * A topic's metadata; `leaderOf` names each partition's leader (-1: the
 * owner is alive but unreachable, reported as LEADER_NOT_AVAILABLE).
 */
export function topicMetadata(
  topic: TopicRecord,
  includeOperations: boolean,
  leaderOf: (partition: number) => number,
  epochOf: (partition: number) => number = () => -1,
): MetadataResponseTopic {
  const partitions = [];
  for (let i = 0; i < topic.partitions; i++) {
    const leaderId = leaderOf(i);
    const replicas = leaderId < 0 ? [] : [leaderId];
    partitions.push({
      errorCode: leaderId < 0 ? ERROR_CODES.LEADER_NOT_AVAILABLE : ERROR_CODES.NONE,
      partitionIndex: i,
      leaderId,
      leaderEpoch: leaderId < 0 ? -1 : epochOf(i),
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
    topicAuthorizedOperations: authorizedOperations(includeOperations, TOPIC_OPERATIONS),
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
  maxVersion: 13,
  request: METADATA_REQUEST,
  response: METADATA_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    // Both flags exist from v8; v11 dropped the cluster one (KIP-700 moved it to DescribeCluster).
    const includeOps = ctx.apiVersion >= 8 && req.includeTopicAuthorizedOperations === true;
    const includeClusterOps = ctx.apiVersion >= 8 && ctx.apiVersion <= 10 &&
      req.includeClusterAuthorizedOperations === true;
    const allowAutoCreate = ctx.apiVersion < 4 || req.allowAutoTopicCreation !== false;
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    const all = req.topics === null || (ctx.apiVersion === 0 && req.topics.length === 0);
    type Found = { topic: TopicRecord } | { error: MetadataResponseTopic };
    let found: Found[];
    if (all) {
      try {
        // Topics the principal may not describe are left out (Kafka's authorizer does this).
        found = (await broker.listTopics())
          .filter((topic) => can(ctx, OP.DESCRIBE, RT.TOPIC, topic.name))
          .map((topic) => ({ topic }));
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
            if (!topic) return { error: errorTopic(null, id, ERROR_CODES.UNKNOWN_TOPIC_ID) };
            return can(ctx, OP.DESCRIBE, RT.TOPIC, topic.name)
              ? { topic }
              : { error: errorTopic(null, id, ERROR_CODES.TOPIC_AUTHORIZATION_FAILED) };
          }
          if (!can(ctx, OP.DESCRIBE, RT.TOPIC, t.name)) {
            return { error: errorTopic(t.name, ZERO_UUID, ERROR_CODES.TOPIC_AUTHORIZATION_FAILED) };
          }
          const mayCreate = can(ctx, OP.CREATE, RT.CLUSTER, "kafka-cluster") ||
            can(ctx, OP.CREATE, RT.TOPIC, t.name);
          const result = await broker.ensureTopic(t.name, allowAutoCreate && mayCreate);
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
      ctx.security.listener,
    );
    const topics = found.map((f) =>
      "topic" in f
        ? topicMetadata(
          f.topic,
          includeOps,
          (p) => leaders.leaderOf(f.topic.name, p),
          (p) => leaders.epochOf(f.topic.name, p),
        )
        : f.error
    );
    return {
      throttleTimeMs: 0,
      // v13's top-level error (KIP-1102) is for REBOOTSTRAP_REQUIRED, which this broker never
      // needs to send: every broker answers for the whole cluster.
      errorCode: ERROR_CODES.NONE,
      brokers: leaders.brokers,
      clusterId: broker.clusterId,
      controllerId: broker.settings.nodeId,
      topics,
      clusterAuthorizedOperations: authorizedOperations(includeClusterOps, CLUSTER_OPERATIONS),
    };
  },
});
