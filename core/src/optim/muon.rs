//! Muon: momentum orthogonalized by Newton–Schulz (Keller Jordan 2024; `torch.optim.Muon`,
//! whose f32 semantics this follows; kexue 10592 and 10739).
//!
//! Intuition: replace the momentum matrix by the nearest semi-orthogonal matrix (all singular
//! values → 1), i.e. the steepest-descent step under the spectral norm; for a diagonal matrix
//! that is sign momentum, Tiger's update.
//!
//! | config field | symbol | default | source |
//! |---|---|---|---|
//! | `lr` | η | 1e-3 | PyTorch |
//! | `momentum` | μ | 0.95 | PyTorch |
//! | `nesterov` | | true | PyTorch |
//! | `weight_decay` | λ | 0.1 | PyTorch (θ·(1 − ηλ), the unadjusted lr) |
//! | `ns_steps` | k | 5 (1..=99) | PyTorch |
//! | `ns_coefficients` | (a, b, c) | (3.4445, −4.7750, 2.0315) | Keller Jordan's quintic |
//! | `eps` | ε | 1e-7 | PyTorch |
//! | `adjust_lr` | s | [`AdjustLr::Original`] | PyTorch |
//!
//! Step on an `rows × cols` matrix, in execution order (torch's `lerp` for both blends):
//! ```text
//! B ← lerp(B, G, 1 − μ)                 (B + (1−μ)(G − B))
//! U = lerp(G, B, μ) if nesterov else B
//! W = U, or Uᵀ when rows > cols          (W is r × c, r ≤ c)
//! X = W / max(‖W‖_F, ε);  k times: A = XXᵀ;  X ← aX + (bA + cA²)X
//! s = √max(1, rows/cols) (Original) or 0.2·√max(rows, cols) (MatchRmsAdamW)
//! θ ← θ·(1 − η·λ) − η·s·X (transposed back)
//! ```
//! State per tensor: `B` (rows·cols values, starts at 0) then the Newton–Schulz scratch
//! (X and a product, rows·cols each, and two r×r Gram matrices: an n×r LoRA factor needs only
//! r×r). Every value in f32 (the iteration needs it: bf16 misses the golden vectors by about
//! 2e-2). 1-D, ≥ 3-D and zero-size tensors are refused: send them to AdamW or Tiger
//! ([`super::Grouped`]).
//!
//! ```
//! use margay::optim::{MuonConfig, Optimizer, Stage, TensorSpec};
//! let muon = MuonConfig::new(0.02).build().unwrap();
//! let spec = TensorSpec::matrix(2, 3);
//! let mut state = vec![0.0_f32; muon.state_len(&spec)];
//! let mut w = [0.5_f32, -0.5, 0.25, 0.0, 1.0, -1.0];
//! muon.update(&(), muon.at(1), &spec, &mut w, &mut [0.1, 0.2, -0.3, 0.4, 0.0, 0.1], &mut state).unwrap();
//! assert!(w[0] < 0.5);
//! ```

use super::error::{non_negative, positive, unit_beta, ConfigError, StepError};
use super::{Outcome, Shape, Stage, Step, TensorSpec};
use crate::math::{sqrt, sum_sq};

/// How Muon scales the orthogonalized update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AdjustLr {
    /// `√max(1, rows/cols)` (Keller Jordan's; PyTorch's default `original`).
    Original,
    /// `0.2·√max(rows, cols)`: the update's RMS matches AdamW's (PyTorch `match_rms_adamw`).
    MatchRmsAdamW,
}

/// Muon hyper-parameters (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MuonConfig {
    /// Learning rate η.
    pub lr: f32,
    /// Momentum μ.
    pub momentum: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Decoupled weight decay λ (multiplied by the unadjusted lr).
    pub weight_decay: f32,
    /// Newton–Schulz iterations k (1..=99).
    pub ns_steps: u32,
    /// Newton–Schulz coefficients (a, b, c).
    pub ns_coefficients: [f32; 3],
    /// ε in the normalisation `max(‖U‖_F, ε)`.
    pub eps: f32,
    /// The update's scale.
    pub adjust_lr: AdjustLr,
}

