/**
 * Settings of `kafscale serve`: one table drives the flags, the `KAFSCALE_*`
 * environment variables, the config file, `--help` and the README table.
 *
 * Precedence: flags, then environment, then config file, then defaults. Bad
 * values fail fast with a message naming the setting and where it came from.
 */

export type SettingKind = "string" | "int" | "bool" | "hostport";

export interface SettingSpec {
  /** Flag name without dashes; also the config-file key. */
  name: string;
  env: string;
  kind: SettingKind;
  default: string | number | boolean | null;
  help: string;
  min?: number;
  max?: number;
}

const MIB = 1024 * 1024;

export const SERVE_SETTINGS = [
  {
    name: "listen",
    env: "KAFSCALE_LISTEN",
    kind: "hostport",
    default: "0.0.0.0:9092",
    help: "Kafka listener HOST:PORT (port 0 picks a free port)",
  },
  {
    name: "advertised-listener",
    env: "KAFSCALE_ADVERTISED_LISTENER",
    kind: "hostport",
    default: null,
    help: "HOST:PORT clients are told to connect to (default: the listen address; " +
      '"localhost" when listening on all interfaces)',
  },
  {
    name: "listeners",
    env: "KAFSCALE_LISTENERS",
    kind: "string",
    default: null,
    help: "Named Kafka listeners, NAME://HOST:PORT,... (names PLAINTEXT, SSL, SASL_PLAINTEXT, " +
      "SASL_SSL, or mapped by --listener-security-protocol-map); replaces --listen",
  },
  {
    name: "advertised-listeners",
    env: "KAFSCALE_ADVERTISED_LISTENERS",
    kind: "string",
    default: null,
    help: "NAME://HOST:PORT,... clients are told per listener (default: each bound address; " +
      '"localhost" for all interfaces)',
  },
  {
    name: "listener-security-protocol-map",
    env: "KAFSCALE_LISTENER_SECURITY_PROTOCOL_MAP",
    kind: "string",
    default: null,
    help: "NAME:PROTOCOL,... for listener names other than the four protocols (e.g. " +
      "INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL)",
  },
  {
    name: "tls-cert-file",
    env: "KAFSCALE_TLS_CERT_FILE",
    kind: "string",
    default: null,
    help:
      "PEM certificate (chain) of SSL and SASL_SSL listeners (and of --http-tls, --control-tls); re-read on SIGHUP",
  },
  {
    name: "tls-key-file",
    env: "KAFSCALE_TLS_KEY_FILE",
    kind: "string",
    default: null,
    help: "PEM private key of --tls-cert-file; re-read on SIGHUP",
  },
  {
    name: "tls-client-ca-file",
    env: "KAFSCALE_TLS_CLIENT_CA_FILE",
    kind: "string",
    default: null,
    help: "PEM CA certificates that sign client certificates: on SSL listeners a client must " +
      'present one (mTLS) and is "User:<subject DN>"; re-read on SIGHUP',
  },
  {
    name: "sasl-enabled-mechanisms",
    env: "KAFSCALE_SASL_ENABLED_MECHANISMS",
    kind: "string",
    default: "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
    help: "SASL mechanisms of SASL_PLAINTEXT and SASL_SSL listeners (PLAIN checks the same " +
      "salted credentials as SCRAM)",
  },
  {
    name: "sasl-admin-user",
    env: "KAFSCALE_SASL_ADMIN_USER",
    kind: "string",
    default: null,
    help: "User whose SCRAM credentials are created at start when it has none (the first " +
      "admin); its password from --sasl-admin-password-file or KAFSCALE_SASL_ADMIN_PASSWORD",
  },
  {
    name: "super-users",
    env: "KAFSCALE_SUPER_USERS",
    kind: "string",
    default: null,
    help: "Principals that may manage SCRAM credentials, User:NAME;User:NAME (Kafka's " +
      "super.users); --sasl-admin-user is one",
  },
  {
    name: "authorizer",
    env: "KAFSCALE_AUTHORIZER",
    kind: "string",
    default: "none",
    help: 'ACL authorization: "acl" checks every request against the ACLs (CreateAcls, ' +
      'kafka-acls.sh; super users always pass); "none" allows every client',
  },
  {
    name: "allow-everyone-if-no-acl-found",
    env: "KAFSCALE_ALLOW_EVERYONE_IF_NO_ACL_FOUND",
    kind: "bool",
    default: false,
    help: "With --authorizer acl: allow a request on a resource that no ACL names (Kafka's " +
      "allow.everyone.if.no.acl.found)",
  },
  {
    name: "sasl-admin-password-file",
    env: "KAFSCALE_SASL_ADMIN_PASSWORD_FILE",
    kind: "string",
    default: null,
    help: "File holding the first admin's password (one line)",
  },
  {
    name: "sasl-max-receive-bytes",
    env: "KAFSCALE_SASL_MAX_RECEIVE_BYTES",
    kind: "int",
    default: 102_400,
    min: 1_024,
    max: 16 * 1024 * 1024,
    help: "Largest frame a connection may send before it has authenticated (Kafka's " +
      "sasl.server.max.receive.size)",
  },
  {
    name: "sasl-auth-timeout-ms",
    env: "KAFSCALE_SASL_AUTH_TIMEOUT_MS",
    kind: "int",
    default: 30_000,
    min: 100,
    max: 3_600_000,
    help: "A connection to a SASL listener that has not authenticated by then is closed",
  },
  {
    name: "connections-max-reauth-ms",
    env: "KAFSCALE_CONNECTIONS_MAX_REAUTH_MS",
    kind: "int",
    default: 0,
    min: 0,
    max: 86_400_000 * 365,
    help: "Session lifetime of a SASL login (KIP-368): clients re-authenticate before it ends; " +
      "0: sessions do not expire",
  },
  {
    name: "data-dir",
    env: "KAFSCALE_DATA_DIR",
    kind: "string",
    default: "./data",
    help: "Directory for segments and the embedded metadata store",
  },
  {
    name: "http-listen",
    env: "KAFSCALE_HTTP_LISTEN",
    kind: "hostport",
    default: "127.0.0.1:9093",
    help: "HTTP listener for /healthz, /readyz and /metrics",
  },
  {
    name: "control-listen",
    env: "KAFSCALE_CONTROL_LISTEN",
    kind: "hostport",
    default: "127.0.0.1:9094",
    help: "gRPC control listener (kafscale.control: status, drain, flush, metrics, assignments); " +
      "loopback unless set",
  },
  {
    name: "control-token",
    env: "KAFSCALE_CONTROL_TOKEN",
    kind: "string",
    default: null,
    help: 'Bearer token every control call must send ("authorization: Bearer <token>"); ' +
      "required when the control listener is not on loopback",
  },
  {
    name: "group-consumer-session-timeout-ms",
    env: "KAFSCALE_GROUP_CONSUMER_SESSION_TIMEOUT_MS",
    kind: "int",
    default: 45_000,
    min: 1_000,
    max: 3_600_000,
    help: "Consumer-protocol groups (KIP-848): a member without a heartbeat for this long is " +
      "removed (Kafka's group.consumer.session.timeout.ms)",
  },
  {
    name: "group-consumer-heartbeat-interval-ms",
    env: "KAFSCALE_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS",
    kind: "int",
    default: 5_000,
    min: 100,
    max: 600_000,
    help: "Consumer-protocol groups: how often members heartbeat (Kafka's " +
      "group.consumer.heartbeat.interval.ms)",
  },
  {
    name: "control-tls",
    env: "KAFSCALE_CONTROL_TLS",
    kind: "bool",
    default: false,
    help: 'Serve the control port over TLS with "--tls-cert-file"; with "--tls-client-ca-file", ' +
      "clients must also present a certificate it signed (then no token is needed off loopback)",
  },
  {
    name: "http-tls",
    env: "KAFSCALE_HTTP_TLS",
    kind: "bool",
    default: false,
    help: 'Serve the HTTP port (health, metrics, console) over HTTPS with "--tls-cert-file"',
  },
  {
    name: "http-token",
    env: "KAFSCALE_HTTP_TOKEN",
    kind: "string",
    default: null,
    help: 'Bearer token HTTP requests must send ("Authorization: Bearer <token>"), except to ' +
      '"--http-open-paths"; unset: every path is open',
  },
  {
    name: "http-open-paths",
    env: "KAFSCALE_HTTP_OPEN_PATHS",
    kind: "string",
    default: "/healthz,/readyz",
    help: 'Comma-separated paths served without "--http-token" (e.g. add /metrics for a ' +
      "Prometheus without credentials)",
  },
  {
    name: "broker-id",
    env: "KAFSCALE_BROKER_ID",
    kind: "int",
    default: 0,
    min: 0,
    max: 2147483647,
    help: "Node id of this broker",
  },
  {
    name: "namespace",
    env: "KAFSCALE_NAMESPACE",
    kind: "string",
    default: "default",
    help: "Object key prefix for this cluster's segments",
  },
  {
    name: "s3-bucket",
    env: "KAFSCALE_S3_BUCKET",
    kind: "string",
    default: null,
    help: "S3 bucket for segments (instead of --data-dir)",
  },
  {
    name: "s3-endpoint",
    env: "KAFSCALE_S3_ENDPOINT",
    kind: "string",
    default: null,
    help: "S3 endpoint URL",
  },
  {
    name: "s3-region",
    env: "KAFSCALE_S3_REGION",
    kind: "string",
    default: "us-east-1",
    help: "S3 region",
  },
  {
    name: "s3-path-style",
    env: "KAFSCALE_S3_PATH_STYLE",
    kind: "bool",
    default: false,
    help: "Use path-style S3 addressing",
  },
  {
    name: "s3-access-key",
    env: "KAFSCALE_S3_ACCESS_KEY",
    kind: "string",
    default: null,
    help: "S3 access key id (default: the AWS SDK chain: AWS_ACCESS_KEY_ID, AWS_PROFILE, " +
      "instance role)",
  },
  {
    name: "s3-secret-key",
    env: "KAFSCALE_S3_SECRET_KEY",
    kind: "string",
    default: null,
    help: 'S3 secret access key (with "--s3-access-key")',
  },
  {
    name: "s3-session-token",
    env: "KAFSCALE_S3_SESSION_TOKEN",
    kind: "string",
    default: null,
    help: 'S3 session token of temporary credentials (with "--s3-access-key")',
  },
  {
    name: "s3-kms-arn",
    env: "KAFSCALE_S3_KMS_ARN",
    kind: "string",
    default: null,
    help: "KMS key for SSE-KMS encryption of every segment (default: the bucket's encryption)",
  },
  {
    name: "s3-conditional-put",
    env: "KAFSCALE_S3_CONDITIONAL_PUT",
    kind: "string",
    default: "auto",
    help: 'Whether the store enforces "If-None-Match: *" on PUT: auto (probe at start), on or off',
  },
  {
    name: "s3-request-timeout-ms",
    env: "KAFSCALE_S3_REQUEST_TIMEOUT_MS",
    kind: "int",
    default: 5_000,
    min: 100,
    max: 600_000,
    help: "Bound on one S3 request attempt (up to 4 attempts with backoff)",
  },
  {
    name: "etcd-endpoints",
    env: "KAFSCALE_ETCD_ENDPOINTS",
    kind: "string",
    default: null,
    help: "Comma-separated etcd URLs (instead of the embedded metadata store)",
  },
  {
    name: "etcd-max-txn-ops",
    env: "KAFSCALE_ETCD_MAX_TXN_OPS",
    kind: "int",
    default: 128,
    min: 2,
    max: 100_000,
    help: "Operations etcd takes in one transaction (its --max-txn-ops, 128 by default); a " +
      "flush round touching more partitions commits in several transactions",
  },
  {
    name: "etcd-username",
    env: "KAFSCALE_ETCD_USERNAME",
    kind: "string",
    default: null,
    help: "etcd user (auth enabled)",
  },
  {
    name: "etcd-password",
    env: "KAFSCALE_ETCD_PASSWORD",
    kind: "string",
    default: null,
    help: 'etcd password (with "--etcd-username")',
  },
  {
    name: "etcd-ca-file",
    env: "KAFSCALE_ETCD_CA_FILE",
    kind: "string",
    default: null,
    help: "PEM CA bundle that signed etcd's certificate (https endpoints; default: system roots)",
  },
  {
    name: "etcd-cert-file",
    env: "KAFSCALE_ETCD_CERT_FILE",
    kind: "string",
    default: null,
    help: 'PEM client certificate for etcd mutual TLS (with "--etcd-key-file")',
  },
  {
    name: "etcd-key-file",
    env: "KAFSCALE_ETCD_KEY_FILE",
    kind: "string",
    default: null,
    help: 'PEM client key for etcd mutual TLS (with "--etcd-cert-file")',
  },
  {
    name: "segment-bytes",
    env: "KAFSCALE_SEGMENT_BYTES",
    kind: "int",
    default: 64 * MIB,
    min: 64 * 1024,
    max: 1024 * MIB,
    help: "Default segment.bytes of topics: unsealed data is sealed into a segment once a " +
      "partition has this much",
  },
  {
    name: "seal-max-age-ms",
    env: "KAFSCALE_SEAL_MAX_AGE_MS",
    kind: "int",
    default: 600_000,
    min: 100,
    max: 7 * 86_400_000,
    help: "Longest data stays in the write-ahead stream before it is sealed into a segment, " +
      "whatever the topic's segment.ms (bounds how long write-ahead objects are kept)",
  },
  {
    name: "segment-write-rate-min",
    env: "KAFSCALE_SEGMENT_WRITE_RATE_MIN",
    kind: "int",
    default: 64 * MIB,
    min: 0,
    max: 1024 * 1024 * MIB,
    help: "On a local directory, sealing and compaction write segments at max(this, 2 x the " +
      "produce rate) bytes per second, in small synced pieces, so the write-ahead fsync that " +
      "acks=all produces wait for is not queued behind them; 0 writes them at full speed",
  },
  {
    name: "compaction-buffer-bytes",
    env: "KAFSCALE_COMPACTION_BUFFER_BYTES",
    kind: "int",
    default: 32 * MIB,
    min: 64 * 1024,
    max: 4096 * MIB,
    help: "Memory for the key map of a compaction run (Kafka's log.cleaner.dedupe.buffer.size); " +
      "a partition with more distinct keys than fit is compacted in several passes",
  },
  {
    name: "flush-interval-ms",
    env: "KAFSCALE_FLUSH_INTERVAL_MS",
    kind: "int",
    default: null,
    min: 0,
    max: 60_000,
    help: "Longest time appended data waits before a flush round starts. Default 0 on a " +
      "local directory (a round starts as soon as none is in flight; data arriving meanwhile " +
      "joins the next one) and 250 on S3 (at most ~4 write-ahead PUTs per second)",
  },
  {
    name: "flush-bytes",
    env: "KAFSCALE_FLUSH_BYTES",
    kind: "int",
    default: null,
    min: 1024,
    max: 1024 * MIB,
    help: "Pending bytes that start a flush round at once (default 4 MiB on a local " +
      "directory, 16 MiB on S3, where each round is one PUT)",
  },
  {
    name: "cache-bytes",
    env: "KAFSCALE_CACHE_BYTES",
    kind: "int",
    default: null,
    min: 0,
    max: 64 * 1024 * MIB,
    help: "Memory for recently written and read log data. Default 64 MiB on a local " +
      "directory (the page cache keeps the files; this holds what was just written, for " +
      "consumers at the head) and 256 MiB on S3 (every miss is a GET)",
  },
  {
    name: "max-frame-bytes",
    env: "KAFSCALE_MAX_FRAME_BYTES",
    kind: "int",
    default: 100 * MIB,
    min: 1024,
    max: 1024 * MIB,
    help: "Largest request frame; larger ones close the connection",
  },
  {
    name: "queued-max-request-bytes",
    env: "KAFSCALE_QUEUED_MAX_REQUEST_BYTES",
    kind: "int",
    default: 256 * MIB,
    min: 1024,
    max: 64 * 1024 * MIB,
    help: "Bound on the bytes of requests being read or queued, across all connections " +
      "(Kafka's queued.max.request.bytes); at the bound, the broker stops reading requests " +
      'until some are handled. At least "--max-frame-bytes"',
  },
  {
    name: "max-connections",
    env: "KAFSCALE_MAX_CONNECTIONS",
    kind: "int",
    default: 10_000,
    min: 1,
    max: 1_000_000,
    help: "Concurrent client connections",
  },
  {
    name: "fetch-session-cache-slots",
    env: "KAFSCALE_FETCH_SESSION_CACHE_SLOTS",
    kind: "int",
    default: 1_000,
    min: 0,
    max: 1_000_000,
    help: "Incremental fetch sessions kept (KIP-227, Kafka's " +
      "max.incremental.fetch.session.cache.slots); 0 turns them off (full fetches only)",
  },
  {
    name: "fetch-max-bytes",
    env: "KAFSCALE_FETCH_MAX_BYTES",
    kind: "int",
    default: 16 * MIB,
    min: 1024,
    max: 0x7fff_ffff,
    help: "Most record bytes one Fetch response carries, whatever the request asks (Kafka's " +
      "broker fetch.max.bytes, default 55 MiB there); the first batch is sent whatever its size",
  },
  {
    name: "message-max-bytes",
    env: "KAFSCALE_MESSAGE_MAX_BYTES",
    kind: "int",
    default: 1_048_588,
    min: 1024,
    max: 1024 * MIB,
    help: "Default max.message.bytes (largest record batch) for topics",
  },
  {
    name: "auto-create-topics",
    env: "KAFSCALE_AUTO_CREATE_TOPICS",
    kind: "bool",
    default: true,
    help: "Create unknown topics on Metadata/Produce requests that allow it",
  },
  {
    name: "default-partitions",
    env: "KAFSCALE_DEFAULT_PARTITIONS",
    kind: "int",
    default: 1,
    min: 1,
    max: 100_000,
    help: "Partitions of auto-created topics and of CreateTopics with -1",
  },
  {
    name: "producer-id-expiration-ms",
    env: "KAFSCALE_PRODUCER_ID_EXPIRATION_MS",
    kind: "int",
    default: 86_400_000,
    min: 1_000,
    max: 365 * 86_400_000,
    help: "How long a partition remembers an idle idempotent producer's sequence numbers " +
      "(Kafka's producer.id.expiration.ms); after that it must restart at sequence 0",
  },
  {
    name: "transaction-max-timeout-ms",
    env: "KAFSCALE_TRANSACTION_MAX_TIMEOUT_MS",
    kind: "int",
    default: 900_000,
    min: 1_000,
    max: 86_400_000,
    help: "Longest transaction.timeout.ms a transactional producer may ask for (Kafka's " +
      "transaction.max.timeout.ms); longer gets INVALID_TRANSACTION_TIMEOUT",
  },
  {
    name: "transactional-id-expiration-ms",
    env: "KAFSCALE_TRANSACTIONAL_ID_EXPIRATION_MS",
    kind: "int",
    default: 604_800_000,
    min: 1_000,
    max: 365 * 86_400_000,
    help: "Idle time after which a transactional id with no open transaction is forgotten " +
      "(Kafka's transactional.id.expiration.ms)",
  },
  {
    name: "transaction-version",
    env: "KAFSCALE_TRANSACTION_VERSION",
    kind: "int",
    default: 2,
    min: 1,
    max: 2,
    help: "The transaction.version feature the broker finalizes: 2 lets Kafka 4.x clients use " +
      "transactions V2 (KIP-890: a new epoch per transaction, partitions added by Produce), 1 " +
      "keeps every client on V1",
  },
  {
    name: "transaction-check-interval-ms",
    env: "KAFSCALE_TRANSACTION_CHECK_INTERVAL_MS",
    kind: "int",
    default: 2_000,
    min: 10,
    max: 600_000,
    help: "How often the transaction coordinator aborts timed-out transactions and finishes " +
      "decided ones whose markers are not all written (Kafka's " +
      "transaction.abort.timed.out.transaction.cleanup.interval.ms)",
  },
  {
    name: "retention-check-interval-ms",
    env: "KAFSCALE_RETENTION_CHECK_INTERVAL_MS",
    kind: "int",
    default: 300_000,
    min: 100,
    max: 86_400_000,
    help: "How often retention.ms / retention.bytes are enforced (Kafka's " +
      "log.retention.check.interval.ms)",
  },
  {
    name: "group-initial-rebalance-delay-ms",
    env: "KAFSCALE_GROUP_INITIAL_REBALANCE_DELAY_MS",
    kind: "int",
    default: 3_000,
    min: 0,
    max: 300_000,
    help: "How long the first rebalance of an empty group waits for more members",
  },
  {
    name: "group-min-session-timeout-ms",
    env: "KAFSCALE_GROUP_MIN_SESSION_TIMEOUT_MS",
    kind: "int",
    default: 6_000,
    min: 1,
    max: 3_600_000,
    help: "Smallest session timeout a consumer may ask for",
  },
  {
    name: "group-max-session-timeout-ms",
    env: "KAFSCALE_GROUP_MAX_SESSION_TIMEOUT_MS",
    kind: "int",
    default: 1_800_000,
    min: 1,
    max: 3_600_000,
    help: "Largest session timeout a consumer may ask for",
  },
  {
    name: "shutdown-timeout-ms",
    env: "KAFSCALE_SHUTDOWN_TIMEOUT_MS",
    kind: "int",
    default: 10_000,
    min: 0,
    max: 600_000,
    help: "How long a graceful stop waits for in-flight requests",
  },
  {
    name: "log-level",
    env: "KAFSCALE_LOG_LEVEL",
    kind: "string",
    default: "info",
    help: "debug, info, warn or error",
  },
  {
    name: "log-format",
    env: "KAFSCALE_LOG_FORMAT",
    kind: "string",
    default: null,
    help: "text (one line per event: time, level, message, key=value fields), json (one JSON " +
      "object per line) or journald (text without the time, with syslog priorities). Default: " +
      "journald when systemd's journal reads the output (JOURNAL_STREAM is set), else text",
  },
] as const satisfies readonly SettingSpec[];

