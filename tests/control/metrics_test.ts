import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { Metrics } from "../../lib/util/metrics.ts";

function sample(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  assert.ok(line, `metric "${name}" is exported`);
  return Number(line.split(" ").pop());
}

Deno.test("metrics: collectors run at render time", () => {
  const m = new Metrics();
  let n = 0;
  m.addCollector(() => m.set("g", "a gauge", ++n));
  assert.match(m.render(), /^g 1$/m);
  assert.match(m.render(), /^g 2$/m);
});

Deno.test("/metrics reports requests, produced bytes and flush rounds", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  await conn.send(API_SCHEMAS[19], 7, {
    topics: [{ name: "m", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 1000,
  });
  const records = encodeRecordBatch([{ key: null, value: new Uint8Array(100) }]);
  const res = await conn.send(API_SCHEMAS[0], 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 1000,
    topicData: [{ name: "m", partitionData: [{ index: 0, records }] }],
  });
  assert.equal(res!.responses[0].partitionResponses[0].errorCode, 0);
  const text = await (await fetch(`http://127.0.0.1:${b.node.httpAddress.port}/metrics`)).text();
  assert.equal(sample(text, "kafscale_produce_bytes_total"), records.length);
  assert.ok(sample(text, "kafscale_flush_rounds") >= 1);
  assert.equal(sample(text, "kafscale_connections"), 1);
  assert.match(text, /kafscale_requests_total\{api="Produce"\} 1/);
});
