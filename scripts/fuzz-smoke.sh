#!/usr/bin/env bash
# Runs every libFuzzer target briefly (seeded from tests/fuzz/corpus/<name>/ when present), with a
# fixed random seed so a run is repeatable (FUZZ_SEED, FUZZ_SECONDS to explore further).
set -euo pipefail
dir=${1:-build-fuzz}
secs=${FUZZ_SECONDS:-5}
rc=0
shopt -s nullglob
for f in "$dir"/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus=()
  [ -d "tests/fuzz/corpus/$name" ] && corpus=("tests/fuzz/corpus/$name")
  work=$(mktemp -d)
  if "$f" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 -seed=${FUZZ_SEED:-1} -artifact_prefix="$work/" "$work" "${corpus[@]}" >"$work/log" 2>&1; then
    echo "fuzz $name: ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/log" | awk '{print $2}' || true) runs)"
  else
    echo "fuzz $name: FAILED"; tail -40 "$work/log"; rc=1
  fi
  rm -rf "$work"
done
exit $rc
