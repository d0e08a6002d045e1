import assert from "node:assert/strict";
import type { MessageCodec } from "../../lib/protocol/codec.ts";
import { API_SCHEMA_LIST, API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { API_VERSIONS_REQUEST } from "../../lib/protocol/generated/api_versions_request.ts";
import { FETCH_RESPONSE } from "../../lib/protocol/generated/fetch_response.ts";
import { PRODUCE_REQUEST } from "../../lib/protocol/generated/produce_request.ts";
import { REQUEST_HEADER } from "../../lib/protocol/generated/request_header.ts";
import { RESPONSE_HEADER } from "../../lib/protocol/generated/response_header.ts";
import { DecodeError, Reader, Writer } from "../../lib/protocol/primitives.ts";
import { loadSchemas, randomMessage, Rng, versionRange } from "./random_values.ts";

/** Random values per message and version. */
const SAMPLES_PER_VERSION = 12;

const schemas = loadSchemas();

function allCodecs(): MessageCodec<unknown>[] {
  const codecs: MessageCodec<unknown>[] = [
    REQUEST_HEADER as MessageCodec<unknown>,
    RESPONSE_HEADER as MessageCodec<unknown>,
  ];
  for (const api of API_SCHEMA_LIST) codecs.push(api.request, api.response);
  return codecs;
}

function encode<T>(codec: MessageCodec<T>, value: T, version: number): Uint8Array {
  const w = new Writer();
  codec.write(w, value, version);
  return w.finishBytes();
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

for (const codec of allCodecs()) {
  Deno.test(`round trip: ${codec.name} in every version`, () => {
    const schema = schemas.get(codec.name);
    assert.ok(schema, `schema for ${codec.name}`);
    const [min, max] = versionRange(schema.validVersions);
    assert.equal(codec.minVersion, min);
    assert.equal(codec.maxVersion, max);
    const rng = new Rng(hash(codec.name));
    for (let version = min; version <= max; version++) {
      for (let i = 0; i < SAMPLES_PER_VERSION; i++) {
        const { value, expected } = randomMessage(schema, version, rng);
        const where = `${codec.name} v${version} sample ${i}`;
        const bytes = encode(codec, value, version);
        const r = new Reader(bytes);
        const decoded = codec.read(r, version);
        assert.equal(r.remaining(), 0, `${where}: decoder left bytes`);
        assert.deepStrictEqual(decoded, expected, where);
        assert.deepStrictEqual(encode(codec, decoded, version), bytes, `${where}: re-encode`);
      }
    }
    assert.throws(() => codec.read(new Reader(new Uint8Array(0)), max + 1), DecodeError);
    assert.throws(() => codec.write(new Writer(), {}, max + 1), RangeError);
  });
}

Deno.test("golden: ApiVersions v3 request as sent by the Java client", () => {
  // clientSoftwareName "apache-kafka-java", version "3.7.0", no tagged fields.
  const expected = Uint8Array.from([
    0x12,
    ...new TextEncoder().encode("apache-kafka-java"),
    0x06,
    ...new TextEncoder().encode("3.7.0"),
    0x00,
  ]);
  const value = { clientSoftwareName: "apache-kafka-java", clientSoftwareVersion: "3.7.0" };
  assert.deepStrictEqual(encode(API_VERSIONS_REQUEST, value, 3), expected);
  // Fields of later versions (v5 ClusterId, NodeId) decode to their defaults.
  assert.deepStrictEqual(API_VERSIONS_REQUEST.read(new Reader(expected), 3), {
    ...value,
    clusterId: null,
    nodeId: -1,
  });
  // v0-v2 have no body at all.
  assert.equal(encode(API_VERSIONS_REQUEST, value, 2).length, 0);
});

Deno.test("golden: request header v2 keeps the int16 client id and adds tagged fields", () => {
  const header = { requestApiKey: 18, requestApiVersion: 3, correlationId: 7, clientId: "c" };
  assert.deepStrictEqual(
    encode(REQUEST_HEADER, header, 2),
    Uint8Array.from([0, 18, 0, 3, 0, 0, 0, 7, 0, 1, 0x63, 0]),
  );
  assert.deepStrictEqual(
    encode(REQUEST_HEADER, { ...header, clientId: null }, 1),
    Uint8Array.from([0, 18, 0, 3, 0, 0, 0, 7, 0xff, 0xff]),
  );
  assert.deepStrictEqual(
    encode(REQUEST_HEADER, header, 0),
    Uint8Array.from([0, 18, 0, 3, 0, 0, 0, 7]),
  );
});

Deno.test("golden: Produce v3 request with one partition", () => {
  const records = Uint8Array.from([1, 2, 3]);
  const value = {
    transactionalId: null,
    acks: -1,
    timeoutMs: 30000,
    topicData: [{ name: "t", partitionData: [{ index: 2, records }] }],
  };
  const expected = Uint8Array.from([
    0xff,
    0xff, // transactional id: null
    0xff,
    0xff, // acks -1
    0,
    0,
    0x75,
    0x30, // timeout 30000
    0,
    0,
    0,
    1,
    0,
    1,
    0x74, // one topic "t"
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    2, // one partition, index 2
    0,
    0,
    0,
    3,
    1,
    2,
    3, // records
  ]);
  assert.deepStrictEqual(encode(PRODUCE_REQUEST, value, 3), expected);
  const decoded = PRODUCE_REQUEST.read(new Reader(expected), 3);
  // The v13 topic id decodes to its default (the zero UUID) at older versions.
  assert.deepStrictEqual(decoded, {
    ...value,
    topicData: [{ ...value.topicData[0], topicId: "AAAAAAAAAAAAAAAAAAAAAA" }],
  });
  // Records decode as a view into the request, not a copy.
  assert.equal(decoded.topicData[0].partitionData[0].records?.buffer, expected.buffer);
});

Deno.test("golden: Produce v9 request uses compact encodings and tagged-field bytes", () => {
  const value = {
    transactionalId: null,
    acks: 1,
    timeoutMs: 1000,
    topicData: [{ name: "t", partitionData: [{ index: 0, records: null }] }],
  };
  const expected = Uint8Array.from([
    0x00, // transactional id: null (compact)
    0,
    1, // acks
    0,
    0,
    0x03,
    0xe8, // timeout
    0x02,
    0x02,
    0x74, // one topic "t"
    0x02,
    0,
    0,
    0,
    0,
    0x00,
    0x00, // one partition, index 0, null records, no tags
    0x00, // topic tags
    0x00, // top-level tags
  ]);
  assert.deepStrictEqual(encode(PRODUCE_REQUEST, value, 9), expected);
});

Deno.test("large records are written by reference, not copied", () => {
  const records = new Uint8Array(64 * 1024).fill(7);
  const value = {
    acks: 1,
    timeoutMs: 1,
    topicData: [{ name: "t", partitionData: [{ index: 0, records }] }],
  };
  const w = new Writer();
  PRODUCE_REQUEST.write(w, value, 9);
  assert.ok(w.finish().some((chunk) => chunk === records));
});

Deno.test("tagged fields: default values are not sent, known tags decode in any order", () => {
  const partition = {
    partitionIndex: 0,
    errorCode: 0,
    highWatermark: 5,
    records: null,
    currentLeader: { leaderId: 3, leaderEpoch: 9 },
    divergingEpoch: { epoch: -1, endOffset: -1 },
  };
  const value = { responses: [{ topicId: "AAAAAAAAAAAAAAAAAAAAAQ", partitions: [partition] }] };
  const bytes = encode(FETCH_RESPONSE, value, 13);
  const decoded = FETCH_RESPONSE.read(new Reader(bytes), 13);
  const p = decoded.responses[0].partitions[0];
  assert.deepStrictEqual(p.currentLeader, { leaderId: 3, leaderEpoch: 9 });
  assert.deepStrictEqual(p.divergingEpoch, { epoch: -1, endOffset: -1 });
  assert.equal(p._unknownTaggedFields, undefined);
  // The partition's tag section holds exactly one field: tag 1 (CurrentLeader), 9 bytes.
  const tagSection = Uint8Array.from([1, 1, 9, 0, 0, 0, 3, 0, 0, 0, 9, 0]);
  const end = bytes.length - 2; // followed by the topic's and the top level's empty tag sections
  assert.deepStrictEqual(bytes.subarray(end - tagSection.length, end), tagSection);
});

Deno.test("unknown tagged fields survive a round trip, sorted among known ones", () => {
  const value = {
    errorCode: 0,
    apiKeys: [],
    throttleTimeMs: 0,
    finalizedFeaturesEpoch: 4,
    _unknownTaggedFields: [{ tag: 0x7fff, data: Uint8Array.from([1]) }, {
      tag: 2000,
      data: Uint8Array.from([]),
    }],
  };
  const codec = API_SCHEMAS[18].response;
  const bytes = encode(codec, value, 3);
  const decoded = codec.read(new Reader(bytes), 3) as typeof value;
  assert.deepStrictEqual(decoded._unknownTaggedFields?.map((f) => f.tag), [2000, 0x7fff]);
  assert.equal(decoded.finalizedFeaturesEpoch, 4);
  assert.throws(
    () =>
      encode(codec, { ...value, _unknownTaggedFields: [{ tag: 1, data: new Uint8Array(0) }] }, 3),
    RangeError,
  );
});

Deno.test("non-nullable fields reject null on both sides", () => {
  // Produce v0: the topic array is not nullable; an int32 -1 length is corrupt.
  const bytes = Uint8Array.from([0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]);
  assert.throws(() => PRODUCE_REQUEST.read(new Reader(bytes), 0), DecodeError);
  // Metadata v1+: a null topic list means "all topics"; v0 has no null.
  const metadata = API_SCHEMAS[3].request;
  assert.deepStrictEqual(metadata.read(new Reader(Uint8Array.from([0xff, 0xff, 0xff, 0xff])), 1), {
    topics: null,
    allowAutoTopicCreation: true,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
  });
  assert.throws(() => encode(metadata, { topics: null }, 0), RangeError);
});
