"""Shared by the Python round-trip programs: the record shape, argument parsing and the checker.

Every round-trip program produces records i = 0..count-1 with key "k-<i>", value "v-<i>-"
padded with "x" to VALUE_BYTES bytes and headers h1="<i>", h2="x", then consumes the topic and
hands every record to Verifier.add(). The Deno test reads the last stdout line, a JSON summary.
"""

import argparse
import json
import sys
import time

VALUE_BYTES = 100
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
# Problems listed in full before the rest are only counted.
ERRORS_SHOWN_MAX = 20
DEFAULT_DEADLINE_S = 120.0


def key_of(i: int) -> bytes:
    return f"k-{i}".encode()


def value_of(i: int) -> bytes:
    head = f"v-{i}-"
    return (head + "x" * max(0, VALUE_BYTES - len(head))).encode()


def headers_of(i: int) -> list[tuple[str, bytes]]:
    return [("h1", str(i).encode()), ("h2", b"x")]


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("bootstrap", help="HOST:PORT of a broker")
    parser.add_argument("topic", help="a fresh topic name; the program creates it")
    parser.add_argument("partitions", type=int, help="partition count of the new topic")
    parser.add_argument("count", type=int, help="records to produce and read back")
    parser.add_argument("compression", choices=CODECS)
    parser.add_argument(
        "--deadline-s",
        type=float,
        default=DEFAULT_DEADLINE_S,
        help="give up when produce + consume take longer (default %(default)s)",
    )
    args = parser.parse_args()
    if args.partitions < 1 or args.count < 1:
        parser.error("partitions and count must be at least 1")
    return args


class Deadline:
    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds
        self.seconds = seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.left() <= 0


class Verifier:
    """Checks consumed records against what was produced: every i exactly once, exact key,
    value and headers, offsets per partition contiguous from 0."""

    def __init__(self, count: int, partitions: int, expected_headers=headers_of):
        self.count = count
        self.partitions = partitions
        self.expected_headers = expected_headers
        self.seen = bytearray(count)
        self.unique = 0
        self.records = 0
        self.offsets: dict[int, list[int]] = {}
        self.errors: list[str] = []
        self.error_count = 0

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < ERRORS_SHOWN_MAX:
            self.errors.append(message)

    def add(self, partition, offset, key, value, headers) -> None:
        self.records += 1
        where = f"partition {partition} offset {offset}"
        if not isinstance(partition, int) or not 0 <= partition < self.partitions:
            self.error(f"{where}: partition out of range 0..{self.partitions - 1}")
            return
        self.offsets.setdefault(partition, []).append(offset)
        text = key.decode(errors="replace") if isinstance(key, (bytes, bytearray)) else None
        if text is None or not text.startswith("k-") or not text[2:].isdigit():
            self.error(f"{where}: unexpected key {key!r}")
            return
        i = int(text[2:])
        if i >= self.count:
            self.error(f"{where}: key {text!r} beyond count {self.count}")
            return
        if self.seen[i]:
            self.error(f"{where}: duplicate record {text!r}")
            return
        self.seen[i] = 1
        self.unique += 1
        if value != value_of(i):
            self.error(f"{where}: value of {text!r} is {bytes(value or b'')[:40]!r}...")
        got_headers = [(k, bytes(v) if v is not None else None) for k, v in (headers or [])]
        want_headers = self.expected_headers(i)
        if got_headers != want_headers:
            self.error(f"{where}: headers of {text!r} are {got_headers!r}, want {want_headers!r}")

    def finish(self) -> None:
        missing = self.count - self.unique
        if missing > 0:
            first = [i for i in range(self.count) if not self.seen[i]][:10]
            self.error(f"{missing} of {self.count} records missing, first: {first}")
        for partition, offsets in sorted(self.offsets.items()):
            ordered = sorted(offsets)
            if ordered != list(range(len(ordered))):
                gap = next(
                    (j for j, o in enumerate(ordered) if o != j), len(ordered)
                )
                self.error(
                    f"partition {partition}: offsets are not contiguous from 0 "
                    f"(position {gap} holds {ordered[gap] if gap < len(ordered) else None}, "
                    f"{len(ordered)} records, max offset {ordered[-1]})"
                )
        if self.count >= 100 * self.partitions and len(self.offsets) < self.partitions:
            empty = [p for p in range(self.partitions) if p not in self.offsets]
            self.error(f"partitions {empty} got no records; the partitioner did not spread keys")

    def ok(self) -> bool:
        return self.error_count == 0


def report(
    fields: dict, verifier: Verifier | None, extra_errors=(), extra_error_count: int | None = None
) -> int:
    """Prints the first problems on stderr and the JSON summary as the last stdout line; returns
    the exit code. `extra_error_count` counts problems beyond those listed in `extra_errors`."""
    errors = list(extra_errors)
    error_count = len(errors) if extra_error_count is None else extra_error_count
    if verifier is not None:
        errors += verifier.errors
        error_count += verifier.error_count
        fields.update(
            consumed=verifier.records,
            unique=verifier.unique,
            partitions_used=len(verifier.offsets),
        )
    shown = errors[:ERRORS_SHOWN_MAX]
    fields.update(ok=error_count == 0, error_count=error_count, errors=shown)
    client = fields.get("client", "client")
    for e in shown:
        print(f"{client}: {e}", file=sys.stderr)
    if error_count > len(shown):
        print(f"{client}: ... and {error_count - len(shown)} more problems", file=sys.stderr)
    print(json.dumps(fields), flush=True)
    return 0 if error_count == 0 else 1


def ms_since(start: float) -> int:
    return int((time.monotonic() - start) * 1000)
