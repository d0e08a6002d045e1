/**
 * Topic-level configuration: the keys we honour, their defaults and
 * validation. Pure; shared by CreateTopics, the config APIs and the log.
 */

export interface TopicConfigSpec {
  name: string;
  /** Broker-level default, as Kafka reports it. */
  defaultValue: (defaults: TopicDefaults) => string;
  validate: (value: string) => string | null;
  /** Whether AlterConfigs/IncrementalAlterConfigs may change it. */
  alterable: boolean;
}

export interface TopicDefaults {
  messageMaxBytes: number;
  segmentBytes: number;
}

const LONG = /^-?\d+$/;

function intIn(min: number, max: number): (v: string) => string | null {
  return (v) => {
    if (!LONG.test(v)) return `must be an integer, got "${v}"`;
    const n = Number(v);
    return n < min || n > max ? `must be between ${min} and ${max}, got "${v}"` : null;
  };
}

export const TOPIC_CONFIGS: readonly TopicConfigSpec[] = [
  {
    name: "retention.ms",
    defaultValue: () => "604800000",
    validate: intIn(-1, Number.MAX_SAFE_INTEGER),
    alterable: true,
  },
  {
    name: "retention.bytes",
    defaultValue: () => "-1",
    validate: intIn(-1, Number.MAX_SAFE_INTEGER),
    alterable: true,
  },
  {
    name: "segment.bytes",
    defaultValue: (d) => String(d.segmentBytes),
    validate: intIn(14, 2147483647),
    alterable: true,
  },
  {
    name: "max.message.bytes",
    defaultValue: (d) => String(d.messageMaxBytes),
    validate: intIn(0, 2147483647),
    alterable: true,
  },
  {
    name: "message.timestamp.type",
    defaultValue: () => "CreateTime",
    validate: (v) =>
      v === "CreateTime" || v === "LogAppendTime"
        ? null
        : `must be CreateTime or LogAppendTime, got "${v}"`,
    alterable: true,
  },
  {
    name: "cleanup.policy",
    defaultValue: () => "delete",
    validate: (v) => v === "delete" ? null : `only "delete" is supported, got "${v}"`,
    alterable: true,
  },
];

const BY_NAME = new Map(TOPIC_CONFIGS.map((c) => [c.name, c]));

/** Returns an error message naming the key, or null when every entry is valid. */
export function validateTopicConfigs(configs: Record<string, string>): string | null {
  for (const [key, value] of Object.entries(configs)) {
    const spec = BY_NAME.get(key);
    if (!spec) return `Unsupported topic config "${key}"`;
    const problem = spec.validate(value);
    if (problem) return `Topic config "${key}" ${problem}`;
  }
  return null;
}

/** The effective value of a key: the override, else the default. */
export function topicConfigValue(
  configs: Record<string, string>,
  key: string,
  defaults: TopicDefaults,
): string {
  const override = configs[key];
  if (override !== undefined) return override;
  const spec = BY_NAME.get(key);
  if (!spec) throw new Error(`Unknown topic config "${key}"`);
  return spec.defaultValue(defaults);
}

/** Kafka's legal topic names: 1-249 chars of [a-zA-Z0-9._-], not "." or "..". */
export function topicNameProblem(name: string): string | null {
  if (name.length === 0) return "Topic name is empty";
  if (name === "." || name === "..") return `Topic name "${name}" is not allowed`;
  if (name.length > 249) return `Topic name is longer than 249 characters`;
  if (!/^[a-zA-Z0-9._-]+$/.test(name)) {
    return `Topic name "${name}" may only contain letters, digits, ".", "_" and "-"`;
  }
  return null;
}