impl Default for MuonConfig {
    fn default() -> Self {
        Self::new(1e-3)
    }
}

impl MuonConfig {
    /// PyTorch's defaults with the given learning rate.
    pub const fn new(lr: f32) -> Self {
        MuonConfig {
            lr,
            momentum: 0.95,
            nesterov: true,
            weight_decay: 0.1,
            ns_steps: 5,
            ns_coefficients: [3.4445, -4.775, 2.0315],
            eps: 1e-7,
            adjust_lr: AdjustLr::Original,
        }
    }

    /// Validates: `lr, eps > 0` finite; `μ ∈ [0, 1)`; `λ ≥ 0` finite; `ns_steps ∈ 1..=99`;
    /// finite coefficients.
    pub fn build(self) -> Result<Muon, ConfigError> {
        positive("lr", self.lr)?;
        unit_beta("momentum", self.momentum)?;
        non_negative("weight_decay", self.weight_decay)?;
        if !(1..=99).contains(&self.ns_steps) {
            return Err(ConfigError::OutOfRange {
                field: "ns_steps",
                value: self.ns_steps as f32,
                min: 1.0,
                max: 99.0,
            });
        }
        for c in self.ns_coefficients {
            super::error::finite("ns_coefficients", c)?;
        }
        positive("eps", self.eps)?;
        Ok(Muon { cfg: self })
    }
}

/// A validated Muon optimizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Muon {
    cfg: MuonConfig,
}

/// One element's momentum: `(B ← lerp(B, G, 1 − μ), U = lerp(G, B, μ) or B)`. Out of line on
/// embedded targets, where the unrolled, unswitched loop cost the Cortex-M0 3 KB of flash.
#[cfg_attr(target_os = "none", inline(never))]
#[cfg_attr(not(target_os = "none"), inline(always))]
fn momentum(b: f32, g: f32, mu: f32, w: f32, nesterov: bool) -> (f32, f32) {
    let b = lerp(b, g, w);
    (b, if nesterov { lerp(g, b, mu) } else { b })
}

/// torch's `lerp(a, b, w)`: `a + w(b − a)` for `|w| < 0.5`, else `b − (b − a)(1 − w)`.
#[inline(always)]
fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if w.abs() < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (1.0 - w)
    }
}

/// `out (m×p) = l (m×n) · r (n×p)`, row-major, each sum `((0 + l₀r₀) + l₁r₁) + …` in index
/// order: the reference loop [`matmul`] is tested against, and what embedded targets run (one
/// out-of-line copy there: three inlined ones cost the Cortex-M0 4 KB of its 256 KiB).
#[cfg_attr(target_os = "none", inline(never))]
fn matmul_reference(l: &[f32], r: &[f32], m: usize, n: usize, p: usize, out: &mut [f32]) {
    for i in 0..m {
        for j in 0..p {
            let mut acc = 0.0f32;
            for k in 0..n {
                acc += l[i * n + k] * r[k * p + j];
            }
            out[i * p + j] = acc;
        }
    }
}

/// `out (cols × rows) = inᵀ` for `in` of `rows × cols`, row-major.
#[cfg_attr(target_os = "none", inline(never))]
fn transpose(input: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    for i in 0..rows {
        for j in 0..cols {
            out[j * rows + i] = input[i * cols + j];
        }
    }
}

/// Rows and columns of the register tile of [`Blocked`].
const MR: usize = 4;
const NR: usize = 16;

/// The same products and the same order of additions as [`matmul_reference`] (so the same
/// bits), computed in 4 × 16 tiles whose accumulators stay in registers: each `out[i][j]`
/// still adds `l[i][k]·r[k][j]` for k = 0, 1, … onto 0. Column panels outermost, so a
/// panel of `r` (n × 16) stays in cache across the row tiles.
struct Blocked<'a> {
    l: &'a [f32],
    r: &'a [f32],
    m: usize,
    n: usize,
    p: usize,
    out: &'a mut [f32],
    /// The product is known to be exactly symmetric (`W·Wᵀ`, and `A·A` for a symmetric A:
    /// `out[j][i]` sums the same products in the same order as `out[i][j]`): tiles wholly
    /// below the diagonal are skipped and mirrored, the same bits at two thirds of the work.
    symmetric: bool,
}

