"""Round trip through kcat (Debian's, on librdkafka): kcat has no admin API, so the topic is
created with confluent-kafka's AdminClient; then `kcat -P` produces from stdin (acks=all, the
default partitioner) and `kcat -C -e` reads every partition from the beginning (no group).

kcat's -H headers are the same for every record of a run, so records carry h1="kcat", h2="x"
here instead of h1="<i>"; keys come per line through `-K:`.

Usage: python kcat_roundtrip.py BOOTSTRAP TOPIC PARTITIONS COUNT CODEC [--deadline-s S]
Environment: KCAT (default "kcat").
"""

import os
import subprocess
import sys
import tempfile
import time

from confluent_roundtrip import create_topic
from roundtrip_common import Deadline, Verifier, key_of, ms_since, parse_args, report, value_of

CLIENT = "kcat"
KCAT_HEADERS = [("h1", b"kcat"), ("h2", b"x")]
# Lines of kcat stderr kept for error messages.
STDERR_LINES_MAX = 20


def kcat_headers(_i: int) -> list[tuple[str, bytes]]:
    return KCAT_HEADERS


def tail(text: str) -> str:
    return " | ".join(text.strip().splitlines()[-STDERR_LINES_MAX:])


def produce(kcat: str, args, deadline: Deadline, errors: list) -> None:
    command = [kcat, "-P", "-b", args.bootstrap, "-t", args.topic, "-K:",
               "-X", "acks=all", "-X", f"compression.codec={args.compression}",
               "-X", "linger.ms=5"]
    for name, value in KCAT_HEADERS:
        command += ["-H", f"{name}={value.decode()}"]
    with tempfile.TemporaryFile() as lines:
        for i in range(args.count):
            lines.write(key_of(i) + b":" + value_of(i) + b"\n")
        lines.seek(0)
        done = subprocess.run(command, stdin=lines, capture_output=True,
                              timeout=max(1.0, deadline.left()))
    stderr = done.stderr.decode(errors="replace")
    if done.returncode != 0 or "fail" in stderr.lower() or "error" in stderr.lower():
        errors.append(f"kcat -P exited {done.returncode}: {tail(stderr)}")


def consume(kcat: str, args, deadline: Deadline, verifier: Verifier) -> None:
    command = [kcat, "-C", "-b", args.bootstrap, "-t", args.topic, "-o", "beginning", "-e",
               "-q", "-f", "%p\\t%o\\t%k\\t%h\\t%s\\n"]
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=max(1.0, deadline.left()))
    if done.returncode != 0:
        verifier.error(f"kcat -C exited {done.returncode}: "
                       f"{tail(done.stderr.decode(errors='replace'))}")
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


def main() -> int:
    args = parse_args(__doc__)
    kcat = os.environ.get("KCAT", "kcat")
    deadline = Deadline(args.deadline_s)
    fields = {"client": CLIENT, "topic": args.topic, "codec": args.compression,
              "count": args.count, "partitions": args.partitions}
    verifier = Verifier(args.count, args.partitions, expected_headers=kcat_headers)
    errors: list[str] = []
    try:
        start = time.monotonic()
        create_topic(args.bootstrap, args.topic, args.partitions, deadline)
        fields["create_ms"] = ms_since(start)
        start = time.monotonic()
        produce(kcat, args, deadline, errors)
        fields["produce_ms"] = ms_since(start)
        start = time.monotonic()
        consume(kcat, args, deadline, verifier)
        fields["consume_ms"] = ms_since(start)
        verifier.finish()
    except Exception as e:  # Reported in the summary, with what was seen so far.
        errors.append(f"{type(e).__name__}: {e}")
    return report(fields, verifier, errors)


if __name__ == "__main__":
    sys.exit(main())
