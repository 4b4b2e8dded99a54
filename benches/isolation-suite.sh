#!/bin/sh
# Times PostgreSQL's whole isolation corpus under `stormchor isolation-suite` on a
# throwaway cluster, and prints the total and the per-test spread (from the JSON
# report). Usage: benches/isolation-suite.sh [CORPUS_DIR]   (default ../shared/pg-isolation)
set -eu
dir=${1:-../shared/pg-isolation}
json=$(mktemp /tmp/stormchor-iso-XXXXXX.json)
trap 'rm -f "$json"' EXIT
cargo build --release --quiet
status=0
target/release/stormchor isolation-suite "$dir" --json "$json" --step-timeout 60 >/dev/null || status=$?
python3 - "$json" <<'PY'
import json, statistics, sys
report = json.load(open(sys.argv[1]))
seconds = sorted((t["seconds"], t["name"]) for t in report["tests"])
values = [s for s, _ in seconds]
print(f"{report['total']} tests in {report['seconds']:.1f} s: {report['matched']} matched, "
      f"{report['differed']} differed, {report['not_parsed']} not parsed, "
      f"{report['needs_newer_server']} need a newer server")
print(f"per test: median {statistics.median(values):.2f} s, "
      f"p90 {values[int(len(values) * 0.9)]:.2f} s, max {values[-1]:.1f} s")
print("slowest:", ", ".join(f"{n} {s:.1f} s" for s, n in reversed(seconds[-5:])))
PY
exit "$status"
