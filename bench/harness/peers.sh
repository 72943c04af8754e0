# Sourced by scripts/bench.sh: scenarios 1 and 2 (kreplay against wrk, hey, h2load, oha on
# nginx) and apisim's capacity check. Each client command is bounded by `timeout`.

have_oha() { command -v oha >/dev/null 2>&1; }
# oha's JSON flag: `--output-format json` in recent releases, `--json` before.
oha_json_flag() { if oha --help 2>/dev/null | grep -q -- '--output-format'; then echo "--output-format json"; else echo "--json"; fi; }

# Unpaced GETs, all due at t=0, shared by h1 and h2.
gen_unpaced() {
  [ -f "$work/unpaced.bin" ] || gen unpaced --mix GET=1 --objects 2000 --namespaces 10 --runners 1 --watches 0 \
    --shape all-at-zero -n "$requests" --conns 64
}

# kreplay_unpaced SCENARIO LABEL ENGINE-ARGS...: requests per client CPU-second and per second.
kreplay_unpaced() {
  local scen=$1 label=$2
  shift 2
  local eff=() rps=() run failed
  for _ in $(seq "$repeat"); do
    engine_run 300 "$work/unpaced.bin" "$@"
    run=$(get "$work/report.json" /totalRun) failed=$(get "$work/report.json" /totalFailed)
    [ "$failed" = 0 ] || { echo "kreplay $scen: $failed failures" >&2; cat "$work/engine.err" >&2; exit 1; }
    eff+=("$(calc "$run / $(cpu_of "$work/time")")") rps+=("$(calc "$run / $(wall_of "$work/time")")")
  done
  local cmd="engine run unpaced.bin $* --cores 1 ($requests GETs due at t=0)"
  rec "$scen" "requests per client CPU-second" "req/CPU-s" higher kreplay "$cmd" --plot throughput --x "$label" \
    --plot-title "Unpaced: requests per client CPU-second" -- "${eff[@]}"
  rec "$scen" "requests per second" "req/s" higher kreplay "$cmd" -- "${rps[@]}"
}

# peer_unpaced SCENARIO LABEL TOOL PARSE CMD...: runs CMD on CPU 1 `repeat` times; PARSE FILE
# prints the number of requests it completed (from CMD's output in FILE).
peer_unpaced() {
  local scen=$1 label=$2 tool=$3 parse=$4
  shift 4
  local eff=() rps=() n
  for _ in $(seq "$repeat"); do
    if ! timed "$work/time" timeout 120 "$@" >"$work/peer.out" 2>"$work/peer.err"; then
      note "$scen" "$tool failed ($*): $(head -c 300 "$work/peer.err")"
      return 0
    fi
    n=$("$parse" "$work/peer.out")
    eff+=("$(calc "$n / $(cpu_of "$work/time")")") rps+=("$(calc "$n / $(wall_of "$work/time")")")
  done
  rec "$scen" "requests per client CPU-second" "req/CPU-s" higher "$tool" "$*" --plot throughput --x "$label" -- "${eff[@]}"
  rec "$scen" "requests per second" "req/s" higher "$tool" "$*" -- "${rps[@]}"
}

wrk_count() { awk '/requests in/ {print $1}' "$1"; }
hey_count() { awk '/\[2[0-9][0-9]\]/ {s += $2} END {print s + 0}' "$1"; }
# oha: responses by status code, {"200": N, ...}: their sum.
oha_count() { get "$1" /statusCodeDistribution | grep -o ':[0-9]*' | tr -d : | awk '{s += $1} END {print s + 0}'; }
h2load_count() { awk '/^requests:/ {print $8}' "$1"; }

