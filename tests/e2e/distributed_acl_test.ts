/**
 * ACLs across brokers sharing MinIO + etcd (issue 14): two brokers with `--authorizer acl` and a
 * SASL_PLAINTEXT listener each. An ACL created through broker 1 (CreateAcls) lets a user read a
 * topic's metadata and produce on broker 2; a PREFIXED DENY created through broker 2 takes it
 * away on broker 1 (DENY wins over ALLOW); with both deleted through broker 1 (DeleteAcls), no
 * ACL matches and broker 2 denies again (allow.everyone.if.no.acl.found is off). Each change is
 * polled for on the other broker with a deadline: the bindings reach it through the metadata
 * store's watch.
 */
import assert from "node:assert/strict";
import { startBackends, startDistributedBroker } from "../support/distributed.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES as E } from "../../lib/protocol/error_codes.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { scramLogin, scramSha512Upsertion } from "../support/sasl_client.ts";
import {
  OPERATIONS as OP,
  PATTERN_TYPES as PT,
  RESOURCE_TYPES as RT,
} from "../../lib/security/acl.ts";
import { freePort } from "../support/ports.ts";

const ALLOW = 3;
const DENY = 2;
const ANY_PERMISSION = 1;
/** How long a change made on one broker may take to show on the other. */
const PROPAGATION_DEADLINE_MS = 15_000;
const POLL_INTERVAL_MS = 100;
const TOPIC = "acl-orders";

/** Polls `probe` until it returns `want`, failing with the last value at the deadline. */
async function eventually<T>(what: string, probe: () => Promise<T>, want: T): Promise<void> {
  const deadline = Date.now() + PROPAGATION_DEADLINE_MS;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (last === want) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  assert.fail(`${what}: still ${last} after ${PROPAGATION_DEADLINE_MS} ms, want ${want}`);
}

/** Metadata v9 for TOPIC: its error code (TOPIC_AUTHORIZATION_FAILED when it may not be described). */
async function describeTopic(conn: KafkaConnection): Promise<number> {
  const res = await conn.send(API_SCHEMAS[3], 9, {
    topics: [{ name: TOPIC }],
    allowAutoTopicCreation: false,
    includeTopicAuthorizedOperations: false,
  });
  return res!.topics.find((t) => t.name === TOPIC)?.errorCode ?? -1;
}

/** Whether a listing of every topic shows TOPIC. */
async function listed(conn: KafkaConnection): Promise<boolean> {
  const res = await conn.send(API_SCHEMAS[3], 9, {
    topics: null,
    allowAutoTopicCreation: false,
    includeTopicAuthorizedOperations: false,
  });
  return res!.topics.some((t) => t.name === TOPIC);
}

async function produce(conn: KafkaConnection): Promise<number> {
  const res = await conn.send(API_SCHEMAS[0], 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 5_000,
    topicData: [{
      name: TOPIC,
      partitionData: [{
        index: 0,
        records: encodeRecordBatch([{ key: null, value: new Uint8Array([1]) }]),
      }],
    }],
  });
  return res!.responses[0].partitionResponses[0].errorCode;
}

