# Sourced by scripts/bench.sh: tools, binaries, the work dir, targets, and record helpers.

# install_tools: nginx, wrk, hey, h2load (Debian), oha (crates.io) when missing. oha takes
# ~9 minutes to build on a 2-CPU machine; its build is bounded and the lab runs without it.
install_tools() {
  local need=() c
  for c in nginx:nginx wrk:wrk hey:hey h2load:nghttp2-client /usr/bin/time:time openssl:openssl curl:curl taskset:util-linux; do
    command -v "${c%%:*}" >/dev/null 2>&1 || need+=("${c#*:}")
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # Debian starts nginx on install; the lab runs its own.
    if pgrep -x nginx >/dev/null; then service nginx stop >/dev/null 2>&1 || true; fi
  fi
  if ! command -v oha >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/oha" ]; then PATH=$HOME/.cargo/bin:$PATH; fi
  if ! command -v oha >/dev/null 2>&1; then
    echo "installing oha (cargo install --locked oha, up to 20 minutes; log: /var/tmp/kreplay-oha-install.log)" >&2
    timeout 1200 cargo install --locked oha >/var/tmp/kreplay-oha-install.log 2>&1 ||
      echo "oha could not be installed (see /var/tmp/kreplay-oha-install.log); continuing without it" >&2
    PATH=$HOME/.cargo/bin:$PATH
  fi
}

build_binaries() {
  cargo build --release --quiet -p engine -p preprocess -p bench --bins
  bin=$repo/target/release
}

# make_work_dir: a temp dir on a disk with room (the 10M-request profile is ~3 GB of YAML),
# the bench CA and leaf for TLS targets, and the records file.
make_work_dir() {
  mkdir -p "$work_parent"
  work=$(mktemp -d "$work_parent/kreplay-bench.XXXXXX")
  records=$work/records.jsonl
  : >"$records"
  target_pids=()
  trap cleanup EXIT
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
  echo "work dir: $work" >&2
}

cleanup() {
  local rc=$? p
  if [ "$rc" != 0 ]; then
    keep_work=1
    echo "bench.sh failed (exit $rc); the records so far are in $records (kreplay-lab render --records ... renders them)" >&2
  fi
  for p in "${target_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$keep_work" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}

machine_line() {
  local cpu mem os
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
  mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
  os=$(. /etc/os-release && echo "$PRETTY_NAME")
  echo "$(nproc) CPUs ($cpu), $mem, $os, nginx $(nginx -v 2>&1 | cut -d/ -f2); targets pinned to CPU 0, clients to CPU 1; $repeat repeat(s)"
}

# start_nginx: plain HTTP/1.1 on $port, TLS + HTTP/2 on $tlsport, one worker on CPU 0.
start_nginx() {
  [ -n "${nginx_pid:-}" ] && return 0
  port=$("$bin/kreplay-lab" free-port) tlsport=$("$bin/kreplay-lab" free-port)
  sed -e "s|@DIR@|$work|g" -e "s|@PORT@|$port|g" -e "s|@TLSPORT@|$tlsport|g" bench/harness/nginx.conf.in >"$work/nginx.conf"
  taskset -c 0 nginx -c "$work/nginx.conf" &
  nginx_pid=$!
  target_pids+=("$nginx_pid")
  local i
  for i in $(seq 100); do curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fsS "http://127.0.0.1:$port/" >/dev/null || { echo "nginx did not start: $(cat "$work/error.log")" >&2; exit 1; }
  url="http://127.0.0.1:$port/api/v1/namespaces/default/pods/x"
  tlsurl="https://127.0.0.1:$tlsport/api/v1/namespaces/default/pods/x"
  cat >"$work/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: bench, cluster: {server: "https://127.0.0.1:$tlsport", certificate-authority: "$work/ca.crt"}}]
users: [{name: bench, user: {token: bench-token}}]
contexts: [{name: bench, context: {cluster: bench, user: bench}}]
current-context: bench
KC
}

stop_nginx() {
  [ -n "${nginx_pid:-}" ] || return 0
  kill "$nginx_pid" 2>/dev/null || true
  wait "$nginx_pid" 2>/dev/null || true
  nginx_pid=
}