# paired_with_wrk: `repeat` rounds of kreplay and wrk back to back; each round's ratio of
# their requests per client CPU-second. On a noisy machine this is steadier than the ratio of
# two medians taken minutes apart (the tools above run their repeats one tool after another).
# The order alternates round by round: a run measured right after the other tool's was seen
# to cost up to a few % more, and a fixed order would hand that to one tool every time.
paired_with_wrk() {
  local ratios=() round k n
  for round in $(seq "$repeat"); do
    if [ $((round % 2)) = 1 ]; then
      k=$(paired_kreplay) || return 1
      n=$(paired_wrk) || return 0
    else
      n=$(paired_wrk) || return 0
      k=$(paired_kreplay) || return 1
    fi
    ratios+=("$(calc "$k / $n")")
  done
  rec h1 "kreplay / wrk, requests per client CPU-second, same round" "ratio" higher kreplay \
    "engine run unpaced.bin --server URL --conns 64 --max-conns 64 --cores 1 and wrk -t1 -c64 -d10s URL each round, alternating which goes first" \
    -- "${ratios[@]}"
}

# One paired round's kreplay run: prints its requests per client CPU-second.
paired_kreplay() {
  local run failed
  rm -f "$work/report.json"
  if ! engine_run 300 "$work/unpaced.bin" --server "http://127.0.0.1:$port" --conns 64 --max-conns 64; then
    echo "kreplay h1 (paired) failed" >&2
    cat "$work/engine.err" >&2
    return 1
  fi
  run=$(get "$work/report.json" /totalRun) failed=$(get "$work/report.json" /totalFailed)
  if [ "$failed" != 0 ]; then
    echo "kreplay h1 (paired): $failed failures" >&2
    cat "$work/engine.err" >&2
    return 1
  fi
  calc "$run / $(cpu_of "$work/time")"
}

# One paired round's wrk run: prints its requests per client CPU-second.
paired_wrk() {
  if ! timed "$work/time" timeout 120 wrk -t1 -c64 -d10s "$url" >"$work/peer.out" 2>"$work/peer.err"; then
    note h1 "wrk failed in the paired rounds: $(head -c 300 "$work/peer.err")"
    return 1
  fi
  calc "$(wrk_count "$work/peer.out") / $(cpu_of "$work/time")"
}

section_h1() {
  start_nginx
  gen_unpaced
  # --max-conns 64: the same 64 connections as the peers (unpaced, the pool would grow to 4x).
  kreplay_unpaced h1 "HTTP/1.1" --server "http://127.0.0.1:$port" --conns 64 --max-conns 64
  paired_with_wrk
  peer_unpaced h1 "HTTP/1.1" wrk wrk_count wrk -t1 -c64 -d10s "$url"
  peer_unpaced h1 "HTTP/1.1" hey hey_count hey -z 10s -c 64 "$url"
  if have_oha; then
    # shellcheck disable=SC2046
    peer_unpaced h1 "HTTP/1.1" oha oha_count oha --worker-threads 1 -z 10s -c 64 --no-tui $(oha_json_flag) "$url"
  else
    note h1 "oha is not installed: no oha figures."
  fi
}

floor_count() { tail -1 "$1"; }

# The same GET loop as wrk, with none of kreplay's replay work, on the I/O model kreplay's
# engine uses (glommio tasks) and on a raw io_uring loop: what an engine on each could reach.
section_floor() {
  start_nginx
  note floor "kreplay-floor runs wrk's loop (64 connections, one fixed GET in flight each, no timeline, no scheduling, no histograms). glommio: a task per connection, as kreplay's engine does its I/O. uring: one loop over a raw io_uring ring, receives as ring operations. glommio-ring: that loop as one glommio task waiting on the ring's fd, as kreplay's HTTP/1.1 pool now does its I/O. Compare with kreplay's figure in scenario 1."
  peer_unpaced floor "HTTP/1.1" floor-glommio floor_count "$bin/kreplay-floor" glommio "$url" --requests "$requests" --conns 64
  peer_unpaced floor "HTTP/1.1" floor-uring floor_count "$bin/kreplay-floor" uring "$url" --requests "$requests" --conns 64
  peer_unpaced floor "HTTP/1.1" floor-glommio-ring floor_count "$bin/kreplay-floor" glommio-ring "$url" --requests "$requests" --conns 64
  peer_unpaced floor "HTTP/1.1" wrk wrk_count wrk -t1 -c64 -d10s "$url"
}

