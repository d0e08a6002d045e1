/**
 * WatchAssignments: partition ownership as a stream of events, fed by the metadata store's
 * watch on the owner keys (`partitions/<topic>/<partition>/owner`), never by polling.
 *
 * The stream begins with the current owners (`assigned`), then one event per change:
 * - `acquired`: a broker took a partition nobody held before, or that it held itself before;
 * - `takeover`: a broker took a partition another broker held before (a drain, a shutdown or
 *   an expired lease moved it); `broker_id` is the new owner;
 * - `released`: the owner key went away (a drain, a clean stop, or an expired lease);
 *   `broker_id` and `epoch` are the ownership that ended.
 * `epoch` is the ownership epoch (bumped by every acquisition). A watch for one broker gets the
 * events whose `broker_id` is that broker, plus takeovers of its partitions.
 *
 * Events that arrive while the snapshot is read are held and replayed; each key's events are
 * ordered by the store revision, so none is reported twice or out of order.
 */
import type { ClusterMetadata, PartitionOwnerEvent } from "../metadata/cluster_metadata.ts";
import { ControlError, GRPC_STATUS } from "./control_error.ts";

/** Events held while the snapshot is read. */
export const SNAPSHOT_BACKLOG_MAX = 100_000;

export const ASSIGNMENT_STATUS = {
  assigned: "assigned",
  acquired: "acquired",
  takeover: "takeover",
  released: "released",
} as const;

export interface AssignmentEvent {
  topic: string;
  partition: number;
  brokerId: number;
  status: (typeof ASSIGNMENT_STATUS)[keyof typeof ASSIGNMENT_STATUS];
  epoch: number;
}

interface Known {
  brokerId: number | null;
  epoch: number;
  /** Store revision of the last event applied to this key. */
  revision: number;
  /** The last broker that held the partition (kept after a release). */
  lastBrokerId: number | null;
}

/**
 * Streams events to `emit` until `signal` fires (resolves) or `emit` throws (rejects with its
 * error). `brokerId` null: every broker.
 */
export async function watchAssignments(
  metadata: ClusterMetadata,
  brokerId: number | null,
  emit: (event: AssignmentEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  const known = new Map<string, Known>();
  let backlog: PartitionOwnerEvent[] | null = [];
  let failure: unknown = null;
  let wake: () => void = () => {};
  const ended = new Promise<void>((resolve) => (wake = resolve));
  const onAbort = () => wake();
  signal.addEventListener("abort", onAbort, { once: true });

  const matches = (e: AssignmentEvent, previous: number | null) =>
    brokerId === null || e.brokerId === brokerId ||
    (e.status === "takeover" && previous === brokerId);

  const apply = (ev: PartitionOwnerEvent) => {
    if (failure !== null) return;
    const key = `${ev.topic}/${ev.partition}`;
    const cur = known.get(key);
    if (cur && ev.modRevision <= cur.revision) return;
    let event: AssignmentEvent | null = null;
    const previous = cur?.lastBrokerId ?? null;
    if (ev.owner) {
      const status = previous !== null && previous !== ev.owner.brokerId
        ? ASSIGNMENT_STATUS.takeover
        : ASSIGNMENT_STATUS.acquired;
      if (cur?.brokerId !== ev.owner.brokerId || cur?.epoch !== ev.owner.epoch) {
        event = { ...ref(ev), brokerId: ev.owner.brokerId, status, epoch: ev.owner.epoch };
      }
      known.set(key, {
        brokerId: ev.owner.brokerId,
        epoch: ev.owner.epoch,
        revision: ev.modRevision,
        lastBrokerId: ev.owner.brokerId,
      });
    } else {
      if (cur?.brokerId !== null && cur?.brokerId !== undefined) {
        event = {
          ...ref(ev),
          brokerId: cur.brokerId,
          status: ASSIGNMENT_STATUS.released,
          epoch: cur.epoch,
        };
      }
      known.set(key, {
        brokerId: null,
        epoch: cur?.epoch ?? 0,
        revision: ev.modRevision,
        lastBrokerId: previous,
      });
    }
    if (event && matches(event, previous)) {
      try {
        emit(event);
      } catch (err) {
        failure = err;
        wake();
      }
    }
  };

  const unwatch = metadata.watchPartitionOwners((ev) => {
    if (backlog === null) return apply(ev);
    if (backlog.length >= SNAPSHOT_BACKLOG_MAX) {
      failure ??= new ControlError(
        GRPC_STATUS.RESOURCE_EXHAUSTED,
        `More than ${SNAPSHOT_BACKLOG_MAX} ownership changes while reading the current owners`,
      );
      wake();
      return;
    }
    backlog.push(ev);
  });
  try {
    const snapshot = await metadata.listPartitionOwnerEntries();
    snapshot.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
    for (const entry of snapshot) {
      if (!entry.owner) continue;
      known.set(`${entry.topic}/${entry.partition}`, {
        brokerId: entry.owner.brokerId,
        epoch: entry.owner.epoch,
        revision: entry.modRevision,
        lastBrokerId: entry.owner.brokerId,
      });
      const event: AssignmentEvent = {
        ...ref(entry),
        brokerId: entry.owner.brokerId,
        status: ASSIGNMENT_STATUS.assigned,
        epoch: entry.owner.epoch,
      };
      if (matches(event, null)) emit(event);
    }
    const held: PartitionOwnerEvent[] = backlog ?? [];
    backlog = null;
    held.sort((a, b) => a.modRevision - b.modRevision);
    for (const ev of held) apply(ev);
    if (!signal.aborted && failure === null) await ended;
    if (failure !== null) throw failure;
  } finally {
    unwatch();
    signal.removeEventListener("abort", onAbort);
  }
}

function ref(e: { topic: string; partition: number }): { topic: string; partition: number } {
  return { topic: e.topic, partition: e.partition };
}
