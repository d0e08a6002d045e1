"""Round trip through confluent-kafka (librdkafka): create the topic with the admin API,
produce with acks=all and the default partitioner, read every partition back by assign() from
the beginning, and check each record (and that it sits at the offset its delivery report gave).

Usage: python confluent_roundtrip.py BOOTSTRAP TOPIC PARTITIONS COUNT CODEC [--deadline-s S]
"""

import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic

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

CLIENT = "confluent-kafka"
# Messages per consume() call.
CONSUME_BATCH = 1000


def create_topic(bootstrap: str, topic: str, partitions: int, deadline: Deadline) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        operation_timeout=max(1.0, deadline.left()),
        request_timeout=max(1.0, deadline.left()),
    )
    futures[topic].result(timeout=max(1.0, deadline.left()))


def produce(args, deadline: Deadline, delivered: dict, errors: list) -> None:
    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "acks": "all",
            "compression.type": args.compression,
            "linger.ms": 5,
            "message.timeout.ms": int(max(1.0, deadline.left()) * 1000),
        }
    )

    def on_delivery(err, msg):
        if err is not None:
            errors.append(f"delivery failed for {msg.key()!r}: {err}")
        else:
            delivered[int(msg.key()[2:])] = (msg.partition(), msg.offset())

    for i in range(args.count):
        while True:
            try:
                producer.produce(
                    args.topic,
                    key=key_of(i),
                    value=value_of(i),
                    headers=headers_of(i),
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                if deadline.passed():
                    raise TimeoutError(f"producer queue still full after the deadline at {i}")
                producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(max(0.0, deadline.left()))
    if left > 0:
        errors.append(f"{left} records still unacknowledged at the deadline")


def consume(args, deadline: Deadline, verifier: Verifier, delivered: dict) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            # Required by the client; assign() below means no group join and no commits.
            "group.id": f"roundtrip-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
    )
    try:
        consumer.assign(
            [TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in range(args.partitions)]
        )
        # Wait only for what was acknowledged: records whose delivery failed never come.
        target = len(delivered)
        while verifier.unique < target and not deadline.passed():
            for msg in consumer.consume(CONSUME_BATCH, timeout=min(1.0, max(0.0, deadline.left()))):
                err = msg.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        verifier.error(f"consume error: {err}")
                    continue
                verifier.add(msg.partition(), msg.offset(), msg.key(), msg.value(), msg.headers())
                key = msg.key() or b""
                i = int(key[2:]) if key[2:].isdigit() else -1
                if i in delivered and delivered[i] != (msg.partition(), msg.offset()):
                    verifier.error(
                        f"{key!r} read at {(msg.partition(), msg.offset())}, "
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
