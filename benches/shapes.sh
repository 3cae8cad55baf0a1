#!/usr/bin/env bash
# Benchmark (issue 19): each shape of job against its bound, at Intune's documented limits.
#
# `intune-reset simulate` enforces 200 writes and 2,000 requests per 20 s per app and
# answers in 40-80 ms (`--latency-ms 40 --jitter-ms 40`); the release binary runs each
# job with `--yes -q`, under `/usr/bin/time -v` (peak memory). The simulator's JSON Lines
# request log is the record every figure comes from.
#
# Shapes (default: all, in this order):
#   ids          2,000 iOS devices by Intune id
#   serials      2,000 serial numbers in a 20,000-device tenant (60% of it eligible)
#   users        500 users (`--users FILE`), 4 devices each, 2.5 of them eligible
#   group        an Entra group of 1,000 users (`--group`), 2 devices each, 1.2 eligible
#   follow       2,000 devices by id, `--follow 5m --passcodes FILE`, Graph completing
#                each action 2 s after it (`simulate --action-delay 2`)
#   faults       600 devices by id; 3% of answers 503, 1% dropped after the action took
#                effect, 1% slow: held TIMEOUT + 5 s, past the run's `--timeout`
#                (FAULT_TIMEOUT, default 30 s, the run's own default), so the client gives
#                up and the reset lands later, before the settle (2 x timeout after the
#                send) looks for it. A shorter FAULT_TIMEOUT=2 shortens every settle window
#   all-devices  `plan --live --all-devices` on a 3,000-device tenant
#
# The bound, from the same numbers the run is measured on (P: devices the job must
# reset, R: reads that must come before the question, the listing of a user's or a
# group's devices or of the tenant for serial numbers):
#   bound = R / 100 + (P - 1) / 10 seconds
# R at the any-request budget (2,000 per 20 s = 100/s), then P POSTs at the write budget
# (200 per 20 s = 10/s: n POSTs span (n - 1) / 10 s). R: ids 0; serials the tenant's
# pages (1,000 devices each); users one listing per user; group the group's lookup, its
# member pages (100 each) and one listing per member.
#   follow:      bound = (P - 1) / 10 + D + 1 / 100   (D: Graph's completion time, 2 s;
#                then one read at the any-request budget)
#   faults:      bound = (POSTs - 1) / 10, every POST the simulator received (a 503 needs
#                its send again, a dropped or slow answer a read, not a send); "pace" is new
#                devices per second while sending (first POST to the last device's first
#                POST) over the pace the budget allows them (10/s x P / POSTs)
#   all-devices: bound = ceil(devices / 1,000) GET requests, measured = GETs sent
# measured: the command's own wall time (its process start to its exit); span: the
# simulator's first request of the command to its last; ratio = measured / bound.
# "twice": devices whose reset took effect more than once (log lines with effect=true),
# and the simulator's own count of resets sent over a standing one.
#
# Usage: bash benches/shapes.sh [SHAPE...]
#   SCALE=0.25 bash benches/shapes.sh users   a quick run at a quarter of every size
#   KEEP=1     keeps the work folder (logs, reports) and prints its path
#   BENCH_TIMEOUT=SECONDS  gives up on one command after this long (default 1800)
#   FAULT_TIMEOUT=SECONDS  the faults shape's `run --timeout` (default 30, as `run`'s own)
# At full scale a shape takes 1-4 minutes. Prints a line per shape, then a Markdown table.
source "$(dirname "$0")/common.sh"

all_shapes=(ids serials users group follow faults all-devices)
shapes=("$@")
[ ${#shapes[@]} -eq 0 ] && shapes=("${all_shapes[@]}")
for s in "${shapes[@]}"; do
  case " ${all_shapes[*]} " in *" $s "*) ;; *)
    echo "unknown shape '$s'; known: ${all_shapes[*]}" >&2; exit 2 ;;
  esac
done
scale=${SCALE:-1}
python3 -c "import sys; assert 0 < float(sys.argv[1]) <= 10" "$scale" 2>/dev/null \
  || { echo "SCALE must be a number in (0, 10], not '$scale'" >&2; exit 2; }
