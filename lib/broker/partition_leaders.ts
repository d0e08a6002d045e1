/**
 * Which broker leads each partition, as Metadata reports it when several brokers share one
 * metadata store.
 *
 * - A partition with an owner (an owner key on the owner's session lease,
 *   `ClusterMetadata.listPartitionLeadership`) is led by that owner while it is registered
 *   (`ClusterMetadata.listBrokers`; registrations hang on the same lease). An owner that is not
 *   registered has no address to give: LEADER_NOT_AVAILABLE, and clients ask again.
 * - A partition nobody owns (new, or its owner's lease expired) is given to a registered broker
 *   picked by hashing its topic and index, so every broker answers the same and clients spread
 *   over the brokers; the first request there acquires it (a new one that broker acquires at
 *   once, lib/control/eager_takeover.ts), and the epoch reported is the one that acquisition
 *   takes. Brokers draining the partition (a drain marker,
 *   `ClusterMetadata.listBrokerDrains`, lib/control/partition_drain.ts) are left out of the pick
 *   while another broker remains, so a drained partition moves at once.
 * - When the store does not answer, a broker whose session lease may still be live answers what
 *   it last read: the registrations, owners and epochs of its last successful look-up, so no
 *   leader moves while the store is out. "May be live" is `LogManager.leaseMayBeLive`: less than
 *   a whole TTL since the last keep-alive that succeeded, not the earlier write deadline; until
 *   then no other broker can take its partitions. (Leaders that move and move back strand
 *   clients: librdkafka 2.x, handed leader A, then B, then A again before its move to B is done,
 *   keeps fetching from B and never moves back, since A is "unchanged". Going by the write
 *   deadline, an etcd restart of a few seconds made a broker point clients at the other broker
 *   and, a moment later, back at itself: a consumer in the chaos suite stranded that way.) What
 *   it never looked up, it claims: its produce and fetch then answer retriable errors until the
 *   store is back, which beats sending clients nowhere. A broker whose lease may have run out
 *   (cut off from the store for longer than the lease) claims nothing: its partitions may belong
 *   to another broker already, so it points clients at the other brokers it last saw registered
 *   (by the same hash), or answers LEADER_NOT_AVAILABLE when it knows of none, and clients ask
 *   elsewhere.
 *
 * Reads the store on each call (Metadata is rare next to Produce and Fetch).
 */
import type {
  BrokerDrain,
  BrokerRegistration,
  PartitionLeadership,
  TopicRecord,
} from "../metadata/cluster_metadata.ts";
import { mapBounded } from "../log/bounded.ts";
import type { Broker } from "./broker.ts";

/** Bound on owner listings in flight for one Metadata request. */
const OWNER_LOOKUP_CONCURRENCY = 16;
/** Topics whose last owner look-up each broker keeps for answering while its store is out. */
export const LEADERSHIP_CACHE_TOPICS_MAX = 10_000;

export interface BrokerAddress {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
}

export interface PartitionLeaders {
  /** Every registered broker, this one included, by node id. */
  brokers: BrokerAddress[];
  /** The leader's node id, or -1 when the owner is alive but not reachable (not registered). */
  leaderOf(topic: string, partition: number): number;
  /**
   * The leader epoch: the owner's epoch (lib/metadata/leader_epochs.ts). For a partition nobody
   * owns, the epoch its next acquisition takes: the broker picked for it acquires it on the
   * client's first request, at that epoch, so the client's epoch matches (and a Java consumer
   * that read from the previous owner validates its position, KIP-320). -1 when the store
   * cannot say.
   */
  epochOf(topic: string, partition: number): number;
}

/**
 * A broker's endpoint on `listener` (the listener a client came in through): the registration's
 * or settings' listener of that name, else its first endpoint.
 */
export function endpointOf(
  b: { host: string; port: number; listeners?: { name: string; host: string; port: number }[] },
  listener: string | undefined,
): { host: string; port: number } {
  const l = listener === undefined ? undefined : b.listeners?.find((x) => x.name === listener);
  return l ? { host: l.host, port: l.port } : { host: b.host, port: b.port };
}

/** This broker's address as clients of `listener` reach it. */
export function selfAddress(broker: Broker, listener?: string): BrokerAddress {
  const s = broker.settings;
  return { nodeId: s.nodeId, ...endpointOf(s, listener), rack: s.rack };
}

