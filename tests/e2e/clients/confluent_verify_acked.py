"""Reads a whole topic through confluent-kafka (assign() from offset 0 up to each partition's
high watermark) and checks it against a list of acknowledged records: each one must be at the
partition and offset its delivery report gave, with exact key, value and headers. Every
partition must hold offsets 0..high-1 without gaps, and every record must be well formed.
Records that were never acknowledged (in flight at a crash) may be present; they are counted.
The summary's `wrong` counts records served with other bytes than were produced (never allowed),
apart from `lost` (acknowledged records not found at their position).

ACKED_FILE has one `<partition> <offset> <i>` line per acknowledged record.

Usage: python confluent_verify_acked.py BOOTSTRAP TOPIC PARTITIONS ACKED_FILE [--deadline-s S]
Prints one JSON summary line on stdout; exits 1 on any problem.
"""

import argparse
import sys
import uuid

from confluent_kafka import Consumer, KafkaError, TopicPartition

from roundtrip_common import ERRORS_SHOWN_MAX, Deadline, headers_of, report, value_of

CLIENT = "confluent-kafka-verify-acked"
CONSUME_BATCH = 1000


class Problems:
    def __init__(self):
        self.errors: list[str] = []
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.errors) < ERRORS_SHOWN_MAX:
            self.errors.append(message)


def read_acked(path: str) -> dict[tuple[int, int], int]:
    acked = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                p, o, i = (int(x) for x in line.split())
                acked[(p, o)] = i
    return acked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("partitions", type=int)
    parser.add_argument("acked_file")
    parser.add_argument("--deadline-s", type=float, default=120.0)
    args = parser.parse_args()
    deadline = Deadline(args.deadline_s)
    acked = read_acked(args.acked_file)
    problems = Problems()
    fields = {"client": CLIENT, "topic": args.topic, "acked": len(acked)}

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            # Required by the client; assign() means no group join and no commits.
            "group.id": f"verify-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
    )
    found: dict[tuple[int, int], bytes] = {}
    next_offset: dict[int, int] = {}
    records = 0
    duplicates = 0
    wrong = 0  # records served with other bytes than were produced
    seen_i: set[int] = set()
    try:
        high = {}
        for p in range(args.partitions):
            low, hw = consumer.get_watermark_offsets(
                TopicPartition(args.topic, p), timeout=max(1.0, deadline.left())
            )
            if low != 0:
                problems.add(f"partition {p}: log start offset is {low}, want 0")
            high[p] = hw
        fields["high_watermarks"] = [high[p] for p in range(args.partitions)]
        wanted = {p for p in range(args.partitions) if high[p] > 0}
        consumer.assign([TopicPartition(args.topic, p, 0) for p in sorted(wanted)])
        next_offset = {p: 0 for p in wanted}
        while wanted and not deadline.passed():
            for msg in consumer.consume(CONSUME_BATCH, timeout=min(1.0, deadline.left())):
                err = msg.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        problems.add(f"consume error: {err}")
                    continue
                p, o = msg.partition(), msg.offset()
                records += 1
                if o != next_offset.get(p):
                    problems.add(f"partition {p}: offset {o} follows {next_offset.get(p)}; gap")
                next_offset[p] = o + 1
                if o + 1 >= high[p]:
                    wanted.discard(p)
                key = msg.key() or b""
                if not (key.startswith(b"k-") and key[2:].isdigit()):
                    wrong += 1
                    problems.add(f"partition {p} offset {o}: unexpected key {key!r}")
                    continue
                i = int(key[2:])
                if i in seen_i:
                    duplicates += 1
                seen_i.add(i)
                found[(p, o)] = key
                if msg.value() != value_of(i) or (msg.headers() or []) != headers_of(i):
                    wrong += 1
                    problems.add(f"partition {p} offset {o}: value or headers of {key!r} differ")
        if wanted:
            problems.add(
                f"deadline passed before reaching the high watermark of partitions "
                f"{sorted(wanted)} (next offsets {[next_offset[p] for p in sorted(wanted)]})"
            )
    except Exception as e:  # Reported in the summary.
        problems.add(f"{type(e).__name__}: {e}")
    finally:
        consumer.close()

    lost = 0
    for (p, o), i in sorted(acked.items()):
        key = found.get((p, o))
        if key != f"k-{i}".encode():
            lost += 1
            if key is not None:
                wrong += 1
            problems.add(f"acked record k-{i} at partition {p} offset {o}: found {key!r}")
    fields.update(records=records, lost=lost, unacked_present=sum(1 for po in found if po not in acked),
                  duplicates=duplicates, wrong=wrong)
    return report(fields, None, problems.errors, problems.count)


if __name__ == "__main__":
    sys.exit(main())
