/**
 * Damage at rest in embedded mode (issue 17): a broker writes acknowledged records into sealed
 * segments and its metadata log and stops; then, one trial at a time on a copy of that data
 * directory, random truncations and bit flips hit the embedded metadata log and snapshot, the
 * segment files and the write-ahead files. After each, the broker either refuses to start with a
 * clear message, or starts; when it starts it never serves a record with other bytes than were
 * produced inside a batch whose CRC holds (acknowledged records it cannot read are errors,
 * missing, or in a batch whose CRC fails, which CRC-checking clients reject), and in every case no
 * segment file is deleted. Segments are damaged twice more with the damaged broker reading them
 * by ranges from their index (no segment cache), the path large segments take: once by random
 * flips and truncations, once by a flipped bit in a batch's base offset, which its CRC does not
 * cover. Indexes are damaged with the broker reading by ranges too (only those reads use them).
 * Seeded (KAFSCALE_CHAOS_SEED), so a failing trial can be replayed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startBroker } from "../e2e/broker_process.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { decodeRecordBatches } from "../../lib/protocol/records.ts";
import { computeBatchCrc, readStoredCrc } from "../../lib/protocol/record_batch.ts";
import { AckedProducer } from "../support/distributed.ts";
import { SEGMENT_FOOTER_BYTES, SEGMENT_HEADER_BYTES } from "../../lib/log/segment_format.ts";

const PARTITIONS = 2;
const COUNT = 12_000;
const TRIALS_PER_KIND = 2;
const SEED = Number(Deno.env.get("KAFSCALE_CHAOS_SEED") ?? 20261204);
/** What a refusal must say: the broker names the damage. */
const REFUSAL = /corrupt|checksum|damaged|cannot open|malformed|truncated|invalid/i;

const dec = new TextDecoder();
/** The producer's record `i` (tests/e2e/clients/roundtrip_common.py): key, value and headers. */
const VALUE_BYTES = 100;
function expectedValue(i: number): string {
  const head = `v-${i}-`;
  return head + "x".repeat(Math.max(0, VALUE_BYTES - head.length));
}

/**
 * Reads every partition back from offset 0 with Fetch and checks each batch's CRC and each record
 * against what was acknowledged at its offset. A partition answering an error, or a batch whose
 * CRC fails (what every CRC-checking client rejects: Java, franz-go, librdkafka with check.crcs),
 * ends that partition's read: its remaining acknowledged records count as unreadable. A record
 * with other bytes inside a batch whose CRC holds would be wrong data.
 */
async function readBack(
  bootstrap: string,
  topic: string,
  acks: string[],
): Promise<{ wrong: number; unreadable: number; duplicates: number; detail: string }> {
  const acked = new Map<string, number>();
  for (const line of acks) {
    const [p, o, i] = line.split(" ").map(Number);
    acked.set(`${p}:${o}`, i);
  }
  const conn = await KafkaConnection.connect(bootstrap, "at-rest-check");
  let wrong = 0;
  let duplicates = 0;
  const problems: string[] = [];
  const seenI = new Set<number>();
  const read = new Set<string>();
  try {
    for (let partition = 0; partition < PARTITIONS; partition++) {
      let offset = 0;
      for (let round = 0; round < 100_000; round++) {
        const res = await conn.send(API_SCHEMAS[1], 12, {
          replicaId: -1,
          maxWaitMs: 0,
          minBytes: 0,
          maxBytes: 1 << 20,
          isolationLevel: 0,
          sessionId: 0,
          sessionEpoch: -1,
          topics: [{
            topic,
            partitions: [{
              partition,
              currentLeaderEpoch: -1,
              fetchOffset: offset,
              lastFetchedEpoch: -1,
              logStartOffset: -1,
              partitionMaxBytes: 1 << 20,
            }],
          }],
          forgottenTopicsData: [],
          rackId: "",
        });
        const part = res!.responses[0]?.partitions[0];
        if (!part || part.errorCode !== 0 || offset >= part.highWatermark) break;
        const bytes = part.records ?? new Uint8Array(0);
        if (bytes.length === 0) break;
        let decoded;
        try {
          decoded = decodeRecordBatches(bytes);
        } catch {
          break; // undecodable: a client fails here, it gets no records
        }
        const crcOk = decoded.batches.every((b) =>
          readStoredCrc(bytes, b.position) === computeBatchCrc(bytes, b.position, b.size)
        );
        if (!crcOk) break; // rejected by CRC-checking clients
        let next = offset;
        for (const r of decoded.records) {
          if (r.offset < offset) continue;
          next = r.offset + 1;
          const i = acked.get(`${partition}:${r.offset}`);
          const key = r.key ? dec.decode(r.key) : "";
          if (i === undefined) continue; // not acknowledged (none here: a clean run)
          read.add(`${partition}:${r.offset}`);
          const ok = key === `k-${i}` && r.value !== null &&
            dec.decode(r.value) === expectedValue(i);
          if (!ok) {
            wrong++;
            if (problems.length < 5) problems.push(`${partition}:${r.offset} has key "${key}"`);
          }
          if (seenI.has(i)) duplicates++;
          seenI.add(i);
        }
        if (next === offset) break;
        offset = next;
      }
    }
  } finally {
    conn.close();
  }
  return { wrong, unreadable: acked.size - read.size, duplicates, detail: problems.join("; ") };
}

