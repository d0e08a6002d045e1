/**
 * The KIP-848 consumer group protocol with a real client (Java kafka-clients 4.4,
 * `group.protocol=consumer`, tests/compat/stateful/java/GroupConsumer.java) against a live
 * `kafscale serve`:
 *
 * 1. Offline migration: a classic-protocol consumer reads the first records of a group and
 *    leaves; the same group id then runs the consumer protocol and goes on from the committed
 *    offsets (nothing re-read).
 * 2. Churn: members join, one is SIGKILLed and expires by session timeout, another joins; every
 *    record is processed, twice only inside the killed member's uncommitted window, and the
 *    committed offsets end at the log end.
 * 3. While consumer-protocol members are in the group, a classic member is refused
 *    (INCONSISTENT_GROUP_PROTOCOL); ListGroups shows the group as type "consumer" and
 *    ConsumerGroupDescribe its members and assignments.
 * 4. librdkafka (confluent-kafka from PyPI) with `group.protocol=consumer`: two members share a
 *    group, each partition held by one of them, every record processed once.
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import { jarsInstalled, JavaProcess, metric, until } from "./java_apps.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { AdminClient } from "../../lib/client/admin.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { GroupMember } from "./groups_support.ts";

const TOPIC = "kip848";
const GROUP = "kip848-group";
const PARTITIONS = 6;
const enc = new TextEncoder();
const WAIT_MS = 90_000;

class Member {
  readonly name: string;
  readonly proc: JavaProcess;
  constructor(name: string, bootstrap: string, protocol: "consumer" | "classic") {
    this.name = name;
    this.proc = new JavaProcess(name, "GroupConsumer", [bootstrap, TOPIC, GROUP, name, protocol]);
  }
  /** [partition, offset, key] of every record it printed. */
  records(): [number, number, string][] {
    return this.proc.stdout.filter((l) => l.startsWith("r ")).map((l) => {
      const [, p, o, k] = l.split(" ");
      return [Number(p), Number(o), k];
    });
  }
  /** Its last committed offset per partition. */
  commits(): Map<number, number> {
    const out = new Map<number, number>();
    for (const l of this.proc.stdout) {
      if (!l.startsWith("c ")) continue;
      const [, p, o] = l.split(" ").map(Number);
      out.set(p, o);
    }
    return out;
  }
}

async function produce(conn: KafkaConnection, from: number, count: number) {
  for (let p = 0; p < PARTITIONS; p++) {
    const recs = [];
    for (let i = from; i < from + count; i++) {
      if (i % PARTITIONS === p) {
        recs.push({
          key: enc.encode(`k-${i}`),
          value: enc.encode(`v-${i}`),
          timestamp: Date.now(),
        });
      }
    }
    if (recs.length === 0) continue;
    const res = await conn.send(API_SCHEMAS[0], 9, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 10_000,
      topicData: [{ name: TOPIC, partitionData: [{ index: p, records: encodeRecordBatch(recs) }] }],
    });
    assert.equal(res!.responses[0].partitionResponses[0].errorCode, ERROR_CODES.NONE);
  }
}

