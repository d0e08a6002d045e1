/**
 * Golden wire tests: frames captured from real clients and a real Apache Kafka
 * (scripts/capture_golden.ts, fixtures in tests/fixtures/golden/<client>/) must decode with the
 * generated codecs, leave no byte unread, and re-encode to the same bytes. Record fields are
 * decoded as views into the frame and written by reference, so they must round-trip without a
 * copy too.
 *
 * The coverage test ties the fixtures to what the broker advertises: every (api, version) in
 * HANDLERS has a captured request, or is listed in NOT_SENT_BY_ANY_CLIENT with a reason.
 */

import assert from "node:assert/strict";
import { HANDLERS } from "../../lib/broker/handler_table.ts";
import type { MessageCodec } from "../../lib/protocol/codec.ts";
import { apiSchema } from "../../lib/protocol/generated/apis.ts";
import {
  readRequestHeader,
  readResponseHeader,
  writeRequestHeader,
  writeResponseHeader,
} from "../../lib/protocol/headers.ts";
import { Reader, Writer, WRITER_REF_MIN_BYTES } from "../../lib/protocol/primitives.ts";

const FIXTURE_DIR = new URL("../fixtures/golden/", import.meta.url);
/** Bytes of context shown either side of the first mismatch. */
const DIFF_CONTEXT_BYTES = 16;
/** Depth limit when walking a decoded message for record views. */
const WALK_DEPTH_MAX = 32;

interface IndexEntry {
  file: string;
  apiKey: number;
  apiName: string;
  apiVersion: number;
  kind: "request" | "response";
  client: string;
  clientVersion: string;
  broker: string;
}

interface Fixture extends IndexEntry {
  bytes: Uint8Array;
}

/**
 * Advertised (api, version) pairs that no captured client sends, with the reason. Keep it
 * honest: the coverage test fails when a listed version gets a request fixture.
 */
