/**
 * DescribeClientQuotas (48), versions 0-1 (KIP-546): the broker enforces no client quotas, so
 * every filter matches nothing. Served because `kafka-configs.sh --describe --entity-type users`
 * asks for quotas next to SCRAM credentials, and fails on a broker that does not answer.
 */
import {
  DESCRIBE_CLIENT_QUOTAS_REQUEST,
  type DescribeClientQuotasRequest,
} from "../protocol/generated/describe_client_quotas_request.ts";
import {
  DESCRIBE_CLIENT_QUOTAS_RESPONSE,
  type DescribeClientQuotasResponse,
} from "../protocol/generated/describe_client_quotas_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { defineHandler } from "./handler.ts";

export const DESCRIBE_CLIENT_QUOTAS_HANDLER = defineHandler<
  DescribeClientQuotasRequest,
  DescribeClientQuotasResponse
>({
  apiKey: 48,
  name: "DescribeClientQuotas",
  minVersion: 0,
  maxVersion: 1,
  request: DESCRIBE_CLIENT_QUOTAS_REQUEST,
  response: DESCRIBE_CLIENT_QUOTAS_RESPONSE,
  handle() {
    return { throttleTimeMs: 0, errorCode: ERROR_CODES.NONE, errorMessage: null, entries: [] };
  },
});
