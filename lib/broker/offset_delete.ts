/**
 * OffsetDelete (47), version 0 (KIP-496): deletes a group's committed offsets
 * for some partitions; what `kafka-consumer-groups.sh --delete-offsets` and
 * the Admin API's deleteConsumerGroupOffsets send.
 *
 * As Kafka's KafkaApis: partitions of unknown topics, or beyond a topic's
 * partition count, get UNKNOWN_TOPIC_OR_PARTITION here; the rest go to the
 * group coordinator, which applies the group rules (an Empty group loses any
 * offsets, a consumer group with members only those of topics it is not
 * subscribed to: GROUP_SUBSCRIBED_TO_TOPIC; see
 * GroupCoordinator.deleteOffsets). A group-level error is the top-level code,
 * alongside the unknown partitions.
 */
import {
  OFFSET_DELETE_REQUEST,
  type OffsetDeleteRequest,
} from "../protocol/generated/offset_delete_request.ts";
import {
  OFFSET_DELETE_RESPONSE,
  type OffsetDeleteResponse,
  type OffsetDeleteResponseTopic,
} from "../protocol/generated/offset_delete_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import type { Broker } from "./broker.ts";
import { errorCodeFor } from "./errors.ts";

/** A topic's partition count, 0 when it does not exist, or an error code when the store fails. */
async function partitionCount(broker: Broker, name: string): Promise<{ count: number } | number> {
  try {
    return { count: (await broker.topic(name))?.partitions ?? 0 };
  } catch (err) {
    errorCodeFor(err, broker.logger, "OffsetDelete topic lookup");
    return ERROR_CODES.COORDINATOR_NOT_AVAILABLE;
  }
}

export const OFFSET_DELETE_HANDLER = defineHandler<OffsetDeleteRequest, OffsetDeleteResponse>({
  apiKey: 47,
  name: "OffsetDelete",
  minVersion: 0,
  maxVersion: 0,
  request: OFFSET_DELETE_REQUEST,
  response: OFFSET_DELETE_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const topics: OffsetDeleteResponseTopic[] = [];
    const rejected: OffsetDeleteResponseTopic[] = [];
    const valid: { topic: string; partition: number; out: { errorCode: number } }[] = [];
    // Kafka: DELETE on the group, READ on each topic.
    const groupDenied = !can(ctx, OP.DELETE, RT.GROUP, req.groupId);
    for (const t of req.topics) {
      const known = groupDenied
        ? ERROR_CODES.GROUP_AUTHORIZATION_FAILED
        : !can(ctx, OP.READ, RT.TOPIC, t.name)
        ? ERROR_CODES.TOPIC_AUTHORIZATION_FAILED
        : await partitionCount(broker, t.name);
      const partitions = t.partitions.map((p) => {
        const out = { partitionIndex: p.partitionIndex, errorCode: ERROR_CODES.NONE as number };
        if (typeof known === "number") out.errorCode = known;
        else if (p.partitionIndex < 0 || p.partitionIndex >= known.count) {
          out.errorCode = ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION;
        } else {
          valid.push({ topic: t.name, partition: p.partitionIndex, out });
        }
        return out;
      });
      topics.push({ name: t.name, partitions });
      const bad = partitions.filter((p) => p.errorCode !== ERROR_CODES.NONE);
      if (bad.length > 0) rejected.push({ name: t.name, partitions: bad });
    }
    const result = await broker.coordinator.deleteOffsets(
      req.groupId,
      valid.map(({ topic, partition }) => ({ topic, partition })),
    );
    if (result.errorCode !== ERROR_CODES.NONE) {
      return { errorCode: result.errorCode, throttleTimeMs: 0, topics: rejected };
    }
    result.partitionErrors.forEach((code, i) => valid[i].out.errorCode = code);
    return { errorCode: ERROR_CODES.NONE, throttleTimeMs: 0, topics };
  },
});
