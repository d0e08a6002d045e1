/**
 * A ballast file in a local data directory, so a broker can start on a disk that filled up.
 *
 * Produce fills a disk to the last byte before it fails; after that even the few metadata writes
 * a broker needs to start (registration, partition acquisition) would fail, and acknowledged
 * data could not be read back. So the broker keeps `RESERVE_BYTES` in `.reserve` while it runs:
 * at start it deletes the file (that space is then free for start-up), and once started it
 * writes it again only if the disk has room for twice as much (so taking it never fills the
 * disk it just freed; else it logs that it runs without one).
 *
 * Knows nothing about Kafka or the log.
 */

import type { Logger } from "../util/logger.ts";

export const RESERVE_FILE = ".reserve";
export const RESERVE_BYTES = 4 * 1024 * 1024;

/** Deletes the reserve before start-up; returns whether there was one. */
export async function releaseDiskReserve(dir: string): Promise<boolean> {
  try {
    await Deno.remove(`${dir}/${RESERVE_FILE}`);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Writes the reserve (durably) when the disk has room; logs and carries on when it has not. */
export async function takeDiskReserve(dir: string, logger: Logger): Promise<boolean> {
  const path = `${dir}/${RESERVE_FILE}`;
  const probe = `${dir}/${RESERVE_FILE}-probe`;
  try {
    // Room for twice the reserve first: what is left after taking it stays usable.
    await writeZeros(probe, 2 * RESERVE_BYTES);
    await Deno.remove(probe);
    await writeZeros(path, RESERVE_BYTES);
    return true;
  } catch (error) {
    await Deno.remove(probe).catch(() => {});
    await Deno.remove(path).catch(() => {});
    logger.warn("Cannot keep the start-up disk reserve; the disk is (nearly) full", {
      file: path,
      bytes: RESERVE_BYTES,
      error: error instanceof Error ? error.message : String(error),
    });
    return false;
  }
}

async function writeZeros(path: string, bytes: number): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const zeros = new Uint8Array(64 * 1024);
    for (let written = 0; written < bytes;) {
      written += await file.write(zeros.subarray(0, Math.min(zeros.length, bytes - written)));
    }
    await file.syncData();
  } finally {
    file.close();
  }
}
