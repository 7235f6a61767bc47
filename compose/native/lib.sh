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
POSTGRES_PORT="${INTERCHANGE_POSTGRES_PORT:-5432}"
KAFKA_CONTROLLER_PORT="${INTERCHANGE_KAFKA_CONTROLLER_PORT:-9093}"
# Network faults: toxiproxy's API, and a proxy in front of each broker. Kafka clients connect to
# the addresses the broker advertises, so the broker has a second listener (KAFKA_PROXIED_PORT)
# that advertises the proxy's port: clients that bootstrap through the proxy stay behind it.
TOXIPROXY_VERSION="v2.5.0"
TOXIPROXY_PORT="${INTERCHANGE_TOXIPROXY_PORT:-8474}"
AMQP_PROXY_PORT="${INTERCHANGE_AMQP_PROXY_PORT:-5681}"
REDIS_PROXY_PORT="${INTERCHANGE_REDIS_PROXY_PORT:-6381}"
KAFKA_PROXY_PORT="${INTERCHANGE_KAFKA_PROXY_PORT:-9095}"
KAFKA_PROXIED_PORT="${INTERCHANGE_KAFKA_PROXIED_PORT:-9094}"
TOXIPROXY_BIN="$CACHE/toxiproxy-$TOXIPROXY_VERSION/toxiproxy-server"
TOXIPROXY_URL="http://127.0.0.1:$TOXIPROXY_PORT"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$NATIVE_DIR/kafka/pom.xml")"
KAFKA_LIB="$CACHE/kafka-$KAFKA_VERSION/lib"
# Clusters for the replication fault tests (up --kafka-brokers 3, up --rabbitmq-nodes 3), beside
# the single-node brokers the rest of the suite uses: node N of the Kafka cluster listens on
# KAFKA_CLUSTER_PORT+N-1 (its controller on +100), node N of RabbitMQ on AMQP_CLUSTER_PORT+N-1.
KAFKA_CLUSTER_PORT="${INTERCHANGE_KAFKA_CLUSTER_PORT:-9192}"
AMQP_CLUSTER_PORT="${INTERCHANGE_AMQP_CLUSTER_PORT:-5701}"

AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT//"
KAFKA_URL="kafka://127.0.0.1:$KAFKA_PORT"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
POSTGRES_URL="postgresql://interchange:interchange@127.0.0.1:$POSTGRES_PORT/interchange"

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
rabbit() { rabbit_at rabbit "$AMQP_PORT" "$STATE/rabbitmq" "$@"; }

# rabbit_at NODE PORT DIR TOOL ARGS...: run a RabbitMQ script for the node NODE@localhost that
# listens on PORT and keeps its files in DIR (the single node, or one node of the cluster).
rabbit_at() {
  local node="$1" port="$2" dir="$3" tool="$4"
  shift 4
  # The soft open-files limit (1024 here) is below what recovering a node with many durable
  # queues needs (one handle each): raise it to the hard limit.
  su rabbitmq -s /bin/sh -c "ulimit -n \$(ulimit -Hn) && cd '$dir' && \
    RABBITMQ_NODENAME=$node@localhost \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT=$port \
    RABBITMQ_DIST_PORT=$((port + 20000)) \
    RABBITMQ_MNESIA_BASE='$dir/mnesia' \
    RABBITMQ_LOG_BASE='$dir/log' \
    RABBITMQ_PID_FILE='$dir/rabbit.pid' \
    RABBITMQ_ENABLED_PLUGINS_FILE='$dir/enabled_plugins' \
    RABBITMQ_CONFIG_FILE='$dir/rabbitmq' \
    /usr/lib/rabbitmq/bin/$tool $*"
}

rabbit_healthy() { rabbit rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1; }
# The Erlang node answers even while its rabbit application is stopped (ctl rabbitmq stop).
rabbit_node_alive() { rabbit rabbitmq-diagnostics -q ping >/dev/null 2>&1; }

# -- Redis ---------------------------------------------------------------------------------
redis_healthy() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

# -- PostgreSQL ----------------------------------------------------------------------------
# Debian's cluster tools assume systemd; we run the server binaries directly as the postgres
# user, with our own data directory, port and socket directory.
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
pg() { su postgres -s /bin/sh -c "cd '$STATE/postgres' && $(pg_bin)/$*"; }
postgres_healthy() {
  "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT" -d interchange -U interchange
}

# -- Kafka ---------------------------------------------------------------------------------
kafka_healthy() { kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 3 >/dev/null 2>&1; }

# launch_kafka DIR XMS XMX: a Kafka node in the background, configured by DIR/server.properties,
# logging to DIR/logs, its pid in DIR/kafka.pid (the single broker and each cluster node)
launch_kafka() {
  setsid nohup java "-Xms$2" "-Xmx$3" \
    -Dlog4j2.configurationFile="$NATIVE_DIR/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$1/logs" -cp "$KAFKA_LIB/*" kafka.Kafka "$1/server.properties" \
    >"$1/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$1/kafka.pid"
}

