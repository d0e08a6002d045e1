/**
 * DeleteTopics (20), versions 0-6: by name (every version) and by topic id
 * (v6). Deleting a topic removes its segment objects and every group's
 * committed offsets for it; a topic recreated under the same name starts
 * empty with a new topic id. A topic left "deleting" by an interrupted
 * deletion is finished by deleting it again.
 */
import {
  DELETE_TOPICS_REQUEST,
  type DeleteTopicsRequest,
} from "../protocol/generated/delete_topics_request.ts";
import {
  type DeletableTopicResult,
  DELETE_TOPICS_RESPONSE,
  type DeleteTopicsResponse,
} from "../protocol/generated/delete_topics_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { ZERO_UUID } from "../protocol/primitives.ts";
import type { TopicRecord } from "../metadata/cluster_metadata.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { errorCodeFor } from "./errors.ts";
import type { Broker } from "./broker.ts";

/** Topics one request may delete; the rest get INVALID_REQUEST. */
export const DELETE_TOPICS_MAX = 1_000;

interface Target {
  name: string | null;
  topicId: string;
}

async function resolve(broker: Broker, target: Target): Promise<TopicRecord | number> {
  if (target.name !== null && target.topicId !== ZERO_UUID) return ERROR_CODES.INVALID_REQUEST;
  if (target.name !== null) {
    return (await broker.metadata.getTopic(target.name)) ??
      ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
  }
  const byId = (await broker.metadata.listTopics()).find((t) => t.topicId === target.topicId);
  return byId ?? ERROR_CODES.UNKNOWN_TOPIC_ID;
}

const MESSAGES: Record<number, string> = {
  [ERROR_CODES.INVALID_REQUEST]: "Name a topic by name or by id, not both",
  [ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION]: "This server does not host this topic",
  [ERROR_CODES.UNKNOWN_TOPIC_ID]: "No topic has this id",
};

export const DELETE_TOPICS_HANDLER = defineHandler<DeleteTopicsRequest, DeleteTopicsResponse>({
  apiKey: 20,
  name: "DeleteTopics",
  minVersion: 0,
  maxVersion: 6,
  request: DELETE_TOPICS_REQUEST,
  response: DELETE_TOPICS_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const targets: Target[] = ctx.apiVersion >= 6
      ? (req.topics ?? []).map((t) => ({ name: t.name, topicId: t.topicId }))
      : (req.topicNames ?? []).map((name) => ({ name, topicId: ZERO_UUID }));
    const seen = new Set<string>();
    const responses: DeletableTopicResult[] = [];
    for (const [i, target] of targets.entries()) {
      const result: DeletableTopicResult = {
        name: target.name,
        topicId: target.topicId,
        errorCode: ERROR_CODES.NONE,
        errorMessage: null,
      };
      responses.push(result);
      const fail = (code: number, message = MESSAGES[code] ?? null) => {
        result.errorCode = code;
        result.errorMessage = message;
      };
      if (i >= DELETE_TOPICS_MAX) {
        fail(ERROR_CODES.INVALID_REQUEST, `At most ${DELETE_TOPICS_MAX} topics per request`);
        continue;
      }
      try {
        const found = await resolve(broker, target);
        if (typeof found === "number") {
          fail(found);
          continue;
        }
        result.name = found.name;
        result.topicId = found.topicId;
        if (seen.has(found.name)) {
          fail(ERROR_CODES.INVALID_REQUEST, `Topic "${found.name}" appears more than once`);
          continue;
        }
        seen.add(found.name);
        if (!can(ctx, OP.DELETE, RT.TOPIC, found.name)) {
          fail(ERROR_CODES.TOPIC_AUTHORIZATION_FAILED, `Not authorized to delete "${found.name}"`);
          continue;
        }
        await broker.deleteTopic(found.name);
      } catch (err) {
        fail(
          errorCodeFor(err, broker.logger, "DeleteTopics"),
          "Deleting the topic failed; retry to finish it",
        );
      }
    }
    return { throttleTimeMs: 0, responses };
  },
});
