#!/usr/bin/env bash
# Benchmark: the client is never the bottleneck. `run --unthrottled` against
# `simulate --no-limits` with no latency: devices per second (target: at least 5,000)
# and the runner's peak memory at several job sizes (it should barely grow).
# Usage: bash benches/run_throughput.sh [SIZES...]   (default: 10000 50000 100000)
source "$(dirname "$0")/common.sh"
sizes=("$@"); [ ${#sizes[@]} -eq 0 ] && sizes=(10000 50000 100000)
for n in "${sizes[@]}"; do
  make_job "$n" "$work/job-$n.csv"
  start_sim "$work/job-$n.csv" --no-limits
  run_env /usr/bin/time -v "$bin" run "$work/job-$n.csv" --yes --action auto -q \
    --graph-url "$url" --authority-url "$url" --unthrottled --concurrency 64 \
    --report "$work/report-$n.csv" --summary-json "$work/summary-$n.json" 2> "$work/run-$n.err" || true
  kill -INT "$simpid"; wait "$simpid" 2>/dev/null || true; simpid=
  python3 - "$work/summary-$n.json" "$n" "$work/run-$n.err" <<'PY'
import json, re, sys
s, n = json.load(open(sys.argv[1])), int(sys.argv[2])
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(sys.argv[3]).read())
ok = s["outcomes"].get("succeeded", 0)
print(f"{n:>7} devices: {ok} succeeded in {s['elapsed_seconds']:.2f} s = {ok / s['elapsed_seconds']:,.0f} devices/s, runner peak {int(rss.group(1)) / 1024:.1f} MB")
PY
done
