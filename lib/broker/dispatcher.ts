/**
 * Turns one request frame into response bytes: decodes the header, finds the
 * handler, checks the version, decodes the body, runs the handler and
 * encodes the response with the matching header version.
 *
 * Defined answers for bad input:
 * - unknown or unsupported API key → the connection is closed with a log line
 *   (what Apache Kafka does), since no response schema can be assumed;
 * - ApiVersions with a version we do not serve → UNSUPPORTED_VERSION in a v0
 *   body that lists our ranges (KIP-511), so clients can downgrade;
 * - any other API at an unsupported version, or a body that does not decode →
 *   a logged close.
 */
import type { ConnectionInfo, DispatchResult, FrameDispatcher } from "../server/connection.ts";
import { DecodeError, Reader, Writer } from "../protocol/primitives.ts";
import { requestHeaderVersion, responseHeaderVersion } from "../protocol/headers.ts";
import { REQUEST_HEADER } from "../protocol/generated/request_header.ts";
import { RESPONSE_HEADER } from "../protocol/generated/response_header.ts";
import { API_KEYS } from "../protocol/api_keys.ts";
import { API_SCHEMAS } from "../protocol/generated/apis.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import type { ApiHandler, RequestContext } from "./handler.ts";
import type { Broker } from "./broker.ts";
import { apiVersionsResponseV0Error } from "./api_versions.ts";

export class Dispatcher implements FrameDispatcher {
  readonly #broker: Broker;
  readonly #handlers: ReadonlyMap<number, ApiHandler>;

  constructor(broker: Broker, handlers: ReadonlyMap<number, ApiHandler>) {
    this.#broker = broker;
    this.#handlers = handlers;
  }

  async dispatch(frame: Uint8Array, conn: ConnectionInfo): Promise<DispatchResult> {
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const apiKey = view.getInt16(0);
    const apiVersion = view.getInt16(2);
    const correlationId = view.getInt32(4);
    const metrics = this.#broker.metrics;
    const handler = this.#handlers.get(apiKey);
    if (!handler) {
      const name = (API_SCHEMAS as Record<number, { name: string } | undefined>)[apiKey]?.name ??
        "unknown";
      metrics.inc("kafscale_requests_rejected_total", "Requests refused", { reason: "api" });
      return close(`Unsupported API key ${apiKey} (${name}) version ${apiVersion}`);
    }
    const refused = authenticationRefusal(apiKey, conn, this.#broker.clock.now());
    if (refused !== null) {
      metrics.inc("kafscale_requests_rejected_total", "Requests refused", { reason: "auth" });
      return close(`${refused} (${handler.name} from ${conn.remoteAddress})`);
    }
    if (apiVersion < handler.minVersion || apiVersion > handler.maxVersion) {
      if (apiKey === API_KEYS.ApiVersions) {
        return respond(
          apiKey,
          0,
          correlationId,
          (w) => apiVersionsResponseV0Error(w, ERROR_CODES.UNSUPPORTED_VERSION, this.#handlers),
        );
      }
      metrics.inc("kafscale_requests_rejected_total", "Requests refused", { reason: "version" });
      return close(
        `Unsupported version ${apiVersion} of ${handler.name} (serving ` +
          `${handler.minVersion}-${handler.maxVersion})`,
      );
    }
    let ctx: RequestContext;
    let request: unknown;
    try {
      const r = new Reader(frame);
      const header = REQUEST_HEADER.read(r, requestHeaderVersion(apiKey, apiVersion));
      request = handler.request.read(r, apiVersion);
      ctx = {
        apiKey,
        apiVersion,
        correlationId,
        clientId: header.clientId ?? null,
        clientAddress: conn.remoteAddress,
        connectionId: conn.id,
        broker: this.#broker,
        security: conn.security,
        sequential: (fn) => conn.sequential(fn),
      };
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      metrics.inc("kafscale_requests_rejected_total", "Requests refused", { reason: "malformed" });
      return close(`Malformed ${handler.name} v${apiVersion} request: ${err.message}`);
    }
    metrics.inc("kafscale_requests_total", "Requests handled", { api: handler.name });
    const response = await handler.handle(request, ctx);
    if (response === null) return { kind: "none" };
    return respond(
      apiKey,
      apiVersion,
      correlationId,
      (w) => handler.response.write(w, response, apiVersion),
    );
  }
}

/** Requests a connection may send before it has authenticated (and to re-authenticate). */
const AUTH_APIS = new Set<number>([
  API_KEYS.ApiVersions,
  API_KEYS.SaslHandshake,
  API_KEYS.SaslAuthenticate,
]);

/**
 * Why the connection may not send `apiKey` now, or null: on SASL listeners only ApiVersions and
 * the SASL exchange until authenticated, and again once the session expired (KIP-368); after a
 * failed login, nothing.
 */
function authenticationRefusal(apiKey: number, conn: ConnectionInfo, nowMs: number): string | null {
  const s = conn.security;
  if ((s.sasl as { failed?: boolean } | null)?.failed) return "Request after a failed login";
  if (AUTH_APIS.has(apiKey)) return null;
  if (!s.authenticated) return "Request before authentication";
  if (s.sessionExpiresAtMs !== null && nowMs >= s.sessionExpiresAtMs) {
    return "Request after the SASL session expired (re-authenticate, KIP-368)";
  }
  return null;
}

function close(reason: string): DispatchResult {
  return { kind: "close", reason };
}

function respond(
  apiKey: number,
  apiVersion: number,
  correlationId: number,
  body: (w: Writer) => void,
): DispatchResult {
  const w = new Writer();
  const sizePos = w.reserveInt32();
  RESPONSE_HEADER.write(w, { correlationId }, responseHeaderVersion(apiKey, apiVersion));
  body(w);
  w.patchInt32(sizePos, w.length - 4);
  return { kind: "response", chunks: w.finish() };
}
