/**
 * Topic-level configuration: every topic config Apache Kafka 4.x defines
 * (`LogConfig` of Kafka 4.4, the release Connect and Streams are tested
 * with), with Kafka's names, types, defaults, broker-level synonyms and
 * validation. Pure; shared by CreateTopics, the config APIs, produce and the
 * log.
 *
 * Each key says whether the broker acts on it (`use`): "acted" keys change
 * what the broker does, "stored" keys are accepted, stored and reported
 * exactly like Kafka but do not change anything yet (the README lists both,
 * generated from this table's `use` and `effect`). Unknown keys are refused
 * with INVALID_CONFIG naming the key, as Kafka does.
 */

/** Kafka's ConfigDef.Type names (DescribeConfigs reports them as ids). */
export type TopicConfigType = "BOOLEAN" | "STRING" | "INT" | "LONG" | "DOUBLE" | "LIST";

/** Whether the broker acts on a key or only stores and reports it. */
export type TopicConfigUse = "acted" | "stored";

export interface TopicConfigSpec {
  name: string;
  type: TopicConfigType;
  /** Broker-level default, as Kafka reports it. */
  defaultValue: (defaults: TopicDefaults) => string;
  validate: (value: string) => string | null;
  /** Whether AlterConfigs/IncrementalAlterConfigs may change it (every Kafka topic config may). */
  alterable: boolean;
  /** The broker config Kafka names as this key's default (DescribeConfigs synonyms), if any. */
  brokerSynonym: string | null;
  use: TopicConfigUse;
  /** What the broker does with the key (README and DescribeConfigs documentation). */
  effect: string;
  /**
   * A Kafka 3.x key that Kafka 4.0 removed: accepted and stored for tools written against
   * 3.x, reported only when set (a Kafka 4.x broker refuses it).
   */
  legacy?: boolean;
}

export interface TopicDefaults {
  messageMaxBytes: number;
  segmentBytes: number;
}

const INT_MAX = 2147483647n;
const INT_MIN = -2147483648n;
const LONG_MAX = 9223372036854775807n;
const LONG_MIN = -9223372036854775808n;
/** Java's Integer/Long.parseLong syntax, after Kafka's trim. */
const INTEGER = /^[+-]?\d+$/;
/** Java's Double.parseDouble syntax for finite decimals (NaN and hex floats left out). */
const DOUBLE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[dDfF]?$/;
const LONG_MAX_STRING = String(LONG_MAX);

type Validator = (value: string) => string | null;

/** Kafka's Range.atLeast / between for INT and LONG, on the exact (BigInt) value. */
function integer(type: "INT" | "LONG", min?: bigint, max?: bigint): Validator {
  const [lo, hi] = type === "INT" ? [INT_MIN, INT_MAX] : [LONG_MIN, LONG_MAX];
  return (raw) => {
    const v = raw.trim();
    if (!INTEGER.test(v)) return `must be an integer, got "${raw}"`;
    const n = BigInt(v);
    if (n < lo || n > hi) return `is not a number of type ${type}: "${raw}"`;
    if (min !== undefined && n < min) {
      return max === undefined
        ? `must be at least ${min}, got "${raw}"`
        : `must be between ${min} and ${max}, got "${raw}"`;
    }
    if (max !== undefined && n > max) return `must be between ${min} and ${max}, got "${raw}"`;
    return null;
  };
}

function double(min: number, max: number): Validator {
  return (raw) => {
    const v = raw.trim();
    if (!DOUBLE.test(v)) return `must be a number, got "${raw}"`;
    const n = Number(v.replace(/[dDfF]$/, ""));
    return n < min || n > max ? `must be between ${min} and ${max}, got "${raw}"` : null;
  };
}

function boolean(raw: string): string | null {
  const v = raw.trim().toLowerCase();
  return v === "true" || v === "false" ? null : `must be true or false, got "${raw}"`;
}

