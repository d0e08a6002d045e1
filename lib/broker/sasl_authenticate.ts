/**
 * SaslAuthenticate (36), versions 0-2: runs the mechanism SaslHandshake chose. PLAIN takes one
 * message; SCRAM-SHA-256/512 two (client-first, client-final), answered with server-first and
 * server-final. Success makes the connection's principal `User:<name>`; from v1 the answer
 * carries the session lifetime (`--connections-max-reauth-ms`, KIP-368), after which the client
 * must authenticate again before any other request. A failure answers
 * SASL_AUTHENTICATION_FAILED after a delay that grows with the recent failures from the same host,
 * is logged without the secret, and the connection is closed on its next request.
 */
import {
  SASL_AUTHENTICATE_REQUEST,
  type SaslAuthenticateRequest,
} from "../protocol/generated/sasl_authenticate_request.ts";
import {
  SASL_AUTHENTICATE_RESPONSE,
  type SaslAuthenticateResponse,
} from "../protocol/generated/sasl_authenticate_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { parsePlain, SaslError, ScramServer } from "../security/scram.ts";
import { defineHandler, type RequestContext } from "./handler.ts";
import { plainLogin, saslStateOf, scramLookup } from "./sasl_state.ts";

const EMPTY = new Uint8Array(0);

export const SASL_AUTHENTICATE_HANDLER = defineHandler<
  SaslAuthenticateRequest,
  SaslAuthenticateResponse
>({
  apiKey: 36,
  name: "SaslAuthenticate",
  minVersion: 0,
  maxVersion: 2,
  request: SASL_AUTHENTICATE_REQUEST,
  response: SASL_AUTHENTICATE_RESPONSE,
  async handle(req, ctx) {
    const state = saslStateOf(ctx.security);
    if (state === null || state.failed) {
      return {
        errorCode: ERROR_CODES.ILLEGAL_SASL_STATE,
        errorMessage: "SaslAuthenticate before a successful SaslHandshake",
        authBytes: EMPTY,
        sessionLifetimeMs: 0,
      };
    }
    let user: string | null = null;
    let reply: Uint8Array = EMPTY;
    try {
      if (state.mechanism === "PLAIN") {
        const plain = parsePlain(req.authBytes);
        if (!(await plainLogin(ctx.broker, plain.user, plain.password))) {
          return await failed(ctx, state.mechanism, plain.user);
        }
        user = plain.user;
      } else if (state.scram === null) {
        state.scram = new ScramServer(state.mechanism, scramLookup(ctx.broker, state.mechanism));
        reply = await state.scram.first(req.authBytes);
      } else {
        reply = state.scram.final(req.authBytes);
        user = state.scram.user;
      }
    } catch (err) {
      if (!(err instanceof SaslError)) throw err;
      return await failed(ctx, state.mechanism, state.scram?.claimedUser ?? null, err.message);
    }
    if (user === null) {
      return {
        errorCode: ERROR_CODES.NONE,
        errorMessage: null,
        authBytes: reply,
        sessionLifetimeMs: 0,
      };
    }
    const principal = `User:${user}`;
    const security = ctx.security;
    if (
      security.authenticated && security.sessionExpiresAtMs !== null &&
      security.principal !== principal
    ) {
      // KIP-368: a re-authentication may not change who the connection is.
      return await failed(ctx, state.mechanism, user, "re-authentication as another principal");
    }
    const lifetimeMs = ctx.broker.settings.connectionsMaxReauthMs ?? 0;
    security.principal = principal;
    security.authenticated = true;
    security.sasl = null;
    security.sessionExpiresAtMs = lifetimeMs > 0 ? ctx.broker.clock.now() + lifetimeMs : null;
    ctx.broker.metrics.inc("kafscale_sasl_logins_total", "SASL logins", {
      mechanism: state.mechanism,
      outcome: "success",
    });
    return {
      errorCode: ERROR_CODES.NONE,
      errorMessage: null,
      authBytes: reply,
      sessionLifetimeMs: lifetimeMs,
    };
  },
});

async function failed(
  ctx: RequestContext,
  mechanism: string,
  user: string | null,
  reason = "invalid credentials",
): Promise<SaslAuthenticateResponse> {
  const state = saslStateOf(ctx.security);
  if (state) state.failed = true;
  ctx.broker.metrics.inc("kafscale_sasl_logins_total", "SASL logins", {
    mechanism,
    outcome: "failure",
  });
  ctx.broker.logger.warn("SASL authentication failed", {
    client: ctx.clientAddress,
    listener: ctx.security.listener,
    mechanism,
    user: user ?? "(none)",
    reason,
  });
  await ctx.broker.failedLogins.delay(ctx.clientAddress, ctx.broker.clock.now());
  return {
    errorCode: ERROR_CODES.SASL_AUTHENTICATION_FAILED,
    errorMessage: `Authentication failed during authentication due to invalid credentials with ` +
      `SASL mechanism ${mechanism}`,
    authBytes: EMPTY,
    sessionLifetimeMs: 0,
  };
}
