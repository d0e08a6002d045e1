"""Step runner shared by the Python golden capture clients (scripts/capture_golden.ts).

Each step names the API keys it needs; it is skipped when GOLDEN_APIS (from the capture
script: "all" or the comma-separated keys the broker serves) lacks one. A failing step prints
why and the run goes on.
"""

import os
import sys
import traceback

_APIS = os.environ.get("GOLDEN_APIS", "all")
SERVED = None if _APIS == "all" else {int(k) for k in _APIS.split(",") if k}


def step(name, needs, fn):
    if SERVED is not None:
        missing = [k for k in needs if k not in SERVED]
        if missing:
            print(f"GOLDEN step {name} skip: the broker does not serve API keys {missing}",
                  flush=True)
            return None
    try:
        result = fn()
        print(f"GOLDEN step {name} ok", flush=True)
        return result
    except Exception as e:  # noqa: BLE001 - a step failing is reported, not fatal
        msg = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        print(f"GOLDEN step {name} fail: {msg}", flush=True)
        traceback.print_exc(file=sys.stderr)
        return None


# API keys, for the step lists.
PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR = 8, 9, 10
JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 11, 12, 13, 14
DESCRIBE_GROUPS, LIST_GROUPS, API_VERSIONS = 15, 16, 18
CREATE_TOPICS, DELETE_TOPICS, DELETE_RECORDS, INIT_PRODUCER_ID = 19, 20, 21, 22
OFFSET_FOR_LEADER_EPOCH, ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN = 23, 24, 25, 26
TXN_OFFSET_COMMIT = 28
DESCRIBE_CONFIGS, ALTER_CONFIGS, DESCRIBE_LOG_DIRS = 32, 33, 35
CREATE_PARTITIONS, DELETE_GROUPS, INCREMENTAL_ALTER_CONFIGS = 37, 42, 44
OFFSET_DELETE, DESCRIBE_CLIENT_QUOTAS, DESCRIBE_USER_SCRAM_CREDENTIALS = 47, 48, 50
DESCRIBE_CLUSTER, DESCRIBE_PRODUCERS = 60, 61

GROUP = [FIND_COORDINATOR, JOIN_GROUP, SYNC_GROUP, HEARTBEAT, LEAVE_GROUP, OFFSET_COMMIT,
         OFFSET_FETCH, FETCH, LIST_OFFSETS, METADATA]
TXN = [INIT_PRODUCER_ID, ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN, TXN_OFFSET_COMMIT,
       FIND_COORDINATOR, PRODUCE]
