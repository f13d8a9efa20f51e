#!/usr/bin/env bash
# The optimizer interface costs nothing per parameter: runs the bandwidth bench three times
# (16M and 64M parameters; each run interleaves direct calls and calls through
# `margay::optim::Optimizer::update`, round by round) and prints, per step, the median over the
# three runs of direct time / interface time (1.00 = the same speed; the target is ≥ 0.97).
#
#   bash scripts/bench-interface.sh [SIZES...]      # default: 16 64 (millions of parameters)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-16 64}")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for run in 1 2 3; do
  echo "== run $run" >>"$log"
  cargo bench -q -p margay-tests --bench bandwidth -- ${sizes[@]} 2>/dev/null | tee -a "$log" | grep -E "dispatch level" | sed "s/^/run $run: /"
done
python3 - "$log" <<'PY'
import re, sys, statistics
runs, cur = [], None
for line in open(sys.argv[1]):
    if line.startswith("== run"):
        cur = {}; runs.append(cur); continue
    m = re.match(r"\s*(\d+)M (.+?)\s+([0-9.]+)\s+([0-9.]+)$", line)
    if m and cur is not None:
        cur[(int(m.group(1)), m.group(2).strip())] = float(m.group(3))
pairs = [("lion f32", "lion f32 (interface)"), ("tiger f32", "tiger f32 (interface)"),
         ("tiger bf16", "tiger bf16 (interface)"), ("adamw f32", "adamw f32 (interface)"),
         ("norm pass + tiger, known health", "clip → tiger (chain)")]
sizes = sorted({k[0] for r in runs for k in r})
print("direct time / interface time, median of %d runs (each: median of interleaved rounds)" % len(runs))
print("| step | " + " | ".join("%dM" % s for s in sizes) + " |")
print("|---|" + "---|" * len(sizes))
for d, i in pairs:
    cells = []
    for s in sizes:
        r = [run[(s, d)] / run[(s, i)] for run in runs if (s, d) in run and (s, i) in run]
        cells.append("%.3f (%s)" % (statistics.median(r), ", ".join("%.3f" % x for x in r)) if r else "-")
    print("| %s vs %s | %s |" % (d, i, " | ".join(cells)))
PY
