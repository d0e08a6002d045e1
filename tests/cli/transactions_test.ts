/**
 * `kafscale transactions` run in-process against an in-process broker: list, describe and
 * abort (which fences the producer and aborts its open transaction), with their failures.
 */
import assert from "node:assert/strict";
import { runTransactions } from "../../lib/cli/transactions.ts";
import { AdminClient } from "../../lib/client/admin.ts";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { captureIo, tableRows } from "./cli_support.ts";

async function transactions(bootstrap: string, ...args: string[]) {
  const io = captureIo();
  const code = await runTransactions([...args, "--bootstrap-server", bootstrap], io);
  return { code, out: io.stdoutText(), err: io.err };
}

Deno.test("kafscale transactions list, describe and abort", async () => {
  await using b = await startTestBroker();
  const admin = await AdminClient.connect(b.bootstrap);
  try {
    await admin.createTopic("t", 1, {});
  } finally {
    admin.close();
  }
  const conn = await b.connect();
  const init = (await conn.send(API_SCHEMAS[22], 4, {
    transactionalId: "app-1",
    transactionTimeoutMs: 60_000,
    producerId: -1,
    producerEpoch: -1,
  }))!;
  const ids = { producerId: init.producerId, producerEpoch: init.producerEpoch };
  await conn.send(API_SCHEMAS[24], 3, {
    v3AndBelowTransactionalId: "app-1",
    v3AndBelowProducerId: ids.producerId,
    v3AndBelowProducerEpoch: ids.producerEpoch,
    v3AndBelowTopics: [{ name: "t", partitions: [0] }],
  });
  const produced = await conn.send(API_SCHEMAS[0], 9, {
    transactionalId: "app-1",
    acks: -1,
    timeoutMs: 5_000,
    topicData: [{
      name: "t",
      partitionData: [{
        index: 0,
        records: encodeRecordBatch([{ key: null, value: new Uint8Array([1]) }], {
          ...ids,
          baseSequence: 0,
          transactional: true,
        }),
      }],
    }],
  });
  assert.equal(produced!.responses[0].partitionResponses[0].errorCode, E.NONE);

  const listed = await transactions(b.bootstrap, "list");
  assert.equal(listed.code, 0, listed.err.join("\n"));
  assert.deepEqual(tableRows(listed.out).slice(1), [[
    "app-1",
    String(ids.producerId),
    "Ongoing",
    "0",
  ]]);
  const filtered = await transactions(b.bootstrap, "list", "--state", "Empty");
  assert.deepEqual(tableRows(filtered.out).slice(1), []);

  const described = await transactions(b.bootstrap, "describe", "app-1", "--output", "json");
  assert.equal(described.code, 0, described.err.join("\n"));
  const d = JSON.parse(described.out);
  assert.equal(d.state, "Ongoing");
  assert.deepEqual(d.partitions, [{ topic: "t", partition: 0 }]);

  const aborted = await transactions(b.bootstrap, "abort", "app-1");
  assert.equal(aborted.code, 0, aborted.err.join("\n"));
  assert.match(aborted.out, /Aborted the open transaction of "app-1"/);
  const after = JSON.parse(
    (await transactions(b.bootstrap, "describe", "app-1", "--output", "json")).out,
  );
  assert.equal(after.state, "Empty");
  assert.ok(after.producerEpoch > ids.producerEpoch);
  // The fenced producer can no longer commit.
  const end = await conn.send(API_SCHEMAS[26], 3, {
    transactionalId: "app-1",
    ...ids,
    committed: true,
  });
  assert.equal(end!.errorCode, E.PRODUCER_FENCED);

  const missing = await transactions(b.bootstrap, "describe", "nope");
  assert.notEqual(missing.code, 0);
  assert.match(missing.err.join("\n"), /TRANSACTIONAL_ID_NOT_FOUND/);
  const usage = await transactions(b.bootstrap, "describe");
  assert.equal(usage.code, 2);
  assert.match(usage.err.join("\n"), /needs a transactional id/);
});
