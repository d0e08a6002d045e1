/**
 * DescribeLogDirs (35), versions 0-4: what this broker stores for the
 * partitions it owns, which `kafka-log-dirs.sh`, the Admin client's
 * `describeLogDirs` and `kafscale topics describe` read. There are no
 * replicas on disks here; the two tiers of the log stand in for log
 * directories: `sealed` (KafScale-format segments, the bytes of their
 * objects) and `write-ahead` (record bytes committed but not sealed yet).
 * Partitions another broker owns, or that nobody has loaded since a start,
 * are not listed (as a Kafka broker lists only its own replicas).
 */
import {
  DESCRIBE_LOG_DIRS_REQUEST,
  type DescribeLogDirsRequest,
} from "../protocol/generated/describe_log_dirs_request.ts";
import {
  DESCRIBE_LOG_DIRS_RESPONSE,
  type DescribeLogDirsResponse,
  type DescribeLogDirsTopic,
} from "../protocol/generated/describe_log_dirs_response.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import type { PartitionLog } from "../log/partition_log.ts";
import { can } from "./authorizer.ts";
import { OPERATIONS as OP, RESOURCE_TYPES as RT } from "../security/acl.ts";
import { defineHandler } from "./handler.ts";

/** The log "directories" this broker reports: the two tiers of the log. */
export const LOG_DIR_SEALED = "sealed";
export const LOG_DIR_WRITE_AHEAD = "write-ahead";

export const DESCRIBE_LOG_DIRS_HANDLER = defineHandler<
  DescribeLogDirsRequest,
  DescribeLogDirsResponse
>({
  apiKey: 35,
  name: "DescribeLogDirs",
  minVersion: 0,
  maxVersion: 4,
  request: DESCRIBE_LOG_DIRS_REQUEST,
  response: DESCRIBE_LOG_DIRS_RESPONSE,
  handle(req, ctx) {
    const wanted = req.topics === null
      ? null
      : new Map(req.topics.map((t) => [t.topic, new Set(t.partitions)]));
    const logs = ctx.broker.logs.loadedPartitions().filter((log) =>
      wanted === null || (wanted.get(log.topic)?.has(log.partition) ?? false)
    );
    const dir = (logDir: string, size: (log: PartitionLog) => number) => {
      const byTopic = new Map<string, DescribeLogDirsTopic>();
      for (const log of logs) {
        const topic = byTopic.get(log.topic) ?? { name: log.topic, partitions: [] };
        topic.partitions.push({
          partitionIndex: log.partition,
          partitionSize: size(log),
          offsetLag: 0,
          isFutureKey: false,
        });
        byTopic.set(log.topic, topic);
      }
      return {
        errorCode: ERROR_CODES.NONE,
        logDir,
        topics: [...byTopic.values()],
        // Object storage has no capacity to report (KIP-827's "unknown").
        totalBytes: -1,
        usableBytes: -1,
      };
    };
    if (!can(ctx, OP.DESCRIBE, RT.CLUSTER, "kafka-cluster")) {
      return {
        throttleTimeMs: 0,
        errorCode: ERROR_CODES.CLUSTER_AUTHORIZATION_FAILED,
        results: [],
      };
    }
    return {
      throttleTimeMs: 0,
      errorCode: ERROR_CODES.NONE,
      results: [
        dir(LOG_DIR_SEALED, (log) => log.sealedBytes),
        dir(LOG_DIR_WRITE_AHEAD, (log) => log.unsealedBytes),
      ],
    };
  },
});
