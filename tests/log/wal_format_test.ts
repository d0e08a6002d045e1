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
import { crc32c } from "../../lib/protocol/crc32c.ts";
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
