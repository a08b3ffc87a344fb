#!/usr/bin/env bash
# Local, Docker-free service stack for Vigil: Kafka (KRaft), Apicurio Registry
# (Confluent-compatible API), Zipkin, plus the machine's PostgreSQL and Redis.
#
#   deploy/local/stack.sh up       start what is not running, wait until ready
#   deploy/local/stack.sh down     stop the Java services this script started
#   deploy/local/stack.sh status   one line per service; exit 0 only if all up
#   deploy/local/stack.sh up|down|status prometheus
#                                  the opt-in Prometheus alone (VIGIL_STACK_PROMETHEUS=1
#                                  adds it to plain up/status; down always stops it)
#   deploy/local/stack.sh up|down|status timescaledb
#                                  the stack's own PostgreSQL 15 cluster with TimescaleDB
#                                  preloaded (deploy/local/timescaledb.sh) alone; plain
#                                  up/down/status include it (VIGIL_STACK_TIMESCALEDB=0: not)
#
# Everything it downloads or writes lives under <repo>/.local/ (git-ignored).
# See deploy/local/README.md for the settings and why they were chosen.
set -Eeuo pipefail

# ---------------------------------------------------------------------------
# Locations and settings (every setting can be overridden from the environment)
# ---------------------------------------------------------------------------
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
# Downloads and resolved jars are always shared under <repo>/.local; data, logs,
# pid files and the lock go under VIGIL_STACK_LOCAL when set (a second, private
# stack of the same checkout, e.g. the Kafka restart drill's broker).
SHARED_LOCAL="$REPO_ROOT/.local"
LOCAL="${VIGIL_STACK_LOCAL:-$SHARED_LOCAL}"
DOWNLOADS="$SHARED_LOCAL/downloads"

JAVA="${JAVA:-java}"
JAVAC="${JAVAC:-javac}"
MVN="${MVN:-mvn}"

# Java services bind to loopback only: nothing here is meant to be reachable
# from other machines.
HOST="${VIGIL_HOST:-127.0.0.1}"
KAFKA_PORT="${VIGIL_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${VIGIL_KAFKA_CONTROLLER_PORT:-9093}"
REGISTRY_PORT="${VIGIL_REGISTRY_PORT:-8081}"
ZIPKIN_PORT="${VIGIL_ZIPKIN_PORT:-9411}"
PG_HOST="${VIGIL_PG_HOST:-127.0.0.1}"
PG_PORT="${VIGIL_PG_PORT:-5432}"
PG_USER="${VIGIL_PG_USER:-postgres}"
PG_DB="${VIGIL_PG_DB:-vigil}"
REDIS_HOST="${VIGIL_REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${VIGIL_REDIS_PORT:-6379}"

KAFKA_HEAP="${VIGIL_KAFKA_HEAP:--Xms256m -Xmx512m}"
REGISTRY_HEAP="${VIGIL_REGISTRY_HEAP:--Xms64m -Xmx384m}"
ZIPKIN_HEAP="${VIGIL_ZIPKIN_HEAP:--Xms64m -Xmx512m}"

APICURIO_VERSION="${VIGIL_APICURIO_VERSION:-3.0.9}"
# Compatibility enforced for subjects that have no config of their own.
# Confluent's default is BACKWARD; Apicurio's is none at all.
REGISTRY_DEFAULT_COMPAT="${VIGIL_REGISTRY_DEFAULT_COMPATIBILITY:-BACKWARD}"
ZIPKIN_VERSION="${VIGIL_ZIPKIN_VERSION:-3.4.2}"

# Prometheus (opt-in): Debian's `prometheus` package, scraping the demo's roles with
# deploy/local/prometheus.yml and evaluating deploy/prometheus/rules/.
PROMETHEUS_ON="${VIGIL_STACK_PROMETHEUS:-0}"
PROMETHEUS_BIN="${PROMETHEUS:-prometheus}"
PROMTOOL_BIN="${PROMTOOL:-promtool}"
PROMETHEUS_PORT="${VIGIL_PROMETHEUS_PORT:-9090}"
PROMETHEUS_CONFIG="${VIGIL_PROMETHEUS_CONFIG:-$SCRIPT_DIR/prometheus.yml}"
PROMETHEUS_RETENTION="${VIGIL_PROMETHEUS_RETENTION:-2d}"

# Vigil's database: the stack's own PostgreSQL 15 cluster with TimescaleDB preloaded (its own data
# folder and port; deploy/local/timescaledb.sh builds the extension when missing). A private stack
# (VIGIL_STACK_LOCAL, e.g. a drill's second broker) shares the main one's, so it is off there.
TIMESCALEDB_SCRIPT="$SCRIPT_DIR/timescaledb.sh"
if [[ -n "${VIGIL_STACK_LOCAL:-}" ]]; then TIMESCALEDB_ON="${VIGIL_STACK_TIMESCALEDB:-0}"; else TIMESCALEDB_ON="${VIGIL_STACK_TIMESCALEDB:-1}"; fi

READY_TIMEOUT="${VIGIL_STACK_TIMEOUT:-90}"     # seconds, per service
STOP_TIMEOUT="${VIGIL_STACK_STOP_TIMEOUT:-30}" # seconds before SIGKILL
FRESH="${VIGIL_STACK_FRESH:-0}"

# A fixed cluster id keeps `format` idempotent (22-char base64 UUID, as
# `kafka-storage random-uuid` would print).
KAFKA_CLUSTER_ID="vigil-local-kafka-0001"

KAFKA_DIR="$LOCAL/kafka"
KAFKA_LIB="$SHARED_LOCAL/kafka/lib"
KAFKA_PROBE_DIR="$SHARED_LOCAL/kafka/probe"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_CONFIG="$KAFKA_DIR/server.properties"
REGISTRY_DIR="$LOCAL/registry"
ZIPKIN_DIR="$LOCAL/zipkin"
PROMETHEUS_DIR="$LOCAL/prometheus"

