/**
 * Incremental fetch sessions (KIP-227): the cache's bookkeeping (slots, eviction, epochs) with
 * a manual clock, and the Fetch handler's session protocol over the wire at every version that
 * has sessions (v7+).
 */
import assert from "node:assert/strict";
import { startTestBroker } from "../support/test_broker.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { encodeRecordBatch } from "../../lib/protocol/records.ts";
import { HANDLERS } from "../../lib/broker/handler_table.ts";
import { FetchSessionCache, nextEpoch } from "../../lib/broker/fetch_sessions.ts";
import { ManualClock } from "../../lib/util/clock.ts";
import type { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import type { FetchResponse } from "../../lib/protocol/generated/fetch_response.ts";

const PRODUCE = API_SCHEMAS[0];
const FETCH = API_SCHEMAS[1];
const CREATE_TOPICS = API_SCHEMAS[19];
const enc = new TextEncoder();
const UNKNOWN_TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ";

function addPartitions(cache: FetchSessionCache, id: number, count: number): void {
  const s = cache.acquire(id, 1, false);
  assert.ok(s.ok);
  for (let p = 0; p < count; p++) {
    s.session.upsert({
      topic: "t",
      topicId: "",
      partition: p,
      fetchOffset: 0,
      maxBytes: 1,
      currentLeaderEpoch: -1,
    });
  }
  s.session.epoch = 1; // as if this were the opening full fetch
}

Deno.test("fetch session cache: ids, epochs and addressing are checked; a replay is refused", () => {
  const cache = new FetchSessionCache(new ManualClock(0), 10);
  const s = cache.create(false, 2)!;
  assert.ok(s.id > 0);
  assert.equal(s.epoch, 1);
  assert.deepEqual(cache.acquire(s.id + 1, 1, false), {
    ok: false,
    errorCode: "FETCH_SESSION_ID_NOT_FOUND",
  });
  assert.deepEqual(cache.acquire(s.id, 2, false), {
    ok: false,
    errorCode: "INVALID_FETCH_SESSION_EPOCH",
  });
  assert.deepEqual(cache.acquire(s.id, 1, true), {
    ok: false,
    errorCode: "FETCH_SESSION_TOPIC_ID_ERROR",
  });
  assert.ok(cache.acquire(s.id, 1, false).ok);
  // The same request again (same epoch) is a replay.
  assert.deepEqual(cache.acquire(s.id, 1, false), {
    ok: false,
    errorCode: "INVALID_FETCH_SESSION_EPOCH",
  });
  assert.ok(cache.acquire(s.id, 2, false).ok);
  cache.close(s.id);
  assert.equal(cache.size, 0);
  assert.equal(nextEpoch(0x7fffffff), 1, "epochs wrap to 1, never 0 or -1");
});

Deno.test("fetch session cache: bounded slots; stale sessions go first, then smaller old ones", () => {
  const clock = new ManualClock(0);
  const cache = new FetchSessionCache(clock, 2, 1_000);
  const a = cache.create(false, 5)!;
  addPartitions(cache, a.id, 5);
  const b = cache.create(false, 1)!;
  addPartitions(cache, b.id, 1);
  assert.equal(cache.create(false, 100), null, "full, and nobody is old enough to evict");
  clock.advance(1_500);
  cache.acquire(a.id, 1, false); // a is used again; b is now stale
  const c = cache.create(false, 1)!;
  assert.ok(c, "the stale session made room");
  assert.equal(cache.acquire(b.id, 1, false).ok, false, "b was evicted");
  assert.equal(cache.evictions, 1);
  // Nobody is stale now; a (5 partitions, old enough) is not smaller than a 3-partition
  // newcomer, and c is too young: no room.
  assert.equal(cache.create(false, 3), null);
  clock.advance(500);
  cache.acquire(a.id, 2, false);
  cache.acquire(c.id, 1, false);
  // c is 500 ms old (too young to evict by size); a is old but not smaller than 5.
  assert.equal(cache.create(false, 5), null);
  // A bigger newcomer evicts the smallest session old enough: a (5) is old; c is not.
  assert.ok(cache.create(false, 6));
  assert.equal(cache.acquire(a.id, 3, false).ok, false, "a was evicted for a larger session");
  assert.equal(cache.size, 2);
  assert.equal(new FetchSessionCache(clock, 0).create(false, 3), null, "0 slots: no sessions");
});

async function createTopic(conn: KafkaConnection, name: string, partitions: number) {
  const res = await conn.send(CREATE_TOPICS, 7, {
    topics: [{
      name,
      numPartitions: partitions,
      replicationFactor: 1,
      assignments: [],
      configs: [],
    }],
    timeoutMs: 10_000,
  });
  assert.equal(res!.topics[0].errorCode, ERROR_CODES.NONE);
  return res!.topics[0].topicId!;
}

async function produce(conn: KafkaConnection, topic: string, partition: number, value: string) {
  const res = await conn.send(PRODUCE, 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{
      name: topic,
      partitionData: [{
        index: partition,
        records: encodeRecordBatch([{ key: null, value: enc.encode(value), timestamp: 1 }]),
      }],
    }],
  });
  assert.equal(res!.responses[0].partitionResponses[0].errorCode, ERROR_CODES.NONE);
}