function oneOf(...allowed: string[]): Validator {
  return (raw) =>
    allowed.includes(raw.trim()) ? null : `must be one of ${allowed.join(", ")}, got "${raw}"`;
}

/** Kafka's ThrottledReplicaListValidator: "*" or partitionId:brokerId pairs. */
function throttledReplicas(raw: string): string | null {
  const items = raw.split(",").map((s) => s.trim());
  if (raw.trim() === "" || (items.length === 1 && items[0] === "*")) return null;
  return items.every((i) => /^\d+:\d+$/.test(i))
    ? null
    : `must be "*" or a list of partitionId:brokerId pairs, got "${raw}"`;
}

/** `cleanup.policy`: a list of "delete" and "compact" (Kafka 4.x also takes an empty list). */
function cleanupPolicyProblem(raw: string): string | null {
  if (raw.trim() === "") return null;
  for (const item of raw.split(",").map((s) => s.trim())) {
    if (item === "") return `must not contain empty values, got "${raw}"`;
    if (item !== "delete" && item !== "compact") {
      return `must be a list of "delete" and "compact", got "${raw}"`;
    }
  }
  return null;
}

/**
 * `remote.storage.enable`: Kafka refuses true unless the broker runs tiered storage
 * (`remote.log.storage.system.enable`), which this broker has no notion of: its whole log
 * already lives in the object store.
 */
function remoteStorageProblem(raw: string): string | null {
  const problem = boolean(raw);
  if (problem) return problem;
  return raw.trim().toLowerCase() === "true"
    ? "cannot be true: tiered storage is not enabled on this broker (the whole log already " +
      "lives in the object store)"
    : null;
}

const always = (value: string) => () => value;

/** Shorthand for the many keys that are only stored. */
function stored(
  name: string,
  type: TopicConfigType,
  defaultValue: string,
  validate: Validator,
  brokerSynonym: string | null,
  effect: string,
): TopicConfigSpec {
  return {
    name,
    type,
    defaultValue: always(defaultValue),
    validate,
    alterable: true,
    brokerSynonym,
    use: "stored",
    effect,
  };
}

/** A config the broker acts on, with the default and validation of `stored`. */
function acted(...args: Parameters<typeof stored>): TopicConfigSpec {
  return { ...stored(...args), use: "acted" };
}

const NO_REPLICAS = "Stored only: there are no replicas (the object store provides durability).";
const NO_TIERING = "Stored only: there is no local tier; the whole log lives in the object store.";
const NO_LOCAL_FILES = "Stored only: the broker keeps no local log files.";