limit=${BENCH_TIMEOUT:-1800}
fault_timeout=${FAULT_TIMEOUT:-30}
case $fault_timeout in '' | *[!0-9]* | 0) echo "FAULT_TIMEOUT is whole seconds, not '$fault_timeout'" >&2; exit 2 ;; esac

# The runner goes in its own process group (setsid: the script runs without job control,
# so its background child leads no group and setsid does not fork) so that stopping it
# stops timeout, /usr/bin/time and intune-reset together; the simulator is stopped by
# its pid.
runpid=
stop_all() {
  if [ -n "$runpid" ]; then kill -TERM -- "-$runpid" 2>/dev/null || true; fi
  if [ -n "${simpid:-}" ]; then kill -TERM "$simpid" 2>/dev/null || true; wait "$simpid" 2>/dev/null || true; fi
  if [ -n "${KEEP:-}" ]; then echo "work folder kept: $work" >&2; else rm -rf "$work"; fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# make_shape SHAPE DIR: writes DIR/tenant.csv and the job, prints the shape's facts as
# JSON (P, R, the rows the report must hold, the group's members for `simulate`).
make_shape() {
  python3 - "$1" "$2" "$scale" <<'PY'
import json, math, sys
shape, d, scale = sys.argv[1], sys.argv[2], float(sys.argv[3])
def n(full): return max(1, round(full * scale))
# Platforms: the first three are eligible for the reset (`--action auto`), the others not.
KINDS = {
    "iphone": ("iOS", "17.5", "iPhone", "", "company"),
    "ipad": ("iPadOS", "17.5", "iPad", "", "company"),
    "android": ("Android", "14", "android", "androidEnterpriseFullyManaged", "company"),
    "windows": ("Windows", "10.0.22631", "windowsRT", "", "company"),
    "macos": ("macOS", "14.5", "macMDM", "", "company"),
}
ELIGIBLE = {"iphone", "ipad", "android"}
def dev_id(i): return f"{i:08x}-{i % 65536:04x}-4000-8000-{i:012x}"
def upn(u): return f"user{u:05d}@contoso.com"
def write_tenant(devices):  # devices: [(kind, upn or "")]
    with open(f"{d}/tenant.csv", "w") as f:
        f.write("id,deviceName,serialNumber,userPrincipalName,operatingSystem,osVersion,"
                "deviceType,deviceEnrollmentType,managedDeviceOwnerType\n")
        for i, (kind, user) in enumerate(devices):
            f.write(",".join((dev_id(i), f"{kind} {i}", f"SN{i:07d}", user) + KINDS[kind]) + "\n")
    return sum(1 for k, _ in devices if k in ELIGIBLE)
MIX = ["iphone", "ipad", "android", "windows", "macos"]
facts = {"R": 0, "group": None}
if shape in ("ids", "follow", "faults"):
    count = n({"ids": 2000, "follow": 2000, "faults": 600}[shape])
    facts["P"] = write_tenant([("iphone", "")] * count)
    facts["rows"] = count
    facts["job"] = [f"{d}/tenant.csv"]
elif shape == "serials":
    size, wanted = n(20000), n(2000)
    devices = [(MIX[i % 5], "") for i in range(size)]
    write_tenant(devices)
    # Every 10th device, shifted by j % 10, so the platforms of the picks cycle as well.
    picks = [i for i in (10 * j + j % 10 for j in range(wanted)) if i < size]
    with open(f"{d}/serials.csv", "w") as f:
        f.write("serialNumber\n" + "".join(f"SN{i:07d}\n" for i in picks))
    facts.update(P=sum(1 for i in picks if MIX[i % 5] in ELIGIBLE), R=math.ceil(size / 1000),
                 rows=len(picks), job=[f"{d}/serials.csv"])
elif shape == "users":
    users = n(500)
    devices = []
    for u in range(users):
        extra = ["ipad", "android"] if u % 2 == 0 else ["android", "macos"]
        devices += [(k, upn(u)) for k in ["iphone", "windows"] + extra]
    facts["P"] = write_tenant(devices)
    with open(f"{d}/users.csv", "w") as f:
        f.write("userPrincipalName\n" + "".join(upn(u) + "\n" for u in range(users)))
    facts.update(R=users, rows=len(devices), job=["--users", f"{d}/users.csv"])
elif shape == "group":
    users = n(1000)
    devices = []
    for u in range(users):
        devices += [("iphone", upn(u)), ("android" if u % 5 == 0 else "windows", upn(u))]
    facts["P"] = write_tenant(devices)
    with open(f"{d}/members.txt", "w") as f:
        f.write("".join(upn(u) + "\n" for u in range(users)))
    facts.update(R=1 + math.ceil(users / 100) + users, rows=len(devices),
                 job=["--group", "Bench"], group=f"Bench=@{d}/members.txt")
elif shape == "all-devices":
    size = n(3000)
    write_tenant([(MIX[i % 5], "") for i in range(size)])
    facts.update(P=0, pages=math.ceil(size / 1000), rows=size, job=[])
print(json.dumps(facts))
PY
}

# analyse SHAPE DIR: the figures of one shape from its files, as one JSON line.
analyse() {
  python3 - "$1" "$2" <<'PY'
import csv, json, math, os, re, sys
from collections import Counter
from datetime import datetime
shape, d = sys.argv[1], sys.argv[2]
facts = json.load(open(f"{d}/facts.json"))
t0, t1 = (float(x) for x in open(f"{d}/clock").read().split())
rc = int(open(f"{d}/rc").read())
def t(s): return datetime.strptime(s.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
log = [json.loads(l) for l in open(f"{d}/sim.jsonl") if l.strip()]
for e in log: e["t"] = t(e["time"])
log.sort(key=lambda e: e["t"])
def most_in_window(times, window=20.0):
    j, most = 0, 0
    for i in range(len(times)):
        while times[j] <= times[i] - window: j += 1
        most = max(most, i - j + 1)
    return most
posts = [e for e in log if e["kind"] == "resetPasscode" and e["method"] == "POST"]
gets = [e for e in log if e["method"] == "GET"]
requests = [e for e in log if e["kind"] not in ("token", "batch")]
effects = Counter(e["device"] for e in posts if e["effect"])
first_post_of = {}
for e in posts: first_post_of.setdefault(e["device"], e["t"])
new = sorted(first_post_of.values())
P = facts["P"]
sim_err = open(f"{d}/sim.err").read()
over = re.search(r"reset again while the last reset was pending or done[^:]*: (\d+)", sim_err)
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{d}/time.txt").read()) \
    if os.path.exists(f"{d}/time.txt") else None
summary = json.load(open(f"{d}/summary.json")) if os.path.exists(f"{d}/summary.json") else {}
# Rows of the report itself (nothing lost: one row a device of the job), not the summary's.
report_rows = None
if os.path.exists(f"{d}/report.csv"):
    with open(f"{d}/report.csv", newline="", encoding="utf-8-sig") as f:
        report_rows = sum(1 for _ in csv.reader(f)) - 1
r = {
    "shape": shape, "rc": rc, "elapsed": t1 - t0,
    "span": (log[-1]["t"] - log[0]["t"]) if log else 0.0,
    "first_post": (posts[0]["t"] - t0) if posts else None,
    "posts": len(posts), "gets": len(gets), "requests": len(requests),
    "devices_posted": len(first_post_of), "P": P,
    "max_posts": most_in_window([e["t"] for e in posts]),
    "max_requests": most_in_window([e["t"] for e in requests]),
    "429": sum(1 for e in log if e["status"] == 429),
    "faults": dict(Counter(e["fault"] for e in log if e["fault"])),
    "twice": sum(1 for n in effects.values() if n > 1),
    "over_standing": int(over.group(1)) if over else None,
    "rss_mb": int(rss.group(1)) / 1024 if rss else None,
    "rows": report_rows, "rows_expected": facts["rows"],
    "outcomes": summary.get("outcomes", {}),
    # `run --follow`: the action states (the simulator fails a few actions on purpose,
    # so the exit code, status's, is 1 then).
    "states": (summary.get("followed") or {}).get("states"),
}
if shape == "all-devices":
    r["bound"], r["unit"] = facts["pages"], "GETs"
    r["measured"] = len([e for e in gets])
else:
    r["unit"] = "s"
    r["measured"] = r["elapsed"]
    if shape == "faults":
        r["bound"] = (len(posts) - 1) / 10
        if len(new) > 1 and posts:
            pace = (len(new) - 1) / (new[-1] - new[0])
            allowed = 10 * len(new) / len(posts)
            r["pace"], r["pace_allowed"] = pace, allowed
    else:
        r["bound"] = facts["R"] / 100 + (P - 1) / 10
        if shape == "follow":
            r["bound"] += 2 + 1 / 100
r["ratio"] = r["measured"] / r["bound"] if r["bound"] else None
print(json.dumps(r))
PY
}

row() { # row RESULT_JSON: the line a shape prints
  python3 - "$1" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
u = r["unit"]
fmt = (lambda v: f"{v:.0f} GETs") if u == "GETs" else (lambda v: f"{v:.1f} s")
note = []
if "pace" in r:
    note.append(f"pace {r['pace']:.2f}/s of {r['pace_allowed']:.2f}/s allowed = {r['pace'] / r['pace_allowed']:.2f}")
if r["devices_posted"] != r["P"]:
    note.append(f"devices posted {r['devices_posted']} of {r['P']} eligible")
if r["rows"] != r["rows_expected"]:
    note.append(f"report rows {r['rows']} of {r['rows_expected']}")
if r["rc"] != 0:
    note.append(f"exit {r['rc']}")
if r["faults"]:
    note.append("faults " + ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items())))
note.append("outcomes " + ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items())))
if r.get("states"):
    note.append("action states " + ", ".join(f"{k} {v}" for k, v in sorted(r["states"].items())))
