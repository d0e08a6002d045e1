"""Golden capture client: confluent-kafka (librdkafka). Run by scripts/capture_golden.ts.

Usage: python confluent_client.py BOOTSTRAP TOPIC
Small steps: metadata, tiny produce runs (acks=all, every codec), idempotent and transactional
producers, a consumer group that commits, and admin calls.
"""

import sys
import time

from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, Producer, TopicCollection,
                             TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewPartitions, NewTopic, OffsetSpec)

from golden_steps import (ALTER_CONFIGS, CREATE_PARTITIONS, CREATE_TOPICS, DELETE_GROUPS,
                          DELETE_RECORDS, DELETE_TOPICS, DESCRIBE_CLUSTER, DESCRIBE_CONFIGS,
                          DESCRIBE_GROUPS, DESCRIBE_USER_SCRAM_CREDENTIALS, FIND_COORDINATOR,
                          GROUP, INCREMENTAL_ALTER_CONFIGS, INIT_PRODUCER_ID, LIST_GROUPS,
                          LIST_OFFSETS, METADATA, OFFSET_FETCH, PRODUCE, TXN, step)

BOOTSTRAP, TOPIC = sys.argv[1], sys.argv[2]
TIMEOUT_S = 20
RECORDS_PER_RUN = 3

BASE = {"bootstrap.servers": BOOTSTRAP, "socket.timeout.ms": 10000}


def produce(extra, topic=TOPIC):
    p = Producer({**BASE, "acks": "all", "linger.ms": 5, **extra})
    errors = []

    def done(err, _msg):
        if err is not None:
            errors.append(err)

    for i in range(RECORDS_PER_RUN):
        p.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(),
                  headers=[("h", b"x")], on_delivery=done)
    left = p.flush(TIMEOUT_S)
    if left or errors:
        raise RuntimeError(f"{left} undelivered, errors {errors}")


def transactional():
    p = Producer({**BASE, "transactional.id": f"{TOPIC}-txn", "linger.ms": 5})
    p.init_transactions(TIMEOUT_S)
    p.begin_transaction()
    p.produce(TOPIC, key=b"t", value=b"in a transaction")
    p.commit_transaction(TIMEOUT_S)
    p.begin_transaction()
    p.produce(TOPIC, key=b"t", value=b"aborted")
    p.abort_transaction(TIMEOUT_S)


def consume_group_resume():
    """Rejoins after a commit: librdkafka validates the committed position (KIP-320)."""
    c = Consumer({**BASE, "group.id": f"{TOPIC}-group", "enable.auto.commit": False})
    c.subscribe([TOPIC])
    end = time.time() + 3
    while time.time() < end:
        c.poll(0.5)
    c.close()


def consume_group():
    c = Consumer({**BASE, "group.id": f"{TOPIC}-group", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 10000,
                  "heartbeat.interval.ms": 1000})
    c.subscribe([TOPIC])
    got = 0
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline and got < RECORDS_PER_RUN:
        m = c.poll(1.0)
        if m is not None and m.error() is None:
            got += 1
    if got == 0:
        c.close()
        raise RuntimeError("no records consumed")
    c.commit(asynchronous=False)
    c.committed([TopicPartition(TOPIC, 0)], TIMEOUT_S)
    # Stay long enough for a heartbeat.
    end = time.time() + 2.5
    while time.time() < end:
        c.poll(0.5)
    c.close()


def consume_assigned():
    c = Consumer({**BASE, "group.id": f"{TOPIC}-assign", "enable.auto.commit": False})
    c.assign([TopicPartition(TOPIC, 0, 0)])
    lo, hi = c.get_watermark_offsets(TopicPartition(TOPIC, 0), TIMEOUT_S)
    c.offsets_for_times([TopicPartition(TOPIC, 0, 0)], TIMEOUT_S)
    got = 0
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline and got < 2:
        m = c.poll(1.0)
        if m is not None and m.error() is None:
            got += 1
    c.close()
    if got == 0:
        raise RuntimeError(f"no records consumed (watermarks {lo}..{hi})")


def wait_all(futures):
    items = futures.values() if isinstance(futures, dict) else [futures]
    return [f.result(TIMEOUT_S) for f in items]


admin = AdminClient(BASE)
ADMIN_TOPIC = f"{TOPIC}-admin"
topic_res = ConfigResource(ConfigResource.Type.TOPIC, ADMIN_TOPIC)

step("metadata", [METADATA], lambda: admin.list_topics(timeout=TIMEOUT_S))
step("create-topics", [CREATE_TOPICS], lambda: wait_all(admin.create_topics(
    [NewTopic(ADMIN_TOPIC, 1, 1, config={"retention.ms": "3600000"})],
    operation_timeout=TIMEOUT_S)))
