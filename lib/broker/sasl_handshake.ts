/**
 * SaslHandshake (17), versions 0-1. Authentication is off in this release,
 * so every mechanism gets UNSUPPORTED_SASL_MECHANISM (33) with an empty list
 * of enabled mechanisms: a client configured for SASL fails with a clear
 * error instead of hanging. SaslAuthenticate (36) is not advertised.
 */
import {
  SASL_HANDSHAKE_REQUEST,
  type SaslHandshakeRequest,
} from "../protocol/generated/sasl_handshake_request.ts";
import {
  SASL_HANDSHAKE_RESPONSE,
  type SaslHandshakeResponse,
} from "../protocol/generated/sasl_handshake_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { defineHandler } from "./handler.ts";

export const SASL_HANDSHAKE_HANDLER = defineHandler<SaslHandshakeRequest, SaslHandshakeResponse>({
  apiKey: 17,
  name: "SaslHandshake",
  minVersion: 0,
  maxVersion: 1,
  request: SASL_HANDSHAKE_REQUEST,
  response: SASL_HANDSHAKE_RESPONSE,
  handle(req, ctx) {
    ctx.broker.logger.info("Refused SASL handshake: authentication is not enabled", {
      mechanism: req.mechanism,
      client: ctx.clientAddress,
    });
    return { errorCode: ERROR_CODES.UNSUPPORTED_SASL_MECHANISM, mechanisms: [] };
  },
});
