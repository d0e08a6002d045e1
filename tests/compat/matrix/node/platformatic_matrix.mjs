// The matrix scenario through @platformatic/kafka, with its default settings. It needs Node 22 or
// later; this machine's Node is older, so it runs under Deno on the packages npm installed in
// tests/compat/node:
//
//   deno run -A --node-modules-dir=manual tests/compat/matrix/node/platformatic_matrix.mjs ...
//
// - create: Admin.createTopics.
// - produce:<codec>: one Producer per codec (`compression`), every send() must resolve.
// - consume: a Consumer in the group, consume({ mode: "committed", fallbackMode: "earliest" })
//   (the scenario reads what was produced before the group existed; the default mode is
//   "latest"), autocommit off and Consumer.commit() after every 100 records and at the end.
// - commit: Consumer.listCommittedOffsets equals Consumer.listOffsets (the end offsets).
// - describe: Admin.describeGroups while the consumer is still in the group.
// - delete: Admin.deleteTopics, then the topic is no longer listed.
//
// Usage: ... platformatic_matrix.mjs BOOTSTRAP TOPIC GROUP PARTITIONS COUNT COMPRESSED_COUNT
//          [--deadline-s S]

import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
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
const { Admin, Consumer, Producer, stringSerializers, stringDeserializers } = await import(
  require.resolve("@platformatic/kafka")
);

/** Messages per send() call. */
const SEND_CHUNK = 500;
/** Records between two commits. */
const COMMIT_EVERY = 100;

/** scenario.security() as @platformatic/kafka options (`tls`, `sasl`). */
function platformaticSecurity() {
  const sec = security();
  if (!sec) return {};
  return {
    ...(sec.tls ? { tls: tlsOptions(sec) } : {}),
    ...(sec.sasl
      ? { sasl: { mechanism: sec.mechanism, username: sec.username, password: sec.password } }
      : {}),
  };
}

async function produce(args, codec, range) {
  const producer = new Producer({
    clientId: "matrix-producer",
    bootstrapBrokers: [args.bootstrap],
    ...platformaticSecurity(),
    serializers: stringSerializers,
    compression: codec,
  });
  try {
    for (let start = range.start; start < range.end; start += SEND_CHUNK) {
      const messages = [];
      for (let j = start; j < Math.min(range.end, start + SEND_CHUNK); j++) {
        messages.push({
          topic: args.topic,
          key: keyOf(j),
          value: valueOf(j),
          headers: new Map(Object.entries(headersOf(j))),
        });
      }
      await producer.send({ messages });
    }
  } finally {
    await producer.close();
  }
}

async function consume(consumer, args, plan) {
  const verifier = new Verifier(plan, args.partitions);
  const stream = await consumer.consume({
    topics: [args.topic],
    mode: "committed",
    fallbackMode: "earliest",
    autocommit: false,
  });
  const errors = [];
  stream.on("error", (err) => errors.push(err));
  let pending = new Map();
  const commit = async () => {
    const offsets = [...pending.values()];
    pending = new Map();
    if (offsets.length > 0) await consumer.commit({ offsets });
  };
  try {
    for await (const m of stream) {
      verifier.add(
        m.partition,
        Number(m.offset),
        m.key,
        m.value,
        m.headerEntries.map(([k, v]) => [k, Buffer.from(v)]),
      );
      pending.set(m.partition, {
        topic: m.topic,
        partition: m.partition,
        offset: m.offset + 1n,
        leaderEpoch: m.leaderEpoch,
      });
      if (verifier.unique % COMMIT_EVERY === 0) await commit();
      if (verifier.unique >= plan.total || Date.now() > args.deadlineAt) break;
    }
    await commit();
  } finally {
    await stream.close();
  }
  for (const err of errors) verifier.error(`stream error: ${err?.name}: ${err?.message}`);
  if (verifier.unique < plan.total) verifier.error(`deadline passed at ${verifier.unique}`);
  const problems = verifier.problems();
  if (problems) throw new CellFailure(problems);
}

async function checkCommits(consumer, args) {
  const partitions = Array.from({ length: args.partitions }, (_, i) => i);
  const committed = await consumer.listCommittedOffsets({
    topics: [{ topic: args.topic, partitions }],
  });
  const ends = await consumer.listOffsets({ topics: [args.topic] });
  checkCommitted(
    Object.fromEntries(committed.get(args.topic).map((o, p) => [p, Number(o)])),
    Object.fromEntries(ends.get(args.topic).map((o, p) => [p, Number(o)])),
  );
}

async function describe(admin, args) {
  const groups = await admin.describeGroups({ groups: [args.group] });
  const group = groups.get(args.group);
  if (!group) throw new CellFailure(`describeGroups did not return "${args.group}"`);
  const assignments = [...group.members.values()].map((m) =>
    Object.fromEntries([...(m.assignments ?? new Map()).values()].map((a) => [
      a.topic,
      a.partitions,
    ]))
  );
  checkGroup(group.state, group.protocolType, assignments, args.topic, args.partitions);
}

async function main() {
  const args = parseArgs("deno run -A --node-modules-dir=manual platformatic_matrix.mjs");
  const cells = new Cells("@platformatic/kafka");
  const plan = new Plan(CODECS, args.count, args.compressedCount);
  const base = {
    clientId: "matrix",
    bootstrapBrokers: [args.bootstrap],
    ...platformaticSecurity(),
  };
  const admin = new Admin(base);
  try {
    await cells.run(
      "create",
      () => admin.createTopics({ topics: [args.topic], partitions: args.partitions }),
    );
    for (const [codec, range] of plan.ranges) {
      await cells.run(`produce:${codec}`, () => produce(args, codec, range));
    }
    const consumer = new Consumer({
      ...base,
      groupId: args.group,
      deserializers: stringDeserializers,
    });
    try {
      await cells.run("consume", () => consume(consumer, args, plan));
      await cells.run("commit", () => checkCommits(consumer, args));
      await cells.run("describe", () => describe(admin, args));
    } finally {
      await consumer.close(true);
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
    await admin.close();
  }
  const packageDir = require.resolve("@platformatic/kafka").replace(/dist\/index\.js$/, "");
  const { version } = JSON.parse(readFileSync(`${packageDir}package.json`, "utf8"));
  return cells.finish(`${version} (Deno ${globalThis.Deno?.version?.deno ?? "?"})`);
}

process.exitCode = await main();
process.exit(process.exitCode);
