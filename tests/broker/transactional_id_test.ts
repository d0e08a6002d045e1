/**
 * Transactional producers fail fast instead of retrying until their timeout.
 * Pins issue 18 (librdkafka 0103/0129 and `init_transactions()`): FindCoordinator
 * for a transactional id answered the retriable COORDINATOR_NOT_AVAILABLE
 * forever, and InitProducerId's INVALID_REQUEST is retried by librdkafka. Both
 * now answer TRANSACTIONAL_ID_AUTHORIZATION_FAILED, fatal in Java and librdkafka.
 */
import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { NO_TRANSACTIONS_MESSAGE } from "../../lib/broker/find_coordinator.ts";

const FIND_COORDINATOR = API_SCHEMAS[10];
const INIT_PRODUCER_ID = API_SCHEMAS[22];

Deno.test("FindCoordinator for a transactional id fails fast with TRANSACTIONAL_ID_AUTHORIZATION_FAILED", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  for (let v = 1; v <= 3; v++) {
    const res = await conn.send(FIND_COORDINATOR, v, { key: "txn-1", keyType: 1 });
    assert.equal(res!.errorCode, E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, `v${v}`);
    assert.equal(res!.nodeId, -1);
    assert.equal(res!.errorMessage, NO_TRANSACTIONS_MESSAGE, `v${v}`);
  }
  const batched = await conn.send(FIND_COORDINATOR, 4, {
    keyType: 1,
    coordinatorKeys: ["txn-1", "txn-2"],
  });
  assert.deepEqual(
    batched!.coordinators!.map((c) => [c.key, c.errorCode, c.errorMessage]),
    [
      ["txn-1", E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, NO_TRANSACTIONS_MESSAGE],
      ["txn-2", E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, NO_TRANSACTIONS_MESSAGE],
    ],
  );
});

Deno.test("InitProducerId with a transactional id fails fast with TRANSACTIONAL_ID_AUTHORIZATION_FAILED", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const res = await conn.send(INIT_PRODUCER_ID, 4, {
    transactionalId: "txn-1",
    transactionTimeoutMs: 60_000,
    producerId: -1,
    producerEpoch: -1,
  });
  assert.equal(res!.errorCode, E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  assert.deepEqual([res!.producerId, res!.producerEpoch], [-1, -1]);
});
