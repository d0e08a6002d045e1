// Round trip through kafkajs (run with Node): create the topic with the admin API, produce with
// acks=all and kafkajs' default partitioner, read the topic back from the beginning and check
// each record. Same record shape and JSON summary as roundtrip_common.py.
//
// kafkajs has no assign() API: it reads through a consumer group (a fresh group id per run,
// autoCommit off), so this run also needs FindCoordinator, JoinGroup, SyncGroup, Heartbeat and
// OffsetFetch from the broker. kafkajs ships gzip only; snappy, lz4 and zstd come from
// kafkajs-snappy, @2l/kafkajs-lz4 and a small codec over @mongodb-js/zstd below.
//
// Usage: node kafkajs_roundtrip.mjs BOOTSTRAP TOPIC PARTITIONS COUNT CODEC [--deadline-s S]
// Packages resolve from tests/compat/node (scripts/setup.sh runs npm ci there).

import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import process from "node:process";

const require = createRequire(new URL("../../compat/node/package.json", import.meta.url));
const { Kafka, CompressionTypes, CompressionCodecs, Partitioners, logLevel } = require("kafkajs");

const CLIENT = "kafkajs";
const VALUE_BYTES = 100;
const DEFAULT_DEADLINE_S = 120;
/** Messages per send() call, and send() calls in flight at once. */
const SEND_BATCH = 1000;
const SENDS_IN_FLIGHT_MAX = 4;
/** Problems listed in full before the rest are only counted. */
const ERRORS_SHOWN_MAX = 20;

const CODECS = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

function registerCodecs() {
  CompressionCodecs[CompressionTypes.Snappy] = require("kafkajs-snappy");
  const LZ4Codec = require("@2l/kafkajs-lz4");
  CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec;
  const zstd = require("@mongodb-js/zstd");
  CompressionCodecs[CompressionTypes.ZSTD] = () => ({
    compress: (encoder) => zstd.compress(encoder.buffer, 3),
    decompress: (buffer) => zstd.decompress(buffer),
  });
}

const keyOf = (i) => `k-${i}`;
function valueOf(i) {
  const head = `v-${i}-`;
  return head + "x".repeat(Math.max(0, VALUE_BYTES - head.length));
}

function parseArgs(argv) {
  const positional = [];
  let deadlineS = DEFAULT_DEADLINE_S;
  for (let j = 0; j < argv.length; j++) {
    if (argv[j] === "--deadline-s") deadlineS = Number(argv[++j]);
    else positional.push(argv[j]);
  }
  const [bootstrap, topic, partitions, count, compression] = positional;
  const args = {
    bootstrap,
    topic,
    partitions: Number(partitions),
    count: Number(count),
    compression,
    deadlineS,
  };
  if (
    positional.length !== 5 || !(args.partitions >= 1) || !(args.count >= 1) ||
    !(compression in CODECS) || !(deadlineS > 0)
  ) {
    console.error(
      "Usage: node kafkajs_roundtrip.mjs BOOTSTRAP TOPIC PARTITIONS COUNT " +
        "none|gzip|snappy|lz4|zstd [--deadline-s S]",
    );
    process.exit(2);
  }
  return args;
}

/** Checks consumed records: every i once, exact key/value/headers, offsets contiguous from 0. */
class Verifier {
  constructor(count, partitions) {
    this.count = count;
    this.partitions = partitions;
    this.seen = new Uint8Array(count);
    this.unique = 0;
    this.records = 0;
    this.offsets = new Map();
    this.errors = [];
    this.errorCount = 0;
  }

  error(message) {
    this.errorCount++;
    if (this.errors.length < ERRORS_SHOWN_MAX) this.errors.push(message);
  }

  add(partition, offset, key, value, headers) {
    this.records++;
    const where = `partition ${partition} offset ${offset}`;
    if (!(partition >= 0 && partition < this.partitions)) {
      this.error(`${where}: partition out of range 0..${this.partitions - 1}`);
      return;
    }
    if (!this.offsets.has(partition)) this.offsets.set(partition, []);
    this.offsets.get(partition).push(offset);
    const text = key ? key.toString() : "";
    const match = /^k-(\d+)$/.exec(text);
    if (!match) {
      this.error(`${where}: unexpected key ${JSON.stringify(text)}`);
      return;
    }
    const i = Number(match[1]);
    if (i >= this.count) {
      this.error(`${where}: key "${text}" beyond count ${this.count}`);
      return;
    }
    if (this.seen[i]) {
      this.error(`${where}: duplicate record "${text}"`);
      return;
    }
    this.seen[i] = 1;
    this.unique++;
    if (!value || !Buffer.from(valueOf(i)).equals(value)) {
      this.error(`${where}: value of "${text}" is ${JSON.stringify(String(value).slice(0, 40))}`);
    }
    const got = Object.entries(headers ?? {}).map(([k, v]) => [k, String(v)]);
    const want = [["h1", String(i)], ["h2", "x"]];
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      this.error(`${where}: headers of "${text}" are ${JSON.stringify(got)}`);
    }
  }

  finish() {
    const missing = this.count - this.unique;
    if (missing > 0) {
      const first = [];
      for (let i = 0; i < this.count && first.length < 10; i++) if (!this.seen[i]) first.push(i);
      this.error(`${missing} of ${this.count} records missing, first: ${JSON.stringify(first)}`);
    }
    for (const [partition, offsets] of [...this.offsets].sort((a, b) => a[0] - b[0])) {
      const ordered = [...offsets].sort((a, b) => a - b);
      const gap = ordered.findIndex((o, j) => o !== j);
      if (gap >= 0) {
        this.error(
          `partition ${partition}: offsets are not contiguous from 0 (position ${gap} holds ` +
            `${ordered[gap]}, ${ordered.length} records, max offset ${ordered.at(-1)})`,
        );
      }
    }
    if (this.count >= 100 * this.partitions && this.offsets.size < this.partitions) {
      this.error(`only ${this.offsets.size} of ${this.partitions} partitions got records`);
    }
  }
}

