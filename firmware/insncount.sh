#!/usr/bin/env bash
# Instructions per parameter of the optimizer steps on the emulated cores, counted exactly
# by a QEMU TCG plugin (tools/qemu-insncount.c) between calls of `bench_mark` (src/bench.rs).
# Usage: bash insncount.sh [m4f|m0]...   (default: both). Needs the release firmware built.
set -euo pipefail
cd "$(dirname "$0")"
plugin=target/libinsncount.so
mkdir -p target
[ "$plugin" -nt tools/qemu-insncount.c ] || gcc -shared -fPIC -O2 -o "$plugin" tools/qemu-insncount.c
n=$(sed -n 's/^pub const N: usize = \([0-9]*\);/\1/p' src/bench.rs)
nv=$(sed -n 's/^pub const FSQ_VECTORS: usize = \([0-9]*\);/\1/p' src/bench.rs)
rd=$(sed -n 's/^pub const ROPE_DIM: usize = \([0-9]*\);/\1/p' src/bench.rs)
rr=$(sed -n 's/^pub const ROPE_ROWS: usize = \([0-9]*\);/\1/p' src/bench.rs)
ne=$(( rd * rr ))
# Region name, unit and divisor between marks i and i+1; "-" regions are set-up, skipped.
regions=("tiger f32 (own scan)" "tiger f32 (health)" "tiger bf16" "lion" "adamw" "-" \
  "fsq [8,5,5,5] libm tanh" "-" "fsq [8,5,5,5] fast tanh" "-" "fsq [8,5,5,5] thresholds" "-" \
  "int8 dot" "-" \
  "rope d=32 from a table" "rope d=32 on the fly" \
  "-" "tiger f32 (interface)" "lion (interface)" "clip -> tiger (chain)" \
  "-" "zo z rademacher" "zo z gaussian" "zo mezo step (q=1)" "muon 8x4 step")
units=(param param param param param - vector - vector - vector - MAC - element element - param param param \
  - param param param param)
mr=$(sed -n 's/^pub const MUON_ROWS: usize = \([0-9]*\);/\1/p' src/bench.rs)
mc=$(sed -n 's/^pub const MUON_COLS: usize = \([0-9]*\);/\1/p' src/bench.rs)
divs=("$n" "$n" "$n" "$n" "$n" 1 "$nv" 1 "$nv" 1 "$nv" 1 "$n" 1 "$ne" "$ne" 1 "$n" "$n" "$n" \
  1 "$n" "$n" "$n" "$(( mr * mc ))")
for core in "${@:-m4f m0}"; do
  for c in $core; do
    case "$c" in
      m4f) target=thumbv7em-none-eabihf; qemu=(-cpu cortex-m4 -machine mps2-an386) ;;
      m0)  target=thumbv6m-none-eabi;    qemu=(-cpu cortex-m0 -machine microbit) ;;
      *) echo "insncount.sh: unknown core '$c'" >&2; exit 2 ;;
    esac
    elf=target/$target/release/margay-firmware
    [ -f "$elf" ] || cargo build --release --target "$target" >/dev/null
    mark=$(arm-none-eabi-nm "$elf" | awk '/ bench_mark$/{print "0x"$1}')
    log=target/insns-$c.log
    timeout 300 qemu-system-arm "${qemu[@]}" -nographic -semihosting-config enable=on,target=native \
      -plugin "./$plugin,mark=$mark" -d plugin -D "$log" -kernel "$elf" >/dev/null
    # The marks print the running count at bench_mark(0..25): deltas between them are regions.
    mapfile -t totals < <(sed -n 's/.*total=\([0-9]*\) delta.*/\1/p' "$log")
    for i in "${!regions[@]}"; do
      [ "${regions[$i]}" = "-" ] && continue
      d=$(( totals[i+1] - totals[i] ))
      awk -v c="$c" -v r="${regions[$i]}" -v d="$d" -v n="${divs[$i]}" -v u="${units[$i]}" \
        'BEGIN { printf "%-4s %-24s %8d insns / %4d %-6s = %8.2f insns/%s\n", c, r, d, n, u "s", d / n, u }'
    done
  done
done

# The digits fine-tuning (src/bin/digits.rs: backprop; src/bin/digits_zo.rs: forward-only)
# and the sensor example (src/bin/sensor_net.rs): marks 0..1 bracket the held-out
# evaluation, then 2..3 each pass over the training stream.
for bin in digits digits-zo sensor-net; do
for c in ${@:-m4f m0}; do
  case "$c" in
    m4f) target=thumbv7em-none-eabihf; qemu=(-cpu cortex-m4 -machine mps2-an386) ;;
    m0)  target=thumbv6m-none-eabi;    qemu=(-cpu cortex-m0 -machine microbit) ;;
  esac
  case "$bin" in
    digits) what="digits: train (fwd+bwd+Tiger)" ;;
    digits-zo) what="digits: train forward-only (ZO)" ;;
    sensor-net) what="sensor-net: train (fwd+bwd+Tiger)" ;;
  esac
  data=digits_data.rs; [ "$bin" = sensor-net ] && data=sensor_net_data.rs
  elf=target/$target/release/$bin
  [ -f "$elf" ] || cargo build --release --bin "$bin" --target "$target" >/dev/null
  mark=$(arm-none-eabi-nm "$elf" | awk '/ bench_mark$/{print "0x"$1}')
  log=target/insns-$bin-$c.log
  timeout 600 qemu-system-arm "${qemu[@]}" -nographic -semihosting-config enable=on,target=native \
    -plugin "./$plugin,mark=$mark" -d plugin -D "$log" -kernel "$elf" >/dev/null
  test_n=$(sed -n 's/^pub static TEST_Y: \[u8; \([0-9]*\)\].*/\1/p' target/$target/release/build/*/out/$data | head -n 1)
  stream_n=$(sed -n 's/^pub static STREAM_Y: \[u8; \([0-9]*\)\].*/\1/p' target/$target/release/build/*/out/$data | head -n 1)
  sed -n 's/.*total=\([0-9]*\) delta.*/\1/p' "$log" | awk -v c="$c" -v tn="$test_n" -v sn="$stream_n" -v what="$what" -v bin="$bin" '
    { t[NR] = $1 }
    END {
      ev = t[2] - t[1]; tr = 0; passes = 0
      for (i = 3; i + 1 <= NR; i += 2) { tr += t[i+1] - t[i]; passes++ }
      if (what ~ /forward-only/) {
        printf "%-4s %-32s %11.0f insns / %5d samples = %9.1f insns/sample (%d passes)\n", c, what, tr, passes * sn, tr / (passes * sn), passes
      } else {
        printf "%-4s %-32s %11.0f insns / %5d samples = %9.1f insns/sample\n", c, bin ": classify", ev, tn, ev / tn
        printf "%-4s %-32s %11.0f insns / %5d samples = %9.1f insns/sample (%d passes)\n", c, what, tr, passes * sn, tr / (passes * sn), passes
      }
    }'
done
done
