"""init_transactions() against a broker without transactions must fail fast.

Usage: confluent_init_transactions.py BOOTSTRAP TIMEOUT_S
Prints one JSON line: {"error": name, "fatal": bool, "retriable": bool, "seconds": float}
(error null when init_transactions() succeeded).
"""
import json
import sys
import time

from confluent_kafka import KafkaException, Producer

bootstrap, timeout_s = sys.argv[1], float(sys.argv[2])
producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "fail-fast-txn"})
started = time.monotonic()
result = {"error": None, "fatal": False, "retriable": False, "message": ""}
try:
    producer.init_transactions(timeout_s)
except KafkaException as exc:
    err = exc.args[0]
    result.update(error=err.name(), fatal=err.fatal(), retriable=err.retriable(), message=err.str())
result["seconds"] = round(time.monotonic() - started, 3)
print(json.dumps(result), flush=True)
