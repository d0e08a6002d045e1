/**
 * `kafka-transactions.sh` (Apache Kafka's TransactionsCommand, through the Java Admin client)
 * against a live `kafscale serve`, from the Maven jars scripts/setup_compat.sh fetches (as
 * kafka_tools_delete_records_test.ts): with one transaction open, `list`, `describe` and
 * `describe-producers` report it (ListTransactions, DescribeTransactions, DescribeProducers);
 * after it commits, `describe` says CompleteCommit and the partition has no open transaction.
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import { REPO_ROOT, requireFile, runProgram } from "./client_runner.ts";
import { AdminClient } from "../../lib/client/admin.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";

const KAFKA_VERSION = Deno.env.get("KAFKA_REF_VERSION") ?? "4.1.0";
const CLASSPATH = `${REPO_ROOT}.tools/kafka-ref/libs-${KAFKA_VERSION}/*:` +
  `${REPO_ROOT}.tools/kafka-ref/tools-${KAFKA_VERSION}/*`;
const TRANSACTIONS_COMMAND = "org.apache.kafka.tools.TransactionsCommand";
const JAVA = ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"];
const TOOL_TIMEOUT_MS = 60_000;

Deno.test("kafka-transactions.sh list, describe and describe-producers against kafscale", async () => {
  await requireFile(
    `${REPO_ROOT}.tools/kafka-ref/tools-${KAFKA_VERSION}/kafka-tools-${KAFKA_VERSION}.jar`,
  );
  await using broker = await startBroker();
  const tool = async (...args: string[]) => {
    const r = await runProgram(
      [
        ...JAVA,
        "-cp",
        CLASSPATH,
        TRANSACTIONS_COMMAND,
        "--bootstrap-server",
        broker.bootstrap,
        ...args,
      ],
      { timeoutMs: TOOL_TIMEOUT_MS },
    );
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}\n${r.stdout}`);
    return r.stdout.split("\n").map((l) => l.trim().split(/\s+/));
  };
  const admin = await AdminClient.connect(broker.bootstrap);
  try {
    await admin.createTopic("tools-txn", 1, {});
  } finally {
    admin.close();
  }
  const conn = await KafkaConnection.connect(broker.bootstrap);
  try {
    const init = (await conn.send(API_SCHEMAS[22], 4, {
      transactionalId: "tools-app",
      transactionTimeoutMs: 60_000,
      producerId: -1,
      producerEpoch: -1,
    }))!;
    const ids = { producerId: init.producerId, producerEpoch: init.producerEpoch };
    await conn.send(API_SCHEMAS[24], 3, {
      v3AndBelowTransactionalId: "tools-app",
      v3AndBelowProducerId: ids.producerId,
      v3AndBelowProducerEpoch: ids.producerEpoch,
      v3AndBelowTopics: [{ name: "tools-txn", partitions: [0] }],
    });
    const produced = await conn.send(API_SCHEMAS[0], 9, {
      transactionalId: "tools-app",
      acks: -1,
      timeoutMs: 10_000,
      topicData: [{
        name: "tools-txn",
        partitionData: [{
          index: 0,
          records: encodeRecordBatch([{ key: null, value: new Uint8Array([7]) }], {
            ...ids,
            baseSequence: 0,
            transactional: true,
          }),
        }],
      }],
    });
    assert.equal(produced!.responses[0].partitionResponses[0].errorCode, E.NONE);

    const listed = await tool("list");
    const row = listed.find((cols) => cols[0] === "tools-app");
    assert.ok(row, listed.map((c) => c.join(" ")).join("\n"));
    assert.deepEqual(row.slice(1, 4), ["0", String(ids.producerId), "Ongoing"]);

    const described = await tool("describe", "--transactional-id", "tools-app");
    const d = described.find((cols) => cols.includes("Ongoing"));
    assert.ok(d, described.map((c) => c.join(" ")).join("\n"));
    assert.ok(d.includes(String(ids.producerId)));
    assert.ok(d.some((c) => c.includes("tools-txn-0")), d.join(" "));

    const producers = await tool("describe-producers", "--topic", "tools-txn", "--partition", "0");
    const p = producers.find((cols) => cols[0] === String(ids.producerId));
    assert.ok(p, producers.map((c) => c.join(" ")).join("\n"));
    // ProducerId ProducerEpoch LatestCoordinatorEpoch LastSequence LastTimestamp CurrentTransactionStartOffset
    assert.equal(p[1], String(ids.producerEpoch));
    assert.equal(p[3], "0", "last sequence");
    assert.equal(p.at(-1), "0", "the open transaction starts at offset 0");

    const ended = await conn.send(API_SCHEMAS[26], 3, {
      transactionalId: "tools-app",
      ...ids,
      committed: true,
    });
    assert.equal(ended!.errorCode, E.NONE);
    const after = await tool("describe", "--transactional-id", "tools-app");
    assert.ok(after.some((cols) => cols.includes("CompleteCommit")), after.join("\n"));
    const closed = await tool("describe-producers", "--topic", "tools-txn", "--partition", "0");
    const q = closed.find((cols) => cols[0] === String(ids.producerId))!;
    assert.equal(q.at(-1), "None", "no open transaction");
  } finally {
    conn.close();
  }
});
