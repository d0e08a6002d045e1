import assert from "node:assert/strict";
import {
  encodeWalRound,
  parseWalChunkHeader,
  scanWalChunks,
  walChunkPayload,
  WalFormatError,
  walObjectCreatedMs,
  walObjectKey,
} from "../../lib/log/wal_format.ts";
import { scanWalObject } from "../../lib/log/wal_reader.ts";
import { crc32c } from "../../lib/protocol/crc32c.ts";
import { MemoryObjectStore } from "../../lib/storage/memory_object_store.ts";
import { joinBytes } from "../../lib/util/bytes.ts";
import { batch } from "./log_fixture.ts";

const TOPIC_ID = "AAECAwQFBgcICQoLDA0ODw";

function round() {
  const a = batch(["a0", "a1"]);
  const b = batch(["b0"]);
  return encodeWalRound([
    {
      topic: "orders",
      topicId: TOPIC_ID,
      partition: 3,
      epoch: 7,
      baseOffset: 10,
      endOffset: 12,
      batches: [a.records],
    },
    {
      topic: "ünïcode",
      topicId: "",
      partition: 0,
      epoch: 1,
      baseOffset: 0,
      endOffset: 1,
      batches: [b.records],
    },
  ]);
}

Deno.test("wal format: chunks round-trip with their headers, CRCs and batch bytes", () => {
  const { bytes, chunks } = round();
  assert.equal(chunks.length, 2);
  const first = parseWalChunkHeader(bytes.subarray(chunks[0].position), true);
  assert.deepEqual(
    [first.topic, first.topicId, first.partition, first.epoch, first.baseOffset, first.endOffset],
    ["orders", TOPIC_ID, 3, 7, 10, 12],
  );
  assert.equal(first.chunkBytes, chunks[0].length);
  const second = parseWalChunkHeader(bytes.subarray(chunks[1].position), true);
  assert.equal(second.topic, "ünïcode");
  assert.equal(second.topicId, "");
  // The CRC combined from the batches' own CRCs equals a CRC over the bytes.
  const view = new DataView(bytes.buffer);
  assert.equal(view.getUint32(8), crc32c(bytes, 12, chunks[0].length));
  // The payload is exactly the batches.
  const payload = walChunkPayload(
    bytes.subarray(chunks[0].position, chunks[0].position + chunks[0].length),
    {
      partition: 3,
      baseOffset: 10,
      endOffset: 12,
    },
  );
  assert.deepEqual(payload, chunks[0].payload);
});

Deno.test("wal format: a flipped bit, a wrong index entry and a torn tail are caught", () => {
  const { bytes, chunks } = round();
  const whole = bytes.subarray(0, chunks[0].length);
  assert.throws(
    () => walChunkPayload(whole, { partition: 4, baseOffset: 10, endOffset: 12 }),
    WalFormatError,
  );
  assert.throws(
    () =>
      walChunkPayload(whole.subarray(0, whole.length - 1), {
        partition: 3,
        baseOffset: 10,
        endOffset: 12,
      }),
    WalFormatError,
  );
  const flipped = bytes.slice();
  flipped[chunks[0].position + 70] ^= 1;
  assert.throws(() => parseWalChunkHeader(flipped, true), /CRC32C mismatch/);
  // A torn tail: scanning stops after the last whole chunk.
  const torn = bytes.subarray(0, bytes.length - 3);
  const scanned = scanWalChunks(torn);
  assert.equal(scanned.chunks.length, 1);
  assert.equal(scanned.validBytes, chunks[0].length);
  assert.equal(scanWalChunks(bytes).chunks.length, 2);
});

Deno.test("wal format: object keys carry the broker and the creation time", () => {
  const key = walObjectKey("default", 12, "1796297273524-0123456789abcdef");
  assert.equal(key, "default/~wal/12/1796297273524-0123456789abcdef.wal");
  assert.equal(walObjectCreatedMs(key), 1796297273524);
  assert.equal(walObjectCreatedMs("default/orders/0/segment-00000000000000000000.kfs"), null);
});

Deno.test("wal format: an object scanned window by window gives the chunks a whole scan gives", async () => {
  // Rounds of chunks from a few bytes to ~3 KiB, one after another as in a write-ahead file.
  const parts: Uint8Array[] = [];
  for (let r = 0; r < 12; r++) {
    const values = Array.from(
      { length: 1 + (r * 7) % 5 },
      (_, i) => "x".repeat(1 + (r * 131 + i * 37) % 700),
    );
    parts.push(
      encodeWalRound([{
        topic: `t${r % 3}`,
        topicId: TOPIC_ID,
        partition: r,
        epoch: 1,
        baseOffset: r * 10,
        endOffset: r * 10 + values.length,
        batches: [batch(values).records],
      }, {
        topic: "other",
        topicId: "",
        partition: 0,
        epoch: 2,
        baseOffset: r,
        endOffset: r + 1,
        batches: [batch([`o${r}`]).records],
      }]).bytes,
    );
  }
  const whole = joinBytes(parts, parts.reduce((n, p) => n + p.length, 0));
  const store = new MemoryObjectStore();
  const cases: [string, Uint8Array][] = [
    ["whole", whole],
    ["torn tail", whole.subarray(0, whole.length - 5)],
    [
      "garbage after the chunks",
      joinBytes([whole, new Uint8Array(300).fill(7)], whole.length + 300),
    ],
  ];
  for (const [name, bytes] of cases) {
    await store.put(name, bytes);
    const expected = scanWalChunks(bytes).chunks;
    assert.equal(expected.length, name === "torn tail" ? 23 : 24, name);
    for (const window of [1, 7, 64, 500, 1_000, 3_000, 10_000, 1 << 20]) {
      const seen: unknown[] = [];
      assert.equal(
        await scanWalObject(store, name, bytes.length, (c) => seen.push(c), window),
        true,
      );
      assert.deepEqual(seen, expected, `${name}, windows of ${window} bytes`);
    }
  }
  // Listed longer than it is (it shrank, or a short read): the scan ends where the bytes do.
  const seen: unknown[] = [];
  assert.equal(
    await scanWalObject(store, "torn tail", whole.length + 100, (c) => seen.push(c), 64),
    true,
  );
  assert.equal(seen.length, 23);
  assert.equal(await scanWalObject(store, "missing", 100, () => {}), false);
});
