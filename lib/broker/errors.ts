/**
 * Maps operating failures below the broker (log, metadata, object store) to
 * Kafka error codes. Store failures become retriable codes; they never
 * reach the socket as exceptions.
 */
import { LogError } from "../log/log_error.ts";
import { MetadataStoreError } from "../metadata/metadata_store.ts";
import { ObjectStoreError } from "../storage/object_store.ts";
import { ERROR_CODES } from "../protocol/error_codes.ts";
import type { Logger } from "../util/logger.ts";

export function errorCodeFor(err: unknown, logger: Logger, what: string): number {
  if (err instanceof LogError) return err.code;
  if (err instanceof MetadataStoreError || err instanceof ObjectStoreError) {
    logger.warn(`${what} failed: store unavailable`, { err: err.message });
    return ERROR_CODES.KAFKA_STORAGE_ERROR;
  }
  logger.error(`${what} failed unexpectedly`, {
    err: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  return ERROR_CODES.UNKNOWN_SERVER_ERROR;
}
