#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian 12 machine (run as root),
# and nothing when it is already there. Idempotent; prints one line per thing it installs.
#
#   Deno (pinned)        npm install --prefix .tools/deno deno@$KAFSCALE_DENO_VERSION, unless the
#                        deno on PATH is already that version
#   Debian packages      kcat, librdkafka-dev, python3-venv, etcd-server, chromium (console test),
#                        python3-confluent-kafka (when Debian has it)
#   Python venv          .tools/venv with tests/compat/python/requirements.txt
#   Node packages        tests/compat/node (npm ci from the committed package-lock.json)
#   S3 + etcd servers    scripts/setup_backends.sh (MinIO and grpcurl via go install, etcd-server)
#
# Usage: bash scripts/setup.sh        (scripts/test.sh runs it first)
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$KAFSCALE_ROOT"

APT_PACKAGES=(kcat librdkafka-dev python3-venv etcd-server chromium)
APT_OPTIONAL_PACKAGES=(python3-confluent-kafka)
REQUIREMENTS="$KAFSCALE_ROOT/tests/compat/python/requirements.txt"

log() { echo "setup: $*" >&2; }
die() {
  echo "setup: $*" >&2
  exit 1
}

# Hash of a file, used as a stamp so an install reruns only when its inputs change.
stamp_of() { sha256sum "$1" | cut -d' ' -f1; }

install_deno() {
  if [[ "$(deno --version 2>/dev/null | head -n 1)" == "deno $KAFSCALE_DENO_VERSION "* ]]; then
    return
  fi
  command -v npm >/dev/null || die "Cannot install Deno: \"npm\" is not on PATH; install Node.js."
  log "installing deno@$KAFSCALE_DENO_VERSION into .tools/deno (npm)"
  npm install --prefix "$KAFSCALE_TOOLS/deno" --no-audit --no-fund --loglevel=error \
    "deno@$KAFSCALE_DENO_VERSION" >/dev/null
  hash -r
  [[ "$(deno --version 2>/dev/null | head -n 1)" == "deno $KAFSCALE_DENO_VERSION "* ]] ||
    die "Deno $KAFSCALE_DENO_VERSION is not on PATH after installing it; check .tools/deno."
}

apt_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

apt_available() {
  local candidate
  candidate="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }')"
  [[ -n "$candidate" && "$candidate" != "(none)" ]]
}

install_apt_packages() {
  local missing=() optional_missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    apt_installed "$pkg" || missing+=("$pkg")
  done
  for pkg in "${APT_OPTIONAL_PACKAGES[@]}"; do
    apt_installed "$pkg" || optional_missing+=("$pkg")
  done
  if ((${#missing[@]} == 0 && ${#optional_missing[@]} == 0)); then return; fi
  command -v apt-get >/dev/null || die "Cannot install ${missing[*]}: \"apt-get\" is not found."
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "Cannot install ${missing[*]}: run setup as root."
    sudo=(sudo -n)
  fi
  # Only ask for an index refresh when something is missing, and only once.
  log "apt-get update"
  "${sudo[@]}" apt-get update -qq >/dev/null
  for pkg in "${optional_missing[@]}"; do
    if apt_available "$pkg"; then
      missing+=("$pkg")
    else
      log "skipping $pkg: Debian has no candidate for it"
    fi
  done
  if ((${#missing[@]} == 0)); then return; fi
  log "apt-get install ${missing[*]}"
  # Keep package scripts from starting services (etcd-server ships one); tests start their own.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    created_policy=1
  fi
  local rc=0 apt_log
  apt_log="$(mktemp)"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >"$apt_log" 2>&1 || rc=$?
  if ((created_policy)); then "${sudo[@]}" rm -f "$policy"; fi
  if ((rc != 0)); then
    tail -n 40 "$apt_log" >&2
    rm -f "$apt_log"
    die "apt-get install ${missing[*]} failed (exit $rc); see its output above."
  fi
  rm -f "$apt_log"
}

install_python_venv() {
  local stamp_file="$KAFSCALE_VENV/.requirements.sha256" want
  want="$(stamp_of "$REQUIREMENTS")"
  if [[ -x "$KAFSCALE_PYTHON" && -f "$stamp_file" && "$(cat "$stamp_file")" == "$want" ]]; then
    return
  fi
  if [[ ! -x "$KAFSCALE_PYTHON" ]]; then
    local base="$KAFSCALE_SYSTEM_PYTHON"
    [[ -x "$base" ]] || base="$(command -v python3 || true)"
    [[ -n "$base" ]] || die "Cannot create the Python venv: no python3 found; install python3."
    log "creating Python venv .tools/venv ($("$base" --version 2>&1))"
    rm -rf "$KAFSCALE_VENV"
    "$base" -m venv "$KAFSCALE_VENV" ||
      die "\"$base -m venv\" failed; install python3-venv (apt-get install -y python3-venv)."
  fi
  log "pip install -r tests/compat/python/requirements.txt"
  "$KAFSCALE_PYTHON" -m pip install -q --disable-pip-version-check --no-input \
    -r "$REQUIREMENTS" || die "pip install -r \"$REQUIREMENTS\" failed; see the pip output above."
  echo "$want" >"$stamp_file"
}

install_node_packages() {
  local lock="$KAFSCALE_NODE_DIR/package-lock.json"
  local stamp_file="$KAFSCALE_NODE_DIR/node_modules/.kafscale-lock.sha256" want
  want="$(stamp_of "$lock")"
  if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$want" ]]; then return; fi
  command -v npm >/dev/null || die "Cannot install the Node clients: \"npm\" is not on PATH."
  log "npm ci in tests/compat/node"
  (cd "$KAFSCALE_NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
    die "npm ci in \"$KAFSCALE_NODE_DIR\" failed; see the npm output above."
  echo "$want" >"$stamp_file"
}

install_deno
install_apt_packages
install_python_venv
install_node_packages
bash "$KAFSCALE_ROOT/scripts/setup_compat.sh" # the matrix's Go/Java programs, Kafka CLI tools
# MinIO (built with go install) and etcd for the S3/etcd suites.
bash "$KAFSCALE_ROOT/scripts/setup_backends.sh"
