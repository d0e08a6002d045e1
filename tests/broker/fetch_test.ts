/**
 * Fetch handler regressions, named after the bug each pins.
 */
import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { ZERO_UUID } from "../../lib/protocol/primitives.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { HANDLERS } from "../../lib/broker/handler_table.ts";

const PRODUCE = API_SCHEMAS[0];
const FETCH = API_SCHEMAS[1];
const CREATE_TOPICS = API_SCHEMAS[19];
const enc = new TextEncoder();

// librdkafka reads a null records field as a MessageSetSize of -1 and drops the
// whole Fetch response (librdkafka test 0034): OFFSET_OUT_OF_RANGE never reached
// the consumer, so auto.offset.reset never fired. Kafka sends empty records.
Deno.test("Fetch: partitions with an error carry empty records, never null (librdkafka 0034)", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const created = await conn.send(CREATE_TOPICS, 7, {
    topics: [{
      name: "err",
      numPartitions: 1,
      replicationFactor: 1,
      assignments: [],
      configs: [],
    }],
    timeoutMs: 10_000,
  });
  const topicId = created!.topics[0].topicId ?? ZERO_UUID;
  const produced = await conn.send(PRODUCE, 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{
      name: "err",
      partitionData: [{
        index: 0,
        records: encodeRecordBatch([{ key: null, value: enc.encode("v"), timestamp: 1 }]),
      }],
    }],
  });
  assert.equal(produced!.responses[0].partitionResponses[0].errorCode, 0);
  const fetchHandler = HANDLERS.get(1)!;
  for (let version = fetchHandler.minVersion; version <= fetchHandler.maxVersion; version++) {
    const byId = version >= 13;
    const res = await conn.send(FETCH, version, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1024 * 1024,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [
        {
          topic: "err",
          topicId,
          partitions: [
            // Beyond the end: OFFSET_OUT_OF_RANGE.
            { partition: 0, fetchOffset: 99, partitionMaxBytes: 65536 },
            // A partition that does not exist.
            { partition: 7, fetchOffset: 0, partitionMaxBytes: 65536 },
          ],
        },
        {
          topic: "missing",
          topicId: "AAAAAAAAAAAAAAAAAAAAAQ",
          partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 65536 }],
        },
      ],
      forgottenTopicsData: [],
      rackId: "",
    });
    const parts = res!.responses.flatMap((t) => t.partitions);
    assert.deepEqual(
      parts.map((p) => p.errorCode),
      [
        ERROR_CODES.OFFSET_OUT_OF_RANGE,
        ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION,
        byId ? ERROR_CODES.UNKNOWN_TOPIC_ID : ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION,
      ],
      `v${version}`,
    );
    for (const p of parts) {
      assert.notEqual(p.records, null, `v${version}: records of an error partition are not null`);
      assert.equal(p.records!.byteLength, 0);
    }
    assert.equal(parts[0].highWatermark, 1, `v${version}: the high watermark comes with the error`);
  }
});
