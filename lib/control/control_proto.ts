/**
 * KafScale's `kafscale.control` service (proto/control/broker.proto) as data: the message
 * descriptors the codec (protobuf_codec.ts) reads, the TypeScript shapes of the messages, and
 * the RPC table (gRPC paths and streaming kinds). lib/control/broker.proto is the same contract
 * for clients; tests/control/control_proto_test.ts fails when the two disagree.
 *
 * Field numbers are KafScale's: a client generated from KafScale's file works against us.
 */
import { decodeMessage, encodeMessage, type MessageSpecs } from "./protobuf_codec.ts";

export const CONTROL_PACKAGE = "kafscale.control";

export const CONTROL_MESSAGES = {
  BrokerStatusRequest: [],
  BrokerStatusResponse: [
    { proto: "broker_id", name: "brokerId", number: 1, type: "string" },
    { proto: "version", name: "version", number: 2, type: "string" },
    { proto: "ready", name: "ready", number: 3, type: "bool" },
    {
      proto: "partitions",
      name: "partitions",
      number: 4,
      type: { message: "PartitionStatus" },
      repeated: true,
    },
  ],
  PartitionStatus: [
    { proto: "topic", name: "topic", number: 1, type: "string" },
    { proto: "partition", name: "partition", number: 2, type: "int32" },
    { proto: "leader", name: "leader", number: 3, type: "bool" },
    { proto: "state", name: "state", number: 4, type: "string" },
    { proto: "log_start_offset", name: "logStartOffset", number: 5, type: "int64" },
    { proto: "log_end_offset", name: "logEndOffset", number: 6, type: "int64" },
    { proto: "high_watermark", name: "highWatermark", number: 7, type: "int64" },
  ],
  PartitionRef: [
    { proto: "topic", name: "topic", number: 1, type: "string" },
    { proto: "partition", name: "partition", number: 2, type: "int32" },
  ],
  DrainPartitionsRequest: [
    {
      proto: "partitions",
      name: "partitions",
      number: 1,
      type: { message: "PartitionRef" },
      repeated: true,
    },
    { proto: "reason", name: "reason", number: 2, type: "string" },
    { proto: "deadline_seconds", name: "deadlineSeconds", number: 3, type: "int32" },
  ],
  DrainPartitionsResponse: [
    {
      proto: "drained",
      name: "drained",
      number: 1,
      type: { message: "PartitionRef" },
      repeated: true,
    },
    {
      proto: "pending",
      name: "pending",
      number: 2,
      type: { message: "PartitionRef" },
      repeated: true,
    },
  ],
  TriggerFlushRequest: [
    {
      proto: "partitions",
      name: "partitions",
      number: 1,
      type: { message: "PartitionRef" },
      repeated: true,
    },
    { proto: "all_assigned", name: "allAssigned", number: 2, type: "bool" },
  ],
  TriggerFlushResponse: [
    {
      proto: "flushed",
      name: "flushed",
      number: 1,
      type: { message: "PartitionRef" },
      repeated: true,
    },
  ],
  MetricsSample: [
    { proto: "broker_id", name: "brokerId", number: 1, type: "string" },
    { proto: "timestamp_ms", name: "timestampMs", number: 2, type: "int64" },
    { proto: "gauges", name: "gauges", number: 3, type: { map: "string_double" } },
    { proto: "counters", name: "counters", number: 4, type: { map: "string_double" } },
  ],
  Ack: [
    { proto: "message", name: "message", number: 1, type: "string" },
  ],
  AssignmentWatchRequest: [
    { proto: "broker_id", name: "brokerId", number: 1, type: "string" },
  ],
  PartitionAssignmentEvent: [
    { proto: "partition", name: "partition", number: 1, type: { message: "PartitionRef" } },
    { proto: "broker_id", name: "brokerId", number: 2, type: "string" },
    { proto: "status", name: "status", number: 3, type: "string" },
    { proto: "epoch", name: "epoch", number: 4, type: "int32" },
  ],
} as const satisfies MessageSpecs;

export type ControlMessageName = keyof typeof CONTROL_MESSAGES;

// deno-lint-ignore no-empty-interface
export interface BrokerStatusRequest {}
export interface BrokerStatusResponse {
  brokerId: string;
  version: string;
  ready: boolean;
  partitions: PartitionStatus[];
}
export interface PartitionStatus {
  topic: string;
  partition: number;
  leader: boolean;
  state: string;
  logStartOffset: number;
  logEndOffset: number;
  highWatermark: number;
}
export interface PartitionRef {
  topic: string;
  partition: number;
}
export interface DrainPartitionsRequest {
  partitions: PartitionRef[];
  reason: string;
  deadlineSeconds: number;
}
export interface DrainPartitionsResponse {
  drained: PartitionRef[];
  pending: PartitionRef[];
}
export interface TriggerFlushRequest {
  partitions: PartitionRef[];
  allAssigned: boolean;
}
export interface TriggerFlushResponse {
  flushed: PartitionRef[];
}
export interface MetricsSample {
  brokerId: string;
  timestampMs: number;
  gauges: Record<string, number>;
  counters: Record<string, number>;
}
export interface Ack {
  message: string;
}
export interface AssignmentWatchRequest {
  brokerId: string;
}
export interface PartitionAssignmentEvent {
  partition: PartitionRef | null;
  brokerId: string;
  status: string;
  epoch: number;
}

/** One RPC: its gRPC path, message types and streaming kind. */
export interface ControlMethod {
  service: string;
  name: string;
  path: string;
  request: ControlMessageName;
  response: ControlMessageName;
  requestStream: boolean;
  responseStream: boolean;
}

function method(
  service: string,
  name: string,
  request: ControlMessageName,
  response: ControlMessageName,
  streams: { requestStream?: boolean; responseStream?: boolean } = {},
): ControlMethod {
  return {
    service,
    name,
    path: `/${CONTROL_PACKAGE}.${service}/${name}`,
    request,
    response,
    requestStream: streams.requestStream ?? false,
    responseStream: streams.responseStream ?? false,
  };
}

export const CONTROL_METHODS: Readonly<
  Record<
    "getStatus" | "drainPartitions" | "triggerFlush" | "streamMetrics" | "watchAssignments",
    ControlMethod
  >
> = {
  getStatus: method("BrokerControl", "GetStatus", "BrokerStatusRequest", "BrokerStatusResponse"),
  drainPartitions: method(
    "BrokerControl",
    "DrainPartitions",
    "DrainPartitionsRequest",
    "DrainPartitionsResponse",
  ),
  triggerFlush: method(
    "BrokerControl",
    "TriggerFlush",
    "TriggerFlushRequest",
    "TriggerFlushResponse",
  ),
  streamMetrics: method("BrokerControl", "StreamMetrics", "MetricsSample", "Ack", {
    requestStream: true,
  }),
  watchAssignments: method(
    "AssignmentStream",
    "WatchAssignments",
    "AssignmentWatchRequest",
    "PartitionAssignmentEvent",
    { responseStream: true },
  ),
};

export type ControlMethodKey = keyof typeof CONTROL_METHODS;

export function encodeControl(type: ControlMessageName, value: object): Uint8Array {
  return encodeMessage(CONTROL_MESSAGES, type, value);
}

export function decodeControl<T>(type: ControlMessageName, bytes: Uint8Array): T {
  return decodeMessage<T>(CONTROL_MESSAGES, type, bytes);
}
