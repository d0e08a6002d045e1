"""A confluent-kafka (librdkafka) consumer-group member for the group end-to-end tests
(tests/e2e/groups_test.ts). It prints every record before committing it and commits
synchronously after each batch, so everything it printed is committed before the next poll,
the only place librdkafka hands partitions away.

stdout, one line each, flushed before every commit:
  ready                         subscribed
  assigned <member-id> <json>   the current assignment: {"topic": [partitions]}
  r <partition> <offset> <key>  a record, printed before its offset is committed
  c <partition> <offset>        a committed offset (the next one to read)
  bye                           clean exit after SIGTERM (close() sent LeaveGroup)

Usage: python group_consumer_confluent.py BOOTSTRAP TOPIC GROUP CLIENT_ID
         [--session-timeout-ms N] [--assignor range|roundrobin|cooperative-sticky]
         [--instance-id ID] [--group-protocol classic|consumer]

--group-protocol consumer uses the KIP-848 consumer group protocol (librdkafka 2.x): the broker
assigns partitions, so the assignor, session and heartbeat settings are left to it.
"""

import argparse
import json
import os
import signal
import sys

from confluent_kafka import Consumer, KafkaException, TopicPartition

# Records one consume() call returns at most.
BATCH_MAX = 500


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("client_id")
    parser.add_argument("--session-timeout-ms", type=int, default=10_000)
    parser.add_argument("--assignor", default="roundrobin",
                        choices=["range", "roundrobin", "cooperative-sticky"])
    parser.add_argument("--instance-id", default=None)
    parser.add_argument("--group-protocol", default="classic", choices=["classic", "consumer"])
    args = parser.parse_args()

    stopping = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.__setitem__("flag", True))

    config = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "client.id": args.client_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": args.assignor,
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": min(1_000, args.session_timeout_ms // 3),
        # The rebalance timeout: how long a rebalance may wait for this member.
        "max.poll.interval.ms": 30_000,
        "topic.metadata.refresh.interval.ms": 1_000,
    }
    if args.instance_id:
        config["group.instance.id"] = args.instance_id
    # librdkafka's debug contexts (e.g. "cgrp": the group protocol), logged to stderr.
    if os.environ.get("KAFSCALE_TEST_RDKAFKA_DEBUG"):
        config["debug"] = os.environ["KAFSCALE_TEST_RDKAFKA_DEBUG"]
    if args.group_protocol == "consumer":
        config["group.protocol"] = "consumer"
        for key in ("partition.assignment.strategy", "session.timeout.ms", "heartbeat.interval.ms"):
            del config[key]
    consumer = Consumer(config)
    owned: set[int] = set()

    def report() -> None:
        assignment = {args.topic: sorted(owned)} if owned else {}
        print(f"assigned {consumer.memberid()} {json.dumps(assignment)}", flush=True)

    def on_assign(c, partitions):
        owned.update(p.partition for p in partitions)
        report()

    def on_revoke(c, partitions):
        owned.difference_update(p.partition for p in partitions)
        report()

    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
    print("ready", flush=True)
    while not stopping["flag"]:
        messages = consumer.consume(num_messages=BATCH_MAX, timeout=0.2)
        nexts: dict[int, int] = {}
        lines = []
        for m in messages:
            if m.error():
                print(f"consume error: {m.error()}", file=sys.stderr, flush=True)
                continue
            key = m.key().decode() if m.key() else ""
            lines.append(f"r {m.partition()} {m.offset()} {key}")
            nexts[m.partition()] = m.offset() + 1
        if not lines:
            continue
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        try:
            committed = consumer.commit(
                offsets=[TopicPartition(args.topic, p, o) for p, o in nexts.items()],
                asynchronous=False,
            )
        except KafkaException as err:
            print(f"commit failed: {err}", file=sys.stderr, flush=True)
            continue
        for tp in committed:
            if tp.error is None:
                print(f"c {tp.partition} {tp.offset}")
            else:
                print(f"commit of {tp.partition} failed: {tp.error}", file=sys.stderr)
        sys.stdout.flush()
    consumer.close()
    print("bye", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