/** In Kafka's LogConfig order. */
export const TOPIC_CONFIGS: readonly TopicConfigSpec[] = [
  {
    name: "segment.bytes",
    type: "INT",
    defaultValue: (d) => String(d.segmentBytes),
    // Kafka 4.x refuses less than 1 MiB; this broker keeps Kafka 3.x's bound of 14 bytes
    // (smaller segments are useful in tests).
    validate: integer("INT", 14n),
    alterable: true,
    brokerSynonym: "log.segment.bytes",
    use: "acted",
    effect: "A partition's unsealed data is sealed into a segment once it holds this much " +
      "(a segment ends at a flush round, so it can be bigger).",
  },
  {
    name: "segment.ms",
    type: "LONG",
    defaultValue: always("604800000"),
    validate: integer("LONG", 1n),
    alterable: true,
    brokerSynonym: "log.roll.ms",
    use: "acted",
    effect: "Unsealed data older than this is sealed into a segment (and at most " +
      '"--seal-max-age-ms" old, 10 minutes by default, whatever this says).',
  },
  stored(
    "segment.jitter.ms",
    "LONG",
    "0",
    integer("LONG", 0n),
    "log.roll.jitter.ms",
    "Stored only.",
  ),
  stored(
    "segment.index.bytes",
    "INT",
    "10485760",
    integer("INT", 4n),
    "log.index.size.max.bytes",
    "Stored only: the sparse segment index has its own format.",
  ),
  stored(
    "flush.messages",
    "LONG",
    LONG_MAX_STRING,
    integer("LONG", 1n),
    "log.flush.interval.messages",
    "Stored only: every acknowledged produce is already durable in the object store.",
  ),
  stored(
    "flush.ms",
    "LONG",
    LONG_MAX_STRING,
    integer("LONG", 0n),
    "log.flush.interval.ms",
    "Stored only: every acknowledged produce is already durable in the object store.",
  ),
  {
    name: "retention.bytes",
    type: "LONG",
    defaultValue: always("-1"),
    validate: integer("LONG"),
    alterable: true,
    brokerSynonym: "log.retention.bytes",
    use: "acted",
    effect: "Largest size of a partition before its oldest segments are deleted; -1 means no " +
      'limit. Applies when "cleanup.policy" contains "delete".',
  },
  {
    name: "retention.ms",
    type: "LONG",
    defaultValue: always("604800000"),
    validate: integer("LONG", -1n),
    alterable: true,
    brokerSynonym: "log.retention.ms",
    use: "acted",
    effect: "How long a segment is kept after its newest record; -1 keeps it forever. Applies " +
      'when "cleanup.policy" contains "delete".',
  },
  {
    name: "max.message.bytes",
    type: "INT",
    defaultValue: (d) => String(d.messageMaxBytes),
    validate: integer("INT", 0n),
    alterable: true,
    brokerSynonym: "message.max.bytes",
    use: "acted",
    effect: "Largest record batch the broker accepts for this topic.",
  },
  stored(
    "max.decompressed.message.bytes",
    "INT",
    "2147483639",
    integer("INT", 1n, 2147483639n),
    "max.decompressed.message.bytes",
    "Stored only: the broker inflates batches only to check the keys of compacted topics, up " +
      "to 64 MiB per batch.",
  ),
  stored(
    "index.interval.bytes",
    "INT",
    "4096",
    integer("INT", 0n),
    "log.index.interval.bytes",
    "Stored only: the segment index has its own interval.",
  ),
  acted(
    "delete.retention.ms",
    "LONG",
    "86400000",
    integer("LONG", 0n),
    "log.cleaner.delete.retention.ms",
    "How long a tombstone (null value) stays after its segment was first compacted; then " +
      "compaction removes it.",
  ),
  acted(
    "min.compaction.lag.ms",
    "LONG",
    "0",
    integer("LONG", 0n),
    "log.cleaner.min.compaction.lag.ms",
    "Records younger than this (by batch timestamp) are never removed by compaction.",
  ),
  acted(
    "max.compaction.lag.ms",
    "LONG",
    LONG_MAX_STRING,
    integer("LONG", 1n),
    "log.cleaner.max.compaction.lag.ms",
    "Sealed data that waited this long is compacted whatever min.cleanable.dirty.ratio says.",
  ),
  stored(
    "file.delete.delay.ms",
    "LONG",
    "60000",
    integer("LONG", 0n),
    "log.segment.delete.delay.ms",
    NO_LOCAL_FILES,
  ),
  acted(
    "min.cleanable.dirty.ratio",
    "DOUBLE",
    "0.5",
    double(0, 1),
    "log.cleaner.min.cleanable.ratio",
    "A partition is compacted once this share of its sealed bytes was not compacted yet " +
      "(counted per segment).",
  ),
  {
    name: "cleanup.policy",
    type: "LIST",
    defaultValue: always("delete"),
    validate: cleanupPolicyProblem,
    alterable: true,
    brokerSynonym: "log.cleanup.policy",
    use: "acted",
    effect: '"delete": retention.ms and retention.bytes delete old segments. "compact": ' +
      "records without a key are refused (INVALID_RECORD), and the compactor keeps the latest " +
      "record per key in sealed segments (README, Compaction); retention does not apply. Both " +
      "(in either order) apply both.",
  },
  stored(
    "unclean.leader.election.enable",
    "BOOLEAN",
    "false",
    boolean,
    "unclean.leader.election.enable",
    NO_REPLICAS,
  ),
  stored("min.insync.replicas", "INT", "1", integer("INT", 1n), "min.insync.replicas", NO_REPLICAS),
  stored(
    "compression.type",
    "STRING",
    "producer",
    oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
    "compression.type",
    "Stored only: batches are always stored as the producer compressed them (as with " +
      '"producer").',
  ),
  stored(
    "compression.gzip.level",
    "INT",
    "-1",
    (raw) => {
      const problem = integer("INT")(raw);
      if (problem) return problem;
      const n = Number(raw.trim());
      return n === -1 || (n >= 1 && n <= 9) ? null : `must be -1 or between 1 and 9, got "${raw}"`;
    },
    "compression.gzip.level",
    "Stored only: the broker does not recompress.",
  ),
  stored(
    "compression.lz4.level",
    "INT",
    "9",
    integer("INT", 1n, 17n),
    "compression.lz4.level",
    "Stored only: the broker does not recompress.",
  ),
  stored(
    "compression.zstd.level",
    "INT",
    "3",
    integer("INT", -131072n, 22n),
    "compression.zstd.level",
    "Stored only: the broker does not recompress.",
  ),
  stored("preallocate", "BOOLEAN", "false", boolean, "log.preallocate", NO_LOCAL_FILES),
  {
    name: "message.timestamp.type",
    type: "STRING",
    defaultValue: always("CreateTime"),
    validate: oneOf("CreateTime", "LogAppendTime"),
    alterable: true,
    brokerSynonym: "log.message.timestamp.type",
    use: "acted",
    effect: "CreateTime keeps the producer's timestamps; LogAppendTime uses the broker's.",
  },
  stored(
    "message.timestamp.before.max.ms",
    "LONG",
    LONG_MAX_STRING,
    integer("LONG", 0n),
    "log.message.timestamp.before.max.ms",
    "Stored only: record timestamps are not checked against the broker's clock.",
  ),
  stored(
    "message.timestamp.after.max.ms",
    "LONG",
    "3600000",
    integer("LONG", 0n),
    "log.message.timestamp.after.max.ms",
    "Stored only: record timestamps are not checked against the broker's clock.",
  ),
  stored(
    "leader.replication.throttled.replicas",
    "LIST",
    "",
    throttledReplicas,
    null,
    NO_REPLICAS,
  ),
  stored(
    "follower.replication.throttled.replicas",
    "LIST",
    "",
    throttledReplicas,
    null,
    NO_REPLICAS,
  ),
  stored("remote.storage.enable", "BOOLEAN", "false", remoteStorageProblem, null, NO_TIERING),
  stored(
    "local.retention.ms",
    "LONG",
    "-2",
    integer("LONG", -2n),
    "log.local.retention.ms",
    NO_TIERING,
  ),
  stored(
    "local.retention.bytes",
    "LONG",
    "-2",
    integer("LONG", -2n),
    "log.local.retention.bytes",
    NO_TIERING,
  ),
  stored("remote.log.copy.disable", "BOOLEAN", "false", boolean, null, NO_TIERING),
  stored(
    "remote.copy.lag.ms",
    "LONG",
    "0",
    integer("LONG", -1n),
    "log.remote.copy.lag.ms",
    NO_TIERING,
  ),
  stored(
    "remote.copy.lag.bytes",
    "LONG",
    "-1",
    integer("LONG", -1n),
    "log.remote.copy.lag.bytes",
    NO_TIERING,
  ),
  stored("remote.log.delete.on.disable", "BOOLEAN", "false", boolean, null, NO_TIERING),
  stored(
    "errors.deadletterqueue.group.enable",
    "BOOLEAN",
    "false",
    boolean,
    null,
    "Stored only: share groups are not served.",
  ),
  // Kafka 3.x keys removed in 4.0 (KIP-724, KIP-937): tools written against 3.x still set them.
  {
    ...stored(
      "message.timestamp.difference.max.ms",
      "LONG",
      LONG_MAX_STRING,
      integer("LONG", 0n),
      "log.message.timestamp.difference.max.ms",
      "Stored only (Kafka 3.x; replaced by message.timestamp.before/after.max.ms in 4.0).",
    ),
    legacy: true,
  },
  {
    ...stored(
      "message.format.version",
      "STRING",
      "3.0-IV1",
      (raw) => raw.trim() === "" ? `must not be empty` : null,
      "log.message.format.version",
      "Stored only (Kafka 3.x; removed in 4.0): batches are always format v2.",
    ),
    legacy: true,
  },
  {
    ...stored(
      "message.downconversion.enable",
      "BOOLEAN",
      "true",
      boolean,
      "log.message.downconversion.enable",
      "Stored only (Kafka 3.x; removed in 4.0): Fetch below v4 is not served.",
    ),
    legacy: true,
  },
];

