#!/usr/bin/env bash
# Installs what the client compatibility matrix (tests/compat/matrix/) needs beyond scripts/setup.sh
# (which brings kcat, both confluent-kafka builds, kafka-python, kafkajs and @platformatic/kafka),
# and nothing when it is already there. Idempotent; prints one line per thing it installs.
#
#   JDK + Maven      openjdk-17-jdk-headless and maven from Debian, when javac or mvn is missing
#   Go programs      tests/compat/matrix/go -> .tools/compat-matrix/bin/{franz_go,sarama}
#                    (go build; franz-go and sarama from the Go module proxy, pinned in go.mod)
#   Java clients     org.apache.kafka:kafka-clients $JAVA_CLIENT_VERSIONS from Maven Central ->
#                    .tools/compat-matrix/java/libs-VERSION; MatrixClient.java compiled with javac
#                    against each -> .tools/compat-matrix/java/classes-VERSION
#   Kafka CLI tools  the jars of Apache Kafka $KAFKA_CLI_VERSION (scripts/reference_kafka.sh fetch)
#                    plus org.apache.kafka:kafka-tools -> .tools/kafka-ref/tools-VERSION
#   librdkafka tests librdkafka's own test suite (tests/compat/librdkafka), built once per release
#                    into ~/.cache/kafscale (outside the clone) from the npm package that carries
#                    its source; build-essential, zlib1g-dev, libssl-dev and rapidjson-dev from
#                    Debian if missing
#   Connect/Streams  org.apache.kafka:connect-runtime and kafka-streams $STATEFUL_KAFKA_VERSION
#                    (tests/compat/stateful/versions.env) -> .tools/compat-stateful/libs-VERSION;
#                    the test connector and Streams app compiled -> .tools/compat-stateful/classes-VERSION
#
# Versions: tests/compat/matrix/versions.env.
# Usage: bash scripts/setup_compat.sh        (scripts/setup.sh runs it)
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$KAFSCALE_ROOT"

MATRIX="$KAFSCALE_ROOT/tests/compat/matrix"
OUT="$KAFSCALE_TOOLS/compat-matrix"
# shellcheck source=tests/compat/matrix/versions.env
source "$MATRIX/versions.env"
GO_PROGRAMS=(franz_go sarama)

log() { echo "setup_compat: $*" >&2; }
die() {
  echo "setup_compat: $*" >&2
  exit 1
}

# Runs a command quietly; on failure shows the end of its output and stops with `message`.
quiet() {
  local message="$1" out rc=0
  shift
  out="$(mktemp)"
  "$@" >"$out" 2>&1 || rc=$?
  if ((rc != 0)); then
    tail -n 40 "$out" >&2
    rm -f "$out"
    die "$message (exit $rc); see the output above."
  fi
  rm -f "$out"
}

install_jdk() {
  if command -v javac >/dev/null && command -v mvn >/dev/null; then return; fi
  command -v apt-get >/dev/null || die "Cannot install a JDK and Maven: \"apt-get\" is not found."
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "Cannot install a JDK and Maven: run setup as root."
    sudo=(sudo -n)
  fi
  log "apt-get install openjdk-17-jdk-headless maven"
  quiet "apt-get update failed" "${sudo[@]}" apt-get update -qq
  quiet "apt-get install openjdk-17-jdk-headless maven failed" \
    env DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
    --no-install-recommends openjdk-17-jdk-headless maven
}

find_go() {
  if command -v go >/dev/null; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    echo /usr/local/go/bin/go
  fi
}

build_go_programs() {
  local want go
  want="$(cd "$MATRIX/go" && cat go.mod go.sum ./*/*.go | sha256sum | cut -d' ' -f1)"
  if [[ -f "$OUT/bin/.stamp" && "$(cat "$OUT/bin/.stamp")" == "$want" ]]; then return; fi
  go="$(find_go)"
  [[ -n "$go" ]] ||
    die "Cannot build the Go matrix programs: install Go >= 1.26 (https://go.dev/dl)."
  mkdir -p "$OUT/bin"
  local program
  for program in "${GO_PROGRAMS[@]}"; do
    log "building $program (go build, modules from the Go proxy)"
    quiet "go build of \"$program\" failed" \
      bash -c "cd \"$MATRIX/go\" && GOFLAGS=-buildvcs=false \"$go\" build -mod=readonly \
        -o \"$OUT/bin/$program\" ./$program"
  done
  echo "$want" >"$OUT/bin/.stamp"
}

build_java_client() {
  local version="$1" libs="$OUT/java/libs-$1" classes="$OUT/java/classes-$1" want
  if [[ ! -f "$libs/.complete" ]]; then
    log "fetching org.apache.kafka:kafka-clients:$version into ${libs#"$KAFSCALE_ROOT/"} (Maven)"
    rm -rf "$libs"
    quiet "Maven could not fetch kafka-clients \"$version\"" \
      mvn -q -B -Dstyle.color=never -f "$MATRIX/java/pom.xml" dependency:copy-dependencies \
      -Dkafka.version="$version" -DoutputDirectory="$libs"
    [[ -f "$libs/kafka-clients-$version.jar" ]] ||
      die "Maven finished but \"kafka-clients-$version.jar\" is missing in \"$libs\"."
    touch "$libs/.complete"
  fi
  want="$(cat "$MATRIX/java/pom.xml" "$MATRIX/java/MatrixClient.java" | sha256sum | cut -d' ' -f1)"
  if [[ -f "$classes/.stamp" && "$(cat "$classes/.stamp")" == "$want" ]]; then return; fi
  log "compiling MatrixClient.java against kafka-clients $version"
  rm -rf "$classes"
  mkdir -p "$classes"
  quiet "javac of MatrixClient.java against kafka-clients \"$version\" failed" \
    javac -nowarn -d "$classes" -cp "$libs/*" "$MATRIX/java/MatrixClient.java"
  echo "$want" >"$classes/.stamp"
}

