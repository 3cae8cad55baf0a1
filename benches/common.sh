# Shared by the run benchmarks: a release build, a job of N iOS devices with Intune ids,
# and a `simulate` process serving it. Source it; it sets $bin, $work, $url, $simpid.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
# `|| true`: under `set -e` a failing kill (the simulator already gone) would end the
# trap before the folder is removed.
cleanup() {
  if [ -n "${simpid:-}" ]; then kill "$simpid" 2>/dev/null || true; wait "$simpid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release/intune-reset"

make_job() { # make_job N FILE
  python3 - "$1" "$2" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("id,deviceName,operatingSystem,osVersion,deviceType\n")
    for i in range(n):
        f.write(f"{i:08x}-{i % 65536:04x}-4000-8000-{i:012x},iPhone {i},iOS,17.5,iPhone\n")
PY
}

start_sim() { # start_sim JOB [simulate flags...]
  local job=$1; shift
  "$bin" simulate --inventory "$job" "$@" > "$work/sim.out" 2> "$work/sim.err" &
  simpid=$!
  # A big inventory takes a few seconds to read: up to 60 s, unless the simulator exits.
  for _ in $(seq 1 600); do
    url=$(head -1 "$work/sim.out" 2>/dev/null | sed -n 's/^listening on //p')
    [ -n "$url" ] && return 0
    kill -0 "$simpid" 2>/dev/null || break
    sleep 0.1
  done
  local flags="--inventory $job $*"
  echo "the simulator did not start (intune-reset simulate ${flags:0:300}):" >&2
  cat "$work/sim.err" >&2; exit 1
}

# The simulator's tenant and an app registration it accepts (any non-empty secret).
creds=(AZURE_TENANT_ID=6f1c2a4e-0b7d-4c1a-9e3f-5a8b2d7c4e10
       AZURE_CLIENT_ID=5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
       AZURE_CLIENT_SECRET=benchmark-secret)
run_env() { env "${creds[@]}" "$@"; }
