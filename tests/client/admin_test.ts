import assert from "node:assert/strict";
import { AdminClient, AdminError, parseConsumerAssignment } from "../../lib/client/admin.ts";
import { Writer } from "../../lib/protocol/primitives.ts";
import { API_SCHEMAS, apiSchema } from "../../lib/protocol/generated/apis.ts";
import { HANDLERS } from "../../lib/broker/handler_table.ts";
import { startTestBroker } from "../support/test_broker.ts";

Deno.test("parseConsumerAssignment: topics and partitions of any version; junk is empty", () => {
  for (const version of [0, 1, 3]) {
    const w = new Writer();
    w.int16(version);
    w.int32(2);
    w.string("a");
    w.int32(2);
    w.int32(0);
    w.int32(5);
    w.string("b");
    w.int32(0);
    w.nullableBytes(null);
    assert.deepEqual(parseConsumerAssignment(w.finishBytes()), [
      { topic: "a", partitions: [0, 5] },
      { topic: "b", partitions: [] },
    ]);
  }
  assert.deepEqual(parseConsumerAssignment(new Uint8Array()), []);
  assert.deepEqual(parseConsumerAssignment(new Uint8Array([0, 0, 0, 0, 0, 9])), []);
});

Deno.test("AdminClient: negotiates the highest common version of each API", async () => {
  await using b = await startTestBroker();
  using admin = await AdminClient.connect(b.bootstrap);
  for (const [apiKey, h] of HANDLERS) {
    const schema = apiSchema(apiKey)!;
    assert.equal(admin.version(schema), Math.min(h.maxVersion, schema.maxVersion), h.name);
  }
  // OffsetDelete (47) is not served: the client says so instead of sending it.
  assert.equal(admin.supports(47), HANDLERS.has(47));
  if (!HANDLERS.has(47)) {
    assert.throws(() => admin.version(API_SCHEMAS[47]), AdminError);
  }
  const cluster = await admin.metadata(null);
  assert.deepEqual(cluster.brokers.map((x) => x.port), [b.node.kafkaAddress.port]);
  await assert.rejects(admin.metadata(["missing"]), /Topic "missing" does not exist/);
  assert.equal(await b.node.broker.topic("missing"), null, "never auto-created");
});
