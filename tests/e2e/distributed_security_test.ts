/**
 * Security across brokers sharing MinIO + etcd (issue 14): each broker has a PLAINTEXT and a
 * SASL_PLAINTEXT listener. A user created through broker 1 (AlterUserScramCredentials) logs in
 * on broker 2 at once, a user deleted through broker 2 no longer can on broker 1, and Metadata
 * through a SASL listener names every broker's SASL endpoint (brokers register every listener),
 * while through the PLAINTEXT listener it names the PLAINTEXT ones.
 */
import assert from "node:assert/strict";
import { startBackends, startDistributedBroker } from "../support/distributed.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { scramLogin, scramSha512Upsertion } from "../support/sasl_client.ts";
import { freePort } from "../support/ports.ts";

Deno.test("distributed: credentials made through one broker log in on the other; Metadata answers the client's listener", async () => {
  await using backends = await startBackends();
  const ports = [1, 2].map(() => ({ plain: freePort(), sasl: freePort() }));
  const start = (id: number) =>
    startDistributedBroker(backends, {
      brokerId: id,
      args: [
        "--listeners",
        `PLAINTEXT://127.0.0.1:${ports[id - 1].plain},SASL_PLAINTEXT://127.0.0.1:${
          ports[id - 1].sasl
        }`,
      ],
    });
  await using _one = await start(1);
  await using _two = await start(2);
  const connections: KafkaConnection[] = [];
  const connect = async (port: number) => {
    const c = await KafkaConnection.connect(`127.0.0.1:${port}`);
    connections.push(c);
    return c;
  };
  try {
    // Through broker 1's PLAINTEXT listener (no authentication: it may manage credentials).
    const admin = await connect(ports[0].plain);
    const altered = await admin.send(API_SCHEMAS[51], 0, {
      deletions: [],
      upsertions: [scramSha512Upsertion("erin", "erinpw")],
    });
    assert.equal(altered!.results[0].errorCode, E.NONE);
    const onTwo = await connect(ports[1].sasl);
    assert.equal((await scramLogin(onTwo, 2, "SCRAM-SHA-512", "erin", "erinpw")).errorCode, E.NONE);
    const metadata = async (conn: KafkaConnection) =>
      (await conn.send(API_SCHEMAS[3], 9, {
        topics: [],
        allowAutoTopicCreation: false,
        includeTopicAuthorizedOperations: false,
      }))!.brokers.map((b) => [b.nodeId, b.port]).sort((a, b) => a[0] - b[0]);
    assert.deepEqual(await metadata(onTwo), [[1, ports[0].sasl], [2, ports[1].sasl]]);
    assert.deepEqual(await metadata(admin), [[1, ports[0].plain], [2, ports[1].plain]]);
    // Deleted through broker 2: broker 1 refuses the login.
    const admin2 = await connect(ports[1].plain);
    const deleted = await admin2.send(API_SCHEMAS[51], 0, {
      deletions: [{ name: "erin", mechanism: 2 }],
      upsertions: [],
    });
    assert.equal(deleted!.results[0].errorCode, E.NONE);
    const onOne = await connect(ports[0].sasl);
    assert.equal(
      (await scramLogin(onOne, 2, "SCRAM-SHA-512", "erin", "erinpw")).errorCode,
      E.SASL_AUTHENTICATION_FAILED,
    );
  } finally {
    for (const c of connections) c.close();
  }
});
