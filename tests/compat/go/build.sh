#!/usr/bin/env bash
# Builds the Go compat programs (one directory per program, franz-go from the Go module proxy)
# into .tools/go-compat/. Does nothing when the sources did not change.
#   .tools/go-compat/idempotent_producer BOOTSTRAP TOPIC COUNT [--start I] [--deadline-s S]
#   .tools/go-compat/fetch_session_probe BOOTSTRAP TOPIC SECONDS on|off   (deno task bench --fetch-sessions)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
OUT="$ROOT/.tools/go-compat"
PROGRAMS=(idempotent_producer fetch_session_probe)

die() {
  echo "go-compat: $*" >&2
  exit 1
}

command -v go >/dev/null || die "\"go\" is not installed; install Go 1.26 or later."
want="$(cd "$HERE" && cat go.mod go.sum ./*/*.go | sha256sum | cut -d' ' -f1)"
if [[ -f "$OUT/.stamp" && "$(cat "$OUT/.stamp")" == "$want" ]]; then exit 0; fi
mkdir -p "$OUT"
for program in "${PROGRAMS[@]}"; do
  echo "go-compat: building $program" >&2
  (cd "$HERE" && go build -mod=readonly -o "$OUT/$program" "./$program") ||
    die "go build of \"$program\" failed; see the output above."
done
echo "$want" >"$OUT/.stamp"