const NOT_SENT_BY_ANY_CLIENT: { apiKey: number; versions: [number, number]; reason: string }[] = [
  // deno-fmt-ignore
  ...([
    [24, 2, 2], [24, 4, 4], [25, 0, 0], [25, 2, 4], [26, 0, 0], [26, 2, 2], [26, 4, 4],
    [27, 0, 1], [28, 0, 4], [65, 0, 0], [66, 0, 1], [0, 12, 12],
  ] as const).map(([apiKey, from, to]) => ({
    apiKey,
    versions: [from, to] as [number, number],
    reason: "Transaction APIs (and Produce v12, transactions V2), served since issue 12: the " +
      "captured clients that ran transactional " +
      "steps sent other versions, and no capture run covers TxnOffsetCommit, WriteTxnMarkers " +
      "(broker to broker) or the transaction admin APIs; every version is exercised by " +
      "tests/broker/transactions_test.ts and, for the admin APIs, by kafka-transactions.sh in " +
      "tests/e2e/kafka_tools_transactions_test.ts",
  })),
  {
    apiKey: 36,
    versions: [0, 2],
    reason: "SaslAuthenticate, served since issue 14: no capture run had a SASL listener; every " +
      "version is exercised by tests/broker/sasl_test.ts and real clients in " +
      "tests/e2e/security_test.ts",
  },
  ...[29, 30, 31].map((apiKey) => ({
    apiKey,
    versions: [0, 3] as [number, number],
    reason: "ACL APIs, served since issue 14: no capture run manages ACLs; every version is " +
      "exercised by tests/broker/acl_test.ts and kafka-acls.sh in tests/e2e/security_test.ts",
  })),
  {
    apiKey: 48,
    versions: [0, 0],
    reason: "DescribeClientQuotas v0, served since issue 14: clients send v1 (kafka-configs.sh " +
      "in tests/e2e/security_test.ts); v0 is exercised by tests/broker/sasl_test.ts",
  },
  {
    apiKey: 51,
    versions: [0, 0],
    reason: "AlterUserScramCredentials, served since issue 14: no capture run alters " +
      "credentials; exercised by tests/broker/sasl_test.ts and kafka-configs.sh in " +
      "tests/e2e/security_test.ts",
  },
  ...[68, 69].map((apiKey) => ({
    apiKey,
    versions: [0, 1] as [number, number],
    reason: "ConsumerGroupHeartbeat/ConsumerGroupDescribe (KIP-848): the capture runs use the " +
      "classic protocol; tests/e2e/consumer_protocol_test.ts (Java 4.4, group.protocol=consumer), " +
      "franz-go's kgo suite (its 848 variants of TestGroupETL and TestTxnEtl) and " +
      "tests/broker/consumer_group_test.ts exercise them",
  })),
  ...[8, 9].map((apiKey) => ({
    apiKey,
    versions: [10, 10] as [number, number],
    reason: "OffsetCommit/OffsetFetch v10 (topic ids): Kafka 4.4's Java client sends v10 only " +
      "for groups of the consumer protocol (KIP-848); tests/broker/groups_test.ts exercises v10 " +
      "with topic ids and UNKNOWN_TOPIC_ID",
  })),
  {
    apiKey: 21,
    versions: [0, 1],
    reason: "DeleteRecords v0-1: only the newest Java capture run calls deleteRecords, and it " +
      "sends v2; every version is exercised by tests/broker/delete_records_test.ts",
  },
  {
    apiKey: 35,
    versions: [0, 3],
    reason: "DescribeLogDirs v0-3: only the newest Java and the kafka-python capture runs call " +
      "describeLogDirs, and they send v4; every version is exercised by " +
      "tests/broker/admin_apis_test.ts",
  },
  {
    apiKey: 0,
    versions: [0, 2],
    reason: "Produce v0-2: only pre-0.11 clients (message sets v0/v1); " +
      "covered by round-trip and broker tests",
  },
  {
    apiKey: 0,
    versions: [4, 4],
    reason: "Produce v4: Java 0.11 sends v3 and Java 1.0 already v5; the other clients send v7+",
  },
  {
    apiKey: 1,
    versions: [4, 4],
    reason: "Fetch v4: Java 0.11 sends v5; only old librdkafka (< 1.0) used v4",
  },
  {
    apiKey: 1,
    versions: [9, 9],
    reason: "Fetch v9: added together with v10 in Kafka 2.1; Java 2.1+ sends v10",
  },
  {
    apiKey: 1,
    versions: [14, 14],
    reason: "Fetch v14: added together with v15 in Kafka 3.5; Java 3.5 sends v15",
  },
  {
    apiKey: 2,
    versions: [0, 1],
    reason: "ListOffsets v0-1: Java 0.10.x only; Java 0.11 and librdkafka start at v2",
  },
  {
    apiKey: 3,
    versions: [0, 3],
    reason: "Metadata v0-3: pre-0.11 clients; Java 0.11 and librdkafka 2.0 start at v4",
  },
  {
    apiKey: 3,
    versions: [10, 10],
    reason: "Metadata v10: added together with v11 in Kafka 2.8; Java 2.8 sends v11",
  },
  {
    apiKey: 17,
    versions: [0, 0],
    reason: "SaslHandshake v0: Java 0.10.0 only; kcat's SASL probe sends v1",
  },
  {
    apiKey: 18,
    versions: [0, 0],
    reason: "ApiVersions v0: Java 0.10.x; newer clients start at v1 " +
      "(librdkafka falls back to v0 only when v3 is rejected)",
  },
  {
    apiKey: 19,
    versions: [0, 1],
    reason: "CreateTopics v0-1: Java 0.10.1-0.10.2 admin only",
  },
  {
    apiKey: 20,
    versions: [0, 0],
    reason: "DeleteTopics v0: Java 0.10.1-0.10.2 admin only",
  },
  {
    apiKey: 23,
    versions: [0, 2],
    reason: "OffsetForLeaderEpoch v0-2: sent by brokers' replica fetchers; consumers validating " +
      "positions (KIP-320) send v3+, which are captured",
  },
  {
    apiKey: 10,
    versions: [0, 0],
    reason: "FindCoordinator v0: pre-0.11 clients (GroupCoordinator)",
  },
  {
    apiKey: 11,
    versions: [0, 1],
    reason: "JoinGroup v0-1: pre-0.11 clients",
  },
  {
    apiKey: 11,
    versions: [8, 8],
    reason: "JoinGroup v8: added together with v9 in Kafka 3.2 (KIP-800); Java 3.2+ sends v9",
  },
  { apiKey: 14, versions: [0, 0], reason: "SyncGroup v0: pre-0.11 clients" },
  { apiKey: 12, versions: [0, 0], reason: "Heartbeat v0: pre-0.11 clients" },
  { apiKey: 13, versions: [0, 0], reason: "LeaveGroup v0: pre-0.11 clients" },
  {
    apiKey: 8,
    versions: [0, 2],
    reason: "OffsetCommit v0-2: pre-0.11 clients (v0 stored offsets in ZooKeeper)",
  },
  {
    apiKey: 9,
    versions: [0, 2],
    reason: "OffsetFetch v0-2: pre-0.11 clients (v0 read offsets from ZooKeeper)",
  },
  {
    apiKey: 15,
    versions: [0, 1],
    reason: "DescribeGroups v0-1: pre-2.0 tools (Scala AdminClient); Java AdminClient starts at v2",
  },
  {
    apiKey: 15,
    versions: [4, 4],
    reason: "DescribeGroups v4: added together with v5 in Kafka 2.4; Java 2.4+ sends v5",
  },
  {
    apiKey: 16,
    versions: [0, 1],
    reason: "ListGroups v0-1: pre-2.0 tools (Scala AdminClient); Java AdminClient starts at v2",
  },
  {
    apiKey: 22,
    versions: [3, 3],
    reason: "InitProducerId v3: Java 2.5-2.6 only (KIP-360); captured releases send v0-2 and v4-5",
  },
  {
    apiKey: 42,
    versions: [0, 0],
    reason: "DeleteGroups v0: Kafka 1.1 command-line tools; Java AdminClient (2.0+) starts at v1",
  },
];

