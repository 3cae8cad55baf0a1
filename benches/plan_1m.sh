#!/usr/bin/env bash
# Benchmark: `intune-reset plan` over a generated job file of N rows (default 1,000,000).
# Prints wall time and peak memory (maximum resident set size) from /usr/bin/time -v.
# Usage: bash benches/plan_1m.sh [ROWS]
set -euo pipefail
rows=${1:-1000000}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release/intune-reset"

# A realistic admin-center-style export: every platform, ~1% duplicates, ~0.5% broken rows.
python3 - "$rows" "$work/devices.csv" <<'PY'
import sys, random, uuid
n, path = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(7)
kinds = [("iPhone","17.5"),("iPad","18.1"),("AndroidForWork","14"),("Android","6.0.1"),("Android","9"),
         ("AndroidEnterprise","13"),("Windows","10.0.22631.4460"),("MacMDM","15.1"),("WindowsPhone","10.0.15254")]
with open(path, "w", newline="") as f:
    f.write("Device ID,Device name,Serial number,OS,OS version,Managed by,Ownership,EnrollmentType,Primary user UPN\r\n")
    last = []
    for i in range(n):
        if last and rnd.random() < 0.01:
            f.write(rnd.choice(last)); continue
        os_, ver = rnd.choice(kinds)
        et = "androidEnterpriseFullyManaged" if os_ == "AndroidEnterprise" else ""
        gid = str(uuid.UUID(int=rnd.getrandbits(128), version=4)) if rnd.random() > 0.005 else "not-a-guid"
        line = f"{gid},DEVICE-{i:07d},SN{i:010d},{os_},{ver},Intune,Corporate,{et},user{i % 5000}@contoso.com\r\n"
        f.write(line)
        if len(last) < 1000: last.append(line)
PY
size=$(du -h "$work/devices.csv" | cut -f1)
echo "job file: $rows rows, $size"
/usr/bin/time -v "$bin" plan "$work/devices.csv" --report "$work/report.csv" 2> "$work/time.txt" >/dev/null || true
grep -E "Elapsed \(wall clock\)|Maximum resident set size" "$work/time.txt"
echo "report rows: $(($(wc -l < "$work/report.csv") - 1))"