impl crate::simd::Kernel for Blocked<'_> {
    type Out = ();
    #[inline(always)]
    fn run(self) {
        let Blocked {
            l,
            r,
            m,
            n,
            p,
            out,
            symmetric,
        } = self;
        let mut j0 = 0;
        while j0 + NR <= p {
            let mut i0 = 0;
            while i0 + MR <= m {
                if symmetric && i0 >= j0 + NR {
                    // Wholly below the diagonal: mirrored at the end.
                    i0 += MR;
                    continue;
                }
                let mut acc = [[0.0f32; NR]; MR];
                for k in 0..n {
                    let row: &[f32; NR] = r[k * p + j0..k * p + j0 + NR]
                        .try_into()
                        .expect("NR values");
                    for (ii, a) in acc.iter_mut().enumerate() {
                        let x = l[(i0 + ii) * n + k];
                        for (acc, &y) in a.iter_mut().zip(row.iter()) {
                            *acc += x * y;
                        }
                    }
                }
                for (ii, a) in acc.iter().enumerate() {
                    out[(i0 + ii) * p + j0..(i0 + ii) * p + j0 + NR].copy_from_slice(a);
                }
                i0 += MR;
            }
            // Rows left over: one row, 16 columns at a time.
            for i in i0..m {
                let mut acc = [0.0f32; NR];
                for k in 0..n {
                    let x = l[i * n + k];
                    for (acc, &y) in acc.iter_mut().zip(&r[k * p + j0..k * p + j0 + NR]) {
                        *acc += x * y;
                    }
                }
                out[i * p + j0..i * p + j0 + NR].copy_from_slice(&acc);
            }
            j0 += NR;
        }
        // Columns left over: the reference loop.
        for i in 0..m {
            for j in j0..p {
                let mut acc = 0.0f32;
                for k in 0..n {
                    acc += l[i * n + k] * r[k * p + j];
                }
                out[i * p + j] = acc;
            }
        }
        if symmetric {
            for i in 0..m {
                for j in 0..i {
                    out[i * p + j] = out[j * p + i];
                }
            }
        }
    }
}

/// `out = l · r` with the bits of [`matmul_reference`]: tiled and dispatched to the host's
/// SIMD level; the reference loop itself on embedded targets (smaller code, same bits).
fn matmul(l: &[f32], r: &[f32], m: usize, n: usize, p: usize, out: &mut [f32]) {
    product(l, r, m, n, p, out, false)
}

/// [`matmul`] of a product known to be exactly symmetric (see [`Blocked::symmetric`]).
fn matmul_symmetric(l: &[f32], r: &[f32], m: usize, n: usize, out: &mut [f32]) {
    product(l, r, m, n, m, out, true)
}

fn product(l: &[f32], r: &[f32], m: usize, n: usize, p: usize, out: &mut [f32], symmetric: bool) {
    if cfg!(target_os = "none") {
        matmul_reference(l, r, m, n, p, out)
    } else {
        crate::simd::vectorized(Blocked {
            l,
            r,
            m,
            n,
            p,
            out,
            symmetric,
        })
    }
}

/// Scratch values [`Muon::orthogonalize`] needs for a `rows × cols` matrix.
pub const fn ns_scratch_len(rows: usize, cols: usize) -> usize {
    let r = if rows < cols { rows } else { cols };
    rows * cols + 2 * r * r
}

impl Muon {
    /// The validated configuration.
    pub const fn config(&self) -> &MuonConfig {
        &self.cfg
    }

    /// The update's scale `s` for a `rows × cols` matrix.
    pub fn scale(&self, rows: usize, cols: usize) -> f32 {
        match self.cfg.adjust_lr {
            AdjustLr::Original => sqrt((rows as f32 / cols as f32).max(1.0)),
            AdjustLr::MatchRmsAdamW => 0.2 * sqrt(rows.max(cols) as f32),
        }
    }