type SettingName = (typeof SERVE_SETTINGS)[number]["name"];

export interface HostPort {
  host: string;
  port: number;
}

export interface ServeConfig {
  listen: HostPort;
  advertisedListener: HostPort | null;
  /** Resolved listeners: `--listeners`, else one PLAINTEXT listener on `--listen`. */
  kafkaListeners: ListenerSpec[];
  tlsCertFile: string | null;
  tlsKeyFile: string | null;
  tlsClientCaFile: string | null;
  saslEnabledMechanisms: string;
  saslAdminUser: string | null;
  saslAdminPasswordFile: string | null;
  superUsers: string | null;
  authorizer: string;
  allowEveryoneIfNoAclFound: boolean;
  saslMaxReceiveBytes: number;
  saslAuthTimeoutMs: number;
  connectionsMaxReauthMs: number;
  dataDir: string;
  httpListen: HostPort;
  controlListen: HostPort;
  controlToken: string | null;
  brokerId: number;
  namespace: string;
  s3Bucket: string | null;
  s3Endpoint: string | null;
  s3Region: string;
  s3PathStyle: boolean;
  s3AccessKey: string | null;
  s3SecretKey: string | null;
  s3SessionToken: string | null;
  s3KmsArn: string | null;
  s3ConditionalPut: "auto" | "on" | "off";
  s3RequestTimeoutMs: number;
  etcdEndpoints: string[];
  etcdUsername: string | null;
  etcdPassword: string | null;
  etcdCaFile: string | null;
  etcdCertFile: string | null;
  etcdKeyFile: string | null;
  segmentBytes: number;
  flushIntervalMs: number;
  flushBytes: number;
  sealMaxAgeMs: number;
  segmentWriteRateMin: number;
  compactionBufferBytes: number;
  etcdMaxTxnOps: number;
  cacheBytes: number;
  maxFrameBytes: number;
  queuedMaxRequestBytes: number;
  maxConnections: number;
  fetchSessionCacheSlots: number;
  fetchMaxBytes: number;
  controlTls: boolean;
  groupConsumerSessionTimeoutMs: number;
  groupConsumerHeartbeatIntervalMs: number;
  httpTls: boolean;
  httpToken: string | null;
  httpOpenPaths: string;
  messageMaxBytes: number;
  autoCreateTopics: boolean;
  defaultPartitions: number;
  producerIdExpirationMs: number;
  transactionMaxTimeoutMs: number;
  transactionalIdExpirationMs: number;
  transactionVersion: number;
  transactionCheckIntervalMs: number;
  shutdownTimeoutMs: number;
  retentionCheckIntervalMs: number;
  groupInitialRebalanceDelayMs: number;
  groupMinSessionTimeoutMs: number;
  groupMaxSessionTimeoutMs: number;
  logLevel: "debug" | "info" | "warn" | "error";
  logFormat: "text" | "json" | "journald";
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Where a raw value came from, for error messages. */
type Source = { value: string; where: string };

function camel(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export const SECURITY_PROTOCOLS = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] as const;
export type SecurityProtocol = (typeof SECURITY_PROTOCOLS)[number];

/** One Kafka listener: its name, security protocol, bind address and advertised address. */
export interface ListenerSpec {
  name: string;
  protocol: SecurityProtocol;
  bind: HostPort;
  /** Null: derived from the bound address (see `advertisedAddress`). */
  advertised: HostPort | null;
}

function parseListenerList(text: string, where: string): Map<string, HostPort> {
  const out = new Map<string, HostPort>();
  for (const item of text.split(",").map((x) => x.trim()).filter((x) => x !== "")) {
    const m = /^([A-Za-z0-9_]+):\/\/(.*)$/.exec(item);
    if (!m) throw new ConfigError(`${where} entries must be NAME://HOST:PORT, got "${item}"`);
    const name = m[1].toUpperCase();
    if (out.has(name)) throw new ConfigError(`${where} names listener "${name}" twice`);
    out.set(name, parseHostPort(m[2], `${where} "${name}"`));
  }
  return out;
}

/** The listeners of `--listeners` (or `--listen` as one PLAINTEXT listener). */
export function resolveListeners(
  listeners: string | null,
  advertisedListeners: string | null,
  protocolMap: string | null,
  listen: HostPort,
  advertisedListener: HostPort | null,
): ListenerSpec[] {
  const map = new Map<string, SecurityProtocol>(SECURITY_PROTOCOLS.map((p) => [p, p]));
  for (const item of (protocolMap ?? "").split(",").map((x) => x.trim()).filter((x) => x)) {
    const [name, protocol] = item.split(":").map((x) => x.trim().toUpperCase());
    if (!name || !(SECURITY_PROTOCOLS as readonly string[]).includes(protocol ?? "")) {
      throw new ConfigError(
        `"--listener-security-protocol-map" entries must be NAME:PROTOCOL with PROTOCOL one of ` +
          `${SECURITY_PROTOCOLS.join(", ")}, got "${item}"`,
      );
    }
    map.set(name, protocol as SecurityProtocol);
  }
  if (listeners === null) {
    if (advertisedListeners !== null) {
      throw new ConfigError('"--advertised-listeners" needs "--listeners"');
    }
    return [{
      name: "PLAINTEXT",
      protocol: "PLAINTEXT",
      bind: listen,
      advertised: advertisedListener,
    }];
  }
  const bound = parseListenerList(listeners, '"--listeners"');
  if (bound.size === 0) throw new ConfigError('"--listeners" names no listener');
  const advertised = parseListenerList(advertisedListeners ?? "", '"--advertised-listeners"');
  for (const name of advertised.keys()) {
    if (!bound.has(name)) {
      throw new ConfigError(
        `"--advertised-listeners" names "${name}", which "--listeners" does not`,
      );
    }
  }
  return [...bound].map(([name, bind]) => {
    const protocol = map.get(name);
    if (!protocol) {
      throw new ConfigError(
        `Listener "${name}" has no security protocol: name it PLAINTEXT, SSL, SASL_PLAINTEXT or ` +
          `SASL_SSL, or map it with "--listener-security-protocol-map"`,
      );
    }
    return { name, protocol, bind, advertised: advertised.get(name) ?? null };
  });
}

export function parseHostPort(text: string, where: string): HostPort {
  const m = /^(\[[^\]]+\]|[^:]*):(\d{1,5})$/.exec(text.trim());
  if (!m) throw new ConfigError(`${where} must be HOST:PORT, got "${text}"`);
  const port = Number(m[2]);
  if (port > 65535) throw new ConfigError(`${where} has a port above 65535: "${text}"`);
  const host = m[1].startsWith("[") ? m[1].slice(1, -1) : m[1];
  return { host: host === "" ? "0.0.0.0" : host, port };
}