Deno.test({
  name: "KIP-848: Java 4.4 consumers (group.protocol=consumer) migrate from classic, survive " +
    "churn, process every record, and commit to the end",
  async fn() {
    await jarsInstalled();
    await using broker = await startBroker({
      args: [
        "--group-consumer-heartbeat-interval-ms",
        "500",
        "--group-consumer-session-timeout-ms",
        "6000",
      ],
    });
    const conn = await KafkaConnection.connect(broker.bootstrap, "kip848-test");
    const admin = await AdminClient.connect(broker.bootstrap);
    const members: Member[] = [];
    try {
      const created = await conn.send(API_SCHEMAS[19], 7, {
        topics: [{
          name: TOPIC,
          numPartitions: PARTITIONS,
          replicationFactor: 1,
          assignments: [],
          configs: [],
        }],
        timeoutMs: 10_000,
      });
      assert.equal(created!.topics[0].errorCode, ERROR_CODES.NONE);
      let produced = 0;
      const keysSeen = () => new Set(members.flatMap((m) => m.records().map((r) => r[2])));

      // 1. Classic first: it reads the first 600 records, commits and leaves.
      await produce(conn, produced, 600);
      produced += 600;
      const classic = new Member("classic-1", broker.bootstrap, "classic");
      members.push(classic);
      await until(
        "the classic member read 600 records",
        WAIT_MS,
        () => classic.records().length >= 600,
        () => classic.proc.output(),
      );
      // The JVM exits 143 after a SIGTERM, once its shutdown hook (close, leave) has run.
      assert.ok([0, 143].includes((await classic.proc.stop()).code), classic.proc.output());
      assert.ok(classic.proc.stdout.includes("bye"));

      // 2. The same group on the consumer protocol: two members, from the committed offsets.
      const a = new Member("kip848-a", broker.bootstrap, "consumer");
      const b = new Member("kip848-b", broker.bootstrap, "consumer");
      members.push(a, b);
      await produce(conn, produced, 1200);
      produced += 1200;
      await until(
        "the group processed the next 1200",
        WAIT_MS,
        () => keysSeen().size >= produced,
        () => `${a.proc.output()}\n${b.proc.output()}`,
      );
      assert.equal(
        a.records().concat(b.records()).filter(([, , k]) => Number(k.slice(2)) < 600).length,
        0,
        "nothing the classic member committed is read again",
      );
      const holds = (m: Member) =>
        m.proc.stdout.some((l) => l.startsWith("assigned [") && l !== "assigned []");
      await until(
        "both members hold partitions",
        WAIT_MS,
        () => holds(a) && holds(b),
        () => `${a.proc.output()}\n${b.proc.output()}`,
      );

      // 3. A classic member is refused while the group runs the consumer protocol.
      const intruder = new Member("classic-2", broker.bootstrap, "classic");
      const intruderExit = await intruder.proc.exit(60_000);
      assert.notEqual(intruderExit.code, 0);
      assert.match(intruder.proc.output(), /InconsistentGroupProtocol/);

      const listed = await admin.listGroups();
      assert.ok(
        listed.some((g) => g.groupId === GROUP),
        `ListGroups lists the group: ${JSON.stringify(listed)}`,
      );
      const described = await conn.send(API_SCHEMAS[69], 0, {
        groupIds: [GROUP],
        includeAuthorizedOperations: false,
      });
      const g = described!.groups[0];
      assert.equal(g.errorCode, ERROR_CODES.NONE);
      assert.deepEqual(g.members.map((m) => m.clientId).sort(), ["kip848-a", "kip848-b"]);
      assert.equal(
        g.members.reduce(
          (n, m) => n + m.assignment.topicPartitions.reduce((x, t) => x + t.partitions.length, 0),
          0,
        ),
        PARTITIONS,
      );

      // 4. Churn: C joins, B is SIGKILLed (expires by session timeout), more records.
      const c = new Member("kip848-c", broker.bootstrap, "consumer");
      members.push(c);
      await produce(conn, produced, 1200);
      produced += 1200;
      await until(
        "C gets partitions",
        WAIT_MS,
        () => holds(c),
        () => c.proc.output(),
      );
      await b.proc.kill();
      const bCommits = b.commits();
      const bSeen = b.records().length;
      await produce(conn, produced, 1200);
      produced += 1200;
      await until(
        "every record processed",
        WAIT_MS,
        () => keysSeen().size >= produced,
        () => `${a.proc.output()}\n${c.proc.output()}`,
      );
      // Exactly once, but for B's records after its last commit (processed again elsewhere).
      const counts = new Map<string, number>();
      for (const m of members) {
        for (const [p, o, k] of m.records()) {
          if (m === b && o >= (bCommits.get(p) ?? 0)) continue;
          counts.set(k, (counts.get(k) ?? 0) + 1);
        }
      }
      const twice = [...counts].filter(([, n]) => n > 1).map(([k]) => k);
      assert.deepEqual(twice.slice(0, 10), [], `${twice.length} records processed twice`);
      assert.equal(counts.size, produced);
      // Committed offsets reach the end.
      await until("committed offsets at the log end", WAIT_MS, async () => {
        const committed = await admin.fetchOffsets(GROUP);
        const ends = committed.filter((o) => o.topic === TOPIC).reduce((n, o) => n + o.offset, 0);
        return ends === produced;
      });
      for (const m of [a, c]) {
        assert.ok([0, 143].includes((await m.proc.stop()).code), m.proc.output());
        assert.ok(m.proc.stdout.includes("bye"), m.proc.output());
      }
      console.log(
        `KIP-848: ${produced} records; ${
          members.map((m) => `${m.name}=${m.records().length}`).join(" ")
        }; B killed after ${bSeen} records`,
      );
    } finally {
      for (const m of members) if (!m.proc.exited) await m.proc.kill();
      admin.close();
      conn.close();
    }
  },
});

Deno.test({
  name: "KIP-848: librdkafka (confluent-kafka, group.protocol=consumer) members share a group " +
    "and process every record once",
  async fn() {
    await using broker = await startBroker({
      args: ["--group-consumer-heartbeat-interval-ms", "500"],
    });
    const conn = await KafkaConnection.connect(broker.bootstrap, "kip848-rdkafka-test");
    const members: GroupMember[] = [];
    try {
      const created = await conn.send(API_SCHEMAS[19], 7, {
        topics: [{
          name: TOPIC,
          numPartitions: PARTITIONS,
          replicationFactor: 1,
          assignments: [],
          configs: [],
        }],
        timeoutMs: 10_000,
      });
      assert.equal(created!.topics[0].errorCode, ERROR_CODES.NONE);
      await produce(conn, 0, 1200);
      for (const name of ["rd-1", "rd-2"]) {
        members.push(
          await GroupMember.start("confluent", name, {
            bootstrap: broker.bootstrap,
            topic: TOPIC,
            group: "kip848-rdkafka",
            extra: ["--group-protocol", "consumer"],
          }),
        );
      }
      await until(
        "both members hold partitions",
        WAIT_MS,
        () => members.every((m) => Object.values(m.assignment ?? {}).flat().length > 0),
        () => members.map((m) => m.describe()).join("\n"),
      );
      await produce(conn, 1200, 1200);
      await until(
        "every record processed",
        WAIT_MS,
        () => new Set(members.flatMap((m) => m.records.map((r) => r[2]))).size >= 2400,
        () => members.map((m) => m.describe()).join("\n"),
      );
      const counts = new Map<string, number>();
      for (const m of members) {
        for (const [, , k] of m.records) counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      assert.equal(counts.size, 2400);
      assert.deepEqual([...counts].filter(([, n]) => n > 1).slice(0, 5), [], "processed twice");
      const owned = members.flatMap((m) => Object.values(m.assignment ?? {}).flat()).sort();
      assert.deepEqual(owned, [0, 1, 2, 3, 4, 5], "each partition held by exactly one member");
      // They spoke the consumer protocol, not the classic one.
      assert.ok(await metric(broker, 'kafscale_requests_total{api="ConsumerGroupHeartbeat"}') > 0);
      assert.equal(await metric(broker, 'kafscale_requests_total{api="JoinGroup"}'), 0);
      for (const m of members) {
        await m.stop();
        assert.ok(m.bye, m.describe());
      }
    } finally {
      for (const m of members) await m.kill();
      conn.close();
    }
  },
});
