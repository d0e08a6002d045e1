/**
 * InitProducerId (22), versions 0-5, for idempotent and transactional producers (KIP-98;
 * epochs per KIP-360, see producer_ids.ts).
 *
 * - No producer id and epoch (-1, -1): a new cluster-wide producer id, epoch 0.
 * - v3+ with the producer's current id and epoch: the same id, epoch + 1
 *   (a new id once the epoch is exhausted).
 * - Only one of the two set: INVALID_REQUEST, as Kafka answers.
 * - A transactional id: the transaction coordinator (lib/coordinator/txn_coordinator.ts)
 *   gives the id's producer id and next epoch, fencing older instances, after aborting or
 *   completing what the previous instance left open; a timeout above
 *   transaction.max.timeout.ms gets INVALID_TRANSACTION_TIMEOUT.
 * - The metadata store failing to reserve ids: COORDINATOR_LOAD_IN_PROGRESS,
 *   the retriable code Kafka answers while its id block is not available.
 *
 * Any broker answers (non-transactional requests go to any node).
 */
import {
  INIT_PRODUCER_ID_REQUEST,
  type InitProducerIdRequest,
} from "../protocol/generated/init_producer_id_request.ts";
import {
  INIT_PRODUCER_ID_RESPONSE,
  type InitProducerIdResponse,
} from "../protocol/generated/init_producer_id_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { MetadataStoreError } from "../metadata/metadata_store.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler, type RequestContext } from "./handler.ts";
import { forVersion } from "./txn_errors.ts";
import { type ProducerIdAndEpoch, ProducerIdsExhaustedError } from "./producer_ids.ts";

/** Kafka's RecordBatch.NO_PRODUCER_ID and NO_PRODUCER_EPOCH. */
const NO_PRODUCER_ID = -1;
const NO_PRODUCER_EPOCH = -1;

function answer(errorCode: number, ids?: ProducerIdAndEpoch): InitProducerIdResponse {
  return {
    throttleTimeMs: 0,
    errorCode,
    producerId: ids?.producerId ?? NO_PRODUCER_ID,
    producerEpoch: ids?.producerEpoch ?? NO_PRODUCER_EPOCH,
  };
}

export const INIT_PRODUCER_ID_HANDLER = defineHandler<
  InitProducerIdRequest,
  InitProducerIdResponse
>({
  apiKey: 22,
  name: "InitProducerId",
  minVersion: 0,
  maxVersion: 5,
  request: INIT_PRODUCER_ID_REQUEST,
  response: INIT_PRODUCER_ID_RESPONSE,
  async handle(req, ctx) {
    const { broker } = ctx;
    const producerId = ctx.apiVersion >= 3 ? req.producerId ?? NO_PRODUCER_ID : NO_PRODUCER_ID;
    const producerEpoch = ctx.apiVersion >= 3
      ? req.producerEpoch ?? NO_PRODUCER_EPOCH
      : NO_PRODUCER_EPOCH;
    const hasId = producerId !== NO_PRODUCER_ID;
    const hasEpoch = producerEpoch !== NO_PRODUCER_EPOCH;
    if (hasId !== hasEpoch || producerId < NO_PRODUCER_ID || producerEpoch < NO_PRODUCER_EPOCH) {
      return answer(ERROR_CODES.INVALID_REQUEST);
    }
    if (req.transactionalId !== null) {
      if (!can(ctx, OP.WRITE, RT.TRANSACTIONAL_ID, req.transactionalId)) {
        return answer(ERROR_CODES.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
      }
      const result = await broker.transactions.initProducerId(
        req.transactionalId,
        req.transactionTimeoutMs,
        hasId ? { producerId, producerEpoch } : null,
      );
      return answer(
        forVersion(result.errorCode, ctx.apiVersion, 4),
        result.errorCode === ERROR_CODES.NONE ? result : undefined,
      );
    }
    if (broker.authorizer.enabled && !mayWriteIdempotently(ctx)) {
      return answer(ERROR_CODES.CLUSTER_AUTHORIZATION_FAILED);
    }
    try {
      const ids = await broker.producerIds.initProducerId(
        hasId ? { producerId, producerEpoch } : null,
      );
      broker.metrics.inc("kafscale_producer_ids_total", "InitProducerId answers", {
        kind: hasId ? "epoch_bump" : "new_id",
      });
      return answer(ERROR_CODES.NONE, ids);
    } catch (err) {
      if (!(err instanceof MetadataStoreError || err instanceof ProducerIdsExhaustedError)) {
        throw err;
      }
      broker.logger.warn("InitProducerId failed: cannot reserve producer ids; clients retry", {
        err: err.message,
      });
      return answer(ERROR_CODES.COORDINATOR_LOAD_IN_PROGRESS);
    }
  },
});

/**
 * An idempotent producer id needs IDEMPOTENT_WRITE on the cluster, or WRITE on some topic (as
 * Kafka 3+ grants it: a principal that may write anywhere may get a producer id).
 */
function mayWriteIdempotently(ctx: RequestContext): boolean {
  if (can(ctx, OP.IDEMPOTENT_WRITE, RT.CLUSTER, "kafka-cluster")) return true;
  const principal = ctx.security.principal;
  return ctx.broker.authorizer.bindings.some((b) =>
    b.resourceType === RT.TOPIC && b.permissionType === 3 &&
    (b.operation === OP.WRITE || b.operation === OP.ALL) &&
    (b.principal === principal || b.principal === "User:*")
  ) || (ctx.broker.settings.superUsers ?? []).includes(principal);
}
