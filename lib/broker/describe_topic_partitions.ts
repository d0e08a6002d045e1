/**
 * DescribeTopicPartitions (75), version 0 (KIP-966), which Kafka 4.x's `kafka-topics.sh
 * --describe` prefers to Metadata: the named topics (all when none is named), sorted by name,
 * with their partitions (leader as in Metadata, replicas and ISR just the leader, no eligible
 * leader replicas), paged: at most `responsePartitionLimit` partitions (and at most
 * `PARTITIONS_PER_RESPONSE_MAX`) per answer, the rest named by `nextCursor`, from which the
 * next request continues. Unknown topics answer UNKNOWN_TOPIC_OR_PARTITION; a cursor naming a
 * topic that is not asked for answers INVALID_REQUEST, as Kafka does.
 */
import {
  DESCRIBE_TOPIC_PARTITIONS_REQUEST,
  type DescribeTopicPartitionsRequest,
} from "../protocol/generated/describe_topic_partitions_request.ts";
import {
  DESCRIBE_TOPIC_PARTITIONS_RESPONSE,
  type DescribeTopicPartitionsResponse,
  type DescribeTopicPartitionsResponseTopic,
} from "../protocol/generated/describe_topic_partitions_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { ZERO_UUID } from "../protocol/primitives.ts";
import type { TopicRecord } from "../metadata/cluster_metadata.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { partitionLeaders } from "./partition_leaders.ts";
import { authorizedOperations, TOPIC_OPERATIONS } from "./authorized_operations.ts";

/** Kafka's max.request.partition.size.limit default. */
export const PARTITIONS_PER_RESPONSE_MAX = 2_000;

export const DESCRIBE_TOPIC_PARTITIONS_HANDLER = defineHandler<
  DescribeTopicPartitionsRequest,
  DescribeTopicPartitionsResponse
>({
  apiKey: 75,
  name: "DescribeTopicPartitions",
  minVersion: 0,
  maxVersion: 0,
  request: DESCRIBE_TOPIC_PARTITIONS_REQUEST,
  response: DESCRIBE_TOPIC_PARTITIONS_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const limit = Math.max(1, Math.min(req.responsePartitionLimit, PARTITIONS_PER_RESPONSE_MAX));
    const cursor = req.cursor;
    let names: string[];
    const known = new Map<string, TopicRecord>();
    if (req.topics.length === 0) {
      // Every topic the principal may describe (Kafka's authorizer leaves the others out).
      for (const t of await broker.listTopics()) {
        if (can(ctx, OP.DESCRIBE, RT.TOPIC, t.name)) known.set(t.name, t);
      }
      names = [...known.keys()];
    } else {
      names = [...new Set(req.topics.map((t) => t.name))];
      await Promise.all(names.map(async (name) => {
        const topic = await broker.topic(name);
        if (topic) known.set(name, topic);
      }));
      if (cursor && !names.includes(cursor.topicName)) {
        // Kafka's error answer: every requested topic with the error, no cursor.
        return {
          throttleTimeMs: 0,
          topics: names.map((name) => ({
            errorCode: ERROR_CODES.INVALID_REQUEST,
            name,
            topicId: ZERO_UUID,
            isInternal: false,
            partitions: [],
            topicAuthorizedOperations: authorizedOperations(false, TOPIC_OPERATIONS),
          })),
          nextCursor: null,
        };
      }
    }
    names.sort();
    if (cursor) names = names.filter((n) => n >= cursor.topicName);
    const leaders = await partitionLeaders(
      broker,
      names.flatMap((n) => known.get(n) ?? []),
      ctx.security.listener,
    );
    const topics: DescribeTopicPartitionsResponseTopic[] = [];
    let left = limit;
    let nextCursor: DescribeTopicPartitionsResponse["nextCursor"] = null;
    for (const name of names) {
      const topic = known.get(name);
      if (topic && !can(ctx, OP.DESCRIBE, RT.TOPIC, name)) {
        topics.push({
          errorCode: ERROR_CODES.TOPIC_AUTHORIZATION_FAILED,
          name,
          topicId: ZERO_UUID,
          isInternal: false,
          partitions: [],
          topicAuthorizedOperations: authorizedOperations(false, TOPIC_OPERATIONS),
        });
        continue;
      }
      if (!topic) {
        topics.push({
          errorCode: ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION,
          name,
          topicId: ZERO_UUID,
          isInternal: false,
          partitions: [],
          topicAuthorizedOperations: authorizedOperations(false, TOPIC_OPERATIONS),
        });
        continue;
      }
      if (left === 0) {
        nextCursor = { topicName: name, partitionIndex: 0 };
        break;
      }
      const first = cursor && cursor.topicName === name ? Math.max(0, cursor.partitionIndex) : 0;
      const partitions = [];
      let p = first;
      for (; p < topic.partitions && left > 0; p++, left--) {
        const leaderId = leaders.leaderOf(name, p);
        const replicas = leaderId < 0 ? [] : [leaderId];
        partitions.push({
          errorCode: leaderId < 0 ? ERROR_CODES.LEADER_NOT_AVAILABLE : ERROR_CODES.NONE,
          partitionIndex: p,
          leaderId,
          leaderEpoch: leaderId < 0 ? -1 : leaders.epochOf(name, p),
          replicaNodes: replicas,
          isrNodes: replicas,
          eligibleLeaderReplicas: [],
          lastKnownElr: [],
          offlineReplicas: [],
        });
      }
      topics.push({
        errorCode: ERROR_CODES.NONE,
        name,
        topicId: topic.topicId,
        isInternal: false,
        partitions,
        topicAuthorizedOperations: authorizedOperations(true, TOPIC_OPERATIONS),
      });
      if (p < topic.partitions) {
        nextCursor = { topicName: name, partitionIndex: p };
        break;
      }
    }
    return { throttleTimeMs: 0, topics, nextCursor };
  },
});
