#!/usr/bin/env bash
# Builds into a build folder with every line of cmake/compiler output kept in <build>/build.log and
# only one status line on the terminal: "building tbgw ... ok (12 s)". On failure the tail of the log
# and its path are printed and the exit status is 1.
# Usage: quiet-build.sh BUILD_DIR JOBS [TARGET...]   (no target = everything)
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:?build folder}
jobs=${2:-2}
shift 2 || shift $#
mkdir -p "$build"
log="$build/build.log"
targets=()
for t in "$@"; do targets+=(--target "$t"); done
start=$(date +%s)
printf 'building tbgw ... '
{
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    cmake --build "$build" -j "$jobs" "${targets[@]}"
} >"$log" 2>&1
rc=$?
secs=$(($(date +%s) - start))
if [ $rc -eq 0 ]; then
  echo "ok (${secs} s)"
  exit 0
fi
echo "FAILED (${secs} s)"
echo "---- last lines of $log:"
tail -n 30 "$log"
echo "---- the whole log: $log"
exit 1
