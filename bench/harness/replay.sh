# Sourced by scripts/bench.sh: scenario 3, a realistic replay (default verb mix, watches)
# against apisim over TLS/HTTP/2, with per-object order checked at apisim.

section_replay() {
  stop_nginx
  local s=replay dur=$((replay_requests / replay_rate)) r=$work/report.json
  local gen_args=(-n "$replay_requests" --rate "$replay_rate" --watches "$replay_watches" --runners 1 --conns 16 --seed 7)
  gen replay "${gen_args[@]}"
  note $s "No peer can do this: wrk, hey, h2load and oha send one URL at a fixed rate and cannot replay a profile (verbs, bodies, per-object order, watches). Profile: \`kreplay-gen ${gen_args[*]}\` (default verb mix, about ${dur} s)."
  local viol=() ach=() sch=() p50=() p99=() mx=() failed=() watches=() i
  local cmd="engine run replay.bin --kubeconfig <apisim's> --cores 1 against apisim (TLS, HTTP/2, --no-auth, CPU 0)"
  for i in $(seq "$repeat"); do
    start_apisim --no-auth --kubeconfig-out "$work/sim.kubeconfig" --write-ca "$work/sim-ca.crt" \
      --order-log-limit $((replay_requests * 2))
    engine_run $((dur * 4 + 120)) "$work/replay.bin" --kubeconfig "$work/sim.kubeconfig" ||
      { echo "replay: engine failed: $(cat "$work/engine.err")" >&2; exit 1; }
    timeout 60 curl -fsS --cacert "$work/sim-ca.crt" "$sim/apisim/order" -o "$work/order.json"
    stop_apisim
    viol+=("$("$bin/kreplay-lab" order-violations --profile "$work/replay.yaml" --order "$work/order.json" 2>"$work/violations.txt")")
    [ "${viol[-1]}" = 0 ] || { echo "replay run $i: ${viol[-1]} per-object order violations:" >&2; cat "$work/violations.txt" >&2; }
    ach+=("$(get "$r" /kreplay/rate/achievedPerSecond)") sch+=("$(get "$r" /kreplay/rate/scheduledPerSecond)")
    p50+=("$(calc "$(get "$r" /kreplay/sendLag/p50) * 1000")") p99+=("$(calc "$(get "$r" /kreplay/sendLag/p99) * 1000")")
    mx+=("$(calc "$(get "$r" /kreplay/sendLag/max) * 1000")")
    failed+=("$(get "$r" /totalFailed)") watches+=("$(get "$r" /kreplay/verbs/WATCH/count 0)")
    if [ "$i" = 1 ]; then
      local series
      for series in scheduled sent; do
        "$bin/kreplay-lab" series --records "$records" --scenario $s --title "${titles[$s]}" --plot replay-shape \
          --plot-title "Replay shape: requests per second, scheduled vs sent (run 1)" --series "$series" \
          --x-label "seconds since the replay's start" --y-label "requests" --command "$cmd" \
          --json "$r" --pointer "/kreplay/perSecond/$series" --optional 2>>"$work/series.err"
      done
    fi
  done
  if [ -s "$work/series.err" ]; then
    note $s "The engine's report has no per-second counts (kreplay.perSecond) in this build: no replay-shape plot."
  fi
  rec $s "per-object order violations at apisim" objects lower kreplay "$cmd; kreplay-lab order-violations" --expect 0 -- "${viol[@]}"
  rec $s "watches opened" watches higher kreplay "$cmd" --expect "$replay_watches" -- "${watches[@]}"
  rec $s "failed requests" requests lower kreplay "$cmd" -- "${failed[@]}"
  rec $s "scheduled rate" "req/s" higher kreplay "$cmd" -- "${sch[@]}"
  rec $s "achieved rate" "req/s" higher kreplay "$cmd" -- "${ach[@]}"
  rec $s "send lag p50" ms lower kreplay "$cmd" -- "${p50[@]}"
  rec $s "send lag p99" ms lower kreplay "$cmd" -- "${p99[@]}"
  rec $s "send lag max" ms lower kreplay "$cmd" -- "${mx[@]}"
}
