/**
 * Request and response headers: which header version goes with an API version, and reading and
 * writing them. Flexible API versions (KIP-482) use request header v2 (tagged fields after the
 * classic fields) and response header v1; everything else uses request header v1 and response
 * header v0, with two exceptions: ApiVersions responses always use header v0 (a client that
 * does not know the broker's versions must be able to read it) and ControlledShutdown v0
 * requests use request header v0 (no client id).
 *
 * Must not do I/O.
 */

import { API_KEYS } from "./api_keys.ts";
import { apiSchema } from "./generated/apis.ts";
import { REQUEST_HEADER, type RequestHeader } from "./generated/request_header.ts";
import { RESPONSE_HEADER, type ResponseHeader } from "./generated/response_header.ts";
import { DecodeError, type Reader, type Writer } from "./primitives.ts";

export type { RequestHeader, ResponseHeader };

/**
 * Request header version for `apiKey` at `apiVersion`. Versions above an API's maximum follow
 * the schema's open-ended flexible range; API keys without generated codecs get v1 (enough to
 * read the key, version, correlation id and client id and answer with an error).
 */
export function requestHeaderVersion(apiKey: number, apiVersion: number): number {
  if (apiKey === API_KEYS.ControlledShutdown && apiVersion === 0) return 0;
  const schema = apiSchema(apiKey);
  if (schema === undefined) return 1;
  return schema.flexibleMinVersion >= 0 && apiVersion >= schema.flexibleMinVersion ? 2 : 1;
}

/** Response header version for `apiKey` at `apiVersion` (ApiVersions: always 0). */
export function responseHeaderVersion(apiKey: number, apiVersion: number): number {
  if (apiKey === API_KEYS.ApiVersions) return 0;
  const schema = apiSchema(apiKey);
  if (schema === undefined) return 0;
  return schema.flexibleMinVersion >= 0 && apiVersion >= schema.flexibleMinVersion ? 1 : 0;
}

/**
 * Reads a request header, choosing its version from the API key and version it starts with
 * (both are int16 at the front of every header version).
 */
export function readRequestHeader(r: Reader): RequestHeader {
  if (r.remaining() < 4) {
    throw new DecodeError(`Request header needs at least 4 bytes, got ${r.remaining()}`);
  }
  const start = r.offset;
  const apiKey = r.int16();
  const apiVersion = r.int16();
  r.offset = start;
  return REQUEST_HEADER.read(r, requestHeaderVersion(apiKey, apiVersion));
}

/** Writes `header` in the header version its API key and version call for. */
export function writeRequestHeader(w: Writer, header: RequestHeader): void {
  const version = requestHeaderVersion(header.requestApiKey, header.requestApiVersion);
  REQUEST_HEADER.write(w, header, version);
}

/** Reads the response header of a response to `apiKey` at `apiVersion`. */
export function readResponseHeader(r: Reader, apiKey: number, apiVersion: number): ResponseHeader {
  return RESPONSE_HEADER.read(r, responseHeaderVersion(apiKey, apiVersion));
}

/** Writes the response header for a response to `apiKey` at `apiVersion`. */
export function writeResponseHeader(
  w: Writer,
  correlationId: number,
  apiKey: number,
  apiVersion: number,
): void {
  RESPONSE_HEADER.write(w, { correlationId }, responseHeaderVersion(apiKey, apiVersion));
}
