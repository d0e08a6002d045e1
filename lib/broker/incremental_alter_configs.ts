/**
 * IncrementalAlterConfigs (44), versions 0-1 (KIP-339), which Kafka's own
 * tools use: SET, DELETE, and APPEND/SUBTRACT on list configs
 * (`cleanup.policy`), with validate-only. Only the whitelist of
 * topic_config.ts may be changed; any other key gets INVALID_CONFIG naming
 * it. Broker configs are read-only.
 */
import {
  INCREMENTAL_ALTER_CONFIGS_REQUEST,
  type IncrementalAlterConfigsRequest,
} from "../protocol/generated/incremental_alter_configs_request.ts";
import type { AlterConfigsResource } from "../protocol/generated/incremental_alter_configs_request.ts";
import {
  type AlterConfigsResourceResponse,
  INCREMENTAL_ALTER_CONFIGS_RESPONSE,
  type IncrementalAlterConfigsResponse,
} from "../protocol/generated/incremental_alter_configs_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { errorCodeFor } from "./errors.ts";
import type { Broker } from "./broker.ts";
import { type AlterOutcome, alterTargetProblem, duplicateResources } from "./alter_configs.ts";
import { CONFIG_TYPE, TOPIC_CONFIG_INFO } from "./describe_configs.ts";

/** Kafka's AlterConfigOp.OpType ids. */
export const CONFIG_OPERATION = { SET: 0, DELETE: 1, APPEND: 2, SUBTRACT: 3 } as const;

const OP_NAMES = ["set", "delete", "append", "subtract"];

function invalid(code: number, message: string): AlterOutcome {
  return { errorCode: code, errorMessage: message };
}

type Changes = { ok: true; changes: Record<string, string | null> } | {
  ok: false;
  outcome: AlterOutcome;
};

function refuse(code: number, message: string): Changes {
  return { ok: false, outcome: invalid(code, message) };
}

/** The overrides to write: a value, or null to remove the key; or the failure. */
async function changesFor(
  broker: Broker,
  resource: AlterConfigsResource,
): Promise<Changes> {
  const seen = new Set<string>();
  for (const c of resource.configs) {
    if (seen.has(c.name)) {
      return refuse(ERROR_CODES.INVALID_REQUEST, `Config "${c.name}" appears more than once`);
    }
    seen.add(c.name);
  }
  const changes: Record<string, string | null> = {};
  let topic = null;
  for (const c of resource.configs) {
    switch (c.configOperation) {
      case CONFIG_OPERATION.SET:
        if (c.value === null) {
          return refuse(ERROR_CODES.INVALID_REQUEST, `Config "${c.name}" is SET without a value`);
        }
        changes[c.name] = c.value;
        break;
      case CONFIG_OPERATION.DELETE:
        changes[c.name] = null;
        break;
      case CONFIG_OPERATION.APPEND:
      case CONFIG_OPERATION.SUBTRACT: {
        const info = TOPIC_CONFIG_INFO[c.name];
        if (!info) break; // Unknown keys are refused, by name, when the changes are applied.
        if (info.type !== CONFIG_TYPE.LIST) {
          return refuse(
            ERROR_CODES.INVALID_CONFIG,
            `Cannot ${OP_NAMES[c.configOperation]} to config "${c.name}": only list configs ` +
              `take APPEND and SUBTRACT; use SET`,
          );
        }
        topic ??= await broker.topic(resource.resourceName);
        if (!topic) {
          return refuse(
            ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION,
            `Topic "${resource.resourceName}" does not exist`,
          );
        }
        const current = broker.topicConfig(topic, c.name).split(",").filter((s) => s !== "");
        const items = (c.value ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
        const next = c.configOperation === CONFIG_OPERATION.APPEND
          ? [...current, ...items.filter((i) => !current.includes(i))]
          : current.filter((i) => !items.includes(i));
        changes[c.name] = next.join(",");
        break;
      }
      default:
        return refuse(
          ERROR_CODES.INVALID_REQUEST,
          `Unknown config operation ${c.configOperation} for "${c.name}"`,
        );
    }
  }
  // Unknown keys of APPEND/SUBTRACT still need naming in INVALID_CONFIG.
  for (const c of resource.configs) if (!(c.name in changes)) changes[c.name] = c.value;
  return { ok: true, changes };
}

export const INCREMENTAL_ALTER_CONFIGS_HANDLER = defineHandler<
  IncrementalAlterConfigsRequest,
  IncrementalAlterConfigsResponse
>({
  apiKey: 44,
  name: "IncrementalAlterConfigs",
  minVersion: 0,
  maxVersion: 1,
  request: INCREMENTAL_ALTER_CONFIGS_REQUEST,
  response: INCREMENTAL_ALTER_CONFIGS_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const dups = duplicateResources(req.resources);
    const responses: AlterConfigsResourceResponse[] = [];
    for (const resource of req.resources) {
      const outcome = await (async (): Promise<AlterOutcome> => {
        if (dups.has(`${resource.resourceType}/${resource.resourceName}`)) {
          return invalid(
            ERROR_CODES.INVALID_REQUEST,
            `Resource "${resource.resourceName}" appears more than once`,
          );
        }
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
          resource.configs.map((c) => c.name),
        );
        if (problem) return problem;
        try {
          const planned = await changesFor(broker, resource);
          if (!planned.ok) return planned.outcome;
          return await broker.alterTopicConfigs(resource.resourceName, planned.changes, {
            replace: false,
            validateOnly: req.validateOnly,
          });
        } catch (err) {
          return invalid(
            errorCodeFor(err, broker.logger, "IncrementalAlterConfigs"),
            "Metadata store unavailable; retry",
          );
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
