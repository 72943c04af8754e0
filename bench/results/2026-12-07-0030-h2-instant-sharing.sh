#!/bin/bash
# How bench/results/2026-12-07-0030-h2-instant-sharing.jsonl was measured: the engine before
# (616ad01, each request of an instant on its own connection) and after (f7f9d99, the
# requests of an instant share one) alternate on the same paced HTTP/2 + TLS profile, one
# JSON line per run. nginx from bench/harness/nginx.conf.in on CPU 0 (TLS port 42725), the
# engine on CPU 1; profiles from `kreplay-gen --mix GET=1 --objects 2000 --namespaces 10
# --runners 1 --watches 0 --rate R -n 5R --conns 64` and `preprocess`, as the lab's paced
# section makes them. Usage: h2-instant-sharing.sh RATE ROUNDS (ran: 10000 5, 20000 5,
# 50000 3, 50000 5).
rate=$1; rounds=$2
for i in $(seq "$rounds"); do
  for b in before after; do
    /usr/bin/time -f "%U %S" -o time taskset -c 1 "./engine-$b" run "paced$rate.bin" \
      --server https://127.0.0.1:42725 --certificate-authority ca.crt --conns 64 --cores 1 \
      --quiet --result r.json 2>err
    python3 - "$b" "$rate" <<'PY'
import json, sys
r = json.load(open('r.json')); k = r['kreplay']
u, s = map(float, open('time').read().split()[-2:])
sl, we = k['sendLag'], k['wakeError']
print(json.dumps(dict(build=sys.argv[1], rate=int(sys.argv[2]), lag50=sl['p50']*1e6,
    lag90=sl['p90']*1e6, lag99=sl['p99']*1e6, lag999=sl['p999']*1e6, wake50=we['p50']*1e6,
    wake99=we['p99']*1e6, cpu=(u+s)/r['totalRun']*1e6, busy=k['perCore'][0]['busyFraction'],
    lat50=k['scheduledLatency'][1][1]*1e3, lat99=k['scheduledLatency'][4][1]*1e3,
    n=r['totalRun'])))
PY
  done
done
