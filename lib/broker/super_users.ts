/**
 * Who may administer the broker's security (SCRAM credentials) until ACLs exist: a principal
 * named by `--super-users` (the first admin, `--sasl-admin-user`, is one), or any client of a
 * listener that authenticates no one (PLAINTEXT, or SSL without client certificates), which can
 * do everything anyway.
 */
import type { RequestContext } from "./handler.ts";

export function isSuperUser(ctx: RequestContext): boolean {
  const s = ctx.security;
  const authenticates = s.protocol === "SASL_PLAINTEXT" || s.protocol === "SASL_SSL" ||
    (s.protocol === "SSL" && s.principal !== "User:ANONYMOUS");
  if (!authenticates) return true;
  return (ctx.broker.settings.superUsers ?? []).includes(s.principal);
}
