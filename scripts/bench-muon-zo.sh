#!/usr/bin/env bash
# Newton-Schulz (5 quintic steps) on 128x128, 128x512 and 768x768 f32 matrices: margay (one
# thread, `cargo bench --bench muon_zo`) against torch.optim.Muon's stock orthogonalization
# (bf16) and the same iteration in torch f32 (one thread; f32 calls a tuned BLAS), in one
# invocation, with the ratios; then z regeneration in ns/param.
# torch comes from target/bench-venv (pip, on first use), or set VQ_PYTHON to a Python with it.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${VQ_PYTHON:-target/bench-venv/bin/python}
if ! "$py" -c "import torch" 2>/dev/null; then
  python3 -m venv target/bench-venv
  target/bench-venv/bin/pip install -q "torch==2.9.1"
  py=target/bench-venv/bin/python
fi
rounds=${1:-5}
rust=$(cargo bench -q -p margay-tests --bench muon_zo -- "$rounds" 2>/dev/null)
torch=$("$py" scripts/muon_torch.py "$rounds")
echo "$rust"
echo "$torch"
for shape in 128x128 128x512 768x768; do
  m=$(echo "$rust" | awk -v s="$shape" '$1 == "newton-schulz" && $2 == s { print $5 }')
  echo "$torch" | awk -v s="$shape" -v m="$m" '$2 == s {
    kind = $0; sub(/^newton-schulz [0-9x]+ torch /, "", kind); sub(/ [0-9.]+ ms$/, "", kind)
    printf "%s: margay f32 / torch %s = %.2f\n", s, kind, m / $(NF-1) }'
done