# shellcheck disable=SC2206 # a space-separated list by design
JAVA_SERVICES=(${VIGIL_STACK_SERVICES:-kafka registry zipkin})
for _svc in "${JAVA_SERVICES[@]}"; do
  [[ "$_svc" =~ ^(kafka|registry|zipkin)$ ]] || {
    printf '[stack] ERROR: VIGIL_STACK_SERVICES: unknown service %s (use kafka, registry, zipkin)\n' "$_svc" >&2
    exit 2
  }
done
has_service() { [[ " ${JAVA_SERVICES[*]} " == *" $1 "* ]]; }
# Kafka as a cluster (VIGIL_STACK_BROKERS=3) or with SASL_SSL (VIGIL_STACK_KAFKA_SECURITY=sasl_ssl):
# deploy/local/kafka-cluster.sh runs it, so it leaves this script's own list (one broker stays the default).
KAFKA_CLUSTER=0
if has_service kafka && [[ "${VIGIL_STACK_BROKERS:-1}" != 1 || "${VIGIL_STACK_KAFKA_SECURITY:-plaintext}" != plaintext ]]; then
  KAFKA_CLUSTER=1
  # shellcheck disable=SC2206
  JAVA_SERVICES=(${JAVA_SERVICES[@]/kafka/})
fi
kafka_cluster() { VIGIL_STACK_BROKERS="${VIGIL_STACK_BROKERS:-1}" bash "$SCRIPT_DIR/kafka-cluster.sh" "$@"; }
# The services that 'up' starts and 'status' counts: the Java ones, plus Prometheus when opted in.
UP_SERVICES=("${JAVA_SERVICES[@]}")
[[ "$PROMETHEUS_ON" == 1 ]] && UP_SERVICES+=(prometheus)

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------
log()  { printf '[stack] %s\n' "$*"; }
warn() { printf '[stack] WARNING: %s\n' "$*" >&2; }
die()  { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<EOF
Usage: deploy/local/stack.sh up|down|status [prometheus|timescaledb] | --help

  up      Ensure PostgreSQL and Redis answer (start them if not) and that the
          database '$PG_DB' exists; start Kafka ($HOST:$KAFKA_PORT), Apicurio
          Registry ($HOST:$REGISTRY_PORT, Confluent API at /apis/ccompat/v7) and
          Zipkin ($HOST:$ZIPKIN_PORT) unless already running, and wait until
          each one really answers (${READY_TIMEOUT}s each). Idempotent.
  down    Stop the Java services started by 'up' (SIGTERM, then SIGKILL after
          ${STOP_TIMEOUT}s). PostgreSQL and Redis belong to the machine: left running.
  status  One line per service: name, port, up/down, pid, RSS, log.
          Exit 0 only if every service is up.

  up|down|status prometheus
          Only the opt-in Prometheus ($HOST:$PROMETHEUS_PORT, Debian's 'prometheus'
          package): scrapes the demo's roles (deploy/local/prometheus.yml) and
          evaluates deploy/prometheus/rules/. Targets of roles that do not run
          are shown down. With VIGIL_STACK_PROMETHEUS=1 plain 'up' and 'status'
          include it; plain 'down' stops it whenever it runs.

  up|down|status timescaledb
          Only the stack's own PostgreSQL 15 cluster (127.0.0.1:5433 by default,
          data in $LOCAL/timescaledb/) with TimescaleDB preloaded, which serves
          Vigil's database by default (deploy/local/timescaledb.sh; it builds
          TimescaleDB from VIGIL_TIMESCALEDB_SOURCE when the server has none, and
          falls back to plain PostgreSQL on that port, loudly, when it cannot).
          Plain up/down/status include it unless VIGIL_STACK_TIMESCALEDB=0.

Files: $LOCAL/ (Kafka data, logs, pid files; downloads and jars always in
$SHARED_LOCAL/).

Environment (defaults in brackets):
  VIGIL_STACK_FRESH=1        with 'up': stop the Java services, wipe Kafka data,
                             start clean (registry and Zipkin are in-memory)
  VIGIL_STACK_PROMETHEUS=1   'up' and 'status' include Prometheus
  VIGIL_STACK_TIMESCALEDB [1; 0 with VIGIL_STACK_LOCAL]  plain up/down/status
                             include the TimescaleDB cluster
  VIGIL_TIMESCALEDB_PORT [5433]  VIGIL_TIMESCALEDB_SOURCE [../shared/vendor/
                             timescaledb-2.28.3.tar.gz beside the repo; a path or
                             an http(s) URL]  VIGIL_TIMESCALEDB_REQUIRED=1: fail
                             instead of falling back to plain PostgreSQL
  VIGIL_PROMETHEUS_PORT [9090]  VIGIL_PROMETHEUS_RETENTION [2d]
  VIGIL_PROMETHEUS_CONFIG [deploy/local/prometheus.yml]
  VIGIL_STACK_BROKERS [1]    3 = a three-node KRaft cluster (deploy/local/kafka-cluster.sh;
                             node i on VIGIL_KAFKA_PORT + 2(i-1), its controller on +1)
  VIGIL_STACK_KAFKA_SECURITY [plaintext]  sasl_ssl = SASL_SSL + SCRAM-SHA-512 + ACLs
                             (kafka-cluster.sh, docs/managed-kafka.md)
  VIGIL_STACK_SERVICES ["kafka registry zipkin"]  the Java services that
                             up/down/status handle (e.g. "kafka" alone)
  VIGIL_STACK_LOCAL [<repo>/.local]  folder for data, logs, pid files and the
                             lock: another folder and other ports give a second,
                             independent stack (downloads stay shared)
  VIGIL_HOST [127.0.0.1]     bind address of the Java services
  VIGIL_KAFKA_PORT [9092]  VIGIL_KAFKA_CONTROLLER_PORT [9093]
  VIGIL_REGISTRY_PORT [8081]  VIGIL_ZIPKIN_PORT [9411]
  VIGIL_PG_HOST/PORT/USER/DB [127.0.0.1/5432/postgres/vigil]
  VIGIL_REDIS_HOST/PORT [127.0.0.1/6379]
  VIGIL_KAFKA_HEAP ["-Xms256m -Xmx512m"]  VIGIL_REGISTRY_HEAP ["-Xms64m -Xmx384m"]
  VIGIL_ZIPKIN_HEAP ["-Xms64m -Xmx512m"]
  VIGIL_APICURIO_VERSION [3.0.9]  VIGIL_ZIPKIN_VERSION [3.4.2]
  VIGIL_REGISTRY_DEFAULT_COMPATIBILITY [BACKWARD]  rule for subjects without
                             their own config (NONE = accept anything)
  VIGIL_STACK_TIMEOUT [90]  VIGIL_STACK_STOP_TIMEOUT [30]
  JAVA, JAVAC, MVN           tool commands [java, javac, mvn]
  PROMETHEUS, PROMTOOL       tool commands [prometheus, promtool]
