"""The matrix scenario through kcat (Debian's, on Debian's librdkafka), with its default settings.
kcat has no admin API: the topic is created and deleted with confluent-kafka's AdminClient and
those cells, like describe, are n/a.

- produce:<codec>: one `kcat -P -K: -X compression.codec=<codec>` per codec; kcat's -H headers
  are per run, so records carry h1="<codec>", h2="x" instead of h1="<j>".
- consume: `kcat -G GROUP -e` (the balanced KafkaConsumer; "auto.offset.reset=earliest" because
  the scenario reads what was produced before the group existed); it commits with librdkafka's
  default auto-commit, which also commits on close.
- commit: the group's committed offsets equal the end offsets, read with confluent-kafka's
  AdminClient (kcat cannot query them).

Usage: python kcat_matrix.py BOOTSTRAP TOPIC GROUP PARTITIONS COUNT COMPRESSED_COUNT
         [--deadline-s S]
Environment: KCAT (default "kcat").
"""

import os
import subprocess
import sys
import tempfile

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from scenario import (
    CODECS,
    CellFailure,
    Cells,
    Deadline,
    Plan,
    Verifier,
    check_committed,
    key_of,
    parse_args,
    security,
    value_of,
    verifier_problems,
)

CLIENT = "kcat"
# Lines of kcat's stderr kept in a failure detail.
STDERR_LINES_MAX = 5
# Seconds one admin request may take.
REQUEST_TIMEOUT_S = 15.0


def security_args() -> list[str]:
    """scenario.security() as kcat's -X options (librdkafka property names)."""
    return [a for prop, value in security().items() for a in ("-X", f"{prop}={value}")]


def tail(text: bytes) -> str:
    return " | ".join(text.decode(errors="replace").strip().splitlines()[-STDERR_LINES_MAX:])


def produce(kcat: str, args, codec: str, records: range, deadline: Deadline) -> None:
    command = [kcat, "-P", "-b", args.bootstrap, "-t", args.topic, "-K:",
               "-X", f"compression.codec={codec}", "-H", f"h1={codec}", "-H", "h2=x",
               *security_args()]
    with tempfile.TemporaryFile() as lines:
        for j in records:
            lines.write(key_of(j) + b":" + value_of(j) + b"\n")
        lines.seek(0)
        done = subprocess.run(command, stdin=lines, capture_output=True,
                              timeout=max(1.0, deadline.left()))
    stderr = done.stderr.decode(errors="replace").lower()
    if done.returncode != 0 or "fail" in stderr or "error" in stderr:
        raise CellFailure(f"kcat -P exited {done.returncode}: {tail(done.stderr)}")


def consume(kcat: str, args, plan: Plan, deadline: Deadline) -> None:
    def expected_headers(j: int) -> list[tuple[str, bytes]]:
        return [("h1", plan.codec_of(j).encode()), ("h2", b"x")]

    verifier = Verifier(plan.total, args.partitions, expected_headers=expected_headers)
    command = [kcat, "-b", args.bootstrap, "-G", args.group, "-X", "auto.offset.reset=earliest",
               "-e", "-q", "-f", "%p\\t%o\\t%k\\t%h\\t%s\\n", *security_args(),
               args.topic]
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=max(1.0, deadline.left()))
    if done.returncode != 0:
        verifier.error(f"kcat -G exited {done.returncode}: {tail(done.stderr)}")
    for line in done.stdout.split(b"\n"):
        if not line:
            continue
        fields = line.split(b"\t")
        if len(fields) != 5:
            verifier.error(f"unexpected kcat output line {line[:80]!r}")
            continue
        partition, offset, key, header_text, value = fields
        headers = []
        for pair in header_text.split(b","):
            if pair:
                name, _, hv = pair.partition(b"=")
                headers.append((name.decode(), hv))
        verifier.add(int(partition), int(offset), key, value, headers)
    problems = verifier_problems(verifier, plan)
    if problems:
        raise CellFailure(problems)


def check_commits(admin: AdminClient, args) -> None:
    partitions = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    futures = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(args.group, partitions)], request_timeout=REQUEST_TIMEOUT_S)
    committed = {tp.partition: tp.offset
                 for tp in futures[args.group].result().topic_partitions}
    ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions},
                              request_timeout=REQUEST_TIMEOUT_S)
    check_committed(committed, {tp.partition: f.result().offset for tp, f in ends.items()})


def version(kcat: str) -> str:
    done = subprocess.run([kcat, "-V"], capture_output=True, timeout=10)
    words = done.stdout.decode(errors="replace").split()
    # "kcat - Apache Kafka producer and consumer tool ... Copyright ... Version 1.7.0 (...
    # librdkafka 2.0.2 ...)"
    kcat_version = words[words.index("Version") + 1] if "Version" in words else "?"
    lib = words[words.index("librdkafka") + 1] if "librdkafka" in words else "?"
    return f"{kcat_version} (librdkafka {lib})"


def main() -> int:
    args = parse_args(__doc__)
    kcat = os.environ.get("KCAT", "kcat")
    deadline = Deadline(args.deadline_s)
    cells = Cells(CLIENT)
    plan = Plan(CODECS, args.count, args.compressed_count)
    admin = AdminClient({"bootstrap.servers": args.bootstrap, **security()})
    admin.create_topics([NewTopic(args.topic, args.partitions, 1)],
                        request_timeout=REQUEST_TIMEOUT_S)[args.topic].result()
    cells.not_applicable("create", "kcat has no admin API (topic created with confluent-kafka)")
    for codec, records in plan.ranges.items():
        cells.run(f"produce:{codec}", lambda: produce(kcat, args, codec, records, deadline))
    cells.run("consume", lambda: consume(kcat, args, plan, deadline))
    cells.run("commit", lambda: check_commits(admin, args))
    cells.not_applicable("describe", "kcat cannot describe groups (-L lists brokers and topics)")
    admin.delete_topics([args.topic], request_timeout=REQUEST_TIMEOUT_S)[args.topic].result()
    cells.not_applicable("delete", "kcat has no admin API (topic deleted with confluent-kafka)")
    return cells.finish(version(kcat))


if __name__ == "__main__":
    sys.exit(main())
