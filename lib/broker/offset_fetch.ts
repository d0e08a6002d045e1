/**
 * OffsetFetch (9), versions 0-10: one group before v8, several from v8
 * (KIP-709); v10 names topics by id (an id this broker does not know answers
 * UNKNOWN_TOPIC_ID for each of its partitions). Partitions without a committed offset answer offset -1 and
 * metadata "" with no error; a null topic list (v2+) means every committed
 * partition of the group. With requireStable (v7+, KIP-447) a partition with offsets waiting in
 * an ongoing transaction (TxnOffsetCommit) answers UNSTABLE_OFFSET_COMMIT, which clients retry.
 */
import {
  OFFSET_FETCH_REQUEST,
  type OffsetFetchRequest,
} from "../protocol/generated/offset_fetch_request.ts";
import {
  OFFSET_FETCH_RESPONSE,
  type OffsetFetchResponse,
} from "../protocol/generated/offset_fetch_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import type { OffsetCommitEntry } from "../metadata/cluster_metadata.ts";
import { defineHandler, type RequestContext } from "./handler.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";

interface RequestedTopic {
  name: string;
  partitionIndexes: number[];
}

/** A partition's answer in both shapes (v0-7 and v8+). */
interface PartitionOffset {
  partitionIndex: number;
  committedOffset: number;
  committedLeaderEpoch: number;
  metadata: string | null;
  errorCode: number;
}

interface GroupOffsets {
  errorCode: number;
  topics: { name: string; partitions: PartitionOffset[] }[];
}

function partitionOffset(
  partitionIndex: number,
  committed: OffsetCommitEntry | undefined,
  errorCode: number = ERROR_CODES.NONE,
): PartitionOffset {
  return {
    partitionIndex,
    committedOffset: committed?.offset ?? -1,
    committedLeaderEpoch: committed?.leaderEpoch ?? -1,
    // Kafka answers "" for no metadata, whether none was committed or null was.
    metadata: committed?.metadata ?? "",
    errorCode,
  };
}

async function fetchGroup(
  ctx: RequestContext,
  groupId: string,
  requested: RequestedTopic[] | null,
  requireStable: boolean,
): Promise<GroupOffsets> {
  const broker = ctx.broker;
  const result = can(ctx, OP.DESCRIBE, RT.GROUP, groupId)
    ? await broker.coordinator.fetchOffsets(groupId)
    : { errorCode: ERROR_CODES.GROUP_AUTHORIZATION_FAILED as number, offsets: [] };
  // Offsets of topics the principal may not describe are left out.
  result.offsets = result.offsets.filter((o) => can(ctx, OP.DESCRIBE, RT.TOPIC, o.topic));
  const unstable = new Set<string>();
  if (requireStable && result.errorCode === ERROR_CODES.NONE) {
    try {
      for (const list of (await broker.metadata.listTxnOffsets(groupId)).values()) {
        for (const o of list) unstable.add(`${o.topic}\u0000${o.partition}`);
      }
    } catch {
      result.errorCode = ERROR_CODES.COORDINATOR_NOT_AVAILABLE;
    }
  }
  if (result.errorCode !== ERROR_CODES.NONE) {
    // Per partition too, for v0-1 which have no group-level error code.
    return {
      errorCode: result.errorCode,
      topics: (requested ?? []).map((t) => ({
        name: t.name,
        partitions: t.partitionIndexes.map((p) => partitionOffset(p, undefined, result.errorCode)),
      })),
    };
  }
  const byTopic = new Map<string, Map<number, OffsetCommitEntry>>();
  for (const o of result.offsets) {
    let m = byTopic.get(o.topic);
    if (!m) byTopic.set(o.topic, m = new Map());
    m.set(o.partition, o);
  }
  const topics = requested
    ? requested.map((t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((p) =>
        unstable.has(`${t.name}\u0000${p}`)
          ? partitionOffset(p, undefined, ERROR_CODES.UNSTABLE_OFFSET_COMMIT)
          : partitionOffset(p, byTopic.get(t.name)?.get(p))
      ),
    }))
    : [...byTopic].map(([name, partitions]) => ({
      name,
      partitions: [...partitions.values()].map((o) => partitionOffset(o.partition, o)),
    }));
  return { errorCode: ERROR_CODES.NONE, topics };
}

export const OFFSET_FETCH_HANDLER = defineHandler<OffsetFetchRequest, OffsetFetchResponse>({
  apiKey: 9,
  name: "OffsetFetch",
  minVersion: 0,
  maxVersion: 10,
  request: OFFSET_FETCH_REQUEST,
  response: OFFSET_FETCH_RESPONSE,
  async handle(req, ctx) {
    const v = ctx.apiVersion;
    if (v >= 8) {
      const groups = await Promise.all((req.groups ?? []).map(async (g) => {
        if (v >= 10) return await fetchGroupByIds(ctx, g.groupId, g.topics ?? null, req);
        const topics = g.topics?.map((t) => ({ ...t, name: t.name ?? "" })) ?? null;
        const r = await fetchGroup(ctx, g.groupId, topics, req.requireStable ?? false);
        return {
          groupId: g.groupId,
          errorCode: r.errorCode,
          topics: r.errorCode === ERROR_CODES.NONE ? r.topics : [],
        };
      }));
      return { throttleTimeMs: 0, groups };
    }
    const requested = v >= 2 ? req.topics ?? null : req.topics ?? [];
    const r = await fetchGroup(
      ctx,
      req.groupId ?? "",
      requested,
      v >= 7 && (req.requireStable ?? false),
    );
    return {
      throttleTimeMs: 0,
      errorCode: r.errorCode,
      // v2+ report a group error once, at the top (as Kafka's getErrorResponse).
      topics: v >= 2 && r.errorCode !== ERROR_CODES.NONE ? [] : r.topics,
    };
  },
});

/** v10: topics named by id in the request and the answer. */
async function fetchGroupByIds(
  ctx: RequestContext,
  groupId: string,
  requested: { topicId?: string; partitionIndexes: number[] }[] | null,
  req: OffsetFetchRequest,
) {
  const broker = ctx.broker;
  const known: RequestedTopic[] = [];
  const unknown: { topicId: string; partitionIndexes: number[] }[] = [];
  const ids = new Map<string, string>();
  for (const t of requested ?? []) {
    const topic = await broker.topicById(t.topicId ?? "").catch(() => null);
    if (topic) {
      ids.set(topic.name, topic.topicId);
      known.push({ name: topic.name, partitionIndexes: t.partitionIndexes });
    } else unknown.push({ topicId: t.topicId ?? "", partitionIndexes: t.partitionIndexes });
  }
  const r = await fetchGroup(ctx, groupId, requested ? known : null, req.requireStable ?? false);
  if (r.errorCode !== ERROR_CODES.NONE) return { groupId, errorCode: r.errorCode, topics: [] };
  const topics = [];
  for (const t of r.topics) {
    // A committed offset of a topic deleted since has no id to name it by: it is left out.
    const topicId = ids.get(t.name) ?? (await broker.topic(t.name).catch(() => null))?.topicId;
    if (topicId) topics.push({ ...t, topicId });
  }
  for (const t of unknown) {
    topics.push({
      name: "",
      topicId: t.topicId,
      partitions: t.partitionIndexes.map((p) =>
        partitionOffset(p, undefined, ERROR_CODES.UNKNOWN_TOPIC_ID)
      ),
    });
  }
  return { groupId, errorCode: ERROR_CODES.NONE, topics };
}