EOF
}

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH (needed for: $2)"; }

# True if something accepts TCP connections on host:port. Uses bash's
# /dev/tcp so it needs no nc/ss.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# PID of the process listening on a local TCP port, or empty.
port_owner() {
  ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# Each Java service is started with -Dvigil.stack.service=<name> and
# -Dvigil.stack.root=<repo>, so a pid can be checked to really be this
# checkout's service (pid files outlive processes; pids get reused; another
# checkout may run its own stack).
pid_is_service() {
  local args
  pid_alive "$1" || return 1
  args=$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  # Prometheus takes no -D flags: its data folder under this stack's .local identifies it.
  if [[ "$2" == prometheus ]]; then
    grep -qxF -- "--storage.tsdb.path=$PROMETHEUS_DIR/data" <<<"$args"
    return
  fi
  grep -qxF -- "-Dvigil.stack.service=$2" <<<"$args" && grep -qxF -- "-Dvigil.stack.root=$REPO_ROOT" <<<"$args"
}

rss_mb() {
  local kb
  kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || true)
  [[ -n "$kb" ]] && echo "$((kb / 1024))MB" || echo "-"
}

sha() { cat "$@" | sha256sum | cut -d' ' -f1; }

# Print where a service logs and the last 30 lines of it, for failure reports.
show_log_tail() {
  local file
  for file in "$@"; do
    if [[ ! -s "$file" ]]; then
      printf '[stack] (%s is empty or missing)\n' "$file" >&2
      continue
    fi
    printf '[stack] ---- last 30 lines of %s ----\n' "$file" >&2
    tail -n 30 "$file" >&2
    printf '[stack] ---- end of %s ----\n' "$file" >&2
  done
}

# Like show_log_tail, but only what was written after byte <offset> (for logs
# that are appended to across restarts).
show_log_since() { # show_log_since <file> <offset>
  local size
  size=$(stat -c %s "$1" 2>/dev/null || echo 0)
  if ((size <= $2)); then
    printf '[stack] (nothing written to %s by this start)\n' "$1" >&2
    return
  fi
  printf '[stack] ---- last 30 lines of %s (this start) ----\n' "$1" >&2
  tail -c +"$(($2 + 1))" "$1" | tail -n 30 >&2
  printf '[stack] ---- end of %s ----\n' "$1" >&2
}

# ---------------------------------------------------------------------------
# Per-service facts: port, pid file, log(s), the command that starts it
# ---------------------------------------------------------------------------
svc_port() {
  case "$1" in
    kafka) echo "$KAFKA_PORT" ;; registry) echo "$REGISTRY_PORT" ;; zipkin) echo "$ZIPKIN_PORT" ;;
    prometheus) echo "$PROMETHEUS_PORT" ;;
    postgres) echo "$PG_PORT" ;; redis) echo "$REDIS_PORT" ;;
  esac
}
svc_pidfile() { echo "$LOCAL/$1/$1.pid"; }
svc_log() {
  case "$1" in
    kafka) echo "$KAFKA_DIR/logs/server.log" ;;
    registry) echo "$REGISTRY_DIR/registry.log" ;;
    zipkin) echo "$ZIPKIN_DIR/zipkin.log" ;;
    prometheus) echo "$PROMETHEUS_DIR/prometheus.log" ;;
    postgres) echo "/var/log/postgresql/postgresql-$(pg_version)-main.log" ;;
    redis) redis_logfile ;;
  esac
}
svc_pid() { cat "$(svc_pidfile "$1")" 2>/dev/null || true; }

# The running Redis knows its log file; fall back to the one our start command uses.
redis_logfile() {
  local f
  f=$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" config get logfile 2>/dev/null | sed -n 2p || true)
  echo "${f:-/var/log/redis/ci.log}"
}

pg_version() { find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n1; }

# ---------------------------------------------------------------------------
# PostgreSQL and Redis: machine services, only started if they are down
# ---------------------------------------------------------------------------
is_local_host() { [[ "$1" == 127.0.0.1 || "$1" == localhost || "$1" == ::1 ]]; }

wait_for() { # wait_for <timeout> <command...>
  local timeout=$1 start=$SECONDS
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS - start < timeout)) || return 1
    sleep 1
  done
}

