/**
 * Damage at rest in embedded mode (issue 17): a broker writes acknowledged records into sealed
 * segments and its metadata log and stops; then, one trial at a time on a copy of that data
 * directory, random truncations and bit flips hit the embedded metadata log and snapshot, the
 * segment files and the write-ahead files. After each, the broker either refuses to start with a
 * clear message, or starts; when it starts it never serves a record with other bytes than were
 * produced (acknowledged records it cannot read are reported as errors or missing, never
 * replaced), and in every case no segment file is deleted. Seeded (KAFSCALE_CHAOS_SEED), so a
 * failing trial can be replayed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startBroker } from "../e2e/broker_process.ts";
import { verifyAcked } from "../e2e/client_runner.ts";
import { AckedProducer } from "../support/distributed.ts";

const PARTITIONS = 2;
const COUNT = 12_000;
/** A trial whose data is partly unreadable runs the verifier to this deadline. */
const VERIFY_DEADLINE_S = 12;
const TRIALS_PER_KIND = 2;
const SEED = Number(Deno.env.get("KAFSCALE_CHAOS_SEED") ?? 20261204);
/** What a refusal must say: the broker names the damage. */
const REFUSAL = /corrupt|checksum|damaged|cannot open|malformed|truncated|invalid/i;

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

type Damage = "flip" | "truncate";
interface Target {
  kind: string;
  pattern: RegExp;
}

const TARGETS: Target[] = [
  { kind: "metadata log", pattern: /^wal$/ },
  { kind: "metadata snapshot", pattern: /^snapshot$/ },
  { kind: "segment", pattern: /^segment-\d{20}\.kfs$/ },
  { kind: "segment index", pattern: /^segment-\d{20}\.index$/ },
  { kind: "write-ahead file", pattern: /\.wal$/ },
];

async function damage(path: string, how: Damage, next: () => number): Promise<string> {
  const bytes = await Deno.readFile(path);
  if (bytes.length === 0) return `${path} is empty; left alone`;
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
        const candidates = await filesUnder(pristine, target.pattern);
        if (candidates.length === 0) {
          outcomes.push(`${target.kind}: none on disk after a clean stop`);
          continue;
        }
        for (let trial = 0; trial < TRIALS_PER_KIND; trial++) {
          const how: Damage = trial % 2 === 0 ? "flip" : "truncate";
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
              broker = await startBroker({ dataDir: dir, readyTimeoutMs: 20_000 });
            } catch (err) {
              const message = String(err);
              assert.match(message, REFUSAL, `${what}: refused without naming the damage`);
              outcome = "refused to start with a clear message";
            }
            if (broker) {
              try {
                const { summary, describe } = await verifyAcked(
                  broker.bootstrap,
                  topic,
                  PARTITIONS,
                  acks,
                  VERIFY_DEADLINE_S,
                );
                assert.ok(summary, `${what}: no verifier summary.\n${describe}`);
                assert.equal(summary.wrong, 0, `${what}: wrong data was served.\n${describe}`);
                assert.equal(summary.duplicates, 0, `${what}: duplicates.\n${describe}`);
                outcome = summary.lost === 0
                  ? "started and served every acknowledged record"
                  : `started; ${summary.lost} acknowledged records unreadable (errors, not wrong data)`;
                await broker.stop();
              } finally {
                await broker.cleanup();
              }
            }
            const after = await filesUnder(dir, /\.kfs$/);
            for (const f of before) {
              assert.ok(after.includes(f), `${what}: ${f} was deleted`);
            }
            outcomes.push(`${target.kind}, ${what.replace(dir, "<dir>")}: ${outcome!}`);
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
