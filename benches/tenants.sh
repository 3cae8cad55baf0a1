#!/usr/bin/env bash
# Benchmark: one run across three tenants (issue 22) against `simulate` serving three
# tenants, each with Intune's limits (200 writes and 2,000 requests per 20 s per app per
# tenant) and 60-120 ms answers, tenant 3 answering 20% of its requests 429 without
# Retry-After. Each tenant holds N iOS 17 devices of its own ids; the job names each
# row's tenant (a `tenant` column) and is run without --tenant: the tool signs in to
# each tenant the rows name and runs one engine and pacer per tenant, in parallel.
# (a) each tenant ALONE (its N rows, `--tenant ID`), then (b) the three TOGETHER (3N
# rows), each against a fresh simulator (same seed: the same faults), so no device was
# "recently reset". Reports each run's time, together / slowest alone (target: about 1),
# each device's resets from the simulator's log (`effect`, per tenant: each exactly
# once, any twice = FAIL), the 429s per tenant, and the pace of tenants 1 and 2 while
# tenant 3 is throttled (their resets/s together against alone).
# Usage: bash benches/tenants.sh [N]   (default 600: about 5 minutes)
source "$(dirname "$0")/common.sh"
n=${1:-600}
fault=${FAULT:-0.2}
t1=6f1c2a4e-0b7d-4c1a-9e3f-5a8b2d7c4e10 # intune_reset::sim::DEFAULT_TENANT_ID
t2=2b7e0c1d-4f3a-4e6b-9c8d-7a6b5c4d3e2f
t3=9d4c3b2a-1e0f-4a5b-8c7d-6e5f4a3b2c1d
tenants=("$t1" "$t2" "$t3")
# No AZURE_TENANT_ID: a job whose rows name their tenants signs in to each of them.
creds=(AZURE_CLIENT_ID=5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d AZURE_CLIENT_SECRET=benchmark-secret)

# Inventories A/B/C (one per tenant, distinct ids), each tenant's own job (its rows,
# naming it) and the job of all 3N rows.
python3 - "$n" "$work" "${tenants[@]}" <<'PY'
import sys
n, work, tenants = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
head = "id,deviceName,operatingSystem,osVersion,deviceType"
rows = {k: [f"{k + 1:02x}{i:06x}-{i % 65536:04x}-4000-8000-{k + 1:04x}{i:08x},iPhone {k + 1}-{i},iOS,17.5,iPhone"
            for i in range(n)] for k in range(3)}
with open(f"{work}/all.csv", "w") as every:
    every.write(head + ",tenant\n")
    for k, tenant in enumerate(tenants):
        with open(f"{work}/inv{k + 1}.csv", "w") as inv, open(f"{work}/alone{k + 1}.csv", "w") as job:
            inv.write(head + "\n")
            job.write(head + ",tenant\n")
            for r in rows[k]:
                inv.write(r + "\n")
                job.write(f"{r},{tenant}\n")
                every.write(f"{r},{tenant}\n")
PY

sim_flags=(--latency-ms 60 --jitter-ms 60
           --tenant-inventory "$t2=$work/inv2.csv" --tenant-inventory "$t3=$work/inv3.csv"
           --tenant-fault "$t3:429-no-retry-after=$fault")

# run_one NAME JOB [run flags...]: a fresh simulator, one run, its wall time in NAME.time.
run_one() {
  local name=$1 job=$2; shift 2
  start_sim "$work/inv1.csv" "${sim_flags[@]}" --log "$work/$name.jsonl"
  cp "$work/sim.err" "$work/$name.sim-start.err"
  local t0 t1e
  t0=$(date +%s.%N)
  run_env "$bin" run "$job" --yes --action remove-passcode -q "$@" \
    --graph-url "$url" --authority-url "$url" \
    --report "$work/$name.report.csv" --summary-json "$work/$name.summary.json" \
    > "$work/$name.out" 2> "$work/$name.err" && echo 0 > "$work/$name.rc" || echo $? > "$work/$name.rc"
  t1e=$(date +%s.%N)
  echo "$t0 $t1e" > "$work/$name.time"
  kill -INT "$simpid"; wait "$simpid" 2>/dev/null || true; simpid=
  cp "$work/sim.err" "$work/$name.sim.err"
  echo "$name: exit $(cat "$work/$name.rc"), $(python3 -c "import sys; a, b = map(float, open(sys.argv[1]).read().split()); print(f'{b - a:.1f} s')" "$work/$name.time")" >&2
}

for k in 1 2 3; do run_one "alone$k" "$work/alone$k.csv" --tenant "${tenants[$((k - 1))]}"; done
run_one together "$work/all.csv"

