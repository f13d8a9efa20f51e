#!/usr/bin/env bash
# Trainer throughput on the CPU (flex), the three optimizers back to back in one run so that
# their ratios are comparable on a shared machine: nanoGPT's CPU configuration, STEPS steps
# each (default 100), tokens/s of training (evaluation excluded) and the ratio to AdamW.
#
#   bash scripts/bench-train.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-100}
cargo build -q --release -p margay-host
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
declare -A tps
for opt in adamw lion tiger; do
  line=$(target/release/margay train --preset nanogpt-cpu --device cpu --optimizer "$opt" \
    --steps "$steps" --warmup 10 --eval-interval "$steps" --eval-iters 1 --out "$out/$opt" | grep '^result')
  tps[$opt]=$(echo "$line" | sed -E 's/.* ([0-9]+) tokens\/s .*/\1/')
done
echo "| optimizer | tokens/s | vs AdamW |"
echo "|---|---|---|"
for opt in adamw lion tiger; do
  printf '| %s | %s | %.2f |\n' "$opt" "${tps[$opt]}" "$(python3 -c "print(${tps[$opt]}/${tps[adamw]})")"
done
