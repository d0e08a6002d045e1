/**
 * Typed operating failures of the partition log. Each carries the Kafka
 * error code the broker answers with; all of them are retriable for the
 * client (Kafka's Errors.java marks these codes retriable).
 */

/** Kafka error codes the log reports (numbers from Kafka's Errors.java). */
export const LOG_ERROR_CODE = {
  /** The topic or partition does not exist (or is being deleted). */
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  /** This broker does not own the partition (any more): refresh metadata and retry. */
  NOT_LEADER_OR_FOLLOWER: 6,
  /** The object or metadata store failed; nothing was acknowledged. */
  KAFKA_STORAGE_ERROR: 56,
} as const;

export type LogErrorCode = (typeof LOG_ERROR_CODE)[keyof typeof LOG_ERROR_CODE];

export class LogError extends Error {
  override name = "LogError";
  constructor(readonly code: LogErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }

  static storage(message: string, cause?: unknown): LogError {
    return new LogError(LOG_ERROR_CODE.KAFKA_STORAGE_ERROR, message, { cause });
  }

  static notLeader(message: string, cause?: unknown): LogError {
    return new LogError(LOG_ERROR_CODE.NOT_LEADER_OR_FOLLOWER, message, { cause });
  }

  static unknownPartition(message: string): LogError {
    return new LogError(LOG_ERROR_CODE.UNKNOWN_TOPIC_OR_PARTITION, message);
  }
}