    /// Newton–Schulz on `u` (`rows × cols`, row-major) into `x` (the same shape): the
    /// orthogonalized matrix before scaling. `scratch` holds [`ns_scratch_len`] values. A
    /// zero dimension or a wrong length is an error and nothing is written.
    pub fn orthogonalize(
        &self,
        u: &[f32],
        rows: usize,
        cols: usize,
        x: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), StepError> {
        let n = rows.saturating_mul(cols);
        if n == 0 {
            return Err(super::interface::refused(
                "muon",
                "a matrix with a zero dimension",
            ));
        }
        super::check_len(n, u.len())?;
        super::check_len(n, x.len())?;
        super::check_len(ns_scratch_len(rows, cols), scratch.len())?;
        // Work on W (r × c, r ≤ c): U, or Uᵀ when rows > cols.
        let tall = rows > cols;
        let (r, c) = if tall { (cols, rows) } else { (rows, cols) };
        let (w, rest) = scratch.split_at_mut(n);
        let (a, aa) = rest.split_at_mut(r * r);
        if tall {
            transpose(u, rows, cols, w);
        } else {
            w.copy_from_slice(u);
        }
        let inv = 1.0 / sqrt(sum_sq(w)).max(self.cfg.eps);
        for v in w.iter_mut() {
            *v *= inv;
        }
        let [ca, cb, cc] = self.cfg.ns_coefficients;
        for _ in 0..self.cfg.ns_steps {
            // A = W Wᵀ: Wᵀ (c × r) into `x` (free until B·W), then a product whose sums run
            // over k in order, as the dot products Σₖ w[i][k]·w[j][k] would.
            transpose(w, r, c, x);
            matmul_symmetric(w, x, r, c, a);
            // B = bA + cA² (in `aa`), then W ← aW + B·W (B·W in `x`, W's shape)
            matmul_symmetric(a, a, r, r, aa);
            for (q, &p) in aa.iter_mut().zip(a.iter()) {
                *q = cb * p + cc * *q;
            }
            matmul(aa, w, r, r, c, x);
            for (v, &bx) in w.iter_mut().zip(x.iter()) {
                *v = ca * *v + bx;
            }
        }
        if tall {
            transpose(w, cols, rows, x);
        } else {
            x.copy_from_slice(w);
        }
        Ok(())
    }

    fn dims(spec: &TensorSpec) -> Result<(usize, usize), StepError> {
        match spec.shape {
            Shape::Matrix { rows, cols } if rows > 0 && cols > 0 => Ok((rows, cols)),
            Shape::Matrix { .. } => Err(super::interface::refused(
                "muon",
                "a matrix with a zero dimension has nothing to orthogonalize",
            )),
            Shape::Vector(_) => Err(super::interface::refused(
                "muon",
                "Muon needs a 2-D matrix; step vectors (biases, gains) with AdamW or Tiger",
            )),
        }
    }
}

/// Muon through the interface: state `[B | scratch]`, `rows·cols + ns_scratch_len` f32
/// values (only `B` persists between steps).
impl Stage for Muon {
    type Round = ();
    const NAME: &'static str = "muon";
    fn lr(&self) -> f32 {
        self.cfg.lr
    }
    fn state_len(&self, spec: &TensorSpec) -> usize {
        match Self::dims(spec) {
            Ok((rows, cols)) => rows * cols + rows * cols + ns_scratch_len(rows, cols),
            Err(_) => 0,
        }
    }
    fn check(&self, spec: &TensorSpec) -> Result<(), StepError> {
        Self::dims(spec).map(|_| ())
    }
    fn begin(&self, _loss: f32) {}
}

