/**
 * Bad input at the socket: each case gets its defined answer (a logged
 * close, or an error response) and the broker keeps serving others.
 */
import assert from "node:assert/strict";
import { startTestBroker, type TestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";

const API_VERSIONS = API_SCHEMAS[18];

/** Sends raw bytes on a fresh socket and reports whether the broker closed it (vs. answered). */
async function sendRaw(b: TestBroker, bytes: Uint8Array): Promise<"closed" | Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: b.node.kafkaAddress.port });
  try {
    await conn.write(bytes);
    const buf = new Uint8Array(1024);
    const n = await conn.read(buf);
    return n === null ? "closed" : buf.subarray(0, n);
  } catch {
    return "closed";
  } finally {
    conn.close();
  }
}

async function stillServes(b: TestBroker): Promise<void> {
  const conn = await b.connect();
  const res = await conn.send(API_VERSIONS, 3, {
    clientSoftwareName: "t",
    clientSoftwareVersion: "1",
  });
  assert.equal(res!.errorCode, 0);
}

function frame(body: number[]): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setInt32(0, body.length);
  out.set(body, 4);
  return out;
}

Deno.test("An oversized frame closes the connection without allocating it", async () => {
  await using b = await startTestBroker({ settings: { "max-frame-bytes": "4096" } });
  const before = Deno.memoryUsage().rss;
  // Claims 1 GiB; only the 4-byte prefix is sent.
  assert.equal(await sendRaw(b, new Uint8Array([0x40, 0, 0, 0])), "closed");
  assert.equal(await sendRaw(b, frame(new Array(5000).fill(0))), "closed");
  assert.ok(Deno.memoryUsage().rss - before < 256 * 1024 * 1024, "no 1 GiB allocation");
  await stillServes(b);
});

Deno.test("Negative and tiny frame sizes close the connection", async () => {
  await using b = await startTestBroker();
  assert.equal(await sendRaw(b, new Uint8Array([0xff, 0xff, 0xff, 0xff])), "closed");
  assert.equal(await sendRaw(b, frame([0, 18, 0])), "closed");
  await stillServes(b);
});

Deno.test("An unknown API key closes the connection", async () => {
  await using b = await startTestBroker();
  // api key 999, version 0, correlation 1, client id null
  assert.equal(await sendRaw(b, frame([0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff])), "closed");
  // A known but unsupported API (DeleteRecords, 21) is not advertised and closes too.
  assert.equal(
    await sendRaw(b, frame([0, 21, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 0])),
    "closed",
  );
  await stillServes(b);
});

Deno.test("An unsupported version of a served API closes the connection", async () => {
  await using b = await startTestBroker();
  // Fetch v0 is below the served range (4-17).
  assert.equal(await sendRaw(b, frame([0, 1, 0, 0, 0, 0, 0, 1, 0xff, 0xff])), "closed");
  await stillServes(b);
});

Deno.test("A malformed body closes the connection; the broker stays up", async () => {
  await using b = await startTestBroker();
  // Metadata v1 claiming 1000 topics with no bytes behind the count.
  assert.equal(
    await sendRaw(b, frame([0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0x03, 0xe8])),
    "closed",
  );
  // Produce v9 (flexible) truncated mid-header.
  assert.equal(await sendRaw(b, frame([0, 0, 0, 9, 0, 0, 0, 1, 0, 5])), "closed");
  await stillServes(b);
});

Deno.test("Responses come back in request order when requests are pipelined", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const sends = Array.from({ length: 50 }, (_, i) =>
    conn.send(API_SCHEMAS[3], 12, {
      topics: [{ topicId: "AAAAAAAAAAAAAAAAAAAAAA", name: `pipe-${i}` }],
      allowAutoTopicCreation: i % 2 === 0,
      includeTopicAuthorizedOperations: false,
    }));
  const results = await Promise.all(sends);
  results.forEach((r, i) => {
    assert.equal(r!.topics[0].name, `pipe-${i}`);
    assert.equal(r!.topics[0].errorCode, i % 2 === 0 ? 0 : 3);
  });
});
