#!/usr/bin/env bash
# Smoke test of a running local stack (start it with deploy/local/stack.sh up).
# Proves each service does real work, not just that its port is open:
#   kafka     topic create, one aborted + one committed transaction, and a
#             read_committed consumer that sees only the committed record
#             (Java client from the broker's own jars)
#   registry  Confluent API: register, fetch by id, set BACKWARD_TRANSITIVE,
#             incompatible version refused with 409, compatible one accepted
#   zipkin    a span POSTed to /api/v2/spans can be read back
#   postgres  'select 1' in the vigil database; redis SET/GET
#   node      if node_modules has kafkajs and @kafkajs/confluent-schema-registry:
#             the app's own clients (transactions with sendOffsets, Avro
#             register/encode/decode) - see smoke-node.cjs
# Exit 0 only if everything passed. Uses the same VIGIL_* variables as stack.sh.
set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
LOCAL="$REPO_ROOT/.local"
JAVA="${JAVA:-java}"
HOST="${VIGIL_HOST:-127.0.0.1}"
KAFKA="$HOST:${VIGIL_KAFKA_PORT:-9092}"
REGISTRY="http://$HOST:${VIGIL_REGISTRY_PORT:-8081}/apis/ccompat/v7"
ZIPKIN="http://$HOST:${VIGIL_ZIPKIN_PORT:-9411}"
PG_HOST="${VIGIL_PG_HOST:-127.0.0.1}"
PG_PORT="${VIGIL_PG_PORT:-5432}"
PG_USER="${VIGIL_PG_USER:-postgres}"
PG_DB="${VIGIL_PG_DB:-vigil}"
REDIS_HOST="${VIGIL_REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${VIGIL_REDIS_PORT:-6379}"

passed=0
failed=0
ok()   { printf 'ok    %s\n' "$*"; passed=$((passed + 1)); }
fail() { printf 'FAIL  %s\n' "$*"; failed=$((failed + 1)); }
# expect <ok message> <failure message> <test command...>
expect() {
  local good=$1 bad=$2
  shift 2
  if "$@"; then ok "$good"; else fail "$bad"; fi
}

# ---- Kafka ----------------------------------------------------------------
smoke_kafka() {
  local out
  if out=$("$JAVA" -cp "$LOCAL/kafka/lib/*:$LOCAL/kafka/probe" KafkaProbe smoke "$KAFKA" 2>&1); then
    ok "kafka: $(echo "$out" | tr '\n' ';' | sed 's/;$//')"
  else
    fail "kafka: $out"
  fi
}