interface Wanted {
  partition: number;
  fetchOffset: number;
}

function fetch(
  conn: KafkaConnection,
  version: number,
  topic: { name: string; id: string },
  session: { id: number; epoch: number },
  partitions: Wanted[],
  forgotten: number[] = [],
) {
  const byId = version >= 13;
  return conn.send(FETCH, version, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1024 * 1024,
    isolationLevel: 0,
    sessionId: session.id,
    sessionEpoch: session.epoch,
    topics: partitions.length === 0 ? [] : [{
      topic: byId ? undefined : topic.name,
      topicId: topic.id,
      partitions: partitions.map((p) => ({
        partition: p.partition,
        currentLeaderEpoch: -1,
        fetchOffset: p.fetchOffset,
        lastFetchedEpoch: -1,
        logStartOffset: -1,
        partitionMaxBytes: 1024 * 1024,
      })),
    }],
    forgottenTopicsData: forgotten.length === 0 ? [] : [{
      topic: byId ? undefined : topic.name,
      topicId: topic.id,
      partitions: forgotten,
    }],
    rackId: "",
  }) as Promise<FetchResponse>;
}

/** [partition, high watermark, record bytes > 0] per answered partition. */
function answered(res: FetchResponse): [number, number, boolean][] {
  return res.responses.flatMap((t) =>
    t.partitions.map((p): [number, number, boolean] => [
      p.partitionIndex,
      p.highWatermark,
      (p.records?.length ?? 0) > 0,
    ])
  ).sort((a, b) => a[0] - b[0]);
}

