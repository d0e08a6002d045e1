/**
 * The broker-wide bound on bytes held by requests being read or queued
 * (issue 17, finding 6; Kafka's `queued.max.request.bytes`). Before it, 60
 * connections that each announced a 100 MiB frame and sent part of it took
 * a broker from 60 MB to 551 MB of RSS.
 */
import assert from "node:assert/strict";
import { RequestMemoryPool, SMALL_REQUEST_BYTES } from "../../lib/server/request_memory.ts";
import { startBroker } from "../e2e/broker_process.ts";

const MIB = 1024 * 1024;

Deno.test("RequestMemoryPool: reserves up to the bound, then waits for releases", async () => {
  const pool = new RequestMemoryPool(10 * MIB, 4 * MIB);
  assert.equal(await pool.reserve(4 * MIB), true);
  assert.equal(await pool.reserve(4 * MIB), true);
  let third = false;
  const waiting = pool.reserve(4 * MIB).then((ok) => (third = ok));
  await Promise.resolve();
  assert.equal(third, false);
  assert.equal(pool.waiting, 1);
  pool.release(4 * MIB);
  await waiting;
  assert.equal(third, true);
  assert.equal(pool.usedBytes, 8 * MIB);
});

Deno.test("RequestMemoryPool: small requests have a reserve and pass large waiters", async () => {
  // 64 MiB bound: 4 MiB (a sixteenth) kept for small requests.
  const pool = new RequestMemoryPool(64 * MIB, 30 * MIB);
  assert.equal(pool.largeLimitBytes, 60 * MIB);
  assert.equal(await pool.reserve(30 * MIB), true);
  assert.equal(await pool.reserve(30 * MIB), true);
  const large = pool.reserve(30 * MIB);
  // The large waiter does not hold up small requests, up to the whole bound.
  for (let i = 0; i < 4 * MIB / SMALL_REQUEST_BYTES; i++) {
    assert.equal(await pool.reserve(SMALL_REQUEST_BYTES), true);
  }
  assert.equal(pool.usedBytes, 64 * MIB);
  let small = false;
  const blocked = pool.reserve(100).then((ok) => (small = ok));
  await Promise.resolve();
  assert.equal(small, false, "nothing is allocated past the bound");
  pool.release(SMALL_REQUEST_BYTES);
  await blocked;
  assert.equal(small, true);
  // Large frames share what the small requests leave of the large part.
  pool.release(30 * MIB);
  pool.release(100);
  for (let i = 0; i < 4 * MIB / SMALL_REQUEST_BYTES - 1; i++) pool.release(SMALL_REQUEST_BYTES);
  assert.equal(await large, true);
  assert.equal(pool.usedBytes, 60 * MIB);
});

Deno.test("RequestMemoryPool: a bound equal to the largest frame still admits it", async () => {
  const pool = new RequestMemoryPool(16 * MIB, 16 * MIB);
  assert.equal(pool.largeLimitBytes, 16 * MIB);
  assert.equal(await pool.reserve(16 * MIB), true);
  assert.throws(() => new RequestMemoryPool(MIB, 2 * MIB), /below the largest frame/);
});

Deno.test("RequestMemoryPool: an aborted wait reserves nothing", async () => {
  const pool = new RequestMemoryPool(2 * MIB, 2 * MIB);
  assert.equal(await pool.reserve(2 * MIB), true);
  const abort = new AbortController();
  const waiting = pool.reserve(MIB, abort.signal);
  abort.abort();
  assert.equal(await waiting, false);
  assert.equal(pool.waiting, 0);
  pool.release(2 * MIB);
  assert.equal(pool.usedBytes, 0);
});

// ---- A broker process under connections that announce large frames --------------------------

const FRAME_BYTES = 16 * MIB;
const BOUND_BYTES = 40 * MIB;
const CONNECTIONS = 100;
/**
 * Stated overhead on top of the bound: a 64 KiB read buffer per connection
 * (6.4 MiB for 101), V8 heap growth and the HTTP and Kafka answers.
 */
const OVERHEAD_BYTES = 64 * MIB;
const DEADLINE_MS = 60_000;
const CHUNK_BYTES = MIB;

async function rssBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = /VmRSS:\s+(\d+) kB/.exec(status);
  assert.ok(kib, "VmRSS in /proc/PID/status");
  return Number(kib[1]) * 1024;
}

