/**
 * One partition's transactions (KIP-98): which producers have a transaction open on it (from
 * their first transactional batch to its COMMIT or ABORT marker), the aborted transactions'
 * offset ranges (what read_committed consumers drop) and, per producer, the newest coordinator
 * decision whose marker it holds.
 *
 * A snapshot is immutable: `applyTxnBatches` returns a new one (or the same one when nothing
 * changed). The partition log keeps the committed snapshot, commits the next one in the same
 * metadata transaction as the end offset it describes (PartitionState.txn), so it survives
 * restarts and take-overs exactly as the data it describes does.
 *
 * Rules:
 * - a transactional data batch of a producer with no open transaction here opens one at the
 *   batch's base offset;
 * - a marker closes the producer's open transaction; an ABORT marker records the range from
 *   the transaction's first offset to the marker's offset as aborted;
 * - a marker whose decision number (its coordinator epoch) is not newer than the last one
 *   this partition holds for the producer is a late duplicate: it is not appended (it could
 *   otherwise close the producer's next transaction);
 * - the last stable offset (LSO) is the smallest first offset of the open transactions, or the
 *   high watermark when none is open;
 * - aborted ranges wholly below the log start offset are dropped.
 *
 * Pure: no I/O, no clock.
 */
import type { StoredTxnState } from "../metadata/cluster_metadata.ts";

/** A transaction open on the partition. */
export interface OpenTxn {
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly firstOffset: number;
}

/** An aborted transaction's range on the partition: data in it is never read committed. */
export interface AbortedTxn {
  readonly producerId: number;
  readonly firstOffset: number;
  /** The ABORT marker's offset. */
  readonly lastOffset: number;
}

export interface TxnSnapshot {
  readonly open: ReadonlyMap<number, OpenTxn>;
  /** In marker order, so sorted by `lastOffset`. */
  readonly aborted: readonly AbortedTxn[];
  /** Producer id -> the decision number of the newest marker appended for it. */
  readonly markers: ReadonlyMap<number, number>;
}

/** What a marker says; markers are built by the log, which passes this along with the batch. */
export interface MarkerInfo {
  readonly commit: boolean;
  /** The coordinator's decision number for this transaction (the marker's coordinator epoch). */
  readonly coordinatorEpoch: number;
}

/** The batch header fields this module reads. */
export interface TxnBatchHeader {
  readonly baseOffset: number;
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly isTransactional: boolean;
  readonly isControl: boolean;
}

export type { StoredTxnState };

/** Producers whose last decision is remembered (late duplicates arrive within seconds). */
export const MARKER_PRODUCERS_MAX = 10_000;

export const EMPTY_TXN_SNAPSHOT: TxnSnapshot = Object.freeze({
  open: new Map(),
  aborted: [],
  markers: new Map(),
});

export function txnSnapshotFromStored(stored: StoredTxnState | undefined): TxnSnapshot {
  if (!stored) return EMPTY_TXN_SNAPSHOT;
  return {
    open: new Map(
      (stored.open ?? []).map(([producerId, producerEpoch, firstOffset]) => [
        producerId,
        { producerId, producerEpoch, firstOffset },
      ]),
    ),
    aborted: (stored.aborted ?? []).map(([producerId, firstOffset, lastOffset]) => ({
      producerId,
      firstOffset,
      lastOffset,
    })),
    markers: new Map(stored.markers ?? []),
  };
}

/** The stored form, or undefined when there is nothing to store. */
export function storedTxnState(s: TxnSnapshot): StoredTxnState | undefined {
  if (s.open.size === 0 && s.aborted.length === 0 && s.markers.size === 0) return undefined;
  const out: StoredTxnState = {};
  if (s.open.size > 0) {
    out.open = [...s.open.values()].map((o) => [o.producerId, o.producerEpoch, o.firstOffset]);
  }
  if (s.aborted.length > 0) {
    out.aborted = s.aborted.map((a) => [a.producerId, a.firstOffset, a.lastOffset]);
  }
  if (s.markers.size > 0) out.markers = [...s.markers];
  return out;
}

/** Whether a marker with this decision number would be a late duplicate (not appended). */
export function isStaleMarker(s: TxnSnapshot, producerId: number, decision: number): boolean {
  const last = s.markers.get(producerId);
  return last !== undefined && last >= decision;
}

/**
 * The snapshot after `items` (in log order, offsets assigned). Markers must come with their
 * MarkerInfo; a control batch without it is ignored (not one of ours).
 */
export function applyTxnBatches(
  s: TxnSnapshot,
  items: Iterable<{ batch: TxnBatchHeader; marker?: MarkerInfo }>,
): TxnSnapshot {
  let open: Map<number, OpenTxn> | null = null;
  let aborted: AbortedTxn[] | null = null;
  let markers: Map<number, number> | null = null;
  for (const { batch, marker } of items) {
    if (batch.producerId < 0 || !batch.isTransactional) continue;
    const current = (open ?? s.open).get(batch.producerId);
    if (!batch.isControl) {
      if (current !== undefined && current.producerEpoch >= batch.producerEpoch) continue;
      open ??= new Map(s.open);
      open.set(batch.producerId, {
        producerId: batch.producerId,
        producerEpoch: batch.producerEpoch,
        firstOffset: current?.firstOffset ?? batch.baseOffset,
      });
      continue;
    }
    if (!marker) continue;
    markers ??= new Map(s.markers);
    markers.delete(batch.producerId); // re-insert: newest last, oldest dropped first
    markers.set(batch.producerId, marker.coordinatorEpoch);
    if (markers.size > MARKER_PRODUCERS_MAX) markers.delete(markers.keys().next().value!);
    if (current === undefined) continue;
    open ??= new Map(s.open);
    open.delete(batch.producerId);
    if (!marker.commit) {
      aborted ??= [...s.aborted];
      aborted.push({
        producerId: batch.producerId,
        firstOffset: current.firstOffset,
        lastOffset: batch.baseOffset,
      });
    }
  }
  if (!open && !aborted && !markers) return s;
  return { open: open ?? s.open, aborted: aborted ?? s.aborted, markers: markers ?? s.markers };
}

/** The last stable offset: below every open transaction's first offset, at most `highWatermark`. */
export function lastStableOffset(s: TxnSnapshot, highWatermark: number): number {
  let lso = highWatermark;
  for (const o of s.open.values()) if (o.firstOffset < lso) lso = o.firstOffset;
  return lso;
}

/**
 * The aborted transactions a read of [from, to] must be told about (Kafka's
 * collectAbortedTransactions): those ending at or after `from` and starting at or before `to`.
 */
export function abortedTxnsIn(s: TxnSnapshot, from: number, to: number): AbortedTxn[] {
  const out: AbortedTxn[] = [];
  const list = s.aborted;
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid].lastOffset < from) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < list.length; i++) if (list[i].firstOffset <= to) out.push(list[i]);
  return out;
}

/** Whether `offset` of `producerId` lies in an aborted transaction (compaction drops it). */
export function isAbortedAt(s: TxnSnapshot, producerId: number, offset: number): boolean {
  for (const a of abortedTxnsIn(s, offset, offset)) if (a.producerId === producerId) return true;
  return false;
}

/** Drops aborted ranges wholly below the log start offset. */
export function pruneTxnSnapshot(s: TxnSnapshot, logStartOffset: number): TxnSnapshot {
  const keep = s.aborted.filter((a) => a.lastOffset >= logStartOffset);
  return keep.length === s.aborted.length ? s : { ...s, aborted: keep };
}
