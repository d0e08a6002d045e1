/**
 * AlterConfigs (33), versions 0-2: replaces a topic's whole set of config
 * overrides (keys left out return to their defaults), with validate-only.
 * Only the whitelist of topic_config.ts may be set; any other key gets
 * INVALID_CONFIG naming it. Broker configs are read-only (they come from
 * `kafscale serve` flags).
 */
import {
  ALTER_CONFIGS_REQUEST,
  type AlterConfigsRequest,
} from "../protocol/generated/alter_configs_request.ts";
import {
  ALTER_CONFIGS_RESPONSE,
  type AlterConfigsResourceResponse,
  type AlterConfigsResponse,
} from "../protocol/generated/alter_configs_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { topicNameProblem } from "./topic_config.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { errorCodeFor } from "./errors.ts";
import type { Broker } from "./broker.ts";
import { brokerConfigEntries, RESOURCE_TYPE } from "./describe_configs.ts";

export interface AlterOutcome {
  errorCode: number;
  errorMessage: string | null;
}

const OK: AlterOutcome = { errorCode: ERROR_CODES.NONE, errorMessage: null };

/** Checks the resource is one this broker can alter; returns the failure, or null. */
export function alterTargetProblem(
  broker: Broker,
  resourceType: number,
  resourceName: string,
  keys: string[],
): AlterOutcome | null {
  if (resourceType === RESOURCE_TYPE.TOPIC) {
    const problem = topicNameProblem(resourceName);
    return problem
      ? { errorCode: ERROR_CODES.INVALID_TOPIC_EXCEPTION, errorMessage: problem }
      : null;
  }
  if (resourceType === RESOURCE_TYPE.BROKER) {
    if (resourceName !== "" && resourceName !== String(broker.settings.nodeId)) {
      return {
        errorCode: ERROR_CODES.INVALID_REQUEST,
        errorMessage: `Unexpected broker id, expected ${broker.settings.nodeId} but received ` +
          `"${resourceName}"`,
      };
    }
    if (keys.length === 0) return OK;
    const known = new Set(brokerConfigEntries(broker).map((e) => e.name));
    const key = keys[0];
    return {
      errorCode: ERROR_CODES.INVALID_CONFIG,
      errorMessage: known.has(key)
        ? `Broker config "${key}" is read-only; set it with a "kafscale serve" flag and restart`
        : `Unsupported broker config "${key}"`,
    };
  }
  return {
    errorCode: ERROR_CODES.INVALID_REQUEST,
    errorMessage: `Unsupported resource type ${resourceType}; alter topics (2)`,
  };
}

/** Names each (type, name) that appears more than once: Kafka refuses those resources. */
export function duplicateResources(
  resources: { resourceType: number; resourceName: string }[],
): Set<string> {
  const seen = new Set<string>();
  const dups = new Set<string>();
  for (const r of resources) {
    const key = `${r.resourceType}/${r.resourceName}`;
    if (seen.has(key)) dups.add(key);
    seen.add(key);
  }
  return dups;
}

export const ALTER_CONFIGS_HANDLER = defineHandler<AlterConfigsRequest, AlterConfigsResponse>({
  apiKey: 33,
  name: "AlterConfigs",
  minVersion: 0,
  maxVersion: 2,
  request: ALTER_CONFIGS_REQUEST,
  response: ALTER_CONFIGS_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const dups = duplicateResources(req.resources);
    const responses: AlterConfigsResourceResponse[] = [];
    for (const resource of req.resources) {
      const outcome = await (async (): Promise<AlterOutcome> => {
        if (dups.has(`${resource.resourceType}/${resource.resourceName}`)) {
          return {
            errorCode: ERROR_CODES.INVALID_REQUEST,
            errorMessage: `Resource "${resource.resourceName}" appears more than once`,
          };
        }
        const keys = resource.configs.map((c) => c.name);
        const onTopic = resource.resourceType === 2;
        if (
          !can(
            ctx,
            OP.ALTER_CONFIGS,
            onTopic ? RT.TOPIC : RT.CLUSTER,
            onTopic ? resource.resourceName : "kafka-cluster",
          )
        ) {
          return {
            errorCode: onTopic
              ? ERROR_CODES.TOPIC_AUTHORIZATION_FAILED
              : ERROR_CODES.CLUSTER_AUTHORIZATION_FAILED,
            errorMessage: "Not authorized",
          };
        }
        const problem = alterTargetProblem(
          broker,
          resource.resourceType,
          resource.resourceName,
          keys,
        );
        if (problem) return problem;
        const changes: Record<string, string | null> = {};
        for (const c of resource.configs) changes[c.name] = c.value;
        try {
          return await broker.alterTopicConfigs(resource.resourceName, changes, {
            replace: true,
            validateOnly: req.validateOnly,
          });
        } catch (err) {
          return {
            errorCode: errorCodeFor(err, broker.logger, "AlterConfigs"),
            errorMessage: "Metadata store unavailable; retry",
          };
        }
      })();
      responses.push({
        ...outcome,
        resourceType: resource.resourceType,
        resourceName: resource.resourceName,
      });
    }
    return { throttleTimeMs: 0, responses };
  },
});
