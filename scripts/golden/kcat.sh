#!/usr/bin/env bash
# Golden capture client: kcat (librdkafka). Run by scripts/capture_golden.ts, not by tests.
# Usage: kcat.sh BOOTSTRAP TOPIC   (env GOLDEN_APIS: "all" or comma-separated API keys served)
# Prints "GOLDEN step NAME ok|fail: ...|skip: ..." per step; a failing step does not stop the run.
set -uo pipefail
B="$1"
T="$2"
APIS="${GOLDEN_APIS:-all}"
STEP_TIMEOUT_S=30

# step NAME "API KEYS NEEDED" COMMAND...
step() {
  local name="$1" needs="$2"
  shift 2
  if [[ "$APIS" != all ]]; then
    for k in $needs; do
      if [[ ",$APIS," != *",$k,"* ]]; then
        echo "GOLDEN step $name skip: the broker does not serve API key $k"
        return
      fi
    done
  fi
  local out
  if out="$(timeout "$STEP_TIMEOUT_S" bash -c '"$@"' step "$@" 2>&1)"; then
    echo "GOLDEN step $name ok"
  else
    echo "GOLDEN step $name fail: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
  fi
}

produce() { # CODEC
  printf 'k1:v1-%s\nk2:v2-%s\n:v3 no key\n' "$1" "$1" |
    kcat -b "$B" -P -t "$T" -K: -z "$1" -X acks=all -H h1=x -H h2=yy
}

produce_big() { # one record of 6000 bytes, larger than the writer's zero-copy threshold
  head -c 6000 /dev/zero | tr '\0' 'z' | kcat -b "$B" -P -t "$T" -X acks=all -X linger.ms=0
}

produce_acks1() {
  printf 'a\nb\n' | kcat -b "$B" -P -t "$T" -X acks=1 -z none
}

export B T
export -f produce produce_big produce_acks1

step metadata "3" kcat -b "$B" -L
step produce-none "0 3" produce none
step produce-gzip "0 3" produce gzip
step produce-snappy "0 3" produce snappy
step produce-lz4 "0 3" produce lz4
step produce-zstd "0 3" produce zstd
step produce-acks1 "0 3" produce_acks1
step produce-big "0 3" produce_big
step metadata-topic "3" kcat -b "$B" -L -t "$T"
step consume "1 2 3" kcat -b "$B" -C -t "$T" -o beginning -e -q
step consume-tail "1 2 3" kcat -b "$B" -C -t "$T" -o -2 -e -q
step query-offsets "2 3" kcat -b "$B" -Q -t "$T:0:0"
# SASL against a plaintext listener: the handshake request is what we want; the step may fail.
step sasl-handshake "17" kcat -b "$B" -L -m 5 -X security.protocol=SASL_PLAINTEXT \
  -X sasl.mechanisms=PLAIN -X sasl.username=golden -X sasl.password=golden
step group-consume "1 2 3 8 9 10 11 12 13 14" \
  kcat -b "$B" -G "$T-group" -o beginning -e -q -X enable.auto.commit=true "$T"
