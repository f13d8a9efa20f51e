#!/usr/bin/env bash
# Cargo runner: qemu-run.sh m4f|m0 ELF. Runs the firmware under QEMU with semihosting,
# decodes defmt with defmt-print, and exits with the firmware's semihosting exit code.
# Extra QEMU arguments (e.g. an instruction-count plugin) come from $QEMU_EXTRA.
set -euo pipefail
core="$1"
elf="$2"
case "$core" in
  m4f) machine=(-cpu cortex-m4 -machine mps2-an386) ;;
  m0)  machine=(-cpu cortex-m0 -machine microbit) ;;
  *) echo "qemu-run.sh: unknown core '$core' (m4f or m0)" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086
timeout 300 qemu-system-arm "${machine[@]}" -nographic \
  -semihosting-config enable=on,target=native ${QEMU_EXTRA:-} -kernel "$elf" \
  | defmt-print -e "$elf"
