"""Produces records with acks=all through confluent-kafka and prints each delivery report as
it arrives, so a test can crash the broker mid-stream and later check every acknowledged record.

stdout, one line per report, flushed as they come:
  ACK <partition> <offset> <i>      the broker acknowledged record i at that position
  NACK <i> <error>                  delivery failed
  DONE acked=<n> failed=<n> unacked=<n>   (only when the run ends by itself)

Records are those of roundtrip_common (key "k-<i>", padded value, headers h1="<i>", h2="x").

Usage: python confluent_acked_producer.py BOOTSTRAP TOPIC PARTITIONS COUNT
           [--start I] [--no-create] [--deadline-s S] [--rate R] [--set KEY=VALUE]...

--rate R sends at most R records per second (default: as fast as the client can), so a load
lasts long enough to run through a fault.

--set passes a librdkafka producer setting (e.g. retries=0, so that every failed produce is
reported as a NACK instead of being retried).
"""

import argparse
import sys
import time

from confluent_kafka import Producer

from confluent_roundtrip import create_topic
from roundtrip_common import Deadline, headers_of, key_of, value_of

# Reports are written out after each poll, at most this many lines at a time.
REPORT_LINES_MAX = 10_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("partitions", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("--start", type=int, default=0, help="first record index")
    parser.add_argument("--no-create", action="store_true", help="the topic exists already")
    parser.add_argument("--deadline-s", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=0.0, help="records per second (0: no limit)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra librdkafka producer setting (repeatable)")
    args = parser.parse_args()
    extra = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--set needs KEY=VALUE, got {item!r}")
        extra[key] = value
    deadline = Deadline(args.deadline_s)
    if not args.no_create:
        create_topic(args.bootstrap, args.topic, args.partitions, deadline)

    lines: list[str] = []
    totals = {"acked": 0, "failed": 0}

    def on_delivery(err, msg):
        i = int(msg.key()[2:])
        if err is not None:
            totals["failed"] += 1
            lines.append(f"NACK {i} {err}")
        else:
            totals["acked"] += 1
            lines.append(f"ACK {msg.partition()} {msg.offset()} {i}")

    def write_reports():
        while lines:
            chunk = lines[:REPORT_LINES_MAX]
            del lines[:REPORT_LINES_MAX]
            sys.stdout.write("\n".join(chunk) + "\n")
        sys.stdout.flush()

    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": int(max(1.0, deadline.left()) * 1000),
            **extra,
        }
    )
    started = time.monotonic()
    for i in range(args.start, args.start + args.count):
        if args.rate > 0:
            due = started + (i - args.start) / args.rate
            while time.monotonic() < due and not deadline.passed():
                producer.poll(min(0.05, max(0.0, due - time.monotonic())))
                write_reports()
        while True:
            try:
                producer.produce(
                    args.topic, key=key_of(i), value=value_of(i), headers=headers_of(i),
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                if deadline.passed():
                    raise TimeoutError(f"producer queue still full at the deadline, record {i}")
                producer.poll(0.05)
                write_reports()
        producer.poll(0)
        if len(lines) >= 100:
            write_reports()
    while not deadline.passed() and len(producer) > 0:
        producer.poll(0.1)
        write_reports()
    unacked = len(producer)
    write_reports()
    print(f"DONE acked={totals['acked']} failed={totals['failed']} unacked={unacked}", flush=True)
    return 0 if totals["failed"] == 0 and unacked == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
