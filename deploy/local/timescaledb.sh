#!/usr/bin/env bash
# The PostgreSQL 15 cluster that serves Vigil's database with TimescaleDB preloaded. The stack owns
# it (its own data folder under .local/ and its own port, like Kafka): the machine's server on 5432
# is left exactly as it is (no preload, no config change).
#
#   deploy/local/timescaledb.sh up       build/install TimescaleDB when the server has no usable
#                                        extension, init the cluster once, start it, create the database
#   deploy/local/timescaledb.sh down     stop the cluster (its data stays)
#   deploy/local/timescaledb.sh status   one status line; exit 0 only if it answers
#
# stack.sh calls it (`stack.sh up` brings it up with the rest; `stack.sh up|down|status timescaledb`
# handles it alone). The build: the tarball named by VIGIL_TIMESCALEDB_SOURCE (a path or an http(s)
# URL; default ../shared/vendor/timescaledb-2.28.3.tar.gz beside the repo), built with cmake against
# Debian's postgresql-server-dev-15 and `make install`ed into /usr/lib/postgresql/15 and
# /usr/share/postgresql/15 (how the extension is installed; installed files do not change a server
# that does not preload them). The build folder is cached under .local/timescaledb/build/<sha256 of
# the tarball>, so a warm `up` neither unpacks nor compiles.
#
# Without a tarball or build tools the cluster still starts, WITHOUT the preload: plain PostgreSQL 15
# on the same port, so Vigil's URL does not change and its migrations take the plain-table path. The
# script says so loudly (and `status` shows `plain`).
set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
SHARED_LOCAL="$REPO_ROOT/.local"
LOCAL="${VIGIL_STACK_LOCAL:-$SHARED_LOCAL}"

PG_BIN="${VIGIL_TIMESCALEDB_PG_BIN:-/usr/lib/postgresql/15/bin}"
HOST="${VIGIL_TIMESCALEDB_HOST:-127.0.0.1}"
PORT="${VIGIL_TIMESCALEDB_PORT:-5433}"
PG_USER="postgres"
DB="${VIGIL_PG_DB:-vigil}"
# Default: the vendored tarball beside the repo (../shared/vendor), else the workplace's copy at
# /work/shared/vendor (a clone made elsewhere, CI's for one, still finds it).
default_source() {
  local name=timescaledb-2.28.3.tar.gz c
  for c in "$REPO_ROOT/../shared/vendor/$name" "/work/shared/vendor/$name"; do
    [[ -f "$c" ]] && { echo "$c"; return; }
  done
  echo "$REPO_ROOT/../shared/vendor/$name"
}
SOURCE="${VIGIL_TIMESCALEDB_SOURCE:-$(default_source)}"
# Require TimescaleDB: fail instead of falling back to plain PostgreSQL (CI sets it).
REQUIRED="${VIGIL_TIMESCALEDB_REQUIRED:-0}"
READY_TIMEOUT="${VIGIL_STACK_TIMEOUT:-90}"

DIR="$LOCAL/timescaledb"
# As root the cluster runs as `postgres`, which must be able to walk down to its directory. A checkout
# under a directory others cannot search (e.g. a `mktemp -d`, mode 0700) made initdb fail with a bare
# "permission denied"; such a checkout keeps its cluster under /var/tmp instead, one per checkout.
reachable_by_postgres() {
  local d=$1
  while [[ ! -e "$d" ]]; do d=$(dirname "$d"); done
  runuser -u postgres -- test -x "$d"
}
MOVED_FROM=""
if [[ "$(id -u)" == 0 ]] && id postgres >/dev/null 2>&1 && ! reachable_by_postgres "$DIR"; then
  MOVED_FROM="$DIR"
  DIR="/var/tmp/vigil-timescaledb-$(printf '%s' "$DIR" | sha256sum | cut -c1-12)"
fi
DATA="$DIR/data"
RUN="$DIR/run" # unix socket folder (kept out of /var/run/postgresql, which the machine's server uses)
LOG_FILE="$DIR/postgres.log"
BUILD_ROOT="$SHARED_LOCAL/timescaledb/build"

log()  { printf '[timescaledb] %s\n' "$*"; }
die()  { printf '[timescaledb] ERROR: %s\n' "$*" >&2; exit 1; }
loud() {
  printf '[timescaledb] ################################################################\n' >&2
  printf '[timescaledb] WARNING: %s\n' "$@" >&2
  printf '[timescaledb] ################################################################\n' >&2
}

# PostgreSQL refuses to run as root: as root, run the server tools as the 'postgres' user.
as_pg() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_ready() { "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PORT" 2>/dev/null; }
psql_db() { "$PG_BIN/psql" -h "$HOST" -p "$PORT" -U "$PG_USER" -v ON_ERROR_STOP=1 -qtA "$@"; }

