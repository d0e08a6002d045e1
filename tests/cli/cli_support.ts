/**
 * Helpers for the CLI tests: captured output for in-process runs, and a
 * consumer-group member that joins over the Kafka protocol and stays in
 * the group (Stable) until it leaves, to exercise the "active group" paths.
 */
import assert from "node:assert/strict";
import type { CliIo } from "../../lib/cli/output.ts";
import { KafkaConnection } from "../../lib/client/kafka_connection.ts";
import { API_SCHEMAS } from "../../lib/protocol/generated/apis.ts";
import { ERROR_CODES } from "../../lib/protocol/error_codes.ts";
import { Writer } from "../../lib/protocol/primitives.ts";

export interface CapturedIo extends CliIo {
  out: string[];
  err: string[];
  /** Everything written to stdout, lines joined. */
  stdoutText(): string;
}

export function captureIo(): CapturedIo {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    stdout: (text) => out.push(text),
    stderr: (text) => err.push(text),
    stdoutText: () => out.join("\n"),
  };
}

/** Splits a rendered table into rows of cells (two or more spaces separate cells). */
export function tableRows(text: string): string[][] {
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => l.trim().split(/\s{2,}/));
}

function subscription(topics: string[]): Uint8Array {
  const w = new Writer();
  w.int16(0);
  w.int32(topics.length);
  for (const t of topics) w.string(t);
  w.nullableBytes(null);
  return w.finishBytes();
}

function assignment(topic: string, partitions: number[]): Uint8Array {
  const w = new Writer();
  w.int16(0);
  w.int32(1);
  w.string(topic);
  w.int32(partitions.length);
  for (const p of partitions) w.int32(p);
  w.nullableBytes(null);
  return w.finishBytes();
}

export interface ActiveMember extends AsyncDisposable {
  memberId: string;
  leave(): Promise<void>;
}

/**
 * Joins `group` as its only member (classic protocol, "consumer" type) and
 * assigns itself `partitions` of `topic`: the group is Stable until
 * `leave()`. The session timeout outlasts any test.
 */
export async function joinAsConsumer(
  bootstrap: string,
  group: string,
  topic: string,
  partitions: number[],
): Promise<ActiveMember> {
  const conn = await KafkaConnection.connect(bootstrap, "cli-test-member");
  const join = await conn.send(API_SCHEMAS[11], 3, {
    groupId: group,
    sessionTimeoutMs: 60_000,
    rebalanceTimeoutMs: 60_000,
    memberId: "",
    protocolType: "consumer",
    protocols: [{ name: "range", metadata: subscription([topic]) }],
  });
  assert.equal(join!.errorCode, ERROR_CODES.NONE, "JoinGroup");
  const memberId = join!.memberId;
  const sync = await conn.send(API_SCHEMAS[14], 3, {
    groupId: group,
    generationId: join!.generationId,
    memberId,
    assignments: [{ memberId, assignment: assignment(topic, partitions) }],
  });
  assert.equal(sync!.errorCode, ERROR_CODES.NONE, "SyncGroup");
  let left = false;
  const leave = async () => {
    if (left) return;
    left = true;
    await conn.send(API_SCHEMAS[13], 2, { groupId: group, memberId }).catch(() => null);
    conn.close();
    await conn.closedByPeer();
  };
  return { memberId, leave, [Symbol.asyncDispose]: leave };
}
