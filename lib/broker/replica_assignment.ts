/**
 * Manual replica assignments (CreateTopics and CreatePartitions), checked by Kafka's rules
 * (`ReplicationControlManager.validateManualPartitionAssignment`): every partition names at least
 * one broker, no broker twice, and only registered brokers; CreateTopics' partitions are the
 * consecutive indexes 0..n-1, each assigned once.
 *
 * What an assignment means here: durability belongs to the object store, so there are no
 * replicas to place. An assignment is accepted once valid and then only says how many partitions
 * to create (one per assignment); it is not recorded, and each partition is led, as every other
 * one, by its owner (any registered broker; see partition_leaders.ts). Metadata reports that
 * leader as the only replica, whatever the assignment named.
 */
import type { Broker } from "./broker.ts";

/** The ids of the registered brokers, this one included. */
export async function registeredBrokerIds(broker: Broker): Promise<Set<number>> {
  const ids = new Set((await broker.metadata.listBrokers()).map((b) => b.brokerId));
  ids.add(broker.settings.nodeId);
  return ids;
}

/** Why one partition's replica list is not acceptable, or null when it is. */
export function replicaListProblem(
  brokerIds: readonly number[],
  registered: ReadonlySet<number>,
): string | null {
  if (brokerIds.length === 0) {
    return "The manual partition assignment includes an empty replica list";
  }
  const seen = new Set<number>();
  for (const id of brokerIds) {
    if (!registered.has(id)) {
      return `The manual partition assignment includes broker ${id}, but no such broker is ` +
        `registered (registered: ${[...registered].sort((a, b) => a - b).join(", ")})`;
    }
    if (seen.has(id)) {
      return `The manual partition assignment includes the broker ${id} more than once`;
    }
    seen.add(id);
  }
  return null;
}

/** Why a CreateTopics assignment is not acceptable, or null when it is. */
export function topicAssignmentProblem(
  assignments: readonly { partitionIndex: number; brokerIds: readonly number[] }[],
  registered: ReadonlySet<number>,
): string | null {
  const indexes = new Set<number>();
  for (const a of assignments) {
    if (indexes.has(a.partitionIndex)) {
      return `Found multiple manual partition assignments for partition ${a.partitionIndex}`;
    }
    indexes.add(a.partitionIndex);
    const problem = replicaListProblem(a.brokerIds, registered);
    if (problem) return problem;
  }
  for (let i = 0; i < assignments.length; i++) {
    if (!indexes.has(i)) return "Partitions should be a consecutive 0-based integer sequence";
  }
  return null;
}
