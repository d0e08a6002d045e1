/**
 * The bench's memory readings (scripts/bench/memory.ts): VmRSS and VmHWM from /proc, and the
 * peak reset that gives each phase a peak of its own. The live tests use a Python child that
 * touches then frees 200 MiB, so its resident size falls well below its peak.
 */
import assert from "node:assert/strict";
import {
  parseProcStatus,
  peakDuring,
  readProcessMemory,
  resetPeakMemory,
} from "../../scripts/bench/memory.ts";

const MIB = 1024 * 1024;
const onLinux = Deno.build.os === "linux";

Deno.test("parseProcStatus reads VmRSS and VmHWM in bytes", () => {
  const status = "Name:\tdeno\nVmPeak:\t 999 kB\nVmHWM:\t  442000 kB\nVmRSS:\t   79104 kB\n";
  assert.deepEqual(parseProcStatus(status), { rssBytes: 79104 * 1024, peakBytes: 442000 * 1024 });
  assert.deepEqual(parseProcStatus("Name:\tdeno\nVmRSS:\t 1 kB\n"), null, "no VmHWM");
  assert.deepEqual(parseProcStatus(""), null);
});

Deno.test("readProcessMemory and resetPeakMemory answer null/false for a process that is gone", async () => {
  const child = new Deno.Command("true").spawn();
  await child.status;
  assert.deepEqual(await readProcessMemory(child.pid), null);
  assert.deepEqual(await resetPeakMemory(child.pid), false);
  const { result, peakBytes } = await peakDuring(child.pid, () => Promise.resolve(7));
  assert.deepEqual(result, 7);
  assert.deepEqual(peakBytes, null, "a peak that could not be reset is not reported");
  assert.deepEqual((await peakDuring(null, () => Promise.resolve(1))).peakBytes, null);
});

Deno.test({
  name: "a phase's peak is its own: the reset forgets a larger earlier peak",
  ignore: !onLinux,
  async fn() {
    // Python frees a large bytearray with munmap at once, so its RSS falls under its peak.
    const child = new Deno.Command("python3", {
      args: [
        "-c",
        "import sys\nb = bytearray(200 << 20)\nb[::4096] = b'x' * len(b[::4096])\ndel b\n" +
        "print('freed', flush=True)\nsys.stdin.readline()\n",
      ],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    try {
      const reader = child.stdout.getReader();
      const { value } = await reader.read();
      assert.deepEqual(new TextDecoder().decode(value).trim(), "freed");
      reader.releaseLock();
      const before = await readProcessMemory(child.pid);
      if (before === null) throw new Error("no /proc status for the child");
      assert(before.peakBytes >= 200 * MIB, `peak ${before.peakBytes} after touching 200 MiB`);
      assert(before.rssBytes < 100 * MIB, `rss ${before.rssBytes} after freeing`);
      const { peakBytes } = await peakDuring(child.pid, () => Promise.resolve());
      if (peakBytes === null) throw new Error("the peak could not be reset");
      assert(peakBytes < 100 * MIB, `peak ${peakBytes} after the reset`);
      assert(peakBytes >= before.rssBytes / 2, `peak ${peakBytes} is the current size`);
    } finally {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("\n")).catch(() => {});
      await writer.close().catch(() => {});
      await child.stdout.cancel().catch(() => {});
      await child.status;
    }
  },
});
