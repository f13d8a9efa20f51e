#!/usr/bin/env bash
# RoPE apply on a [32, 4096, 128] f32 tensor: margay (one thread, `cargo bench --bench rope`,
# with the in-place memory limit measured in the same run) and a Hugging Face-style PyTorch
# implementation (cached cos/sin, rotate_half) on the CPU, with the speed-up.
# torch is taken from target/bench-venv (installed by scripts/bench-fsq.sh on first use,
# from PyPI), or set VQ_PYTHON to a Python that has torch.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${VQ_PYTHON:-target/bench-venv/bin/python}
if ! "$py" -c "import torch" 2>/dev/null; then
  python3 -m venv target/bench-venv
  target/bench-venv/bin/pip install -q "vector-quantize-pytorch==1.32.0"
  py=target/bench-venv/bin/python
fi
# This machine is shared and its memory bandwidth swings between runs: the Rust bench runs
# ROPE_RUNS times (default 15, about a minute), each printed, then each kernel's ratio to the
# limit as the mean, lowest and highest over the runs, and how many runs reached 0.8.
runs=${ROPE_RUNS:-15}
all=""
for i in $(seq "$runs"); do
  rust=$(cargo bench -q -p margay-tests --bench rope -- 32 4096 128 2>/dev/null)
  echo "run $i:"
  echo "$rust"
  all+="$rust"$'\n'
done
echo "ratio to the memory limit over $runs runs (mean, lowest, highest, runs >= 0.8):"
echo "$all" | awk '
  /^[a-z]/ && NF >= 4 && $(NF) ~ /^[0-9.]+$/ && $0 !~ /^kernel/ {
    name = $0; sub(/ +[0-9.]+ +[0-9.]+ +[0-9.]+$/, "", name)
    r = $(NF); n[name]++; s[name] += r; ns[name] += $(NF-2); if (r >= 0.8) ok[name]++
    if (!(name in lo) || r < lo[name]) lo[name] = r
    if (!(name in hi) || r > hi[name]) hi[name] = r
    if (n[name] == 1) order[++k] = name
  }
  END { for (i = 1; i <= k; i++) { m = order[i]
    printf "  %-32s %.2f  (%.2f to %.2f)  %2d/%d   %.3f ns/elem\n", m, s[m] / n[m], lo[m], hi[m], ok[m], n[m], ns[m] / n[m] } }'
torch=$("$py" scripts/rope_torch.py 32 4096 128)
echo "$torch"
ours=$(echo "$all" | awk '/half-split, 512-pos scratch/{ s += $(NF-2); n++ } END { print s / n }')
echo "$torch" | awk -v f="$ours" '{ t = $(NF-3); printf "speed-up of margay (half-split, 512-pos scratch, 1 thread) over PyTorch HF-style on %s thread(s): %.1fx\n", $4, t / f }'