/** Parses a config file: `key=value` lines (`#` comments) or a JSON object. */
export function parseConfigFile(text: string, path: string): Map<string, string> {
  const out = new Map<string, string>();
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    let obj: unknown;
    try {
      obj = JSON.parse(trimmed);
    } catch (err) {
      throw new ConfigError(`Config file "${path}" is not valid JSON: ${(err as Error).message}`);
    }
    for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
      out.set(k, Array.isArray(v) ? v.join(",") : String(v));
    }
    return out;
  }
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const eq = line.indexOf("=");
    if (eq <= 0) {
      throw new ConfigError(
        `Config file "${path}" line ${i + 1}: expected key=value, got "${line}"`,
      );
    }
    out.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1"));
  });
  return out;
}

/**
 * Resolves the configuration from parsed flags (name → raw string), the
 * environment and an optional config file's contents.
 */
export function resolveServeConfig(
  flags: Map<string, string>,
  env: Record<string, string | undefined>,
  file: { path: string; entries: Map<string, string> } | null,
): ServeConfig {
  const known = new Set<string>(SERVE_SETTINGS.map((s) => s.name));
  for (const key of file?.entries.keys() ?? []) {
    if (!known.has(key)) {
      throw new ConfigError(`Config file "${file!.path}" has an unknown setting "${key}"`);
    }
  }
  const values = new Map<SettingName, unknown>();
  for (const spec of SERVE_SETTINGS as readonly SettingSpec[]) {
    const source: Source | null = flags.has(spec.name)
      ? { value: flags.get(spec.name)!, where: `"--${spec.name}"` }
      : env[spec.env] !== undefined
      ? { value: env[spec.env]!, where: `"${spec.env}"` }
      : file?.entries.has(spec.name)
      ? { value: file.entries.get(spec.name)!, where: `"${spec.name}" in "${file.path}"` }
      : null;
    values.set(spec.name as SettingName, source ? convert(spec, source) : spec.default);
  }
  const cfg = Object.fromEntries(
    [...values].map(([k, v]) => [camel(k), v]),
  ) as Record<string, unknown>;
  cfg.etcdEndpoints = typeof cfg.etcdEndpoints === "string"
    ? (cfg.etcdEndpoints as string).split(",").map((s) => s.trim()).filter((s) => s !== "")
    : [];
  if (typeof cfg.listen === "string") cfg.listen = parseHostPort(cfg.listen, '"listen"');
  cfg.kafkaListeners = resolveListeners(
    cfg.listeners as string | null,
    cfg.advertisedListeners as string | null,
    cfg.listenerSecurityProtocolMap as string | null,
    cfg.listen as HostPort,
    cfg.advertisedListener as HostPort | null,
  );
  if (typeof cfg.httpListen === "string") {
    cfg.httpListen = parseHostPort(cfg.httpListen, '"http-listen"');
  }
  if (typeof cfg.controlListen === "string") {
    cfg.controlListen = parseHostPort(cfg.controlListen, '"control-listen"');
  }
  // Backend-dependent defaults: each round on S3 is one PUT, so rounds there are
  // spaced (WarpStream uses 250 ms, KafScale 500 ms) and larger.
  cfg.flushIntervalMs ??= cfg.s3Bucket ? S3_FLUSH_INTERVAL_MS : 0;
  cfg.flushBytes ??= cfg.s3Bucket ? 16 * MIB : 4 * MIB;
  cfg.cacheBytes ??= cfg.s3Bucket ? 256 * MIB : 64 * MIB;
  cfg.logFormat ??= env.JOURNAL_STREAM ? "journald" : "text";
  const config = cfg as unknown as ServeConfig;
  validate(config);
  return config;
}