function stderrLogCreator() {
  return ({ namespace, level, log }) => {
    const { message, ...extra } = log;
    console.error(`kafkajs ${level} ${namespace}: ${message} ${JSON.stringify(extra)}`);
  };
}

async function produce(kafka, args, deadlineAt, errors) {
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  let acked = 0;
  try {
    const inFlight = new Set();
    for (let start = 0; start < args.count; start += SEND_BATCH) {
      if (Date.now() > deadlineAt) throw new Error(`deadline passed after ${start} records`);
      const messages = [];
      for (let i = start; i < Math.min(args.count, start + SEND_BATCH); i++) {
        messages.push({ key: keyOf(i), value: valueOf(i), headers: { h1: String(i), h2: "x" } });
      }
      const send = producer.send({
        topic: args.topic,
        acks: -1,
        compression: CODECS[args.compression],
        messages,
      }).then(
        () => acked += messages.length,
        (err) => errors.push(`send of records ${start}.. failed: ${err.message}`),
      ).finally(() => inFlight.delete(send));
      inFlight.add(send);
      if (inFlight.size >= SENDS_IN_FLIGHT_MAX) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  } finally {
    await producer.disconnect();
  }
  return acked;
}

/** Reads until `target` distinct records (the acknowledged ones) are seen or time runs out. */
async function consume(kafka, args, deadlineAt, verifier, target, errors) {
  const consumer = kafka.consumer({
    groupId: `roundtrip-${args.topic}-${process.pid}`,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: 500,
    // A crashed consumer fails the run now instead of retrying until the deadline.
    retry: { retries: 2, restartOnFailure: () => Promise.resolve(false) },
  });
  let finished;
  const allSeen = new Promise((resolve) => finished = resolve);
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    errors.push(`consumer crashed: ${payload.error?.name}: ${payload.error?.message}`);
    finished();
  });
  await consumer.connect();
  let timer;
  try {
    await consumer.subscribe({ topic: args.topic, fromBeginning: true });
    if (verifier.unique >= target) finished();
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, resolveOffset }) => {
        for (const m of batch.messages) {
          verifier.add(batch.partition, Number(m.offset), m.key, m.value, m.headers);
          resolveOffset(m.offset);
        }
        if (verifier.unique >= target) finished();
        await Promise.resolve();
      },
    });
    const timedOut = new Promise((resolve) => {
      timer = setTimeout(resolve, Math.max(0, deadlineAt - Date.now()));
    });
    await Promise.race([allSeen, timedOut]);
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  registerCodecs();
  const deadlineAt = Date.now() + args.deadlineS * 1000;
  const summary = {
    client: CLIENT,
    topic: args.topic,
    codec: args.compression,
    count: args.count,
    partitions: args.partitions,
  };
  const verifier = new Verifier(args.count, args.partitions);
  const errors = [];
  const kafka = new Kafka({
    clientId: "kafscale-roundtrip",
    brokers: [args.bootstrap],
    logLevel: logLevel.WARN,
    logCreator: stderrLogCreator,
  });
  try {
    let start = Date.now();
    const admin = kafka.admin();
    await admin.connect();
    try {
      const created = await admin.createTopics({
        topics: [{ topic: args.topic, numPartitions: args.partitions, replicationFactor: 1 }],
        waitForLeaders: true,
        timeout: Math.max(1000, deadlineAt - Date.now()),
      });
      if (!created) errors.push(`topic "${args.topic}" already existed; use a fresh name`);
    } finally {
      await admin.disconnect();
    }
    summary.create_ms = Date.now() - start;
    start = Date.now();
    summary.acked = await produce(kafka, args, deadlineAt, errors);
    summary.produce_ms = Date.now() - start;
    start = Date.now();
    await consume(kafka, args, deadlineAt, verifier, summary.acked, errors);
    summary.consume_ms = Date.now() - start;
    verifier.finish();
  } catch (err) {
    errors.push(`${err.name}: ${err.message}`);
  }
  const all = [...errors, ...verifier.errors];
  const errorCount = errors.length + verifier.errorCount;
  Object.assign(summary, {
    consumed: verifier.records,
    unique: verifier.unique,
    partitions_used: verifier.offsets.size,
    ok: errorCount === 0,
    error_count: errorCount,
    errors: all.slice(0, ERRORS_SHOWN_MAX),
  });
  for (const e of all) console.error(`${CLIENT}: ${e}`);
  console.log(JSON.stringify(summary));
  return errorCount === 0 ? 0 : 1;
}

process.exitCode = await main();
// Codec thread pools and sockets must not keep a finished run alive.
process.exit(process.exitCode);
