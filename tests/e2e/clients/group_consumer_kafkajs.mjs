// A kafkajs consumer-group member for the group end-to-end tests (tests/e2e/groups_test.ts).
// It reads the topic, prints every record before committing it, and commits after each batch,
// so everything it printed is committed before it can lose the partition.
//
// kafkajs only ships its own "RoundRobinAssigner" protocol, which no other client speaks; this
// member offers the standard "roundrobin" (or "range") assignor over kafkajs' encoders of the
// standard consumer protocol, so it can share a group with librdkafka and kafka-python.
//
// stdout, one line each (the harness parses them):
//   ready                         the consumer runs
//   assigned <member-id> <json>   the current assignment: {"topic": [partitions]}
//   r <partition> <offset> <key>  a record, printed before its offset is committed
//   c <partition> <offset>        a committed offset (the next one to read)
//   bye                           clean exit after SIGTERM (LeaveGroup sent)
//
// Usage: node group_consumer_kafkajs.mjs BOOTSTRAP TOPIC GROUP CLIENT_ID
//          [--session-timeout-ms N] [--assignor roundrobin|range]

import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import process from "node:process";

const require = createRequire(new URL("../../compat/node/package.json", import.meta.url));
const { Kafka, AssignerProtocol, logLevel } = require("kafkajs");
const { MemberMetadata, MemberAssignment } = AssignerProtocol;

function parseArgs(argv) {
  const positional = [];
  const opts = { sessionTimeoutMs: 10_000, assignor: "roundrobin" };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--session-timeout-ms") opts.sessionTimeoutMs = Number(argv[++i]);
    else if (argv[i] === "--assignor") opts.assignor = argv[++i];
    else positional.push(argv[i]);
  }
  if (positional.length !== 4 || !["roundrobin", "range"].includes(opts.assignor)) {
    console.error(
      "Usage: node group_consumer_kafkajs.mjs BOOTSTRAP TOPIC GROUP CLIENT_ID " +
        "[--session-timeout-ms N] [--assignor roundrobin|range]",
    );
    process.exit(2);
  }
  const [bootstrap, topic, group, clientId] = positional;
  return { bootstrap, topic, group, clientId, ...opts };
}

/** Kafka's RoundRobinAssignor / RangeAssignor, over the standard consumer protocol. */
function standardAssigner(name) {
  return ({ cluster }) => ({
    name,
    version: 0,
    async assign({ members, topics }) {
      const memberIds = members.map((m) => m.memberId).sort();
      const subscriptions = new Map(
        members.map((m) => [m.memberId, new Set(MemberMetadata.decode(m.memberMetadata).topics)]),
      );
      const out = new Map(memberIds.map((id) => [id, {}]));
      const give = (memberId, topic, partition) => {
        const a = out.get(memberId);
        (a[topic] ??= []).push(partition);
      };
      await cluster.refreshMetadataIfNecessary();
      for (const topic of [...topics].sort()) {
        const partitions = cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId)
          .sort((a, b) => a - b);
        const eligible = memberIds.filter((id) => subscriptions.get(id).has(topic));
        if (eligible.length === 0) continue;
        if (name === "range") {
          const per = Math.floor(partitions.length / eligible.length);
          const extra = partitions.length % eligible.length;
          let next = 0;
          eligible.forEach((id, i) => {
            const n = per + (i < extra ? 1 : 0);
            for (const p of partitions.slice(next, next + n)) give(id, topic, p);
            next += n;
          });
        } else {
          partitions.forEach((p, i) => give(eligible[i % eligible.length], topic, p));
        }
      }
      return memberIds.map((memberId) => ({
        memberId,
        memberAssignment: MemberAssignment.encode({
          version: 0,
          assignment: out.get(memberId),
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name,
        metadata: MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
      };
    },
  });
}

const say = (line) => process.stdout.write(line + "\n");

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const kafka = new Kafka({
    clientId: args.clientId,
    brokers: [args.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 2_000 },
  });
  const consumer = kafka.consumer({
    groupId: args.group,
    sessionTimeout: args.sessionTimeoutMs,
    rebalanceTimeout: 30_000,
    heartbeatInterval: Math.min(1_000, Math.floor(args.sessionTimeoutMs / 3)),
    partitionAssigners: [standardAssigner(args.assignor)],
    maxWaitTimeInMs: 200,
    retry: { retries: 50, initialRetryTime: 100, maxRetryTime: 2_000 },
  });
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    say(`assigned ${payload.memberId} ${JSON.stringify(payload.memberAssignment)}`);
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    console.error(`kafkajs consumer crashed: ${payload.error?.stack ?? payload.error}`);
  });
  let stopping = false;
  process.on("SIGTERM", async () => {
    if (stopping) return;
    stopping = true;
    try {
      await consumer.disconnect();
      say("bye");
      process.exit(0);
    } catch (err) {
      console.error(`disconnect failed: ${err.stack ?? err}`);
      process.exit(1);
    }
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [args.topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      if (!isRunning() || isStale() || batch.messages.length === 0) return;
      const lines = batch.messages.map((m) =>
        `r ${batch.partition} ${m.offset} ${m.key ? m.key.toString() : ""}`
      );
      say(lines.join("\n"));
      const last = batch.messages[batch.messages.length - 1].offset;
      const next = (BigInt(last) + 1n).toString();
      await consumer.commitOffsets([{
        topic: batch.topic,
        partition: batch.partition,
        offset: next,
      }]);
      say(`c ${batch.partition} ${next}`);
      resolveOffset(last);
      await heartbeat();
    },
  });
  say("ready");
}

main().catch((err) => {
  console.error(err.stack ?? String(err));
  process.exit(1);
});