/** Default flush window on S3. */
export const S3_FLUSH_INTERVAL_MS = 250;

function convert(spec: SettingSpec, { value, where }: Source): unknown {
  switch (spec.kind) {
    case "string":
      if (value.trim() === "") throw new ConfigError(`${where} must not be empty`);
      return value.trim();
    case "hostport":
      return parseHostPort(value, where);
    case "bool": {
      const v = value.trim().toLowerCase();
      if (["true", "1", "yes", "on", ""].includes(v)) return true;
      if (["false", "0", "no", "off"].includes(v)) return false;
      throw new ConfigError(`${where} must be true or false, got "${value}"`);
    }
    case "int": {
      const v = value.trim();
      if (!/^-?\d+$/.test(v)) throw new ConfigError(`${where} must be an integer, got "${value}"`);
      const n = Number(v);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new ConfigError(
          `${where} must be between ${spec.min} and ${spec.max}, got "${value}"`,
        );
      }
      return n;
    }
  }
}

function validate(cfg: ServeConfig): void {
  validateSecurity(cfg);
  if (!["text", "json", "journald"].includes(cfg.logFormat)) {
    throw new ConfigError(`"log-format" must be text, json or journald, got "${cfg.logFormat}"`);
  }
  if (!["debug", "info", "warn", "error"].includes(cfg.logLevel)) {
    throw new ConfigError(`"log-level" must be debug, info, warn or error, got "${cfg.logLevel}"`);
  }
  if (!/^[A-Za-z0-9._-]+$/.test(cfg.namespace)) {
    throw new ConfigError(
      `"namespace" may only contain letters, digits, ".", "_" and "-", got "${cfg.namespace}"`,
    );
  }
  if (cfg.queuedMaxRequestBytes < cfg.maxFrameBytes) {
    throw new ConfigError(
      `"queued-max-request-bytes" (${cfg.queuedMaxRequestBytes}) must be at least ` +
        `"max-frame-bytes" (${cfg.maxFrameBytes}), or a largest frame could never be read`,
    );
  }
  validateS3(cfg);
  validateEtcd(cfg);
  validateControl(cfg);
}

