/**
 * The objects a broker writes to S3 follow DESIGN.md "Storage format", checked by a parser
 * written here from the design text alone (not lib/log/segment_format.ts, not lib/protocol):
 * a real client produces through `kafscale serve` on a real MinIO and etcd, and every object in
 * the bucket is read back over plain signed HTTP (tests/support/s3_raw.ts) and taken apart:
 *
 * - keys `<namespace>/<topic>/<partition>/segment-<base offset, 20 digits>.kfs|.index`;
 * - segment: 32-byte header (`KAFS`, version 1, flags 0, base offset, message count, creation
 *   time, zero), Kafka v2 record batches (CRC32C valid, offsets contiguous from the base), and a
 *   16-byte footer (CRC32C of the body, last offset, `END!`), big-endian;
 * - index: 16-byte header (`IDX\0`, version 1, entry count, interval, zero) and 12-byte entries
 *   (offset, byte position of a batch start), the first batch always indexed, then one batch
 *   whenever at least `interval` messages or 64 KiB were written since the last entry;
 * - segments are sealed from the write-ahead stream; a clean stop seals what is left, so after
 *   it every acknowledged record is in a segment;
 * - per partition, segments tile offsets 0 .. end-1, and each acknowledged record sits at the
 *   partition and offset it was acknowledged at, with its key and value.
 */
import assert from "node:assert/strict";
import { AckedProducer, startBackends, startDistributedBroker } from "../support/distributed.ts";
import { getObject, listObjects, type S3Access } from "../support/s3_raw.ts";

const PARTITIONS = 4;
const RECORDS = 20_000;
const NAMESPACE = "format-ns";
/** Small segments (the smallest the broker accepts), so partitions have several. */
const SEGMENT_BYTES = 64 * 1024;
const DEADLINE_S = 60;
const VALUE_BYTES = 100;

// ---- An independent reader of the stored layout --------------------------------------------

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) crc = CRC32C_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function ascii(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

interface Batch {
  position: number;
  baseOffset: number;
  lastOffsetDelta: number;
  recordsCount: number;
  attributes: number;
  /** The record bytes (after the 61-byte batch header). */
  records: Uint8Array;
}

interface Segment {
  baseOffset: number;
  messageCount: number;
  createdMs: number;
  lastOffset: number;
  batches: Batch[];
}

function parseSegment(bytes: Uint8Array, key: string): Segment {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.ok(bytes.length >= 48, `${key}: ${bytes.length} bytes is shorter than header + footer`);
  assert.equal(ascii(bytes.subarray(0, 4)), "KAFS", `${key}: header magic`);
  assert.equal(view.getUint16(4), 1, `${key}: version`);
  assert.equal(view.getUint16(6), 0, `${key}: flags`);
  const baseOffset = Number(view.getBigInt64(8));
  const messageCount = view.getInt32(16);
  const createdMs = Number(view.getBigInt64(20));
  assert.equal(view.getUint32(28), 0, `${key}: header padding`);
  const footer = bytes.length - 16;
  assert.equal(ascii(bytes.subarray(footer + 12)), "END!", `${key}: footer magic`);
  const body = bytes.subarray(32, footer);
  assert.equal(view.getUint32(footer), crc32c(body), `${key}: body CRC32C`);
  const lastOffset = Number(view.getBigInt64(footer + 4));

  const batches: Batch[] = [];
  let pos = 32;
  let expected = baseOffset;
  let records = 0;
  for (let n = 0; pos < footer; n++) {
    assert.ok(n < 1_000_000, `${key}: too many batches`);
    const batchBase = Number(view.getBigInt64(pos));
    const length = view.getInt32(pos + 8);
    const end = pos + 12 + length;
    assert.ok(length >= 49 && end <= footer, `${key}: batch at ${pos} has length ${length}`);
    assert.equal(view.getInt8(pos + 16), 2, `${key}: batch at ${pos} magic`);
    assert.equal(
      view.getUint32(pos + 17),
      crc32c(bytes.subarray(pos + 21, end)),
      `${key}: batch at ${pos} CRC32C`,
    );
    assert.equal(batchBase, expected, `${key}: batch at ${pos} base offset`);
    const lastOffsetDelta = view.getInt32(pos + 23);
    const recordsCount = view.getInt32(pos + 57);
    assert.ok(recordsCount > 0 && lastOffsetDelta === recordsCount - 1, `${key}: batch counts`);
    batches.push({
      position: pos,
      baseOffset: batchBase,
      lastOffsetDelta,
      recordsCount,
      attributes: view.getInt16(pos + 21),
      records: bytes.subarray(pos + 61, end),
    });
    records += recordsCount;
    expected = batchBase + lastOffsetDelta + 1;
    pos = end;
  }
  assert.equal(pos, footer, `${key}: batches end exactly at the footer`);
  assert.ok(batches.length > 0, `${key}: no batches`);
  assert.equal(lastOffset, expected - 1, `${key}: footer last offset`);
  assert.equal(messageCount, records, `${key}: header message count`);
  return { baseOffset, messageCount, createdMs, lastOffset, batches };
}

function checkIndex(bytes: Uint8Array, key: string, segment: Segment): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.equal(ascii(bytes.subarray(0, 4)), "IDX\0", `${key}: magic`);
  assert.equal(view.getUint16(4), 1, `${key}: version`);
  const count = view.getInt32(6);
  const interval = view.getInt32(10);
  assert.equal(view.getUint16(14), 0, `${key}: header padding`);
  assert.ok(interval > 0, `${key}: interval ${interval}`);
  assert.equal(bytes.length, 16 + 12 * count, `${key}: size for ${count} entries`);
  const entries = Array.from({ length: count }, (_, i) => ({
    offset: Number(view.getBigInt64(16 + 12 * i)),
    position: view.getInt32(16 + 12 * i + 8),
  }));
  // The rule from DESIGN.md: the first batch, then a batch whenever at least `interval`
  // messages were written since the last entry.
  const expected: { offset: number; position: number }[] = [];
  let since = 0;
  for (const b of segment.batches) {
    const last = expected.at(-1);
    if (!last || since >= interval || b.position - last.position >= 64 * 1024) {
      expected.push({ offset: b.baseOffset, position: b.position });
      since = 0;
    }
    since += b.recordsCount;
  }
  assert.deepEqual(entries, expected, `${key}: entries`);
  return count;
}

