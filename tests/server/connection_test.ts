/**
 * The connection loop on a scripted in-memory socket: pipelining, ordering,
 * the in-flight limit, drain and close, under seeded interleavings.
 *
 * Named after the bug it pins (issue 17, finding 5): before commit 74997c6
 * the reader (waiting for room under the in-flight limit) and the writer
 * (waiting for a response to write) shared one wake-up slot, so when both
 * waited, the later wait overwrote the earlier one and a wake-up reached only
 * one of them.
 */
import assert from "node:assert/strict";
import {
  COALESCE_BYTES_MAX,
  Connection,
  type DispatchResult,
  type FrameDispatcher,
  JOIN_CHUNK_BYTES_MAX,
} from "../../lib/server/connection.ts";
import { RequestMemoryPool } from "../../lib/server/request_memory.ts";
import { silentLogger } from "../../lib/util/logger.ts";

/** Bound on how long one scripted connection may take to finish. */
const SERVE_DEADLINE_MS = 5_000;

/** SplitMix32: seeded floats in [0, 1). */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 0x1_0000_0000;
  };
}

/** Yields for a random number of microtasks, or a macrotask. */
async function jitter(random: () => number): Promise<void> {
  const r = random();
  if (r < 0.8) {
    for (let i = Math.floor(r * 10); i > 0; i--) await Promise.resolve();
  } else {
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/**
 * A `Deno.Conn` that reads from a script of chunks (then reports EOF, or
 * blocks until closed when `holdOpen`) and records what is written.
 */
class ScriptedConn {
  readonly remoteAddr = { transport: "tcp", hostname: "127.0.0.1", port: 1 } as Deno.NetAddr;
  readonly written: Uint8Array[] = [];
  reads = 0;
  closed = false;
  #chunks: Uint8Array[];
  #random: () => number;
  #holdOpen: boolean;
  #closedSignal = Promise.withResolvers<null>();

  constructor(chunks: Uint8Array[], random: () => number, holdOpen = false) {
    this.#chunks = [...chunks];
    this.#random = random;
    this.#holdOpen = holdOpen;
  }

  async read(buf: Uint8Array): Promise<number | null> {
    this.reads++;
    await jitter(this.#random);
    if (this.closed) throw new Deno.errors.BadResource("closed");
    const chunk = this.#chunks.shift();
    if (!chunk) return this.#holdOpen ? await this.#closedSignal.promise : null;
    const n = Math.min(chunk.length, buf.length);
    buf.set(chunk.subarray(0, n));
    if (n < chunk.length) this.#chunks.unshift(chunk.subarray(n));
    return n;
  }

  async write(buf: Uint8Array): Promise<number> {
    await jitter(this.#random);
    if (this.closed) throw new Deno.errors.BadResource("closed");
    this.written.push(buf.slice());
    return buf.length;
  }

  close(): void {
    this.closed = true;
    this.#closedSignal.resolve(null);
  }
}

/** Frames carrying a 4-byte request number, then 4 bytes of padding (the minimum frame is 8). */
function frames(count: number): Uint8Array {
  const out = new Uint8Array(count * 12);
  const view = new DataView(out.buffer);
  for (let i = 0; i < count; i++) {
    view.setInt32(i * 12, 8);
    view.setInt32(i * 12 + 4, i);
  }
  return out;
}

function split(bytes: Uint8Array, random: () => number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let o = 0; o < bytes.length;) {
    const n = 1 + Math.floor(random() * 30);
    chunks.push(bytes.subarray(o, o + n));
    o += n;
  }
  return chunks;
}

/** Answers request i with the bytes of i, after a random delay; every fifth has no response. */
function echoDispatcher(random: () => number): FrameDispatcher {
  return {
    async dispatch(frame: Uint8Array): Promise<DispatchResult> {
      const id = new DataView(frame.buffer, frame.byteOffset).getInt32(0);
      await jitter(random);
      if (id % 5 === 4) return { kind: "none" };
      const response = new Uint8Array(4);
      new DataView(response.buffer).setInt32(0, id);
      return { kind: "response", chunks: [response] };
    },
  };
}

async function withinDeadline(what: string, done: Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), SERVE_DEADLINE_MS);
  });
  const outcome = await Promise.race([done.then(() => "done" as const), timeout]);
  clearTimeout(timer);
  assert.equal(outcome, "done", `${what} did not finish within ${SERVE_DEADLINE_MS} ms`);
}