/** mulberry32: a small seeded generator, so trials can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function filesUnder(dir: string, pattern: RegExp): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const path = join(d, e.name);
      if (e.isDirectory) await walk(path);
      else if (pattern.test(e.name)) out.push(path);
    }
  };
  await walk(dir);
  return out.sort();
}

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    const src = join(from, e.name);
    const dst = join(to, e.name);
    if (e.isDirectory) await copyDir(src, dst);
    else await Deno.copyFile(src, dst);
  }
}

/** "offset" flips a bit in the base offset of a segment's batch: outside the batch's CRC. */
type Damage = "flip" | "truncate" | "offset";
interface Target {
  kind: string;
  pattern: RegExp;
  /** Flags of the damaged broker's start. */
  args?: string[];
  /** Damages the trials take in turn (default a flip, then a truncation). */
  damages?: Damage[];
}

const SEGMENT = /^segment-\d{20}\.kfs$/;
/** No segment cache: every segment is read by ranges from its index, never whole. */
const RANGED = ["--cache-bytes", "0"];

const TARGETS: Target[] = [
  { kind: "metadata log", pattern: /^wal$/ },
  { kind: "metadata snapshot", pattern: /^snapshot$/ },
  { kind: "segment", pattern: SEGMENT },
  { kind: "segment read by ranges", pattern: SEGMENT, args: RANGED },
  {
    kind: "segment batch base offset read by ranges",
    pattern: SEGMENT,
    args: RANGED,
    damages: ["offset"],
  },
  // Indexes matter only to reads by ranges.
  { kind: "segment index", pattern: /^segment-\d{20}\.index$/, args: RANGED },
  { kind: "write-ahead file", pattern: /\.wal$/ },
];

/** Positions of a segment's batches (after its header, before its footer). */
function batchPositions(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  for (let at = SEGMENT_HEADER_BYTES; at + 12 <= bytes.length - SEGMENT_FOOTER_BYTES;) {
    out.push(at);
    at += 12 + view.getInt32(at + 8);
  }
  return out;
}

async function damage(path: string, how: Damage, next: () => number): Promise<string> {
  const bytes = await Deno.readFile(path);
  if (bytes.length === 0) return `${path} is empty; left alone`;
  if (how === "offset") {
    // A batch after the first, so a ranged read from the segment's start meets it mid-scan; a
    // bit of the low 32 bits of its base offset.
    const batches = batchPositions(bytes);
    assert.ok(batches.length > 1, `${path} holds ${batches.length} batch`);
    const b = 1 + Math.floor(next() * (batches.length - 1));
    const byte = batches[b] + 4 + Math.floor(next() * 4);
    const bit = Math.floor(next() * 8);
    bytes[byte] ^= 1 << bit;
    await Deno.writeFile(path, bytes);
    return `flipped bit ${bit} of byte ${byte} (base offset of batch ${b} of ${batches.length}) ` +
      `in ${path}`;
  }
  const at = Math.floor(next() * bytes.length);
  if (how === "flip") {
    const bit = Math.floor(next() * 8);
    bytes[at] ^= 1 << bit;
    await Deno.writeFile(path, bytes);
    return `flipped bit ${bit} of byte ${at} of ${bytes.length} in ${path}`;
  }
  await Deno.writeFile(path, bytes.subarray(0, at));
  return `truncated ${path} from ${bytes.length} to ${at} bytes`;
}