async function metric(httpAddr: string, name: string): Promise<number> {
  const text = await (await fetch(`http://${httpAddr}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.split(" ")[1]);
}

/** ApiVersions v0 on a fresh connection; resolves with its error code. */
async function apiVersions(port: number, correlationId: number): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const request = new Uint8Array(4 + 10);
    const view = new DataView(request.buffer);
    view.setInt32(0, 10);
    view.setInt16(4, 18); // ApiVersions
    view.setInt16(6, 0);
    view.setInt32(8, correlationId);
    view.setInt16(12, -1); // null client id
    await conn.write(request);
    const head = new Uint8Array(10);
    let got = 0;
    while (got < head.length) {
      const n = await conn.read(head.subarray(got));
      if (n === null) throw new Error("ApiVersions: connection closed");
      got += n;
    }
    const answer = new DataView(head.buffer);
    assert.equal(answer.getInt32(4), correlationId);
    return answer.getInt16(8);
  } finally {
    conn.close();
  }
}

/** Announces a FRAME_BYTES frame and sends all of it but the last byte, as fast as TCP allows. */
async function sendAlmostAFrame(conn: Deno.Conn, progress: { done: number }): Promise<void> {
  const chunk = new Uint8Array(CHUNK_BYTES).fill(7);
  const prefix = new Uint8Array(4);
  new DataView(prefix.buffer).setInt32(0, FRAME_BYTES);
  try {
    await conn.write(prefix);
    for (let sent = 0; sent < FRAME_BYTES - 1;) {
      const n = Math.min(CHUNK_BYTES, FRAME_BYTES - 1 - sent);
      sent += await conn.write(chunk.subarray(0, n));
    }
    progress.done++;
  } catch {
    // Closed by the test at the end.
  }
}

async function pollUntil(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name: "Queued request bytes: 100 connections announcing 16 MiB frames keep RSS under the bound " +
    "plus overhead, and another client is still served",
  sanitizeResources: false, // the stalled writes end when their sockets close
  sanitizeOps: false,
  fn: async () => {
    await using broker = await startBroker({
      args: [
        "--max-frame-bytes",
        String(FRAME_BYTES),
        "--queued-max-request-bytes",
        String(BOUND_BYTES),
      ],
    });
    assert.equal(await apiVersions(broker.port, 1), 0);
    await metric(broker.httpAddr, "kafscale_connections");
    const baseline = await rssBytes(broker.pid);

    const conns: Deno.Conn[] = [];
    const progress = { done: 0 };
    const writers: Promise<void>[] = [];
    let peak = 0;
    try {
      for (let i = 0; i < CONNECTIONS; i++) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: broker.port });
        conns.push(conn);
        writers.push(sendAlmostAFrame(conn, progress));
      }
      // Two frames fit under the bound (less its small-request reserve); the
      // other 98 connections stop being read.
      const admitted = Math.floor((BOUND_BYTES - BOUND_BYTES / 16) / FRAME_BYTES);
      await pollUntil("the admitted frames to be sent and the rest to wait", async () => {
        peak = Math.max(peak, await rssBytes(broker.pid));
        const waiting = await metric(broker.httpAddr, "kafscale_request_memory_waiting");
        return progress.done >= admitted && waiting >= CONNECTIONS - admitted;
      });
      assert.equal(
        await metric(broker.httpAddr, "kafscale_request_memory_bytes"),
        admitted * FRAME_BYTES,
      );
      // Another client is served while the bound is reached.
      assert.equal(await apiVersions(broker.port, 2), 0);
      for (let i = 0; i < 10; i++) peak = Math.max(peak, await rssBytes(broker.pid));
      const grown = peak - baseline;
      console.log(
        `RSS: baseline ${(baseline / MIB).toFixed(1)} MiB, peak ${(peak / MIB).toFixed(1)} MiB`,
      );
      assert.ok(
        grown < BOUND_BYTES + OVERHEAD_BYTES,
        `RSS grew by ${(grown / MIB).toFixed(1)} MiB (baseline ${(baseline / MIB).toFixed(1)} ` +
          `MiB); bound ${BOUND_BYTES / MIB} MiB + overhead ${OVERHEAD_BYTES / MIB} MiB`,
      );
    } finally {
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
      await Promise.all(writers);
    }
    // Closed connections give their reservations back.
    await pollUntil(
      "the reservations to be released",
      async () => (await metric(broker.httpAddr, "kafscale_request_memory_bytes")) === 0,
    );
    assert.equal(await apiVersions(broker.port, 3), 0);
  },
});