const macrotask = () => new Promise((resolve) => setTimeout(resolve, 0));
/** Bound on the event-loop turns a poll below may take. */
const POLL_TURNS_MAX = 1_000;

async function pollTurns(what: string, done: () => boolean): Promise<void> {
  for (let turns = 0; !done(); turns++) {
    if (turns > POLL_TURNS_MAX) throw new Error(`Gave up waiting for ${what}`);
    await macrotask();
  }
}

/**
 * Waits until the one scripted frame has been read; the reader then parses
 * it and waits at the in-flight limit within the same turn (microtasks).
 */
async function untilReaderWaits(conn: ScriptedConn): Promise<void> {
  await pollTurns("the frame to be read", () => conn.reads >= 1);
  for (let i = 0; i < 5; i++) await macrotask();
  assert.equal(conn.reads, 1, "the reader waits instead of reading on");
}

Deno.test("Connection lost wake-up (74997c6): close wakes the reader and the writer when both wait", async () => {
  // An in-flight limit of 0 holds the reader at the limit with an empty
  // queue, so the writer waits for a response at the same time: the one
  // state in which both wait. With one wake-up slot, the reader's wait
  // overwrote the writer's, close() woke only the reader, and serve() never
  // returned.
  const random = seeded(1);
  const conn = new ScriptedConn([frames(1)], random, true);
  const connection = new Connection(
    1,
    conn as unknown as Deno.Conn,
    echoDispatcher(random),
    { maxFrameBytes: 1024, maxInFlightRequests: 0 },
    silentLogger,
  );
  const served = connection.serve();
  await untilReaderWaits(conn);
  connection.close();
  await withinDeadline("serve() after close()", served);
});

Deno.test("Connection lost wake-up (74997c6): drain ends a connection whose reader and writer both wait", async () => {
  const random = seeded(2);
  const conn = new ScriptedConn([frames(1)], random, true);
  const connection = new Connection(
    1,
    conn as unknown as Deno.Conn,
    echoDispatcher(random),
    { maxFrameBytes: 1024, maxInFlightRequests: 0 },
    silentLogger,
  );
  const served = connection.serve();
  await untilReaderWaits(conn);
  connection.drain();
  await withinDeadline("serve() after drain()", served);
});

Deno.test("Connection: 200 seeded interleavings answer every request in order and finish", async () => {
  for (let seed = 1; seed <= 200; seed++) {
    const random = seeded(seed);
    const count = 1 + Math.floor(random() * 20);
    const maxInFlightRequests = 1 + Math.floor(random() * 3);
    const conn = new ScriptedConn(split(frames(count), random), random);
    const memory = random() < 0.5 ? new RequestMemoryPool(8 * 12, 8) : null;
    const connection = new Connection(
      seed,
      conn as unknown as Deno.Conn,
      echoDispatcher(random),
      { maxFrameBytes: 1024, maxInFlightRequests },
      silentLogger,
      memory,
    );
    await withinDeadline(`seed ${seed}`, connection.serve());
    // Responses done together may share a write: the ids are read from the byte stream.
    const stream = new Uint8Array(conn.written.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of conn.written) {
      stream.set(b, at);
      at += b.length;
    }
    const view = new DataView(stream.buffer);
    const answered = Array.from({ length: stream.length / 4 }, (_, i) => view.getInt32(i * 4));
    const expected = [...Array(count).keys()].filter((id) => id % 5 !== 4);
    assert.deepEqual(answered, expected, `seed ${seed}`);
    assert.equal(memory?.usedBytes ?? 0, 0, `seed ${seed}: every reservation released`);
  }
});

