"""A steady trickle through confluent-kafka: RATE records per second, each to partition
i % PARTITIONS, acks=all, for SECONDS; a consumer assigned to every partition from offset 0
reads along. Every acknowledged record must be read exactly once at its acknowledged
partition and offset, with its value.

The topic must exist (the test creates it with its configs). Prints a progress line on stderr
every 30 s and one JSON summary line on stdout at the end:
  {"produced": n, "acked": n, "failed": n, "consumed": n, "missing": n, "duplicates": n,
   "mismatched": n, "ok": bool}

Usage: python confluent_trickle.py BOOTSTRAP TOPIC PARTITIONS RATE SECONDS
"""

import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

# After the last record is produced, how long the consumer may take to catch up.
CATCH_UP_S = 60.0


def main() -> int:
    bootstrap, topic = sys.argv[1], sys.argv[2]
    partitions, rate, seconds = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    total = int(rate * seconds)
    acked: dict[int, tuple[int, int]] = {}
    failed: list[str] = []

    def on_delivery(err, msg):
        i = int(msg.key().decode())
        if err is not None:
            failed.append(f"{i}: {err}")
        else:
            acked[i] = (msg.partition(), msg.offset())

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"trickle-{time.time_ns()}",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 100,
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    seen: dict[tuple[int, int], int] = {}
    duplicates = 0
    mismatched = 0

    def consume(timeout: float) -> None:
        nonlocal duplicates, mismatched
        for msg in consumer.consume(num_messages=1000, timeout=timeout):
            if msg.error() is not None:
                continue
            i = int(msg.key().decode())
            where = (msg.partition(), msg.offset())
            if where in seen:
                duplicates += 1
            seen[where] = i
            if msg.value() != f"v-{i}".encode() or msg.partition() != i % partitions:
                mismatched += 1

    start = time.monotonic()
    next_report = start + 30
    for i in range(total):
        due = start + i / rate
        while True:
            now = time.monotonic()
            if now >= due:
                break
            producer.poll(0)
            consume(min(0.05, due - now))
        producer.produce(topic, key=str(i), value=f"v-{i}", partition=i % partitions,
                         on_delivery=on_delivery)
        producer.poll(0)
        if time.monotonic() >= next_report:
            next_report += 30
            print(f"trickle: {i + 1}/{total} produced, {len(acked)} acked, {len(seen)} consumed",
                  file=sys.stderr, flush=True)
    left = producer.flush(CATCH_UP_S)
    deadline = time.monotonic() + CATCH_UP_S
    while len(seen) < len(acked) and time.monotonic() < deadline:
        consume(0.5)
    consumer.close()

    missing = sum(1 for i, where in acked.items() if seen.get(where) != i)
    summary = {
        "produced": total,
        "acked": len(acked),
        "failed": len(failed) + left,
        "consumed": len(seen),
        "missing": missing,
        "duplicates": duplicates,
        "mismatched": mismatched,
        "errors": failed[:10],
    }
    summary["ok"] = (missing == 0 and duplicates == 0 and mismatched == 0
                     and summary["failed"] == 0 and len(acked) == total)
    print(json.dumps(summary), flush=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