kafka_java() {
  java -Dlog4j2.configurationFile="$NATIVE_DIR/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$STATE/kafka/logs" -cp "$KAFKA_LIB/*" "$@"
}

# -- starting (shared by up and ctl) -------------------------------------------------------
# forget_data CLUSTER_SIZE: the data of Kafka, its cluster, Redis and the single RabbitMQ node,
# each only if not running
forget_data() {
  local node running=""
  if ! kafka_healthy && ! pid_alive "$STATE/kafka/kafka.pid"; then
    rm -rf "$STATE/kafka/data"
    say "kafka: starting on empty data"
  fi
  if [ "$1" -gt 1 ] && [ -d "$STATE/kafka-cluster" ]; then
    for node in "$STATE"/kafka-cluster/*/; do
      if pid_alive "$node/kafka.pid"; then running=1; fi  # a node is up: the cluster keeps its data
    done
    if [ -z "$running" ]; then
      rm -rf "$STATE"/kafka-cluster/*/data
      say "kafka cluster: starting on empty data"
    fi
  fi
  if ! redis_healthy && ! pid_alive "$STATE/redis/redis.pid"; then
    rm -rf "$STATE/redis/appendonlydir" "$STATE/redis/dump.rdb"
    say "redis: starting on empty data"
  fi
  # The single RabbitMQ node only (the cluster's nodes keep their join state): its queues pile
  # up too (2,895 queues and 1.5 million messages here after a few sessions).
  if [ -d "$STATE/rabbitmq/mnesia" ] && ! pid_alive "$STATE/rabbitmq/rabbit.pid" \
    && ! rabbit_node_alive; then
    rm -rf "$STATE/rabbitmq/mnesia"
    say "rabbitmq: starting on empty data"
  fi
}

start_redis() {
  if redis_healthy; then say "redis already up"; return; fi
  mkdir -p "$STATE/redis"
  pid_alive "$STATE/redis/redis.pid" && fail redis "$STATE/redis/redis.log" \
    "process $(cat "$STATE/redis/redis.pid") is running but does not answer PING"
  # AOF: the durability of the Redis spool. everysec may lose about one second of writes in a
  # crash; always fsyncs each write (slower). interchange health shows which is in force.
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$STATE/redis" \
    --pidfile "$STATE/redis/redis.pid" --logfile "$STATE/redis/redis.log" \
    --appendonly yes --appendfsync "${INTERCHANGE_REDIS_APPENDFSYNC:-everysec}" \
    --maxmemory-policy noeviction --protected-mode yes
  wait_until 30 redis_healthy || fail redis "$STATE/redis/redis.log" "did not answer PING in 30s"
  say "redis up"
}

start_postgres() {
  if postgres_healthy; then say "postgres already up"; return; fi
  local dir="$STATE/postgres"
  mkdir -p "$dir"
  chown postgres:postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    printf 'interchange\n' >"$dir/password" && chown postgres "$dir/password"
    pg initdb -D "'$dir/data'" -U interchange --pwfile="'$dir/password'" --auth=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || fail postgres "$dir/initdb.log" "initdb failed"
  fi
  # wal_level=logical is not needed; max_connections covers tests that open many engines
  pg pg_ctl -D "'$dir/data'" -l "'$dir/postgres.log'" -w -t 60 \
    -o "\"-c listen_addresses=127.0.0.1 -p $POSTGRES_PORT -k '$dir' -c max_connections=200\"" \
    start >/dev/null 2>&1 || fail postgres "$dir/postgres.log" "did not start in 60s"
  if ! PGPASSWORD=interchange "$(pg_bin)/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U interchange \
    -d postgres -tAc "select 1 from pg_database where datname = 'interchange'" | grep -q 1; then
    PGPASSWORD=interchange "$(pg_bin)/createdb" -h 127.0.0.1 -p "$POSTGRES_PORT" -U interchange interchange
  fi
  wait_until 30 postgres_healthy || fail postgres "$dir/postgres.log" "does not accept connections"
  say "postgres up"
}

