/**
 * Who may administer the broker's security (SCRAM credentials, ACLs) and write transaction
 * markers (WriteTxnMarkers, CLUSTER_ACTION). With the ACL authorizer: whoever the ACLs allow
 * `operation` on the cluster (super users and other brokers always). Without it: a principal
 * named by `--super-users` (the first admin, `--sasl-admin-user`, is one), another broker
 * (inter_broker.ts), or any client of a listener that authenticates no one (PLAINTEXT, or SSL
 * without client certificates), which can do everything anyway.
 */
import { CLUSTER_NAME, OPERATIONS, RESOURCE_TYPES } from "../security/acl.ts";
import type { RequestContext } from "./handler.ts";
import { INTER_BROKER_PRINCIPAL } from "./inter_broker.ts";

export function isSuperUser(
  ctx: RequestContext,
  operation: number = OPERATIONS.ALTER,
): boolean {
  if (ctx.broker.authorizer.enabled) {
    return ctx.broker.authorizer.allowed(ctx, operation, RESOURCE_TYPES.CLUSTER, CLUSTER_NAME);
  }
  const s = ctx.security;
  const authenticates = s.protocol === "SASL_PLAINTEXT" || s.protocol === "SASL_SSL" ||
    (s.protocol === "SSL" && s.principal !== "User:ANONYMOUS");
  if (!authenticates) return true;
  if (s.authenticated && s.principal === INTER_BROKER_PRINCIPAL) return true;
  return (ctx.broker.settings.superUsers ?? []).includes(s.principal);
}
