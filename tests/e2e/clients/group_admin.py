"""Admin requests for the group end-to-end tests, through confluent-kafka's AdminClient
(librdkafka): a real client's view of ListGroups, DescribeGroups, OffsetFetch and ListOffsets.

Reads one JSON request per stdin line and answers each with one JSON line on stdout:
  {"op": "create", "topic": T, "partitions": N}      -> {"ok": true}
  {"op": "list", "states": ["Stable", ...]}          -> {"groups": [{"group_id", "state"}]}
  {"op": "describe", "group": G}                     -> {"state", "assignor", "members": [
        {"member_id", "client_id", "host", "instance_id", "assignment": {topic: [p, ...]}}]}
  {"op": "offsets", "group": G, "topic": T, "partitions": N}
                                                     -> {"committed": [o...], "end": [o...]}
Any failure answers {"error": "..."}. Exits when stdin closes.

Usage: python group_admin.py BOOTSTRAP
"""

import json
import sys

from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

# Seconds one admin request may take.
REQUEST_TIMEOUT_S = 10.0

STATES = {
    "Stable": ConsumerGroupState.STABLE,
    "Empty": ConsumerGroupState.EMPTY,
    "PreparingRebalance": ConsumerGroupState.PREPARING_REBALANCING,
    "CompletingRebalance": ConsumerGroupState.COMPLETING_REBALANCING,
    "Dead": ConsumerGroupState.DEAD,
}
STATE_NAMES = {v: k for k, v in STATES.items()}


def state_name(state) -> str:
    return STATE_NAMES.get(state, str(state))


def handle(admin: AdminClient, req: dict) -> dict:
    op = req["op"]
    if op == "create":
        futures = admin.create_topics(
            [NewTopic(req["topic"], req["partitions"], 1)], request_timeout=REQUEST_TIMEOUT_S
        )
        futures[req["topic"]].result()
        return {"ok": True}
    if op == "list":
        states = {STATES[s] for s in req.get("states", [])}
        result = admin.list_consumer_groups(
            request_timeout=REQUEST_TIMEOUT_S, states=states
        ).result()
        return {
            "groups": sorted(
                ({"group_id": g.group_id, "state": state_name(g.state)} for g in result.valid),
                key=lambda g: g["group_id"],
            )
        }
    if op == "describe":
        d = admin.describe_consumer_groups(
            [req["group"]], request_timeout=REQUEST_TIMEOUT_S
        )[req["group"]].result()
        members = []
        for m in d.members:
            assignment: dict[str, list[int]] = {}
            for tp in m.assignment.topic_partitions if m.assignment else []:
                assignment.setdefault(tp.topic, []).append(tp.partition)
            members.append({
                "member_id": m.member_id,
                "client_id": m.client_id,
                "host": m.host,
                "instance_id": m.group_instance_id,
                "assignment": {t: sorted(ps) for t, ps in assignment.items()},
            })
        return {"state": state_name(d.state), "assignor": d.partition_assignor, "members": members}
    if op == "offsets":
        topic, count = req["topic"], req["partitions"]
        request = ConsumerGroupTopicPartitions(
            req["group"], [TopicPartition(topic, p) for p in range(count)]
        )
        committed = [-1] * count
        futures = admin.list_consumer_group_offsets([request], request_timeout=REQUEST_TIMEOUT_S)
        for tp in futures[req["group"]].result().topic_partitions:
            committed[tp.partition] = tp.offset
        end = [-1] * count
        ends = admin.list_offsets(
            {TopicPartition(topic, p): OffsetSpec.latest() for p in range(count)},
            request_timeout=REQUEST_TIMEOUT_S,
        )
        for tp, future in ends.items():
            end[tp.partition] = future.result().offset
        return {"committed": committed, "end": end}
    raise ValueError(f"unknown op {op!r}")


def main() -> int:
    if len(sys.argv) != 2:
        print("Usage: python group_admin.py BOOTSTRAP", file=sys.stderr)
        return 2
    admin = AdminClient({"bootstrap.servers": sys.argv[1]})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = handle(admin, json.loads(line))
        except Exception as err:  # noqa: BLE001 - every failure is answered, not raised
            answer = {"error": f"{type(err).__name__}: {err}"}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
