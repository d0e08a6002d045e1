/**
 * The control service's contract: lib/control/broker.proto (for clients) and the TypeScript
 * descriptor the broker encodes with (lib/control/control_proto.ts) must agree field by field,
 * and the codec must produce protobuf's bytes.
 */
import assert from "node:assert/strict";
import {
  CONTROL_MESSAGES,
  CONTROL_METHODS,
  decodeControl,
  encodeControl,
  type MetricsSample,
  type PartitionStatus,
} from "../../lib/control/control_proto.ts";
import { decodeMessage, ProtobufDecodeError } from "../../lib/control/protobuf_codec.ts";

const PROTO = await Deno.readTextFile(new URL("../../lib/control/broker.proto", import.meta.url));

function protoMessages(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of text.matchAll(/message\s+(\w+)\s*\{([^}]*)\}/g)) {
    const fields = [...m[2].matchAll(/^\s*(repeated\s+)?([\w<>, ]+?)\s+(\w+)\s*=\s*(\d+);/gm)]
      .map((f) => `${f[1] ? "repeated " : ""}${f[2].replace(/\s+/g, "")} ${f[3]} = ${f[4]}`);
    out.set(m[1], fields);
  }
  return out;
}

function descriptorMessages(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [name, fields] of Object.entries(CONTROL_MESSAGES)) {
    out.set(
      name,
      (fields as readonly { proto: string; number: number; type: unknown; repeated?: boolean }[])
        .map((f) => {
          const t = f.type as string | { message: string } | { map: string };
          const type = typeof t === "string"
            ? t
            : "message" in t
            ? t.message
            : "map<string,double>";
          return `${f.repeated ? "repeated " : ""}${type} ${f.proto} = ${f.number}`;
        }),
    );
  }
  return out;
}

Deno.test("broker.proto and the TypeScript descriptor define the same messages", () => {
  assert.match(PROTO, /^package kafscale\.control;$/m);
  assert.deepEqual(
    Object.fromEntries(protoMessages(PROTO)),
    Object.fromEntries(descriptorMessages()),
  );
});

Deno.test("broker.proto and the RPC table define the same services", () => {
  const rpcs = [...PROTO.matchAll(
    /service\s+(\w+)\s*\{([^}]*)\}/g,
  )].flatMap((s) =>
    [...s[2].matchAll(/rpc\s+(\w+)\((stream\s+)?(\w+)\)\s+returns\s+\((stream\s+)?(\w+)\)/g)].map(
      (r) =>
        `/kafscale.control.${s[1]}/${r[1]} ${r[2] ? "stream " : ""}${r[3]} ${
          r[4] ? "stream " : ""
        }${r[5]}`,
    )
  ).sort();
  const table = Object.values(CONTROL_METHODS).map((m) =>
    `${m.path} ${m.requestStream ? "stream " : ""}${m.request} ${
      m.responseStream ? "stream " : ""
    }${m.response}`
  ).sort();
  assert.deepEqual(table, rpcs);
});

Deno.test("PartitionStatus encodes to protobuf's bytes", () => {
  const status: PartitionStatus = {
    topic: "t",
    partition: 3,
    leader: true,
    state: "online",
    logStartOffset: 0,
    logEndOffset: 300,
    highWatermark: -1,
  };
  const bytes = encodeControl("PartitionStatus", status);
  // 0a 01 74 | 10 03 | 18 01 | 22 06 "online" | (5 is 0: omitted) | 30 ac 02 | 38 ff*9 01
  assert.deepEqual(
    [...bytes],
    [
      0x0a,
      1,
      0x74,
      0x10,
      3,
      0x18,
      1,
      0x22,
      6,
      ...new TextEncoder().encode("online"),
      0x30,
      0xac,
      0x02,
      0x38,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0x01,
    ],
  );
  assert.deepEqual(decodeControl("PartitionStatus", bytes), status);
});

Deno.test("MetricsSample maps round-trip and unknown fields are skipped", () => {
  const sample: MetricsSample = {
    brokerId: "b-1",
    timestampMs: 1_764_763_200_000,
    gauges: { cpu: 0.5, "": 2 },
    counters: { bytes: 12_345 },
  };
  const bytes = encodeControl("MetricsSample", sample);
  const extra = new Uint8Array([...bytes, 0x78, 0x05, 0x85, 0x01, 1, 2, 3, 4]); // fields 15, 16
  assert.deepEqual(decodeControl("MetricsSample", extra), sample);
});

Deno.test("a truncated message is a decode error, not a crash", () => {
  const bytes = encodeControl("DrainPartitionsRequest", {
    partitions: [{ topic: "orders", partition: 1 }],
    reason: "maintenance",
    deadlineSeconds: 5,
  });
  for (let cut = 1; cut < bytes.length; cut++) {
    try {
      decodeMessage(CONTROL_MESSAGES, "DrainPartitionsRequest", bytes.subarray(0, cut));
    } catch (err) {
      assert.ok(err instanceof ProtobufDecodeError, String(err));
    }
  }
});
