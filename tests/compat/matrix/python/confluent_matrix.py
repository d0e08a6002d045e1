"""The matrix scenario through confluent-kafka-python (librdkafka), with its default settings:
the PyPI release (run by .tools/venv/bin/python) and Debian's python3-confluent-kafka (run by
/usr/bin/python3, on Debian's librdkafka) both run this file.

- create: AdminClient.create_topics.
- produce:<codec>: one Producer per codec ("compression.type"), all records, flush, every
  delivery report must be a success.
- consume: a Consumer in the group ("auto.offset.reset": "earliest", the scenario reads what
  was produced before the group existed); commit(asynchronous=False) after every batch.
- commit: Consumer.committed() equals each partition's high watermark.
- describe: AdminClient.describe_consumer_groups (confluent-kafka 2.x) or the older
  AdminClient.list_groups (1.x) while the consumer is still in the group.
- delete: AdminClient.delete_topics, then the topic is no longer listed.

Usage: python confluent_matrix.py BOOTSTRAP TOPIC GROUP PARTITIONS COUNT COMPRESSED_COUNT
         [--deadline-s S]
"""

import sys
import time

import confluent_kafka
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from scenario import (
    CODECS,
    CellFailure,
    Cells,
    Deadline,
    Plan,
    Verifier,
    check_committed,
    check_group,
    decode_assignment,
    headers_of,
    key_of,
    parse_args,
    security,
    value_of,
    verifier_problems,
)

# Messages per consume() call.
CONSUME_BATCH = 500
# Seconds one admin request may take.
REQUEST_TIMEOUT_S = 15.0


def client_name() -> str:
    return "confluent-kafka-debian" if sys.executable.startswith("/usr/bin/") else "confluent-kafka"


def create(admin: AdminClient, args) -> None:
    futures = admin.create_topics([NewTopic(args.topic, args.partitions, 1)],
                                  request_timeout=REQUEST_TIMEOUT_S)
    futures[args.topic].result(timeout=REQUEST_TIMEOUT_S)


def produce(args, codec: str, records: range, deadline: Deadline) -> None:
    producer = Producer({"bootstrap.servers": args.bootstrap, "compression.type": codec,
                         **security()})
    failures: list[str] = []
    acked = [0]

    def on_delivery(err, msg):
        if err is not None:
            failures.append(f"{msg.key()!r}: {err}")
        else:
            acked[0] += 1

    for j in records:
        while True:
            try:
                producer.produce(args.topic, value=value_of(j), key=key_of(j),
                                 headers=headers_of(j), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(max(1.0, deadline.left()))
    if failures or left or acked[0] != len(records):
        raise CellFailure(f"{acked[0]} of {len(records)} acknowledged, {left} still queued, "
                          f"{len(failures)} failed: {failures[:3]}")


def consume(consumer: Consumer, args, plan: Plan, deadline: Deadline) -> None:
    verifier = Verifier(plan.total, args.partitions)
    consumer.subscribe([args.topic])
    while verifier.unique < plan.total and not deadline.passed():
        messages = consumer.consume(num_messages=CONSUME_BATCH, timeout=0.5)
        nexts: dict[int, int] = {}
        for m in messages:
            if m.error():
                verifier.error(f"consume error: {m.error()}")
                continue
            verifier.add(m.partition(), m.offset(), m.key(), m.value(), m.headers())
            nexts[m.partition()] = m.offset() + 1
        if nexts:
            consumer.commit(offsets=[TopicPartition(args.topic, p, o) for p, o in nexts.items()],
                            asynchronous=False)
    problems = verifier_problems(verifier, plan)
    if problems:
        raise CellFailure(problems)


def check_commits(consumer: Consumer, args) -> None:
    partitions = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    committed = {tp.partition: tp.offset
                 for tp in consumer.committed(partitions, timeout=REQUEST_TIMEOUT_S)}
    ends = {p: consumer.get_watermark_offsets(TopicPartition(args.topic, p),
                                              timeout=REQUEST_TIMEOUT_S)[1]
            for p in range(args.partitions)}
    check_committed(committed, ends)


def describe(admin: AdminClient, args) -> None:
    if hasattr(admin, "describe_consumer_groups"):
        d = admin.describe_consumer_groups([args.group], request_timeout=REQUEST_TIMEOUT_S)[
            args.group].result()
        members = []
        for m in d.members:
            assignment: dict[str, list[int]] = {}
            for tp in m.assignment.topic_partitions if m.assignment else []:
                assignment.setdefault(tp.topic, []).append(tp.partition)
            members.append(assignment)
        check_group(d.state, members, args.topic, args.partitions, protocol_type=None)
        return
    # confluent-kafka 1.x: ListGroups + DescribeGroups through librdkafka's rd_kafka_list_groups.
    groups = admin.list_groups(args.group, timeout=REQUEST_TIMEOUT_S)
    if len(groups) != 1:
        raise CellFailure(f"list_groups({args.group!r}) returned {len(groups)} groups")
    g = groups[0]
    if g.error is not None and g.error.code() != 0:
        raise CellFailure(f"group error {g.error}")
    check_group(g.state, [decode_assignment(m.assignment) for m in g.members], args.topic,
                args.partitions, protocol_type=g.protocol_type)


def delete(admin: AdminClient, args, deadline: Deadline) -> None:
    admin.delete_topics([args.topic], request_timeout=REQUEST_TIMEOUT_S)[args.topic].result(
        timeout=REQUEST_TIMEOUT_S)
    # The topic must be gone from metadata (poll briefly: the client may answer from a cache).
    while args.topic in admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics:
        if deadline.passed():
            raise CellFailure(f'topic "{args.topic}" is still listed after delete_topics')
        time.sleep(0.1)


def main() -> int:
    args = parse_args(__doc__)
    deadline = Deadline(args.deadline_s)
    cells = Cells(client_name())
    plan = Plan(CODECS, args.count, args.compressed_count)
    admin = AdminClient({"bootstrap.servers": args.bootstrap, **security()})
    cells.run("create", lambda: create(admin, args))
    for codec, records in plan.ranges.items():
        cells.run(f"produce:{codec}", lambda: produce(args, codec, records, deadline))
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group,
                         "auto.offset.reset": "earliest", **security()})
    try:
        cells.run("consume", lambda: consume(consumer, args, plan, deadline))
        cells.run("commit", lambda: check_commits(consumer, args))
        cells.run("describe", lambda: describe(admin, args))
    finally:
        consumer.close()
    cells.run("delete", lambda: delete(admin, args, deadline))
    version = confluent_kafka.version()
    version = version[0] if isinstance(version, tuple) else version
    version = f"{version} (librdkafka {confluent_kafka.libversion()[0]})"
    return cells.finish(version)


if __name__ == "__main__":
    sys.exit(main())