# ---- Apicurio Registry (Confluent API) ----------------------------------------
# http <method> <path> [body] -> sets CODE and BODY
http() {
  local resp
  resp=$(curl -sS -X "$1" -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
    ${3:+--data "$3"} -w '\n%{http_code}' "$REGISTRY$2") || resp=$'\n000'
  CODE=${resp##*$'\n'}
  BODY=${resp%$'\n'*}
}

smoke_registry() {
  local subject="smoke-$$-$RANDOM-value" id
  local v1='{"schema":"{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"a\",\"type\":\"string\"}]}"}'
  # adds a field without a default: not backward compatible
  local bad='{"schema":"{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"a\",\"type\":\"string\"},{\"name\":\"b\",\"type\":\"int\"}]}"}'
  # adds a field with a default: backward compatible
  local good='{"schema":"{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"a\",\"type\":\"string\"},{\"name\":\"c\",\"type\":\"int\",\"default\":0}]}"}'

  http POST "/subjects/$subject/versions" "$v1"
  id=$(echo "$BODY" | jq -r '.id // empty' 2>/dev/null || true)
  [[ "$CODE" == 200 && -n "$id" ]] || { fail "registry: register -> $CODE $BODY"; return; }
  ok "registry: registered $subject -> id $id"

  http GET "/schemas/ids/$id"
  local found=no
  [[ "$BODY" == *'"name\":\"T\"'* ]] && found=yes
  expect "registry: GET /schemas/ids/$id" "registry: GET /schemas/ids/$id -> $CODE $BODY" \
    [ "$CODE:$found" = 200:yes ]

  http PUT "/config/$subject" '{"compatibility":"BACKWARD_TRANSITIVE"}'
  expect "registry: compatibility BACKWARD_TRANSITIVE set" "registry: PUT config -> $CODE $BODY" \
    [ "$CODE" = 200 ]

  http POST "/subjects/$subject/versions" "$bad"
  expect "registry: incompatible version refused (409)" \
    "registry: incompatible version -> $CODE $BODY (expected 409)" [ "$CODE" = 409 ]

  http POST "/subjects/$subject/versions" "$good"
  expect "registry: compatible version accepted ($BODY)" "registry: compatible version -> $CODE $BODY" \
    [ "$CODE" = 200 ]

  http POST "/subjects/$subject/versions" "$v1"
  local again
  again=$(echo "$BODY" | jq -r '.id // empty' 2>/dev/null || true)
  expect "registry: re-registering v1 returns id $id" "registry: re-register v1 -> $CODE $BODY (expected id $id)" \
    [ "$CODE:$again" = "200:$id" ]

  http DELETE "/subjects/$subject"
  [[ "$CODE" == 200 ]] || fail "registry: DELETE subject -> $CODE $BODY"

  # A subject without config of its own falls back to the default rule
  # (stack.sh sets BACKWARD, as Confluent does).
  if [[ "${VIGIL_REGISTRY_DEFAULT_COMPATIBILITY:-BACKWARD}" == BACKWARD ]]; then
    subject="smoke-$$-$RANDOM-noconfig-value"
    http POST "/subjects/$subject/versions" "$v1"
    http POST "/subjects/$subject/versions" "$bad"
    expect "registry: default BACKWARD rule refuses incompatible version without subject config" \
      "registry: incompatible version without subject config -> $CODE $BODY (expected 409)" [ "$CODE" = 409 ]
    http DELETE "/subjects/$subject"
  fi
}

# ---- Zipkin -----------------------------------------------------------------
smoke_zipkin() {
  local trace now code
  trace=$(printf '%016x%016x' "$RANDOM$RANDOM" "$$$RANDOM")
  now=$(($(date +%s%N) / 1000))
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' "$ZIPKIN/api/v2/spans" \
    --data "[{\"traceId\":\"$trace\",\"id\":\"${trace:16}\",\"name\":\"smoke\",\"timestamp\":$now,\"duration\":1000,\"localEndpoint\":{\"serviceName\":\"vigil-smoke\"}}]") || code=000
  [[ "$code" == 202 ]] || { fail "zipkin: POST /api/v2/spans -> $code"; return; }
  # Collection is asynchronous: give it a moment.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    if curl -fsS "$ZIPKIN/api/v2/trace/$trace" 2>/dev/null | grep -q '"vigil-smoke"'; then
      ok "zipkin: span stored and read back (trace $trace)"
      return
    fi
    sleep 0.5
  done
  fail "zipkin: trace $trace not found after POST"
}

# ---- PostgreSQL and Redis -----------------------------------------------------
smoke_machine_services() {
  expect "postgres: select 1 in '$PG_DB'" "postgres: cannot query database '$PG_DB'" \
    [ "$(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -qtAc 'select 1' 2>&1)" = 1 ]
  local key="vigil:smoke:$$"
  if [[ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" set "$key" v EX 10)" == OK &&
    "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" get "$key")" == v ]]; then
    ok "redis: SET/GET"
  else
    fail "redis: SET/GET"
  fi
}

# ---- The app's Node clients -------------------------------------------------
smoke_node() {
  local out
  if ! command -v node >/dev/null || [[ ! -d "$REPO_ROOT/node_modules/kafkajs" ||
    ! -d "$REPO_ROOT/node_modules/@kafkajs/confluent-schema-registry" ]]; then
    echo "skip  node: kafkajs / @kafkajs/confluent-schema-registry not installed (npm ci)"
    return
  fi
  if out=$(KAFKA_BROKERS="$KAFKA" SCHEMA_REGISTRY_URL="$REGISTRY" node "$SCRIPT_DIR/smoke-node.cjs" 2>&1); then
    while IFS= read -r line; do ok "node: $line"; done <<<"$out"
  else
    fail "node: $out"
  fi
}

[[ -f "$LOCAL/kafka/probe/KafkaProbe.class" ]] || { echo "run deploy/local/stack.sh up first" >&2; exit 1; }
smoke_kafka
smoke_registry
smoke_zipkin
smoke_machine_services
smoke_node
echo "$passed passed, $failed failed"
((failed == 0))