Deno.test({
  name: "chaos at rest: truncations and bit flips in metadata, segments and write-ahead files " +
    "are refused or survived, never served as wrong data, never deleted",
  async fn() {
    console.log(`chaos at rest: seed ${SEED} (KAFSCALE_CHAOS_SEED to replay)`);
    const next = random(SEED);
    const pristine = await Deno.makeTempDir({ prefix: "kafscale-chaos-rest-" });
    const topic = "at-rest";
    let acks: string[];
    try {
      {
        // Small segments, so the data spans several sealed ones; a clean stop seals the rest.
        await using broker = await startBroker({
          dataDir: pristine,
          args: ["--segment-bytes", String(64 * 1024)],
        });
        const producer = await AckedProducer.start({
          bootstrap: broker.bootstrap,
          topic,
          partitions: PARTITIONS,
          count: COUNT,
          deadlineS: 120,
        });
        assert.equal(await producer.exited, 0, producer.describe());
        acks = producer.acks.map((a) => `${a.partition} ${a.offset} ${a.i}`);
        assert.equal(acks.length, COUNT);
        assert.equal(await broker.stop(), 0, broker.logs());
      }
      const segments = await filesUnder(pristine, /\.kfs$/);
      assert.ok(segments.length > PARTITIONS, `few segments: ${segments.join(", ")}`);
      const outcomes: string[] = [];
      for (const target of TARGETS) {
        let candidates = await filesUnder(pristine, target.pattern);
        if (target.damages?.includes("offset")) {
          const many = [];
          for (const c of candidates) {
            if (batchPositions(await Deno.readFile(c)).length > 1) many.push(c);
          }
          assert.ok(many.length > 0, `none of ${candidates.length} segments holds two batches`);
          candidates = many;
        }
        if (candidates.length === 0) {
          outcomes.push(`${target.kind}: none on disk after a clean stop`);
          continue;
        }
        for (let trial = 0; trial < TRIALS_PER_KIND; trial++) {
          const damages = target.damages ?? ["flip", "truncate"];
          const how = damages[trial % damages.length];
          const dir = await Deno.makeTempDir({ prefix: "kafscale-chaos-trial-" });
          try {
            await copyDir(pristine, dir);
            const victim = candidates[Math.floor(next() * candidates.length)]
              .replace(pristine, dir);
            const what = await damage(victim, how, next);
            const before = await filesUnder(dir, /\.kfs$/);
            let outcome: string;
            let broker;
            try {
              broker = await startBroker({
                dataDir: dir,
                readyTimeoutMs: 20_000,
                args: target.args,
              });
            } catch (err) {
              const message = String(err);
              assert.match(message, REFUSAL, `${what}: refused without naming the damage`);
              outcome = "refused to start with a clear message";
            }
            if (broker) {
              try {
                const check = await readBack(broker.bootstrap, topic, acks);
                assert.equal(check.wrong, 0, `${what}: wrong data was served: ${check.detail}`);
                assert.equal(check.duplicates, 0, `${what}: duplicates: ${check.detail}`);
                outcome = check.unreadable === 0
                  ? "started and served every acknowledged record"
                  : `started; ${check.unreadable} acknowledged records unreadable (errors or ` +
                    `batches failing their CRC, never other bytes)`;
                await broker.stop();
              } finally {
                await broker.cleanup();
              }
            }
            const after = await filesUnder(dir, /\.kfs$/);
            for (const f of before) {
              assert.ok(after.includes(f), `${what}: ${f} was deleted`);
            }
            const flags = target.args ? ` (${target.args.join(" ")})` : "";
            outcomes.push(`${target.kind}${flags}, ${what.replace(dir, "<dir>")}: ${outcome!}`);
          } finally {
            await Deno.remove(dir, { recursive: true });
          }
        }
      }
      console.log(`chaos at rest (seed ${SEED}):\n  ${outcomes.join("\n  ")}`);
    } finally {
      await Deno.remove(pristine, { recursive: true });
    }
  },
});