export async function partitionLeaders(
  broker: Broker,
  topics: readonly TopicRecord[],
  listener?: string,
): Promise<PartitionLeaders> {
  const self = selfAddress(broker, listener);
  let registered: BrokerRegistration[];
  let storeDown = false;
  try {
    registered = await broker.metadata.listBrokers();
    lastRegistered.set(broker, registered);
  } catch (err) {
    if (!broker.logs.leaseMayBeLive) return cutOff(broker, self, listener, err);
    const last = lastRegistered.get(broker);
    if (!last) {
      broker.logger.debug("Metadata: cannot list brokers; claiming every partition", {
        err: String(err),
      });
      return { brokers: [self], leaderOf: () => self.nodeId, epochOf: () => -1 };
    }
    broker.logger.debug("Metadata: cannot list brokers; answering what was last read", {
      err: String(err),
    });
    registered = last;
    storeDown = true;
  }
  const byId = new Map<number, BrokerAddress>();
  for (const r of registered) {
    byId.set(r.brokerId, { nodeId: r.brokerId, ...endpointOf(r, listener), rack: r.rack });
  }
  byId.set(self.nodeId, self);
  const live = [...byId.keys()].sort((a, b) => a - b);
  const drains = storeDown ? [] : await broker.metadata.listBrokerDrains().catch((err) => {
    broker.logger.debug("Metadata: cannot list drain markers", { err: String(err) });
    return [] as BrokerDrain[];
  });
  const candidatesFor = candidatePicker(live, drains);

  const cache = leadershipCache(broker);
  const leadership = new Map<string, PartitionLeadership | null>();
  const names = [...new Set(topics.map((t) => t.name))];
  const listed = storeDown ? [] : await mapBounded(
    names,
    OWNER_LOOKUP_CONCURRENCY,
    (name) => broker.metadata.listPartitionLeadership(name),
  );
  names.forEach((name, i) => {
    const result = listed[i];
    if (result?.status === "fulfilled") {
      leadership.set(name, result.value);
      cache.delete(name); // re-inserted last: the oldest look-ups go first
      cache.set(name, result.value);
      if (cache.size > LEADERSHIP_CACHE_TOPICS_MAX) cache.delete(cache.keys().next().value!);
      return;
    }
    // The store did not answer: what was last read, else claimed (leaderOf).
    const last = cache.get(name) ?? null;
    if (result) {
      broker.logger.debug(
        last
          ? "Metadata: cannot list partition owners; answering what was last read"
          : "Metadata: cannot list partition owners; claiming them",
        { topic: name, err: String(result.reason) },
      );
    }
    leadership.set(name, last);
  });

  return {
    brokers: live.map((id) => byId.get(id)!),
    leaderOf(topic, partition) {
      const topicOwners = leadership.get(topic)?.owners;
      if (topicOwners === undefined) {
        // Unreadable owners: claim them only while this broker's lease may be live.
        if (broker.logs.leaseMayBeLive) return self.nodeId;
        return pickByHash(live.filter((id) => id !== self.nodeId), topic, partition);
      }
      const owner = topicOwners.get(partition);
      if (owner) return byId.has(owner.brokerId) ? owner.brokerId : -1;
      return pickByHash(candidatesFor(topic, partition), topic, partition);
    },
    epochOf(topic, partition) {
      const known = leadership.get(topic);
      if (!known) return -1;
      return known.owners.get(partition)?.epoch ?? known.nextEpoch(partition);
    },
  };
}

/** Registrations each broker last read, for answering while its store is out of reach. */
const lastRegistered = new WeakMap<Broker, BrokerRegistration[]>();
/** Each broker's last owner look-up per topic, oldest first, for the same. */
const lastLeadership = new WeakMap<Broker, Map<string, PartitionLeadership>>();

function leadershipCache(broker: Broker): Map<string, PartitionLeadership> {
  let cache = lastLeadership.get(broker);
  if (!cache) lastLeadership.set(broker, cache = new Map());
  return cache;
}

/**
 * Leaders as a broker cut off from its store past its lease answers them: the other brokers it
 * last saw registered, picked by the same hash as unowned partitions (-1 when it knew none).
 */
function cutOff(
  broker: Broker,
  self: BrokerAddress,
  listener: string | undefined,
  err: unknown,
): PartitionLeaders {
  const others = (lastRegistered.get(broker) ?? [])
    .filter((r) => r.brokerId !== self.nodeId)
    .map((r) => ({ nodeId: r.brokerId, ...endpointOf(r, listener), rack: r.rack }))
    .sort((a, b) => a.nodeId - b.nodeId);
  broker.logger.debug("Metadata: store unreachable and lease lost; pointing at other brokers", {
    others: others.map((o) => o.nodeId).join(","),
    err: String(err),
  });
  return {
    brokers: [self, ...others],
    leaderOf: (topic, partition) => pickByHash(others.map((o) => o.nodeId), topic, partition),
    epochOf: () => -1,
  };
}

/** The live brokers that may take an unowned partition: those not draining it, if any remain. */
function candidatePicker(
  live: number[],
  drains: BrokerDrain[],
): (topic: string, partition: number) => number[] {
  if (drains.length === 0) return () => live;
  const all = new Set(drains.filter((d) => d.all).map((d) => d.brokerId));
  const named = new Map<string, Set<number>>();
  for (const d of drains) {
    for (const p of d.partitions) {
      const key = `${p.topic}/${p.partition}`;
      if (!named.has(key)) named.set(key, new Set());
      named.get(key)!.add(d.brokerId);
    }
  }
  const notLeaving = live.filter((id) => !all.has(id));
  return (topic, partition) => {
    const leaving = named.get(`${topic}/${partition}`);
    const candidates = leaving ? notLeaving.filter((id) => !leaving.has(id)) : notLeaving;
    return candidates.length > 0 ? candidates : live;
  };
}

/** The broker id a partition hashes to among `ids` (the same on every broker), or -1 for none. */
function pickByHash(ids: readonly number[], topic: string, partition: number): number {
  return ids.length === 0 ? -1 : ids[(hashName(topic) + partition) % ids.length];
}

/** FNV-1a of the UTF-16 code units: the same on every broker. */
export function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
