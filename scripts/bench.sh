#!/usr/bin/env bash
# kreplay's benchmark lab: kreplay beside its peers (wrk, hey, h2load, oha) on the same targets,
# in the same run, so the ratios hold on a noisy machine. Targets (nginx, apisim) are pinned to
# CPU 0, every client to CPU 1. Every measurement becomes a record in $work/records.jsonl;
# `kreplay-lab render` turns them into bench/results/<stamp>.{json,md} and SVG plots.
#
#   scripts/bench.sh [--repeat N] [--sections "h1 floor paced h2 apisim replay scale"] [--quick]
#                    [--requests N] [--rates "10000 50000 100000 200000"] [--seconds S]
#                    [--transports "h1 h1tls h2"] (the paced section's)
#                    [--replay-requests N] [--replay-rate R] [--replay-watches W]
#                    [--scale-sizes "100000 1000000 10000000"] [--scale-watches "1000 10000"]
#                    [--scale-watch-lag "50000"]
#                    [--out-dir DIR] [--work-dir DIR] [--keep-work]
#
# --quick: tiny sizes and one repeat, to check the lab itself (figures mean little).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
argv=("$@")

repeat=3 requests=200000 rates="10000 50000 100000 200000" seconds=5
sections="h1 floor paced h2 apisim replay scale"
transports="h1 h1tls h2"
replay_requests=60000 replay_rate=2000 replay_watches=1000
scale_sizes="100000 1000000 10000000" scale_watches="1000 10000" scale_watch_lag="50000"
out_dir=bench/results work_parent=/var/tmp keep_work=
# --quick sets defaults first, so explicit flags win wherever they stand.
for a in "$@"; do
  if [ "$a" = --quick ]; then
    repeat=1 requests=20000 rates="2000 10000" seconds=2
    replay_requests=4000 replay_rate=1000 replay_watches=50
    scale_sizes="10000 50000" scale_watches="100 500" scale_watch_lag="500"
  fi
done
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --sections) sections=$2; shift 2 ;;
    --transports) transports=$2; shift 2 ;;
    --replay-requests) replay_requests=$2; shift 2 ;;
    --replay-rate) replay_rate=$2; shift 2 ;;
    --replay-watches) replay_watches=$2; shift 2 ;;
    --scale-sizes) scale_sizes=$2; shift 2 ;;
    --scale-watches) scale_watches=$2; shift 2 ;;
    --scale-watch-lag) scale_watch_lag=$2; shift 2 ;;
    --out-dir) out_dir=$2; shift 2 ;;
    --work-dir) work_parent=$2; shift 2 ;;
    --keep-work) keep_work=1; shift ;;
    --quick) shift ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown flag $1 (see --help)" >&2; exit 2 ;;
  esac
done
for t in $transports; do
  case "$t" in h1 | h1tls | h2) ;; *)
    echo "bench.sh: unknown transport $t (h1 h1tls h2)" >&2; exit 2 ;;
  esac
done
for s in $sections; do
  case "$s" in h1 | floor | paced | h2 | apisim | replay | scale) ;; *)
    echo "bench.sh: unknown section $s (h1 floor paced h2 apisim replay scale)" >&2; exit 2 ;;
  esac
done

# shellcheck source=bench/harness/setup.sh
. bench/harness/setup.sh
# shellcheck source=bench/harness/peers.sh
. bench/harness/peers.sh
# shellcheck source=bench/harness/replay.sh
. bench/harness/replay.sh
# shellcheck source=bench/harness/scale.sh
. bench/harness/scale.sh

install_tools
build_binaries
make_work_dir
for section in $sections; do
  echo "== $section ($(date -u +%H:%M:%S))" >&2
  "section_$section"
done

stamp=$(date -u +%Y-%m-%d-%H%M)
"$bin/kreplay-lab" render --records "$records" --out-dir "$out_dir" --stamp "$stamp" \
  --machine "$(machine_line)" --command "scripts/bench.sh ${argv[*]}" >"$work/rendered"
cat "$out_dir/$stamp.md"
echo "records: $records; written:" >&2
cat "$work/rendered" >&2