section_h2() {
  start_nginx
  gen_unpaced
  kreplay_unpaced h2 "HTTP/2+TLS" --kubeconfig "$work/kubeconfig" --conns 1 --max-conns 1 --max-in-flight 64
  peer_unpaced h2 "HTTP/2+TLS" h2load h2load_count h2load -n "$requests" -c 1 -m 64 "$tlsurl"
  if have_oha; then
    # shellcheck disable=SC2046
    peer_unpaced h2 "HTTP/2+TLS" oha oha_count oha --worker-threads 1 -n "$requests" -c 1 -p 64 --http2 --cacert "$work/ca.crt" --no-tui $(oha_json_flag) "$tlsurl"
  fi
  note h2 "kreplay (--conns 1 --max-conns 1 --max-in-flight 64), h2load and oha: one connection carrying 64 streams. (kreplay's CPU includes its start: the preflight's connection and the timeline check.)"
}

section_paced() {
  start_nginx
  note paced "Send lag (first byte handed to the kernel minus the due instant) and wake error (the send lag of the first request a core writes after each release of due requests: the scheduler's own precision, without a burst's serialisation) are kreplay's own figures: no peer reports them. \"Latency from the due instant\" is kreplay's scheduled latency and oha's latency with --latency-correction (both free of coordinated omission); hey's latencies are measured from its own send and are not comparable, so only its rate and CPU are recorded. Transports: HTTP/1.1 on nginx's plain port; HTTP/1.1 + TLS (kreplay --http1, oha's default ALPN) and HTTP/2 + TLS (kreplay's default, oha --http2) on its TLS port. floor-burst is kreplay-floor burst over plain HTTP/1.1: rate/1000 requests written back to back on idle connections at each millisecond, one send each, with no replay work: the send-lag floor of one core on this machine."
  local rate n transport
  for rate in $rates; do
    n=$((rate * seconds))
    gen "paced$rate" --mix GET=1 --objects 2000 --namespaces 10 --runners 1 --watches 0 --rate "$rate" -n "$n" --conns 64
    for transport in $transports; do
      paced_kreplay "$rate" "$n" "$transport"
      if have_oha; then paced_oha "$rate" "$transport"; fi
    done
    # hey and the floor probe are HTTP/1.1 peers.
    case " $transports " in *" h1 "*)
      paced_hey "$rate"
      paced_floor "$rate" "$n"
      if [ "$rate" -ge 20000 ]; then paced_split "$rate"; fi
      ;;
    esac
  done
  if ! have_oha; then note paced "oha is not installed: no oha figures."; fi
}

# transport_name TRANSPORT: how the records name it.
transport_name() {
  case "$1" in h1) echo "HTTP/1.1" ;; h1tls) echo "HTTP/1.1+TLS" ;; h2) echo "HTTP/2+TLS" ;; esac
}

