//! margay's conformance suite.
//!
//! - [`vectors`]: reads golden-vector files of format `margay-vectors/1` (see
//!   `tests/vectors/README.md`) and checks margay against them, one case at a time.
//! - [`problems`]: the shared test problems (quadratic, Rosenbrock) and the one table of
//!   (algorithm, config) pairs that every check runs through.
//! - [`rope_accuracy`]: RoPE's cos/sin error at long positions, margay vs the f32 path.
//! - [`timing`]: the median, the in-place memory-limit pass and the input the benchmarks share.
//!
//! The `conformance` binary runs [`vectors`] over a directory; `cargo test` runs the same
//! code on `tests/vectors/` plus the properties in `tests/tests/`.

pub mod problems;
pub mod rope_accuracy;
pub mod timing;
pub mod vectors;

/// The Rust examples in README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The Rust examples in docs/optimizers.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/optimizers.md")]
pub struct DocsOptimizersDoctests;