impl super::Optimizer<f32> for Muon {
    fn apply(
        &self,
        _: &(),
        s: Step,
        spec: &TensorSpec,
        params: &mut [f32],
        grads: &mut [f32],
        state: &mut [f32],
    ) -> Result<Outcome, StepError> {
        let (rows, cols) = Self::dims(spec)?;
        let n = rows * cols;
        super::check_len(n, params.len())?;
        super::check_len(n, grads.len())?;
        super::check_len(Stage::state_len(self, spec), state.len())?;
        let (b, rest) = state.split_at_mut(n);
        let (x, scratch) = rest.split_at_mut(n);
        let mu = self.cfg.momentum;
        let w = 1.0 - mu;
        // B ← lerp(B, G, 1 − μ); U (into `grads`, which the step consumes) = lerp(G, B, μ) or B.
        let nesterov = self.cfg.nesterov;
        for (bi, g) in b.iter_mut().zip(grads.iter_mut()) {
            (*bi, *g) = momentum(*bi, *g, mu, w, nesterov);
        }
        self.orthogonalize(grads, rows, cols, x, scratch)?;
        let decay = 1.0 - s.lr * self.cfg.weight_decay;
        let step = s.lr * self.scale(rows, cols);
        for (p, &o) in params.iter_mut().zip(x.iter()) {
            *p = *p * decay - step * o;
        }
        Ok(Outcome::Updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn the_tiled_product_has_the_reference_bits() {
        let mut rng = crate::math::SplitMix64::new(3);
        for (m, n, p) in [
            (1, 1, 1),
            (4, 3, 16),
            (5, 7, 33),
            (9, 16, 17),
            (13, 2, 48),
            (3, 40, 5),
            (37, 20, 37),
        ] {
            let l: std::vec::Vec<f32> = (0..m * n).map(|_| rng.next_f32() - 0.5).collect();
            let r: std::vec::Vec<f32> = (0..n * p).map(|_| rng.next_f32() * 3.0 - 1.0).collect();
            let (mut a, mut b) = (std::vec![0.0f32; m * p], std::vec![1.0f32; m * p]);
            matmul_reference(&l, &r, m, n, p, &mut a);
            crate::simd::vectorized(Blocked {
                l: &l,
                r: &r,
                m,
                n,
                p,
                out: &mut b,
                symmetric: false,
            });
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<std::vec::Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{m}x{n}x{p}");
            // W·Wᵀ and A·A (A = W·Wᵀ) with the symmetric shortcut: the reference's bits.
            let wt: std::vec::Vec<f32> = (0..n * m).map(|i| l[(i % m) * n + i / m]).collect();
            let (mut s1, mut s2) = (std::vec![0.0f32; m * m], std::vec![2.0f32; m * m]);
            matmul_reference(&l, &wt, m, n, m, &mut s1);
            matmul_symmetric(&l, &wt, m, n, &mut s2);
            assert_eq!(bits(&s1), bits(&s2), "W·Wᵀ {m}x{n}");
            let (mut q1, mut q2) = (std::vec![0.0f32; m * m], std::vec![3.0f32; m * m]);
            matmul_reference(&s1, &s1, m, m, m, &mut q1);
            matmul_symmetric(&s1, &s1, m, m, &mut q2);
            assert_eq!(bits(&q1), bits(&q2), "A·A {m}");
        }
    }

    #[test]
    fn muon_rejects_bad_configs() {
        for steps in [0, 100] {
            assert!(MuonConfig {
                ns_steps: steps,
                ..MuonConfig::new(0.02)
            }
            .build()
            .is_err());
        }
        assert!(MuonConfig {
            eps: 0.0,
            ..MuonConfig::new(0.02)
        }
        .build()
        .is_err());
        assert!(MuonConfig {
            eps: -1.0,
            ..MuonConfig::new(0.02)
        }
        .build()
        .is_err());
        assert!(MuonConfig::new(f32::NAN).build().is_err());
        assert!(MuonConfig {
            momentum: 1.0,
            ..MuonConfig::new(0.02)
        }
        .build()
        .is_err());
    }

    #[test]
    fn muon_refuses_vectors_and_empty_matrices_naming_the_fix() {
        let muon = MuonConfig::new(0.02).build().unwrap();
        let e = Stage::check(&muon, &TensorSpec::vector(4)).unwrap_err();
        assert!(matches!(e, StepError::StageRefused { stage: "muon", .. }));
        assert!(e.to_string().contains("AdamW or Tiger"), "{e}");
        assert!(Stage::check(&muon, &TensorSpec::matrix(0, 3)).is_err());
    }
}