paced_kreplay() {
  local rate=$1 n=$2 transport=$3 r=$work/report.json name
  name=$(transport_name "$transport")
  local a=() p50=() p99=() p999=() mx=() w50=() w99=() l50=() l99=() cpu=() busy=()
  local args=(--server "http://127.0.0.1:$port")
  case "$transport" in
    h1tls) args=(--server "https://127.0.0.1:$tlsport" --certificate-authority "$work/ca.crt" --http1) ;;
    h2) args=(--server "https://127.0.0.1:$tlsport" --certificate-authority "$work/ca.crt") ;;
  esac
  for _ in $(seq "$repeat"); do
    engine_run $((seconds * 10 + 60)) "$work/paced$rate.bin" "${args[@]}" --conns 64
    a+=("$(get "$r" /kreplay/rate/achievedPerSecond)")
    p50+=("$(calc "$(get "$r" /kreplay/sendLag/p50) * 1000000")") p99+=("$(calc "$(get "$r" /kreplay/sendLag/p99) * 1000000")")
    p999+=("$(calc "$(get "$r" /kreplay/sendLag/p999) * 1000000")") mx+=("$(calc "$(get "$r" /kreplay/sendLag/max) * 1000000")")
    w50+=("$(calc "$(get "$r" /kreplay/wakeError/p50) * 1000000")") w99+=("$(calc "$(get "$r" /kreplay/wakeError/p99) * 1000000")")
    # scheduledLatency: [[quantile, seconds], ...] with 0.5 at index 1 and 0.99 at index 4.
    l50+=("$(calc "$(get "$r" /kreplay/scheduledLatency/1/1) * 1000")") l99+=("$(calc "$(get "$r" /kreplay/scheduledLatency/4/1) * 1000")")
    cpu+=("$(calc "$(cpu_of "$work/time") / $(get "$r" /totalRun) * 1000000")")
    busy+=("$(get "$r" /kreplay/perCore/0/busyFraction)")
  done
  local c="engine run paced$rate.bin ${args[*]/$work\//} --conns 64 --cores 1 ($n GETs at $rate/s)"
  local lag=(--plot "paced-lag-$transport" --x "$rate" --x-label "target rate (req/s)" --log-y --plot-title "Paced, $name: send lag and wake error (µs)")
  rec paced "$name achieved rate at $rate/s" "req/s" higher kreplay "$c" --plot paced-rate --x "$rate" --x-label "target rate (req/s)" --plot-title "Paced: achieved rate" --series "kreplay $name" -- "${a[@]}"
  rec paced "$name wake error p50 at $rate/s" "µs" lower kreplay "$c" "${lag[@]}" --series "wake error p50" -- "${w50[@]}"
  rec paced "$name wake error p99 at $rate/s" "µs" lower kreplay "$c" "${lag[@]}" --series "wake error p99" -- "${w99[@]}"
  rec paced "$name send lag p50 at $rate/s" "µs" lower kreplay "$c" "${lag[@]}" --series "send lag p50" -- "${p50[@]}"
  rec paced "$name send lag p99 at $rate/s" "µs" lower kreplay "$c" "${lag[@]}" --series "send lag p99" -- "${p99[@]}"
  rec paced "$name send lag p99.9 at $rate/s" "µs" lower kreplay "$c" "${lag[@]}" --series "send lag p99.9" -- "${p999[@]}"
  rec paced "$name send lag max at $rate/s" "µs" lower kreplay "$c" -- "${mx[@]}"
  rec paced "$name latency from due instant p50 at $rate/s" ms lower kreplay "$c" -- "${l50[@]}"
  rec paced "$name latency from due instant p99 at $rate/s" ms lower kreplay "$c" --plot paced-latency --x "$rate" --x-label "target rate (req/s)" --log-y --plot-title "Paced: latency p99 from the due instant" --series "kreplay $name" -- "${l99[@]}"
  rec paced "$name client CPU per request at $rate/s" "µs" lower kreplay "$c" -- "${cpu[@]}"
  rec paced "$name client core busy fraction at $rate/s" "" lower kreplay "$c" -- "${busy[@]}"
}

paced_hey() {
  local rate=$1 q=$(($1 / 50)) a=() cpu=() n
  [ "$q" -ge 1 ] || q=1
  local cmd=(hey -z "${seconds}s" -c 50 -q "$q" "$url")
  for _ in $(seq "$repeat"); do
    if ! timed "$work/time" timeout $((seconds * 4 + 30)) "${cmd[@]}" >"$work/hey.out" 2>&1; then
      note paced "hey failed at $rate/s: $(tail -c 300 "$work/hey.out")"
      return 0
    fi
    a+=("$(awk '/Requests\/sec/ {print $2}' "$work/hey.out")")
    n=$(hey_count "$work/hey.out")
    cpu+=("$(calc "$(cpu_of "$work/time") / ($n > 0 ? $n : 1) * 1000000")")
  done
  rec paced "HTTP/1.1 achieved rate at $rate/s" "req/s" higher hey "${cmd[*]} (-q is per worker: 50 × $q/s)" --plot paced-rate --x "$rate" --series "hey HTTP/1.1" -- "${a[@]}"
  rec paced "HTTP/1.1 client CPU per request at $rate/s" "µs" lower hey "${cmd[*]}" -- "${cpu[@]}"
}

