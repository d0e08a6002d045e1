/**
 * Error codes of the transactional APIs as each version may carry them: PRODUCER_FENCED (90)
 * exists from AddPartitionsToTxn/AddOffsetsToTxn/EndTxn v2 and InitProducerId v4; older
 * versions say INVALID_PRODUCER_EPOCH, as Kafka answers them.
 */
import { ERROR_CODES } from "../protocol/error_codes.ts";

export function forVersion(code: number, apiVersion: number, fencedFrom: number): number {
  if (code === ERROR_CODES.PRODUCER_FENCED && apiVersion < fencedFrom) {
    return ERROR_CODES.INVALID_PRODUCER_EPOCH;
  }
  return code;
}
