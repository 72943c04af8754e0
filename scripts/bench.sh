#!/usr/bin/env bash
# kreplay's benchmark lab: kreplay beside wrk, hey (and oha if installed) on the
# same nginx, in the same run, so the ratios hold on a noisy machine.
# nginx is pinned to CPU 0, every client to CPU 1; figures are medians of REPEAT runs.
#
#   scripts/bench.sh [--repeat N] [--requests N] [--rates "10000 50000 100000 200000"] [--seconds S]
#                    [--sections "h1 paced h2 apisim"]
#
# Writes bench/results/<date>.md (a markdown table with the commands) and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."

repeat=3 requests=200000 rates="10000 50000 100000 200000" seconds=5
sections="h1 paced h2 apisim"
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --sections) sections=$2; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done

need=()
for c in nginx:nginx wrk:wrk hey:hey h2load:nghttp2-client /usr/bin/time:time python3:python3 openssl:openssl curl:curl; do
  command -v "${c%%:*}" >/dev/null 2>&1 || need+=("${c#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  pgrep -x nginx >/dev/null && { service nginx stop >/dev/null 2>&1 || nginx -s quit || true; }
fi
cargo build --release --quiet --workspace --bins
bin=$PWD/target/release

work=$(mktemp -d -t kreplay-bench.XXXXXX)
nginx_pid=
cleanup() { [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port) tlsport=$(free_port)
# A CA and a leaf signed by it (rustls refuses a self-signed certificate used as a server's).
(
  cd "$work"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt \
    -days 2 -subj /CN=kreplay-bench-ca 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout leaf.key -out leaf.csr \
    -subj /CN=127.0.0.1 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >leaf.ext
  openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out leaf.crt -days 2 \
    -extfile leaf.ext 2>/dev/null
)
cat >"$work/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: bench, cluster: {server: "https://127.0.0.1:$tlsport", certificate-authority: "$work/ca.crt"}}]
users: [{name: bench, user: {token: bench-token}}]
contexts: [{name: bench, context: {cluster: bench, user: bench}}]
current-context: bench
KC
sed -e "s|@DIR@|$work|g" -e "s|@PORT@|$port|g" -e "s|@TLSPORT@|$tlsport|g" bench/harness/nginx.conf.in >"$work/nginx.conf"
taskset -c 0 nginx -c "$work/nginx.conf" &
nginx_pid=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
url="http://127.0.0.1:$port/api/v1/namespaces/default/pods/x"
server="http://127.0.0.1:$port"

# cpu_of FILE: user+sys seconds from a `/usr/bin/time -f '%U %S %e'` line.
cpu_of() { tail -1 "$1" | awk '{print $1+$2}'; }
median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print(statistics.median(v))' "$@"; }
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }

gen() { # gen NAME ARGS...: a get-only timeline against /api/v1/namespaces/default/pods/x
  local name=$1; shift
  "$bin/kreplay-gen" --mix GET=1 --objects 2000 --namespaces 10 --runners 1 --watches 0 "$@" -o "$work/$name.yaml" >/dev/null
  "$bin/preprocess" "$work/$name.yaml" -o "$work/$name.bin" >/dev/null 2>&1
}
engine() { taskset -c 1 /usr/bin/time -f '%U %S %e' -o "$work/time" "$bin/engine" run "$@" --cores 1 --quiet --result "$work/report.json" 2>"$work/engine.err"; }

out=bench/results/$(date -u +%Y-%m-%d-%H%M).md
mkdir -p bench/results
{
  echo "# kreplay benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), nginx $(nginx -v 2>&1 | cut -d/ -f2) pinned to CPU 0, clients pinned to CPU 1. Medians of $repeat runs."
  echo "Command: \`scripts/bench.sh --repeat $repeat --requests $requests --rates \"$rates\" --seconds $seconds --sections \"$sections\"\`"
} >"$out"

# Unpaced HTTP/1.1: kreplay with every request due at t=0 against wrk, per client CPU-second.
section_h1() {
{
  echo
  echo "## Unpaced HTTP/1.1 throughput (requests per client CPU-second)"
  echo
  echo "| client | req/s | client CPU s | req per CPU-s | ratio to wrk |"
  echo "| --- | --- | --- | --- | --- |"
} >>"$out"
gen unpaced --shape all-at-zero -n "$requests" --conns 64
k_rps=() k_cpu=() w_rps=() w_cpu=() k_eff=() w_eff=()
for _ in $(seq "$repeat"); do
  engine "$work/unpaced.bin" --server "$server" --conns 64
  run=$(json "$work/report.json" 'd["totalRun"]'); failed=$(json "$work/report.json" 'd["totalFailed"]')
  [ "$failed" = 0 ] || { echo "kreplay: $failed failures" >&2; cat "$work/engine.err" >&2; exit 1; }
  wall=$(tail -1 "$work/time" | awk '{print $3}'); cpu=$(cpu_of "$work/time")
  k_rps+=("$(python3 -c "print($run/$wall)")"); k_cpu+=("$cpu"); k_eff+=("$(python3 -c "print($run/$cpu)")")
  taskset -c 1 /usr/bin/time -f '%U %S %e' -o "$work/time" wrk -t1 -c64 -d10s "$url" >"$work/wrk.out"
  n=$(awk '/requests in/ {print $1}' "$work/wrk.out"); cpu=$(cpu_of "$work/time"); wall=$(tail -1 "$work/time" | awk '{print $3}')
  w_rps+=("$(python3 -c "print($n/$wall)")"); w_cpu+=("$cpu"); w_eff+=("$(python3 -c "print($n/$cpu)")")
done
ke=$(median "${k_eff[@]}"); we=$(median "${w_eff[@]}")
printf '| kreplay (%s GETs due at t=0, 64 conns) | %.0f | %.2f | %.0f | %.2f |\n' "$requests" "$(median "${k_rps[@]}")" "$(median "${k_cpu[@]}")" "$ke" "$(python3 -c "print($ke/$we)")" >>"$out"
printf '| wrk -t1 -c64 -d10s | %.0f | %.2f | %.0f | 1.00 |\n' "$(median "${w_rps[@]}")" "$(median "${w_cpu[@]}")" "$we" >>"$out"
}

# Paced HTTP/1.1: achieved rate and send lag of kreplay, achieved rate of hey (and oha).
section_paced() {
{
  echo
  echo "## Paced HTTP/1.1 rates (${seconds} s each)"
  echo
  echo "| rate/s | client | achieved/s | send lag p50 | p99 | p99.9 | max | client CPU s |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
} >>"$out"
for rate in $rates; do
  n=$((rate * seconds))
  gen "paced$rate" --rate "$rate" -n "$n" --conns 64
  a=() p50=() p99=() p999=() mx=() cpu=()
  for _ in $(seq "$repeat"); do
    engine "$work/paced$rate.bin" --server "$server" --conns 64
    r=$work/report.json
    a+=("$(json "$r" 'd["kreplay"]["rate"]["achievedPerSecond"]')")
    p50+=("$(json "$r" 'd["kreplay"]["sendLag"]["p50"]*1e6')"); p99+=("$(json "$r" 'd["kreplay"]["sendLag"]["p99"]*1e6')")
    p999+=("$(json "$r" 'd["kreplay"]["sendLag"]["p999"]*1e6')"); mx+=("$(json "$r" 'd["kreplay"]["sendLag"]["max"]*1e6')")
    cpu+=("$(cpu_of "$work/time")")
  done
  printf '| %s | kreplay | %.0f | %.1f µs | %.1f µs | %.1f µs | %.0f µs | %.2f |\n' "$rate" "$(median "${a[@]}")" "$(median "${p50[@]}")" \
    "$(median "${p99[@]}")" "$(median "${p999[@]}")" "$(median "${mx[@]}")" "$(median "${cpu[@]}")" >>"$out"
  # hey: -q is per worker; 50 workers share the rate. hey reports no send lag.
  a=() cpu=()
  for _ in $(seq "$repeat"); do
    taskset -c 1 /usr/bin/time -f '%U %S %e' -o "$work/time" hey -z "${seconds}s" -c 50 -q $((rate / 50)) "$url" >"$work/hey.out"
    a+=("$(awk '/Requests\/sec/ {print $2}' "$work/hey.out")"); cpu+=("$(cpu_of "$work/time")")
  done
  printf '| %s | hey -c 50 -q %s | %.0f | n/a | n/a | n/a | n/a | %.2f |\n' "$rate" $((rate / 50)) "$(median "${a[@]}")" "$(median "${cpu[@]}")" >>"$out"
  if command -v oha >/dev/null 2>&1; then
    a=() cpu=()
    for _ in $(seq "$repeat"); do
      taskset -c 1 /usr/bin/time -f '%U %S %e' -o "$work/time" oha -z "${seconds}s" -c 64 -q "$rate" --latency-correction --no-tui --json "$url" >"$work/oha.json"
      a+=("$(json "$work/oha.json" 'd["summary"]["requestsPerSec"]')"); cpu+=("$(cpu_of "$work/time")")
    done
    printf '| %s | oha -q %s --latency-correction | %.0f | n/a | n/a | n/a | n/a | %.2f |\n' "$rate" "$rate" "$(median "${a[@]}")" "$(median "${cpu[@]}")" >>"$out"
  fi
done
}

# HTTP/2 over TLS: kreplay (kubeconfig with the bench CA) against h2load, one connection, 64 streams.
section_h2() {
{
  echo
  echo "## Unpaced HTTP/2 + TLS throughput, one connection, 64 streams in flight"
  echo
  echo "| client | req/s | client CPU s | req per CPU-s | ratio to h2load |"
  echo "| --- | --- | --- | --- | --- |"
} >>"$out"
[ -f "$work/unpaced.bin" ] || gen unpaced --shape all-at-zero -n "$requests" --conns 64
local k_rps=() k_cpu=() k_eff=() h_rps=() h_cpu=() h_eff=() run failed wall cpu n
for _ in $(seq "$repeat"); do
  engine "$work/unpaced.bin" --kubeconfig "$work/kubeconfig" --conns 64 --max-conns 64
  run=$(json "$work/report.json" 'd["totalRun"]'); failed=$(json "$work/report.json" 'd["totalFailed"]')
  [ "$failed" = 0 ] || { echo "kreplay h2: $failed failures" >&2; cat "$work/engine.err" >&2; exit 1; }
  wall=$(tail -1 "$work/time" | awk '{print $3}'); cpu=$(cpu_of "$work/time")
  k_rps+=("$(python3 -c "print($run/$wall)")"); k_cpu+=("$cpu"); k_eff+=("$(python3 -c "print($run/$cpu)")")
  taskset -c 1 /usr/bin/time -f '%U %S %e' -o "$work/time" h2load -n "$requests" -c 1 -m 64 \
    "https://127.0.0.1:$tlsport/api/v1/namespaces/default/pods/x" >"$work/h2load.out"
  n=$(awk '/^requests:/ {print $8}' "$work/h2load.out"); cpu=$(cpu_of "$work/time"); wall=$(tail -1 "$work/time" | awk '{print $3}')
  h_rps+=("$(python3 -c "print($n/$wall)")"); h_cpu+=("$cpu"); h_eff+=("$(python3 -c "print($n/$cpu)")")
done
local ke he
ke=$(median "${k_eff[@]}"); he=$(median "${h_eff[@]}")
printf '| kreplay (%s GETs due at t=0, HTTP/2, 64 in flight) | %.0f | %.2f | %.0f | %.2f |\n' "$requests" "$(median "${k_rps[@]}")" "$(median "${k_cpu[@]}")" "$ke" "$(python3 -c "print($ke/$he)")" >>"$out"
printf '| h2load -n %s -c 1 -m 64 | %.0f | %.2f | %.0f | 1.00 |\n' "$requests" "$(median "${h_rps[@]}")" "$(median "${h_cpu[@]}")" "$he" >>"$out"
}

# apisim must not be the bottleneck of a benchmark: GETs of one object, wrk on CPU 1, apisim on CPU 0.
section_apisim() {
kill "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null || true; nginx_pid=
taskset -c 0 "$bin/apisim" --plain --no-auth --listen 127.0.0.1:0 >"$work/apisim.out" &
apisim_pid=$!
for _ in $(seq 100); do grep -q '^listening on ' "$work/apisim.out" && break; sleep 0.1; done
sim=$(sed -n 's/^listening on //p' "$work/apisim.out")
curl -fsS -X POST -H 'Content-Type: application/json' "$sim/api/v1/namespaces/default/configmaps" \
  -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"default"},"data":{"k":"v"}}' >/dev/null
a=()
for _ in $(seq "$repeat"); do
  taskset -c 1 wrk -t1 -c32 -d5s "$sim/api/v1/namespaces/default/configmaps/a" >"$work/wrk.out"
  a+=("$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")")
done
kill "$apisim_pid"; wait "$apisim_pid" 2>/dev/null || true
{
  echo
  echo "## apisim (plain HTTP/1.1, one core) under \`wrk -t1 -c32 -d5s\` GETs of one ConfigMap"
  echo
  printf '| server | GET/s |\n| --- | --- |\n| apisim --plain --no-auth (CPU 0) | %.0f |\n' "$(median "${a[@]}")"
} >>"$out"
}

for section in $sections; do
  case "$section" in
    h1 | paced | h2 | apisim) "section_$section" ;;
    *) echo "unknown section $section (h1 paced h2 apisim)" >&2; exit 2 ;;
  esac
done
cat "$out"
