/**
 * KafScale for Deno as a library: the pieces `kafscale serve`, `topics` and
 * `groups` are built from, for embedding a broker or talking to one.
 *
 * This is the only barrel; everything else imports files directly.
 */
export { type NodeDeps, type RunningNode, startNode } from "./lib/cli/node.ts";
export {
  ConfigError,
  resolveServeConfig,
  SERVE_SETTINGS,
  type ServeConfig,
} from "./lib/cli/serve_config.ts";
export { main } from "./lib/cli/main.ts";
export { KafkaConnection, KafkaConnectionError } from "./lib/client/kafka_connection.ts";
export { AdminClient, AdminError } from "./lib/client/admin.ts";
// The gRPC control service (kafscale.control): its RPC table and a client.
export { CONTROL_METHODS } from "./lib/control/control_proto.ts";
export { GrpcClient as ControlClient } from "./lib/control/grpc_adapter.ts";
export { ControlError, GRPC_STATUS } from "./lib/control/control_error.ts";
export type { ObjectInfo, ObjectStore, PutOptions } from "./lib/storage/object_store.ts";
export { ObjectStoreError, PreconditionFailedError } from "./lib/storage/object_store.ts";
export { LocalObjectStore } from "./lib/storage/local_object_store.ts";
export { MemoryObjectStore } from "./lib/storage/memory_object_store.ts";
export { S3ObjectStore } from "./lib/storage/s3_object_store.ts";
export type { MetadataStore } from "./lib/metadata/metadata_store.ts";
export { MetadataStoreError } from "./lib/metadata/metadata_store.ts";
export { EmbeddedMetadataStore } from "./lib/metadata/embedded_metadata_store.ts";
export { MemoryMetadataStore } from "./lib/metadata/memory_metadata_store.ts";
export { EtcdMetadataStore } from "./lib/metadata/etcd_metadata_store.ts";
export { ClusterMetadata } from "./lib/metadata/cluster_metadata.ts";
export { API_SCHEMAS } from "./lib/protocol/generated/apis.ts";
export { ERROR_CODES } from "./lib/protocol/error_codes.ts";
export { decodeRecordBatches, encodeRecordBatch } from "./lib/protocol/records.ts";
export { ManualClock, SystemClock } from "./lib/util/clock.ts";
export { ConsoleLogger, silentLogger } from "./lib/util/logger.ts";
