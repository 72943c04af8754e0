#!/usr/bin/env bash
# The distributed flow as a user first tries it, without a cluster: apisim --run-jobs stands in
# for Kubernetes (each runner pod is a local process of the real engine binary), a local HTTP
# server stands in for the object store that holds the timeline.
# Usage: scripts/distributed-demo.sh [PROFILE] [RUNNERS]
#   (default: bench/profiles/kperf_sample_replay.yaml, the profile's own runner count)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-bench/profiles/kperf_sample_replay.yaml}
runners=${2:-}
work=$(mktemp -d -t kreplay-distributed.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for_line() { # FILE PATTERN WHAT
  for _ in $(seq 1 100); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$3 did not start in 10 s" >&2
  exit 1
}

echo "== building (release)" >&2
cargo build --release --quiet --workspace --bins
bin=$PWD/target/release

echo "== preprocess $profile" >&2
mkdir -p "$work/www"
"$bin/preprocess" "$profile" -o "$work/www/timeline.bin"

echo "== serving the timeline over HTTP (an object store would do in a real lab)" >&2
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$work/www" >"$work/http.out" 2>/dev/null &
pids+=($!)
wait_for_line "$work/http.out" ' port ' "the HTTP server"
port=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$work/http.out" | head -n 1)

echo "== starting apisim --run-jobs (the cluster)" >&2
mkdir -p "$work/pods"
"$bin/apisim" --listen 127.0.0.1:0 --kubeconfig-out "$work/kubeconfig" --run-jobs "$bin/engine" --pods-dir "$work/pods" \
  >"$work/apisim.out" 2>"$work/apisim.err" &
pids+=($!)
wait_for_line "$work/apisim.out" '^listening on ' "apisim"

echo "== engine job run" >&2
set -x
"$bin/engine" job run --kubeconfig "$work/kubeconfig" \
  --timeline "http://127.0.0.1:$port/timeline.bin" --timeline-file "$work/www/timeline.bin" \
  ${runners:+--runners "$runners"} --image kreplay:demo --start-in 5s \
  --result "$work/merged.json"
set +x
echo "== the merged report ($work/merged.json; each runner's is in $work/merged.json.runners/)" >&2
"$bin/engine" report "$work/merged.json"