# The Kafka Connect worker and Kafka Streams app of tests/e2e/connect_streams_test.ts.
build_stateful_apps() {
  local dir="$KAFSCALE_ROOT/tests/compat/stateful" version want
  # shellcheck source=tests/compat/stateful/versions.env
  version="$(source "$dir/versions.env" && echo "$STATEFUL_KAFKA_VERSION")"
  local libs="$KAFSCALE_TOOLS/compat-stateful/libs-$version"
  local classes="$KAFSCALE_TOOLS/compat-stateful/classes-$version"
  if [[ ! -f "$libs/.complete" ]]; then
    log "fetching connect-runtime and kafka-streams $version into ${libs#"$KAFSCALE_ROOT/"} (Maven)"
    rm -rf "$libs"
    quiet "Maven could not fetch connect-runtime and kafka-streams \"$version\"" \
      mvn -q -B -Dstyle.color=never -f "$dir/java/pom.xml" dependency:copy-dependencies \
      -Dkafka.version="$version" -DoutputDirectory="$libs"
    [[ -f "$libs/connect-runtime-$version.jar" && -f "$libs/kafka-streams-$version.jar" ]] ||
      die "Maven finished but connect-runtime or kafka-streams $version is missing in \"$libs\"."
    touch "$libs/.complete"
  fi
  want="$(cat "$dir/java/pom.xml" "$dir"/java/*.java | sha256sum | cut -d' ' -f1)"
  if [[ -f "$classes/.stamp" && "$(cat "$classes/.stamp")" == "$want" ]]; then return; fi
  log "compiling the test connector and Streams app against Kafka $version"
  rm -rf "$classes"
  mkdir -p "$classes"
  quiet "javac of tests/compat/stateful/java against Kafka \"$version\" failed" \
    javac -nowarn -d "$classes" -cp "$libs/*" "$dir"/java/*.java
  cp -r "$dir/java/META-INF" "$classes/"
  echo "$want" >"$classes/.stamp"
}

fetch_kafka_cli() {
  local version="$KAFKA_CLI_VERSION" tools="$KAFSCALE_TOOLS/kafka-ref/tools-$KAFKA_CLI_VERSION"
  if [[ ! -f "$KAFSCALE_TOOLS/kafka-ref/libs-$version/.complete" ]]; then
    KAFKA_REF_VERSION="$version" bash "$KAFSCALE_ROOT/scripts/reference_kafka.sh" fetch
  fi
  if [[ ! -f "$tools/kafka-tools-$version.jar" ]]; then
    log "fetching org.apache.kafka:kafka-tools:$version into ${tools#"$KAFSCALE_ROOT/"} (Maven)"
    quiet "Maven could not fetch kafka-tools \"$version\"" \
      mvn -q -B -Dstyle.color=never dependency:copy \
      "-Dartifact=org.apache.kafka:kafka-tools:$version:jar" "-DoutputDirectory=$tools"
  fi
}

# librdkafka's test suite: scripts/compat.ts --librdkafka-build builds and caches it (no-op when
# cached; tests/compat/librdkafka/librdkafka_suite.ts says where and how).
build_librdkafka_tests() {
  local missing=()
  if ! command -v cc >/dev/null || ! command -v c++ >/dev/null || ! command -v make >/dev/null; then
    missing+=(build-essential)
  fi
  [[ -f /usr/include/zlib.h ]] || missing+=(zlib1g-dev)
  [[ -f /usr/include/openssl/ssl.h ]] || missing+=(libssl-dev)
  [[ -f /usr/include/rapidjson/schema.h ]] || missing+=(rapidjson-dev)
  if ((${#missing[@]} > 0)); then
    command -v apt-get >/dev/null || die "Cannot install ${missing[*]}: \"apt-get\" is not found."
    local sudo=()
    if ((EUID != 0)); then
      command -v sudo >/dev/null || die "Cannot install ${missing[*]}: run setup as root."
      sudo=(sudo -n)
    fi
    log "apt-get install ${missing[*]}"
    quiet "apt-get update failed" "${sudo[@]}" apt-get update -qq
    quiet "apt-get install ${missing[*]} failed" \
      env DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
      --no-install-recommends "${missing[@]}"
  fi
  deno run -A "$KAFSCALE_ROOT/scripts/compat.ts" --librdkafka-build ||
    die "Building librdkafka's test suite failed; see the output above."
}

install_jdk
build_go_programs
for version in $JAVA_CLIENT_VERSIONS; do build_java_client "$version"; done
fetch_kafka_cli
build_stateful_apps
build_librdkafka_tests
