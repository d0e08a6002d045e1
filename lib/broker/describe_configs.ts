/**
 * DescribeConfigs (32), versions 0-4: topic and broker resources. Every
 * entry carries its value, its source (v1+; `isDefault` in v0), the
 * read-only flag, synonyms when asked (v1+), and type and documentation
 * (v3+). Topic configs are every key of topic_config.ts; broker configs
 * are this broker's settings and are read-only (they come from `kafscale
 * serve` flags).
 */
import {
  DESCRIBE_CONFIGS_REQUEST,
  type DescribeConfigsRequest,
  type DescribeConfigsResource,
} from "../protocol/generated/describe_configs_request.ts";
import {
  DESCRIBE_CONFIGS_RESPONSE,
  type DescribeConfigsResourceResult,
  type DescribeConfigsResponse,
  type DescribeConfigsResult,
  type DescribeConfigsSynonym,
} from "../protocol/generated/describe_configs_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import type { TopicRecord } from "../metadata/cluster_metadata.ts";
import {
  reportedTopicConfigs,
  TOPIC_CONFIGS,
  topicConfigValue,
  topicNameProblem,
} from "./topic_config.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";
import { errorCodeFor } from "./errors.ts";
import type { Broker } from "./broker.ts";

/** Kafka's ConfigResource.Type ids. */
export const RESOURCE_TYPE = { TOPIC: 2, BROKER: 4, BROKER_LOGGER: 8 } as const;

/** Kafka's DescribeConfigsResponse.ConfigSource ids. */
export const CONFIG_SOURCE = {
  DYNAMIC_TOPIC_CONFIG: 1,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
} as const;

/** Kafka's DescribeConfigsResponse.ConfigType ids. */
export const CONFIG_TYPE = {
  BOOLEAN: 1,
  STRING: 2,
  INT: 3,
  LONG: 5,
  DOUBLE: 6,
  LIST: 7,
} as const;

interface TopicConfigInfo {
  type: number;
  /** The broker-level config Kafka names as this key's default (its synonym), if any. */
  brokerSynonym: string | null;
  documentation: string;
}

/** Display facts about each topic config, from the table of topic_config.ts. */
export const TOPIC_CONFIG_INFO: Readonly<Record<string, TopicConfigInfo>> = Object.fromEntries(
  TOPIC_CONFIGS.map((spec) => [spec.name, {
    type: CONFIG_TYPE[spec.type],
    brokerSynonym: spec.brokerSynonym,
    documentation: spec.effect,
  }]),
);

interface BrokerConfigEntry {
  name: string;
  value: string;
  source: number;
  type: number;
  documentation: string;
}

/** This broker's settings as Kafka broker configs; all read-only. */
export function brokerConfigEntries(broker: Broker): BrokerConfigEntry[] {
  const s = broker.settings;
  const defaults = broker.topicDefaults;
  const entries: BrokerConfigEntry[] = [
    {
      name: "node.id",
      value: String(s.nodeId),
      source: CONFIG_SOURCE.STATIC_BROKER_CONFIG,
      type: CONFIG_TYPE.INT,
      documentation: "This broker's id (--broker-id).",
    },
    {
      name: "broker.id",
      value: String(s.nodeId),
      source: CONFIG_SOURCE.STATIC_BROKER_CONFIG,
      type: CONFIG_TYPE.INT,
      documentation: "This broker's id (--broker-id).",
    },
    {
      name: "advertised.listeners",
      value: `PLAINTEXT://${s.host}:${s.port}`,
      source: CONFIG_SOURCE.STATIC_BROKER_CONFIG,
      type: CONFIG_TYPE.LIST,
      documentation: "The address clients are told to connect to (--advertised-listener).",
    },
    {
      name: "auto.create.topics.enable",
      value: String(s.autoCreateTopics),
      source: CONFIG_SOURCE.STATIC_BROKER_CONFIG,
      type: CONFIG_TYPE.BOOLEAN,
      documentation: "Whether Metadata and Produce create unknown topics.",
    },
    {
      name: "num.partitions",
      value: String(s.defaultPartitions),
      source: CONFIG_SOURCE.STATIC_BROKER_CONFIG,
      type: CONFIG_TYPE.INT,
      documentation: "Partitions of a topic created without a count.",
    },
    {
      name: "default.replication.factor",
      value: "1",
      source: CONFIG_SOURCE.DEFAULT_CONFIG,
      type: CONFIG_TYPE.INT,
      documentation: "Always 1: the object store provides durability.",
    },
  ];
  for (const spec of TOPIC_CONFIGS) {
    const info = TOPIC_CONFIG_INFO[spec.name];
    if (spec.legacy || info.brokerSynonym === null) continue;
    const dynamic = spec.name === "segment.bytes" || spec.name === "max.message.bytes";
    entries.push({
      name: info.brokerSynonym,
      value: topicConfigValue({}, spec.name, defaults),
      source: dynamic ? CONFIG_SOURCE.STATIC_BROKER_CONFIG : CONFIG_SOURCE.DEFAULT_CONFIG,
      type: info.type,
      documentation: `Default of the topic config "${spec.name}".`,
    });
  }
  return entries;
}