const BY_NAME = new Map(TOPIC_CONFIGS.map((c) => [c.name, c]));

/** The spec of a key, or undefined for a key Kafka does not define. */
export function topicConfigSpec(name: string): TopicConfigSpec | undefined {
  return BY_NAME.get(name);
}

/** The message INVALID_CONFIG carries for a key Kafka does not define. */
export function unknownTopicConfigMessage(key: string): string {
  return `Unknown topic config "${key}"`;
}

/** Returns an error message naming the key, or null when every entry is valid. */
export function validateTopicConfigs(configs: Record<string, string>): string | null {
  for (const [key, value] of Object.entries(configs)) {
    const spec = BY_NAME.get(key);
    if (!spec) return unknownTopicConfigMessage(key);
    const problem = spec.validate(value);
    if (problem) return `Topic config "${key}" ${problem}`;
  }
  // Kafka's LogConfig.validateValues: the lags must not conflict.
  const minLag = configs["min.compaction.lag.ms"];
  const maxLag = configs["max.compaction.lag.ms"];
  if (minLag !== undefined && maxLag !== undefined && BigInt(minLag) > BigInt(maxLag)) {
    return `Topic config "min.compaction.lag.ms" (${minLag.trim()}) must not be greater than ` +
      `"max.compaction.lag.ms" (${maxLag.trim()})`;
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

/**
 * The keys DescribeConfigs and CreateTopics report for a topic: every Kafka 4.x key, plus a
 * legacy 3.x key only when the topic sets it.
 */
export function reportedTopicConfigs(configs: Record<string, string>): TopicConfigSpec[] {
  return TOPIC_CONFIGS.filter((spec) => !spec.legacy || configs[spec.name] !== undefined);
}

export interface CleanupPolicy {
  delete: boolean;
  compact: boolean;
}

/** The effective `cleanup.policy` of a topic's overrides. */
export function cleanupPolicy(configs: Record<string, string>): CleanupPolicy {
  const items = (configs["cleanup.policy"] ?? "delete").split(",").map((s) => s.trim());
  return { delete: items.includes("delete"), compact: items.includes("compact") };
}

/**
 * Retention limits as the retention task applies them: none unless `cleanup.policy` contains
 * "delete" (a compact-only topic such as Connect's offsets keeps its records however old).
 */
export function retentionLimits(
  configs: Record<string, string>,
  defaults: TopicDefaults,
): { retentionMs: number; retentionBytes: number } {
  if (!cleanupPolicy(configs).delete) return { retentionMs: -1, retentionBytes: -1 };
  return {
    retentionMs: Number(topicConfigValue(configs, "retention.ms", defaults)),
    retentionBytes: Number(topicConfigValue(configs, "retention.bytes", defaults)),
  };
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
