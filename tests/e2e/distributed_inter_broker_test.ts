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
import { startBackends, startDistributedBroker } from "../support/distributed.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import type { ClientSecurity } from "../../lib/client/client_security.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { scanBatches } from "../../lib/protocol/record_batch.ts";
import { transactionCoordinatorOf } from "../../lib/broker/broker.ts";
import { INTER_BROKER_USER } from "../../lib/broker/inter_broker.ts";
import { scramLogin, scramSha512Upsertion } from "../support/sasl_client.ts";
import {
  beginTransaction,
  fetchCommitted,
  produceInTransaction,
  waitForTransactionState,
} from "../support/txn_requests.ts";
import { makeCerts, serverTlsArgs } from "../support/certs.ts";

const TOPIC = "ibt";
const PARTITIONS = 4;
const COMPLETE_DEADLINE_MS = 20_000;
const PRINCIPAL_WARNING = "Other brokers call this one as a principal that is not a super user";

Deno.test("distributed: on SASL_PLAINTEXT listeners only, with ACLs, a coordinator writes markers to another broker's partitions", async () => {
  await markersAcrossBrokers("SASL_PLAINTEXT", [], (username, password) => ({
    protocol: "SASL_PLAINTEXT",
    sasl: { mechanism: "SCRAM-SHA-512", username, password },
  }));
});

Deno.test("distributed: on SASL_SSL listeners only, with ACLs, a coordinator writes markers to another broker's partitions", async () => {
  await withCerts(async (dir, ca) => {
    await markersAcrossBrokers("SASL_SSL", serverTlsArgs(dir), (username, password) => ({
      protocol: "SASL_SSL",
      caCerts: [ca],
      sasl: { mechanism: "SCRAM-SHA-512", username, password },
    }));
  });
});

Deno.test("distributed: on SSL listeners only (mTLS), with ACLs, a coordinator writes markers to another broker's partitions", async () => {
  // No SASL: each broker presents its certificate (CN=localhost) to the other, and that
  // principal is a super user; the test's client is alice's certificate, a super user too.
  await withCerts(async (dir, ca) => {
    const cert = await Deno.readTextFile(`${dir}/alice.pem`);
    const key = await Deno.readTextFile(`${dir}/alice.key`);
    await markersAcrossBrokers(
      "SSL",
      [...serverTlsArgs(dir), "--super-users", "User:CN=localhost;User:CN=alice,O=acme"],
      () => ({ protocol: "SSL", caCerts: [ca], cert, key }),
    );
  });
});

Deno.test("distributed: SSL listeners only, with ACLs, warn at start when the brokers' certificate is no super user", async () => {
  // Other brokers would call this one as User:CN=localhost, which may not write markers here.
  await withCerts(async (dir) => {
    await using backends = await startBackends();
    await using broker = await startDistributedBroker(backends, {
      brokerId: 1,
      args: [
        "--listeners",
        "SSL://127.0.0.1:0",
        ...serverTlsArgs(dir),
        "--authorizer",
        "acl",
        "--super-users",
        "User:CN=alice,O=acme",
      ],
    });
    assert.match(broker.logs(), new RegExp(`${PRINCIPAL_WARNING}.*principal="User:CN=localhost"`));
  });
});

/** Runs `fn` with makeCerts' files in a temporary directory, and the CA's PEM. */
async function withCerts(fn: (dir: string, ca: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await makeCerts(dir);
    await fn(dir, await Deno.readTextFile(`${dir}/ca.pem`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

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
    const ids = await beginTransaction(admin1, txnId, TOPIC, PARTITIONS, 60_000);
    for (let p = 0; p < PARTITIONS; p++) {
      await produceInTransaction(leaders[p] === 1 ? admin1 : admin2, txnId, ids, TOPIC, p);
    }
    const ended = await admin1.send(API_SCHEMAS[26], 3, {
      transactionalId: txnId,
      ...ids,
      committed: true,
    });
    assert.equal(ended!.errorCode, E.NONE);

    // Every partition gets its marker: the record is read committed on each leader.
    const state = await waitForTransactionState(
      admin1,
      txnId,
      "CompleteCommit",
      COMPLETE_DEADLINE_MS,
      100,
    );
    assert.equal(
      state,
      "CompleteCommit",
      `not completed within ${COMPLETE_DEADLINE_MS} ms\n--- broker 1 ---\n${one.logs()}`,
    );
    for (let p = 0; p < PARTITIONS; p++) {
      const part = await fetchCommitted(leaders[p] === 1 ? admin1 : admin2, TOPIC, p);
      assert.equal(part.errorCode, E.NONE, `partition ${p}`);
      assert.equal(part.lastStableOffset, 2, `partition ${p}: the record and its marker`);
      assert.deepEqual(
        scanBatches(part.records!).batches.map((b) => [b.baseOffset, b.isControl]),
        [[0, false], [1, true]],
        `partition ${p}`,
      );
    }

    // The brokers' principal here is allowed: no start-up warning says otherwise.
    for (const b of [one, two]) assert.doesNotMatch(b.logs(), new RegExp(PRINCIPAL_WARNING));
    if (protocol === "SSL") return; // the rest is about SASL users
    // A user who is not a super user may not write markers.
    const user = await admin1.send(API_SCHEMAS[51], 0, {
      deletions: [],
      upsertions: [scramSha512Upsertion("erin", "erinpw")],
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
      upsertions: [scramSha512Upsertion(INTER_BROKER_USER, "mine")],
    });
    assert.equal(reserved!.results[0].errorCode, E.UNACCEPTABLE_CREDENTIAL);
  } finally {
    for (const c of connections) c.close();
    await Deno.remove(password);
  }
}
