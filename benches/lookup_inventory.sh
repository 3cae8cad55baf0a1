#!/usr/bin/env bash
# Benchmark: resolving serial-number rows against a tenant at Intune's limits, with
# `plan --live` (reads only), through the inventory join (issue 11).
#   - 600 serial numbers in a 3,000-device tenant: the number of GET requests;
#   - 10,000 serial numbers in a 50,000-device tenant: the wall time.
# Both against `intune-reset simulate` with its default (Intune's) limits and 40-80 ms
# answers. Usage: bash benches/lookup_inventory.sh
source "$(dirname "$0")/common.sh"

make_tenant() { # make_tenant N FILE: N iOS devices with ids and serial numbers
  python3 - "$1" "$2" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("id,deviceName,serialNumber,operatingSystem,osVersion,deviceType\n")
    for i in range(n):
        f.write(f"{i:08x}-{i % 65536:04x}-4000-8000-{i:012x},iPhone {i},SN{i:07d},iOS,17.5,iPhone\n")
PY
}

make_serials() { # make_serials N STEP FILE: every STEP-th device's serial number
  python3 - "$1" "$2" "$3" <<'PY'
import sys
n, step, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    f.write("serialNumber\n")
    for i in range(n):
        f.write(f"SN{i * step:07d}\n")
PY
}

bench() { # bench TENANT_SIZE SERIALS
  local size=$1 serials=$2
  make_tenant "$size" "$work/tenant.csv"
  make_serials "$serials" $((size / serials)) "$work/serials.csv"
  start_sim "$work/tenant.csv" --latency-ms 40 --jitter-ms 40 --log "$work/sim.jsonl"
  local t0 t1
  t0=$(date +%s.%N)
  run_env "$bin" plan --live --action auto "$work/serials.csv" \
    --graph-url "$url" --authority-url "$url" --report "$work/plan.csv" -q 2> "$work/plan.err" || true
  t1=$(date +%s.%N)
  kill -TERM "$simpid"; wait "$simpid" 2>/dev/null || true; simpid=
  local gets planned
  gets=$(grep -c '"method":"GET"' "$work/sim.jsonl" || true)
  planned=$(grep -c ',planned,' "$work/plan.csv" || true)
  printf '%6d serial numbers in a %6d-device tenant: %5d GET requests, %6.1f s wall, %d planned\n' \
    "$serials" "$size" "$gets" "$(echo "$t1 - $t0" | bc)" "$planned"
  rm -f "$work/sim.jsonl" "$work/sim.out" "$work/sim.err"
}

bench 3000 600
bench 50000 10000