step("produce-none", [PRODUCE, METADATA],
     lambda: produce({"compression.type": "none", "enable.idempotence": False}))
for codec in ["gzip", "snappy", "lz4", "zstd"]:
    step(f"produce-{codec}", [PRODUCE, METADATA],
         lambda codec=codec: produce({"compression.type": codec, "enable.idempotence": False}))
step("produce-idempotent", [PRODUCE, METADATA, INIT_PRODUCER_ID],
     lambda: produce({"enable.idempotence": True}))
step("produce-admin-topic", [PRODUCE, METADATA],
     lambda: produce({"enable.idempotence": False}, ADMIN_TOPIC))
step("transactional", TXN, transactional)
step("consume-assigned", [METADATA, LIST_OFFSETS, 1], consume_assigned)
step("consume-group", GROUP, consume_group)
step("consume-group-resume", GROUP, consume_group_resume)
step("describe-topics", [METADATA], lambda: wait_all(admin.describe_topics(
    TopicCollection([TOPIC]), request_timeout=TIMEOUT_S)))
step("describe-cluster", [DESCRIBE_CLUSTER],
     lambda: admin.describe_cluster(request_timeout=TIMEOUT_S).result(TIMEOUT_S))
step("list-offsets", [LIST_OFFSETS], lambda: wait_all(admin.list_offsets(
    {TopicPartition(TOPIC, 0): OffsetSpec.latest()}, request_timeout=TIMEOUT_S)))
step("list-offsets-earliest", [LIST_OFFSETS], lambda: wait_all(admin.list_offsets(
    {TopicPartition(TOPIC, 0): OffsetSpec.earliest()}, request_timeout=TIMEOUT_S)))
step("list-offsets-max-timestamp", [LIST_OFFSETS], lambda: wait_all(admin.list_offsets(
    {TopicPartition(TOPIC, 0): OffsetSpec.max_timestamp()}, request_timeout=TIMEOUT_S)))
step("delete-records", [DELETE_RECORDS], lambda: wait_all(admin.delete_records(
    [TopicPartition(ADMIN_TOPIC, 0, 1)], request_timeout=TIMEOUT_S)))
step("describe-configs", [DESCRIBE_CONFIGS],
     lambda: wait_all(admin.describe_configs([topic_res], request_timeout=TIMEOUT_S)))
step("describe-broker-configs", [DESCRIBE_CONFIGS], lambda: wait_all(admin.describe_configs(
    [ConfigResource(ConfigResource.Type.BROKER,
                    str(next(iter(admin.list_topics(timeout=TIMEOUT_S).brokers))))],
    request_timeout=TIMEOUT_S)))
step("alter-configs", [ALTER_CONFIGS], lambda: wait_all(admin.alter_configs(
    [ConfigResource(ConfigResource.Type.TOPIC, ADMIN_TOPIC,
                    set_config={"retention.ms": "7200000"})], request_timeout=TIMEOUT_S)))
step("incremental-alter-configs", [INCREMENTAL_ALTER_CONFIGS],
     lambda: wait_all(admin.incremental_alter_configs([ConfigResource(
         ConfigResource.Type.TOPIC, ADMIN_TOPIC, incremental_configs=[
             ConfigEntry("cleanup.policy", "compact",
                         incremental_operation=AlterConfigOpType.SET)])],
         request_timeout=TIMEOUT_S)))
step("create-partitions", [CREATE_PARTITIONS], lambda: wait_all(admin.create_partitions(
    [NewPartitions(ADMIN_TOPIC, 2)], request_timeout=TIMEOUT_S)))
step("list-groups", [LIST_GROUPS],
     lambda: admin.list_consumer_groups(request_timeout=TIMEOUT_S).result(TIMEOUT_S))
step("describe-groups", [FIND_COORDINATOR, DESCRIBE_GROUPS], lambda: wait_all(
    admin.describe_consumer_groups([f"{TOPIC}-group"], request_timeout=TIMEOUT_S)))
step("list-group-offsets", [FIND_COORDINATOR, OFFSET_FETCH],
     lambda: wait_all(admin.list_consumer_group_offsets(
         [ConsumerGroupTopicPartitions(f"{TOPIC}-group")], request_timeout=TIMEOUT_S)))
step("describe-scram", [DESCRIBE_USER_SCRAM_CREDENTIALS],
     lambda: admin.describe_user_scram_credentials(request_timeout=TIMEOUT_S).result(TIMEOUT_S))
step("delete-groups", [FIND_COORDINATOR, DELETE_GROUPS], lambda: wait_all(
    admin.delete_consumer_groups([f"{TOPIC}-group"], request_timeout=TIMEOUT_S)))
step("delete-topics", [DELETE_TOPICS], lambda: wait_all(admin.delete_topics(
    [ADMIN_TOPIC], operation_timeout=TIMEOUT_S)))
