#!/usr/bin/env bash
# FSQ encode ns/vector, levels [8, 5, 5, 5], 1M vectors: margay (one thread, libm and fast
# tanh) and vector-quantize-pytorch's FSQ on the CPU, in one run, with the speed-up.
# vector-quantize-pytorch 1.32.0 is installed into target/bench-venv on first use (PyPI),
# or set VQ_PYTHON to a Python that has it.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1048576}
py=${VQ_PYTHON:-target/bench-venv/bin/python}
if ! "$py" -c "import vector_quantize_pytorch" 2>/dev/null; then
  python3 -m venv target/bench-venv
  target/bench-venv/bin/pip install -q "vector-quantize-pytorch==1.32.0"
  py=target/bench-venv/bin/python
fi
rust=$(cargo bench -q -p margay-tests --bench fsq -- "$n" 2>/dev/null)
torch=$("$py" scripts/fsq_torch.py "$n")
echo "$rust"
echo "$torch"
fast=$(echo "$rust" | awk '/fast tanh/{print $4}')
echo "$torch" | awk -v f="$fast" '{ t = $(NF-1); sub(/ *[0-9.]+ ns\/vector$/, ""); printf "speed-up of margay (fast tanh) over %s: %.1fx\n", $0, t / f }'
