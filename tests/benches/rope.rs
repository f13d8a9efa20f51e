//! `cargo bench -p margay-tests --bench rope [-- HEADS SEQ DIM]`
//!
//! RoPE apply on a `[heads, seq, d]` f32 tensor (default 32 × 4,096 × 128, 64 MiB), one
//! thread, in GB/s counted as 8 bytes per element (read + write in place) and as a ratio to
//! an in-place pass over the same bytes (`x *= k`), the memory limit, measured in the same
//! run. Kernels are interleaved round by round; each figure is the median over rounds.
//!
//! - "on the fly" is `Rope::apply_heads`: cos/sin per position computed once and shared by
//!   all heads, in blocks of 128 positions on the stack; "512-pos scratch" is
//!   `Rope::apply_heads_in` with blocks of 512 positions in a heap scratch (256 KiB);
//! - "scratch, no hint" is the same call built with `RopeConfig::prefetch(0)`: what the
//!   hint buys, measured in the same run;
//! - "scratch, AVX2" is the same call with the dispatch capped at AVX2
//!   (`margay::simd::set_max_level`): what the AVX-512 build buys, where the CPU has it;
//! - "from a table" rotates every head from a `RopeTable` of all 4,096 positions (2 MiB);
//! - "one cos/sin row (probe)" rotates every row with the same cos/sin (always in L1): the
//!   rotation's own ceiling, not a usable RoPE;
//! - "rows, fused, no reuse" is `Rope::apply_rows`: every row computes its own cos/sin.
//!
//! `scripts/bench-rope.sh` adds a Hugging Face-style PyTorch implementation.

use margay::rope::{Direction, Layout, Positions, RopeConfig, RopeTable};
use margay::simd::{level, set_max_level, Level};
use margay_tests::timing::{bench_data, in_place_pass, median};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (heads, seq, d) = match args.as_slice() {
        [h, s, d] => (*h, *s, *d),
        _ => (32, 4096, 128),
    };
    let n = heads * seq * d;
    let mut x = bench_data(n);
    let half = RopeConfig::new(d).build::<128>().unwrap();
    let inter = RopeConfig::new(d)
        .layout(Layout::Interleaved)
        .build::<128>()
        .unwrap();
    let half_no_hint = RopeConfig::new(d).prefetch(0).build::<128>().unwrap();
    let inter_no_hint = RopeConfig::new(d)
        .layout(Layout::Interleaved)
        .prefetch(0)
        .build::<128>()
        .unwrap();
    // A table for every position of the sequence (seq × d/2 × 2 floats), on the heap.
    let mut table: Box<RopeTable<4096, 64>> = Box::new(RopeTable::zeroed());
    let use_table = seq <= 4096 && d == 128;
    if use_table {
        table.refill(&half, 0).unwrap();
    }
    let names = [
        "in-place pass (memory limit)",
        "half-split, on the fly",
        "interleaved, on the fly",
        "half-split, 512-pos scratch",
        "interleaved, 512-pos scratch",
        "half-split, from a table",
        "rotate, one cos/sin row (probe)",
        "half-split rows, fused, no reuse",
        "half-split, scratch, no hint",
        "interleaved, scratch, no hint",
        "half-split, scratch, AVX2",
        "interleaved, scratch, AVX2",
    ];
    let list: Vec<i32> = (0..heads * seq).map(|i| (i % seq) as i32).collect();
    let mut scratch = vec![0.0f32; half.heads_scratch_len(512)];
    let mut times = vec![Vec::new(); names.len()];
    let rounds = 9;
    let top = level();
    // Alternate Forward/Backward so values stay bounded over rounds.
    for r in 0..=rounds {
        let dir = if r % 2 == 0 {
            Direction::Forward
        } else {
            Direction::Backward
        };
        for (k, t) in times.iter_mut().enumerate() {
            set_max_level(if k >= 10 { Level::Avx2 } else { top });
            let start = Instant::now();
            match k {
                0 => in_place_pass(
                    black_box(&mut x),
                    black_box(if r % 2 == 0 { 1.5 } else { 1.0 / 1.5 }),
                ),
                1 | 2 => [&half, &inter][k - 1]
                    .apply_heads(black_box(&mut x), heads, Positions::From(0), dir)
                    .unwrap(),
                3 | 4 | 8 | 9 | 10 | 11 => match k {
                    3 | 10 => &half,
                    4 | 11 => &inter,
                    8 => &half_no_hint,
                    _ => &inter_no_hint,
                }
                .apply_heads_in(
                    black_box(&mut x),
                    heads,
                    Positions::From(0),
                    dir,
                    &mut scratch,
                )
                .unwrap(),
                7 => {
                    half.apply_rows(black_box(&mut x), Positions::List(&list), dir)
                        .unwrap();
                }
                6 if use_table => {
                    for row in x.chunks_exact_mut(d) {
                        table.apply(black_box(row), 7, dir).unwrap();
                    }
                }
                5 if use_table => {
                    for h in x.chunks_exact_mut(seq * d) {
                        table
                            .apply_rows(black_box(h), Positions::From(0), dir)
                            .unwrap();
                    }
                }
                _ => {}
            }
            let dt = start.elapsed().as_secs_f64();
            if r > 0 {
                t.push(dt); // round 0 warms up
            }
        }
    }
    black_box(&x);
    let bytes = 8.0 * n as f64;
    let limit = median(&mut times[0].clone());
    println!(
        "RoPE apply on [{heads}, {seq}, {d}] f32 ({} MiB), one thread, median of {rounds} interleaved rounds, dispatch {top:?}",
        (n * 4) >> 20
    );
    println!(
        "{:<30} {:>10} {:>9} {:>10}",
        "kernel", "ns/elem", "GB/s", "vs limit"
    );
    for (name, t) in names.iter().zip(times.iter_mut()) {
        if t.is_empty() {
            continue;
        }
        let m = median(t);
        println!(
            "{:<30} {:>10.3} {:>9.2} {:>10.2}",
            name,
            m * 1e9 / n as f64,
            bytes / m / 1e9,
            limit / m
        );
    }
}