# start_apisim ARGS...: apisim on CPU 0; sets apisim_pid and sim (its URL).
start_apisim() {
  taskset -c 0 "$bin/apisim" --listen 127.0.0.1:0 "$@" >"$work/apisim.out" 2>"$work/apisim.err" &
  apisim_pid=$!
  target_pids+=("$apisim_pid")
  local i
  for i in $(seq 100); do grep -q '^listening on ' "$work/apisim.out" && break; sleep 0.1; done
  sim=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$work/apisim.out" | head -1)
  [ -n "$sim" ] || { echo "apisim did not start: $(cat "$work/apisim.err")" >&2; exit 1; }
}

stop_apisim() {
  kill "$apisim_pid" 2>/dev/null || true
  wait "$apisim_pid" 2>/dev/null || true
}

# Scenario titles (headings of the report).
declare -A titles=(
  [h1]="1. Unpaced HTTP/1.1 throughput"
  [floor]="1b. I/O floor: wrk's GET loop on one core, without replay work"
  [h2]="1. Unpaced HTTP/2 + TLS throughput"
  [paced]="2. Paced rates: HTTP/1.1, HTTP/1.1 + TLS, HTTP/2 + TLS"
  [apisim]="apisim capacity (the target of scenarios 3 and 4)"
  [replay]="3. Realistic replay against apisim"
  [scale]="4. Scale: preprocess, engine start, concurrent watches"
)

# rec SCENARIO FIGURE UNIT BETTER TOOL COMMAND [record flags...] -- VALUES...: appends a figure.
rec() {
  local s=$1 f=$2 u=$3 b=$4 t=$5 c=$6
  shift 6
  "$bin/kreplay-lab" record --records "$records" --scenario "$s" --title "${titles[$s]}" --figure "$f" \
    --unit "$u" --better "$b" --tool "$t" --command "$c" "$@"
}

# note SCENARIO TEXT: a sentence under the scenario's heading.
note() { "$bin/kreplay-lab" note --records "$records" --scenario "$1" --title "${titles[$1]}" "$2"; }

# get FILE POINTER [DEFAULT]: a JSON value of FILE.
get() {
  if [ $# -gt 2 ]; then "$bin/kreplay-lab" get "$1" "$2" --default "$3"; else "$bin/kreplay-lab" get "$1" "$2"; fi
}

# calc EXPR: floating-point arithmetic.
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

# timed FILE CMD...: runs CMD on CPU 1 (or the CPUs of $timed_cpus) under /usr/bin/time; FILE
# gets "user sys wall maxrss_kb" and FILE.wall_us the wall time in µs (/usr/bin/time's wall has
# a 10 ms resolution).
timed() {
  local out=$1 t0 t1 rc=0
  shift
  t0=$(date +%s%N)
  taskset -c "${timed_cpus:-1}" /usr/bin/time -f '%U %S %e %M' -o "$out" "$@" || rc=$?
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000)) >"$out.wall_us"
  return $rc
}
cpu_of() { tail -1 "$1" | awk '{print $1 + $2}'; }
wall_of() { awk '{printf "%.6f", $1 / 1e6}' "$1.wall_us"; }
rss_mb_of() { tail -1 "$1" | awk '{printf "%.1f", $4 / 1024}'; }

# gen NAME ARGS...: a profile from kreplay-gen, preprocessed to $work/NAME.bin (YAML removed).
gen() {
  local name=$1
  shift
  "$bin/kreplay-gen" "$@" -o "$work/$name.yaml" >/dev/null 2>>"$work/gen.log"
  "$bin/preprocess" "$work/$name.yaml" -o "$work/$name.bin" >/dev/null 2>&1
}

# engine_run TIMEOUT_S ARGS...: kreplay on CPU 1, one core; report in $work/report.json.
engine_run() {
  local limit=$1
  shift
  timed "$work/time" timeout "$limit" "$bin/engine" run "$@" --cores 1 --quiet --result "$work/report.json" 2>"$work/engine.err"
}
