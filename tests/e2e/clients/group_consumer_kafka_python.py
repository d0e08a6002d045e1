"""A kafka-python consumer-group member for the group end-to-end tests
(tests/e2e/groups_test.ts). It prints every record before committing it and commits
synchronously after each poll, so everything it printed is committed before the next poll,
the only place kafka-python hands partitions away.

stdout, one line each, flushed before every commit:
  ready                         subscribed
  assigned <member-id> <json>   the current assignment: {"topic": [partitions]}
  r <partition> <offset> <key>  a record, printed before its offset is committed
  c <partition> <offset>        a committed offset (the next one to read)
  bye                           clean exit after SIGTERM (close() sent LeaveGroup)

Usage: python group_consumer_kafka_python.py BOOTSTRAP TOPIC GROUP CLIENT_ID
         [--session-timeout-ms N] [--assignor range|roundrobin]
"""

import argparse
import json
import signal
import sys

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.structs import OffsetAndMetadata

# Records one poll() returns at most.
BATCH_MAX = 500
ASSIGNORS = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("client_id")
    parser.add_argument("--session-timeout-ms", type=int, default=10_000)
    parser.add_argument("--assignor", default="roundrobin", choices=sorted(ASSIGNORS))
    args = parser.parse_args()

    stopping = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.__setitem__("flag", True))

    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id=args.client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        partition_assignment_strategy=[ASSIGNORS[args.assignor]],
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=min(1_000, args.session_timeout_ms // 3),
        # The rebalance timeout: how long a rebalance may wait for this member.
        max_poll_interval_ms=30_000,
        metadata_max_age_ms=1_000,
    )

    def member_id() -> str:
        coordinator = getattr(consumer, "_coordinator", None)
        generation = coordinator.generation_if_stable() if coordinator else None
        return getattr(generation, "member_id", None) or "-"

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            pass

        def on_partitions_assigned(self, assigned):
            partitions = sorted(tp.partition for tp in assigned)
            assignment = {args.topic: partitions} if partitions else {}
            print(f"assigned {member_id()} {json.dumps(assignment)}", flush=True)

    consumer.subscribe([args.topic], listener=Listener())
    print("ready", flush=True)
    while not stopping["flag"]:
        batches = consumer.poll(timeout_ms=200, max_records=BATCH_MAX)
        if not batches:
            continue
        lines = []
        offsets = {}
        for tp, records in batches.items():
            for r in records:
                key = r.key.decode() if r.key else ""
                lines.append(f"r {tp.partition} {r.offset} {key}")
            offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        try:
            consumer.commit(offsets)
        except Exception as err:  # noqa: BLE001 - reported, the harness decides
            print(f"commit failed: {err!r}", file=sys.stderr, flush=True)
            continue
        for tp, om in offsets.items():
            print(f"c {tp.partition} {om.offset}")
        sys.stdout.flush()
    consumer.close()
    print("bye", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