/** Reads an unsigned LEB128 varint, zigzag-decoded (Kafka record fields). */
function varint(bytes: Uint8Array, at: { pos: number }): number {
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 10; i++) {
    const b = bytes[at.pos++];
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
    shift += 7;
  }
  throw new Error("Varint longer than 10 bytes");
}

/** Keys and values of an uncompressed batch's records. */
function decodeRecords(batch: Batch): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  const bytes = batch.records;
  const at = { pos: 0 };
  const text = (length: number) => {
    if (length < 0) return "";
    const s = new TextDecoder().decode(bytes.subarray(at.pos, at.pos + length));
    at.pos += length;
    return s;
  };
  for (let i = 0; i < batch.recordsCount; i++) {
    const length = varint(bytes, at);
    const end = at.pos + length;
    at.pos += 1; // attributes
    varint(bytes, at); // timestamp delta
    assert.equal(varint(bytes, at), i, "offset delta");
    const key = text(varint(bytes, at));
    const value = text(varint(bytes, at));
    out.push({ key, value });
    at.pos = end; // headers
  }
  assert.equal(at.pos, bytes.length, "records fill the batch");
  return out;
}

// ---- The test ----------------------------------------------------------------------------------

interface PartitionObjects {
  segments: Map<number, string>;
  indexes: Map<number, string>;
}

