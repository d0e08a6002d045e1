# Sourced, not run: `source scripts/env.sh`. Puts the project's pinned tools on PATH and exports
# where the test clients live. Safe to source more than once and before scripts/setup.sh has
# installed anything (the paths are set; setup.sh fills them).
#
# Exports:
#   KAFSCALE_ROOT          repo root
#   KAFSCALE_DENO_VERSION  the pinned Deno version
#   KAFSCALE_TOOLS         .tools/ (git-ignored install dir)
#   KAFSCALE_VENV          Python venv with the PyPI clients (tests/compat/python/requirements.txt)
#   KAFSCALE_PYTHON        that venv's python
#   KAFSCALE_SYSTEM_PYTHON Debian's /usr/bin/python3 (sees Debian's python3-confluent-kafka)
#   KAFSCALE_NODE_DIR      tests/compat/node (node_modules with kafkajs, @platformatic/kafka)

KAFSCALE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFSCALE_DENO_VERSION="2.9.6"
KAFSCALE_TOOLS="$KAFSCALE_ROOT/.tools"
KAFSCALE_VENV="$KAFSCALE_TOOLS/venv"
KAFSCALE_PYTHON="$KAFSCALE_VENV/bin/python"
KAFSCALE_SYSTEM_PYTHON="/usr/bin/python3"
KAFSCALE_NODE_DIR="$KAFSCALE_ROOT/tests/compat/node"
export KAFSCALE_ROOT KAFSCALE_DENO_VERSION KAFSCALE_TOOLS KAFSCALE_VENV KAFSCALE_PYTHON
export KAFSCALE_SYSTEM_PYTHON KAFSCALE_NODE_DIR

# Deno: keep the one on PATH when it is the pinned version, else use (or later get, from
# scripts/setup.sh) the npm-installed copy in .tools/deno.
kafscale_deno_bin="$KAFSCALE_TOOLS/deno/node_modules/.bin"
if [[ "$(deno --version 2>/dev/null | head -n 1)" != "deno $KAFSCALE_DENO_VERSION "* ]]; then
  case ":$PATH:" in
    *":$kafscale_deno_bin:"*) ;;
    *) PATH="$kafscale_deno_bin:$PATH" ;;
  esac
  export PATH
  hash -r 2>/dev/null || true
fi
unset kafscale_deno_bin

# No telemetry or update checks in tests and CI.
export DENO_NO_UPDATE_CHECK=1
export DENO_NO_PROMPT=1
