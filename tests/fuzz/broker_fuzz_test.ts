/**
 * Random and mutated frames sent to a running broker over TCP: the broker
 * must answer or close each connection, never crash, and keep its memory
 * bounded; afterwards it still serves a well-formed client. Seeded and
 * bounded in iterations, so a failure replays.
 */
import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { Writer } from "../../lib/protocol/primitives.ts";
import { REQUEST_HEADER } from "../../lib/protocol/generated/request_header.ts";
import { requestHeaderVersion } from "../../lib/protocol/headers.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { HANDLERS } from "../../lib/broker/handler_table.ts";

const ITERATIONS = 1_500;
const SEED = 0x5eed_cafe;
/** Growth of the broker process's RSS we tolerate over the whole run. */
const MAX_RSS_GROWTH_BYTES = 256 * 1024 * 1024;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Valid request frames to mutate, one per served API at a few versions. */
function seeds(): Uint8Array[] {
  const records = encodeRecordBatch([{ key: null, value: new Uint8Array([1, 2, 3]) }]);
  const bodies: Record<number, unknown> = {
    0: {
      transactionalId: null,
      acks: 1,
      timeoutMs: 1000,
      topicData: [{ name: "fz", partitionData: [{ index: 0, records }] }],
    },
    1: {
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      topics: [{
        topic: "fz",
        topicId: "AAAAAAAAAAAAAAAAAAAAAA",
        partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }],
      }],
    },
    2: {
      replicaId: -1,
      topics: [{ name: "fz", partitions: [{ partitionIndex: 0, timestamp: -1 }] }],
    },
    3: {
      topics: [{ topicId: "AAAAAAAAAAAAAAAAAAAAAA", name: "fz" }],
      allowAutoTopicCreation: true,
    },
    17: { mechanism: "PLAIN" },
    18: { clientSoftwareName: "fz", clientSoftwareVersion: "1" },
    19: {
      topics: [{
        name: "fz2",
        numPartitions: 1,
        replicationFactor: 1,
        assignments: [],
        configs: [],
      }],
      timeoutMs: 1000,
    },
  };
  const out: Uint8Array[] = [];
  for (const h of HANDLERS.values()) {
    const body = bodies[h.apiKey];
    if (!body) continue;
    for (const v of [h.minVersion, h.maxVersion, Math.floor((h.minVersion + h.maxVersion) / 2)]) {
      const w = new Writer();
      const pos = w.reserveInt32();
      REQUEST_HEADER.write(w, {
        requestApiKey: h.apiKey,
        requestApiVersion: v,
        correlationId: 7,
        clientId: "fuzz",
      }, requestHeaderVersion(h.apiKey, v));
      (API_SCHEMAS as unknown as Record<
        number,
        { request: { write(w: Writer, b: unknown, v: number): void } }
      >)[h.apiKey]
        .request.write(w, body, v);
      w.patchInt32(pos, w.length - 4);
      out.push(w.finishBytes());
    }
  }
  return out;
}

function mutate(frame: Uint8Array, rand: () => number): Uint8Array {
  const out = frame.slice();
  const kind = Math.floor(rand() * 5);
  switch (kind) {
    case 0: // bit flips anywhere after the size prefix
      for (let i = 0; i < 1 + rand() * 8; i++) {
        const p = 4 + Math.floor(rand() * (out.length - 4));
        out[p] ^= 1 << Math.floor(rand() * 8);
      }
      return out;
    case 1: { // truncate the body but keep the claimed size consistent
      const keep = 4 + Math.floor(rand() * (out.length - 4));
      const t = out.slice(0, keep);
      new DataView(t.buffer).setInt32(0, keep - 4);
      return t;
    }
    case 2: { // overwrite a 4-byte window with a huge length
      const p = 4 + Math.floor(rand() * Math.max(1, out.length - 8));
      new DataView(out.buffer).setInt32(p, 0x7fff_fff0);
      return out;
    }
    case 3: { // random bytes with a valid size prefix
      const n = 8 + Math.floor(rand() * 200);
      const r = new Uint8Array(4 + n);
      for (let i = 4; i < r.length; i++) r[i] = Math.floor(rand() * 256);
      new DataView(r.buffer).setInt32(0, n);
      return r;
    }
    default: // a lying size prefix
      new DataView(out.buffer).setInt32(0, Math.floor(rand() * 0x7fffffff) - 0x3fffffff);
      return out;
  }
}

async function exchange(port: number, bytes: Uint8Array): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(bytes);
    // Half a second is plenty on loopback: either a response, a close, or the
    // broker waits for bytes the frame claimed but never sent.
    const buf = new Uint8Array(4096);
    const timer = setTimeout(() => conn.close(), 500);
    try {
      await conn.read(buf);
    } catch { /* closed by us or by the broker */ }
    clearTimeout(timer);
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

Deno.test("Broker fuzz: random and mutated frames never take the broker down", async () => {
  await using b = await startTestBroker({ settings: { "max-frame-bytes": String(1 << 20) } });
  const rand = mulberry32(SEED);
  const base = seeds();
  const port = b.node.kafkaAddress.port;
  const rssBefore = Deno.memoryUsage().rss;
  for (let i = 0; i < ITERATIONS; i++) {
    const seed = base[Math.floor(rand() * base.length)];
    await exchange(port, rand() < 0.1 ? seed : mutate(seed, rand));
  }
  const growth = Deno.memoryUsage().rss - rssBefore;
  assert.ok(growth < MAX_RSS_GROWTH_BYTES, `RSS grew by ${growth} bytes`);
  const conn = await b.connect();
  const res = await conn.send(API_SCHEMAS[18], 3, {
    clientSoftwareName: "after-fuzz",
    clientSoftwareVersion: "1",
  });
  assert.equal(res!.errorCode, 0);
});
