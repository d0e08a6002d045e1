/**
 * Authorized-operations bitfields (KIP-430) in Metadata, DescribeCluster and
 * DescribeGroups: without an authorizer, every operation that applies to the
 * resource type, as Kafka computes them, and Kafka's "not requested" marker
 * otherwise. Pins issue 18 bug 4 (librdkafka 0081: DescribeCluster expected
 * 7 cluster operations and got none).
 */
import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { HANDLERS } from "../../lib/broker/handler_table.ts";
import {
  ACL_OPERATIONS,
  OPERATIONS_NOT_REQUESTED,
} from "../../lib/broker/authorized_operations.ts";

const METADATA = API_SCHEMAS[3];
const DESCRIBE_GROUPS = API_SCHEMAS[15];
const DESCRIBE_CLUSTER = API_SCHEMAS[60];

/** The AclOperation names a bitfield holds, sorted (what clients print). */
function operations(bits: number): string[] {
  return Object.entries(ACL_OPERATIONS).filter(([, code]) => (bits & (1 << code)) !== 0)
    .map(([name]) => name).sort();
}

const CLUSTER = [
  "ALTER",
  "ALTER_CONFIGS",
  "CLUSTER_ACTION",
  "CREATE",
  "DESCRIBE",
  "DESCRIBE_CONFIGS",
  "IDEMPOTENT_WRITE",
];
const TOPIC = [
  "ALTER",
  "ALTER_CONFIGS",
  "CREATE",
  "DELETE",
  "DESCRIBE",
  "DESCRIBE_CONFIGS",
  "READ",
  "WRITE",
];
const GROUP = ["DELETE", "DESCRIBE", "READ"];

function versions(apiKey: number): number[] {
  const h = HANDLERS.get(apiKey)!;
  return Array.from({ length: h.maxVersion - h.minVersion + 1 }, (_, i) => h.minVersion + i);
}

Deno.test("DescribeCluster reports Kafka's 7 cluster operations when asked (librdkafka 0081)", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  for (const v of versions(60)) {
    const asked = await conn.send(DESCRIBE_CLUSTER, v, {
      includeClusterAuthorizedOperations: true,
      endpointType: 1,
    });
    assert.equal(asked!.errorCode, ERROR_CODES.NONE);
    assert.deepEqual(operations(asked!.clusterAuthorizedOperations), CLUSTER, `v${v}`);
    const notAsked = await conn.send(DESCRIBE_CLUSTER, v, {
      includeClusterAuthorizedOperations: false,
      endpointType: 1,
    });
    assert.equal(notAsked!.clusterAuthorizedOperations, OPERATIONS_NOT_REQUESTED, `v${v}`);
  }
});

Deno.test("Metadata reports topic operations (v8+) and cluster operations (v8-10) when asked", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  for (const v of versions(3).filter((v) => v >= 8)) {
    const topics = [{ name: `ops-${v}`, topicId: undefined }];
    const asked = await conn.send(METADATA, v, {
      topics,
      allowAutoTopicCreation: true,
      includeClusterAuthorizedOperations: true,
      includeTopicAuthorizedOperations: true,
    });
    const t = asked!.topics[0];
    assert.equal(t.errorCode, ERROR_CODES.NONE, `v${v}`);
    assert.deepEqual(operations(t.topicAuthorizedOperations!), TOPIC, `v${v}`);
    if (v <= 10) {
      assert.deepEqual(operations(asked!.clusterAuthorizedOperations!), CLUSTER, `v${v}`);
    }
    const notAsked = await conn.send(METADATA, v, {
      topics,
      allowAutoTopicCreation: true,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    });
    assert.equal(notAsked!.topics[0].topicAuthorizedOperations, OPERATIONS_NOT_REQUESTED);
    if (v <= 10) {
      assert.equal(notAsked!.clusterAuthorizedOperations, OPERATIONS_NOT_REQUESTED, `v${v}`);
    }
  }
});

Deno.test("DescribeGroups reports the 3 group operations when asked (v3+)", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  for (const v of versions(15).filter((v) => v >= 3)) {
    const asked = await conn.send(DESCRIBE_GROUPS, v, {
      groups: ["ops-group"],
      includeAuthorizedOperations: true,
    });
    assert.deepEqual(operations(asked!.groups[0].authorizedOperations!), GROUP, `v${v}`);
    const notAsked = await conn.send(DESCRIBE_GROUPS, v, {
      groups: ["ops-group"],
      includeAuthorizedOperations: false,
    });
    assert.equal(notAsked!.groups[0].authorizedOperations, OPERATIONS_NOT_REQUESTED, `v${v}`);
  }
});
