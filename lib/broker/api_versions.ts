/**
 * ApiVersions (18), versions 0-5. The advertised ranges are derived from the
 * handler table, so they cannot disagree with the code. A request at a
 * version we do not serve is answered by the dispatcher with
 * UNSUPPORTED_VERSION in a v0 body (KIP-511).
 *
 * Features (v3+, KIP-584): `transaction.version`, supported 0-2 and finalized at the broker's
 * setting (2 unless `--transaction-version 1`). Kafka 4.x clients use transactions V2 (KIP-890
 * part 2: Produce v12 adds partitions, EndTxn v5 bumps the epoch) only when it is 2.
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
import type { Broker } from "./broker.ts";

/** Kafka's feature flag for the transaction protocol version (KIP-890). */
export const TRANSACTION_VERSION_FEATURE = "transaction.version";

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
    maxVersion: 5,
    request: API_VERSIONS_REQUEST,
    response: API_VERSIONS_RESPONSE,
    handle(req, ctx) {
      cached ??= advertisedApis(handlers());
      const level = ctx.broker.settings.transactionVersion ?? 2;
      return {
        errorCode: wrongNode(req, ctx.broker) ? ERROR_CODES.REBOOTSTRAP_REQUIRED : ERROR_CODES.NONE,
        apiKeys: cached,
        throttleTimeMs: 0,
        supportedFeatures: [{ name: TRANSACTION_VERSION_FEATURE, minVersion: 0, maxVersion: 2 }],
        // Features are set at start and never change while the broker runs.
        finalizedFeaturesEpoch: 1,
        finalizedFeatures: [{
          name: TRANSACTION_VERSION_FEATURE,
          maxVersionLevel: level,
          minVersionLevel: level,
        }],
      };
    },
  });
}

/**
 * v5 (KIP-1242): a client that names the cluster and node it means to reach
 * and got another (an address reused by another cluster or broker) is told
 * REBOOTSTRAP_REQUIRED, so it discards its metadata and bootstraps again.
 */
function wrongNode(req: ApiVersionsRequest, broker: Broker): boolean {
  const clusterId = req.clusterId ?? null;
  const nodeId = req.nodeId ?? -1;
  if (clusterId !== null && broker.clusterId !== "" && clusterId !== broker.clusterId) return true;
  return nodeId >= 0 && nodeId !== broker.settings.nodeId;
}
