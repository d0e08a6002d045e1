/**
 * The leader epoch history (lib/metadata/leader_epochs.ts): how acquisitions extend it,
 * how retention trims it, and OffsetForLeaderEpoch's answers (Kafka's leader epoch cache rules).
 */
import assert from "node:assert/strict";
import {
  assignEpoch,
  checkLeaderEpoch,
  epochEndOffset,
  epochForOffset,
  UNDEFINED_EPOCH,
  UNDEFINED_EPOCH_OFFSET,
} from "../../lib/metadata/leader_epochs.ts";

Deno.test("leader epochs: each acquisition adds its epoch where it took over", () => {
  let h = assignEpoch(undefined, 1, 0, 0);
  assert.deepEqual(h, [[1, 0]]);
  h = assignEpoch(h, 2, 10, 0);
  h = assignEpoch(h, 3, 25, 0);
  assert.deepEqual(h, [[1, 0], [2, 10], [3, 25]]);
  // Acquired again with nothing written since: the newer epoch replaces the empty one.
  h = assignEpoch(h, 4, 25, 0);
  assert.deepEqual(h, [[1, 0], [2, 10], [4, 25]]);
  // Retention moved the log start to 12: epoch 1 ended at 10, below it, and goes; epoch 2
  // covers offset 12 and stays.
  h = assignEpoch(h, 5, 40, 12);
  assert.deepEqual(h, [[2, 10], [4, 25], [5, 40]]);
  // A log start exactly at an epoch's start drops everything before that epoch.
  assert.deepEqual(assignEpoch(h, 6, 50, 40), [[5, 40], [6, 50]]);
});

Deno.test("leader epochs: OffsetForLeaderEpoch answers as Kafka's cache does", () => {
  const h: [number, number][] = [[2, 10], [4, 25], [5, 40]];
  const hw = 47;
  // The current epoch ends at the high watermark.
  assert.deepEqual(epochEndOffset(h, 5, hw, 5), { leaderEpoch: 5, endOffset: 47 });
  // An older epoch ends where the next one begins.
  assert.deepEqual(epochEndOffset(h, 5, hw, 2), { leaderEpoch: 2, endOffset: 25 });
  assert.deepEqual(epochEndOffset(h, 5, hw, 4), { leaderEpoch: 4, endOffset: 40 });
  // An epoch with no entry (3: acquired, nothing written) answers the largest one below it.
  assert.deepEqual(epochEndOffset(h, 5, hw, 3), { leaderEpoch: 2, endOffset: 25 });
  // Older than the whole history: the requested epoch, ending where the history starts.
  assert.deepEqual(epochEndOffset(h, 5, hw, 1), { leaderEpoch: 1, endOffset: 10 });
  // Newer than the current epoch, or undefined: unknown.
  const unknown = { leaderEpoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
  assert.deepEqual(epochEndOffset(h, 5, hw, 6), unknown);
  assert.deepEqual(epochEndOffset(h, 5, hw, -1), unknown);
});

Deno.test("leader epochs: the epoch of an offset, and the request epoch check", () => {
  const h: [number, number][] = [[2, 10], [4, 25], [5, 40]];
  assert.equal(epochForOffset(h, 9), UNDEFINED_EPOCH);
  assert.equal(epochForOffset(h, 10), 2);
  assert.equal(epochForOffset(h, 39), 4);
  assert.equal(epochForOffset(h, 1000), 5);
  assert.equal(checkLeaderEpoch(undefined, 5), "ok");
  assert.equal(checkLeaderEpoch(-1, 5), "ok");
  assert.equal(checkLeaderEpoch(5, 5), "ok");
  assert.equal(checkLeaderEpoch(4, 5), "fenced");
  assert.equal(checkLeaderEpoch(6, 5), "unknown");
});
