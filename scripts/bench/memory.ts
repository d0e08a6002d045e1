/**
 * Resident memory of a broker process for `deno task bench`, read from Linux's /proc.
 *
 * Owns: reading a process's resident set size (VmRSS) and its peak (VmHWM), and resetting that
 * peak to the current size (`echo 5 > /proc/PID/clear_refs`, Linux 4.0 and later) so each bench
 * phase gets a peak of its own. Must not import lib/: like the rest of the bench it treats the
 * broker as a black box, which is how the same run measures an Apache Kafka JVM given its pid.
 *
 * Everything here answers null (or false) where /proc cannot tell: another OS, a process that
 * exited, or one this user may not inspect. The bench then prints "n/a" instead of failing.
 */

export interface ProcessMemory {
  /** Resident set size now (VmRSS), bytes. */
  rssBytes: number;
  /** Largest resident set size since start or since the last `resetPeakMemory` (VmHWM), bytes. */
  peakBytes: number;
}

/** VmRSS and VmHWM of a /proc/PID/status text; null when either is missing. */
export function parseProcStatus(text: string): ProcessMemory | null {
  const kib = (field: string): number | null => {
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, "m").exec(text);
    return match ? Number(match[1]) * 1024 : null;
  };
  const rssBytes = kib("VmRSS");
  const peakBytes = kib("VmHWM");
  if (rssBytes === null || peakBytes === null) return null;
  return { rssBytes, peakBytes };
}

/** The process's memory now, or null when /proc cannot say. */
export async function readProcessMemory(pid: number): Promise<ProcessMemory | null> {
  try {
    return parseProcStatus(await Deno.readTextFile(`/proc/${pid}/status`));
  } catch {
    return null;
  }
}

/** Resets the process's peak (VmHWM) to its current resident size; false when it cannot. */
export async function resetPeakMemory(pid: number): Promise<boolean> {
  try {
    await Deno.writeTextFile(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * The peak of one phase: resets the peak before `phase` runs and reads it after. The peak is
 * null when it could not be reset (it would be the process's lifetime peak, not the phase's).
 */
export async function peakDuring<T>(
  pid: number | null,
  phase: () => Promise<T>,
): Promise<{ result: T; peakBytes: number | null }> {
  const reset = pid !== null && await resetPeakMemory(pid);
  const result = await phase();
  const after = reset ? await readProcessMemory(pid!) : null;
  return { result, peakBytes: after?.peakBytes ?? null };
}
