# Shared by compose/native/up and down. Brokers listen on 127.0.0.1 only.
# Everything is overridable from the environment; the defaults match compose/docker-compose.yml.
set -euo pipefail

NATIVE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Outside the repository and any home directory: the rabbitmq user must be able to reach it.
STATE="${INTERCHANGE_STATE_DIR:-/var/tmp/interchange}"
CACHE="${INTERCHANGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/interchange}"
AMQP_PORT="${INTERCHANGE_AMQP_PORT:-5672}"
AMQP_MGMT_PORT="${INTERCHANGE_AMQP_MGMT_PORT:-15672}"
REDIS_PORT="${INTERCHANGE_REDIS_PORT:-6379}"
KAFKA_PORT="${INTERCHANGE_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${INTERCHANGE_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$NATIVE_DIR/kafka/pom.xml")"
KAFKA_LIB="$CACHE/kafka-$KAFKA_VERSION/lib"

AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT//"
KAFKA_URL="kafka://127.0.0.1:$KAFKA_PORT"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

say() { printf '[brokers] %s\n' "$*" >&2; }

# fail NAME LOGFILE MESSAGE: say what went wrong and show the end of the broker's log.
fail() {
  say "ERROR: $1 $3"
  if [ -f "$2" ]; then
    say "last lines of $2:"
    tail -n 40 "$2" >&2
  fi
  exit 1
}

# wait_until SECONDS COMMAND...: poll a real health check until it passes or time runs out.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# pid_alive PIDFILE: true when the file names a running process; removes a stale file.
# A zombie counts as dead: where PID 1 does not reap (containers), a killed broker lingers as one.
pid_alive() {
  [ -f "$1" ] || return 1
  local stat
  stat="$(ps -o stat= -p "$(cat "$1")" 2>/dev/null || true)"
  if [ -n "$stat" ] && [ "${stat#Z}" = "$stat" ]; then return 0; fi
  rm -f "$1"
  return 1
}

# -- RabbitMQ ------------------------------------------------------------------------------
# Debian's wrapper scripts switch to the rabbitmq user; we call the real scripts as that user
# with our own node name, ports and directories, so nothing depends on systemd.
rabbit() {
  local tool="$1"
  shift
  su rabbitmq -s /bin/sh -c "cd '$STATE/rabbitmq' && \
    RABBITMQ_NODENAME=rabbit@localhost \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT=$AMQP_PORT \
    RABBITMQ_DIST_PORT=$((AMQP_PORT + 20000)) \
    RABBITMQ_MNESIA_BASE='$STATE/rabbitmq/mnesia' \
    RABBITMQ_LOG_BASE='$STATE/rabbitmq/log' \
    RABBITMQ_PID_FILE='$STATE/rabbitmq/rabbit.pid' \
    RABBITMQ_ENABLED_PLUGINS_FILE='$STATE/rabbitmq/enabled_plugins' \
    RABBITMQ_CONFIG_FILE='$STATE/rabbitmq/rabbitmq' \
    /usr/lib/rabbitmq/bin/$tool $*"
}

rabbit_healthy() { rabbit rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1; }

# -- Redis ---------------------------------------------------------------------------------
redis_healthy() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

# -- Kafka ---------------------------------------------------------------------------------
kafka_healthy() { kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 3 >/dev/null 2>&1; }

kafka_java() {
  java -Dlog4j2.configurationFile="$NATIVE_DIR/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$STATE/kafka/logs" -cp "$KAFKA_LIB/*" "$@"
}
