/**
 * Leader epochs across a takeover (issue 15), on real MinIO and etcd with two broker processes:
 * broker 1 owns a topic's partitions (epoch 1) and is SIGKILLed while a Java consumer
 * (kafka-clients 4.4, auto.offset.reset=none) reads them; broker 2 takes them over with epoch 2.
 * The consumer sees the new epoch in Metadata, validates its position with OffsetForLeaderEpoch
 * (truncation detection) and goes on without resetting: every record arrives once, in order.
 * A client still using epoch 1 is fenced by broker 2.
 */
import assert from "node:assert/strict";
import { startBackends, startDistributedBroker } from "../support/distributed.ts";
import { jarsInstalled, JavaProcess, metric, until } from "./java_apps.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { ZERO_UUID } from "../../lib/protocol/primitives.ts";

const PARTITIONS = 4;
const BEFORE = 400;
const AFTER = 400;
/** Broker 1's session lease (10 s), etcd's rounding, the consumer's retries, a loaded machine. */
const TAKEOVER_TIMEOUT_MS = 60_000;
const enc = new TextEncoder();

async function produce(bootstrap: string, topic: string, from: number, count: number) {
  const conn = await KafkaConnection.connect(bootstrap, "epoch-test-producer");
  try {
    for (let p = 0; p < PARTITIONS; p++) {
      const values = [];
      for (let i = from; i < from + count; i++) if (i % PARTITIONS === p) values.push(`r${i}`);
      const res = await conn.send(API_SCHEMAS[0], 9, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 10_000,
        topicData: [{
          name: topic,
          partitionData: [{
            index: p,
            records: encodeRecordBatch(
              values.map((v) => ({ key: null, value: enc.encode(v), timestamp: Date.now() })),
            ),
          }],
        }],
      });
      const code = res!.responses[0].partitionResponses[0].errorCode;
      if (code !== ERROR_CODES.NONE) throw new Error(`produce to ${topic}-${p}: error ${code}`);
    }
  } finally {
    conn.close();
  }
}

/** Fetch of partition 0 from `fetchOffset` with `currentLeaderEpoch`; its error code. */
async function fetchWithEpoch(bootstrap: string, topic: string, currentLeaderEpoch: number) {
  const conn = await KafkaConnection.connect(bootstrap, "epoch-test-fetch");
  try {
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
          partition: 0,
          currentLeaderEpoch,
          fetchOffset: 0,
          lastFetchedEpoch: -1,
          logStartOffset: -1,
          partitionMaxBytes: 1 << 20,
        }],
      }],
      forgottenTopicsData: [],
      rackId: "",
    });
    return res!.responses[0].partitions[0].errorCode;
  } finally {
    conn.close();
  }
}

async function createTopic(bootstrap: string, topic: string): Promise<void> {
  const conn = await KafkaConnection.connect(bootstrap, "epoch-test-admin");
  try {
    const res = await conn.send(API_SCHEMAS[19], 7, {
      topics: [{
        name: topic,
        numPartitions: PARTITIONS,
        replicationFactor: 1,
        assignments: [],
        configs: [],
      }],
      timeoutMs: 10_000,
    });
    assert.equal(res!.topics[0].errorCode, ERROR_CODES.NONE);
  } finally {
    conn.close();
  }
}

/** ListOffsets of every partition: the broker acquires the partitions nobody owns. */
async function touch(bootstrap: string, topic: string): Promise<void> {
  const conn = await KafkaConnection.connect(bootstrap, "epoch-test-touch");
  try {
    await conn.send(API_SCHEMAS[2], 7, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [{
        name: topic,
        partitions: Array.from({ length: PARTITIONS }, (_, p) => ({
          partitionIndex: p,
          currentLeaderEpoch: -1,
          timestamp: -1,
        })),
      }],
    });
  } finally {
    conn.close();
  }
}

