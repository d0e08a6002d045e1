#!/usr/bin/env bash
# The whole test run, as CI does it (`bash .ci/run` execs this). Installs what is missing
# (scripts/setup.sh), then runs every check and suite in order, keeps going after a failure, and
# always ends with exactly one summary line:
#
#   tests: N passed, N failed
#
# exiting non-zero when anything failed.
#
# How things are counted:
#   setup                     counts only when it fails (1 failed)
#   deno task gen:check       1 test
#   deno fmt --check          1 test
#   deno lint                 1 test
#   deno check                1 test (type-checks every .ts file in the workspace)
#   deno test                 test cases plus steps, read from Deno's summary line
#                             `ok | 12 passed (30 steps) | 0 failed` -> 42 passed. A failing step
#                             also fails its parent test, so one broken step counts 2 failed.
#                             It runs with --no-check: type errors are already counted by
#                             `deno check`, and one bad file must not hide every other test.
#                             No summary line (crash, timeout) counts 1 failed on top.
#   extra suites              each EXTRA_SUITES command must print a line `N passed, N failed`
#                             (the last one wins); none, or a non-zero exit with 0 failed,
#                             counts 1 failed on top.
#
# Environment:
#   KAFSCALE_TEST_FILTER       passed to `deno test --filter` (run a subset by name)
#   KAFSCALE_TEST_TIMEOUT_S    limit for `deno test` as a whole (default 1800)
#   KAFSCALE_SKIP_SETUP=1      do not run scripts/setup.sh
# Logs: .tools/logs/*.log (the deno test output is also shown as it runs).
set -uo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$KAFSCALE_ROOT" || exit 1

# Hook for non-Deno runners added by later issues (Go, Java, Python compat suites...). One
# entry per suite, "name|command"; the command runs from the repo root under bash and must print
# `N passed, N failed` on a line of its own.
EXTRA_SUITES=(
  # librdkafka's own test suite, the CI subset of tests/compat/librdkafka/allowlist.txt (a few
  # minutes; the build is cached in ~/.cache/kafscale by scripts/setup_compat.sh).
  "librdkafka|deno run -A scripts/compat.ts --librdkafka --librdkafka-ci"
)

TEST_TIMEOUT_S="${KAFSCALE_TEST_TIMEOUT_S:-1800}"
LOG_DIR="$KAFSCALE_TOOLS/logs"
mkdir -p "$LOG_DIR"

PASSED=0
FAILED=0
FAILURES=()

pass() {
  PASSED=$((PASSED + $1))
}

fail() {
  FAILED=$((FAILED + $1))
  FAILURES+=("$2")
}

strip_ansi() { sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g'; }

# Runs one command that counts as a single test; its output goes to the console.
check_step() {
  local name="$1"
  shift
  echo "==> $name"
  local start=$SECONDS rc=0
  "$@" || rc=$?
  if ((rc == 0)); then
    pass 1
    echo "PASS $name ($((SECONDS - start))s)"
  else
    fail 1 "$name (exit $rc)"
    echo "FAIL $name (exit $rc, $((SECONDS - start))s)"
  fi
}

run_setup() {
  if [[ "${KAFSCALE_SKIP_SETUP:-}" == "1" ]]; then return; fi
  echo "==> setup"
  local rc=0
  bash scripts/setup.sh || rc=$?
  if ((rc != 0)); then
    fail 1 "setup (exit $rc)"
    echo "FAIL setup (exit $rc); running the rest anyway"
  fi
}

# Reads Deno's summary line, e.g. `FAILED | 2 passed (2 steps) | 1 failed (1 step) | 1 ignored`.
run_deno_tests() {
  local log="$LOG_DIR/deno_test.log"
  local args=(test -A --no-check --parallel)
  if [[ -n "${KAFSCALE_TEST_FILTER:-}" ]]; then args+=(--filter "$KAFSCALE_TEST_FILTER"); fi
  args+=(tests/)
  echo "==> deno ${args[*]} (log: ${log#"$KAFSCALE_ROOT/"})"
  local start=$SECONDS rc=0
  timeout --kill-after=30 "$TEST_TIMEOUT_S" deno "${args[@]}" 2>&1 </dev/null | tee "$log"
  rc="${PIPESTATUS[0]}"
  local summary
  summary="$(strip_ansi <"$log" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1)"
  if [[ -z "$summary" ]]; then
    if ((rc == 124)); then
      fail 1 "deno test (timed out after ${TEST_TIMEOUT_S}s)"
    else
      fail 1 "deno test (exit $rc, no summary line)"
    fi
    echo "FAIL deno test: no summary line (exit $rc, $((SECONDS - start))s)"
    return
  fi
  local re='([0-9]+) passed( \(([0-9]+) steps?\))? \| ([0-9]+) failed( \(([0-9]+) steps?\))?'
  if [[ ! "$summary" =~ $re ]]; then
    fail 1 "deno test (unreadable summary: $summary)"
    return
  fi
  local p=$((BASH_REMATCH[1] + ${BASH_REMATCH[3]:-0}))
  local f=$((BASH_REMATCH[4] + ${BASH_REMATCH[6]:-0}))
  pass "$p"
  if ((f > 0)); then fail "$f" "deno test ($f failed, see $log)"; fi
  if ((rc != 0 && f == 0)); then fail 1 "deno test (exit $rc with 0 failed)"; fi
  echo "deno test: $p passed, $f failed (tests + steps, exit $rc, $((SECONDS - start))s)"
}

run_extra_suite() {
  local name="${1%%|*}" cmd="${1#*|}"
  local log="$LOG_DIR/suite_${name//[^A-Za-z0-9_]/_}.log"
  echo "==> $name: $cmd"
  local rc=0
  bash -c "$cmd" 2>&1 </dev/null | tee "$log"
  rc="${PIPESTATUS[0]}"
  local line
  line="$(strip_ansi <"$log" | grep -E '(^|[^0-9])[0-9]+ passed, [0-9]+ failed' | tail -n 1)"
  if [[ "$line" =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    local p="${BASH_REMATCH[1]}" f="${BASH_REMATCH[2]}"
    pass "$p"
    if ((f > 0)); then fail "$f" "$name ($f failed)"; fi
    if ((rc != 0 && f == 0)); then fail 1 "$name (exit $rc with 0 failed)"; fi
  else
    fail 1 "$name (exit $rc, no \"N passed, N failed\" line)"
  fi
}

run_setup
check_step "deno task gen:check" deno task gen:check
check_step "deno fmt --check" deno fmt --check
check_step "deno lint" deno lint
check_step "deno check" deno check
run_deno_tests
for suite in "${EXTRA_SUITES[@]}"; do run_extra_suite "$suite"; done

if ((${#FAILURES[@]} > 0)); then
  echo "Failed:"
  for failure in "${FAILURES[@]}"; do echo "  - $failure"; done
fi
echo "tests: $PASSED passed, $FAILED failed"
((FAILED == 0))
