/**
 * Stop steps that say so when they take long, so a stop that hangs names where.
 */
import type { Logger } from "./logger.ts";

/** A stop step running longer than this is logged (and again each time this much more passes). */
export const STOP_STEP_WARN_MS = 5_000;

/** Runs one step of a stop, warning while it runs longer than `STOP_STEP_WARN_MS`. */
export async function watchStopStep(
  logger: Logger,
  name: string,
  run: () => Promise<unknown> | unknown,
): Promise<void> {
  const started = performance.now();
  const timer = setInterval(() => {
    logger.warn("Stopping: a step is taking long", {
      step: name,
      elapsedMs: Math.round(performance.now() - started),
    });
  }, STOP_STEP_WARN_MS);
  try {
    await run();
  } finally {
    clearInterval(timer);
  }
}
