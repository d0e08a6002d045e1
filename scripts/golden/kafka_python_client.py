"""Golden capture client: kafka-python. Run by scripts/capture_golden.ts.

Usage: python kafka_python_client.py BOOTSTRAP TOPIC
Small steps: metadata, tiny produce runs (acks=all, every codec), a consumer group that commits,
and admin calls.
"""

import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, OffsetSpec

from golden_steps import (ALTER_CONFIGS, CREATE_PARTITIONS, CREATE_TOPICS, DELETE_GROUPS,
                          DELETE_RECORDS, DELETE_TOPICS, DESCRIBE_CLUSTER, DESCRIBE_CONFIGS,
                          DESCRIBE_GROUPS, DESCRIBE_LOG_DIRS, DESCRIBE_PRODUCERS,
                          DESCRIBE_USER_SCRAM_CREDENTIALS, FIND_COORDINATOR, GROUP,
                          INCREMENTAL_ALTER_CONFIGS, INIT_PRODUCER_ID, LIST_GROUPS, LIST_OFFSETS,
                          METADATA, OFFSET_DELETE, OFFSET_FETCH, PRODUCE, TXN, step)

BOOTSTRAP, TOPIC = sys.argv[1], sys.argv[2]
TIMEOUT_S = 20
RECORDS_PER_RUN = 3
ADMIN_TOPIC = f"{TOPIC}-admin"
GROUP_ID = f"{TOPIC}-group"


def produce(topic=TOPIC, **extra):
    # kafka-python 3 is idempotent by default; plain runs must not need InitProducerId.
    extra.setdefault("enable_idempotence", False)
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5,
                      request_timeout_ms=TIMEOUT_S * 1000, **extra)
    futures = [p.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(),
                      headers=[("h", b"x")]) for i in range(RECORDS_PER_RUN)]
    p.flush(TIMEOUT_S)
    for f in futures:
        f.get(TIMEOUT_S)
    p.close(TIMEOUT_S)


def transactional():
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=f"{TOPIC}-txn",
                      request_timeout_ms=TIMEOUT_S * 1000)
    p.init_transactions()
    p.begin_transaction()
    p.send(TOPIC, key=b"t", value=b"in a transaction")
    p.commit_transaction()
    p.begin_transaction()
    p.send(TOPIC, key=b"t", value=b"aborted")
    p.abort_transaction()
    p.close(TIMEOUT_S)


def consume_group():
    c = KafkaConsumer(TOPIC, bootstrap_servers=BOOTSTRAP, group_id=GROUP_ID,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      heartbeat_interval_ms=500, consumer_timeout_ms=TIMEOUT_S * 1000)
    got = 0
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline and got < RECORDS_PER_RUN:
        for records in c.poll(timeout_ms=1000).values():
            got += len(records)
    if got == 0:
        c.close()
        raise RuntimeError("no records consumed")
    c.commit()
    c.committed(TopicPartition(TOPIC, 0))
    end = time.time() + 2
    while time.time() < end:
        c.poll(timeout_ms=500)
    c.close()


def consume_assigned():
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    tp = TopicPartition(TOPIC, 0)
    c.assign([tp])
    c.beginning_offsets([tp])
    c.end_offsets([tp])
    c.offsets_for_times({tp: 0})
    c.seek_to_beginning(tp)
    got = 0
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline and got < 2:
        for records in c.poll(timeout_ms=1000).values():
            got += len(records)
    c.close()
    if got == 0:
        raise RuntimeError("no records consumed")


admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=TIMEOUT_S * 1000)

step("metadata", [METADATA], admin.list_topics)
step("create-topics", [CREATE_TOPICS], lambda: admin.create_topics(
    {ADMIN_TOPIC: {"num_partitions": 1, "replication_factor": 1,
                   "configs": {"retention.ms": "3600000"}}}, timeout_ms=TIMEOUT_S * 1000))
step("produce-none", [PRODUCE, METADATA], lambda: produce())
for codec in ["gzip", "snappy", "lz4", "zstd"]:
    step(f"produce-{codec}", [PRODUCE, METADATA],
         lambda codec=codec: produce(compression_type=codec))
step("produce-idempotent", [PRODUCE, METADATA, INIT_PRODUCER_ID],
     lambda: produce(enable_idempotence=True))
step("produce-admin-topic", [PRODUCE, METADATA], lambda: produce(ADMIN_TOPIC))
step("transactional", TXN, transactional)
step("consume-assigned", [METADATA, LIST_OFFSETS, 1], consume_assigned)
step("consume-group", GROUP, consume_group)
step("describe-topics", [METADATA], lambda: admin.describe_topics([TOPIC]))
step("describe-cluster", [DESCRIBE_CLUSTER], admin.describe_cluster)
step("list-offsets", [LIST_OFFSETS], lambda: admin.list_partition_offsets(
    {TopicPartition(TOPIC, 0): OffsetSpec.LATEST}))
step("list-offsets-earliest", [LIST_OFFSETS], lambda: admin.list_partition_offsets(
    {TopicPartition(TOPIC, 0): OffsetSpec.EARLIEST}))
step("delete-records", [DELETE_RECORDS], lambda: admin.delete_records(
    {TopicPartition(ADMIN_TOPIC, 0): 1}, timeout_ms=TIMEOUT_S * 1000))
step("describe-configs", [DESCRIBE_CONFIGS], lambda: admin.describe_configs(
    [ConfigResource(ConfigResourceType.TOPIC, ADMIN_TOPIC)]))
step("describe-broker-configs", [DESCRIBE_CONFIGS], lambda: admin.describe_configs(
    [ConfigResource(ConfigResourceType.BROKER, "1")], include_synonyms=True))
step("alter-configs", [ALTER_CONFIGS], lambda: admin.alter_configs(
    [ConfigResource(ConfigResourceType.TOPIC, ADMIN_TOPIC, {"retention.ms": "7200000"})],
    incremental=False))
step("incremental-alter-configs", [INCREMENTAL_ALTER_CONFIGS], lambda: admin.alter_configs(
    [ConfigResource(ConfigResourceType.TOPIC, ADMIN_TOPIC, {"cleanup.policy": "compact"})],
    incremental=True))
step("create-partitions", [CREATE_PARTITIONS], lambda: admin.create_partitions(
    {ADMIN_TOPIC: 2}, timeout_ms=TIMEOUT_S * 1000))
step("describe-log-dirs", [DESCRIBE_LOG_DIRS], admin.describe_log_dirs)
step("describe-producers", [DESCRIBE_PRODUCERS], lambda: admin.describe_producers(
    [TopicPartition(TOPIC, 0)]))
step("list-groups", [LIST_GROUPS], admin.list_groups)
step("describe-groups", [FIND_COORDINATOR, DESCRIBE_GROUPS],
     lambda: admin.describe_groups([GROUP_ID]))
step("list-group-offsets", [FIND_COORDINATOR, OFFSET_FETCH],
     lambda: admin.list_group_offsets({GROUP_ID: None}))
step("delete-group-offsets", [FIND_COORDINATOR, OFFSET_DELETE],
     lambda: admin.delete_group_offsets(GROUP_ID, [TopicPartition(TOPIC, 0)]))
step("describe-scram", [DESCRIBE_USER_SCRAM_CREDENTIALS], admin.describe_user_scram_credentials)
step("delete-groups", [FIND_COORDINATOR, DELETE_GROUPS], lambda: admin.delete_groups([GROUP_ID]))
step("delete-topics", [DELETE_TOPICS], lambda: admin.delete_topics(
    [ADMIN_TOPIC], timeout_ms=TIMEOUT_S * 1000))
admin.close()