ensure_postgres() {
  need pg_isready "PostgreSQL check"
  if pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
    log "postgres: answering on $PG_HOST:$PG_PORT"
  else
    is_local_host "$PG_HOST" || die "postgres: $PG_HOST:$PG_PORT does not answer (not a local host, not starting it)"
    log "postgres: not answering, starting cluster $(pg_version)/main"
    pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main start ||
      fail_machine_service postgres "pg_ctlcluster could not start it"
    wait_for "$READY_TIMEOUT" pg_isready -q -h "$PG_HOST" -p "$PG_PORT" ||
      fail_machine_service postgres "not ready after ${READY_TIMEOUT}s"
    log "postgres: started"
  fi
  ensure_database
}

psql_admin() { psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }

ensure_database() {
  need psql "creating the '$PG_DB' database"
  local exists
  exists=$(psql_admin -c "select 1 from pg_database where datname='$PG_DB'") ||
    fail_machine_service postgres "cannot query pg_database as $PG_USER"
  if [[ "$exists" == 1 ]]; then
    log "postgres: database '$PG_DB' exists"
    return
  fi
  # A concurrent 'up' may create it between the check and here: re-check on error.
  if psql_admin -c "create database \"$PG_DB\"" 2>/dev/null ||
    [[ "$(psql_admin -c "select 1 from pg_database where datname='$PG_DB'")" == 1 ]]; then
    log "postgres: created database '$PG_DB'"
  else
    fail_machine_service postgres "could not create database '$PG_DB'"
  fi
}

