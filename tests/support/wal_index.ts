/** Write-ahead index records for metadata tests. */

import type { ClusterMetadata, WalIndexEntry } from "../../lib/metadata/cluster_metadata.ts";

/** `count` index records of one write-ahead file, each naming `ranges` ranges. */
export async function writeWalRounds(
  meta: ClusterMetadata,
  count: number,
  ranges = 2,
  topic = "t",
): Promise<WalIndexEntry[]> {
  const object = "default/~wal/1/1700000000000-00112233aabbccdd.wal";
  for (let round = 0; round < count; round++) {
    await meta.commitPartitions([], {
      id: `1/1700000000000-00112233aabbccdd/${String(round).padStart(10, "0")}`,
      record: {
        object,
        ranges: Array.from({ length: ranges }, (_, p) => ({
          topic,
          topicId: "AAAAAAAAAAAAAAAAAAAAAA",
          partition: p,
          epoch: 1,
          baseOffset: round,
          endOffset: round + 1,
          position: (round * ranges + p) * 100,
          length: 100,
        })),
      },
    });
  }
  return await meta.listWalIndex();
}
