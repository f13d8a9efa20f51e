#!/usr/bin/env bash
# Runs every margay test on a fresh machine, installing what is missing first:
# fmt, clippy -D warnings, host tests, golden vectors, core for both MCU targets,
# the firmware on Cortex-M4F and Cortex-M0 under QEMU, instruction counts, docs.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

step "install: rust targets and components, qemu, arm binutils, defmt-print, flip-link"
rustup target add thumbv7em-none-eabihf thumbv6m-none-eabi >/dev/null
rustup component add rustfmt clippy >/dev/null
if ! command -v qemu-system-arm >/dev/null || ! command -v arm-none-eabi-nm >/dev/null || ! command -v gcc >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq qemu-system-arm binutils-arm-none-eabi gcc >/dev/null
fi
# Mesa's lavapipe: a Vulkan driver on the CPU, for the wgpu kernel tests of the trainer.
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
command -v defmt-print >/dev/null || cargo install defmt-print --locked --version 1.2.0
command -v flip-link >/dev/null || cargo install flip-link --locked --version 0.1.12

step "format"
cargo fmt --all --check
(cd firmware && cargo fmt --check)

step "clippy -D warnings (workspace, core on both MCU targets, firmware on both cores)"
cargo clippy --workspace --all-targets --release -- -D warnings
# The trainer's GPU code (fused CubeCL kernel, back-end choice) with wgpu and CUDA compiled in.
cargo clippy -p margay-host --all-targets --release --features wgpu,cuda -- -D warnings
for t in thumbv6m-none-eabi thumbv7em-none-eabihf; do
  cargo clippy -p margay --no-default-features --target "$t" -- -D warnings
done
(cd firmware && cargo clippy --release --bins -- -D warnings \
  && cargo clippy --release --bins --target thumbv6m-none-eabi -- -D warnings)

step "core builds with no default features for both MCU targets"
for t in thumbv6m-none-eabi thumbv7em-none-eabihf; do
  cargo build -p margay --no-default-features --release --target "$t"
done

step "host tests (unit, doc, golden vectors, properties, shared table)"
cargo test --workspace --release

step "trainer kernels on wgpu (Mesa lavapipe): fused Lion/Tiger step vs core and composed ops"
XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" CARGO_TARGET_DIR=target/wgpu \
  cargo test --release -p margay-host --features wgpu --test fused

step "trainer smoke run: tiny model, resume, sample"
rm -rf target/smoke
cargo run -q --release -p margay-host -- train --preset tiny --steps 8 --device cpu --out target/smoke | tail -n 2
cargo run -q --release -p margay-host -- train --preset tiny --steps 12 --device cpu --out target/smoke --resume | tail -n 2
cargo run -q --release -p margay-host -- sample --checkpoint target/smoke/ckpt.safetensors --len 80 --device cpu
test -s target/smoke/loss.png

step "conformance runner on every vector file (all kinds implemented)"
cargo run -q --release -p margay-tests --bin conformance -- tests/vectors | tail -n 1

step "digits: the committed model blob is what pretraining gives now"
cargo run -q --release -p margay-host -- digits pretrain --check

step "firmware under QEMU: Cortex-M4F (mps2-an386) and Cortex-M0 (microbit)"
(cd firmware && cargo run --release && cargo run --release --target thumbv6m-none-eabi) | grep -v '^PASS '

step "on-device fine-tuning (digits, on the engine) on Cortex-M4F and Cortex-M0: backprop, then forward-only"
(cd firmware && cargo run --release --bin digits && cargo run --release --bin digits --target thumbv6m-none-eabi)
(cd firmware && cargo run --release --bin digits-zo && cargo run --release --bin digits-zo --target thumbv6m-none-eabi)

step "a user's own model (docs/on-device.md's sensor example): pretrained on the host, fine-tuned on Cortex-M4F and Cortex-M0"
(cd firmware && cargo run --release --bin sensor-net && cargo run --release --bin sensor-net --target thumbv6m-none-eabi)

step "instruction counts per parameter"
bash firmware/insncount.sh

step "a corrupt blob, and one of another architecture, are refused at start-up (non-zero exit, defmt error)"
if out=$(cd firmware && cargo run -q --release --bin digits --features corrupt-blob 2>&1); then
  echo "$out"; echo "corrupt blob was accepted" >&2; exit 1
fi
echo "$out" | grep -q "model blob rejected: Checksum" || { echo "$out"; echo "no checksum error printed" >&2; exit 1; }
echo "$out" | grep "model blob rejected"
if out=$(cd firmware && cargo run -q --release --bin digits-zo --features other-architecture 2>&1); then
  echo "$out"; echo "a blob of another architecture was accepted" >&2; exit 1
fi
echo "$out" | grep -q "model blob rejected: Layer" || { echo "$out"; echo "no layer error printed" >&2; exit 1; }
echo "$out" | grep "model blob rejected"

step "docs with -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --release -q

echo
echo "firmware: 8 binaries passed (golden cases, digits backprop and forward-only, sensor example; each on both cores)"
echo "test-all: every step passed"
