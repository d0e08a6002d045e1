/**
 * The topics a classic consumer group is subscribed to, as Kafka's group
 * coordinator works them out for OffsetDelete (KIP-496): the union of the
 * topics in every member's ConsumerProtocolSubscription for the group's chosen
 * protocol. The subscription's layout is the same in versions 0-3 for what is
 * read here: i16 version, then an array of topic names (i32 count, i16-length
 * strings). Pure; no I/O.
 */
import type { Group } from "./group_state.ts";

/** Kafka's protocol type of consumer groups. */
export const CONSUMER_PROTOCOL_TYPE = "consumer";
/** Bound on topic names read from one subscription. */
const SUBSCRIPTION_TOPICS_MAX = 100_000;

/** The topic names of one ConsumerProtocolSubscription, or null when it does not parse. */
export function subscriptionTopics(metadata: Uint8Array): string[] | null {
  const view = new DataView(metadata.buffer, metadata.byteOffset, metadata.byteLength);
  if (metadata.byteLength < 6) return null;
  const version = view.getInt16(0);
  if (version < 0) return null;
  const count = view.getInt32(2);
  if (count < 0 || count > SUBSCRIPTION_TOPICS_MAX) return null;
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const topics: string[] = [];
  let pos = 6;
  for (let i = 0; i < count; i++) {
    if (pos + 2 > metadata.byteLength) return null;
    const length = view.getInt16(pos);
    pos += 2;
    if (length < 0 || pos + length > metadata.byteLength) return null;
    try {
      topics.push(decoder.decode(metadata.subarray(pos, pos + length)));
    } catch {
      return null;
    }
    pos += length;
  }
  return topics;
}

/**
 * The group's subscribed topics, or null when they are not known: not a
 * consumer group, no protocol chosen yet, or a member whose subscription does
 * not parse. Kafka then treats the group as subscribed to every topic.
 */
export function subscribedTopics(group: Group): Set<string> | null {
  if (group.protocolType !== CONSUMER_PROTOCOL_TYPE || group.protocolName === null) return null;
  const topics = new Set<string>();
  for (const member of group.members.values()) {
    const chosen = member.protocols.find((p) => p.name === group.protocolName);
    if (!chosen) return null;
    const names = subscriptionTopics(chosen.metadata);
    if (!names) return null;
    for (const name of names) topics.add(name);
  }
  return topics;
}