async function readTopic(
  s3: S3Access,
  topic: string,
): Promise<{ segments: Map<number, Segment[]>; indexEntries: number }> {
  const objects = await listObjects(s3, `${NAMESPACE}/${topic}/`);
  const byPartition = new Map<number, PartitionObjects>();
  const keyPattern = new RegExp(
    `^${NAMESPACE}/${topic}/(\\d+)/segment-(\\d{20})\\.(kfs|index)$`,
  );
  for (const o of objects) {
    const m = keyPattern.exec(o.key);
    assert.ok(m, `Unexpected object key "${o.key}"`);
    const partition = Number(m[1]);
    const entry = byPartition.get(partition) ?? { segments: new Map(), indexes: new Map() };
    (m[3] === "kfs" ? entry.segments : entry.indexes).set(Number(m[2]), o.key);
    byPartition.set(partition, entry);
  }
  assert.deepEqual([...byPartition.keys()].sort(), [...Array(PARTITIONS).keys()]);
  const segments = new Map<number, Segment[]>();
  let indexEntries = 0;
  for (const [partition, objs] of byPartition) {
    assert.deepEqual(
      [...objs.indexes.keys()].sort((a, b) => a - b),
      [...objs.segments.keys()].sort((a, b) => a - b),
      `partition ${partition}: one index per segment`,
    );
    const parsed: Segment[] = [];
    for (const base of [...objs.segments.keys()].sort((a, b) => a - b)) {
      const key = objs.segments.get(base)!;
      const segment = parseSegment(await getObject(s3, key), key);
      assert.equal(segment.baseOffset, base, `${key}: key and header base offset`);
      const indexKey = objs.indexes.get(base)!;
      indexEntries += checkIndex(await getObject(s3, indexKey), indexKey, segment);
      const last = parsed.at(-1);
      assert.equal(base, last ? last.lastOffset + 1 : 0, `${key}: follows the previous segment`);
      parsed.push(segment);
    }
    segments.set(partition, parsed);
  }
  return { segments, indexEntries };
}

Deno.test("distributed: segment and index objects in S3 follow the DESIGN.md layout", async () => {
  await using backends = await startBackends();
  const broker = await startDistributedBroker(backends, {
    args: ["--namespace", NAMESPACE, "--segment-bytes", String(SEGMENT_BYTES)],
  });
  const s3: S3Access = backends.s3;
  const startedMs = Date.now();
  try {
    const topics = { plain: `format-plain-${startedMs}`, lz4: `format-lz4-${startedMs}` };
    const producers = await Promise.all([
      AckedProducer.start({
        bootstrap: broker.bootstrap,
        topic: topics.plain,
        partitions: PARTITIONS,
        count: RECORDS,
        deadlineS: DEADLINE_S,
      }),
      AckedProducer.start({
        bootstrap: broker.bootstrap,
        topic: topics.lz4,
        partitions: PARTITIONS,
        count: RECORDS,
        deadlineS: DEADLINE_S,
        settings: ["compression.type=lz4"],
      }),
    ]);
    for (const p of producers) {
      assert.equal(await p.exited, 0, p.describe());
      assert.equal(p.acks.length, RECORDS, p.describe());
    }
    // A clean stop seals everything still in the write-ahead stream.
    assert.equal(await broker.stop(), 0, broker.logs());

    const plain = await readTopic(s3, topics.plain);
    const lz4 = await readTopic(s3, topics.lz4);
    const doneMs = Date.now();
    for (const { segments } of [plain, lz4]) {
      for (const list of segments.values()) {
        for (const s of list) {
          assert.ok(s.createdMs >= startedMs - 1000 && s.createdMs <= doneMs, "creation time");
        }
      }
    }

    // Every acknowledged record is where its ack said, with its content.
    const records = new Map<string, { key: string; value: string }>();
    for (const [partition, list] of plain.segments) {
      for (const segment of list) {
        for (const batch of segment.batches) {
          assert.equal(batch.attributes & 0x07, 0, "uncompressed batches");
          decodeRecords(batch).forEach((r, i) =>
            records.set(`${partition}/${batch.baseOffset + i}`, r)
          );
        }
      }
    }
    assert.equal(records.size, RECORDS);
    for (const ack of producers[0].acks) {
      const r = records.get(`${ack.partition}/${ack.offset}`);
      assert.equal(r?.key, `k-${ack.i}`, `record at ${ack.partition}/${ack.offset}`);
      assert.ok(r.value.startsWith(`v-${ack.i}-`) && r.value.length === VALUE_BYTES);
    }
    // Compressed batches are stored as produced (codec bits kept, never re-encoded).
    let lz4Records = 0;
    for (const list of lz4.segments.values()) {
      for (const segment of list) {
        lz4Records += segment.messageCount;
        for (const batch of segment.batches) assert.equal(batch.attributes & 0x07, 3, "lz4");
      }
    }
    assert.equal(lz4Records, RECORDS);
    const segmentCount = [...plain.segments.values(), ...lz4.segments.values()]
      .reduce((n, l) => n + l.length, 0);
    console.log(
      `format: ${segmentCount} segments with ${plain.indexEntries + lz4.indexEntries} index ` +
        `entries parsed; ${RECORDS} plain records matched their acks`,
    );
  } finally {
    await broker.cleanup();
  }
});
