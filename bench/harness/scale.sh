# Sourced by scripts/bench.sh: scenario 4, scale. Preprocess time and peak RSS, engine start
# time and RSS for large timelines; engine RSS with many concurrent watches. One run per size
# (the 10M-request step takes minutes); big files are deleted as soon as they are measured.

section_scale() {
  stop_nginx
  local s=scale n
  note $s "kreplay only (no peer preprocesses or replays profiles). One run per size. *Engine start*: \`engine run X.bin --server http://127.0.0.1:<closed port> --cores 1\`, which opens and checks the timeline, plans the runs, starts the executor and stops at its preflight \`GET /version\` (connection refused): the engine's whole start-up before a first request, with nothing sent. *Full scan*: \`preprocess inspect X.bin\`, which reads every record."
  for n in $scale_sizes; do
    scale_size "$n"
  done
  for n in $scale_watches; do
    scale_watches_run "$n"
  done
  for n in $scale_watch_lag; do
    scale_watch_lag_run "$n"
  done
}

scale_size() {
  local n=$1 s=scale y=$work/scale.yaml b=$work/scale.bin closed
  local plot=(--x "$n" --x-label "requests in the profile" --log-x)
  echo "scale: $n requests (df: $(df -h --output=avail "$work" | tail -1 | xargs) free)" >&2
  timeout 3600 "$bin/kreplay-gen" -n "$n" --rate 10000 --runners 4 --seed 1 -o "$y" >/dev/null 2>>"$work/gen.log"
  local mb
  mb=$(calc "$(stat -c %s "$y") / 1048576")
  timed "$work/time" timeout 3600 "$bin/preprocess" "$y" -o "$b" >/dev/null 2>&1
  rm -f "$y"
  local c="kreplay-gen -n $n --rate 10000 --runners 4 --seed 1; preprocess ($(printf '%.0f' "$mb") MB of YAML)"
  rec $s "preprocess wall time, $n requests" s lower kreplay "$c" --plot scale-time --plot-title "Scale: wall time" --series "preprocess" "${plot[@]}" --log-y -- "$(wall_of "$work/time")"
  rec $s "preprocess peak RSS, $n requests" MB lower kreplay "$c" --plot scale-rss --plot-title "Scale: peak RSS" --series "preprocess" "${plot[@]}" -- "$(rss_mb_of "$work/time")"
  closed=$("$bin/kreplay-lab" free-port)
  timed "$work/time" timeout 600 "$bin/engine" run "$b" --server "http://127.0.0.1:$closed" --cores 1 --quiet 2>"$work/engine.err" || true
  grep -q preflight "$work/engine.err" || { echo "scale: engine did not stop at its preflight: $(cat "$work/engine.err")" >&2; exit 1; }
  c="engine run scale.bin --server http://127.0.0.1:<closed> --cores 1 ($n requests; stops at the preflight)"
  rec $s "engine start wall time, $n requests" s lower kreplay "$c" --plot scale-time --series "engine start" "${plot[@]}" --log-y -- "$(wall_of "$work/time")"
  rec $s "engine start peak RSS, $n requests" MB lower kreplay "$c" --plot scale-rss --series "engine start" "${plot[@]}" -- "$(rss_mb_of "$work/time")"
  timed "$work/time" timeout 600 "$bin/preprocess" inspect "$b" >/dev/null
  c="preprocess inspect scale.bin ($n requests)"
  rec $s "full scan wall time, $n requests" s lower kreplay "$c" --plot scale-time --series "full scan (inspect)" "${plot[@]}" --log-y -- "$(wall_of "$work/time")"
  rec $s "full scan peak RSS, $n requests" MB lower kreplay "$c" --plot scale-rss --series "full scan (inspect)" "${plot[@]}" -- "$(rss_mb_of "$work/time")"
  rm -f "$b"
}