pkglibdir() { "$PG_BIN/pg_config" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib; }
sharedir() { "$PG_BIN/pg_config" --sharedir 2>/dev/null || echo /usr/share/postgresql/15; }

# The extension version installed into the server's folders ('' when none): its control file and
# the loader library both present.
installed_version() {
  local control
  control="$(sharedir)/extension/timescaledb.control"
  [[ -f "$control" && -f "$(pkglibdir)/timescaledb.so" ]] || return 0
  sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" "$control"
}

# Fetch the source into a local file (a URL is downloaded once, into .local/timescaledb/).
local_source() {
  if [[ "$SOURCE" =~ ^https?:// ]]; then
    local file
    file="$SHARED_LOCAL/timescaledb/$(basename "$SOURCE")"
    if [[ ! -f "$file" ]]; then
      mkdir -p "$(dirname "$file")"
      curl -fsSL --max-time 300 -o "$file.part" "$SOURCE" && mv "$file.part" "$file" || return 1
    fi
    echo "$file"
  elif [[ -f "$SOURCE" ]]; then
    echo "$SOURCE"
  else
    return 1
  fi
}

# cmake, a C compiler, PostgreSQL 15's server headers and OpenSSL's: apt-get them when missing
# (as root; otherwise say what is missing).
ensure_build_tools() {
  local missing=()
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  command -v cc >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || missing+=(build-essential)
  [[ -f "$("$PG_BIN/pg_config" --includedir-server 2>/dev/null)/postgres.h" ]] || missing+=(postgresql-server-dev-15)
  [[ -f /usr/include/openssl/ssl.h ]] || missing+=(libssl-dev)
  ((${#missing[@]} == 0)) && return 0
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing build tools: ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >"$DIR/apt.log" 2>&1 ||
      { log "apt-get failed (see $DIR/apt.log)"; return 1; }
    return 0
  fi
  log "missing build tools: ${missing[*]} (apt-get install -y ${missing[*]})"
  return 1
}

# Build (or reuse the cached build of) the tarball and install it. Returns 1 when it cannot.
build_and_install() {
  local tarball sum build t0 version
  tarball=$(local_source) || { log "no TimescaleDB source at $SOURCE"; return 1; }
  sum=$(sha256sum "$tarball" | cut -d' ' -f1)
  build="$BUILD_ROOT/$sum"
  ensure_build_tools || return 1
  if [[ -f "$build/.built" ]]; then
    log "reusing the cached build of $(basename "$tarball") (sha256 ${sum:0:12}, $build)"
  else
    t0=$SECONDS
    log "building TimescaleDB from $tarball (sha256 ${sum:0:12}); this takes minutes"
    rm -rf "$build" && mkdir -p "$build"
    tar xzf "$tarball" -C "$build" --strip-components=1
    (
      cd "$build"
      ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DCMAKE_BUILD_TYPE=Release \
        -DPG_CONFIG="$PG_BIN/pg_config" -DSEND_TELEMETRY_DEFAULT=NO
      cd build && make -j"$(nproc)"
    ) >"$build.log" 2>&1 || { log "the build failed (see $build.log)"; return 1; }
    touch "$build/.built"
    log "built TimescaleDB in $((SECONDS - t0))s (log $build.log)"
  fi
  (cd "$build/build" && make install) >"$build.install.log" 2>&1 ||
    { log "make install failed (see $build.install.log)"; return 1; }
  version=$(installed_version)
  log "installed TimescaleDB $version into $(pkglibdir) and $(sharedir)/extension"
}

# Decide whether the cluster preloads TimescaleDB: an installed extension is used as it is; else
# build it. Prints 1 (preload) or 0 (plain PostgreSQL).
want_timescaledb() {
  local version
  version=$(installed_version)
  if [[ -n "$version" ]]; then
    log "TimescaleDB $version is installed in $(pkglibdir)" >&2
    echo 1
  elif build_and_install >&2; then
    echo 1
  else
    echo 0
  fi
}

write_config() { # write_config <preload 0|1>
  local conf="$DATA/conf.d/vigil.conf"
  mkdir -p "$DATA/conf.d"
  {
    echo "# Written by deploy/local/timescaledb.sh on every 'up' (edits are lost)."
    echo "listen_addresses = '$HOST'"
    echo "port = $PORT"
    echo "unix_socket_directories = '$RUN'"
    # The test suite runs many specs side by side, each with its own pools and pg-boss.
    echo "max_connections = 300"
    if [[ "$1" == 1 ]]; then
      echo "shared_preload_libraries = 'timescaledb'"
      echo "timescaledb.telemetry_level = off"
      # One job scheduler per database with the extension, plus the jobs they run: the specs
      # create many small databases at once.
      echo "max_worker_processes = 32"
      echo "timescaledb.max_background_workers = 24"
    else
      echo "# TimescaleDB not available: plain PostgreSQL (no preload)."
    fi
  } >"$conf"
  grep -q "^include_dir = 'conf.d'" "$DATA/postgresql.conf" || echo "include_dir = 'conf.d'" >>"$DATA/postgresql.conf"
  [[ "$(id -u)" == 0 ]] && chown -R postgres:postgres "$DATA/conf.d"
  return 0
}

init_cluster() {
  [[ -f "$DATA/PG_VERSION" ]] && return 0
  log "initdb $DATA (trust on loopback, superuser $PG_USER)"
  mkdir -p "$DATA"
  [[ "$(id -u)" == 0 ]] && chown -R postgres:postgres "$DIR"
  as_pg "$PG_BIN/initdb" -D "$DATA" -U "$PG_USER" --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
    die "initdb failed (see $DIR/initdb.log)"
}

running_preload() { psql_db -d postgres -c "show shared_preload_libraries" 2>/dev/null | grep -qw timescaledb; }

cmd_up() {
  local t0=$SECONDS preload
  [[ -x "$PG_BIN/initdb" ]] || die "no PostgreSQL 15 server binaries in $PG_BIN (apt-get install -y postgresql-15)"
  mkdir -p "$DIR" "$RUN"
  [[ "$(id -u)" == 0 ]] && chown postgres:postgres "$DIR" "$RUN"
  [[ -n "$MOVED_FROM" ]] && log "the postgres user cannot reach $MOVED_FROM (a parent directory others cannot search): the cluster lives in $DIR"
  preload=$(want_timescaledb)
  if [[ "$preload" == 0 ]]; then
    [[ "$REQUIRED" == 1 ]] && die "VIGIL_TIMESCALEDB_REQUIRED=1 but TimescaleDB could not be built or found"
    loud "TimescaleDB is NOT available (no source at $SOURCE or no build tools)." \
      "Vigil's database on $HOST:$PORT is PLAIN PostgreSQL 15: migrations take the plain-table path." \
      "Set VIGIL_TIMESCALEDB_SOURCE to the TimescaleDB 2.28 source tarball (path or URL) and run up again."
  fi
  init_cluster
  write_config "$preload"
  if pg_ready; then
    if [[ "$preload" == 1 ]] && ! running_preload; then
      log "restarting the cluster to preload timescaledb"
      as_pg "$PG_BIN/pg_ctl" -D "$DATA" -w -t "$READY_TIMEOUT" restart -l "$LOG_FILE" >/dev/null ||
        die "restart failed (see $LOG_FILE)"
    else
      log "already answering on $HOST:$PORT"
    fi
  else
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" -w -t "$READY_TIMEOUT" start -l "$LOG_FILE" >/dev/null ||
      { tail -n 20 "$LOG_FILE" >&2 || true; die "the cluster did not start (see $LOG_FILE)"; }
  fi
  if [[ "$(psql_db -d postgres -c "select 1 from pg_database where datname='$DB'")" != 1 ]]; then
    psql_db -d postgres -c "create database \"$DB\"" && log "created database '$DB'"
  fi
  log "up in $((SECONDS - t0))s: $(describe)"
}

cmd_down() {
  if [[ -f "$DATA/postmaster.pid" ]]; then
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null && log "stopped"
  fi
  return 0
}

# 'timescaledb <version>' when preloaded, 'plain' otherwise.
describe() {
  if running_preload; then
    echo "timescaledb $(installed_version) preloaded, postgres://$PG_USER@$HOST:$PORT/$DB"
  else
    echo "plain PostgreSQL (no timescaledb preload), postgres://$PG_USER@$HOST:$PORT/$DB"
  fi
}

cmd_status() {
  local pid="-" state=down kind=""
  [[ -f "$DATA/postmaster.pid" ]] && pid=$(head -n1 "$DATA/postmaster.pid")
  if pg_ready; then
    state=up
    if running_preload; then kind="timescaledb $(installed_version)"; else kind="plain (no timescaledb)"; fi
  fi
  local rss="-"
  [[ "$pid" != - ]] && rss="$(($(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0) / 1024))MB"
  printf '%-10s %-6s %-8s %-8s %-7s %s %s\n' timescaledb "$PORT" "$state" "$pid" "$rss" "$LOG_FILE" "$kind"
  [[ "$state" == up ]]
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *)
    sed -n '2,21p' "$0" >&2
    exit 2
    ;;
esac
