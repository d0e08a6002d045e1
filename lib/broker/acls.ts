/**
 * CreateAcls (30), DescribeAcls (29) and DeleteAcls (31), versions 0-3 (KIP-11, KIP-290), so
 * `kafka-acls.sh` and Admin clients manage the ACLs of `--authorizer acl`. Bindings live in the
 * metadata store (every broker applies them, lib/broker/authorizer.ts). v0 has no pattern type:
 * LITERAL. Changing ACLs needs ALTER on the cluster, reading them DESCRIBE (super users always);
 * without an authorizer every call answers SECURITY_DISABLED, as Kafka does.
 */
import {
  CREATE_ACLS_REQUEST,
  type CreateAclsRequest,
} from "../protocol/generated/create_acls_request.ts";
import {
  CREATE_ACLS_RESPONSE,
  type CreateAclsResponse,
} from "../protocol/generated/create_acls_response.ts";
import {
  DESCRIBE_ACLS_REQUEST,
  type DescribeAclsRequest,
} from "../protocol/generated/describe_acls_request.ts";
import {
  DESCRIBE_ACLS_RESPONSE,
  type DescribeAclsResource,
  type DescribeAclsResponse,
} from "../protocol/generated/describe_acls_response.ts";
import {
  DELETE_ACLS_REQUEST,
  type DeleteAclsRequest,
} from "../protocol/generated/delete_acls_request.ts";
import {
  DELETE_ACLS_RESPONSE,
  type DeleteAclsResponse,
} from "../protocol/generated/delete_acls_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import {
  type AclBinding,
  type AclFilter,
  bindingId,
  bindingProblem,
  filterMatches,
  OPERATIONS,
  PATTERN_TYPES,
} from "../security/acl.ts";
import { defineHandler, type RequestContext } from "./handler.ts";
import { errorCodeFor } from "./errors.ts";
import { isSuperUser } from "./super_users.ts";

const DISABLED = "No authorizer is configured on the broker (--authorizer acl enables ACLs)";

function refusal(ctx: RequestContext, operation: number): { code: number; message: string } | null {
  if (!ctx.broker.authorizer.enabled) {
    return { code: ERROR_CODES.SECURITY_DISABLED, message: DISABLED };
  }
  if (!isSuperUser(ctx, operation)) {
    return {
      code: ERROR_CODES.CLUSTER_AUTHORIZATION_FAILED,
      message: `${ctx.security.principal} may not ${
        operation === OPERATIONS.ALTER ? "change" : "read"
      } ACLs`,
    };
  }
  return null;
}

function filterOf(
  f: Omit<AclFilter, "patternType"> & { patternType?: number },
  version: number,
): AclFilter {
  return {
    ...f,
    patternType: version >= 1 ? f.patternType ?? PATTERN_TYPES.LITERAL : PATTERN_TYPES.LITERAL,
  };
}

export const CREATE_ACLS_HANDLER = defineHandler<CreateAclsRequest, CreateAclsResponse>({
  apiKey: 30,
  name: "CreateAcls",
  minVersion: 0,
  maxVersion: 3,
  request: CREATE_ACLS_REQUEST,
  response: CREATE_ACLS_RESPONSE,
  async handle(req, ctx) {
    const refused = refusal(ctx, OPERATIONS.ALTER);
    if (refused) {
      return {
        throttleTimeMs: 0,
        results: req.creations.map(() => ({
          errorCode: refused.code,
          errorMessage: refused.message,
        })),
      };
    }
    const valid: { id: string; binding: AclBinding }[] = [];
    const results = req.creations.map((c) => {
      const binding = {
        resourceType: c.resourceType,
        resourceName: c.resourceName,
        patternType: ctx.apiVersion >= 1
          ? c.resourcePatternType ?? PATTERN_TYPES.LITERAL
          : PATTERN_TYPES.LITERAL,
        principal: c.principal,
        host: c.host,
        operation: c.operation,
        permissionType: c.permissionType,
      };
      const problem = bindingProblem(binding);
      if (problem) return { errorCode: ERROR_CODES.INVALID_REQUEST, errorMessage: problem };
      valid.push({ id: bindingId(binding as AclBinding), binding: binding as AclBinding });
      return { errorCode: ERROR_CODES.NONE, errorMessage: null };
    });
    try {
      await ctx.broker.metadata.putAcls(valid);
      await ctx.broker.authorizer.reload();
    } catch (err) {
      const code = errorCodeFor(err, ctx.broker.logger, "CreateAcls");
      return {
        throttleTimeMs: 0,
        results: results.map((r) =>
          r.errorCode === ERROR_CODES.NONE
            ? { errorCode: code, errorMessage: "The metadata store failed" }
            : r
        ),
      };
    }
    ctx.broker.logger.info("ACLs created", { by: ctx.security.principal, count: valid.length });
    return { throttleTimeMs: 0, results };
  },
});

