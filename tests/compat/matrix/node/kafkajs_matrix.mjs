// The matrix scenario through kafkajs (run with Node), with its default settings.
//
// - create: admin.createTopics.
// - produce:<codec>: producer.send() in chunks with `compression`. kafkajs ships gzip only; snappy,
//   lz4 and zstd are its pluggable codecs, registered from kafkajs-snappy, @2l/kafkajs-lz4 and a
//   small codec over @mongodb-js/zstd (as tests/e2e/clients/kafkajs_roundtrip.mjs does).
// - consume: a consumer in the group, subscribe({ fromBeginning: true }) (the scenario reads what
//   was produced before the group existed), commitOffsets() after every batch.
// - commit: admin.fetchOffsets equals admin.fetchTopicOffsets' high watermarks.
// - describe: admin.describeGroups while the consumer is still in the group.
// - delete: admin.deleteTopics, then the topic is no longer listed.
//
// Usage: node kafkajs_matrix.mjs BOOTSTRAP TOPIC GROUP PARTITIONS COUNT COMPRESSED_COUNT
//          [--deadline-s S]
// Packages resolve from tests/compat/node (scripts/setup.sh runs npm ci there).

import { createRequire } from "node:module";
import process from "node:process";
import {
  CellFailure,
  Cells,
  checkCommitted,
  checkGroup,
  CODECS,
  headersOf,
  keyOf,
  parseArgs,
  Plan,
  security,
  tlsOptions,
  until,
  valueOf,
  Verifier,
} from "./scenario.mjs";

const require = createRequire(new URL("../../node/package.json", import.meta.url));
const { Kafka, AssignerProtocol, CompressionTypes, CompressionCodecs, logLevel } = require(
  "kafkajs",
);

/** Messages per send() call. */
const SEND_CHUNK = 500;
const CODEC_TYPES = {
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

async function produce(kafka, args, codec, range) {
  const producer = kafka.producer();
  await producer.connect();
  try {
    for (let start = range.start; start < range.end; start += SEND_CHUNK) {
      const messages = [];
      for (let j = start; j < Math.min(range.end, start + SEND_CHUNK); j++) {
        messages.push({ key: keyOf(j), value: valueOf(j), headers: headersOf(j) });
      }
      await producer.send({ topic: args.topic, compression: CODEC_TYPES[codec], messages });
    }
  } finally {
    await producer.disconnect();
  }
}

async function consume(consumer, args, plan) {
  const verifier = new Verifier(plan, args.partitions);
  const crashes = [];
  consumer.on(consumer.events.CRASH, ({ payload }) => crashes.push(payload.error));
  await consumer.subscribe({ topic: args.topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const headers = Object.entries(m.headers ?? {});
        verifier.add(batch.partition, Number(m.offset), m.key, m.value, headers);
      }
      if (batch.messages.length > 0) {
        const next = String(Number(batch.lastOffset()) + 1);
        await consumer.commitOffsets([
          { topic: batch.topic, partition: batch.partition, offset: next },
        ]);
      }
    },
  });
  await until(
    () => verifier.unique >= plan.total || crashes.length > 0,
    args.deadlineAt,
    `${plan.total} records (got ${verifier.unique})`,
  ).catch((err) => verifier.error(err.message));
  for (const err of crashes) verifier.error(`consumer crashed: ${err?.name}: ${err?.message}`);
  const problems = verifier.problems();
  if (problems) throw new CellFailure(problems);
}

async function checkCommits(admin, args) {
  const [committed] = await admin.fetchOffsets({ groupId: args.group, topics: [args.topic] });
  const ends = await admin.fetchTopicOffsets(args.topic);
  checkCommitted(
    Object.fromEntries(committed.partitions.map((p) => [p.partition, Number(p.offset)])),
    Object.fromEntries(ends.map((p) => [p.partition, Number(p.high)])),
  );
}

async function describe(admin, args) {
  const { groups } = await admin.describeGroups([args.group]);
  const group = groups.find((g) => g.groupId === args.group);
  if (!group) throw new CellFailure(`describeGroups did not return "${args.group}"`);
  const assignments = group.members.map((m) =>
    AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment ?? {}
  );
  checkGroup(group.state, group.protocolType, assignments, args.topic, args.partitions);
}

/** scenario.security() as kafkajs options (`ssl`, `sasl` with lower-case mechanism names). */
function kafkajsSecurity() {
  const sec = security();
  if (!sec) return {};
  return {
    ...(sec.tls ? { ssl: tlsOptions(sec) } : {}),
    ...(sec.sasl
      ? {
        sasl: {
          mechanism: sec.mechanism.toLowerCase(),
          username: sec.username,
          password: sec.password,
        },
      }
      : {}),
  };
}

async function main() {
  const args = parseArgs("node kafkajs_matrix.mjs");
  registerCodecs();
  const cells = new Cells("kafkajs");
  const plan = new Plan(CODECS, args.count, args.compressedCount);
  const kafka = new Kafka({
    brokers: [args.bootstrap],
    logLevel: logLevel.WARN,
    ...kafkajsSecurity(),
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await cells.run("create", async () => {
      const created = await admin.createTopics({
        topics: [{ topic: args.topic, numPartitions: args.partitions }],
      });
      if (!created) throw new CellFailure(`topic "${args.topic}" already existed`);
    });
    for (const [codec, range] of plan.ranges) {
      await cells.run(`produce:${codec}`, () => produce(kafka, args, codec, range));
    }
    const consumer = kafka.consumer({ groupId: args.group });
    await consumer.connect();
    try {
      await cells.run("consume", () => consume(consumer, args, plan));
      await cells.run("commit", () => checkCommits(admin, args));
      await cells.run("describe", () => describe(admin, args));
    } finally {
      await consumer.disconnect();
    }
    await cells.run("delete", async () => {
      await admin.deleteTopics({ topics: [args.topic] });
      await until(
        async () => !(await admin.listTopics()).includes(args.topic),
        args.deadlineAt,
        `"${args.topic}" to leave the topic list`,
      );
    });
  } finally {
    await admin.disconnect();
  }
  return cells.finish(require("kafkajs/package.json").version);
}

process.exitCode = await main();
// Codec thread pools and sockets must not keep a finished run alive.
process.exit(process.exitCode);