function loadFixtures(): { fixtures: Fixture[]; clients: string[] } {
  const fixtures: Fixture[] = [];
  const clients: string[] = [];
  for (const entry of Deno.readDirSync(FIXTURE_DIR)) {
    if (!entry.isDirectory) continue;
    const dir = new URL(`${entry.name}/`, FIXTURE_DIR);
    const index = JSON.parse(Deno.readTextFileSync(new URL("index.json", dir)));
    clients.push(entry.name);
    for (const f of index.fixtures as IndexEntry[]) {
      fixtures.push({ ...f, bytes: Deno.readFileSync(new URL(f.file, dir)) });
    }
  }
  clients.sort();
  fixtures.sort((a, b) => a.client.localeCompare(b.client) || a.file.localeCompare(b.file));
  return { fixtures, clients };
}

const { fixtures, clients } = loadFixtures();

function hex(b: Uint8Array, from: number, to: number): string {
  return [...b.subarray(Math.max(0, from), Math.min(b.length, to))]
    .map((x) => x.toString(16).padStart(2, "0")).join(" ");
}

/** Fails with the first differing offset and the bytes around it. */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array, where: string): void {
  const n = Math.min(actual.length, expected.length);
  let i = 0;
  while (i < n && actual[i] === expected[i]) i++;
  if (i === n && actual.length === expected.length) return;
  const from = i - DIFF_CONTEXT_BYTES;
  const to = i + DIFF_CONTEXT_BYTES;
  assert.fail(
    `${where}: re-encoded frame differs at offset ${i} ` +
      `(lengths: re-encoded ${actual.length}, captured ${expected.length})\n` +
      `  captured   [${Math.max(0, from)}..]: ${hex(expected, from, to)}\n` +
      `  re-encoded [${Math.max(0, from)}..]: ${hex(actual, from, to)}`,
  );
}

/** Every Uint8Array in a decoded message that is a view into `frame` (no copy). */
function viewsInto(value: unknown, frame: Uint8Array, out: Uint8Array[], depth = 0): void {
  assert.ok(depth <= WALK_DEPTH_MAX, "decoded message nests deeper than WALK_DEPTH_MAX");
  if (value instanceof Uint8Array) {
    if (value.buffer === frame.buffer) out.push(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) viewsInto(v, frame, out, depth + 1);
    return;
  }
  if (value !== null && typeof value === "object") {
    for (const v of Object.values(value)) viewsInto(v, frame, out, depth + 1);
  }
}

/** Decodes header + body, checks the frame is consumed; returns the header and body. */
function decodeFixture(f: Fixture) {
  const schema = apiSchema(f.apiKey);
  assert.ok(schema, `no generated codec for API key ${f.apiKey}`);
  const r = new Reader(f.bytes);
  const codec = (f.kind === "request" ? schema.request : schema.response) as MessageCodec<
    unknown
  >;
  let correlationId: number;
  let header: ReturnType<typeof readRequestHeader> | undefined;
  if (f.kind === "request") {
    header = readRequestHeader(r);
    assert.equal(header.requestApiKey, f.apiKey, "request header API key");
    assert.equal(header.requestApiVersion, f.apiVersion, "request header API version");
    correlationId = header.correlationId;
  } else {
    const h = readResponseHeader(r, f.apiKey, f.apiVersion);
    correlationId = h.correlationId;
    // A response header with tagged fields would be dropped by writeResponseHeader.
    assert.equal(h._unknownTaggedFields, undefined, "response header tagged fields");
  }
  const headerBytes = r.offset;
  const body = codec.read(r, f.apiVersion);
  assert.equal(
    r.remaining(),
    0,
    `${codec.name} v${f.apiVersion} left ${r.remaining()} of ${f.bytes.length} bytes unread ` +
      `(body started at offset ${headerBytes}, stopped at ${r.offset})`,
  );
  return { codec, header, correlationId, body };
}

