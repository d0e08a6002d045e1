/**
 * The broker's ACL authorizer (`--authorizer acl`): every broker keeps all bindings of the
 * cluster in memory, loaded from the metadata store and reloaded on its watch, so a binding
 * created through any broker applies on every broker within moments, and an authorization check
 * never waits on the store. Decisions follow Kafka's AclAuthorizer (lib/security/acl.ts). With no
 * authorizer every request is allowed, as before.
 */
import type { ClusterMetadata } from "../metadata/cluster_metadata.ts";
import type { Logger } from "../util/logger.ts";
import { type AclBinding, authorize, type ResourceType } from "../security/acl.ts";
import type { RequestContext } from "./handler.ts";
import { INTER_BROKER_PRINCIPAL } from "./inter_broker.ts";

export interface AuthorizerSettings {
  enabled: boolean;
  superUsers: string[];
  allowEveryoneIfNoAclFound: boolean;
}

/** Delay before reloading after a watched change (changes come in bursts). */
const RELOAD_DELAY_MS = 50;

export class Authorizer {
  readonly #metadata: ClusterMetadata;
  readonly #logger: Logger;
  readonly settings: AuthorizerSettings;
  #bindings: AclBinding[] = [];
  #unwatch: (() => void) | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(metadata: ClusterMetadata, settings: AuthorizerSettings, logger: Logger) {
    this.#metadata = metadata;
    this.settings = settings;
    this.#logger = logger;
  }

  get enabled(): boolean {
    return this.settings.enabled;
  }

  get bindings(): readonly AclBinding[] {
    return this.#bindings;
  }

  async start(): Promise<void> {
    if (!this.enabled) return;
    this.#unwatch = this.#metadata.watchAcls(() => {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => {
        this.reload().catch((err) =>
          this.#logger.warn("Cannot reload ACLs; the previous ones stay in force", {
            err: String(err),
          })
        );
      }, RELOAD_DELAY_MS);
    });
    await this.reload();
  }

  stop(): void {
    this.#unwatch?.();
    this.#unwatch = null;
    clearTimeout(this.#timer);
  }

  /** Reads every binding from the store (also right after this broker changed them). */
  async reload(): Promise<void> {
    this.#bindings = await this.#metadata.listAcls<AclBinding>();
  }

  /** Whether the request's principal may do `operation` on the resource. */
  allowed(
    ctx: Pick<RequestContext, "security" | "clientAddress">,
    operation: number,
    resourceType: ResourceType,
    resourceName: string,
  ): boolean {
    if (!this.enabled) return true;
    // Brokers calling each other (inter_broker.ts) may do anything, as Kafka's broker principal.
    if (ctx.security.authenticated && ctx.security.principal === INTER_BROKER_PRINCIPAL) {
      return true;
    }
    const address = ctx.clientAddress;
    const i = address.lastIndexOf(":");
    return authorize(this.#bindings, {
      principal: ctx.security.principal,
      host: i < 0 ? address : address.slice(0, i),
      operation,
      resourceType,
      resourceName,
    }, this.settings);
  }
}

/** Shorthand for handlers: may this request's principal do `operation` on the resource? */
export function can(
  ctx: Pick<RequestContext, "security" | "clientAddress" | "broker">,
  operation: number,
  resourceType: ResourceType,
  resourceName: string,
): boolean {
  return ctx.broker.authorizer.allowed(ctx, operation, resourceType, resourceName);
}
