#!/usr/bin/env bash
# The README's trainer results table: nanoGPT's CPU configuration of shakespeare_char
# (4 layers, 4 heads, 128 wide, context 64, batch 12, 2,000 steps, warmup 100, cosine to lr/10,
# clip 1.0) with AdamW (nanoGPT's hyper-parameters; once with nanoGPT's learned positions,
# once with margay's RoPE), Lion and Tiger at the learning rates picked by `--sweep`.
# Each row is one `margay train` run on the CPU (flex); about 15 minutes each on 2 cores.
#
#   bash scripts/train-results.sh            # the four 2,000-step runs, then the table
#   bash scripts/train-results.sh --sweep    # 300-step runs over Lion's and Tiger's lr
#   bash scripts/train-results.sh --family   # 300-step runs: AdamW beside Adafactor, SGDM, AdaX
#                                            # (the core optimizers on burn's generic adapter)
#   bash scripts/train-results.sh --sweep-muon-zo  # 300-step runs over Muon's and ZO-SGD's lr
#   bash scripts/train-results.sh --muon-zo  # 2,000-step Muon and ZO-SGD rows at the swept lr,
#                                            # and AdamW's peak memory beside them (300 steps)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p margay-host
bin=target/release/margay
out=${OUT:-target/train-results}
mkdir -p "$out"

row() { # name, then margay train flags
  local name=$1; shift
  "$bin" train --preset nanogpt-cpu --device cpu --out "$out/$name" "$@" | tee "$out/$name.log" | grep '^result' \
    | sed -E 's/.*optimizer ([a-z-]+) .*val loss ([0-9.]+) .* ([0-9]+) tokens\/s .*optimizer state ([0-9]+) bytes.*peak memory ([0-9]+) kB.*/\1 \2 \3 \4 \5/' \
    | { read -r opt val tps bytes peak; printf '| %s | `%s` | %s | %s | %s | %s |\n' "$name" "$*" "$val" "$tps" "$bytes" "$(( peak / 1024 )) MiB"; }
}

if [ "${1:-}" = "--sweep" ]; then
  echo "| run | flags (300 steps) | val loss | tokens/s | optimizer state (bytes) | peak RSS (VmHWM) |"
  echo "|---|---|---|---|---|---|"
  for lr in 1e-4 3e-4 6e-4 1e-3; do
    row "sweep-lion-$lr" --optimizer lion --lr $lr --min-lr "$(python3 -c "print('%g' % ($lr/10))")" --weight-decay 1.0 --steps 300 --eval-interval 300
  done
  for lr in 2e-3 5e-3 1e-2 2e-2; do
    row "sweep-tiger-$lr" --optimizer tiger --lr $lr --min-lr "$(python3 -c "print('%g' % ($lr/10))")" --weight-decay 0.01 --steps 300 --eval-interval 300
  done
  exit 0
fi

if [ "${1:-}" = "--sweep-muon-zo" ]; then
  echo "| run | flags (300 steps) | val loss | tokens/s | optimizer state (bytes) | peak RSS (VmHWM) |"
  echo "|---|---|---|---|---|---|"
  for lr in 1e-3 2e-3 4e-3 8e-3 1.6e-2 3.2e-2; do
    row "sweep-muon-$lr" --optimizer muon --lr $lr --min-lr "$(python3 -c "print('%g' % ($lr/10))")" --steps 300 --eval-interval 300
  done
  for lr in 3e-5 1e-4 3e-4 1e-3 3e-3 1e-2; do
    row "sweep-zo-$lr" --optimizer zo-sgd --lr $lr --min-lr "$(python3 -c "print('%g' % ($lr/10))")" --weight-decay 0 --steps 300 --eval-interval 300
  done
  exit 0
fi

if [ "${1:-}" = "--muon-zo" ]; then
  echo "| run | flags (with --preset nanogpt-cpu) | val loss | tokens/s | optimizer state (bytes) | peak RSS (VmHWM) |"
  echo "|---|---|---|---|---|---|"
  row muon --optimizer muon --lr "${MUON_LR:-2e-3}" --min-lr "$(python3 -c "print('%g' % (${MUON_LR:-2e-3}/10))")"
  row zo-sgd --optimizer zo-sgd --lr "${ZO_LR:-1e-4}" --min-lr "$(python3 -c "print('%g' % (${ZO_LR:-1e-4}/10))")" --weight-decay 0
  row adamw-memory --optimizer adamw --steps 300 --eval-interval 300
  exit 0
fi

if [ "${1:-}" = "--family" ]; then
  echo "| run | flags (300 steps) | val loss | tokens/s | optimizer state (bytes) | peak RSS (VmHWM) |"
  echo "|---|---|---|---|---|---|"
  row family-adamw --optimizer adamw --steps 300 --eval-interval 300
  # PyTorch's Adafactor defaults: lr 1e-2 (a cap on the relative step), no weight decay.
  row family-adafactor --optimizer adafactor --lr 1e-2 --min-lr 1e-3 --weight-decay 0 --steps 300 --eval-interval 300
  # SGD with momentum 0.9 needs a far larger lr than Adam on a transformer; decay off (it is
  # multiplied by the lr).
  row family-sgdm --optimizer sgdm --lr 0.3 --min-lr 0.03 --weight-decay 0 --steps 300 --eval-interval 300
  row family-adax --optimizer adax --steps 300 --eval-interval 300
  exit 0
fi

echo "| run | flags (with --preset nanogpt-cpu) | val loss | tokens/s | optimizer state (bytes) | peak RSS (VmHWM) |"
echo "|---|---|---|---|---|---|"
row adamw-learned --optimizer adamw --positions learned
row adamw --optimizer adamw
row lion --optimizer lion --lr 1e-3 --min-lr 1e-4 --weight-decay 1.0
row tiger --optimizer tiger --lr 2e-2 --min-lr 2e-3 --weight-decay 0.01