first = f"{r['first_post']:.1f} s" if r["first_post"] is not None else "-"
rss = f"{r['rss_mb']:.1f} MB" if r["rss_mb"] is not None else "-"
ratio = f"{r['ratio']:.3f}" if r["ratio"] is not None else "-"
over = r["over_standing"] if r["over_standing"] is not None else "?"
print(f"{r['shape']:<12} {fmt(r['bound']):>10} {fmt(r['measured']):>10} {ratio:>6} "
      f"{first:>8} {r['max_posts']:>5} {r['max_requests']:>6} {r['429']:>5} "
      f"{r['twice']:>3}/{over:<3} {rss:>9}  span {r['span']:.1f} s, {r['posts']} POSTs, "
      f"{r['gets']} GETs; " + "; ".join(note), flush=True)
PY
}

run_shape() { # run_shape SHAPE
  local shape=$1 d="$work/$1"
  mkdir -p "$d"
  # Called as `run_shape || ...`, where `set -e` is off: every step checks itself.
  make_shape "$shape" "$d" > "$d/facts.json" || return 1
  local sim_flags=(--latency-ms 40 --jitter-ms 40 --log "$d/sim.jsonl")
  local run_flags=(--action auto)
  local job=()
  mapfile -t job < <(python3 -c 'import json,sys; [print(a) for a in json.load(open(sys.argv[1]))["job"]]' "$d/facts.json")
  local command=run
  case $shape in
    group)
      # The members from a file (`NAME=@FILE`): SCALE=10's 10,000 UPNs fit no argument.
      sim_flags+=(--group "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["group"])' "$d/facts.json")")
      # More than 10 devices a row: --yes alone is refused without a ceiling.
      run_flags+=(--max-devices "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"])' "$d/facts.json")") ;;
    follow)
      sim_flags+=(--action-delay 2)
      run_flags+=(--follow 5m --passcodes "$d/passcodes.txt") ;;
    faults)
      sim_flags+=(--fault 503=0.03 --fault drop-after=0.01 --fault slow=0.01
                  --slow-ms $(((fault_timeout + 5) * 1000)))
      run_flags+=(--timeout "${fault_timeout}s") ;;
    all-devices)
      command=plan
      # `plan` acts on nothing, so it takes no --max-devices (it refuses the flag).
      run_flags+=(--live --all-devices) ;;
  esac
  [ "$command" = run ] && run_flags+=(--yes)
  work="$d" start_sim "$d/tenant.csv" "${sim_flags[@]}"
  local t0 rc=0
  t0=$(date +%s.%N)
  # A simple command, not a function, so that $! is setsid's own pid, then its group's.
  setsid env "${creds[@]}" timeout -k 10 "$limit" /usr/bin/time -v -o "$d/time.txt" \
    "$bin" "$command" "${job[@]}" "${run_flags[@]}" -q \
    --graph-url "$url" --authority-url "$url" \
    --report "$d/report.csv" --summary-json "$d/summary.json" > "$d/run.out" 2> "$d/run.err" &
  runpid=$!
  wait "$runpid" || rc=$?
  runpid=
  echo "$t0 $(date +%s.%N)" > "$d/clock"
  echo "$rc" > "$d/rc"
  [ "$rc" = 124 ] && echo "$shape: the command did not finish in $limit s (BENCH_TIMEOUT)" >&2
  kill -TERM "$simpid"; wait "$simpid" 2>/dev/null || true; simpid=
  if [ ! -s "$d/sim.jsonl" ]; then
    echo "$shape: the simulator logged no request; the command said:" >&2
    tail -5 "$d/run.err" >&2
    return 1
  fi
  local result
  result=$(analyse "$shape" "$d") || return 1
  echo "$result" >> "$work/results.jsonl"
  row "$result"
}

