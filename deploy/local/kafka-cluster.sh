#!/usr/bin/env bash
# A Kafka cluster of N KRaft nodes for the local stack (issue 17), and optionally SASL_SSL with the
# standard authorizer. deploy/local/stack.sh hands Kafka to this script when VIGIL_STACK_BROKERS > 1
# or VIGIL_STACK_KAFKA_SECURITY=sasl_ssl; alone it is also usable directly:
#
#   deploy/local/kafka-cluster.sh up|down|status     the whole cluster
#   deploy/local/kafka-cluster.sh kill <n>           SIGKILL node n (1..N), as a crash would
#   deploy/local/kafka-cluster.sh start <n>          start node n again and wait until it is up
#   deploy/local/kafka-cluster.sh pid <n>            pid of node n (empty when down)
#   deploy/local/kafka-cluster.sh bootstrap          host:port,host:port,... of the client listeners
#   deploy/local/kafka-cluster.sh credentials        the SASL users and passwords (sasl_ssl mode)
#
# Topology (Kafka's "combined mode" from the KRaft docs): each node is broker and controller, the
# N nodes form the controller quorum (controller.quorum.voters), so losing one node of three keeps
# both a metadata quorum (2 of 3) and two in-sync replicas. Node i listens for clients on
# VIGIL_KAFKA_PORT + 2(i-1) and for the quorum on that port + 1 (9092/9093, 9094/9095, 9096/9097).
#
# Security (VIGIL_STACK_KAFKA_SECURITY=sasl_ssl): the client listener is SASL_SSL with
# SCRAM-SHA-512; the nodes talk to each other on it too, as the super user `admin`. A CA and a
# server certificate (SAN 127.0.0.1, localhost) are made with openssl once and cached; SCRAM users
# (admin and one per Vigil role: device gateway processor projector api jobs reader) get random
# passwords, stored in <local>/kafka-cluster/credentials (mode 600), and are created when the storage
# is formatted (kafka-storage format --add-scram). The authorizer is KRaft's StandardAuthorizer with
# allow.everyone.if.no.acl.found=false: a principal may do only what an ACL grants (the per-role ACLs
# are applied by `vigil kafka-acls apply`, docs/managed-kafka.md). Local-stack limit: the controller
# listener is PLAINTEXT on loopback, its ANONYMOUS principal a super user (SCRAM cannot serve the
# quorum: its credentials live in the metadata the quorum carries); a managed cluster runs it on mTLS.
set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
SHARED_LOCAL="$REPO_ROOT/.local"
LOCAL="${VIGIL_STACK_LOCAL:-$SHARED_LOCAL}"
JAVA="${JAVA:-java}"
HOST="${VIGIL_HOST:-127.0.0.1}"
BASE_PORT="${VIGIL_KAFKA_PORT:-9092}"
NODES="${VIGIL_STACK_BROKERS:-3}"
SECURITY="${VIGIL_STACK_KAFKA_SECURITY:-plaintext}"
HEAP="${VIGIL_KAFKA_HEAP:--Xms128m -Xmx384m}"
READY_TIMEOUT="${VIGIL_STACK_TIMEOUT:-90}"
STOP_TIMEOUT="${VIGIL_STACK_STOP_TIMEOUT:-30}"
CLUSTER_ID="vigil-local-kafka-0003"
DIR="$LOCAL/kafka-cluster"
KAFKA_LIB="$SHARED_LOCAL/kafka/lib"
TLS="$DIR/tls"
CREDENTIALS="$DIR/credentials"
USERS=(admin device gateway processor projector api jobs reader)

log() { printf '[kafka-cluster] %s\n' "$*"; }
die() {
  printf '[kafka-cluster] ERROR: %s\n' "$*" >&2
  exit 1
}

[[ "$NODES" =~ ^[1-9]$ ]] || die "VIGIL_STACK_BROKERS must be 1..9, got '$NODES'"
[[ "$SECURITY" =~ ^(plaintext|sasl_ssl)$ ]] || die "VIGIL_STACK_KAFKA_SECURITY must be plaintext or sasl_ssl, got '$SECURITY'"

client_port() { echo $((BASE_PORT + 2 * ($1 - 1))); }
controller_port() { echo $((BASE_PORT + 2 * ($1 - 1) + 1)); }
node_dir() { echo "$DIR/node$1"; }
pid_file() { echo "$(node_dir "$1")/kafka.pid"; }
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# A pid is node n of this cluster only if its command line says so (pid files outlive processes).
node_pid() {
  local pid
  pid=$(cat "$(pid_file "$1")" 2>/dev/null || true)
  pid_alive "$pid" || return 0
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "-Dvigil.stack.service=kafka-node$1@$DIR" && echo "$pid"
  return 0
}

bootstrap() {
  local i out=()
  for ((i = 1; i <= NODES; i++)); do out+=("$HOST:$(client_port "$i")"); done
  (IFS=,; echo "${out[*]}")
}

