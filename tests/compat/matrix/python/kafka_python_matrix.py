"""The matrix scenario through kafka-python (pure Python, PyPI), with its default settings
(kafka-python 3.x enables idempotence by default, KIP-679, so produce needs InitProducerId).

- create: KafkaAdminClient.create_topics.
- produce:<codec>: one KafkaProducer per codec (compression_type), every future must succeed.
- consume: KafkaConsumer in the group (auto_offset_reset="earliest": the scenario reads what was
  produced before the group existed); commit() after every poll.
- commit: KafkaConsumer.committed() equals each partition's end offset.
- describe: KafkaAdminClient.describe_groups while the consumer is still in the group.
- delete: KafkaAdminClient.delete_topics, then the topic is no longer listed.

Usage: python kafka_python_matrix.py BOOTSTRAP TOPIC GROUP PARTITIONS COUNT COMPRESSED_COUNT
         [--deadline-s S]
"""

import sys
import time

import kafka
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.codec import has_gzip, has_lz4, has_snappy, has_zstd

from scenario import (
    CODECS,
    CellFailure,
    Cells,
    Deadline,
    Plan,
    Verifier,
    check_committed,
    check_group,
    headers_of,
    key_of,
    parse_args,
    security,
    value_of,
    verifier_problems,
)

CLIENT = "kafka-python"
# Records per poll() call.
POLL_RECORDS_MAX = 500
# Milliseconds one admin request may take.
REQUEST_TIMEOUT_MS = 15_000


def security_kwargs() -> dict:
    """scenario.security() in kafka-python's keyword arguments."""
    names = {"security.protocol": "security_protocol", "sasl.mechanisms": "sasl_mechanism",
             "sasl.username": "sasl_plain_username", "sasl.password": "sasl_plain_password",
             "ssl.ca.location": "ssl_cafile", "ssl.certificate.location": "ssl_certfile",
             "ssl.key.location": "ssl_keyfile"}
    return {names[k]: v for k, v in security().items()}


AVAILABLE = {"none": True, "gzip": has_gzip(), "snappy": has_snappy(), "lz4": has_lz4(),
             "zstd": has_zstd()}


def produce(args, codec: str, records: range, deadline: Deadline) -> None:
    producer = KafkaProducer(bootstrap_servers=args.bootstrap, **security_kwargs(),
                             compression_type=None if codec == "none" else codec)
    try:
        futures = [producer.send(args.topic, key=key_of(j), value=value_of(j),
                                 headers=headers_of(j)) for j in records]
        producer.flush(timeout=max(1.0, deadline.left()))
    finally:
        producer.close(timeout=5)
    failed = [f.exception for f in futures if f.is_done and f.failed()]
    pending = sum(1 for f in futures if not f.is_done)
    if failed or pending:
        raise CellFailure(f"{len(failed)} of {len(records)} failed, {pending} unacknowledged: "
                          f"{failed[:3]}")


def consume(consumer: KafkaConsumer, args, plan: Plan, deadline: Deadline) -> None:
    verifier = Verifier(plan.total, args.partitions)
    while verifier.unique < plan.total and not deadline.passed():
        batches = consumer.poll(timeout_ms=500, max_records=POLL_RECORDS_MAX)
        for tp, records in batches.items():
            for r in records:
                verifier.add(tp.partition, r.offset, r.key, r.value, r.headers)
        if batches:
            consumer.commit()
    problems = verifier_problems(verifier, plan)
    if problems:
        raise CellFailure(problems)


def check_commits(consumer: KafkaConsumer, args) -> None:
    partitions = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    committed = {tp.partition: consumer.committed(tp) for tp in partitions}
    ends = {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    check_committed(committed, ends)


def describe(admin: KafkaAdminClient, args) -> None:
    group = admin.describe_groups([args.group])[args.group]
    members = [{t["topic"]: list(t["partitions"])
                for t in (m.get("member_assignment") or {}).get("assigned_partitions", [])}
               for m in group.get("members", [])]
    check_group(group.get("group_state"), members, args.topic, args.partitions,
                protocol_type=group.get("protocol_type"))


def delete(admin: KafkaAdminClient, args, deadline: Deadline) -> None:
    admin.delete_topics([args.topic], timeout_ms=REQUEST_TIMEOUT_MS)
    while args.topic in admin.list_topics():
        if deadline.passed():
            raise CellFailure(f'topic "{args.topic}" is still listed after delete_topics')
        time.sleep(0.1)


def main() -> int:
    args = parse_args(__doc__)
    deadline = Deadline(args.deadline_s)
    cells = Cells(CLIENT)
    plan = Plan([c for c in CODECS if AVAILABLE[c]], args.count, args.compressed_count)
    for codec in CODECS:
        if not AVAILABLE[codec]:
            cells.not_applicable(f"produce:{codec}", f"kafka-python has no {codec} library")
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, **security_kwargs())
    try:
        cells.run("create", lambda: admin.create_topics(
            [NewTopic(name=args.topic, num_partitions=args.partitions, replication_factor=1)],
            timeout_ms=REQUEST_TIMEOUT_MS))
        for codec, records in plan.ranges.items():
            cells.run(f"produce:{codec}", lambda: produce(args, codec, records, deadline))
        consumer = KafkaConsumer(args.topic, bootstrap_servers=args.bootstrap,
                                 group_id=args.group, auto_offset_reset="earliest",
                                 **security_kwargs())
        try:
            cells.run("consume", lambda: consume(consumer, args, plan, deadline))
            cells.run("commit", lambda: check_commits(consumer, args))
            cells.run("describe", lambda: describe(admin, args))
        finally:
            consumer.close()
        cells.run("delete", lambda: delete(admin, args, deadline))
    finally:
        admin.close()
    return cells.finish(kafka.__version__)


if __name__ == "__main__":
    sys.exit(main())
