#!/usr/bin/env bash
# FSQ encode ns/vector, levels [8, 5, 5, 5], 1M vectors: margay (one thread; libm tanh, fast
# tanh, thresholds) and vector-quantize-pytorch's FSQ on the CPU, in one run, with the
# speed-ups.
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
for mode in "fast tanh" "thresholds"; do
  ns=$(echo "$rust" | awk -v m="$mode" 'index($0, "margay " m) == 1 { for (i = 2; i <= NF; i++) if ($i == "ns/vector") print $(i-1) }')
  echo "$torch" | awk -v f="$ns" -v m="$mode" '{ t = $(NF-1); sub(/ *[0-9.]+ ns\/vector$/, ""); printf "speed-up of margay (%s) over %s: %.1fx\n", m, $0, t / f }'
done