Deno.test("distributed: ACLs created and deleted through one broker take effect on the other", async () => {
  await using backends = await startBackends();
  const password = await Deno.makeTempFile();
  await Deno.writeTextFile(password, "adminpw\n");
  const ports = [freePort(), freePort()];
  const start = (id: number) =>
    startDistributedBroker(backends, {
      brokerId: id,
      args: [
        "--listeners",
        `PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:${ports[id - 1]}`,
        "--authorizer",
        "acl",
        "--sasl-admin-user",
        "admin",
        "--sasl-admin-password-file",
        password,
      ],
    });
  await using _one = await start(1);
  await using _two = await start(2);
  const connections: KafkaConnection[] = [];
  const login = async (broker: 1 | 2, user: string, pw: string) => {
    const c = await KafkaConnection.connect(`127.0.0.1:${ports[broker - 1]}`);
    connections.push(c);
    assert.equal((await scramLogin(c, 2, "SCRAM-SHA-512", user, pw)).errorCode, E.NONE, user);
    return c;
  };
  try {
    const admin1 = await login(1, "admin", "adminpw");
    const user = await admin1.send(API_SCHEMAS[51], 0, {
      deletions: [],
      upsertions: [scramSha512Upsertion("erin", "erinpw")],
    });
    assert.equal(user!.results[0].errorCode, E.NONE);
    const created = await admin1.send(API_SCHEMAS[19], 4, {
      topics: [{
        name: TOPIC,
        numPartitions: 1,
        replicationFactor: 1,
        assignments: [],
        configs: [],
      }],
      timeoutMs: 5_000,
    });
    assert.equal(created!.topics[0].errorCode, E.NONE);

    // No ACL yet: erin, logged in on broker 2, may neither see nor write the topic.
    const erin2 = await login(2, "erin", "erinpw");
    assert.equal(await describeTopic(erin2), E.TOPIC_AUTHORIZATION_FAILED);
    assert.equal(await listed(erin2), false);
    assert.equal(await produce(erin2), E.TOPIC_AUTHORIZATION_FAILED);

    // ALLOW WRITE (which implies DESCRIBE) through broker 1: broker 2 lets erin in.
    const allow = await admin1.send(API_SCHEMAS[30], 3, {
      creations: [{
        resourceType: RT.TOPIC,
        resourceName: TOPIC,
        resourcePatternType: PT.LITERAL,
        principal: "User:erin",
        host: "*",
        operation: OP.WRITE,
        permissionType: ALLOW,
      }],
    });
    assert.equal(allow!.results[0].errorCode, E.NONE);
    await eventually("erin describes the topic on broker 2", () => describeTopic(erin2), E.NONE);
    assert.equal(await listed(erin2), true);
    // Authorized; which broker leads the partition is not this test's business.
    assert.ok(
      ([E.NONE, E.NOT_LEADER_OR_FOLLOWER] as number[]).includes(await produce(erin2)),
      "erin may write on broker 2",
    );

    // A PREFIXED DENY through broker 2 wins over the ALLOW on broker 1.
    const admin2 = await login(2, "admin", "adminpw");
    const deny = await admin2.send(API_SCHEMAS[30], 3, {
      creations: [{
        resourceType: RT.TOPIC,
        resourceName: "acl-",
        resourcePatternType: PT.PREFIXED,
        principal: "User:erin",
        host: "*",
        operation: OP.ALL,
        permissionType: DENY,
      }],
    });
    assert.equal(deny!.results[0].errorCode, E.NONE);
    const erin1 = await login(1, "erin", "erinpw");
    await eventually(
      "erin is denied on broker 1",
      () => produce(erin1),
      E.TOPIC_AUTHORIZATION_FAILED,
    );
    assert.equal(await describeTopic(erin1), E.TOPIC_AUTHORIZATION_FAILED);
    assert.equal(await listed(erin1), false);

    // DescribeAcls on broker 1 sees both bindings; DeleteAcls there removes them everywhere.
    const described = await admin1.send(API_SCHEMAS[29], 3, {
      resourceTypeFilter: RT.TOPIC,
      resourceNameFilter: null,
      patternTypeFilter: PT.ANY,
      principalFilter: "User:erin",
      hostFilter: null,
      operation: OP.ANY,
      permissionType: ANY_PERMISSION,
    });
    assert.equal(described!.errorCode, E.NONE);
    assert.deepEqual(
      described!.resources.map((r) => `${r.resourceName}/${r.patternType}`).sort(),
      [`acl-/${PT.PREFIXED}`, `${TOPIC}/${PT.LITERAL}`],
    );
    const deleted = await admin1.send(API_SCHEMAS[31], 3, {
      filters: [{
        resourceTypeFilter: RT.TOPIC,
        resourceNameFilter: null,
        patternTypeFilter: PT.ANY,
        principalFilter: "User:erin",
        hostFilter: null,
        operation: OP.ANY,
        permissionType: ANY_PERMISSION,
      }],
    });
    assert.equal(deleted!.filterResults[0].errorCode, E.NONE);
    assert.equal(deleted!.filterResults[0].matchingAcls.length, 2);
    // No ACL left: broker 2 denies (allow.everyone.if.no.acl.found is off), and lists nothing.
    await eventually("erin's bindings are gone on broker 2", async () => {
      const r = await admin2.send(API_SCHEMAS[29], 3, {
        resourceTypeFilter: RT.TOPIC,
        resourceNameFilter: null,
        patternTypeFilter: PT.ANY,
        principalFilter: "User:erin",
        hostFilter: null,
        operation: OP.ANY,
        permissionType: ANY_PERMISSION,
      });
      return r!.resources.length;
    }, 0);
    assert.equal(await produce(erin2), E.TOPIC_AUTHORIZATION_FAILED);
    assert.equal(await describeTopic(erin2), E.TOPIC_AUTHORIZATION_FAILED);
  } finally {
    for (const c of connections) c.close();
    await Deno.remove(password);
  }
});
