/**
 * The stored form of a group record: JSON with the member metadata and
 * assignment bytes in base64, behind a format version. The MetadataStore
 * keeps it as opaque bytes under `groups/<group>` (cluster_metadata.ts).
 */
import type { GroupRecord, StoredMember } from "./group_state.ts";

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

/** Chunk for String.fromCharCode so large byte arrays do not overflow the call stack. */
const BASE64_CHUNK_BYTES = 0x8000;

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += BASE64_CHUNK_BYTES) {
    binary += String.fromCharCode(...bytes.subarray(i, i + BASE64_CHUNK_BYTES));
  }
  return btoa(binary);
}

export function base64ToBytes(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
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
