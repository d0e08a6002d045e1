/**
 * ApiVersions (18), versions 0-4. The advertised ranges are derived from the
 * handler table, so they cannot disagree with the code. A request at a
 * version we do not serve is answered by the dispatcher with
 * UNSUPPORTED_VERSION in a v0 body (KIP-511).
 */
import type { Writer } from "../protocol/primitives.ts";
import {
  API_VERSIONS_REQUEST,
  type ApiVersionsRequest,
} from "../protocol/generated/api_versions_request.ts";
import {
  API_VERSIONS_RESPONSE,
  type ApiVersion,
  type ApiVersionsResponse,
} from "../protocol/generated/api_versions_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { type ApiHandler, defineHandler } from "./handler.ts";

export function advertisedApis(handlers: ReadonlyMap<number, ApiHandler>): ApiVersion[] {
  return [...handlers.values()]
    .sort((a, b) => a.apiKey - b.apiKey)
    .map((h) => ({ apiKey: h.apiKey, minVersion: h.minVersion, maxVersion: h.maxVersion }));
}

/** The v0 error body sent when the client's ApiVersions version is unknown to us. */
export function apiVersionsResponseV0Error(
  w: Writer,
  errorCode: number,
  handlers: ReadonlyMap<number, ApiHandler>,
): void {
  API_VERSIONS_RESPONSE.write(w, { errorCode, apiKeys: advertisedApis(handlers) }, 0);
}

/** Built lazily by the handler table to avoid an import cycle. */
export function apiVersionsHandler(
  handlers: () => ReadonlyMap<number, ApiHandler>,
): ApiHandler<ApiVersionsRequest, ApiVersionsResponse> {
  let cached: ApiVersion[] | null = null;
  return defineHandler({
    apiKey: 18,
    name: "ApiVersions",
    minVersion: 0,
    maxVersion: 4,
    request: API_VERSIONS_REQUEST,
    response: API_VERSIONS_RESPONSE,
    handle() {
      cached ??= advertisedApis(handlers());
      return {
        errorCode: ERROR_CODES.NONE,
        apiKeys: cached,
        throttleTimeMs: 0,
        supportedFeatures: [],
        finalizedFeaturesEpoch: -1,
        finalizedFeatures: [],
      };
    },
  });
}