python3 - "$work" "$n" "${tenants[@]}" <<'PY'
import collections, json, sys
from datetime import datetime
work, n, tenants = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def t(s): return datetime.strptime(s.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
def wall(name):
    a, b = map(float, open(f"{work}/{name}.time").read().split())
    return b - a
def events(name): return [json.loads(line) for line in open(f"{work}/{name}.jsonl")]

def tenant_figures(evs, tenant):
    mine = [e for e in evs if e.get("tenant") == tenant]
    resets = sorted(t(e["time"]) for e in mine if e["kind"] == "resetPasscode" and e["effect"])
    per_device = collections.Counter(e["device"] for e in mine if e["kind"] == "resetPasscode" and e["effect"])
    s429 = [e for e in mine if e["status"] == 429]
    return {
        "resets": len(resets),
        "devices": len(per_device),
        "twice": sorted(d for d, c in per_device.items() if c > 1),
        "429": len(s429),
        "429_fault": sum(1 for e in s429 if e.get("fault")),
        "429_limit": sum(1 for e in s429 if e.get("throttled")),
        "posts": sum(1 for e in mine if e["kind"] == "resetPasscode"),
        "requests": len(mine),
        "span": (resets[-1] - resets[0]) if len(resets) > 1 else 0.0,
        "rate": (len(resets) - 1) / (resets[-1] - resets[0]) if len(resets) > 1 else 0.0,
        "last": resets[-1] if resets else None,
        "first": resets[0] if resets else None,
    }

ok = True
alone = {}
print(f"three tenants of {n} iOS devices, Intune's limits per tenant, 60-120 ms answers, tenant 3 with 429s")
for k, tenant in enumerate(tenants, 1):
    evs = events(f"alone{k}")
    f = tenant_figures(evs, tenant)
    others = sum(1 for e in evs if e.get("tenant") not in (tenant, None))
    s = json.load(open(f"{work}/alone{k}.summary.json"))
    alone[k] = (wall(f"alone{k}"), f)
    print(f"tenant {k} alone: {wall(f'alone{k}'):.1f} s wall (summary {s.get('elapsed_seconds', 0):.1f} s, "
          f"{s.get('outcomes')}); {f['resets']} resets of {f['devices']} devices, {f['rate']:.2f} resets/s "
          f"over {f['span']:.1f} s; {f['posts']} POSTs; 429s: {f['429']} ({f['429_fault']} injected, {f['429_limit']} limit)"
          + (f"; {others} requests in other tenants!" if others else ""))
    if f["devices"] != n or f["twice"]:
        ok = False
        print(f"  FAIL tenant {k} alone: {f['devices']} of {n} devices reset, twice: {f['twice'][:10]}")

evs = events("together")
start, end = map(float, open(f"{work}/together.time").read().split())
s = json.load(open(f"{work}/together.summary.json"))
tw = wall("together")
slowest = max(w for w, _ in alone.values())
print(f"together: {tw:.1f} s wall (summary {s.get('elapsed_seconds', 0):.1f} s, {s.get('outcomes')})")
for tenant, st in sorted(s.get("tenants", {}).items(), key=lambda kv: tenants.index(kv[0]) if kv[0] in tenants else 9):
    print(f"  run summary, tenant {tenant}: {st.get('outcomes')}, {st.get('posts')} POSTs, {st.get('throttled')} throttled")
print(f"together / slowest alone: {tw:.1f} / {slowest:.1f} = {tw / slowest:.3f}; "
      f"sum of the three alone: {sum(w for w, _ in alone.values()):.1f} s")
for k, tenant in enumerate(tenants, 1):
    f = tenant_figures(evs, tenant)
    a = alone[k][1]
    done = f["last"] - start if f["last"] else float("nan")
    first = f["first"] - start if f["first"] else float("nan")
    print(f"tenant {k} together: {f['resets']} resets of {f['devices']} devices, first reset at {first:.1f} s, last at {done:.1f} s "
          f"(alone: {alone[k][0]:.1f} s), "
          f"{f['rate']:.2f} resets/s over {f['span']:.1f} s (alone {a['rate']:.2f}: {f['rate'] / a['rate'] if a['rate'] else 0:.3f}); "
          f"{f['posts']} POSTs; 429s: {f['429']} ({f['429_fault']} injected, {f['429_limit']} limit)")
    if f["devices"] != n or f["twice"]:
        ok = False
        print(f"  FAIL tenant {k} together: {f['devices']} of {n} devices reset, twice: {f['twice'][:10]}")
    # In parallel, a tenant is done about when it would be alone (its rows were not
    # kept waiting behind another tenant's).
    if done > 1.1 * alone[k][0] + 5:
        ok = False
        print(f"  FAIL tenant {k} done at {done:.1f} s together against {alone[k][0]:.1f} s alone (first reset at {first:.1f} s)")
    if k < 3 and a["rate"] and f["rate"] < 0.95 * a["rate"]:
        ok = False
        print(f"  FAIL tenant {k} slowed while tenant 3 was throttled: {f['rate']:.2f} < 95% of {a['rate']:.2f} resets/s")
stray = sum(1 for e in evs if e["kind"] == "resetPasscode" and e.get("tenant") not in tenants)
if stray:
    ok = False
    print(f"  FAIL {stray} resetPasscode requests outside the three tenants")
print("every device reset exactly once, tenants 1 and 2 at their pace, each tenant done as soon as alone: " + ("PASS" if ok else "FAIL"))
PY
for name in alone1 alone2 alone3 together; do
  if [ "$(cat "$work/$name.rc")" != 0 ]; then
    echo "--- $name: exit $(cat "$work/$name.rc"), stderr (last 15 lines):"; tail -15 "$work/$name.err"
  fi
done
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp -r "$work"/. "$KEEP"/ && echo "files kept in $KEEP"; fi
