/**
 * TxnOffsetCommit (28), versions 0-5, at the group's coordinator: offsets a transaction
 * commits for a consumer group (KIP-98; KIP-447 adds the member and generation, checked as
 * OffsetCommit checks them). They are kept apart in the metadata store and become the group's
 * committed offsets only when the transaction commits (an abort drops them); until then
 * OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT for those partitions.
 * v5 is transactions V2 (KIP-890 part 2): the group joins the transaction here, without an
 * AddOffsetsToTxn first.
 */
import {
  TXN_OFFSET_COMMIT_REQUEST,
  type TxnOffsetCommitRequest,
} from "../protocol/generated/txn_offset_commit_request.ts";
import {
  TXN_OFFSET_COMMIT_RESPONSE,
  type TxnOffsetCommitResponse,
} from "../protocol/generated/txn_offset_commit_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import type { OffsetCommitEntry } from "../metadata/cluster_metadata.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { errorCodeFor } from "./errors.ts";
import { forVersion } from "./txn_errors.ts";

export const TXN_OFFSET_COMMIT_HANDLER = defineHandler<
  TxnOffsetCommitRequest,
  TxnOffsetCommitResponse
>({
  apiKey: 28,
  name: "TxnOffsetCommit",
  minVersion: 0,
  maxVersion: 5,
  request: TXN_OFFSET_COMMIT_REQUEST,
  response: TXN_OFFSET_COMMIT_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const v = ctx.apiVersion;
    // Topic names are absent only from v6 (topic ids), which is not served.
    const answer = (codeOf: (topic: string, partition: number) => number) => ({
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name ?? "",
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          errorCode: codeOf(t.name ?? "", p.partitionIndex),
        })),
      })),
    });
    const denied = !can(ctx, OP.WRITE, RT.TRANSACTIONAL_ID, req.transactionalId)
      ? ERROR_CODES.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
      : !can(ctx, OP.READ, RT.GROUP, req.groupId)
      ? ERROR_CODES.GROUP_AUTHORIZATION_FAILED
      : null;
    if (denied !== null) return answer(() => denied);
    // A consumer-protocol group (KIP-848) checks the member and its epoch itself.
    let code = await broker.activeConsumerGroup(req.groupId)
      ? broker.consumerGroups.checkCommit(
        req.groupId,
        v >= 3 ? req.memberId ?? "" : "",
        v >= 3 ? req.generationIdOrMemberEpoch ?? -1 : -1,
      )
      : await broker.coordinator.checkCommitter({
        groupId: req.groupId,
        memberId: v >= 3 ? req.memberId ?? "" : "",
        groupInstanceId: v >= 3 ? req.groupInstanceId ?? null : null,
        generationId: v >= 3 ? req.generationIdOrMemberEpoch ?? -1 : -1,
      });
    if (code === ERROR_CODES.NONE && v >= 5) {
      code = await broker.transactions.addToTransaction(req, { groups: [req.groupId] });
    }
    if (code === ERROR_CODES.NONE) {
      code = forVersion(await broker.transactions.checkOffsetCommit(req, req.groupId), v, 2);
    }
    if (code !== ERROR_CODES.NONE) return answer(() => code);
    const unknown = new Set<string>();
    const entries: OffsetCommitEntry[] = [];
    const now = broker.clock.now();
    for (const t of req.topics) {
      const name = t.name ?? "";
      const topic = await broker.topic(name).catch(() => null);
      for (const p of t.partitions) {
        if (!topic || p.partitionIndex < 0 || p.partitionIndex >= topic.partitions) {
          unknown.add(`${name}\u0000${p.partitionIndex}`);
          continue;
        }
        entries.push({
          topic: name,
          partition: p.partitionIndex,
          offset: p.committedOffset,
          leaderEpoch: v >= 2 ? p.committedLeaderEpoch ?? -1 : -1,
          metadata: p.committedMetadata,
          commitTimestampMs: now,
        });
      }
    }
    try {
      if (entries.length > 0) {
        await broker.metadata.putTxnOffsets(req.groupId, req.producerId, entries);
      }
    } catch (err) {
      errorCodeFor(err, broker.logger, "TxnOffsetCommit");
      return answer(() => ERROR_CODES.COORDINATOR_NOT_AVAILABLE);
    }
    return answer((topic, partition) =>
      unknown.has(`${topic}\u0000${partition}`)
        ? ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION
        : ERROR_CODES.NONE
    );
  },
});
