//! Helpers shared by the speed measurements (`benches/`, `examples/rope_prefetch.rs`).

/// The in-place memory limit: reads and writes every element once, trivial arithmetic.
#[inline(never)]
pub fn in_place_pass(x: &mut [f32], k: f32) {
    for v in x.iter_mut() {
        *v *= k;
    }
}

/// The median of `xs` (sorted in place).
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// `n` deterministic values in [−1, 1] (the benchmarks' input).
pub fn bench_data(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}