# paced_floor RATE N: the send-lag floor of one core at RATE over plain HTTP/1.1 (kreplay-floor
# burst: RATE/1000 requests written back to back at each millisecond, no replay work).
paced_floor() {
  local rate=$1 n=$2 burst period=1000 w50=() w99=() p50=() p99=() send=() f=$work/floor.out
  burst=$((rate / 1000))
  if [ "$burst" -lt 1 ]; then burst=1 period=$((1000000 / rate)); fi
  local cmd=("$bin/kreplay-floor" burst "$url" --burst "$burst" --period-us "$period" --requests "$n")
  for _ in $(seq "$repeat"); do
    if ! timed "$work/time" timeout $((seconds * 4 + 30)) "${cmd[@]}" >"$f" 2>&1; then
      note paced "kreplay-floor burst failed at $rate/s: $(tail -c 300 "$f")"
      return 0
    fi
    head -1 "$f" >"$f.json"
    w50+=("$(get "$f.json" /wakeErrorMicros/p50)") w99+=("$(get "$f.json" /wakeErrorMicros/p99)")
    p50+=("$(get "$f.json" /sendLagMicros/p50)") p99+=("$(get "$f.json" /sendLagMicros/p99)")
    send+=("$(get "$f.json" /sendMicros)")
  done
  local c="kreplay-floor burst URL --burst $burst --period-us $period --requests $n"
  local lag=(--plot "paced-lag-h1" --x "$rate" --x-label "target rate (req/s)" --log-y)
  rec paced "HTTP/1.1 wake error p50 at $rate/s" "µs" lower floor-burst "$c" -- "${w50[@]}"
  rec paced "HTTP/1.1 wake error p99 at $rate/s" "µs" lower floor-burst "$c" -- "${w99[@]}"
  rec paced "HTTP/1.1 send lag p50 at $rate/s" "µs" lower floor-burst "$c" "${lag[@]}" --series "floor send lag p50" -- "${p50[@]}"
  rec paced "HTTP/1.1 send lag p99 at $rate/s" "µs" lower floor-burst "$c" "${lag[@]}" --series "floor send lag p99" -- "${p99[@]}"
  rec paced "HTTP/1.1 cost of one send at $rate/s" "µs" lower floor-burst "$c" -- "${send[@]}"
}

# paced_split RATE: the one-core HTTP/1.1 replay at RATE on two cores instead (CPUs 0 and 1;
# CPU 0 is nginx's too, so this shows the split, not a second free core). Each core owns the
# objects its key hash gives it, so an instant's burst is split between them and its last
# request waits for about half as many sends.
paced_split() {
  local rate=$1 r=$work/report.json w99=() p50=() p99=() p999=() c0=() c1=()
  if [ "$(nproc)" -lt 2 ]; then
    note paced "one CPU: no two-core run"
    return 0
  fi
  local cmd=("$bin/engine" run "$work/paced$rate.bin" --server "http://127.0.0.1:$port" --conns 64 --cores 2 --quiet --result "$r")
  for _ in $(seq "$repeat"); do
    if ! taskset -c 0,1 timeout $((seconds * 10 + 60)) "${cmd[@]}" 2>"$work/engine.err"; then
      note paced "two-core run failed at $rate/s: $(tail -c 300 "$work/engine.err")"
      return 0
    fi
    w99+=("$(calc "$(get "$r" /kreplay/wakeError/p99) * 1000000")")
    p50+=("$(calc "$(get "$r" /kreplay/sendLag/p50) * 1000000")") p99+=("$(calc "$(get "$r" /kreplay/sendLag/p99) * 1000000")")
    p999+=("$(calc "$(get "$r" /kreplay/sendLag/p999) * 1000000")")
    c0+=("$(get "$r" /kreplay/perCore/0/sendLag/count)") c1+=("$(get "$r" /kreplay/perCore/1/sendLag/count)")
  done
  local c="taskset -c 0,1 engine run paced$rate.bin --server http://127.0.0.1:PORT --conns 64 --cores 2"
  local lag=(--plot "paced-lag-h1" --x "$rate" --x-label "target rate (req/s)" --log-y)
  rec paced "HTTP/1.1 two cores: wake error p99 at $rate/s" "µs" lower kreplay "$c" -- "${w99[@]}"
  rec paced "HTTP/1.1 two cores: send lag p50 at $rate/s" "µs" lower kreplay "$c" "${lag[@]}" --series "two cores: send lag p50" -- "${p50[@]}"
  rec paced "HTTP/1.1 two cores: send lag p99 at $rate/s" "µs" lower kreplay "$c" "${lag[@]}" --series "two cores: send lag p99" -- "${p99[@]}"
  rec paced "HTTP/1.1 two cores: send lag p99.9 at $rate/s" "µs" lower kreplay "$c" -- "${p999[@]}"
  note paced "Two cores at $rate/s: requests sent by core 0 / core 1, per repeat: ${c0[*]} / ${c1[*]}."
}

