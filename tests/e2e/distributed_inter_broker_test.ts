/**
 * Brokers calling each other on a secured cluster (lib/broker/inter_broker.ts): two brokers on
 * MinIO + etcd with SASL_PLAINTEXT (then SASL_SSL, then SSL with client certificates) listeners
 * only and `--authorizer acl`. A transaction over
 * partitions led by both is committed through its coordinator (broker 1), which must write the
 * COMMIT markers of broker 2's partitions with WriteTxnMarkers: it logs in to broker 2 as the
 * brokers' own user, with the secret they share through etcd. Before, it called without
 * credentials, so on SASL-only listeners the transaction never completed. A client that is not
 * a super user gets CLUSTER_AUTHORIZATION_FAILED for WriteTxnMarkers (it could otherwise commit
 * or abort anyone's transaction), cannot log in as the brokers' user, and cannot give it a
 * credential.
 */
import assert from "node:assert/strict";
import { pbkdf2Sync, randomBytes } from "node:crypto";
import { startBackends, startDistributedBroker } from "../support/distributed.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import type { ClientSecurity } from "../../lib/client/client_security.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { scanBatches } from "../../lib/protocol/record_batch.ts";
import { transactionCoordinatorOf } from "../../lib/broker/broker.ts";
import { INTER_BROKER_USER } from "../../lib/broker/inter_broker.ts";
import { scramLogin } from "../support/sasl_client.ts";
import { makeCerts } from "../support/certs.ts";

const TOPIC = "ibt";
const PARTITIONS = 4;
const COMPLETE_DEADLINE_MS = 20_000;

Deno.test("distributed: on SASL_PLAINTEXT listeners only, with ACLs, a coordinator writes markers to another broker's partitions", async () => {
  await markersAcrossBrokers("SASL_PLAINTEXT", [], (username, password) => ({
    protocol: "SASL_PLAINTEXT",
    sasl: { mechanism: "SCRAM-SHA-512", username, password },
  }));
});