voters() {
  local i out=()
  for ((i = 1; i <= NODES; i++)); do out+=("$i@$HOST:$(controller_port "$i")"); done
  (IFS=,; echo "${out[*]}")
}

password_of() { awk -F= -v u="$1" '$1 == u { print $2 }' "$CREDENTIALS"; }

# Random passwords, made once per cluster folder (they are baked into the formatted storage).
ensure_credentials() {
  [[ -s "$CREDENTIALS" ]] && return
  mkdir -p "$DIR"
  (
    umask 077
    for u in "${USERS[@]}"; do printf '%s=%s\n' "$u" "$(openssl rand -hex 16)"; done >"$CREDENTIALS"
  )
}

# CA + server certificate, cached: the CA (ca.pem) is what clients trust (VIGIL_KAFKA_SSL_CA_FILE).
ensure_certificates() {
  [[ -s "$TLS/server.p12" && -s "$TLS/ca.pem" ]] && return
  command -v openssl >/dev/null || die "openssl not found (needed for the SASL_SSL certificates)"
  mkdir -p "$TLS"
  log "making a CA and a server certificate in $TLS (first run only)"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=vigil-local-ca" \
    -keyout "$TLS/ca.key" -out "$TLS/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$TLS/san.ext"
  openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial -days 3650 \
    -extfile "$TLS/san.ext" -out "$TLS/server.pem" 2>/dev/null
  openssl pkcs12 -export -in "$TLS/server.pem" -inkey "$TLS/server.key" -certfile "$TLS/ca.pem" \
    -name kafka -passout pass:vigil-local -out "$TLS/server.p12"
}

render_config() {
  local i=$1 d cfg
  d=$(node_dir "$i")
  cfg="$d/server.properties"
  mkdir -p "$d/data" "$d/logs"
  {
    cat <<EOF
# Written by deploy/local/kafka-cluster.sh: node $i of $NODES (combined broker + controller).
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$(voters)
controller.listener.names=CONTROLLER
log.dirs=$d/data
metadata.log.dir=$d/data
num.partitions=12
offsets.topic.num.partitions=12
transaction.state.log.num.partitions=12
group.initial.rebalance.delay.ms=0
delete.topic.enable=true
log.retention.hours=24
num.network.threads=2
num.io.threads=4
EOF
    # Replication follows the cluster size: 3 copies with 2 in sync once there are three nodes, so
    # one node may be lost (or restarted) without refusing a write or losing an acknowledged one.
    local rf=$((NODES >= 3 ? 3 : NODES)) isr=$((NODES >= 3 ? 2 : 1))
    cat <<EOF
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
# A broker that comes back leads its partitions again soon (preferred leaders).
leader.imbalance.check.interval.seconds=10
# A killed node is fenced (its partitions get new leaders) after 6 s without a heartbeat, not
# Kafka's 9 s: the input partitions it led stall for that long. Not lower: a stalled JVM on a busy
# 2-core box would be fenced for nothing.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
EOF
    if [[ "$SECURITY" == sasl_ssl ]]; then
      cat <<EOF
listeners=SASL_SSL://$HOST:$(client_port "$i"),CONTROLLER://$HOST:$(controller_port "$i")
advertised.listeners=SASL_SSL://$HOST:$(client_port "$i")
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(password_of admin)";
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS/server.p12
ssl.keystore.password=vigil-local
ssl.key.password=vigil-local
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.pem
ssl.endpoint.identification.algorithm=https
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:ANONYMOUS
auto.create.topics.enable=false
EOF
    else
      cat <<EOF
listeners=PLAINTEXT://$HOST:$(client_port "$i"),CONTROLLER://$HOST:$(controller_port "$i")
advertised.listeners=PLAINTEXT://$HOST:$(client_port "$i")
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
auto.create.topics.enable=true
EOF
    fi
  } >"$cfg"
}

