/**
 * Authorized-operations bitfields (KIP-430) for Metadata, DescribeCluster and DescribeGroups.
 *
 * The broker has no authorizer, so the answer is what Kafka computes without one
 * (`AuthHelper.authorizedOperations` with no authorizer): every operation that applies to the
 * resource type (`AclEntry.supportedOperations`), one bit per `AclOperation` code. Clients count
 * them (librdkafka's test 0081 expects 8 topic, 7 cluster and 3 group operations).
 */

/** Kafka's AclOperation codes. */
export const ACL_OPERATIONS = {
  READ: 3,
  WRITE: 4,
  CREATE: 5,
  DELETE: 6,
  ALTER: 7,
  DESCRIBE: 8,
  CLUSTER_ACTION: 9,
  DESCRIBE_CONFIGS: 10,
  ALTER_CONFIGS: 11,
  IDEMPOTENT_WRITE: 12,
} as const;

/** The value of an authorized-operations field that was not asked for (Kafka's Int.MinValue). */
export const OPERATIONS_NOT_REQUESTED = -2147483648;

function bitfield(ops: readonly number[]): number {
  return ops.reduce((acc, op) => acc | (1 << op), 0);
}

const O = ACL_OPERATIONS;

/** Topic: READ, WRITE, CREATE, DESCRIBE, DELETE, ALTER, DESCRIBE_CONFIGS, ALTER_CONFIGS. */
export const TOPIC_OPERATIONS = bitfield([
  O.READ,
  O.WRITE,
  O.CREATE,
  O.DESCRIBE,
  O.DELETE,
  O.ALTER,
  O.DESCRIBE_CONFIGS,
  O.ALTER_CONFIGS,
]);

/** Cluster: CREATE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, ALTER, DESCRIBE. */
export const CLUSTER_OPERATIONS = bitfield([
  O.CREATE,
  O.CLUSTER_ACTION,
  O.DESCRIBE_CONFIGS,
  O.ALTER_CONFIGS,
  O.IDEMPOTENT_WRITE,
  O.ALTER,
  O.DESCRIBE,
]);

/** Group: READ, DESCRIBE, DELETE. */
export const GROUP_OPERATIONS = bitfield([O.READ, O.DESCRIBE, O.DELETE]);

/** `operations` when the request asked for them, else the not-requested marker. */
export function authorizedOperations(requested: boolean, operations: number): number {
  return requested ? operations : OPERATIONS_NOT_REQUESTED;
}
