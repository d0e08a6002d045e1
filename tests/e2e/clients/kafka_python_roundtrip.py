"""Round trip through kafka-python (pure Python): create the topic with KafkaAdminClient,
produce with acks=all and the default partitioner, read every partition back by assign() from
the beginning, and check each record (and that it sits at the offset its future gave).

Usage: python kafka_python_roundtrip.py BOOTSTRAP TOPIC PARTITIONS COUNT CODEC [--deadline-s S]
"""

import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from roundtrip_common import (
    Deadline,
    Verifier,
    headers_of,
    key_of,
    ms_since,
    parse_args,
    report,
    value_of,
)

CLIENT = "kafka-python"
# Records per poll() call.
POLL_RECORDS_MAX = 2000


def create_topic(bootstrap: str, topic: str, partitions: int, deadline: Deadline) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="roundtrip-admin")
    try:
        admin.create_topics(
            [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)],
            timeout_ms=int(max(1.0, deadline.left()) * 1000),
        )
    finally:
        admin.close()


def produce(args, deadline: Deadline, delivered: dict, errors: list) -> None:
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap,
        acks="all",
        compression_type=None if args.compression == "none" else args.compression,
        linger_ms=5,
        batch_size=64 * 1024,
    )
    try:
        futures = []
        for i in range(args.count):
            futures.append(
                producer.send(
                    args.topic, key=key_of(i), value=value_of(i), headers=headers_of(i)
                )
            )
        producer.flush(timeout=max(0.0, deadline.left()))
        for i, future in enumerate(futures):
            if not future.is_done:
                errors.append(f"record {i} still unacknowledged at the deadline")
            elif future.failed():
                errors.append(f"delivery failed for k-{i}: {future.exception}")
            else:
                meta = future.value
                delivered[i] = (meta.partition, meta.offset)
    finally:
        producer.close(timeout=5)


def consume(args, deadline: Deadline, verifier: Verifier, delivered: dict) -> None:
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        partitions = [TopicPartition(args.topic, p) for p in range(args.partitions)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        # Wait only for what was acknowledged: records whose delivery failed never come.
        target = len(delivered)
        while verifier.unique < target and not deadline.passed():
            timeout_ms = int(min(1.0, max(0.0, deadline.left())) * 1000)
            batches = consumer.poll(timeout_ms=timeout_ms, max_records=POLL_RECORDS_MAX)
            for tp, records in batches.items():
                for r in records:
                    verifier.add(tp.partition, r.offset, r.key, r.value, r.headers)
                    i = int(r.key[2:]) if r.key and r.key[2:].isdigit() else -1
                    if i in delivered and delivered[i] != (tp.partition, r.offset):
                        verifier.error(
                            f"{r.key!r} read at {(tp.partition, r.offset)}, "
                            f"acked at {delivered[i]}"
                        )
    finally:
        consumer.close()


def main() -> int:
    args = parse_args(__doc__)
    deadline = Deadline(args.deadline_s)
    fields = {"client": CLIENT, "topic": args.topic, "codec": args.compression,
              "count": args.count, "partitions": args.partitions}
    verifier = Verifier(args.count, args.partitions)
    delivered: dict[int, tuple[int, int]] = {}
    errors: list[str] = []
    try:
        start = time.monotonic()
        create_topic(args.bootstrap, args.topic, args.partitions, deadline)
        fields["create_ms"] = ms_since(start)
        start = time.monotonic()
        produce(args, deadline, delivered, errors)
        fields["produce_ms"] = ms_since(start)
        fields["acked"] = len(delivered)
        start = time.monotonic()
        consume(args, deadline, verifier, delivered)
        fields["consume_ms"] = ms_since(start)
        verifier.finish()
    except Exception as e:  # Reported in the summary, with what was seen so far.
        errors.append(f"{type(e).__name__}: {e}")
    return report(fields, verifier, errors)


if __name__ == "__main__":
    sys.exit(main())