format_storage() {
  local i=$1 d args=()
  d=$(node_dir "$i")
  [[ -f "$d/data/meta.properties" ]] && return
  if [[ "$SECURITY" == sasl_ssl ]]; then
    for u in "${USERS[@]}"; do args+=(--add-scram "SCRAM-SHA-512=[name=$u,password=$(password_of "$u")]"); done
  fi
  "$JAVA" -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2.properties" -Dkafka.logs.dir="$d/logs" \
    -cp "$KAFKA_LIB/*" kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$d/server.properties" \
    --ignore-formatted "${args[@]}" >>"$d/logs/format.log" 2>&1 || {
    tail -n 20 "$d/logs/format.log" >&2
    die "node $i: storage format failed (log $d/logs/format.log)"
  }
}

start_node() {
  local i=$1 d
  d=$(node_dir "$i")
  [[ -n "$(node_pid "$i")" ]] && return
  port_open "$HOST" "$(client_port "$i")" && die "node $i: port $(client_port "$i") is already in use"
  port_open "$HOST" "$(controller_port "$i")" && die "node $i: port $(controller_port "$i") is already in use"
  render_config "$i"
  format_storage "$i"
  stat -c %s "$d/logs/server.log" 2>/dev/null >"$d/log.offset" || echo 0 >"$d/log.offset"
  (
    cd "$d"
    exec 9>&-
    # shellcheck disable=SC2016,SC2086 # $$/$@ belong to the inner bash; HEAP is split on purpose
    exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$(pid_file "$i")" "$JAVA" $HEAP -XX:+UseG1GC \
      -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      "-Dvigil.stack.service=kafka-node$i@$DIR" -Dvigil.stack.root="$REPO_ROOT" \
      -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2.properties" -Dkafka.logs.dir="$d/logs" \
      -cp "$KAFKA_LIB/*" kafka.Kafka "$d/server.properties" </dev/null >"$d/logs/stdout.log" 2>&1
  ) &
  log "node $i: starting (client $HOST:$(client_port "$i"), controller :$(controller_port "$i"), log $d/logs/server.log)"
}

node_ready() {
  local i=$1 d
  d=$(node_dir "$i")
  port_open "$HOST" "$(client_port "$i")" || return 1
  tail -c +"$(($(cat "$d/log.offset" 2>/dev/null || echo 0) + 1))" "$d/logs/server.log" 2>/dev/null |
    grep -q 'Kafka Server started'
}

wait_node() {
  local i=$1 start=$SECONDS pid
  for _ in $(seq 50); do
    pid=$(node_pid "$i")
    [[ -n "$pid" ]] && break
    sleep 0.2
  done
  until node_ready "$i"; do
    if ! pid_alive "$pid" || ((SECONDS - start >= READY_TIMEOUT)); then
      tail -n 30 "$(node_dir "$i")/logs/server.log" "$(node_dir "$i")/logs/stdout.log" >&2 || true
      die "node $i: not ready after $((SECONDS - start))s"
    fi
    sleep 1
  done
  log "node $i: ready (pid $pid, $((SECONDS - start))s)"
}

stop_node() {
  local i=$1 signal=${2:-TERM} pid start=$SECONDS
  pid=$(node_pid "$i")
  [[ -z "$pid" ]] && return
  kill -"$signal" "$pid" 2>/dev/null || true
  while pid_alive "$pid" && ((SECONDS - start < STOP_TIMEOUT)); do sleep 0.3; done
  pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
  while pid_alive "$pid"; do sleep 0.2; done
  rm -f "$(pid_file "$i")"
  log "node $i: stopped with SIG$signal (pid $pid, $((SECONDS - start))s)"
}

take_lock() {
  mkdir -p "$DIR"
  exec 9>"$DIR/cluster.lock"
  flock -w 300 9 || die "another kafka-cluster.sh up/down is running (lock $DIR/cluster.lock)"
}

cmd_up() {
  local i
  take_lock
  [[ -f "$KAFKA_LIB/.complete" ]] || die "Kafka's jars are missing in $KAFKA_LIB (run deploy/local/stack.sh up once)"
  if [[ "$SECURITY" == sasl_ssl ]]; then
    ensure_credentials
    ensure_certificates
  fi
  # All nodes at once: the quorum needs a majority before any node reports started.
  for ((i = 1; i <= NODES; i++)); do start_node "$i"; done
  for ((i = 1; i <= NODES; i++)); do wait_node "$i"; done
  log "cluster up: $NODES node(s), $SECURITY, bootstrap $(bootstrap)"
}

cmd_down() {
  local i
  take_lock
  for ((i = 1; i <= NODES; i++)); do stop_node "$i" TERM & done
  wait
}

rss_mb() { awk '/^VmRSS:/ { printf "%dMB", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo -; }

cmd_status() {
  local i pid state rc=0
  for ((i = 1; i <= NODES; i++)); do
    pid=$(node_pid "$i")
    state=down
    if [[ -n "$pid" ]]; then
      if port_open "$HOST" "$(client_port "$i")"; then state=up; else state=starting; fi
    fi
    [[ "$state" == up ]] || rc=1
    printf '%-10s %-6s %-8s %-8s %-7s %s\n' "kafka-$i" "$(client_port "$i")" "$state" "${pid:--}" \
      "$([[ -n "$pid" ]] && rss_mb "$pid" || echo -)" "$(node_dir "$i")/logs/server.log"
  done
  return "$rc"
}

node_arg() {
  [[ "${1:-}" =~ ^[1-9]$ ]] && ((${1} <= NODES)) || die "node must be 1..$NODES"
  echo "$1"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  kill) stop_node "$(node_arg "${2:-}")" KILL ;;
  start)
    n=$(node_arg "${2:-}")
    start_node "$n"
    wait_node "$n"
    ;;
  pid) node_pid "$(node_arg "${2:-}")" ;;
  bootstrap) bootstrap ;;
  credentials) cat "$CREDENTIALS" ;;
  *)
    sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'
    [[ "${1:-}" =~ ^(-h|--help|help)$ ]] || exit 2
    ;;
esac