paced_oha() {
  local rate=$1 transport=$2 a=() l50=() l99=() cpu=() n f=$work/oha.json name target extra=()
  name=$(transport_name "$transport")
  target=$url
  case "$transport" in
    h1tls) target=$tlsurl extra=(--cacert "$work/ca.crt") ;;
    h2) target=$tlsurl extra=(--http2 --cacert "$work/ca.crt") ;;
  esac
  # shellcheck disable=SC2207
  local cmd=(oha --worker-threads 1 -z "${seconds}s" -c 64 -q "$rate" --latency-correction --no-tui "${extra[@]}" $(oha_json_flag) "$target")
  for _ in $(seq "$repeat"); do
    if ! timed "$work/time" timeout $((seconds * 4 + 30)) "${cmd[@]}" >"$f" 2>"$work/oha.err"; then
      note paced "oha failed at $rate/s ($name): $(head -c 300 "$work/oha.err")"
      return 0
    fi
    a+=("$(get "$f" /summary/requestsPerSec)")
    l50+=("$(calc "$(get "$f" /latencyPercentiles/p50) * 1000")") l99+=("$(calc "$(get "$f" /latencyPercentiles/p99) * 1000")")
    n=$(oha_count "$f")
    cpu+=("$(calc "$(cpu_of "$work/time") / ($n > 0 ? $n : 1) * 1000000")")
  done
  local c="${cmd[*]/$work\//}"
  rec paced "$name achieved rate at $rate/s" "req/s" higher oha "$c" --plot paced-rate --x "$rate" --series "oha $name" -- "${a[@]}"
  rec paced "$name latency from due instant p50 at $rate/s" ms lower oha "$c" -- "${l50[@]}"
  rec paced "$name latency from due instant p99 at $rate/s" ms lower oha "$c" --plot paced-latency --x "$rate" --series "oha $name" -- "${l99[@]}"
  rec paced "$name client CPU per request at $rate/s" "µs" lower oha "$c" -- "${cpu[@]}"
}

# apisim must not be the bottleneck of scenarios 3 and 4: GETs of one object, wrk on CPU 1.
section_apisim() {
  stop_nginx
  start_apisim --plain --no-auth
  curl -fsS -X POST -H 'Content-Type: application/json' "$sim/api/v1/namespaces/default/configmaps" \
    -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"default"},"data":{"k":"v"}}' >/dev/null
  local a=() cmd=(wrk -t1 -c32 -d5s "$sim/api/v1/namespaces/default/configmaps/a")
  for _ in $(seq "$repeat"); do
    taskset -c 1 timeout 60 "${cmd[@]}" >"$work/wrk.out"
    a+=("$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")")
  done
  stop_apisim
  note apisim "A capacity check of the target, not a comparison: apisim (--plain --no-auth, one thread, CPU 0) must serve at least 50,000 GET/s so that it is not the bottleneck of scenarios 3 and 4."
  rec apisim "apisim GETs of one ConfigMap served per second" "req/s" higher wrk "${cmd[*]}" -- "${a[@]}"
}