/** Whether `host` names this machine's loopback interface only. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function validateSecurity(cfg: ServeConfig): void {
  if (cfg.authorizer !== "acl" && cfg.authorizer !== "none") {
    throw new ConfigError(`"authorizer" must be acl or none, got "${cfg.authorizer}"`);
  }
  const tls = cfg.kafkaListeners.filter((l) => l.protocol === "SSL" || l.protocol === "SASL_SSL");
  if (tls.length > 0 && (cfg.tlsCertFile === null || cfg.tlsKeyFile === null)) {
    throw new ConfigError(
      `Listener "${tls[0].name}" is ${tls[0].protocol}: set "--tls-cert-file" and "--tls-key-file"`,
    );
  }
  if ((cfg.tlsCertFile === null) !== (cfg.tlsKeyFile === null)) {
    throw new ConfigError('"tls-cert-file" and "tls-key-file" must be set together');
  }
  const known = new Set(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
  const mechanisms = cfg.saslEnabledMechanisms.split(",").map((m) => m.trim()).filter((m) => m);
  for (const m of mechanisms) {
    if (!known.has(m)) {
      throw new ConfigError(
        `"sasl-enabled-mechanisms" has "${m}"; use PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512`,
      );
    }
  }
  const sasl = cfg.kafkaListeners.some((l) => l.protocol.startsWith("SASL_"));
  if (sasl && mechanisms.length === 0) {
    throw new ConfigError('"sasl-enabled-mechanisms" is empty but a listener uses SASL');
  }
}

function validateControl(cfg: ServeConfig): void {
  const tlsFiles = cfg.tlsCertFile !== null && cfg.tlsKeyFile !== null;
  for (const [name, on] of [["control-tls", cfg.controlTls], ["http-tls", cfg.httpTls]] as const) {
    if (on && !tlsFiles) {
      throw new ConfigError(`"${name}" is on: set "--tls-cert-file" and "--tls-key-file"`);
    }
  }
  // Drain and flush are operator actions: reachable from other hosts only with a token or a
  // client certificate.
  const mtls = cfg.controlTls && cfg.tlsClientCaFile !== null;
  if (!isLoopbackHost(cfg.controlListen.host) && cfg.controlToken === null && !mtls) {
    throw new ConfigError(
      `"control-listen" is "${cfg.controlListen.host}:${cfg.controlListen.port}", not loopback, ` +
        'but "control-token" is not set; set "--control-token" (or KAFSCALE_CONTROL_TOKEN), or ' +
        'require client certificates ("--control-tls" with "--tls-client-ca-file")',
    );
  }
}

/** An http(s) URL, or null. */
function httpUrl(text: string): URL | null {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url : null;
  } catch {
    return null;
  }
}

