import assert from "node:assert/strict";
import { ERROR_CODES, errorName, isRetriable } from "../../lib/protocol/error_codes.ts";
import { API_KEYS, apiKeyName } from "../../lib/protocol/api_keys.ts";

Deno.test("error codes match Kafka's numbering", () => {
  assert.equal(ERROR_CODES.UNKNOWN_SERVER_ERROR, -1);
  assert.equal(ERROR_CODES.NONE, 0);
  assert.equal(ERROR_CODES.OFFSET_OUT_OF_RANGE, 1);
  assert.equal(ERROR_CODES.NOT_LEADER_OR_FOLLOWER, 6);
  assert.equal(ERROR_CODES.UNSUPPORTED_SASL_MECHANISM, 33);
  assert.equal(ERROR_CODES.UNSUPPORTED_VERSION, 35);
  assert.equal(ERROR_CODES.INVALID_REQUEST, 42);
  assert.equal(ERROR_CODES.KAFKA_STORAGE_ERROR, 56);
  assert.equal(ERROR_CODES.UNKNOWN_TOPIC_ID, 100);
  assert.equal(ERROR_CODES.TRANSACTION_ABORTABLE, 120);
  // Contiguous from -1 with no duplicates.
  const codes = Object.values(ERROR_CODES).sort((a, b) => a - b);
  codes.forEach((c, i) => assert.equal(c, i - 1));
  assert.ok(codes.length >= 122);
});

Deno.test("retriable codes and names", () => {
  for (const name of ["NOT_LEADER_OR_FOLLOWER", "REQUEST_TIMED_OUT", "NOT_COORDINATOR"] as const) {
    assert.ok(isRetriable(ERROR_CODES[name]), name);
  }
  for (
    const name of [
      "NONE",
      "UNKNOWN_SERVER_ERROR",
      "INVALID_REQUEST",
      "TOPIC_ALREADY_EXISTS",
    ] as const
  ) {
    assert.ok(!isRetriable(ERROR_CODES[name]), name);
  }
  assert.ok(!isRetriable(9999));
  assert.equal(errorName(3), "UNKNOWN_TOPIC_OR_PARTITION");
  assert.equal(errorName(9999), "UNKNOWN_ERROR_CODE(9999)");
});

Deno.test("API key names", () => {
  assert.equal(API_KEYS.Produce, 0);
  assert.equal(API_KEYS.ApiVersions, 18);
  assert.equal(API_KEYS.DescribeCluster, 60);
  assert.equal(API_KEYS.ListClientMetricsResources, 74);
  assert.equal(apiKeyName(1), "Fetch");
  assert.equal(apiKeyName(-5), "Unknown(-5)");
});
