#!/usr/bin/env bash
# Benchmark (issue 19): the runner's peak memory as a job by Intune id grows to 100,000
# devices, and whether it is flat per device.
#
# Each size runs the release binary (`run --unthrottled --concurrency 64`, so 100,000
# devices take seconds, not Intune's 10,000 s) against its own `simulate --no-limits`
# process holding the job's devices, under `/usr/bin/time -v`. Prints, per size, the
# runner's peak RSS and bytes per device, then the growth between sizes: the bytes each
# further device adds ((RSS_b - RSS_a) / (b - a)); flat memory means that is near 0.
# Usage: bash benches/memory_100k.sh [SIZES...]   (default: 10000 30000 100000, ~2 minutes)
source "$(dirname "$0")/common.sh"
sizes=("$@"); [ ${#sizes[@]} -eq 0 ] && sizes=(10000 30000 100000)
for n in "${sizes[@]}"; do
  case $n in '' | *[!0-9]*) echo "a size is a number of devices, not '$n'" >&2; exit 2 ;; esac
done
for n in "${sizes[@]}"; do
  make_job "$n" "$work/job-$n.csv"
  start_sim "$work/job-$n.csv" --no-limits
  rc=0
  run_env /usr/bin/time -v -o "$work/time-$n.txt" "$bin" run "$work/job-$n.csv" --yes --action auto -q \
    --graph-url "$url" --authority-url "$url" --unthrottled --concurrency 64 \
    --report "$work/report-$n.csv" --summary-json "$work/summary-$n.json" \
    > "$work/run-$n.out" 2> "$work/run-$n.err" || rc=$?
  kill -TERM "$simpid"; wait "$simpid" 2>/dev/null || true; simpid=
  if [ ! -s "$work/summary-$n.json" ]; then
    echo "$n devices: the run wrote no summary (exit $rc):" >&2; tail -5 "$work/run-$n.err" >&2; exit 1
  fi
done
python3 - "$work" "${sizes[@]}" <<'PY'
import json, re, sys
work, sizes = sys.argv[1], [int(n) for n in sys.argv[2:]]
rows = []
for n in sizes:
    s = json.load(open(f"{work}/summary-{n}.json"))
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{work}/time-{n}.txt").read()).group(1))
    ok = s["outcomes"].get("succeeded", 0)
    rows.append((n, kb * 1024))
    lost = "" if ok == n else f"  ({ok} of {n} succeeded: {s['outcomes']})"
    print(f"{n:>7} devices: runner peak {kb / 1024:6.1f} MB = {kb * 1024 / n:7.0f} bytes/device, "
          f"{s['elapsed_seconds']:.1f} s{lost}")
for (a, ra), (b, rb) in zip(rows, rows[1:]):
    print(f"{a:>7} -> {b:>7}: {(rb - ra) / (b - a):+.0f} bytes per further device")
PY
