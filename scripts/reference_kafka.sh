#!/usr/bin/env bash
# Runs a reference Apache Kafka broker (single KRaft node, broker + controller in one JVM) on
# loopback, fetched from Maven Central. Used to compare benchmarks and to validate test clients
# against the real thing. Not part of the product.
#
# Usage:
#   scripts/reference_kafka.sh start  [PORT] [DATA_DIR]   # prints the bootstrap address
#     (PORT defaults to 19092, DATA_DIR to .tools/kafka-ref/data-PORT)
#   scripts/reference_kafka.sh stop   [PORT] [DATA_DIR]
#   scripts/reference_kafka.sh status [PORT] [DATA_DIR]
#   scripts/reference_kafka.sh fetch                      # only download the jars
#
# The controller listens on PORT+1. Log: DATA_DIR/kafka.log; pid file: DATA_DIR/kafka.pid.
# A data dir is formatted once and reused by later starts; delete it for a clean broker.
#
# Environment:
#   KAFKA_REF_VERSION   Apache Kafka release (default 4.1.0; 3.9.x works too)
#   KAFKA_REF_HEAP      JVM heap, -Xms and -Xmx (default 1g)
#   KAFKA_REF_START_TIMEOUT_S  seconds to wait for the port and "Kafka Server started" (default 90)
#   KAFKA_REF_NUM_PARTITIONS   partitions of auto-created topics, Kafka's num.partitions (default 1;
#                              librdkafka's test suite expects 4, as the broker's
#                              --default-partitions 4)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONF_DIR="$ROOT/scripts/reference_kafka"
VERSION="${KAFKA_REF_VERSION:-4.1.0}"
HEAP="${KAFKA_REF_HEAP:-1g}"
START_TIMEOUT_S="${KAFKA_REF_START_TIMEOUT_S:-90}"
NUM_PARTITIONS="${KAFKA_REF_NUM_PARTITIONS:-1}"
STOP_TIMEOUT_S=30
LIBS="$ROOT/.tools/kafka-ref/libs-$VERSION"

CMD="${1:-}"
PORT="${2:-19092}"
CONTROLLER_PORT=$((PORT + 1))
DATA_DIR="${3:-$ROOT/.tools/kafka-ref/data-$PORT}"
PID_FILE="$DATA_DIR/kafka.pid"
LOG_FILE="$DATA_DIR/kafka.log"

die() {
  echo "reference_kafka: $*" >&2
  exit 1
}

fetch() {
  if [[ -f "$LIBS/.complete" ]]; then return; fi
  command -v mvn >/dev/null ||
    die "Cannot fetch Kafka: \"mvn\" is not installed; run \"apt-get install -y maven\"."
  command -v java >/dev/null ||
    die "Cannot fetch Kafka: \"java\" is not installed; install a JDK 17."
  echo "reference_kafka: fetching org.apache.kafka:kafka_2.13:$VERSION into $LIBS" >&2
  rm -rf "$LIBS"
  mvn -q -B -Dstyle.color=never -f "$CONF_DIR/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$VERSION" -DoutputDirectory="$LIBS" >&2 ||
    die "Maven could not fetch Kafka \"$VERSION\"; check KAFKA_REF_VERSION and the network."
  [[ -f "$LIBS/kafka_2.13-$VERSION.jar" ]] ||
    die "Maven finished but \"kafka_2.13-$VERSION.jar\" is missing in \"$LIBS\"."
  touch "$LIBS/.complete"
}

# The JVM flags of Kafka's own kafka-run-class.sh, with a fixed heap.
JAVA_OPTS=(-Xms"$HEAP" -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
  -Djava.awt.headless=true -Dlog4j2.configurationFile="$CONF_DIR/log4j2.properties")

java_cmd() {
  java "${JAVA_OPTS[@]}" -cp "$LIBS/*" "$@"
}

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # Guard against pid reuse: only ever signal the broker this data dir started.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $DATA_DIR/server.properties" ||
    return 1
  echo "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

write_config() {
  mkdir -p "$DATA_DIR"
  cat >"$DATA_DIR/server.properties" <<EOF
# Written by scripts/reference_kafka.sh; rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR/kraft-logs
num.partitions=$NUM_PARTITIONS
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=3
num.io.threads=8
EOF
}

start() {
  local pid
  if pid="$(running_pid)"; then
    echo "reference_kafka: already running (pid $pid) on 127.0.0.1:$PORT" >&2
    echo "127.0.0.1:$PORT"
    return 0
  fi
  port_open "$PORT" && die "Cannot start: port \"$PORT\" is already in use; pick another port."
  port_open "$CONTROLLER_PORT" &&
    die "Cannot start: controller port \"$CONTROLLER_PORT\" (PORT+1) is in use; pick another port."
  fetch
  write_config
  if [[ ! -f "$DATA_DIR/kraft-logs/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(java_cmd kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
    java_cmd kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$DATA_DIR/server.properties" --ignore-formatted >>"$DATA_DIR/format.log" 2>&1 ||
      die "Formatting KRaft storage failed; see \"$DATA_DIR/format.log\"."
  fi
  : >"$LOG_FILE"
  # setsid: the broker outlives this script and is stopped through its pid file.
  setsid nohup java "${JAVA_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka "$DATA_DIR/server.properties" \
    >>"$LOG_FILE" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"
  local deadline=$((SECONDS + START_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$LOG_FILE" >&2 || true
      # The tail is often the config dump: the errors that stopped it come first.
      echo "reference_kafka: errors in the log:" >&2
      grep -m 20 -E "ERROR|FATAL|Exception" "$LOG_FILE" >&2 || echo "(none)" >&2
      die "Kafka exited during startup; see \"$LOG_FILE\"."
    fi
    if port_open "$PORT" && grep -q "Kafka Server started" "$LOG_FILE"; then
      echo "reference_kafka: Apache Kafka $VERSION ready on 127.0.0.1:$PORT" \
        "(pid $pid, log $LOG_FILE)" >&2
      echo "127.0.0.1:$PORT"
      return 0
    fi
    sleep 0.5
  done
  stop_pid "$pid"
  die "Kafka did not become ready within ${START_TIMEOUT_S}s; see \"$LOG_FILE\"."
}

stop_pid() {
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || return 0
  local deadline=$((SECONDS + STOP_TIMEOUT_S))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "reference_kafka: pid $pid still alive after ${STOP_TIMEOUT_S}s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

stop() {
  local pid
  if pid="$(running_pid)"; then
    stop_pid "$pid"
    echo "reference_kafka: stopped pid $pid (port $PORT)" >&2
  else
    echo "reference_kafka: not running (port $PORT)" >&2
  fi
  rm -f "$PID_FILE"
}

status() {
  local pid
  if pid="$(running_pid)"; then
    echo "running pid=$pid bootstrap=127.0.0.1:$PORT log=$LOG_FILE"
  else
    echo "stopped"
    return 1
  fi
}

case "$CMD" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  fetch) fetch ;;
  *) die "Usage: $0 start|stop|status [PORT] [DATA_DIR] | fetch" ;;
esac
