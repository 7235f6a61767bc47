# Sourced by lib.sh: the Kafka and RabbitMQ clusters (up --kafka-brokers N, --rabbitmq-nodes N)
# that the replication fault tests use, beside the single-node brokers. Node N of each listens
# on its base port + N - 1 (KAFKA_CLUSTER_PORT, AMQP_CLUSTER_PORT in lib.sh).

# -- a Kafka cluster: N combined broker+controller KRaft nodes on this machine ---------------
kafka_node_port() { echo $((KAFKA_CLUSTER_PORT + $1 - 1)); }
kafka_cluster_url() {
  local n servers=""
  for n in $(seq 1 "$1"); do servers="$servers${servers:+,}127.0.0.1:$(kafka_node_port "$n")"; done
  echo "kafka://$servers"
}
# kafka_node_healthy N [SIZE]: node N answers, lists itself, and (given SIZE) sees every node
kafka_node_healthy() {
  local brokers
  brokers="$(kcat -b "127.0.0.1:$(kafka_node_port "$1")" -L -m 3 2>/dev/null | grep '^  broker ')" || return 1
  grep -q "^  broker $1 at" <<<"$brokers" || return 1
  [ -z "${2:-}" ] || [ "$(grep -c . <<<"$brokers")" -eq "$2" ]
}

start_kafka_node() {  # start_kafka_node N SIZE: start one node (formatting it on first use)
  local n="$1" size="$2" dir="$STATE/kafka-cluster/$1" voters="" i
  if kafka_node_healthy "$n" "$size"; then return; fi
  mkdir -p "$dir/data" "$dir/logs"
  pid_alive "$dir/kafka.pid" && return  # started, still joining: the caller waits
  for i in $(seq 1 "$size"); do
    voters="$voters${voters:+,}$i@127.0.0.1:$(($(kafka_node_port "$i") + 100))"
  done
  local port controller replicas=$((size < 3 ? size : 3)) isr=$((size < 3 ? 1 : 2))
  port="$(kafka_node_port "$n")" controller=$(($(kafka_node_port "$n") + 100))
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=6
default.replication.factor=$replicas
min.insync.replicas=$isr
offsets.topic.replication.factor=$replicas
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
  if [ ! -f "$dir/data/meta.properties" ]; then
    # every node of one cluster is formatted with the same cluster id
    [ -f "$STATE/kafka-cluster/cluster.id" ] \
      || kafka_java kafka.tools.StorageTool random-uuid >"$STATE/kafka-cluster/cluster.id"
    kafka_java kafka.tools.StorageTool format -t "$(cat "$STATE/kafka-cluster/cluster.id")" \
      -c "$dir/server.properties" >"$dir/logs/format.log" 2>&1 \
      || fail kafka "$dir/logs/format.log" "storage format of cluster node $n failed"
  fi
  launch_kafka "$dir" 128m 512m
}

start_kafka_cluster() {  # start_kafka_cluster SIZE
  local size="$1" n
  mkdir -p "$STATE/kafka-cluster"
  if [ -f "$STATE/kafka-cluster/size" ] && [ "$(cat "$STATE/kafka-cluster/size")" != "$size" ]; then
    fail kafka /dev/null "a cluster of $(cat "$STATE/kafka-cluster/size") nodes exists: down --clean first"
  fi
  echo "$size" >"$STATE/kafka-cluster/size"
  for n in $(seq 1 "$size"); do start_kafka_node "$n" "$size"; done  # in parallel: a quorum
  for n in $(seq 1 "$size"); do
    wait_until 120 kafka_node_healthy "$n" "$size" \
      || fail kafka "$STATE/kafka-cluster/$n/logs/server.log" "cluster node $n did not join in 120s"
  done
  say "kafka cluster up: $size brokers"
}

stop_kafka_node() {  # stop_kafka_node N: TERM (a controlled shutdown moves its leaderships)
  local pidfile="$STATE/kafka-cluster/$1/kafka.pid" deadline=$((SECONDS + 60))
  pid_alive "$pidfile" || return 0
  kill "$(cat "$pidfile")" 2>/dev/null || true
  while pid_alive "$pidfile" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  if pid_alive "$pidfile"; then kill -9 "$(cat "$pidfile")" 2>/dev/null || true; fi
}

# -- a RabbitMQ cluster: N nodes (ic1@localhost...) on this machine, joined to ic1 -------------
amqp_node_port() { echo $((AMQP_CLUSTER_PORT + $1 - 1)); }
amqp_cluster_url() {  # kombu's node list: a client tries the nodes in order
  local n urls=""
  for n in $(seq 1 "$1"); do urls="$urls${urls:+;}amqp://guest:guest@127.0.0.1:$(amqp_node_port "$n")//"; done
  echo "$urls"
}
rabbit_node() { local n="$1"; shift; rabbit_at "ic$n" "$(amqp_node_port "$n")" "$STATE/rabbitmq-cluster/$n" "$@"; }
rabbit_node_healthy() { rabbit_node "$1" rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1; }
rabbit_node_running() { rabbit_node "$1" rabbitmq-diagnostics -q ping >/dev/null 2>&1; }

start_rabbitmq_node() {  # start_rabbitmq_node N: the Erlang node, or just its app if stopped
  local n="$1" dir="$STATE/rabbitmq-cluster/$1"
  mkdir -p "$dir"
  chown rabbitmq:rabbitmq "$STATE/rabbitmq-cluster" "$dir"
  if rabbit_node_running "$n"; then
    rabbit_node_healthy "$n" || rabbit_node "$n" rabbitmqctl start_app >/dev/null 2>&1 || true
    return
  fi
  # no management plugin: the tests ask rabbitmqctl, and each node starts faster without it
  printf '[].\n' >"$dir/enabled_plugins"
  printf 'listeners.tcp.default = 127.0.0.1:%s\n' "$(amqp_node_port "$n")" >"$dir/rabbitmq.conf"
  chown rabbitmq:rabbitmq "$dir/enabled_plugins" "$dir/rabbitmq.conf"
  rabbit_node "$n" rabbitmq-server -detached
}

start_rabbitmq_cluster() {  # start_rabbitmq_cluster SIZE
  local size="$1" n
  for n in $(seq 1 "$size"); do start_rabbitmq_node "$n"; done
  for n in $(seq 1 "$size"); do
    rabbit_node "$n" rabbitmqctl --timeout 90 wait "'$STATE/rabbitmq-cluster/$n/rabbit.pid'" >/dev/null 2>&1 \
      || fail rabbitmq "$STATE/rabbitmq-cluster/$n/log/ic$n@localhost.log" "cluster node $n did not start in 90s"
  done
  for n in $(seq 2 "$size"); do
    [ -f "$STATE/rabbitmq-cluster/$n/joined" ] && continue
    rabbit_node "$n" rabbitmqctl stop_app >/dev/null
    rabbit_node "$n" rabbitmqctl join_cluster ic1@localhost >"$STATE/rabbitmq-cluster/$n/join.log" 2>&1 \
      || fail rabbitmq "$STATE/rabbitmq-cluster/$n/join.log" "node $n could not join ic1@localhost"
    rabbit_node "$n" rabbitmqctl start_app >/dev/null
    touch "$STATE/rabbitmq-cluster/$n/joined"
  done
  for n in $(seq 1 "$size"); do
    wait_until 60 rabbit_node_healthy "$n" \
      || fail rabbitmq "$STATE/rabbitmq-cluster/$n/log/ic$n@localhost.log" "cluster node $n does not accept AMQP"
  done
  say "rabbitmq cluster up: $size nodes"
}