function validateS3(cfg: ServeConfig): void {
  if (cfg.s3Endpoint !== null && httpUrl(cfg.s3Endpoint) === null) {
    throw new ConfigError(
      `"s3-endpoint" must be an http:// or https:// URL, got "${cfg.s3Endpoint}"`,
    );
  }
  if (!["auto", "on", "off"].includes(cfg.s3ConditionalPut)) {
    throw new ConfigError(
      `"s3-conditional-put" must be auto, on or off, got "${cfg.s3ConditionalPut}"`,
    );
  }
  if (cfg.s3Bucket === null) {
    const stray = (
      [
        ["s3-endpoint", cfg.s3Endpoint !== null],
        ["s3-path-style", cfg.s3PathStyle],
        ["s3-access-key", cfg.s3AccessKey !== null],
        ["s3-secret-key", cfg.s3SecretKey !== null],
        ["s3-session-token", cfg.s3SessionToken !== null],
        ["s3-kms-arn", cfg.s3KmsArn !== null],
      ] as const
    ).find(([, set]) => set);
    if (stray) {
      throw new ConfigError(
        `"${stray[0]}" is set but "s3-bucket" is not; set "--s3-bucket" to keep segments in S3`,
      );
    }
  }
  if ((cfg.s3AccessKey === null) !== (cfg.s3SecretKey === null)) {
    const [set, missing] = cfg.s3AccessKey === null
      ? ["s3-secret-key", "s3-access-key"]
      : ["s3-access-key", "s3-secret-key"];
    throw new ConfigError(`"${set}" is set but "${missing}" is not; set both or neither`);
  }
  if (cfg.s3SessionToken !== null && cfg.s3AccessKey === null) {
    throw new ConfigError(
      '"s3-session-token" is set but "s3-access-key" and "s3-secret-key" are not',
    );
  }
}

