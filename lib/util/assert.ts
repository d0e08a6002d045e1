/**
 * Broken invariants (DESIGN invariant 7): programmer errors, never operating failures. They are
 * raised as `InvariantError` and handled by one policy: the process stops with one clear log
 * line and exit code 70 (EX_SOFTWARE); the service manager restarts it and recovery reloads the
 * truth from the stores. They are never logged and ignored, and never turned into a Kafka error
 * code on one connection while the broker goes on with a corrupted in-memory state.
 */

import type { Logger } from "./logger.ts";

/** Exit code of a process stopped by a broken invariant (sysexits' EX_SOFTWARE). */
export const BROKEN_INVARIANT_EXIT_CODE = 70;

export class InvariantError extends Error {
  override name = "InvariantError";
}

/** What to do with a broken invariant caught at a boundary (a background loop, a callback). */
export type InvariantPolicy = (error: unknown) => void;

/** Throws InvariantError unless `condition` holds. */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantError(`Broken invariant: ${message}`);
}

/** The production policy: log one line and stop the process. */
export function exitOnBrokenInvariant(logger: Logger): InvariantPolicy {
  return (error) => {
    logger.error("Broken invariant; stopping so recovery can take over", {
      error: error instanceof Error ? error.message : String(error),
      stack: error instanceof Error ? error.stack?.split("\n").slice(1, 6).join(" | ") : undefined,
    });
    Deno.exit(BROKEN_INVARIANT_EXIT_CODE);
  };
}

/** The default outside `serve` (tests, libraries): rethrow asynchronously, so nothing swallows it. */
export const throwBrokenInvariant: InvariantPolicy = (error) => {
  queueMicrotask(() => {
    throw error;
  });
};
