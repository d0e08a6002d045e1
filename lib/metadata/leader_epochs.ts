/**
 * Leader epochs (KIP-101, KIP-320): a partition's leader epoch is its
 * ownership epoch, bumped by every acquisition (a restart, a takeover). Each
 * partition keeps, in its committed state, the history of epochs and the
 * offset where each began, so OffsetForLeaderEpoch can tell a consumer where
 * an epoch ended and the consumer can check its position against it
 * (truncation detection).
 *
 * Kept small: an epoch that began where a later one begins (an acquisition
 * with nothing written before the next) is replaced by the later one, as in
 * Kafka's leader epoch cache; entries wholly below the log start offset are
 * dropped, keeping the one that covers it. So the history grows by one entry
 * per ownership change that saw writes, and retention trims it.
 *
 * Pure functions over `[epoch, startOffset]` pairs, oldest first.
 */

/** `[epoch, startOffset]`: the epoch's first offset. */
export type EpochEntry = [number, number];

export const UNDEFINED_EPOCH = -1;
export const UNDEFINED_EPOCH_OFFSET = -1;

/** The history after `epoch` starts at `startOffset` (an acquisition). */
export function assignEpoch(
  history: readonly EpochEntry[] | undefined,
  epoch: number,
  startOffset: number,
  logStartOffset: number,
): EpochEntry[] {
  const kept = (history ?? []).filter(([e, start]) => e < epoch && start < startOffset);
  kept.push([epoch, startOffset]);
  let first = 0;
  while (first + 1 < kept.length && kept[first + 1][1] <= logStartOffset) first++;
  return kept.slice(first);
}

/**
 * OffsetForLeaderEpoch's answer for `requested`, Kafka's rule: the current
 * epoch ends at the high watermark; an older one ends where the next epoch
 * after it begins, and the epoch answered is the largest known one not above
 * `requested` (or `requested` itself when it predates the whole history). An
 * epoch newer than any known answers undefined.
 */
export function epochEndOffset(
  history: readonly EpochEntry[],
  currentEpoch: number,
  highWatermark: number,
  requested: number,
): { leaderEpoch: number; endOffset: number } {
  const undefinedAnswer = { leaderEpoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
  if (requested < 0) return undefinedAnswer;
  if (requested === currentEpoch) return { leaderEpoch: currentEpoch, endOffset: highWatermark };
  const higher = history.find(([e]) => e > requested);
  if (!higher) {
    // Newer than anything written here. The current epoch is always in the history, so this
    // is an epoch above it: unknown.
    return undefinedAnswer;
  }
  let floor: EpochEntry | undefined;
  for (const entry of history) if (entry[0] <= requested) floor = entry;
  return { leaderEpoch: floor ? floor[0] : requested, endOffset: higher[1] };
}

/** The epoch `offset` was written in, or UNDEFINED_EPOCH when it predates the history. */
export function epochForOffset(history: readonly EpochEntry[], offset: number): number {
  let epoch = UNDEFINED_EPOCH;
  for (const [e, start] of history) {
    if (start > offset) break;
    epoch = e;
  }
  return epoch;
}

/**
 * How a request's current leader epoch compares with the partition's (Kafka's check): "ok"
 * when it is absent (-1) or equal, "fenced" when older, "unknown" when newer.
 */
export function checkLeaderEpoch(
  requestEpoch: number | undefined,
  leaderEpoch: number,
): "ok" | "fenced" | "unknown" {
  if (requestEpoch === undefined || requestEpoch < 0 || requestEpoch === leaderEpoch) return "ok";
  return requestEpoch < leaderEpoch ? "fenced" : "unknown";
}