echo "scale $scale; bound and measured in seconds (all-devices: GET requests); twice: effect twice / sent over a standing reset"
printf '%-12s %10s %10s %6s %8s %5s %6s %5s %7s %9s\n' shape bound measured ratio 1st-POST P/20s req/20s 429s twice peak-RSS
failed=()
for s in "${shapes[@]}"; do run_shape "$s" || failed+=("$s"); done

[ -s "$work/results.jsonl" ] && python3 - "$work/results.jsonl" "$scale" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
print(f"\n| job (scale {sys.argv[2]}) | bound | measured | ratio | first POST | most POSTs / 20 s | most requests / 20 s | 429s | reset twice | peak RSS |")
print("|---|---|---|---|---|---|---|---|---|---|")
names = {"ids": "{P:,} devices by Intune id", "serials": "{rows:,} serial numbers",
         "users": "users' devices ({rows:,} devices, {P:,} eligible)",
         "group": "an Entra group's devices ({rows:,}, {P:,} eligible)",
         "follow": "`run --follow` on {P:,} devices", "faults": "{P:,} devices with faults",
         "all-devices": "`plan --live --all-devices`, {rows:,} devices"}
for r in rs:
    unit = (lambda v: f"{v:.0f} GETs") if r["unit"] == "GETs" else (lambda v: f"{v:.1f} s")
    ratio = f"{r['ratio']:.3f}" if r["ratio"] is not None else "—"
    if "pace" in r:
        ratio += f" (pace {r['pace'] / r['pace_allowed']:.2f} of the allowed)"
    first = f"{r['first_post']:.1f} s" if r["first_post"] is not None else "—"
    rss = f"{r['rss_mb']:.1f} MB" if r["rss_mb"] is not None else "—"
    name = names[r["shape"]].format(P=r["P"], rows=r["rows_expected"])
    print(f"| {name} | {unit(r['bound'])} | {unit(r['measured'])} | {ratio} | {first} | "
          f"{r['max_posts']} | {r['max_requests']} | {r['429']} | {r['twice']} | {rss} |")
PY
if [ ${#failed[@]} -gt 0 ]; then
  echo "no figures for: ${failed[*]} (above: why)" >&2; exit 1
fi
