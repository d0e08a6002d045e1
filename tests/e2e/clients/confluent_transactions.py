"""A librdkafka transactional producer (confluent-kafka) commits some transactions and aborts
others; read_committed and read_uncommitted consumers then read every partition to its end.

Usage: confluent_transactions.py BOOTSTRAP TOPIC PARTITIONS TRANSACTIONS RECORDS_PER_TXN
Creates the topic when TRANSACTIONS > 0; with 0 it only reads. Transaction i is aborted when
i % 3 == 2, committed otherwise. Each record's value is "t<i>-r<j>", on partition j % PARTITIONS. Prints one JSON line: {"committed": [...], "aborted": [...],
"read_committed": {partition: [values]}, "read_uncommitted": {partition: [values]}}.
"""
import json
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic = sys.argv[1], sys.argv[2]
partitions, transactions, per_txn = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

if transactions > 0:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions)])[topic].result(30)

producer = Producer({
    "bootstrap.servers": bootstrap,
    "transactional.id": f"confluent-txn-{topic}",
    "linger.ms": 5,
})
committed, aborted = [], []
if transactions > 0:
    producer.init_transactions(30)
for i in range(transactions):
    producer.begin_transaction()
    values = []
    for j in range(per_txn):
        value = f"t{i}-r{j}"
        producer.produce(topic, value=value.encode(), key=str(j).encode(), partition=j % partitions)
        values.append(value)
    if i % 3 == 2:
        producer.flush(30)  # abort_transaction() purges what was not sent yet
        producer.abort_transaction(30)
        aborted.extend(values)
    else:
        producer.commit_transaction(30)
        committed.extend(values)


def read_all(isolation):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"reader-{isolation}-{topic}",
        "isolation.level": isolation,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = {str(p): [] for p in range(partitions)}
    at_eof = set()
    for _ in range(2000):
        if len(at_eof) == partitions:
            break
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == -191:  # _PARTITION_EOF
                at_eof.add(msg.partition())
                continue
            raise KafkaException(msg.error())
        out[str(msg.partition())].append(msg.value().decode())
    consumer.close()
    return out


print(json.dumps({
    "committed": committed,
    "aborted": aborted,
    "read_committed": read_all("read_committed"),
    "read_uncommitted": read_all("read_uncommitted"),
}), flush=True)