redis_ping() { [[ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

ensure_redis() {
  need redis-cli "Redis check"
  if redis_ping; then
    log "redis: answering on $REDIS_HOST:$REDIS_PORT"
    return
  fi
  is_local_host "$REDIS_HOST" || die "redis: $REDIS_HOST:$REDIS_PORT does not answer (not a local host, not starting it)"
  log "redis: not answering, starting redis-server"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null ||
    fail_machine_service redis "redis-server could not start"
  wait_for "$READY_TIMEOUT" redis_ping || fail_machine_service redis "not answering PING after ${READY_TIMEOUT}s"
  log "redis: started"
}

fail_machine_service() {
  printf '[stack] ERROR: %s failed: %s (log: %s)\n' "$1" "$2" "$(svc_log "$1")" >&2
  show_log_tail "$(svc_log "$1")"
  exit 1
}

# ---------------------------------------------------------------------------
# Downloads (Maven Central through mvn; ~/.m2 is used as the cache)
# ---------------------------------------------------------------------------

# Run mvn quietly from the downloads folder (so a pom.xml in the caller's cwd
# is never picked up). Its output goes to mvn.log: even with -q, Maven 3.8
# prints stray ANSI codes. On failure: say what failed and show the log.
run_mvn() { # run_mvn <what failed> <mvn args...>
  local what=$1 mvn_log="$DOWNLOADS/mvn.log"
  shift
  mkdir -p "$DOWNLOADS"
  if ! (cd "$DOWNLOADS" && "$MVN" -q -B -Dstyle.color=never "$@") >"$mvn_log" 2>&1; then
    printf '[stack] ERROR: %s (log: %s)\n' "$what" "$mvn_log" >&2
    show_log_tail "$mvn_log"
    exit 1
  fi
}

# Kafka's runtime jars, resolved from deploy/local/kafka/pom.xml. A marker
# holding the pom's hash says the folder is complete, so warm starts skip mvn,
# and editing the pom re-resolves.
prepare_kafka_lib() {
  local pom="$SCRIPT_DIR/kafka/pom.xml" marker="$KAFKA_LIB/.complete" want
  want=$(sha "$pom")
  [[ "$(cat "$marker" 2>/dev/null)" == "$want" ]] && return
  need "$MVN" "resolving Kafka's jars"
  log "kafka: resolving jars from Maven Central (first run only)"
  rm -rf "$KAFKA_LIB"
  mkdir -p "$KAFKA_LIB"
  run_mvn "kafka: mvn could not resolve the jars of $pom" -f "$pom" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIB"
  check_slf4j_binding
  echo "$want" >"$marker"
}

# log4j-slf4j2-impl is an SLF4J 2 provider: with an slf4j-api 1.x jar the broker
# prints "No SLF4J providers were found" and logs nothing. The pom pins 2.x.
check_slf4j_binding() {
  local jars=("$KAFKA_LIB"/slf4j-api-*.jar) api
  api=$(basename "${jars[0]}")
  [[ ${#jars[@]} == 1 && "$api" == slf4j-api-2.* ]] ||
    die "kafka: resolved '${api:-no slf4j-api}', but log4j-slf4j2-impl needs slf4j-api 2.x (see kafka/pom.xml)"
}

# Compile the small readiness/smoke client once (javac is much faster than
# Java's source launcher on every readiness poll).
prepare_kafka_probe() {
  local src="$SCRIPT_DIR/kafka/KafkaProbe.java" stamp="$KAFKA_PROBE_DIR/.stamp" want
  want=$(sha "$src" "$KAFKA_LIB/.complete")
  [[ "$(cat "$stamp" 2>/dev/null)" == "$want" && -f "$KAFKA_PROBE_DIR/KafkaProbe.class" ]] && return
  need "$JAVAC" "compiling the Kafka readiness probe"
  rm -rf "$KAFKA_PROBE_DIR"
  mkdir -p "$KAFKA_PROBE_DIR"
  "$JAVAC" -nowarn -cp "$KAFKA_LIB/*" -d "$KAFKA_PROBE_DIR" "$src" || die "kafka: could not compile $src"
  echo "$want" >"$stamp"
}

registry_home() { echo "$REGISTRY_DIR/apicurio-registry-app-$APICURIO_VERSION"; }

prepare_registry() {
  local home tarball
  home=$(registry_home)
  [[ -f "$home/.unpacked" ]] && return
  tarball="$DOWNLOADS/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz"
  if [[ ! -s "$tarball" ]]; then
    need "$MVN" "downloading Apicurio Registry"
    log "registry: downloading Apicurio Registry $APICURIO_VERSION (first run only)"
    run_mvn "registry: mvn could not download apicurio-registry-app $APICURIO_VERSION" dependency:copy \
      -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" -DoutputDirectory="$DOWNLOADS"
  fi
  # Unpack into a temporary folder and rename, so an interrupted unpack is
  # never mistaken for a complete one.
  rm -rf "$home" "$home.tmp"
  mkdir -p "$home.tmp"
  tar -xzf "$tarball" -C "$home.tmp" || die "registry: cannot unpack $tarball"
  mv "$home.tmp" "$home"
  [[ -n "$(registry_jar)" ]] || die "registry: no quarkus-run.jar or *-runner.jar found in $tarball"
  touch "$home/.unpacked"
  rm -f "$tarball" # 100+ MB, still cached in ~/.m2
}

# The 3.0.x 'all' tarball is a Quarkus *legacy-jar*: <name>-runner.jar whose
# manifest Class-Path points at ./lib (hence "flat lib/ + meta/"). Newer
# Quarkus layouts ship quarkus-app/quarkus-run.jar instead; accept both.
registry_jar() {
  local home
  home=$(registry_home)
  find "$home" -maxdepth 3 \( -name 'quarkus-run.jar' -o -name '*-runner.jar' \) -print 2>/dev/null | head -n1
}

zipkin_jar() { echo "$DOWNLOADS/zipkin-server-$ZIPKIN_VERSION-exec.jar"; }

prepare_zipkin() {
  [[ -s "$(zipkin_jar)" ]] && return
  need "$MVN" "downloading Zipkin"
  log "zipkin: downloading zipkin-server $ZIPKIN_VERSION (first run only)"
  run_mvn "zipkin: mvn could not download zipkin-server $ZIPKIN_VERSION" dependency:copy \
    -Dartifact="io.zipkin:zipkin-server:$ZIPKIN_VERSION:jar:exec" -DoutputDirectory="$DOWNLOADS"
}

# ---------------------------------------------------------------------------
# Kafka configuration and storage
# ---------------------------------------------------------------------------
render_kafka_config() {
  mkdir -p "$KAFKA_DIR"
  sed -e "s#@HOST@#$HOST#g" -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" \
    -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" -e "s#@DATA_DIR@#$KAFKA_DATA#g" \
    "$SCRIPT_DIR/kafka/server.properties" >"$KAFKA_CONFIG"
}

# KRaft storage must be formatted once before the first start. The quorum is
# static (controller.quorum.voters), so no --standalone flag.
format_kafka_storage() {
  [[ -f "$KAFKA_DATA/meta.properties" ]] && return
  log "kafka: formatting storage in $KAFKA_DATA (cluster id $KAFKA_CLUSTER_ID)"
  mkdir -p "$KAFKA_DATA" "$KAFKA_DIR/logs"
  "$JAVA" -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$KAFKA_DIR/logs" -cp "$KAFKA_LIB/*" kafka.tools.StorageTool format \
    -t "$KAFKA_CLUSTER_ID" -c "$KAFKA_CONFIG" --ignore-formatted \
    >>"$KAFKA_DIR/logs/format.log" 2>&1 || {
    printf '[stack] ERROR: kafka failed: storage format (log: %s)\n' "$KAFKA_DIR/logs/format.log" >&2
    show_log_tail "$KAFKA_DIR/logs/format.log"
    exit 1
  }
}

# ---------------------------------------------------------------------------
# Java service commands. Each gets -Dvigil.stack.service=<name> (see
# pid_is_service) and exits on OOM rather than limping on.
# ---------------------------------------------------------------------------
service_command() {
  local common=(-Dvigil.stack.service="$1" -Dvigil.stack.root="$REPO_ROOT" -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true)
  # Registry and Zipkin carry light test traffic, so they trade peak speed for
  # start-up: C1 only (no C2 compile storms) and the serial GC. With the three
  # JVMs starting together on two cores this cut 'up' from ~25 s to ~15 s and
  # each JVM's RSS by ~50 MB. Kafka keeps the full JIT and G1: it is the hot path.
  local light=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC)
  case "$1" in
    kafka)
      # shellcheck disable=SC2206 # heap options are meant to be split
      CMD=("$JAVA" $KAFKA_HEAP -XX:+UseG1GC "${common[@]}"
        -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2.properties"
        -Dkafka.logs.dir="$KAFKA_DIR/logs"
        -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_CONFIG")
      ;;
    registry)
      # In-memory H2 storage is Apicurio 3's default (apicurio.storage.kind=sql,
      # apicurio.storage.sql.kind=h2, jdbc:h2:mem); stated explicitly.
      # use-canonical-hash: a schema re-registered with different whitespace or
      # key order gets the existing id, like Confluent (default is raw bytes).
      # legacy-id-mode=false: ccompat ids are content ids, so one schema has
      # one id across subjects, like Confluent.
      # rules.global.compatibility: the default rule behind subjects without
      # their own config (note: ccompat GET /config still reports NONE).
      # shellcheck disable=SC2206
      CMD=("$JAVA" $REGISTRY_HEAP "${light[@]}" "${common[@]}"
        -Dquarkus.http.host="$HOST" -Dquarkus.http.port="$REGISTRY_PORT"
        -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=h2
        -Dapicurio.ccompat.use-canonical-hash=true
        -Dapicurio.ccompat.legacy-id-mode.enabled=false
        -Dapicurio.rules.global.compatibility="$REGISTRY_DEFAULT_COMPAT"
        -Dapicurio.rest.deletion.artifact.enabled=true
        -Dapicurio.rest.deletion.artifact-version.enabled=true
        -Dapicurio.rest.deletion.group.enabled=true
        -Dquarkus.http.access-log.enabled=false
        -jar "$(registry_jar)")
      ;;
    zipkin)
      # Zipkin 3 serves with Armeria, which ignores server.address: bind via
      # armeria.ports. The span cap keeps the in-memory store inside the heap: the
      # kafkajs instrumentation makes a span per record, and 100k spans of the demo
      # filled 256 MB (OutOfMemoryError) after about two hours.
      # shellcheck disable=SC2206
      CMD=("$JAVA" $ZIPKIN_HEAP "${light[@]}" "${common[@]}" -jar "$(zipkin_jar)"
        "--armeria.ports[0].ip=$HOST" "--armeria.ports[0].port=$ZIPKIN_PORT"
        "--armeria.ports[0].protocols=http"
        --zipkin.storage.type=mem --zipkin.storage.mem.max-spans=25000)
      ;;
    prometheus)
      # Not a JVM (common/light unused). --web.enable-lifecycle: POST /-/reload re-reads the config and
      # rules after an edit; 2 days of data is plenty for a demo.
      CMD=("$PROMETHEUS_BIN" --config.file="$PROMETHEUS_CONFIG"
        --storage.tsdb.path="$PROMETHEUS_DIR/data"
        --storage.tsdb.retention.time="$PROMETHEUS_RETENTION"
        --web.listen-address="$HOST:$PROMETHEUS_PORT" --web.enable-lifecycle)
      ;;
  esac
}

# ---------------------------------------------------------------------------
# Start / readiness / stop of the Java services
# ---------------------------------------------------------------------------
declare -A STARTED_AT=()
# Size of Kafka's server.log when this run started it (the log is appended
# across restarts); empty when Kafka was already running.
KAFKA_LOG_OFFSET=""

# Already running and ours? A live pid from the pid file, or a listener on the
# port started by this script (pid file lost) which is then adopted.
service_running_pid() {
  local name=$1 pid owner
  pid=$(svc_pid "$name")
  if pid_is_service "$pid" "$name"; then
    echo "$pid"
    return
  fi
  owner=$(port_owner "$(svc_port "$name")")
  if pid_is_service "$owner" "$name"; then
    echo "$owner" >"$(svc_pidfile "$name")"
    echo "$owner"
  fi
}

# Refuse to start when the port belongs to some other program: the service
# would die with "address in use" and its log would be misleading.
check_port_free() {
  local name=$1 port=$2 owner
  port_open "$HOST" "$port" || return 0
  local cmdline hint=""
  owner=$(port_owner "$port")
  cmdline=$(tr '\0' ' ' <"/proc/${owner:-0}/cmdline" 2>/dev/null || true)
  if [[ "$cmdline" =~ -Dvigil\.stack\.root=([^ ]*) ]]; then
    hint="; it is the Vigil stack of ${BASH_REMATCH[1]}: stop it there, or use other VIGIL_*_PORT values"
  fi
  printf '[stack] ERROR: %s failed: port %s is already used by pid %s (%s)%s\n' "$name" "$port" \
    "${owner:-?}" "$(cut -c1-120 <<<"$cmdline")" "$hint" >&2
  exit 1
}

start_service() {
  local name=$1 pid log
  pid=$(service_running_pid "$name")
  if [[ -n "$pid" ]]; then
    log "$name: already running (pid $pid), left alone"
    STARTED_AT[$name]=$SECONDS
    return
  fi
  service_command "$name"
  log=$(svc_log "$name")
  mkdir -p "$(dirname "$log")" "$LOCAL/$name"
  if [[ "$name" == kafka ]]; then
    # Kafka logs through log4j into server.log (appended across restarts: note
    # where this start begins). Its raw JVM output goes to a fresh stdout.log.
    KAFKA_LOG_OFFSET=$(stat -c %s "$KAFKA_DIR/logs/server.log" 2>/dev/null || echo 0)
    log="$KAFKA_DIR/logs/stdout.log"
    : >"$log"
  else
    printf '\n===== %s: starting %s =====\n' "$(date -Is)" "$name" >>"$log"
  fi
  # A stale pid file would make wait_ready watch a dead (or reused) pid.
  rm -f "$(svc_pidfile "$name")"
  # setsid: the service must outlive this script and not get the terminal's
  # Ctrl-C. The child writes its own pid, then execs java (same pid).
  (
    cd "$LOCAL/$name"
    exec 9>&- # the stack lock must not be inherited by a long-lived JVM
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner bash
    exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$(svc_pidfile "$name")" "${CMD[@]}" \
      </dev/null >>"$log" 2>&1
  ) &
  STARTED_AT[$name]=$SECONDS
  log "$name: starting (log $(svc_log "$name"))"
}

kafka_ready() {
  port_open "$HOST" "$KAFKA_PORT" || return 1
  # Cheap gate first: the probe is a JVM start, which slows the other
  # services' start-up on two cores if repeated every second.
  if [[ -n "$KAFKA_LOG_OFFSET" ]]; then
    tail -c +"$((KAFKA_LOG_OFFSET + 1))" "$KAFKA_DIR/logs/server.log" 2>/dev/null |
      grep -q 'Kafka Server started' || return 1
  fi
  # A real metadata round trip, not just an open socket.
  timeout 30 "$JAVA" -cp "$KAFKA_LIB/*:$KAFKA_PROBE_DIR" KafkaProbe ready "$HOST:$KAFKA_PORT" >/dev/null 2>&1
}

registry_ready() {
  local body
  body=$(curl -fsS --max-time 5 "http://$HOST:$REGISTRY_PORT/apis/ccompat/v7/subjects" 2>/dev/null) || return 1
  [[ "$body" == \[* ]]
}

zipkin_ready() { curl -fsS --max-time 5 "http://$HOST:$ZIPKIN_PORT/health" >/dev/null 2>&1; }

prometheus_ready() { curl -fsS --max-time 5 "http://$HOST:$PROMETHEUS_PORT/-/ready" >/dev/null 2>&1; }

# Before Prometheus starts: the tools are there and the config with its rule files is valid (promtool
# says what is wrong; Prometheus itself would only log it and exit).
prepare_prometheus() {
  need "$PROMETHEUS_BIN" "the opt-in Prometheus (apt-get install -y --no-install-recommends prometheus)"
  need "$PROMTOOL_BIN" "checking the Prometheus config (Debian's prometheus package)"
  local out
  out=$("$PROMTOOL_BIN" check config "$PROMETHEUS_CONFIG" 2>&1) || {
    printf '%s\n' "$out" >&2
    die "prometheus: $PROMETHEUS_CONFIG or its rule files are invalid (promtool check config)"
  }
}

fail_service() {
  local name=$1 reason=$2 pid
  printf '[stack] ERROR: %s failed: %s (log: %s)\n' "$name" "$reason" "$(svc_log "$name")" >&2
  if [[ "$name" == kafka ]]; then
    # server.log only if this start wrote to it (it is appended across
    # restarts); stdout.log shows JVM errors from before log4j was up.
    show_log_since "$KAFKA_DIR/logs/server.log" "${KAFKA_LOG_OFFSET:-0}"
    [[ -s "$KAFKA_DIR/logs/stdout.log" ]] && show_log_tail "$KAFKA_DIR/logs/stdout.log"
  else
    show_log_tail "$(svc_log "$name")"
  fi
  # A half-started JVM would make the next 'up' wait on it again: stop it.
  pid=$(svc_pid "$name")
  if pid_is_service "$pid" "$name"; then
    printf '[stack] stopping the unready %s (pid %s)\n' "$name" "$pid" >&2
    stop_pid "$name" "$pid" >&2
  fi
  exit 1
}

wait_ready() {
  local name=$1 start=${STARTED_AT[$1]:-$SECONDS} pid
  # The pid file is written by the child itself; give it a moment.
  for _ in $(seq 50); do
    pid=$(svc_pid "$name")
    [[ -n "$pid" ]] && break
    sleep 0.2
  done
  until "${name}_ready"; do
    pid_alive "$pid" || fail_service "$name" "process exited during start-up"
    ((SECONDS - start < READY_TIMEOUT)) || fail_service "$name" "not ready after ${READY_TIMEOUT}s"
    sleep 1
  done
  log "$name: ready on $HOST:$(svc_port "$name") (pid $pid, $((SECONDS - start))s, RSS $(rss_mb "$pid"))"
}

stop_pid() {
  local name=$1 pid=$2 start=$SECONDS
  kill -TERM "$pid" 2>/dev/null || true
  while pid_alive "$pid" && ((SECONDS - start < STOP_TIMEOUT)); do sleep 0.5; done
  if pid_alive "$pid"; then
    warn "$name: still running ${STOP_TIMEOUT}s after SIGTERM, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while pid_alive "$pid"; do sleep 0.2; done
  fi
  rm -f "$(svc_pidfile "$name")"
  log "$name: stopped (pid $pid, $((SECONDS - start))s)"
}

stop_service() {
  local name=$1 pid
  pid=$(service_running_pid "$name")
  if [[ -z "$pid" ]]; then
    rm -f "$(svc_pidfile "$name")"
    log "$name: not running"
    return
  fi
  stop_pid "$name" "$pid"
}

# ---------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------

# One 'up'/'down' at a time: two concurrent runs would both start a broker.
take_lock() {
  mkdir -p "$LOCAL"
  exec 9>"$LOCAL/stack.lock"
  flock -w 300 9 || die "another stack.sh up/down is still running (lock $LOCAL/stack.lock)"
}

cmd_up() {
  local t0=$SECONDS name
  need "$JAVA" "running the Java services"
  need curl "registry/Zipkin readiness checks"
  take_lock

  ensure_postgres
  ensure_redis
  # 9>&-: the PostgreSQL server it starts must not inherit (and hold) the stack lock.
  if [[ "$TIMESCALEDB_ON" == 1 ]]; then bash "$TIMESCALEDB_SCRIPT" up 9>&-; fi

  # Downloads first, one mvn at a time (parallel mvn runs race on ~/.m2).
  if has_service kafka; then
    prepare_kafka_lib
    prepare_kafka_probe
  fi
  if has_service registry; then prepare_registry; fi
  if has_service zipkin; then prepare_zipkin; fi
  if [[ "$PROMETHEUS_ON" == 1 ]]; then prepare_prometheus; fi

  if [[ "$FRESH" == 1 ]]; then
    log "VIGIL_STACK_FRESH=1: stopping Java services and wiping Kafka data"
    stop_all_java
    rm -rf "$KAFKA_DATA"
  fi

  if has_service kafka && [[ -z "$(service_running_pid kafka)" ]]; then
    render_kafka_config
    format_kafka_storage
  fi

  # Check every port first, so a conflict stops 'up' before anything started.
  for name in "${UP_SERVICES[@]}"; do
    [[ -n "$(service_running_pid "$name")" ]] && continue
    check_port_free "$name" "$(svc_port "$name")"
    if [[ "$name" == kafka ]]; then check_port_free kafka "$KAFKA_CONTROLLER_PORT"; fi
  done

  # Start all three JVMs before waiting on any: start-up is CPU-bound and
  # overlaps well even on two cores.
  for name in "${UP_SERVICES[@]}"; do start_service "$name"; done
  for name in "${UP_SERVICES[@]}"; do wait_ready "$name"; done

  log "all services up in $((SECONDS - t0))s"
  cmd_status || true
}

# Stop the services side by side: Kafka's controlled shutdown alone takes seconds. Prometheus too,
# whenever it runs (opted in or not: 'down' leaves nothing of this script running).
stop_all_java() {
  local name
  for name in "${JAVA_SERVICES[@]}"; do stop_service "$name" & done
  if [[ "$PROMETHEUS_ON" == 1 || -n "$(service_running_pid prometheus)" ]]; then stop_service prometheus & fi
  wait
}

# 'up|down|status prometheus': the opt-in Prometheus alone (no PostgreSQL, Redis or Java services).
cmd_up_prometheus() {
  take_lock
  prepare_prometheus
  [[ -n "$(service_running_pid prometheus)" ]] || check_port_free prometheus "$PROMETHEUS_PORT"
  start_service prometheus
  wait_ready prometheus
  cmd_status_prometheus || true
}

cmd_down_prometheus() {
  take_lock
  stop_service prometheus
}

cmd_status_prometheus() {
  printf '%-10s %-6s %-8s %-8s %-7s %s\n' SERVICE PORT STATE PID RSS LOG
  prometheus_status_line
}

# The status line of Prometheus (and its targets: up/total); exit 1 unless it is up.
prometheus_status_line() {
  local pid state=down targets=""
  pid=$(service_running_pid prometheus)
  if [[ -n "$pid" ]]; then
    if prometheus_ready; then state=up; else state=starting; fi
  fi
  if [[ "$state" == up ]]; then
    targets=$(curl -fsS --max-time 5 "http://$HOST:$PROMETHEUS_PORT/api/v1/targets?state=active" 2>/dev/null |
      grep -o '"health":"[a-z]*"' | sort | uniq -c | awk '{split($2, h, "\""); printf "%s%s %s", sep, $1, h[4]; sep=", "}' || true)
  fi
  status_line prometheus "$PROMETHEUS_PORT" "$state" "${pid:--}" "$(svc_log prometheus)"
  [[ -n "$targets" ]] && printf '%-10s targets: %s (http://%s:%s/targets)\n' "" "$targets" "$HOST" "$PROMETHEUS_PORT"
  [[ "$state" == up ]]
}

cmd_down() {
  take_lock
  stop_all_java
  if [[ "$TIMESCALEDB_ON" == 1 ]]; then bash "$TIMESCALEDB_SCRIPT" down; fi
  log "PostgreSQL and Redis left running (they belong to the machine)"
}

status_line() { # name port state pid log
  local rss="-"
  [[ "$4" != - ]] && rss=$(rss_mb "$4")
  printf '%-10s %-6s %-8s %-8s %-7s %s\n' "$1" "$2" "$3" "$4" "$rss" "$5"
}

cmd_status() {
  local rc=0 name pid state port
  printf '%-10s %-6s %-8s %-8s %-7s %s\n' SERVICE PORT STATE PID RSS LOG
  for name in "${JAVA_SERVICES[@]}"; do
    port=$(svc_port "$name")
    pid=$(service_running_pid "$name")
    if [[ -z "$pid" ]]; then
      state=down
    elif port_open "$HOST" "$port"; then
      state=up
    else
      state=starting # process alive, port not open yet
    fi
    [[ "$state" == up ]] || rc=1
    status_line "$name" "$port" "$state" "${pid:--}" "$(svc_log "$name")"
  done

  pid=$(port_owner "$PG_PORT")
  if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; then state=up; else state=down; rc=1; fi
  status_line postgres "$PG_PORT" "$state" "${pid:--}" "$(svc_log postgres)"

  pid=$(port_owner "$REDIS_PORT")
  if redis_ping; then state=up; else state=down; rc=1; fi
  status_line redis "$REDIS_PORT" "$state" "${pid:--}" "$(svc_log redis)"

  if [[ "$TIMESCALEDB_ON" == 1 ]]; then bash "$TIMESCALEDB_SCRIPT" status || rc=1; fi

  # Prometheus: listed when opted in (then it counts) or when it runs anyway.
  if [[ "$PROMETHEUS_ON" == 1 ]]; then
    prometheus_status_line || rc=1
  elif [[ -n "$(service_running_pid prometheus)" ]]; then
    prometheus_status_line || true
  fi
  return "$rc"
}

main() {
  case "${1:-} ${2:-}" in
    "up prometheus") cmd_up_prometheus ;;
    "down prometheus") cmd_down_prometheus ;;
    "status prometheus") cmd_status_prometheus ;;
    "up timescaledb") take_lock && bash "$TIMESCALEDB_SCRIPT" up 9>&- && bash "$TIMESCALEDB_SCRIPT" status ;;
    "down timescaledb") take_lock && bash "$TIMESCALEDB_SCRIPT" down ;;
    "status timescaledb") printf '%-10s %-6s %-8s %-8s %-7s %s\n' SERVICE PORT STATE PID RSS LOG && bash "$TIMESCALEDB_SCRIPT" status ;;
    "up ")
      if [[ "$KAFKA_CLUSTER" == 1 ]]; then prepare_kafka_lib && kafka_cluster up; fi
      cmd_up
      ;;
    "down ")
      cmd_down
      if [[ "$KAFKA_CLUSTER" == 1 ]]; then kafka_cluster down; fi
      ;;
    "status ")
      local rc=0
      cmd_status || rc=1
      if [[ "$KAFKA_CLUSTER" == 1 ]]; then kafka_cluster status || rc=1; fi
      return "$rc"
      ;;
    "-h " | "--help " | "help ") usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
