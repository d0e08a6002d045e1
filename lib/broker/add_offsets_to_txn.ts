/**
 * AddOffsetsToTxn (25), versions 0-4: the producer's transaction will commit offsets of
 * `groupId` (TxnOffsetCommit to the group's coordinator follows).
 */
import {
  ADD_OFFSETS_TO_TXN_REQUEST,
  type AddOffsetsToTxnRequest,
} from "../protocol/generated/add_offsets_to_txn_request.ts";
import {
  ADD_OFFSETS_TO_TXN_RESPONSE,
  type AddOffsetsToTxnResponse,
} from "../protocol/generated/add_offsets_to_txn_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { isValidGroupId } from "../coordinator/group_coordinator.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { forVersion } from "./txn_errors.ts";

export const ADD_OFFSETS_TO_TXN_HANDLER = defineHandler<
  AddOffsetsToTxnRequest,
  AddOffsetsToTxnResponse
>({
  apiKey: 25,
  name: "AddOffsetsToTxn",
  minVersion: 0,
  maxVersion: 4,
  request: ADD_OFFSETS_TO_TXN_REQUEST,
  response: ADD_OFFSETS_TO_TXN_RESPONSE,
  async handle(req, ctx) {
    if (!isValidGroupId(req.groupId)) {
      return { throttleTimeMs: 0, errorCode: ERROR_CODES.INVALID_GROUP_ID };
    }
    const code = !can(ctx, OP.WRITE, RT.TRANSACTIONAL_ID, req.transactionalId)
      ? ERROR_CODES.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
      : !can(ctx, OP.READ, RT.GROUP, req.groupId)
      ? ERROR_CODES.GROUP_AUTHORIZATION_FAILED
      : await ctx.broker.transactions.addToTransaction(req, { groups: [req.groupId] });
    return { throttleTimeMs: 0, errorCode: forVersion(code, ctx.apiVersion, 2) };
  },
});
