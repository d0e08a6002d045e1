/**
 * ACLs at the broker (issue 14), `--authorizer acl`, over a SASL_PLAINTEXT listener: CreateAcls,
 * DescribeAcls and DeleteAcls at every version, and the decisions per resource type — topics
 * (LITERAL and PREFIXED, DENY winning over ALLOW), groups, transactional ids and the cluster —
 * with Metadata hiding the topics a principal may not describe, super users always allowed, and
 * allow.everyone.if.no.acl.found off by default. Without an authorizer the ACL APIs answer
 * SECURITY_DISABLED.
 */
import assert from "node:assert/strict";
import { startTestBroker, type TestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { plainLogin } from "../support/sasl_client.ts";
import {
  OPERATIONS as OP,
  PATTERN_TYPES as PT,
  RESOURCE_TYPES as RT,
} from "../../lib/security/acl.ts";

const ALLOW = 3;
const DENY = 2;

async function aclBroker(): Promise<
  TestBroker & { login(user: string): Promise<KafkaConnection> }
> {
  const password = await Deno.makeTempFile();
  await Deno.writeTextFile(password, "adminpw\n");
  const b = await startTestBroker({
    settings: {
      listeners: "SASL_PLAINTEXT://127.0.0.1:0",
      "sasl-admin-user": "admin",
      "sasl-admin-password-file": password,
      authorizer: "acl",
    },
  });
  const conns: KafkaConnection[] = [];
  const login = async (user: string) => {
    const c = await KafkaConnection.connect(b.bootstrap);
    conns.push(c);
    assert.equal(
      (await plainLogin(c, 2, user, `${user}pw`.replace("adminpw", "adminpw"))).errorCode,
      E.NONE,
      user,
    );
    return c;
  };
  const stop = b.stop;
  const out = Object.assign(b, { login });
  out.stop = async () => {
    for (const c of conns) c.close();
    await stop();
  };
  return out;
}

function binding(
  resourceType: number,
  resourceName: string,
  principal: string,
  operation: number,
  permissionType = ALLOW,
  patternType: number = PT.LITERAL,
) {
  return {
    resourceType,
    resourceName,
    resourcePatternType: patternType,
    principal,
    host: "*",
    operation,
    permissionType,
  };
}

async function produce(
  conn: KafkaConnection,
  topic: string,
  transactionalId: string | null = null,
) {
  const res = await conn.send(API_SCHEMAS[0], 9, {
    transactionalId,
    acks: -1,
    timeoutMs: 5_000,
    topicData: [{
      name: topic,
      partitionData: [{
        index: 0,
        records: encodeRecordBatch([{ key: null, value: new Uint8Array([1]) }]),
      }],
    }],
  });
  return res!.responses[0].partitionResponses[0].errorCode;
}

Deno.test("ACLs: topics, groups, transactional ids and the cluster, allowed and denied", async () => {
  const b = await aclBroker();
  try {
    const admin = await b.login("admin");
    // Users (as the super user) and topics.
    const { pbkdf2Sync, randomBytes } = await import("node:crypto");
    for (const user of ["alice", "bob"]) {
      const salt = new Uint8Array(randomBytes(16));
      const r = await admin.send(API_SCHEMAS[51], 0, {
        deletions: [],
        upsertions: [{
          name: user,
          mechanism: 2,
          iterations: 4096,
          salt,
          saltedPassword: new Uint8Array(pbkdf2Sync(`${user}pw`, salt, 4096, 64, "sha512")),
        }],
      });
      assert.equal(r!.results[0].errorCode, E.NONE);
    }
    for (const name of ["orders", "logs-a", "secret", "shared"]) {
      const r = await admin.send(API_SCHEMAS[19], 4, {
        topics: [{ name, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
        timeoutMs: 5_000,
      });
      assert.equal(r!.topics[0].errorCode, E.NONE, name);
    }
    for (const v of [1, 2, 3]) {
      const created = await admin.send(API_SCHEMAS[30], v, {
        creations: [
          binding(RT.TOPIC, "orders", "User:alice", OP.WRITE),
          binding(RT.TOPIC, "orders", "User:alice", OP.READ),
          binding(RT.TOPIC, "logs-", "User:alice", OP.READ, ALLOW, PT.PREFIXED),
          binding(RT.TOPIC, "shared", "User:*", OP.READ),
          binding(RT.TOPIC, "shared", "User:alice", OP.READ, DENY),
          binding(RT.GROUP, "g1", "User:alice", OP.READ),
          binding(RT.TRANSACTIONAL_ID, "t1", "User:alice", OP.WRITE),
          binding(RT.CLUSTER, "wrong-name", "User:alice", OP.CREATE),
        ],
      });
      assert.deepEqual(
        created!.results.map((r) => r.errorCode),
        [0, 0, 0, 0, 0, 0, 0, E.INVALID_REQUEST],
        `CreateAcls v${v}`,
      );
    }
    const alice = await b.login("alice");
    const bob = await b.login("bob");
    // Topics: LITERAL, PREFIXED, DENY wins, no ACL found -> denied.
    assert.equal(await produce(alice, "orders"), E.NONE);
    assert.equal(await produce(alice, "secret"), E.TOPIC_AUTHORIZATION_FAILED);
    assert.equal(await produce(bob, "orders"), E.TOPIC_AUTHORIZATION_FAILED);
    const fetch = async (conn: KafkaConnection, topic: string) =>
      (await conn.send(API_SCHEMAS[1], 11, {
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
            currentLeaderEpoch: -1,
            fetchOffset: 0,
            logStartOffset: -1,
            partitionMaxBytes: 1 << 20,
          }],
        }],
        forgottenTopicsData: [],
        rackId: "",
      }))!.responses[0].partitions[0].errorCode;
    assert.equal(await fetch(alice, "logs-a"), E.NONE, "PREFIXED logs-");
    assert.equal(await fetch(alice, "shared"), E.TOPIC_AUTHORIZATION_FAILED, "DENY wins");
    assert.equal(await fetch(bob, "shared"), E.NONE, "User:* allowed");
    assert.equal(await fetch(bob, "secret"), E.TOPIC_AUTHORIZATION_FAILED, "no ACL: denied");
    // Metadata hides what a principal may not describe (READ/WRITE imply DESCRIBE).
    const names = async (conn: KafkaConnection) =>
      (await conn.send(API_SCHEMAS[3], 9, {
        topics: null,
        allowAutoTopicCreation: false,
        includeTopicAuthorizedOperations: false,
      }))!
        .topics.map((t) => t.name).sort();
    // (A DENY of READ does not deny DESCRIBE: "shared" stays visible, as in Kafka.)
    assert.deepEqual(await names(alice), ["logs-a", "orders", "shared"]);
    assert.deepEqual(await names(bob), ["shared"]);
    assert.deepEqual(await names(admin), ["logs-a", "orders", "secret", "shared"]);
    // Groups.
    const join = async (conn: KafkaConnection, groupId: string) =>
      (await conn.send(API_SCHEMAS[11], 5, {
        groupId,
        sessionTimeoutMs: 10_000,
        rebalanceTimeoutMs: 10_000,
        memberId: "",
        groupInstanceId: null,
        protocolType: "consumer",
        protocols: [{ name: "range", metadata: new Uint8Array(0) }],
      }))!.errorCode;
    assert.equal(await join(alice, "g2"), E.GROUP_AUTHORIZATION_FAILED);
    assert.notEqual(await join(alice, "g1"), E.GROUP_AUTHORIZATION_FAILED);
    // Transactional ids.
    const init = async (conn: KafkaConnection, id: string) =>
      (await conn.send(API_SCHEMAS[22], 4, {
        transactionalId: id,
        transactionTimeoutMs: 60_000,
        producerId: -1,
        producerEpoch: -1,
      }))!.errorCode;
    assert.equal(await init(alice, "t1"), E.NONE);
    assert.equal(await init(alice, "t2"), E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    // The cluster: creating topics and reading ACLs need cluster rights.
    const create = await alice.send(API_SCHEMAS[19], 4, {
      topics: [{
        name: "new",
        numPartitions: 1,
        replicationFactor: 1,
        assignments: [],
        configs: [],
      }],
      timeoutMs: 5_000,
    });
    assert.equal(create!.topics[0].errorCode, E.TOPIC_AUTHORIZATION_FAILED);
    const describeAsAlice = await alice.send(API_SCHEMAS[29], 3, {
      resourceTypeFilter: RT.ANY,
      resourceNameFilter: null,
      patternTypeFilter: PT.ANY,
      principalFilter: null,
      hostFilter: null,
      operation: OP.ANY,
      permissionType: 1,
    });
    assert.equal(describeAsAlice!.errorCode, E.CLUSTER_AUTHORIZATION_FAILED);
    // Idempotent producer ids: WRITE on some topic (alice) or IDEMPOTENT_WRITE on the cluster.
    const idempotent = async (conn: KafkaConnection) =>
      (await conn.send(API_SCHEMAS[22], 4, {
        transactionalId: null,
        transactionTimeoutMs: 60_000,
        producerId: -1,
        producerEpoch: -1,
      }))!.errorCode;
    assert.equal(await idempotent(alice), E.NONE);
    assert.equal(await idempotent(bob), E.CLUSTER_AUTHORIZATION_FAILED);
    const epochs = await bob.send(API_SCHEMAS[23], 3, {
      replicaId: -1,
      topics: [{
        topic: "orders",
        partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 0 }],
      }],
    });
    assert.equal(epochs!.topics[0].partitions[0].errorCode, E.TOPIC_AUTHORIZATION_FAILED);
    const described = await alice.send(API_SCHEMAS[75], 0, {
      topics: [],
      responsePartitionLimit: 100,
      cursor: null,
    });
    assert.deepEqual(described!.topics.map((t) => t.name), ["logs-a", "orders", "shared"]);
    // The admin APIs on resources alice has no rights on.
    const partitions = await alice.send(API_SCHEMAS[37], 1, {
      topics: [{ name: "secret", count: 2, assignments: null }],
      timeoutMs: 5_000,
      validateOnly: false,
    });
    assert.equal(partitions!.results[0].errorCode, E.TOPIC_AUTHORIZATION_FAILED);
    const configs = await alice.send(API_SCHEMAS[32], 1, {
      resources: [{ resourceType: 2, resourceName: "secret", configurationKeys: null }],
      includeSynonyms: false,
    });
    assert.equal(configs!.results[0].errorCode, E.TOPIC_AUTHORIZATION_FAILED);
    const records = await alice.send(API_SCHEMAS[21], 1, {
      topics: [{ name: "secret", partitions: [{ partitionIndex: 0, offset: 0 }] }],
      timeoutMs: 5_000,
    });
    assert.equal(records!.topics[0].partitions[0].errorCode, E.TOPIC_AUTHORIZATION_FAILED);
    const groups = await alice.send(API_SCHEMAS[42], 1, { groupsNames: ["g1"] });
    assert.equal(groups!.results[0].errorCode, E.GROUP_AUTHORIZATION_FAILED, "READ is not DELETE");
    const cluster = async (conn: KafkaConnection) =>
      (await conn.send(API_SCHEMAS[60], 0, { includeClusterAuthorizedOperations: false }))!
        .errorCode;
    assert.equal(await cluster(alice), E.CLUSTER_AUTHORIZATION_FAILED);
    assert.equal(await cluster(admin), E.NONE);
    // DescribeAcls and DeleteAcls as the super user, at every version.
    for (const v of [0, 1, 2, 3]) {
      const d = await admin.send(API_SCHEMAS[29], v, {
        resourceTypeFilter: RT.TOPIC,
        resourceNameFilter: "orders",
        patternTypeFilter: PT.LITERAL,
        principalFilter: null,
        hostFilter: null,
        operation: OP.ANY,
        permissionType: 1,
      });
      assert.deepEqual(
        d!.resources.map((r) => [r.resourceName, r.acls.length]),
        [["orders", 2]],
        `v${v}`,
      );
    }
    const matched = await admin.send(API_SCHEMAS[29], 2, {
      resourceTypeFilter: RT.TOPIC,
      resourceNameFilter: "logs-a",
      patternTypeFilter: PT.MATCH,
      principalFilter: null,
      hostFilter: null,
      operation: OP.ANY,
      permissionType: 1,
    });
    assert.deepEqual(matched!.resources.map((r) => [r.resourceName, r.patternType]), [[
      "logs-",
      PT.PREFIXED,
    ]]);
    for (const v of [0, 1, 2, 3]) {
      const del = await admin.send(API_SCHEMAS[31], v, {
        filters: [{
          resourceTypeFilter: RT.TOPIC,
          resourceNameFilter: v === 0 ? "orders" : "shared",
          patternTypeFilter: PT.LITERAL,
          principalFilter: null,
          hostFilter: null,
          operation: OP.ANY,
          permissionType: 1,
        }],
      });
      assert.equal(del!.filterResults[0].errorCode, E.NONE, `DeleteAcls v${v}`);
    }
    // With orders' ACLs gone, alice may no longer write there.
    assert.equal(await produce(alice, "orders"), E.TOPIC_AUTHORIZATION_FAILED);
  } finally {
    await b.stop();
  }
});

Deno.test("ACL APIs answer SECURITY_DISABLED without an authorizer", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const d = await conn.send(API_SCHEMAS[29], 1, {
    resourceTypeFilter: RT.ANY,
    resourceNameFilter: null,
    patternTypeFilter: PT.ANY,
    principalFilter: null,
    hostFilter: null,
    operation: OP.ANY,
    permissionType: 1,
  });
  assert.equal(d!.errorCode, E.SECURITY_DISABLED);
  const c = await conn.send(API_SCHEMAS[30], 1, {
    creations: [binding(RT.TOPIC, "x", "User:a", OP.READ)],
  });
  assert.equal(c!.results[0].errorCode, E.SECURITY_DISABLED);
});
