/**
 * lib/util/allocator.ts: glibc's malloc_trim reached through FFI (CI runs on Linux with glibc),
 * and the periodic trim stopped without leaking its timer or the library handle. What it gives
 * back is measured by the benchmark (README "Benchmark": RSS after a 1 000-partition run).
 */
import assert from "node:assert/strict";
import { startAllocatorTrim, trimAllocatorNow } from "../../lib/util/allocator.ts";
import { silentLogger } from "../../lib/util/logger.ts";

Deno.test({
  name: "allocator: malloc_trim is reached through FFI",
  ignore: Deno.build.os !== "linux",
  async fn() {
    assert.equal(await trimAllocatorNow(), true);
  },
});

Deno.test({
  name: "allocator: the periodic trim runs and stops cleanly",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const stop = startAllocatorTrim(silentLogger, 5);
    await new Promise((r) => setTimeout(r, 30));
    await stop();
  },
});
