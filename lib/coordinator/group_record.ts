/**
 * The stored form of a group record: JSON with the member metadata and
 * assignment bytes in base64, behind a format version. The MetadataStore
 * keeps it as opaque bytes under `groups/<group>` (cluster_metadata.ts).
 */
import type { GroupRecord, StoredMember } from "./group_state.ts";
import { base64ToBytes, bytesToBase64 } from "../util/base64.ts";

export const GROUP_RECORD_VERSION = 1;

/** A stored group record that cannot be read: repair or delete the key. */
export class GroupRecordError extends Error {
  override name = "GroupRecordError";
}

interface StoredMemberJson extends Omit<StoredMember, "metadata" | "assignment"> {
  metadata: string;
  assignment: string;
}

interface GroupRecordJson extends Omit<GroupRecord, "members"> {
  version: number;
  members: StoredMemberJson[];
}

export function encodeGroupRecord(record: GroupRecord): Uint8Array {
  const json: GroupRecordJson = {
    version: GROUP_RECORD_VERSION,
    ...record,
    members: record.members.map((m) => ({
      ...m,
      metadata: bytesToBase64(m.metadata),
      assignment: bytesToBase64(m.assignment),
    })),
  };
  return new TextEncoder().encode(JSON.stringify(json));
}

export function decodeGroupRecord(groupId: string, bytes: Uint8Array): GroupRecord {
  let json: GroupRecordJson;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (cause) {
    throw new GroupRecordError(
      `Cannot read the stored record of group "${groupId}": it is not JSON; ` +
        `delete the group or repair its record`,
      { cause },
    );
  }
  if (json?.version !== GROUP_RECORD_VERSION || !Array.isArray(json.members)) {
    throw new GroupRecordError(
      `Cannot read the stored record of group "${groupId}": unknown format version ` +
        `${JSON.stringify(json?.version)}; upgrade the broker or delete the group`,
    );
  }
  return {
    groupId,
    state: json.members.length > 0 ? "Stable" : "Empty",
    generationId: json.generationId,
    protocolType: json.protocolType ?? null,
    protocolName: json.protocolName ?? null,
    leaderId: json.leaderId ?? null,
    members: json.members.map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId ?? null,
      clientId: m.clientId,
      clientHost: m.clientHost,
      sessionTimeoutMs: m.sessionTimeoutMs,
      rebalanceTimeoutMs: m.rebalanceTimeoutMs,
      metadata: base64ToBytes(m.metadata),
      assignment: base64ToBytes(m.assignment),
    })),
  };
}
