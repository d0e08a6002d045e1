/**
 * ListTransactions (66), versions 0-1 (KIP-664, `kafka-transactions.sh list`): every
 * transactional id with its producer id and state, filtered by state, producer id and (v1)
 * how long the transaction has been running. Unknown state names are echoed back.
 */
import {
  LIST_TRANSACTIONS_REQUEST,
  type ListTransactionsRequest,
} from "../protocol/generated/list_transactions_request.ts";
import {
  LIST_TRANSACTIONS_RESPONSE,
  type ListTransactionsResponse,
} from "../protocol/generated/list_transactions_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { TXN_STATES } from "../coordinator/txn_coordinator.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { errorCodeFor } from "./errors.ts";

export const LIST_TRANSACTIONS_HANDLER = defineHandler<
  ListTransactionsRequest,
  ListTransactionsResponse
>({
  apiKey: 66,
  name: "ListTransactions",
  minVersion: 0,
  maxVersion: 1,
  request: LIST_TRANSACTIONS_REQUEST,
  response: LIST_TRANSACTIONS_RESPONSE,
  async handle(req, ctx) {
    const known = new Set<string>(TXN_STATES);
    const unknownStateFilters = req.stateFilters.filter((s) => !known.has(s));
    const states = new Set(req.stateFilters);
    const producers = new Set(req.producerIdFilters);
    const minDuration = ctx.apiVersion >= 1 ? req.durationFilter ?? -1 : -1;
    const now = ctx.broker.clock.now();
    try {
      const all = await ctx.broker.transactions.list();
      const transactionStates = all
        .filter(({ record: r }) =>
          (states.size === 0 || states.has(r.state)) &&
          (producers.size === 0 || producers.has(r.producerId)) &&
          (minDuration < 0 || (r.startMs >= 0 && now - r.startMs > minDuration))
        )
        .filter(({ transactionalId }) =>
          can(ctx, OP.DESCRIBE, RT.TRANSACTIONAL_ID, transactionalId)
        )
        .map(({ transactionalId, record }) => ({
          transactionalId,
          producerId: record.producerId,
          transactionState: record.state,
        }));
      return {
        throttleTimeMs: 0,
        errorCode: ERROR_CODES.NONE,
        unknownStateFilters,
        transactionStates,
      };
    } catch (err) {
      return {
        throttleTimeMs: 0,
        errorCode: errorCodeFor(err, ctx.broker.logger, "ListTransactions"),
        unknownStateFilters,
        transactionStates: [],
      };
    }
  },
});