stop_postgres() {
  [ -f "$STATE/postgres/data/postmaster.pid" ] || return 0
  pg pg_ctl -D "'$STATE/postgres/data'" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

start_rabbitmq() {
  mkdir -p "$STATE/rabbitmq"
  chown rabbitmq:rabbitmq "$STATE/rabbitmq"
  if rabbit_node_alive; then
    if rabbit_healthy; then say "rabbitmq already up"; return; fi
    # the node runs but its application was stopped (ctl rabbitmq stop): start just that
    rabbit rabbitmqctl start_app >/dev/null 2>&1 || true
    wait_until 60 rabbit_healthy \
      || fail rabbitmq "$STATE/rabbitmq/log/rabbit@localhost.log" "node runs but does not accept AMQP"
    say "rabbitmq up"; return
  fi
  # The management plugin gives the HTTP admin API (queue depths, connections) on 15672.
  echo '[rabbitmq_management].' >"$STATE/rabbitmq/enabled_plugins"
  cat >"$STATE/rabbitmq/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
management.tcp.ip = 127.0.0.1
management.tcp.port = $AMQP_MGMT_PORT
CONF
  chown rabbitmq:rabbitmq "$STATE/rabbitmq/enabled_plugins" "$STATE/rabbitmq/rabbitmq.conf"
  rabbit rabbitmq-server -detached
  local log="$STATE/rabbitmq/log/rabbit@localhost.log"
  rabbit rabbitmqctl --timeout 90 wait "'$STATE/rabbitmq/rabbit.pid'" >/dev/null 2>&1 \
    || fail rabbitmq "$log" "did not start in 90s"
  wait_until 30 rabbit_healthy || fail rabbitmq "$log" "does not accept AMQP connections"
  say "rabbitmq up"
}

resolve_kafka() {
  [ -f "$KAFKA_LIB/kafka_2.13-$KAFKA_VERSION.jar" ] && return
  say "resolving Apache Kafka $KAFKA_VERSION jars with Maven into $KAFKA_LIB"
  mkdir -p "$KAFKA_LIB"
  mvn -B -q -f "$NATIVE_DIR/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$KAFKA_LIB" -DincludeScope=runtime >"$STATE/maven.log" 2>&1 \
    || { rm -rf "$KAFKA_LIB"; fail kafka "$STATE/maven.log" "Maven could not resolve the jars"; }
}

start_kafka() {
  if kafka_healthy; then say "kafka already up"; return; fi
  local dir="$STATE/kafka"
  mkdir -p "$dir/data" "$dir/logs"
  pid_alive "$dir/kafka.pid" && { kill "$(cat "$dir/kafka.pid")" || true; sleep 1; }
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,PROXIED://127.0.0.1:$KAFKA_PROXIED_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,PROXIED://127.0.0.1:$KAFKA_PROXY_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT
log.dirs=$dir/data
num.partitions=3
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# tests join and leave groups constantly: do not wait for more members
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
  if [ ! -f "$dir/data/meta.properties" ]; then
    kafka_java kafka.tools.StorageTool format -t "$(kafka_java kafka.tools.StorageTool random-uuid)" \
      -c "$dir/server.properties" >"$dir/logs/format.log" 2>&1 \
      || fail kafka "$dir/logs/format.log" "storage format failed"
  fi
  launch_kafka "$dir" 256m 1g
  wait_until 90 kafka_healthy || fail kafka "$dir/logs/server.log" "did not answer a metadata request in 90s"
  say "kafka up"
}

# -- toxiproxy (network faults) -------------------------------------------------------------
# healthy: the API answers and the proxies exist (a taken port fails only its proxy)
toxiproxy_healthy() { curl -fsS "$TOXIPROXY_URL/proxies" 2>/dev/null | grep -q '"kafka"'; }

go_bin() { command -v go || ls /usr/local/go/bin/go 2>/dev/null; }

install_toxiproxy() {
  [ -x "$TOXIPROXY_BIN" ] && return
  local go
  go="$(go_bin)" || fail toxiproxy /dev/null "needs Go (go install builds it from the Go module proxy)"
  say "building toxiproxy $TOXIPROXY_VERSION with go install into $(dirname "$TOXIPROXY_BIN")"
  mkdir -p "$(dirname "$TOXIPROXY_BIN")"
  GOBIN="$(dirname "$TOXIPROXY_BIN")" GOFLAGS=-mod=mod "$go" install \
    "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" >"$STATE/toxiproxy-build.log" 2>&1 \
    || fail toxiproxy "$STATE/toxiproxy-build.log" "go install failed"
  mv "$(dirname "$TOXIPROXY_BIN")/server" "$TOXIPROXY_BIN"
}

start_toxiproxy() {
  if toxiproxy_healthy; then say "toxiproxy already up"; return; fi
  local dir="$STATE/toxiproxy"
  mkdir -p "$dir"
  pid_alive "$dir/toxiproxy.pid" && { kill "$(cat "$dir/toxiproxy.pid")" || true; sleep 0.5; }
  cat >"$dir/proxies.json" <<JSON
[
  {"name": "rabbitmq", "listen": "127.0.0.1:$AMQP_PROXY_PORT", "upstream": "127.0.0.1:$AMQP_PORT"},
  {"name": "redis", "listen": "127.0.0.1:$REDIS_PROXY_PORT", "upstream": "127.0.0.1:$REDIS_PORT"},
  {"name": "kafka", "listen": "127.0.0.1:$KAFKA_PROXY_PORT", "upstream": "127.0.0.1:$KAFKA_PROXIED_PORT"}
]
JSON
  LOG_LEVEL=warn setsid nohup "$TOXIPROXY_BIN" -host 127.0.0.1 -port "$TOXIPROXY_PORT" -config "$dir/proxies.json" \
    >"$dir/toxiproxy.log" 2>&1 </dev/null &
  echo $! >"$dir/toxiproxy.pid"
  wait_until 30 toxiproxy_healthy || fail toxiproxy "$dir/toxiproxy.log" "its API did not answer in 30s"
  say "toxiproxy up"
}

# the three-node clusters of up --clusters: their own file
source "$NATIVE_DIR/clusters.sh"
