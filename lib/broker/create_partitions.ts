/**
 * CreatePartitions (37), versions 0-3: grows topics (never shrinks them),
 * with validate-only. A manual assignment (one per new partition) is checked
 * by Kafka's rules against the registered brokers and not recorded: see
 * replica_assignment.ts for what it means here.
 */
import {
  CREATE_PARTITIONS_REQUEST,
  type CreatePartitionsRequest,
  type CreatePartitionsTopic,
} from "../protocol/generated/create_partitions_request.ts";
import {
  CREATE_PARTITIONS_RESPONSE,
  type CreatePartitionsResponse,
  type CreatePartitionsTopicResult,
} from "../protocol/generated/create_partitions_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import type { Broker } from "./broker.ts";
import { errorCodeFor } from "./errors.ts";
import { registeredBrokerIds, replicaListProblem } from "./replica_assignment.ts";

async function assignmentProblem(t: CreatePartitionsTopic, broker: Broker): Promise<string | null> {
  if (t.assignments === null) return null;
  const registered = await registeredBrokerIds(broker);
  for (const a of t.assignments) {
    const problem = replicaListProblem(a.brokerIds, registered);
    if (problem) return problem;
  }
  return null;
}

export const CREATE_PARTITIONS_HANDLER = defineHandler<
  CreatePartitionsRequest,
  CreatePartitionsResponse
>({
  apiKey: 37,
  name: "CreatePartitions",
  minVersion: 0,
  maxVersion: 3,
  request: CREATE_PARTITIONS_REQUEST,
  response: CREATE_PARTITIONS_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const counts = new Map<string, number>();
    for (const t of req.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
    const results: CreatePartitionsTopicResult[] = [];
    for (const t of req.topics) {
      const result: CreatePartitionsTopicResult = {
        name: t.name,
        errorCode: ERROR_CODES.NONE,
        errorMessage: null,
      };
      results.push(result);
      if (counts.get(t.name)! > 1) {
        result.errorCode = ERROR_CODES.INVALID_REQUEST;
        result.errorMessage = `Topic "${t.name}" appears more than once in the request`;
        continue;
      }
      if (!can(ctx, OP.ALTER, RT.TOPIC, t.name)) {
        result.errorCode = ERROR_CODES.TOPIC_AUTHORIZATION_FAILED;
        result.errorMessage = `Not authorized to alter topic "${t.name}"`;
        continue;
      }
      try {
        const problem = await assignmentProblem(t, broker);
        if (problem) {
          result.errorCode = ERROR_CODES.INVALID_REPLICA_ASSIGNMENT;
          result.errorMessage = problem;
          continue;
        }
        const topic = await broker.topic(t.name);
        if (
          topic && t.assignments !== null && t.assignments.length !== t.count - topic.partitions
        ) {
          result.errorCode = ERROR_CODES.INVALID_REPLICA_ASSIGNMENT;
          result.errorMessage = `Expected ${t.count - topic.partitions} replica assignments, ` +
            `got ${t.assignments.length}`;
          continue;
        }
        const outcome = await broker.createPartitions(t.name, t.count, req.validateOnly);
        result.errorCode = outcome.errorCode;
        result.errorMessage = outcome.errorMessage;
      } catch (err) {
        result.errorCode = errorCodeFor(err, broker.logger, "CreatePartitions");
        result.errorMessage = "Metadata store unavailable; retry";
      }
    }
    return { throttleTimeMs: 0, results };
  },
});