Deno.test("Fetch v7-18 sessions: incremental requests answer only partitions with news", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const fetchHandler = HANDLERS.get(1)!;
  for (let v = Math.max(7, fetchHandler.minVersion); v <= fetchHandler.maxVersion; v++) {
    const name = `sess-${v}`;
    const topic = { name, id: await createTopic(conn, name, 3) };
    await produce(conn, name, 0, "a");
    const all = [0, 1, 2].map((partition) => ({ partition, fetchOffset: 0 }));
    // Full fetch, epoch 0: opens a session and answers every partition.
    const full = await fetch(conn, v, topic, { id: 0, epoch: 0 }, all);
    const ctx = `v${v}`;
    assert.equal(full.errorCode, ERROR_CODES.NONE, ctx);
    assert.ok(full.sessionId! > 0, `${ctx}: a session was opened`);
    assert.deepEqual(answered(full), [[0, 1, true], [1, 0, false], [2, 0, false]], ctx);
    const id = full.sessionId!;
    // Incremental, nothing named: partition 0 moved nowhere (the session still reads it from
    // 0), so it answers again with its record; 1 and 2 have no news and are left out.
    const again = await fetch(conn, v, topic, { id, epoch: 1 }, []);
    assert.equal(again.sessionId, id, ctx);
    assert.deepEqual(answered(again), [[0, 1, true]], ctx);
    // The consumer moves partition 0 past the record: nothing is new anywhere.
    const quiet = await fetch(conn, v, topic, { id, epoch: 2 }, [{ partition: 0, fetchOffset: 1 }]);
    assert.deepEqual(answered(quiet), [], `${ctx}: an empty incremental answer`);
    // New data on partition 2 shows up, alone.
    await produce(conn, name, 2, "b");
    const news = await fetch(conn, v, topic, { id, epoch: 3 }, []);
    assert.deepEqual(answered(news), [[2, 1, true]], ctx);
    // Partition 2 forgotten: new data there is no longer answered; partition 1's is.
    await produce(conn, name, 2, "c");
    await produce(conn, name, 1, "d");
    const forgot = await fetch(conn, v, topic, { id, epoch: 4 }, [], [2]);
    assert.deepEqual(answered(forgot), [[1, 1, true]], ctx);
    // A stale epoch (a replay) and an unknown id are refused with the session errors.
    const stale = await fetch(conn, v, topic, { id, epoch: 4 }, []);
    assert.equal(stale.errorCode, ERROR_CODES.INVALID_FETCH_SESSION_EPOCH, ctx);
    assert.equal(stale.responses.length, 0, ctx);
    const unknown = await fetch(conn, v, topic, { id: id ^ 0x5a5a, epoch: 1 }, []);
    assert.equal(unknown.errorCode, ERROR_CODES.FETCH_SESSION_ID_NOT_FOUND, ctx);
    // Epoch -1 closes the session and fetches without one.
    const closing = await fetch(conn, v, topic, { id, epoch: -1 }, all);
    assert.equal(closing.sessionId, 0, ctx);
    assert.equal(answered(closing).length, 3, ctx);
    const closed = await fetch(conn, v, topic, { id, epoch: 5 }, []);
    assert.equal(closed.errorCode, ERROR_CODES.FETCH_SESSION_ID_NOT_FOUND, ctx);
  }
  assert.equal(b.node.broker.fetchSessions.size, 0, "every session was closed");
});

Deno.test("Fetch sessions: errors are always answered; addressing must not change in a session", async () => {
  await using b = await startTestBroker();
  const conn = await b.connect();
  const topic = { name: "errs", id: await createTopic(conn, "errs", 1) };
  const missing = { name: "errs", id: UNKNOWN_TOPIC_ID };
  // A session over a topic id nobody knows: the error is answered on every incremental fetch.
  const full = await fetch(conn, 13, missing, { id: 0, epoch: 0 }, [{
    partition: 0,
    fetchOffset: 0,
  }]);
  assert.equal(full.responses[0].partitions[0].errorCode, ERROR_CODES.UNKNOWN_TOPIC_ID);
  for (let epoch = 1; epoch <= 2; epoch++) {
    const inc = await fetch(conn, 13, missing, { id: full.sessionId!, epoch }, []);
    assert.equal(inc.responses[0].partitions[0].errorCode, ERROR_CODES.UNKNOWN_TOPIC_ID);
  }
  // A session opened with names (v12) cannot continue with ids (v13).
  const named = await fetch(conn, 12, topic, { id: 0, epoch: 0 }, [{
    partition: 0,
    fetchOffset: 0,
  }]);
  const switched = await fetch(conn, 13, topic, { id: named.sessionId!, epoch: 1 }, []);
  assert.equal(switched.errorCode, ERROR_CODES.FETCH_SESSION_TOPIC_ID_ERROR);
});

Deno.test("Fetch sessions: with no slot free the broker answers session id 0 and full fetches work", async () => {
  await using b = await startTestBroker({ settings: { "fetch-session-cache-slots": "1" } });
  const conn = await b.connect();
  const topic = { name: "slots", id: await createTopic(conn, "slots", 1) };
  await produce(conn, "slots", 0, "x");
  const one = [{ partition: 0, fetchOffset: 0 }];
  const first = await fetch(conn, 12, topic, { id: 0, epoch: 0 }, one);
  assert.ok(first.sessionId! > 0);
  const second = await fetch(conn, 12, topic, { id: 0, epoch: 0 }, one);
  assert.equal(second.sessionId, 0, "no slot: no session, and the full answer still comes");
  assert.deepEqual(answered(second), [[0, 1, true]]);
  assert.equal(b.node.broker.fetchSessions.size, 1);
});
