#!/usr/bin/env bash
# Installs every Debian package tbgw needs to build, test and run its demo.
# Idempotent: does nothing when everything is present. Runs apt as root, or via sudo.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang clang-format
  libmosquitto-dev mosquitto mosquitto-clients
  libjansson-dev libyaml-dev libuv1-dev libssl-dev libpcre2-dev
  libsqlite3-dev sqlite3 zlib1g-dev
  libmodbus-dev socat
  libsnmp-dev snmpd snmp
  libcmocka-dev libfuzzer-14-dev libclang-rt-14-dev
  libmicrohttpd-dev libcurl4-openssl-dev curl wrk
  dpkg-dev file binutils man-db
  libstrophe-dev prosody lua-unbound python3-slixmpp
  libwebsockets-dev python3-websockets
  libcurl4-openssl-dev python3-pyftpdlib vsftpd openssh-server openssh-client
  unixodbc-dev unixodbc odbcinst libsqliteodbc odbc-postgresql postgresql
  python3-serial can-utils
  openssl procps python3 python3-paho-mqtt python3-pymodbus python3-serial-asyncio python3-cryptography
  knxd knxd-tools
  libsystemd-dev dbus-daemon python3-dbus python3-dbusmock
)

# Node.js runs the npm-based test peers (node-opcua); the image may already ship a newer node.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PKGS+=(nodejs npm)
fi

# npm-based test peers (tests/peers/package.json, pinned by its package-lock.json): installed once.
install_peers() {
  [ -n "${TBGW_NO_PEERS:-}" ] && return 0  # building only (the container image's build stage)
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/peers"
  [ -f "$dir/package.json" ] || return 0
  # installed, and not older than the lock file (a peer added since is installed too)
  if [ -f "$dir/node_modules/.package-lock.json" ] && [ ! "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ] \
     && [ -d "$dir/node_modules/node-opcua" ] && [ -d "$dir/node_modules/@bacnet-js/client" ]; then
    return 0
  fi
  echo "install-deps: npm packages for test peers in $dir" >&2
  if [ -f "$dir/package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
  fi
}

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  install_peers
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
install_peers
