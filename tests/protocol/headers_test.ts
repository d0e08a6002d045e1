import assert from "node:assert/strict";
import {
  readRequestHeader,
  readResponseHeader,
  requestHeaderVersion,
  responseHeaderVersion,
  writeRequestHeader,
  writeResponseHeader,
} from "../../lib/protocol/headers.ts";
import { API_KEYS } from "../../lib/protocol/api_keys.ts";
import { DecodeError, Reader, Writer } from "../../lib/protocol/primitives.ts";

Deno.test("header versions follow each API's flexible versions", () => {
  assert.equal(requestHeaderVersion(API_KEYS.Produce, 8), 1);
  assert.equal(requestHeaderVersion(API_KEYS.Produce, 9), 2);
  assert.equal(responseHeaderVersion(API_KEYS.Produce, 8), 0);
  assert.equal(responseHeaderVersion(API_KEYS.Produce, 9), 1);
  assert.equal(requestHeaderVersion(API_KEYS.Fetch, 12), 2);
  assert.equal(requestHeaderVersion(API_KEYS.SaslHandshake, 1), 1, "never flexible");
  assert.equal(responseHeaderVersion(API_KEYS.SaslHandshake, 1), 0);
  // Versions above the maximum follow the open-ended flexible range.
  assert.equal(requestHeaderVersion(API_KEYS.Metadata, 99), 2);
});

Deno.test("header version exceptions: ApiVersions responses and ControlledShutdown v0", () => {
  assert.equal(requestHeaderVersion(API_KEYS.ApiVersions, 3), 2);
  assert.equal(responseHeaderVersion(API_KEYS.ApiVersions, 3), 0);
  assert.equal(responseHeaderVersion(API_KEYS.ApiVersions, 99), 0);
  assert.equal(requestHeaderVersion(API_KEYS.ControlledShutdown, 0), 0);
  assert.equal(requestHeaderVersion(API_KEYS.ControlledShutdown, 1), 1);
  assert.equal(requestHeaderVersion(9999, 0), 1, "unknown API: classic header");
  assert.equal(responseHeaderVersion(9999, 0), 0);
});

Deno.test("request headers round-trip and pick their version from the first bytes", () => {
  for (const [apiKey, apiVersion, tail] of [[0, 8, 0], [0, 9, 1], [18, 3, 1]] as const) {
    const header = { requestApiKey: apiKey, requestApiVersion: apiVersion, correlationId: 42 };
    const w = new Writer();
    writeRequestHeader(w, { ...header, clientId: "me" });
    w.int8(0x55); // first body byte
    const bytes = w.finishBytes();
    assert.equal(bytes.length, 8 + 4 + tail + 1);
    const r = new Reader(bytes);
    assert.deepStrictEqual(readRequestHeader(r), { ...header, clientId: "me" });
    assert.equal(r.int8(), 0x55, "reader left at the body");
  }
  assert.throws(() => readRequestHeader(new Reader(Uint8Array.from([0, 1, 0]))), DecodeError);
});

Deno.test("response headers carry tagged fields only for flexible versions", () => {
  for (const [apiKey, apiVersion, len] of [[0, 8, 4], [0, 9, 5], [18, 3, 4]] as const) {
    const w = new Writer();
    writeResponseHeader(w, 7, apiKey, apiVersion);
    const bytes = w.finishBytes();
    assert.equal(bytes.length, len, `${apiKey} v${apiVersion}`);
    assert.deepStrictEqual(readResponseHeader(new Reader(bytes), apiKey, apiVersion), {
      correlationId: 7,
    });
  }
});
