#!/usr/bin/env bash
# Builds @confluentinc/kafka-javascript (librdkafka) under <repo>/.local/ckjs for
# `npm run bench -- kafka-client`. It is not a dependency of Vigil: its prebuilt binary comes from
# GitHub, which this machine kind cannot reach, so it is compiled from the bundled librdkafka
# (about 70 s on 2 idle cores) against Debian's development libraries, installed when missing.
set -Eeuo pipefail
VERSION="${VIGIL_CKJS_VERSION:-1.10.1}"
DEST="$(cd "$(dirname "$0")/.." && pwd)/.local/ckjs"
pkgs=(zlib1g-dev libssl-dev libzstd-dev libsasl2-dev libcurl4-openssl-dev liblz4-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "[ckjs] installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 install -y "${missing[@]}" >/dev/null
fi
mkdir -p "$DEST"
cd "$DEST"
[[ -f package.json ]] || npm init -y >/dev/null
echo "[ckjs] building @confluentinc/kafka-javascript@$VERSION in $DEST"
CKJS_LINKING=dynamic npm install --no-audit --no-fund "@confluentinc/kafka-javascript@$VERSION"
node -e "require('@confluentinc/kafka-javascript'); console.log('[ckjs] loads: ok')"