function encodeFixture(f: Fixture, decoded: ReturnType<typeof decodeFixture>): Uint8Array[] {
  const w = new Writer();
  if (decoded.header !== undefined) writeRequestHeader(w, decoded.header);
  else writeResponseHeader(w, decoded.correlationId, f.apiKey, f.apiVersion);
  decoded.codec.write(w, decoded.body, f.apiVersion);
  return w.finish();
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

Deno.test("golden: fixtures are present for every captured client", () => {
  assert.ok(clients.length > 0, `no fixture directories under ${FIXTURE_DIR.pathname}`);
  for (const client of clients) {
    assert.ok(
      fixtures.some((f) => f.client === client),
      `client "${client}" has an index.json with no fixtures`,
    );
  }
});

for (const f of fixtures) {
  Deno.test(`golden: ${f.client}/${f.file} decodes and re-encodes byte for byte`, () => {
    const where = `${f.client}/${f.file} (${f.apiName} v${f.apiVersion} ${f.kind}, ` +
      `${f.clientVersion}, ${f.broker})`;
    const decoded = decodeFixture(f);
    const chunks = encodeFixture(f, decoded);
    assertSameBytes(concat(chunks), f.bytes, where);

    // Zero-copy fields: views into the frame, written by reference once large enough.
    const views: Uint8Array[] = [];
    viewsInto(decoded.body, f.bytes, views);
    for (const v of views) {
      assert.ok(v.byteOffset >= f.bytes.byteOffset, `${where}: view starts before the frame`);
      if (v.length >= WRITER_REF_MIN_BYTES) {
        assert.ok(
          chunks.includes(v),
          `${where}: a ${v.length}-byte record field was copied on re-encode, not referenced`,
        );
      }
    }
  });
}

Deno.test("golden: record fields of captured frames decode as views and re-encode by reference", () => {
  let large = 0;
  let small = 0;
  for (const f of fixtures) {
    if (f.apiKey !== 0 && f.apiKey !== 1) continue; // Produce requests, Fetch responses.
    const decoded = decodeFixture(f);
    const views: Uint8Array[] = [];
    viewsInto(decoded.body, f.bytes, views);
    for (const v of views) {
      if (v.length >= WRITER_REF_MIN_BYTES) large++;
      else small++;
    }
  }
  assert.ok(small > 0, "no captured Produce/Fetch frame has a record field decoded as a view");
  assert.ok(
    large > 0,
    `no captured record field reaches WRITER_REF_MIN_BYTES (${WRITER_REF_MIN_BYTES}); ` +
      "re-capture with a large record (scripts/golden/kcat.sh produce_big)",
  );
});

Deno.test("golden: every advertised (api, version) has a captured request or a reason", () => {
  const sent = new Set(
    fixtures.filter((f) => f.kind === "request").map((f) => `${f.apiKey}/${f.apiVersion}`),
  );
  const missing: string[] = [];
  const stale: string[] = [];
  for (const [apiKey, handler] of HANDLERS) {
    for (let v = handler.minVersion; v <= handler.maxVersion; v++) {
      const listed = NOT_SENT_BY_ANY_CLIENT.find((e) =>
        e.apiKey === apiKey && v >= e.versions[0] && v <= e.versions[1]
      );
      if (sent.has(`${apiKey}/${v}`)) {
        if (listed) stale.push(`${handler.name} v${v} (listed: "${listed.reason}")`);
      } else if (!listed) {
        missing.push(`${handler.name} v${v}`);
      }
    }
  }
  for (const e of NOT_SENT_BY_ANY_CLIENT) {
    const handler = HANDLERS.get(e.apiKey);
    assert.ok(handler, `NOT_SENT_BY_ANY_CLIENT lists API key ${e.apiKey}, which is not served`);
    assert.ok(
      e.versions[0] >= handler.minVersion && e.versions[1] <= handler.maxVersion,
      `NOT_SENT_BY_ANY_CLIENT lists ${handler.name} v${e.versions[0]}-${e.versions[1]}, ` +
        `outside the advertised ${handler.minVersion}-${handler.maxVersion}`,
    );
  }
  assert.deepEqual(
    stale,
    [],
    "captured clients send these versions: remove them from NOT_SENT_BY_ANY_CLIENT",
  );
  assert.deepEqual(
    missing,
    [],
    "advertised versions with no captured request: capture them " +
      "(scripts/capture_golden.ts) or list them in NOT_SENT_BY_ANY_CLIENT with a reason",
  );
});
