/**
 * SaslHandshake (17), versions 0-1: the client names a SASL mechanism. On SASL_PLAINTEXT and
 * SASL_SSL listeners an enabled mechanism starts the exchange that SaslAuthenticate (36) runs;
 * otherwise UNSUPPORTED_SASL_MECHANISM (33) with the enabled mechanisms (none on listeners
 * without SASL), as Kafka answers. Also the start of a re-authentication (KIP-368) on an
 * authenticated connection. After a v0 handshake Kafka clients send raw SASL tokens instead of
 * SaslAuthenticate requests; that older framing is not served (every client of the matrix uses
 * v1).
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
import type { SaslMechanism } from "../security/scram.ts";
import { defineHandler } from "./handler.ts";
import { enabledMechanisms, type SaslState } from "./sasl_state.ts";

export const SASL_HANDSHAKE_HANDLER = defineHandler<SaslHandshakeRequest, SaslHandshakeResponse>({
  apiKey: 17,
  name: "SaslHandshake",
  minVersion: 0,
  maxVersion: 1,
  request: SASL_HANDSHAKE_REQUEST,
  response: SASL_HANDSHAKE_RESPONSE,
  handle(req, ctx) {
    const sasl = ctx.security.protocol === "SASL_PLAINTEXT" || ctx.security.protocol === "SASL_SSL";
    const mechanisms = sasl ? enabledMechanisms(ctx.broker) : [];
    if (!mechanisms.includes(req.mechanism as SaslMechanism)) {
      ctx.broker.logger.info("Refused SASL handshake: mechanism not enabled on this listener", {
        mechanism: req.mechanism,
        listener: ctx.security.listener,
        client: ctx.clientAddress,
      });
      return { errorCode: ERROR_CODES.UNSUPPORTED_SASL_MECHANISM, mechanisms };
    }
    const state: SaslState = {
      mechanism: req.mechanism as SaslMechanism,
      scram: null,
      failed: false,
    };
    ctx.security.sasl = state;
    return { errorCode: ERROR_CODES.NONE, mechanisms };
  },
});
