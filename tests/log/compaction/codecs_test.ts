/**
 * The compactor's codec adapters: round trips on seeded data, and batches
 * compressed by real clients (Java kafka-clients 1.0-3.9, librdkafka through
 * confluent-kafka and kcat, kafkajs) and fetched back from Apache Kafka
 * inflate to records that walk cleanly.
 */

import assert from "node:assert/strict";
import { COMPRESSION, COMPRESSION_NAMES } from "../../../lib/protocol/record_batch.ts";
import { readBatchRecords } from "../../../lib/log/compaction/batch_records.ts";
import { CodecError } from "../../../lib/log/compaction/record_codec.ts";
import { codecFor } from "../../../lib/log/compaction/record_codecs.ts";
import { isXerialFramed } from "../../../lib/log/compaction/snappy_codec.ts";
import { goldenBatches } from "./golden_batches.ts";
import { mulberry32 } from "./support.ts";

const CODEC_IDS = [COMPRESSION.gzip, COMPRESSION.snappy, COMPRESSION.lz4, COMPRESSION.zstd];
const MAX_BYTES = 64 * 1024 * 1024;

function sampleData(seed: number, size: number): Uint8Array {
  const random = mulberry32(seed);
  const out = new Uint8Array(size);
  // Half repetitive text, half noise, so both compressed and stored blocks occur.
  const words = ["key-", "value-", "kafscale", "\u0000\u0001", "compaction"].map((w) =>
    new TextEncoder().encode(w)
  );
  let pos = 0;
  while (pos < size) {
    if (random() < 0.5) {
      const w = words[Math.floor(random() * words.length)];
      out.set(w.subarray(0, Math.min(w.length, size - pos)), pos);
      pos += w.length;
    } else {
      const n = Math.min(size - pos, 1 + Math.floor(random() * 64));
      for (let i = 0; i < n; i++) out[pos + i] = Math.floor(random() * 256);
      pos += n;
    }
  }
  return out;
}

for (const id of CODEC_IDS) {
  const codec = codecFor(id);
  Deno.test(`${codec.name}: round trip over sizes 0 B to 300 KiB`, () => {
    for (const [i, size] of [0, 1, 7, 100, 4096, 65535, 65536, 65537, 200_000, 300_000].entries()) {
      const data = sampleData(1000 + i, size);
      const packed = codec.compress(data);
      assert.deepEqual(codec.decompress(packed, MAX_BYTES), data, `size ${size}`);
    }
  });

  Deno.test(`${codec.name}: refuses to inflate past the byte limit`, () => {
    const data = new Uint8Array(200_000); // zeros compress very well
    assert.throws(() => codec.decompress(codec.compress(data), 100_000), CodecError);
  });

  Deno.test(`${codec.name}: garbage is a CodecError, not a crash`, () => {
    const random = mulberry32(id);
    for (let round = 0; round < 50; round++) {
      const junk = new Uint8Array(1 + Math.floor(random() * 200));
      for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(random() * 256);
      try {
        codec.decompress(junk, 1_000_000);
      } catch (e) {
        assert.ok(e instanceof CodecError, `${codec.name}: ${e}`);
      }
    }
  });
}

Deno.test("snappy: raw blocks and xerial framing both read; re-encoding keeps the framing", () => {
  const snappy = codecFor(COMPRESSION.snappy);
  const data = sampleData(7, 100_000);
  const xerial = snappy.compress(data);
  assert.ok(isXerialFramed(xerial));
  const raw = snappy.compress(data, new Uint8Array([0x10, 0x00])); // "like" a raw block
  assert.ok(!isXerialFramed(raw));
  assert.deepEqual(snappy.decompress(raw, MAX_BYTES), data);
  assert.ok(isXerialFramed(snappy.compress(data, xerial)));
  // The 16-byte stream header matches what Java's snappy-java wrote in the captures.
  const java = goldenBatches().filter((g) =>
    g.source.startsWith("java") && g.batch.compression === COMPRESSION.snappy
  );
  assert.ok(java.length > 0);
  for (const { frame, batch, source } of java) {
    const header = frame.subarray(batch.position + 61, batch.position + 61 + 16);
    assert.deepEqual([...header], [...xerial.subarray(0, 16)], source);
  }
});

