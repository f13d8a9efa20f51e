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
rust=$(cargo bench -q -p margay-tests --bench rope -- 32 4096 128 2>/dev/null)
torch=$("$py" scripts/rope_torch.py 32 4096 128)
echo "$rust"
echo "$torch"
ours=$(echo "$rust" | awk '/half-split, on the fly/{print $(NF-2)}')
echo "$torch" | awk -v f="$ours" '{ t = $(NF-3); printf "speed-up of margay (half-split, on the fly, 1 thread) over PyTorch HF-style on %s thread(s): %.1fx\n", $4, t / f }'
