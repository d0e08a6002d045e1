/**
 * CreateTopics (19), versions 0-7: partitions, configs and validate-only.
 * Replication factor 1 or -1 is accepted; durability belongs to the object
 * store, so there are no replicas to place. A manual replica assignment is
 * accepted by Kafka's rules (partition count and replication factor -1, the
 * partitions 0..n-1, registered brokers only, none twice) and only sets the
 * partition count; see replica_assignment.ts for what it means here.
 */
import {
  CREATE_TOPICS_REQUEST,
  type CreateTopicsRequest,
} from "../protocol/generated/create_topics_request.ts";
import {
  type CreatableTopicResult,
  CREATE_TOPICS_RESPONSE,
  type CreateTopicsResponse,
} from "../protocol/generated/create_topics_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { ZERO_UUID } from "../protocol/primitives.ts";
import { reportedTopicConfigs } from "./topic_config.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { errorCodeFor } from "./errors.ts";
import { registeredBrokerIds, topicAssignmentProblem } from "./replica_assignment.ts";

export const CREATE_TOPICS_HANDLER = defineHandler<CreateTopicsRequest, CreateTopicsResponse>({
  apiKey: 19,
  name: "CreateTopics",
  minVersion: 0,
  maxVersion: 7,
  request: CREATE_TOPICS_REQUEST,
  response: CREATE_TOPICS_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const seen = new Set<string>();
    const topics: CreatableTopicResult[] = [];
    for (const t of req.topics) {
      const result: CreatableTopicResult = {
        name: t.name,
        topicId: ZERO_UUID,
        errorCode: ERROR_CODES.NONE,
        errorMessage: null,
        numPartitions: -1,
        replicationFactor: -1,
        configs: [],
      };
      topics.push(result);
      const fail = (code: number, message: string) => {
        result.errorCode = code;
        result.errorMessage = message;
      };
      if (seen.has(t.name)) {
        fail(
          ERROR_CODES.INVALID_REQUEST,
          `Topic "${t.name}" appears more than once in the request`,
        );
        continue;
      }
      seen.add(t.name);
      if (
        !can(ctx, OP.CREATE, RT.CLUSTER, "kafka-cluster") && !can(ctx, OP.CREATE, RT.TOPIC, t.name)
      ) {
        fail(ERROR_CODES.TOPIC_AUTHORIZATION_FAILED, `Not authorized to create topic "${t.name}"`);
        continue;
      }
      const manual = t.assignments.length > 0;
      if (manual && (t.numPartitions !== -1 || t.replicationFactor !== -1)) {
        fail(
          ERROR_CODES.INVALID_REQUEST,
          "A manual partition assignment was specified, but numPartitions or replication " +
            "factor was not set to -1",
        );
        continue;
      }
      if (t.replicationFactor !== 1 && t.replicationFactor !== -1) {
        fail(
          ERROR_CODES.INVALID_REPLICATION_FACTOR,
          `Replication factor must be 1 or -1 (the object store provides durability), got ${t.replicationFactor}`,
        );
        continue;
      }
      const configs: Record<string, string> = {};
      for (const c of t.configs) if (c.value !== null) configs[c.name] = c.value;
      try {
        if (manual) {
          const problem = topicAssignmentProblem(t.assignments, await registeredBrokerIds(broker));
          if (problem) {
            fail(ERROR_CODES.INVALID_REPLICA_ASSIGNMENT, problem);
            continue;
          }
        }
        const created = await broker.createTopic(
          t.name,
          manual ? t.assignments.length : t.numPartitions,
          configs,
          req.validateOnly === true,
        );
        if (created.errorCode !== ERROR_CODES.NONE || !created.topic) {
          fail(created.errorCode, created.errorMessage ?? "");
          continue;
        }
        result.topicId = req.validateOnly ? ZERO_UUID : created.topic.topicId;
        result.numPartitions = created.topic.partitions;
        result.replicationFactor = 1;
        result.configs = reportedTopicConfigs(configs).map((spec) => ({
          name: spec.name,
          value: broker.topicConfig(created.topic!, spec.name),
          readOnly: false,
          // DYNAMIC_TOPIC_CONFIG (1) when set on the topic, else DEFAULT_CONFIG (5).
          configSource: spec.name in configs ? 1 : 5,
          isSensitive: false,
        }));
      } catch (err) {
        fail(errorCodeFor(err, broker.logger, "CreateTopics"), "Metadata store unavailable");
      }
    }
    return { throttleTimeMs: 0, topics };
  },
});