Deno.test("Connection: at the request memory bound the socket is not read until a request is handled", async () => {
  const random = seeded(3);
  const memory = new RequestMemoryPool(16, 8); // room for exactly two 8-byte frames
  const release = Promise.withResolvers<void>();
  const dispatcher: FrameDispatcher = {
    async dispatch(frame) {
      await release.promise;
      return { kind: "response", chunks: [frame.slice(0, 4)] };
    },
  };
  const conn = new ScriptedConn([frames(3)], random);
  const connection = new Connection(
    1,
    conn as unknown as Deno.Conn,
    dispatcher,
    { maxFrameBytes: 1024, maxInFlightRequests: 10 },
    silentLogger,
    memory,
  );
  const served = connection.serve();
  await pollTurns("the third frame to wait", () => memory.waiting > 0);
  assert.equal(memory.usedBytes, 16, "two frames held; the third waits before allocation");
  const readsWhileBlocked = conn.reads;
  for (let i = 0; i < 10; i++) await macrotask();
  assert.equal(conn.reads, readsWhileBlocked, "no socket reads while at the bound");
  release.resolve();
  await withinDeadline("serve()", served);
  // Three 4-byte responses (responses done together may share a write).
  assert.equal(conn.written.reduce((n, b) => n + b.length, 0), 12);
  assert.equal(memory.usedBytes, 0);
});

Deno.test("Connection: responses done together share a write, in order; large chunks go as they are", async () => {
  const random = seeded(4);
  const gates = Array.from({ length: 6 }, () => Promise.withResolvers<void>());
  const large = new Uint8Array(JOIN_CHUNK_BYTES_MAX + 1).fill(7);
  const dispatcher: FrameDispatcher = {
    async dispatch(frame) {
      const id = new DataView(frame.buffer, frame.byteOffset).getInt32(0);
      await gates[id].promise;
      if (id === 3) return { kind: "none" };
      const small = new Uint8Array([0, 0, 0, id]);
      return { kind: "response", chunks: id === 4 ? [small, large] : [small] };
    },
  };
  const conn = new ScriptedConn([frames(6)], random);
  const connection = new Connection(
    1,
    conn as unknown as Deno.Conn,
    dispatcher,
    { maxFrameBytes: 1024, maxInFlightRequests: 10 },
    silentLogger,
  );
  const served = connection.serve();
  await pollTurns("all six frames to be read", () => conn.reads >= 2);
  // 1-4 are done before 0: when 0 is written, they go with it (3 has no response); 5 is not
  // done yet, so it is written on its own later.
  for (const id of [1, 2, 3, 4, 0]) gates[id].resolve();
  await pollTurns("the first writes", () => conn.written.length >= 2);
  for (let i = 0; i < 5; i++) await macrotask();
  gates[5].resolve();
  await withinDeadline("serve()", served);
  const sizes = conn.written.map((b) => b.length);
  assert.deepEqual(sizes, [16, large.length, 4], "0, 1, 2, 4 joined; the large chunk; then 5");
  assert.deepEqual([...conn.written[0]], [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4]);
  assert.deepEqual([...conn.written[2]], [0, 0, 0, 5]);
  assert.ok(COALESCE_BYTES_MAX > large.length, "one run can hold the large chunk");
});

Deno.test("Connection: a response of many small chunks is joined in buffers of at most COALESCE_BYTES_MAX", async () => {
  const chunk = new Uint8Array(JOIN_CHUNK_BYTES_MAX).fill(1);
  const count = Math.ceil((2.5 * COALESCE_BYTES_MAX) / chunk.length);
  const dispatcher: FrameDispatcher = {
    dispatch: () => Promise.resolve({ kind: "response", chunks: Array(count).fill(chunk) }),
  };
  const conn = new ScriptedConn([frames(1)], seeded(5));
  const connection = new Connection(
    1,
    conn as unknown as Deno.Conn,
    dispatcher,
    { maxFrameBytes: 1024, maxInFlightRequests: 1 },
    silentLogger,
  );
  await withinDeadline("serve()", connection.serve());
  const sizes = conn.written.map((b) => b.length);
  assert.equal(sizes.reduce((a, b) => a + b, 0), count * chunk.length);
  assert.ok(sizes.length >= 3, `several writes: ${sizes}`);
  assert.ok(sizes.every((n) => n <= COALESCE_BYTES_MAX), `each at most the bound: ${sizes}`);
});
