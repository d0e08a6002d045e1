/**
 * Memory the C allocator keeps after a burst, given back (issue 10).
 *
 * glibc's malloc serves large blocks (flush rounds, fetch answers, segment parts) with mmap at
 * first, but each such free raises its mmap threshold (up to 32 MiB); from then on blocks of that
 * size come from the heap arenas, and once freed they stay resident: after a full-speed run with
 * 1 000 partitions the broker kept ~400 MB, of which the JavaScript heap and its buffers were
 * about 150 MB. Fixing the threshold (`mallopt`) cost a third of the produce and consume
 * throughput (every large block mapped, faulted in and unmapped again), so instead the broker
 * calls `malloc_trim(0)` every `intervalMs`: free pages inside the arenas go back to the system
 * (madvise), at the cost of a few milliseconds per call on a thread of its own, off the event
 * loop.
 *
 * Linux with glibc only; elsewhere (musl, macOS, no FFI permission) it does nothing and says so.
 */
import type { Logger } from "./logger.ts";

export const ALLOCATOR_TRIM_INTERVAL_MS = 10_000;

type Libc = Deno.DynamicLibrary<
  { malloc_trim: { parameters: ["usize"]; result: "i32"; nonblocking: true } }
>;

/**
 * Starts trimming every `intervalMs` (the timer does not keep the process alive); returns the
 * function that stops it, which resolves once a trim in progress has ended. Each trim runs on a
 * thread of its own (a nonblocking FFI call): it never holds the event loop. Logs at debug
 * level why it cannot when it cannot.
 */
export function startAllocatorTrim(
  logger: Logger,
  intervalMs = ALLOCATOR_TRIM_INTERVAL_MS,
): () => Promise<void> {
  const libc = openLibc();
  if (typeof libc === "string") {
    logger.debug("Allocator trimming is off", { reason: libc });
    return () => Promise.resolve();
  }
  let running: Promise<unknown> | null = null;
  const timer = setInterval(() => {
    running ??= libc.symbols.malloc_trim(0n).catch(() => undefined).finally(() => (running = null));
  }, intervalMs);
  Deno.unrefTimer(timer);
  return async () => {
    clearInterval(timer);
    await running; // the library is closed only once no call runs in it
    libc.close();
  };
}

/** Trims once now; false when there is no glibc to ask. */
export async function trimAllocatorNow(): Promise<boolean> {
  const libc = openLibc();
  if (typeof libc === "string") return false;
  try {
    await libc.symbols.malloc_trim(0n);
    return true;
  } finally {
    libc.close();
  }
}

function openLibc(): Libc | string {
  if (Deno.build.os !== "linux") return `not Linux (${Deno.build.os})`;
  try {
    return Deno.dlopen("libc.so.6", {
      malloc_trim: { parameters: ["usize"], result: "i32", nonblocking: true },
    });
  } catch (err) {
    return `no glibc malloc_trim (${err instanceof Error ? err.message : String(err)})`;
  }
}
