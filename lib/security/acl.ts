/**
 * Kafka's ACL model (KIP-11, KIP-290 prefixed patterns), as `AclAuthorizer` applies it:
 *
 * - a binding allows or denies one principal (`User:alice`, or `User:*` for everyone) from one
 *   host (`*` for any) one operation on the resources a pattern names: a LITERAL name (`*` is
 *   every resource of the type) or a PREFIXED one;
 * - DENY wins over ALLOW; ALL matches every operation; READ, WRITE, DELETE and ALTER imply
 *   DESCRIBE, and ALTER_CONFIGS implies DESCRIBE_CONFIGS;
 * - a resource no binding names at all is allowed only with `allow.everyone.if.no.acl.found`;
 * - super users are always allowed.
 *
 * Filters (DescribeAcls, DeleteAcls) match bindings with ANY or MATCH as Kafka defines them.
 * Pure: no I/O.
 */

export const RESOURCE_TYPES = {
  ANY: 1,
  TOPIC: 2,
  GROUP: 3,
  CLUSTER: 4,
  TRANSACTIONAL_ID: 5,
} as const;
export type ResourceType = 2 | 3 | 4 | 5;

export const PATTERN_TYPES = { ANY: 1, MATCH: 2, LITERAL: 3, PREFIXED: 4 } as const;
export type PatternType = 3 | 4;

export const OPERATIONS = {
  ANY: 1,
  ALL: 2,
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
export type Operation = (typeof OPERATIONS)[keyof typeof OPERATIONS];

export const PERMISSIONS = { ANY: 1, DENY: 2, ALLOW: 3 } as const;

/** The name the CLUSTER resource always has. */
export const CLUSTER_NAME = "kafka-cluster";

export interface AclBinding {
  resourceType: ResourceType;
  resourceName: string;
  patternType: PatternType;
  principal: string;
  host: string;
  operation: number;
  /** DENY (2) or ALLOW (3). */
  permissionType: 2 | 3;
}

export interface AclFilter {
  resourceType: number;
  resourceName: string | null;
  patternType: number;
  principal: string | null;
  host: string | null;
  operation: number;
  permissionType: number;
}

/** Why a binding cannot be stored, or null (CreateAcls answers INVALID_REQUEST with it). */
export function bindingProblem(b: {
  resourceType: number;
  resourceName: string;
  patternType: number;
  principal: string;
  host: string;
  operation: number;
  permissionType: number;
}): string | null {
  if (![2, 3, 4, 5].includes(b.resourceType)) return `Unsupported resource type ${b.resourceType}`;
  if (b.patternType !== 3 && b.patternType !== 4) {
    return `A binding's pattern type must be LITERAL or PREFIXED, got ${b.patternType}`;
  }
  if (b.resourceName === "") return "Empty resource name";
  if (b.resourceType === 4 && b.resourceName !== CLUSTER_NAME) {
    return `The cluster resource is named "${CLUSTER_NAME}"`;
  }
  if (!/^[A-Za-z]+:.+$/.test(b.principal)) {
    return `Principal must be TYPE:NAME (e.g. User:alice), got "${b.principal}"`;
  }
  if (b.host === "") return "Empty host (use * for any)";
  if (b.operation < 2 || b.operation > 12) return `Invalid operation ${b.operation}`;
  if (b.permissionType !== 2 && b.permissionType !== 3) {
    return `Permission must be ALLOW or DENY, got ${b.permissionType}`;
  }
  return null;
}

/** Whether a binding for `bound` covers a request for `wanted`. */
function operationCovers(bound: number, wanted: number, permission: 2 | 3): boolean {
  if (bound === OPERATIONS.ALL || bound === wanted) return true;
  // Implications apply to ALLOW only (a DENY of READ does not deny DESCRIBE).
  if (permission !== PERMISSIONS.ALLOW) return false;
  if (wanted === OPERATIONS.DESCRIBE) {
    return ([OPERATIONS.READ, OPERATIONS.WRITE, OPERATIONS.DELETE, OPERATIONS.ALTER] as number[])
      .includes(bound);
  }
  if (wanted === OPERATIONS.DESCRIBE_CONFIGS) return bound === OPERATIONS.ALTER_CONFIGS;
  return false;
}

function namesResource(b: AclBinding, type: ResourceType, name: string): boolean {
  if (b.resourceType !== type) return false;
  if (b.patternType === PATTERN_TYPES.LITERAL) {
    return b.resourceName === name || b.resourceName === "*";
  }
  return name.startsWith(b.resourceName);
}

export interface AuthorizeRequest {
  principal: string;
  host: string;
  operation: number;
  resourceType: ResourceType;
  resourceName: string;
}

export interface AuthorizerPolicy {
  superUsers: readonly string[];
  allowEveryoneIfNoAclFound: boolean;
}

/** Kafka's decision for one request against `bindings`. */
export function authorize(
  bindings: readonly AclBinding[],
  r: AuthorizeRequest,
  policy: AuthorizerPolicy,
): boolean {
  if (policy.superUsers.includes(r.principal)) return true;
  const onResource = bindings.filter((b) => namesResource(b, r.resourceType, r.resourceName));
  if (onResource.length === 0) return policy.allowEveryoneIfNoAclFound;
  const applies = (b: AclBinding) =>
    (b.principal === r.principal || b.principal === "User:*") &&
    (b.host === "*" || b.host === r.host) &&
    operationCovers(b.operation, r.operation, b.permissionType);
  if (onResource.some((b) => b.permissionType === PERMISSIONS.DENY && applies(b))) return false;
  return onResource.some((b) => b.permissionType === PERMISSIONS.ALLOW && applies(b));
}

/** Whether `b` matches a DescribeAcls/DeleteAcls filter (Kafka's AclBindingFilter.matches). */
export function filterMatches(f: AclFilter, b: AclBinding): boolean {
  if (f.resourceType !== RESOURCE_TYPES.ANY && f.resourceType !== b.resourceType) return false;
  if (f.patternType === PATTERN_TYPES.MATCH) {
    // MATCH: every binding that would apply to the named resource.
    if (f.resourceName !== null) {
      const literal = b.patternType === PATTERN_TYPES.LITERAL &&
        (b.resourceName === f.resourceName || b.resourceName === "*");
      const prefixed = b.patternType === PATTERN_TYPES.PREFIXED &&
        f.resourceName.startsWith(b.resourceName);
      if (!literal && !prefixed) return false;
    }
  } else {
    if (f.patternType !== PATTERN_TYPES.ANY && f.patternType !== b.patternType) return false;
    if (f.resourceName !== null && f.resourceName !== b.resourceName) return false;
  }
  if (f.principal !== null && f.principal !== b.principal) return false;
  if (f.host !== null && f.host !== b.host) return false;
  if (f.operation !== OPERATIONS.ANY && f.operation !== b.operation) return false;
  if (f.permissionType !== PERMISSIONS.ANY && f.permissionType !== b.permissionType) return false;
  return true;
}

/** A stable id for a binding (its store key). */
export function bindingId(b: AclBinding): string {
  return [
    b.resourceType,
    b.patternType,
    b.resourceName,
    b.principal,
    b.host,
    b.operation,
    b.permissionType,
  ]
    .map((x) => encodeURIComponent(String(x))).join("|");
}
