#!/usr/bin/env bash
# Distributed replay figures on apisim --run-jobs (recorded in bench/RESULTS.md): for each runner
# count, the start skew (each runner's earliest send lag on a profile whose every request is
# due at t=0, i.e. how late the runner began after the common start) and the collection time
# (from the first report found ready to the last collected, as `engine job run` prints it).
# Usage: bench/distributed.sh [REPEATS] [RUNNERS...]   (default: 3 repeats of 3 and 8 runners)
# Release binaries; every runner gets --cores 1 (runner pods share this machine's CPUs).
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
shift || true
counts=${*:-3 8}
cargo build --release --quiet --workspace --bins
bin=$PWD/target/release
work=$(mktemp -d -t kreplay-distbench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "$1: no $2" >&2; exit 1; }

mkdir -p "$work/www"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$work/www" >"$work/http.out" 2>/dev/null &
pids+=($!)
wait_for "$work/http.out" ' port '
port=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$work/http.out" | head -n 1)
mkdir -p "$work/pods"
"$bin/apisim" --listen 127.0.0.1:0 --kubeconfig-out "$work/kc" --run-jobs "$bin/engine" --pods-dir "$work/pods" >"$work/apisim.out" 2>"$work/apisim.err" &
pids+=($!)
wait_for "$work/apisim.out" '^listening on '

printf '| runners | repeat | earliest send lag per runner (µs) | max (µs) | collection (s) | reports (bytes) |\n| --- | --- | --- | --- | --- | --- |\n'
for n in $counts; do
  "$bin/kreplay-gen" -n $((n * 200)) --runners "$n" --shape all-at-zero --watches 0 --objects 600 --seed 1 -o "$work/p$n.yaml" >/dev/null 2>&1
  "$bin/preprocess" "$work/p$n.yaml" -o "$work/www/t$n.bin" >/dev/null 2>&1
  for r in $(seq 1 "$repeats"); do
    rm -rf "$work/m.json" "$work/m.json.runners"
    "$bin/engine" job run --kubeconfig "$work/kc" --timeline "http://127.0.0.1:$port/t$n.bin" \
      --timeline-file "$work/www/t$n.bin" --image kreplay:bench --name "bench-$n-$r" --start-in 5s \
      --result "$work/m.json" -- --cores 1 2>"$work/job.err" || { cat "$work/job.err" >&2; exit 1; }
    lags=()
    for i in $(seq 0 $((n - 1))); do lags+=("$(python3 bench/harness/hdr_min.py "$work/m.json.runners/runner-$i.json")"); done
    max=$(printf '%s\n' "${lags[@]}" | sort -n | tail -n 1)
    line=$(grep 'collected .* bytes of reports in' "$work/job.err")
    bytes=$(sed -n 's/.*collected \([0-9]*\) bytes.*/\1/p' <<<"$line")
    secs=$(sed -n 's/.* in \([0-9.]*\) s .*/\1/p' <<<"$line")
    printf '| %s | %s | %s | %s | %s | %s |\n' "$n" "$r" "${lags[*]}" "$max" "$secs" "$bytes"
  done
done