# scale_watches_run W: W WATCHes spread over the replay (plus GETs at 1,000/s for about 5 s),
# held until it ends; the engine's peak RSS and the watches its report counts.
scale_watches_run() {
  local w=$1 s=scale r=$work/report.json n=$(($1 + 5000))
  local rate=$(( n / 8 > 1000 ? n / 8 : 1000 ))
  gen "watch$w" -n "$n" --rate "$rate" --mix GET=1 --watches "$w" --runners 1 --conns 16 --seed 1
  rm -f "$work/watch$w.yaml"
  start_apisim --no-auth --kubeconfig-out "$work/sim.kubeconfig" --order-log-limit 0
  engine_run 300 "$work/watch$w.bin" --kubeconfig "$work/sim.kubeconfig" ||
    { echo "scale: engine failed with $w watches: $(cat "$work/engine.err")" >&2; stop_apisim; exit 1; }
  stop_apisim
  local c="engine run watch$w.bin --kubeconfig <apisim's> --cores 1 (HTTP/2; kreplay-gen -n $n --rate $rate --mix GET=1 --watches $w: watches spread over the replay, all open at its end)"
  local plot=(--plot scale-watches --plot-title "Scale: engine peak RSS against concurrent watches" --x "$w" --x-label "watches" --series "engine peak RSS")
  rec $s "engine peak RSS, $w watches" MB lower kreplay "$c" "${plot[@]}" -- "$(rss_mb_of "$work/time")"
  rec $s "watches opened, $w watches" watches higher kreplay "$c" --expect "$w" -- "$(get "$r" /kreplay/verbs/WATCH/count 0)"
  rec $s "failed requests, $w watches" requests lower kreplay "$c" -- "$(get "$r" /totalFailed)"
  rec $s "send lag p99, $w watches" ms lower kreplay "$c" -- "$(calc "$(get "$r" /kreplay/sendLag/p99) * 1000")"
  rm -f "$work/watch$w.bin"
}

