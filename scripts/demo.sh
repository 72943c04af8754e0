#!/usr/bin/env bash
# The main job on the embedded default: preprocess kperf's sample profile, start
# apisim on a free loopback port, replay the timeline against it with the
# kubeconfig apisim writes, print the report's summary (`engine report`), stop apisim.
# Usage: scripts/demo.sh [PROFILE]   (default: bench/profiles/kperf_sample_replay.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-bench/profiles/kperf_sample_replay.yaml}
work=$(mktemp -d -t kreplay-demo.XXXXXX)
apisim_pid=
cleanup() {
  [ -n "$apisim_pid" ] && kill "$apisim_pid" 2>/dev/null && wait "$apisim_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

echo "== building (release)" >&2
cargo build --release --quiet --workspace --bins
bin=target/release

echo "== preprocess $profile" >&2
"$bin/preprocess" "$profile" -o "$work/timeline.bin"
"$bin/preprocess" inspect "$work/timeline.bin"

echo "== starting apisim" >&2
"$bin/apisim" --listen 127.0.0.1:0 --kubeconfig-out "$work/kubeconfig" >"$work/apisim.out" 2>"$work/apisim.err" &
apisim_pid=$!
for _ in $(seq 1 100); do
  grep -q '^listening on ' "$work/apisim.out" 2>/dev/null && break
  kill -0 "$apisim_pid" 2>/dev/null || { cat "$work/apisim.err" >&2; echo "apisim exited" >&2; exit 1; }
  sleep 0.1
done
grep -q '^listening on ' "$work/apisim.out" || { echo "apisim did not start in 10 s" >&2; exit 1; }
sed -n 's/^listening on /apisim listening on /p' "$work/apisim.out" >&2

echo "== engine run" >&2
"$bin/engine" run "$work/timeline.bin" --kubeconfig "$work/kubeconfig" --result "$work/report.json"
echo "== report ($work/report.json)" >&2
"$bin/engine" report "$work/report.json"