function topicEntries(
  broker: Broker,
  topic: TopicRecord,
  keys: Set<string> | null,
  req: DescribeConfigsRequest,
): DescribeConfigsResourceResult[] {
  const defaults = broker.topicDefaults;
  const specs = reportedTopicConfigs(topic.configs).filter((spec) => !keys || keys.has(spec.name));
  return specs.map((spec) => {
    const info = TOPIC_CONFIG_INFO[spec.name];
    const overridden = topic.configs[spec.name] !== undefined;
    const value = broker.topicConfig(topic, spec.name);
    const brokerDefault = topicConfigValue({}, spec.name, defaults);
    const synonyms: DescribeConfigsSynonym[] = [];
    if (req.includeSynonyms) {
      if (overridden) {
        synonyms.push({ name: spec.name, value, source: CONFIG_SOURCE.DYNAMIC_TOPIC_CONFIG });
      }
      if (info.brokerSynonym !== null) {
        synonyms.push({
          name: info.brokerSynonym,
          value: brokerDefault,
          source: CONFIG_SOURCE.DEFAULT_CONFIG,
        });
      }
    }
    return {
      name: spec.name,
      value,
      readOnly: !spec.alterable,
      isDefault: !overridden,
      configSource: overridden ? CONFIG_SOURCE.DYNAMIC_TOPIC_CONFIG : CONFIG_SOURCE.DEFAULT_CONFIG,
      isSensitive: false,
      synonyms,
      configType: info.type,
      documentation: req.includeDocumentation ? info.documentation : null,
    };
  });
}

function brokerEntries(
  broker: Broker,
  keys: Set<string> | null,
  req: DescribeConfigsRequest,
): DescribeConfigsResourceResult[] {
  return brokerConfigEntries(broker).filter((e) => !keys || keys.has(e.name)).map((e) => ({
    name: e.name,
    value: e.value,
    readOnly: true,
    isDefault: e.source === CONFIG_SOURCE.DEFAULT_CONFIG,
    configSource: e.source,
    isSensitive: false,
    synonyms: req.includeSynonyms ? [{ name: e.name, value: e.value, source: e.source }] : [],
    configType: e.type,
    documentation: req.includeDocumentation ? e.documentation : null,
  }));
}

async function describe(
  broker: Broker,
  resource: DescribeConfigsResource,
  req: DescribeConfigsRequest,
): Promise<DescribeConfigsResult> {
  const result: DescribeConfigsResult = {
    errorCode: ERROR_CODES.NONE,
    errorMessage: null,
    resourceType: resource.resourceType,
    resourceName: resource.resourceName,
    configs: [],
  };
  const fail = (code: number, message: string) => {
    result.errorCode = code;
    result.errorMessage = message;
    return result;
  };
  const keys = resource.configurationKeys ? new Set(resource.configurationKeys) : null;
  const name = resource.resourceName;
  switch (resource.resourceType) {
    case RESOURCE_TYPE.TOPIC: {
      const problem = topicNameProblem(name);
      if (problem) return fail(ERROR_CODES.INVALID_TOPIC_EXCEPTION, problem);
      const topic = await broker.topic(name);
      if (!topic) {
        return fail(ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION, `Topic "${name}" does not exist`);
      }
      result.configs = topicEntries(broker, topic, keys, req);
      return result;
    }
    case RESOURCE_TYPE.BROKER:
      // "" is the cluster-wide dynamic default: KafScale has none to report.
      if (name === "") return result;
      if (name !== String(broker.settings.nodeId)) {
        return fail(
          ERROR_CODES.INVALID_REQUEST,
          `Unexpected broker id, expected ${broker.settings.nodeId} but received "${name}"`,
        );
      }
      result.configs = brokerEntries(broker, keys, req);
      return result;
    default:
      return fail(
        ERROR_CODES.INVALID_REQUEST,
        `Unsupported resource type ${resource.resourceType}; describe topics (2) or brokers (4)`,
      );
  }
}

export const DESCRIBE_CONFIGS_HANDLER = defineHandler<
  DescribeConfigsRequest,
  DescribeConfigsResponse
>({
  apiKey: 32,
  name: "DescribeConfigs",
  minVersion: 0,
  maxVersion: 4,
  request: DESCRIBE_CONFIGS_REQUEST,
  response: DESCRIBE_CONFIGS_RESPONSE,
  async handle(req, ctx) {
    const broker = ctx.broker;
    const results = await Promise.all(req.resources.map(async (resource) => {
      // DESCRIBE_CONFIGS on the topic, or on the cluster for the broker (resource type 4).
      const onTopic = resource.resourceType === 2;
      if (
        !can(
          ctx,
          OP.DESCRIBE_CONFIGS,
          onTopic ? RT.TOPIC : RT.CLUSTER,
          onTopic ? resource.resourceName : "kafka-cluster",
        )
      ) {
        return {
          errorCode: onTopic
            ? ERROR_CODES.TOPIC_AUTHORIZATION_FAILED
            : ERROR_CODES.CLUSTER_AUTHORIZATION_FAILED,
          errorMessage: "Not authorized",
          resourceType: resource.resourceType,
          resourceName: resource.resourceName,
          configs: [],
        };
      }
      try {
        return await describe(broker, resource, req);
      } catch (err) {
        return {
          errorCode: errorCodeFor(err, broker.logger, "DescribeConfigs"),
          errorMessage: "Metadata store unavailable; retry",
          resourceType: resource.resourceType,
          resourceName: resource.resourceName,
          configs: [],
        };
      }
    }));
    return { throttleTimeMs: 0, results };
  },
});
