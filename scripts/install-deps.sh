#!/usr/bin/env bash
# Installs every Debian package tbgw needs to build, test and run its demo.
# Idempotent: does nothing when everything is present. Runs apt as root, or via sudo.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang clang-format
  libmosquitto-dev mosquitto mosquitto-clients
  libjansson-dev libyaml-dev libuv1-dev libssl-dev libpcre2-dev
  libsqlite3-dev sqlite3
  libmodbus-dev socat
  libcmocka-dev libfuzzer-14-dev libclang-rt-14-dev
  libmicrohttpd-dev curl
  openssl procps python3 python3-paho-mqtt
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