export const DESCRIBE_ACLS_HANDLER = defineHandler<DescribeAclsRequest, DescribeAclsResponse>({
  apiKey: 29,
  name: "DescribeAcls",
  minVersion: 0,
  maxVersion: 3,
  request: DESCRIBE_ACLS_REQUEST,
  response: DESCRIBE_ACLS_RESPONSE,
  async handle(req, ctx) {
    const refused = refusal(ctx, OPERATIONS.DESCRIBE);
    if (refused) {
      return {
        throttleTimeMs: 0,
        errorCode: refused.code,
        errorMessage: refused.message,
        resources: [],
      };
    }
    const filter = filterOf({
      resourceType: req.resourceTypeFilter,
      resourceName: req.resourceNameFilter,
      patternType: req.patternTypeFilter,
      principal: req.principalFilter,
      host: req.hostFilter,
      operation: req.operation,
      permissionType: req.permissionType,
    }, ctx.apiVersion);
    await ctx.broker.authorizer.reload().catch(() => {});
    const byResource = new Map<string, DescribeAclsResource>();
    for (const b of ctx.broker.authorizer.bindings) {
      if (!filterMatches(filter, b)) continue;
      const key = `${b.resourceType}|${b.patternType}|${b.resourceName}`;
      let r = byResource.get(key);
      if (!r) {
        r = {
          resourceType: b.resourceType,
          resourceName: b.resourceName,
          patternType: b.patternType,
          acls: [],
        };
        byResource.set(key, r);
      }
      r.acls.push({
        principal: b.principal,
        host: b.host,
        operation: b.operation,
        permissionType: b.permissionType,
      });
    }
    return {
      throttleTimeMs: 0,
      errorCode: ERROR_CODES.NONE,
      errorMessage: null,
      resources: [...byResource.values()],
    };
  },
});

export const DELETE_ACLS_HANDLER = defineHandler<DeleteAclsRequest, DeleteAclsResponse>({
  apiKey: 31,
  name: "DeleteAcls",
  minVersion: 0,
  maxVersion: 3,
  request: DELETE_ACLS_REQUEST,
  response: DELETE_ACLS_RESPONSE,
  async handle(req, ctx) {
    const refused = refusal(ctx, OPERATIONS.ALTER);
    if (refused) {
      return {
        throttleTimeMs: 0,
        filterResults: req.filters.map(() => ({
          errorCode: refused.code,
          errorMessage: refused.message,
          matchingAcls: [],
        })),
      };
    }
    try {
      await ctx.broker.authorizer.reload();
      const all = ctx.broker.authorizer.bindings;
      const doomed = new Set<string>();
      const filterResults = req.filters.map((f) => {
        const filter = filterOf({
          resourceType: f.resourceTypeFilter,
          resourceName: f.resourceNameFilter,
          patternType: f.patternTypeFilter,
          principal: f.principalFilter,
          host: f.hostFilter,
          operation: f.operation,
          permissionType: f.permissionType,
        }, ctx.apiVersion);
        const matching = all.filter((b) => filterMatches(filter, b));
        for (const b of matching) doomed.add(bindingId(b));
        return {
          errorCode: ERROR_CODES.NONE,
          errorMessage: null,
          matchingAcls: matching.map((b) => ({
            errorCode: ERROR_CODES.NONE,
            errorMessage: null,
            ...b,
          })),
        };
      });
      await ctx.broker.metadata.deleteAcls([...doomed]);
      await ctx.broker.authorizer.reload();
      ctx.broker.logger.info("ACLs deleted", { by: ctx.security.principal, count: doomed.size });
      return { throttleTimeMs: 0, filterResults };
    } catch (err) {
      const code = errorCodeFor(err, ctx.broker.logger, "DeleteAcls");
      return {
        throttleTimeMs: 0,
        filterResults: req.filters.map(() => ({
          errorCode: code,
          errorMessage: "The metadata store failed",
          matchingAcls: [],
        })),
      };
    }
  },
});
