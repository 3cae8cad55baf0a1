#!/usr/bin/env bash
# Benchmark: `run` at Intune's documented limits (200 POSTs and 2000 requests per 20 s
# per app), against `simulate` enforcing them with 60-120 ms answers.
# Reports the sustained reset rate (target: at least 95% of 10/s), the most POSTs the
# simulator saw in any 20-second window (must stay at or below 200), the share of POSTs
# answered 429 (target: at most 1%) and the runner's peak memory.
# Usage: bash benches/run_limits.sh [DEVICES]   (default 2200: about 4 minutes)
source "$(dirname "$0")/common.sh"
n=${1:-2200}
make_job "$n" "$work/job.csv"
start_sim "$work/job.csv" --latency-ms 60 --jitter-ms 60 --log "$work/sim.jsonl"
run_env /usr/bin/time -v "$bin" run "$work/job.csv" --yes --action auto -q \
  --graph-url "$url" --authority-url "$url" \
  --report "$work/report.csv" --summary-json "$work/summary.json" 2> "$work/run.err" || true
kill -INT "$simpid"; wait "$simpid" 2>/dev/null || true; simpid=
python3 - "$work/sim.jsonl" "$work/summary.json" "$n" <<'PY'
import json, sys
from datetime import datetime
log, summary, n = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
def t(s): return datetime.strptime(s.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
posts = [(t(e["time"]), e["status"]) for e in map(json.loads, open(log)) if e["kind"] == "resetPasscode"]
posts.sort()
ok = [p for p in posts if p[1] == 204]
throttled = sum(1 for p in posts if p[1] == 429)
j, most = 0, 0
for i in range(len(posts)):
    while posts[j][0] <= posts[i][0] - 20.0: j += 1
    most = max(most, i - j + 1)
span = ok[-1][0] - ok[0][0]
rate = (len(ok) - 1) / span
print(f"devices: {n}, resets: {len(ok)} in {span:.1f} s of sending")
print(f"sustained: {rate:.2f} resets/s = {rate / 10 * 100:.1f}% of 200 per 20 s")
print(f"most POSTs in any 20 s window: {most} (limit 200)")
print(f"429 answers: {throttled} of {len(posts)} POSTs ({throttled / len(posts) * 100:.2f}%)")
print(f"run summary: {summary['outcomes']}, {summary['run']['resets_per_second']:.2f} resets/s over the whole run")
PY
grep -E "Maximum resident set size" "$work/run.err" | sed 's/^\s*/runner /'