Deno.test("golden: every compressed batch from real clients inflates and its records walk", () => {
  const seen = new Map<string, number>();
  let compressed = 0;
  for (const { source, frame, batch } of goldenBatches()) {
    if (batch.compression === COMPRESSION.none || batch.isControl) continue;
    compressed++;
    const opened = readBatchRecords(frame, batch);
    assert.equal(opened.records.length, batch.recordsCount, source);
    for (const record of opened.records) {
      assert.ok(
        record.offset >= batch.baseOffset &&
          record.offset <= batch.baseOffset + batch.lastOffsetDelta,
      );
    }
    const client = source.split("/")[0].replace(/-[\d.]+$/, "");
    const key = `${COMPRESSION_NAMES[batch.compression]} from ${client}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  assert.ok(compressed > 0);
  for (
    const expected of [
      "gzip from java",
      "snappy from java",
      "lz4 from java",
      "zstd from java",
      "snappy from confluent-kafka",
      "gzip from kafkajs",
      "snappy from kcat",
      "zstd from kcat",
      "gzip from kcat",
    ]
  ) {
    assert.ok(seen.has(expected), `no golden batch for ${expected}: ${[...seen.keys()]}`);
  }
});

Deno.test("golden: re-compressing real clients' payloads reads back with the same records", () => {
  for (const { source, frame, batch } of goldenBatches()) {
    if (batch.compression === COMPRESSION.none || batch.isControl) continue;
    const codec = codecFor(batch.compression);
    const payload = frame.subarray(batch.position + 61, batch.position + batch.size);
    const section = codec.decompress(payload, MAX_BYTES);
    const again = codec.compress(section, payload);
    assert.deepEqual(codec.decompress(again, MAX_BYTES), section, source);
    if (batch.compression === COMPRESSION.snappy) {
      assert.equal(isXerialFramed(again), isXerialFramed(payload), source);
    }
  }
});

/** The data the fixtures in ./fixtures were made from (see fixtures/README.md). */
function referencePlain(): Uint8Array {
  const data = new Uint8Array(100_000);
  for (let i = 0; i < data.length; i++) {
    data[i] = ((i * 7 + (i >> 9)) % 251) & (i % 3 ? 0xff : 0x0f);
  }
  return data;
}

const FIXTURES = new URL("./fixtures/", import.meta.url);

Deno.test("lz4: frames written by liblz4 with checksums, content size, linked or 256 KiB blocks", () => {
  const lz4 = codecFor(COMPRESSION.lz4);
  for (const name of ["liblz4_linked_checksums.lz4", "liblz4_256k_independent.lz4"]) {
    const frame = Deno.readFileSync(new URL(name, FIXTURES));
    assert.deepEqual(lz4.decompress(frame, MAX_BYTES), referencePlain(), name);
  }
});

Deno.test("lz4: a corrupted content checksum is refused", () => {
  const frame = Deno.readFileSync(new URL("liblz4_linked_checksums.lz4", FIXTURES));
  frame[frame.length - 1] ^= 0xff;
  assert.throws(() => codecFor(COMPRESSION.lz4).decompress(frame, MAX_BYTES), /checksum/);
});

Deno.test("lz4: writes what Java's KafkaLZ4BlockOutputStream writes (independent 64 KiB blocks)", () => {
  const frame = codecFor(COMPRESSION.lz4).compress(referencePlain());
  assert.deepEqual([...frame.subarray(0, 6)], [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40]);
  // The whole 7-byte frame header (magic, FLG, BD, header checksum) matches Java's.
  const java = goldenBatches().filter((g) =>
    g.source.startsWith("java") && g.batch.compression === COMPRESSION.lz4
  );
  assert.ok(java.length > 0);
  for (const { frame: f, batch, source } of java) {
    const header = f.subarray(batch.position + 61, batch.position + 61 + 7);
    assert.deepEqual([...header], [...frame.subarray(0, 7)], source);
  }
});

Deno.test("snappy: xerial stream written with libsnappy blocks", () => {
  const stream = Deno.readFileSync(new URL("xerial.snappy", FIXTURES));
  assert.ok(isXerialFramed(stream));
  assert.deepEqual(codecFor(COMPRESSION.snappy).decompress(stream, MAX_BYTES), referencePlain());
});
