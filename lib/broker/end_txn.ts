/**
 * EndTxn (26), versions 0-5: commits or aborts the producer's transaction. Answered once the
 * decision is stored; the markers are written before the answer when the partitions can be
 * reached, else by the coordinator's retries (the next AddPartitionsToTxn waits for them with
 * CONCURRENT_TRANSACTIONS). v5 is transactions V2 (KIP-890 part 2): every transaction ends with
 * a new epoch, which the markers carry and the answer gives to the producer.
 */
import { END_TXN_REQUEST, type EndTxnRequest } from "../protocol/generated/end_txn_request.ts";
import { END_TXN_RESPONSE, type EndTxnResponse } from "../protocol/generated/end_txn_response.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { defineHandler } from "./handler.ts";
import { forVersion } from "./txn_errors.ts";

export const END_TXN_HANDLER = defineHandler<EndTxnRequest, EndTxnResponse>({
  apiKey: 26,
  name: "EndTxn",
  minVersion: 0,
  maxVersion: 5,
  request: END_TXN_REQUEST,
  response: END_TXN_RESPONSE,
  async handle(req, ctx) {
    const v = ctx.apiVersion;
    const r = !can(ctx, OP.WRITE, RT.TRANSACTIONAL_ID, req.transactionalId)
      ? {
        errorCode: ERROR_CODES.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        producerId: -1,
        producerEpoch: -1,
      }
      : await ctx.broker.transactions.endTransaction(req, req.committed, v >= 5);
    return {
      throttleTimeMs: 0,
      errorCode: forVersion(r.errorCode, v, 2),
      producerId: r.producerId,
      producerEpoch: r.producerEpoch,
    };
  },
});