function validateEtcd(cfg: ServeConfig): void {
  for (const endpoint of cfg.etcdEndpoints) {
    const url = httpUrl(endpoint);
    if (url === null || url.port === "") {
      throw new ConfigError(
        `"etcd-endpoints" entries must look like "http://127.0.0.1:2379", got "${endpoint}"`,
      );
    }
  }
  if (cfg.etcdEndpoints.length === 0) {
    const stray = (
      [
        ["etcd-username", cfg.etcdUsername],
        ["etcd-password", cfg.etcdPassword],
        ["etcd-ca-file", cfg.etcdCaFile],
        ["etcd-cert-file", cfg.etcdCertFile],
        ["etcd-key-file", cfg.etcdKeyFile],
      ] as const
    ).find(([, value]) => value !== null);
    if (stray) {
      throw new ConfigError(
        `"${stray[0]}" is set but "etcd-endpoints" is not; set "--etcd-endpoints" to use etcd`,
      );
    }
  }
  if (cfg.etcdPassword !== null && cfg.etcdUsername === null) {
    throw new ConfigError('"etcd-password" is set but "etcd-username" is not');
  }
  if ((cfg.etcdCertFile === null) !== (cfg.etcdKeyFile === null)) {
    throw new ConfigError('"etcd-cert-file" and "etcd-key-file" must be set together');
  }
}

/** The address clients of `listener` are told to use. */
export function listenerAdvertisedAddress(listener: ListenerSpec, boundPort: number): HostPort {
  if (listener.advertised) {
    return {
      host: listener.advertised.host,
      port: listener.advertised.port === 0 ? boundPort : listener.advertised.port,
    };
  }
  const wildcard = listener.bind.host === "0.0.0.0" || listener.bind.host === "::";
  return { host: wildcard ? "localhost" : listener.bind.host, port: boundPort };
}

/** The address clients are told to use. */
export function advertisedAddress(cfg: ServeConfig, boundPort: number): HostPort {
  if (cfg.advertisedListener) {
    return {
      host: cfg.advertisedListener.host,
      port: cfg.advertisedListener.port === 0 ? boundPort : cfg.advertisedListener.port,
    };
  }
  const wildcard = cfg.listen.host === "0.0.0.0" || cfg.listen.host === "::";
  return { host: wildcard ? "localhost" : cfg.listen.host, port: boundPort };
}
