"""The matrix scenario for the Python programs: command line, record plan, cell reporting and the
group checks. The record shape and the checker come from tests/e2e/clients/roundtrip_common.py
(key "k-<j>", value "v-<j>-" padded to 100 bytes, headers h1="<j>", h2="x").

Records are numbered across codecs: "none" gets j = 0..COUNT-1, each further codec the client
supports the next COMPRESSED_COUNT numbers, so one Verifier checks the whole topic.
See tests/compat/matrix/README.md for the protocol every matrix program follows.
"""

import argparse
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "e2e", "clients"))

from roundtrip_common import (  # noqa: E402 - after the path set-up above
    ERRORS_SHOWN_MAX,
    Deadline,
    Verifier,
    headers_of,
    key_of,
    value_of,
)

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
CELLS = ("create", *(f"produce:{c}" for c in CODECS), "consume", "commit", "describe", "delete")
DEFAULT_DEADLINE_S = 120.0
# Characters of a failure detail kept in a cell line.
DETAIL_CHARS_MAX = 600


# The connection's security, from the environment (README "Security"): unset means PLAINTEXT.
# librdkafka's property names; each program maps them to its client's settings.
SECURITY_ENV = {
    "security.protocol": "KAFSCALE_MATRIX_SECURITY_PROTOCOL",
    "sasl.mechanisms": "KAFSCALE_MATRIX_SASL_MECHANISM",
    "sasl.username": "KAFSCALE_MATRIX_SASL_USERNAME",
    "sasl.password": "KAFSCALE_MATRIX_SASL_PASSWORD",
    "ssl.ca.location": "KAFSCALE_MATRIX_SSL_CA_FILE",
    "ssl.certificate.location": "KAFSCALE_MATRIX_SSL_CERT_FILE",
    "ssl.key.location": "KAFSCALE_MATRIX_SSL_KEY_FILE",
}


def security() -> dict[str, str]:
    """The security settings the environment asks for, by librdkafka property name."""
    return {prop: os.environ[env] for prop, env in SECURITY_ENV.items() if os.environ.get(env)}


class CellFailure(Exception):
    """A step's check failed; the message says what was expected and what came."""


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("bootstrap", help="HOST:PORT of a broker")
    parser.add_argument("topic", help="a fresh topic name; the program creates and deletes it")
    parser.add_argument("group", help="a fresh consumer group id")
    parser.add_argument("partitions", type=int)
    parser.add_argument("count", type=int, help="records produced uncompressed")
    parser.add_argument("compressed_count", type=int, help="records produced per other codec")
    parser.add_argument("--deadline-s", type=float, default=DEFAULT_DEADLINE_S,
                        help="the whole scenario gives up after this (default %(default)s)")
    args = parser.parse_args()
    if args.partitions < 1 or args.count < 1 or args.compressed_count < 1:
        parser.error("partitions and counts must be at least 1")
    return args


class Plan:
    """Which record numbers each supported codec produces."""

    def __init__(self, codecs, count: int, compressed_count: int):
        self.ranges: dict[str, range] = {}
        start = 0
        for codec in codecs:
            n = count if codec == "none" else compressed_count
            self.ranges[codec] = range(start, start + n)
            start += n
        self.total = start

    def codec_of(self, j: int) -> str:
        for codec, r in self.ranges.items():
            if j in r:
                return codec
        return "?"


class Cells:
    """Runs the steps and prints one JSON line per cell; `finish` prints the summary."""

    def __init__(self, client: str):
        self.client = client
        self.results: dict[str, dict] = {}

    def _emit(self, cell: str, status: str, ms: int, detail: str = "") -> None:
        line = {"cell": cell, "status": status, "ms": ms}
        if detail:
            line["detail"] = detail[:DETAIL_CHARS_MAX]
        self.results[cell] = line
        print(json.dumps(line), flush=True)
        if status == "fail":
            print(f"{self.client} {cell}: {detail}", file=sys.stderr, flush=True)

    def run(self, cell: str, step):
        """Runs `step()`; an exception fails the cell. Returns the step's value or None."""
        start = time.monotonic()
        try:
            value = step()
        except Exception as err:  # noqa: BLE001 - every failure becomes the cell's detail
            detail = str(err) if isinstance(err, CellFailure) else f"{type(err).__name__}: {err}"
            self._emit(cell, "fail", int((time.monotonic() - start) * 1000), detail)
            return None
        self._emit(cell, "pass", int((time.monotonic() - start) * 1000))
        return value

    def not_applicable(self, cell: str, reason: str) -> None:
        self._emit(cell, "n/a", 0, reason)

    def passed(self, cell: str) -> bool:
        return self.results.get(cell, {}).get("status") == "pass"

    def finish(self, version: str) -> int:
        for cell in CELLS:
            if cell not in self.results:
                self._emit(cell, "fail", 0, "the program never ran this step")
        ok = all(r["status"] != "fail" for r in self.results.values())
        print(json.dumps({"client": self.client, "version": version, "ok": ok}), flush=True)
        return 0 if ok else 1


def verifier_problems(verifier: Verifier, plan: Plan) -> str:
    """The verifier's findings as one detail string, naming the codec of a missing range."""
    verifier.finish()
    if verifier.ok():
        return ""
    shown = "; ".join(verifier.errors[:ERRORS_SHOWN_MAX // 4])
    missing = [j for j in range(plan.total) if not verifier.seen[j]]
    by_codec: dict[str, int] = {}
    for j in missing:
        by_codec[plan.codec_of(j)] = by_codec.get(plan.codec_of(j), 0) + 1
    where = f" (missing by codec: {by_codec})" if by_codec else ""
    return f"{verifier.error_count} problems{where}: {shown}"


def decode_assignment(data: bytes) -> dict[str, list[int]]:
    """Decodes a consumer-protocol MemberAssignment (KIP-62 layout, any version)."""
    if not data:
        return {}
    pos = 2  # version
    (topics,) = struct.unpack_from(">i", data, pos)
    pos += 4
    out: dict[str, list[int]] = {}
    for _ in range(max(0, topics)):
        (length,) = struct.unpack_from(">h", data, pos)
        pos += 2
        name = data[pos:pos + length].decode()
        pos += length
        (count,) = struct.unpack_from(">i", data, pos)
        pos += 4
        out[name] = sorted(struct.unpack_from(f">{count}i", data, pos))
        pos += 4 * count
    return out


def check_group(state: str, members: list, topic: str, partitions: int,
                protocol_type: str | None = "consumer") -> None:
    """Checks a described group: Stable, one member, which owns every partition of `topic`.
    `members` holds one assignment per member ({topic: [partitions]}, or None when the client
    does not decode it). Raises CellFailure naming what differs."""
    normalized = str(state).split(".")[-1].replace("_", "").lower()
    if normalized != "stable":
        raise CellFailure(f'group state is "{state}", want "Stable" while the consumer is in it')
    if protocol_type is not None and protocol_type != "consumer":
        raise CellFailure(f'protocol type is "{protocol_type}", want "consumer"')
    if len(members) != 1:
        raise CellFailure(f"group has {len(members)} members, want 1")
    assignment = members[0]
    if assignment is not None:
        want = {topic: list(range(partitions))}
        got = {t: sorted(ps) for t, ps in assignment.items()}
        if got != want:
            raise CellFailure(f"member assignment is {got}, want {want}")


def check_committed(committed: dict[int, int], ends: dict[int, int]) -> None:
    """Committed offsets must equal every partition's end offset."""
    if committed != ends:
        raise CellFailure(f"committed offsets {committed} differ from end offsets {ends}")
