#!/usr/bin/env bash
# Installs the real backends the tests start on loopback (tests/support/backends.ts), and
# nothing when they are already there. Idempotent; prints one line per thing it installs and
# nothing when all is in place.
#
#   etcd    Debian's etcd-server (/usr/bin/etcd), via apt-get (run as root, or with sudo)
#   MinIO   built from source with `go install github.com/minio/minio@$MINIO_VERSION` into
#           .tools/bin/minio (needs Go >= 1.24 on PATH or in /usr/local/go/bin; the first build
#           takes a few minutes, later runs reuse the binary while the pinned version is unchanged)
#   grpcurl `go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION` into
#           .tools/bin/grpcurl: the gRPC client that is not ours, which the control-service
#           tests (tests/control, tests/e2e/distributed_drain_test.ts) call (about a minute)
#
# MinIO publishes only RELEASE.* tags, which the Go module proxy does not resolve, so the pin is
# the proxy's pseudo-version of a master commit; MinIO from that commit enforces conditional
# writes (PUT with If-None-Match: *), which tests/storage/s3_object_store_test.ts checks.
#
# Usage: bash scripts/setup_backends.sh     (scripts/setup.sh runs it)
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

MINIO_MODULE="github.com/minio/minio"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
MINIO_BIN="$KAFSCALE_TOOLS/bin/minio"
MINIO_STAMP="$KAFSCALE_TOOLS/bin/.minio.version"
ETCD_BIN="/usr/bin/etcd"
GRPCURL_MODULE="github.com/fullstorydev/grpcurl/cmd/grpcurl"
GRPCURL_VERSION="v1.9.3"
GRPCURL_BIN="$KAFSCALE_TOOLS/bin/grpcurl"
GRPCURL_STAMP="$KAFSCALE_TOOLS/bin/.grpcurl.version"

log() { echo "setup_backends: $*" >&2; }
die() {
  echo "setup_backends: $*" >&2
  exit 1
}

install_etcd() {
  if [[ -x "$ETCD_BIN" ]]; then return; fi
  command -v apt-get >/dev/null || die "Cannot install etcd: \"apt-get\" is not found; install etcd so that $ETCD_BIN exists."
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "Cannot install etcd-server: run as root."
    sudo=(sudo -n)
  fi
  # Refresh the package lists only when apt cannot see the package yet.
  if ! apt-cache policy etcd-server 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    log "apt-get update"
    "${sudo[@]}" apt-get update -qq >/dev/null
  fi
  log "apt-get install etcd-server"
  # Keep the package's service from starting; tests start their own etcd.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    created_policy=1
  fi
  local rc=0 apt_log
  apt_log="$(mktemp)"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    etcd-server >"$apt_log" 2>&1 || rc=$?
  if ((created_policy)); then "${sudo[@]}" rm -f "$policy"; fi
  if ((rc != 0)); then
    tail -n 40 "$apt_log" >&2
    rm -f "$apt_log"
    die "apt-get install etcd-server failed (exit $rc); see its output above."
  fi
  rm -f "$apt_log"
  [[ -x "$ETCD_BIN" ]] || die "etcd-server is installed but $ETCD_BIN is missing."
}

find_go() {
  if command -v go >/dev/null; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    echo /usr/local/go/bin/go
  fi
}

install_minio() {
  if [[ -x "$MINIO_BIN" && -f "$MINIO_STAMP" && "$(cat "$MINIO_STAMP")" == "$MINIO_VERSION" ]]; then
    return
  fi
  local go
  go="$(find_go)"
  [[ -n "$go" ]] || die "Cannot build MinIO: Go is not installed; install Go >= 1.24 (https://go.dev/dl) and rerun."
  log "building MinIO $MINIO_VERSION into .tools/bin/minio (go install; takes a few minutes)"
  mkdir -p "$KAFSCALE_TOOLS/bin"
  local build_log rc=0
  build_log="$(mktemp)"
  # Outside any module, so the repo's own Go files (tests/compat/go) do not interfere.
  (cd / && GOBIN="$KAFSCALE_TOOLS/bin" GOFLAGS=-buildvcs=false \
    "$go" install "$MINIO_MODULE@$MINIO_VERSION") >"$build_log" 2>&1 || rc=$?
  if ((rc != 0)); then
    tail -n 40 "$build_log" >&2
    rm -f "$build_log"
    die "go install $MINIO_MODULE@$MINIO_VERSION failed (exit $rc); see its output above."
  fi
  rm -f "$build_log"
  "$MINIO_BIN" --version >/dev/null 2>&1 || die "The MinIO binary at $MINIO_BIN does not run."
  echo "$MINIO_VERSION" >"$MINIO_STAMP"
}

install_grpcurl() {
  if [[ -x "$GRPCURL_BIN" && -f "$GRPCURL_STAMP" && "$(cat "$GRPCURL_STAMP")" == "$GRPCURL_VERSION" ]]; then
    return
  fi
  local go
  go="$(find_go)"
  [[ -n "$go" ]] || die "Cannot build grpcurl: Go is not installed; install Go >= 1.24 (https://go.dev/dl) and rerun."
  log "building grpcurl $GRPCURL_VERSION into .tools/bin/grpcurl (go install)"
  mkdir -p "$KAFSCALE_TOOLS/bin"
  local build_log rc=0
  build_log="$(mktemp)"
  (cd / && GOBIN="$KAFSCALE_TOOLS/bin" GOFLAGS=-buildvcs=false \
    "$go" install "$GRPCURL_MODULE@$GRPCURL_VERSION") >"$build_log" 2>&1 || rc=$?
  if ((rc != 0)); then
    tail -n 40 "$build_log" >&2
    rm -f "$build_log"
    die "go install $GRPCURL_MODULE@$GRPCURL_VERSION failed (exit $rc); see its output above."
  fi
  rm -f "$build_log"
  "$GRPCURL_BIN" -version >/dev/null 2>&1 || die "The grpcurl binary at $GRPCURL_BIN does not run."
  echo "$GRPCURL_VERSION" >"$GRPCURL_STAMP"
}

install_etcd
install_minio
install_grpcurl