# scale_watch_lag_run W: the send lag of 10,000 GETs (1,000/s for 10 s) with W WATCHes opened
# beside them (W/10 per second, each held to the end, apisim sending a BOOKMARK per watch per
# second) and without them, in rounds of three runs, $repeat rounds, fresh apisim each run:
# without WATCHes; with them on the WATCH executor's default CPUs (the core's, CPU 1, at the
# lowest priority); with them on CPU 0 (`--watch-cpus 0`, beside apisim, at the lowest priority:
# apisim keeps its CPU and the core does none of the WATCHes' work). The WATCHes share
# connections (`--watch-connections shared`): kperf's rule gives each its own socket, and a
# container's open-file limit is often far below W. The figure is the send lag of the requests
# that are not WATCHes (`kreplay.sendLag.withoutWatches`: a WATCH's own lag includes its
# connect).
scale_watch_lag_run() {
  local w=$1 s=scale r=$work/report.json i n=$(($1 + 10000))
  local rate=$((n / 10))
  gen "lagw$w" -n "$n" --rate "$rate" --mix GET=1 --watches "$w" --runners 1 --conns 16 --seed 1
  gen lag0 -n 10000 --rate 1000 --mix GET=1 --runners 1 --conns 16 --seed 1
  rm -f "$work/lagw$w.yaml" "$work/lag0.yaml"
  local base=() with=() apart=() opened=() failed=() rss=() sim_rss=()
  local opened_apart=() failed_apart=() events=() events_apart=()
  local flags=(--watch-connections shared --grace 5s)
  for i in $(seq "$repeat"); do
    start_apisim --no-auth --kubeconfig-out "$work/sim.kubeconfig" --order-log-limit 0
    engine_run 600 "$work/lag0.bin" --kubeconfig "$work/sim.kubeconfig" "${flags[@]}" ||
      { echo "scale: engine failed without watches: $(cat "$work/engine.err")" >&2; stop_apisim; exit 1; }
    stop_apisim
    base+=("$(calc "$(get "$r" /kreplay/sendLag/p99) * 1000")")
    start_apisim --no-auth --kubeconfig-out "$work/sim.kubeconfig" --order-log-limit 0
    engine_run 900 "$work/lagw$w.bin" --kubeconfig "$work/sim.kubeconfig" "${flags[@]}" ||
      { echo "scale: engine failed with $w watches: $(cat "$work/engine.err")" >&2; stop_apisim; exit 1; }
    sim_rss+=("$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$apisim_pid/status")")
    stop_apisim
    with+=("$(calc "$(get "$r" /kreplay/sendLag/withoutWatches/p99) * 1000")")
    opened+=("$(get "$r" /kreplay/verbs/WATCH/count 0)")
    failed+=("$(get "$r" /totalFailed)")
    events+=("$(watch_events "$r")")
    rss+=("$(rss_mb_of "$work/time")")
    start_apisim --no-auth --kubeconfig-out "$work/sim.kubeconfig" --order-log-limit 0
    timed_cpus=0,1 engine_run 900 "$work/lagw$w.bin" --kubeconfig "$work/sim.kubeconfig" "${flags[@]}" --cpus 1 --watch-cpus 0 ||
      { echo "scale: engine failed with $w watches on CPU 0: $(cat "$work/engine.err")" >&2; stop_apisim; exit 1; }
    stop_apisim
    apart+=("$(calc "$(get "$r" /kreplay/sendLag/withoutWatches/p99) * 1000")")
    opened_apart+=("$(get "$r" /kreplay/verbs/WATCH/count 0)")
    failed_apart+=("$(get "$r" /totalFailed)")
    events_apart+=("$(watch_events "$r")")
  done
  local c0="engine run lag0.bin --kubeconfig <apisim's> --cores 1 ${flags[*]} (kreplay-gen -n 10000 --rate 1000 --mix GET=1: no WATCH)"
  local c="engine run lagw$w.bin --kubeconfig <apisim's> --cores 1 ${flags[*]} (kreplay-gen -n $n --rate $rate --mix GET=1 --watches $w; in rounds with the run without WATCHes)"
  local ca="taskset -c 0,1 engine run lagw$w.bin --kubeconfig <apisim's> --cores 1 ${flags[*]} --cpus 1 --watch-cpus 0 (the WATCH executor on apisim's CPU; in rounds with the run without WATCHes)"
  local plot=(--plot scale-watch-lag --plot-title "Scale: send lag p99 of 1,000 GET/s beside concurrent watches" --x-label "watches opened beside the GETs")
  rec $s "send lag p99 of the GETs, no watches" ms lower kreplay "$c0" "${plot[@]}" --x 0 --series "GET send lag p99, WATCHes on the core's CPU" -- "${base[@]}"
  rec $s "send lag p99 of the GETs, $w watches" ms lower kreplay "$c" "${plot[@]}" --x "$w" --series "GET send lag p99, WATCHes on the core's CPU" -- "${with[@]}"
  rec $s "send lag p99 of the GETs, $w watches on CPU 0" ms lower kreplay "$ca" "${plot[@]}" --x "$w" --series "GET send lag p99, WATCHes on CPU 0 (--watch-cpus 0)" -- "${apart[@]}"
  rec $s "watches opened, $w watches beside GETs" watches higher kreplay "$c" --expect "$w" -- "${opened[@]}"
  rec $s "watches opened, $w watches on CPU 0" watches higher kreplay "$ca" --expect "$w" -- "${opened_apart[@]}"
  rec $s "WATCH events read, $w watches beside GETs" events higher kreplay "$c" -- "${events[@]}"
  rec $s "WATCH events read, $w watches on CPU 0" events higher kreplay "$ca" -- "${events_apart[@]}"
  rec $s "failed requests, $w watches beside GETs" requests lower kreplay "$c" --expect 0 -- "${failed[@]}"
  rec $s "failed requests, $w watches on CPU 0" requests lower kreplay "$ca" --expect 0 -- "${failed_apart[@]}"
  rec $s "engine peak RSS, $w watches beside GETs" MB lower kreplay "$c" -- "${rss[@]}"
  rec $s "apisim peak RSS, $w watches beside GETs" MB lower kreplay "$c" -- "${sim_rss[@]}"
  rm -f "$work/lagw$w.bin" "$work/lag0.bin"
}

# watch_events REPORT: the WATCH events the report counts, over every WATCH.
watch_events() {
  python3 -c 'import json, sys; print(sum(w.get("events", 0) for w in json.load(open(sys.argv[1]))["kreplay"].get("watches", {}).values()))' "$1"
}