async function leaderEpochs(bootstrap: string, topic: string): Promise<[number, number][]> {
  const conn = await KafkaConnection.connect(bootstrap, "epoch-test-metadata");
  try {
    const res = await conn.send(API_SCHEMAS[3], 12, {
      topics: [{ name: topic, topicId: ZERO_UUID }],
      allowAutoTopicCreation: false,
      includeTopicAuthorizedOperations: false,
    });
    return res!.topics[0].partitions
      .map((p): [number, number] => [p.leaderId, p.leaderEpoch ?? -1])
      .sort((a, b) => a[0] - b[0]);
  } finally {
    conn.close();
  }
}

Deno.test({
  name: "distributed: after a takeover a Java consumer validates its position by leader " +
    "epoch and goes on; the old epoch is fenced",
  async fn() {
    await jarsInstalled();
    await using backends = await startBackends();
    const topic = `epochs-${Date.now()}`;
    const first = await startDistributedBroker(backends, { brokerId: 1 });
    let second: Awaited<ReturnType<typeof startDistributedBroker>> | null = null;
    let consumer: JavaProcess | null = null;
    try {
      // Broker 1 alone: it acquires every partition (epoch 1) and takes the first records.
      await createTopic(first.bootstrap, topic);
      await produce(first.bootstrap, topic, 0, BEFORE);
      assert.deepEqual(
        await leaderEpochs(first.bootstrap, topic),
        Array.from({ length: PARTITIONS }, () => [1, 1]),
        "broker 1 leads every partition at epoch 1",
      );
      second = await startDistributedBroker(backends, { brokerId: 2 });
      consumer = new JavaProcess("epoch-consumer", "EpochConsumer", [
        `${first.bootstrap},${second.bootstrap}`,
        topic,
        String(BEFORE + AFTER),
      ]);
      await consumer.waitForLine(new RegExp(`^n ${BEFORE}$`), 60_000);
      await first.kill();
      // Broker 2 takes the partitions over once broker 1's lease is gone: epoch 2.
      const s = second;
      await until("broker 2 leads every partition at epoch 2", TAKEOVER_TIMEOUT_MS, async () => {
        try {
          await touch(s.bootstrap, topic);
          const epochs = await leaderEpochs(s.bootstrap, topic);
          return epochs.every(([leader, epoch]) => leader === 2 && epoch === 2);
        } catch {
          return false;
        }
      }, () => second!.logs());
      await produce(second.bootstrap, topic, BEFORE, AFTER);
      await consumer.waitForLine(new RegExp(`^done ${BEFORE + AFTER}$`), 90_000);
      const status = await consumer.exit(10_000);
      const output = consumer.output();
      assert.equal(status.code, 0, output);
      assert.ok(
        !consumer.stdout.some((l) => l.startsWith("gap ")),
        `skipped or repeated:\n${output}`,
      );
      // The consumer checked its position against broker 2's epoch history.
      const validations = () => metric(s, 'kafscale_requests_total{api="OffsetForLeaderEpoch"}');
      await until(
        "an OffsetForLeaderEpoch request on broker 2",
        10_000,
        async () => (await validations()) > 0,
      );
      // A client still on epoch 1 is fenced; epoch 2 reads.
      assert.equal(
        await fetchWithEpoch(second.bootstrap, topic, 1),
        ERROR_CODES.FENCED_LEADER_EPOCH,
      );
      assert.equal(
        await fetchWithEpoch(second.bootstrap, topic, 3),
        ERROR_CODES.UNKNOWN_LEADER_EPOCH,
      );
      assert.equal(await fetchWithEpoch(second.bootstrap, topic, 2), ERROR_CODES.NONE);
      console.log(
        `leader epochs: ${BEFORE + AFTER} records read across the takeover, ` +
          `${await validations()} OffsetForLeaderEpoch request(s) on broker 2, no reset`,
      );
    } finally {
      if (consumer && !consumer.exited) await consumer.exit(1);
      await first.cleanup();
      await second?.cleanup();
    }
  },
});
