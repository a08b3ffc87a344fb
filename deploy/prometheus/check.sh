#!/usr/bin/env bash
# Checks Vigil's Prometheus files with promtool (npm run check:rules, and a step of .ci/run):
#   promtool check rules   deploy/prometheus/rules/*.yml
#   promtool test rules    deploy/prometheus/tests/*.yml   (synthetic series, firing and not firing)
#   promtool check config  deploy/local/prometheus.yml     (the local stack's scrape config)
# and that every alert's runbook_url names a section of docs/runbook.md.
#
# promtool comes with Debian's `prometheus` package. When it is missing and this runs as root on a
# Debian-like machine, it is installed (quietly, without recommends) and the package's own service is
# kept from starting: the local stack runs its own Prometheus (deploy/local/stack.sh up prometheus).
set -Eeuo pipefail
cd "$(dirname "$0")/../.."

say() { printf '[check:rules] %s\n' "$*"; }
die() { printf '[check:rules] ERROR: %s\n' "$*" >&2; exit 1; }

install_promtool() {
  command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]] ||
    die "promtool not found: install Debian's 'prometheus' package (sudo apt-get install -y --no-install-recommends prometheus)"
  say "promtool not found: installing Debian's prometheus package"
  # invoke-rc.d asks policy-rc.d whether a package may start its service; 101 = no. A machine
  # without one (not a container) gets a temporary one for this install only.
  local policy=/usr/sbin/policy-rc.d ours=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && ours=1
  fi
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus)
  local log
  log=$(mktemp)
  if ! "${apt[@]}" >"$log" 2>&1; then
    # a clean machine may have no package lists yet
    apt-get update -qq >>"$log" 2>&1 || true
    "${apt[@]}" >>"$log" 2>&1 || { [[ $ours == 1 ]] && rm -f "$policy"; cat "$log" >&2; die "apt-get install prometheus failed"; }
  fi
  [[ $ours == 1 ]] && rm -f "$policy"
  rm -f "$log"
  # On a systemd machine the package also enables its service for the next boot: not wanted here.
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
  command -v promtool >/dev/null 2>&1 || die "promtool still not found after installing prometheus"
}

command -v promtool >/dev/null 2>&1 || install_promtool

promtool check rules deploy/prometheus/rules/*.yml
promtool test rules deploy/prometheus/tests/*.yml
promtool check config deploy/local/prometheus.yml

# Every runbook_url is docs/runbook.md#<anchor>, and the runbook has a '## <Alert>' heading whose
# GitHub anchor (lower case) is that anchor.
missing=0
while read -r anchor; do
  grep -qiE "^## ${anchor}\$" docs/runbook.md || { printf '[check:rules] ERROR: docs/runbook.md has no section "## %s"\n' "$anchor" >&2; missing=1; }
done < <(grep -ho 'runbook_url: docs/runbook.md#[a-z0-9-]*' deploy/prometheus/rules/*.yml | sed 's/.*#//')
alerts=$(cat deploy/prometheus/rules/*.yml | grep -c '^ *- alert:')
urls=$(cat deploy/prometheus/rules/*.yml | grep -c 'runbook_url: docs/runbook.md#')
[[ "$alerts" == "$urls" ]] || { printf '[check:rules] ERROR: %s alerts but %s runbook_url annotations\n' "$alerts" "$urls" >&2; missing=1; }
[[ $missing == 0 ]] || exit 1
say "rules, rule tests, local config and runbook links: OK ($alerts alerts)"