Deno.test("distributed: on SASL_SSL listeners only, with ACLs, a coordinator writes markers to another broker's partitions", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await makeCerts(dir);
    const ca = await Deno.readTextFile(`${dir}/ca.pem`);
    await markersAcrossBrokers(
      "SASL_SSL",
      [
        "--tls-cert-file",
        `${dir}/server.pem`,
        "--tls-key-file",
        `${dir}/server.key`,
        "--tls-client-ca-file",
        `${dir}/ca.pem`,
      ],
      (username, password) => ({
        protocol: "SASL_SSL",
        caCerts: [ca],
        sasl: { mechanism: "SCRAM-SHA-512", username, password },
      }),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("distributed: on SSL listeners only (mTLS), with ACLs, a coordinator writes markers to another broker's partitions", async () => {
  // No SASL: each broker presents its certificate (CN=localhost) to the other, and that
  // principal is a super user; the test's client is alice's certificate, a super user too.
  const dir = await Deno.makeTempDir();
  try {
    await makeCerts(dir);
    const ca = await Deno.readTextFile(`${dir}/ca.pem`);
    const cert = await Deno.readTextFile(`${dir}/alice.pem`);
    const key = await Deno.readTextFile(`${dir}/alice.key`);
    await markersAcrossBrokers(
      "SSL",
      [
        "--tls-cert-file",
        `${dir}/server.pem`,
        "--tls-key-file",
        `${dir}/server.key`,
        "--tls-client-ca-file",
        `${dir}/ca.pem`,
        "--super-users",
        "User:CN=localhost;User:CN=alice,O=acme",
      ],
      () => ({ protocol: "SSL", caCerts: [ca], cert, key }),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function markersAcrossBrokers(
  protocol: "SASL_PLAINTEXT" | "SASL_SSL" | "SSL",
  tlsArgs: string[],
  as: (user: string, password: string) => ClientSecurity,
): Promise<void> {
  await using backends = await startBackends();
  const password = await Deno.makeTempFile();
  await Deno.writeTextFile(password, "adminpw\n");
  const start = (id: number) =>
    startDistributedBroker(backends, {
      brokerId: id,
      args: [
        "--listeners",
        `${protocol}://127.0.0.1:0`,
        ...tlsArgs,
        "--authorizer",
        "acl",
        "--sasl-admin-user",
        "admin",
        "--sasl-admin-password-file",
        password,
      ],
    });
  await using one = await start(1);
  await using two = await start(2);
  const connections: KafkaConnection[] = [];
  const connect = async (bootstrap: string, security: ClientSecurity) => {
    const c = await KafkaConnection.connect(bootstrap, "inter-broker-test", security);
    connections.push(c);
    return c;
  };
  try {
    const admin1 = await connect(one.bootstrap, as("admin", "adminpw"));
    const admin2 = await connect(two.bootstrap, as("admin", "adminpw"));
    const created = await admin1.send(API_SCHEMAS[19], 4, {
      topics: [{
        name: TOPIC,
        numPartitions: PARTITIONS,
        replicationFactor: 1,
        assignments: [],
        configs: [],
      }],
      timeoutMs: 5_000,
    });
    assert.equal(created!.topics[0].errorCode, E.NONE);
    const metadata = await admin1.send(API_SCHEMAS[3], 9, {
      topics: [{ name: TOPIC }],
      allowAutoTopicCreation: false,
      includeTopicAuthorizedOperations: false,
    });
    const leaders = metadata!.topics[0].partitions.sort((a, b) =>
      a.partitionIndex - b.partitionIndex
    )
      .map((p) => p.leaderId);
    assert.deepEqual([...new Set(leaders)].sort(), [1, 2], `leaders ${leaders}`);

    // A transactional id broker 1 coordinates, over partitions of both brokers.
    let txnId = "";
    for (let i = 0; txnId === ""; i++) {
      if (transactionCoordinatorOf(`ibt-${i}`, [1, 2], 1) === 1) txnId = `ibt-${i}`;
    }
    const init = (await admin1.send(API_SCHEMAS[22], 4, {
      transactionalId: txnId,
      transactionTimeoutMs: 60_000,
      producerId: -1,
      producerEpoch: -1,
    }))!;
    assert.equal(init.errorCode, E.NONE);
    const ids = { producerId: init.producerId, producerEpoch: init.producerEpoch };
    const added = await admin1.send(API_SCHEMAS[24], 3, {
      v3AndBelowTransactionalId: txnId,
      v3AndBelowProducerId: ids.producerId,
      v3AndBelowProducerEpoch: ids.producerEpoch,
      v3AndBelowTopics: [{ name: TOPIC, partitions: [...Array(PARTITIONS).keys()] }],
    });
    assert.deepEqual(
      added!.resultsByTopicV3AndBelow![0].resultsByPartition.map((p) => p.partitionErrorCode),
      Array(PARTITIONS).fill(E.NONE),
    );
    for (let p = 0; p < PARTITIONS; p++) {
      const res = await (leaders[p] === 1 ? admin1 : admin2).send(API_SCHEMAS[0], 9, {
        transactionalId: txnId,
        acks: -1,
        timeoutMs: 10_000,
        topicData: [{
          name: TOPIC,
          partitionData: [{
            index: p,
            records: encodeRecordBatch(
              [{ key: null, value: new TextEncoder().encode(`p${p}`) }],
              { ...ids, baseSequence: 0, transactional: true },
            ),
          }],
        }],
      });
      assert.equal(res!.responses[0].partitionResponses[0].errorCode, E.NONE, `partition ${p}`);
    }
    const ended = await admin1.send(API_SCHEMAS[26], 3, {
      transactionalId: txnId,
      ...ids,
      committed: true,
    });
    assert.equal(ended!.errorCode, E.NONE);

    // Every partition gets its marker: the record is read committed on each leader.
    const deadline = Date.now() + COMPLETE_DEADLINE_MS;
    let state = "";
    while (Date.now() < deadline) {
      const res = await admin1.send(API_SCHEMAS[65], 0, { transactionalIds: [txnId] });
      state = res!.transactionStates[0].transactionState;
      if (state === "CompleteCommit") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(
      state,
      "CompleteCommit",
      `not completed within ${COMPLETE_DEADLINE_MS} ms\n--- broker 1 ---\n${one.logs()}`,
    );
    for (let p = 0; p < PARTITIONS; p++) {
      const res = await (leaders[p] === 1 ? admin1 : admin2).send(API_SCHEMAS[1], 11, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 1 << 20,
        isolationLevel: 1,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [{
          topic: TOPIC,
          partitions: [{
            partition: p,
            currentLeaderEpoch: -1,
            fetchOffset: 0,
            logStartOffset: -1,
            partitionMaxBytes: 1 << 20,
          }],
        }],
        forgottenTopicsData: [],
        rackId: "",
      });
      const part = res!.responses[0].partitions[0];
      assert.equal(part.errorCode, E.NONE, `partition ${p}`);
      assert.equal(part.lastStableOffset, 2, `partition ${p}: the record and its marker`);
      assert.deepEqual(
        scanBatches(part.records!).batches.map((b) => [b.baseOffset, b.isControl]),
        [[0, false], [1, true]],
        `partition ${p}`,
      );
    }

    if (protocol === "SSL") return; // the rest is about SASL users
    // A user who is not a super user may not write markers.
    const salt = new Uint8Array(randomBytes(16));
    const user = await admin1.send(API_SCHEMAS[51], 0, {
      deletions: [],
      upsertions: [{
        name: "erin",
        mechanism: 2,
        iterations: 4096,
        salt,
        saltedPassword: new Uint8Array(pbkdf2Sync("erinpw", salt, 4096, 64, "sha512")),
      }],
    });
    assert.equal(user!.results[0].errorCode, E.NONE);
    const erin = await connect(two.bootstrap, as("erin", "erinpw"));
    const markers = await erin.send(API_SCHEMAS[27], 1, {
      markers: [{
        producerId: ids.producerId,
        producerEpoch: ids.producerEpoch,
        transactionResult: false,
        coordinatorEpoch: 1_000,
        topics: [{ name: TOPIC, partitionIndexes: [leaders.indexOf(2)] }],
      }],
    });
    assert.equal(
      markers!.markers[0].topics[0].partitions[0].errorCode,
      E.CLUSTER_AUTHORIZATION_FAILED,
    );

    // Nobody logs in as the brokers' user without their secret, nor gives it a credential.
    const guess = await KafkaConnection.connect(two.bootstrap, "inter-broker-test", {
      ...as("x", "x"),
      sasl: undefined,
    });
    connections.push(guess);
    const login = await scramLogin(guess, 2, "SCRAM-SHA-512", INTER_BROKER_USER, "adminpw");
    assert.equal(login.errorCode, E.SASL_AUTHENTICATION_FAILED);
    const reserved = await admin2.send(API_SCHEMAS[51], 0, {
      deletions: [],
      upsertions: [{
        name: INTER_BROKER_USER,
        mechanism: 2,
        iterations: 4096,
        salt,
        saltedPassword: new Uint8Array(pbkdf2Sync("mine", salt, 4096, 64, "sha512")),
      }],
    });
    assert.equal(reserved!.results[0].errorCode, E.UNACCEPTABLE_CREDENTIAL);
  } finally {
    for (const c of connections) c.close();
    await Deno.remove(password);
  }
}
