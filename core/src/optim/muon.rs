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

/// torch's `lerp(a, b, w)`: `a + w(b − a)` for `|w| < 0.5`, else `b − (b − a)(1 − w)`.
#[inline(always)]
fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if w.abs() < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (1.0 - w)
    }
}

/// `out (m×p) = l (m×n) · r (n×p)`, row-major, sums in index order.
fn matmul(l: &[f32], r: &[f32], m: usize, n: usize, p: usize, out: &mut [f32]) {
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
        for i in 0..rows {
            for j in 0..cols {
                let k = if tall { j * rows + i } else { i * cols + j };
                w[k] = u[i * cols + j];
            }
        }
        let inv = 1.0 / sqrt(sum_sq(w)).max(self.cfg.eps);
        for v in w.iter_mut() {
            *v *= inv;
        }
        let [ca, cb, cc] = self.cfg.ns_coefficients;
        for _ in 0..self.cfg.ns_steps {
            // A = W Wᵀ
            for i in 0..r {
                for j in 0..r {
                    let mut acc = 0.0f32;
                    for k in 0..c {
                        acc += w[i * c + k] * w[j * c + k];
                    }
                    a[i * r + j] = acc;
                }
            }
            // B = bA + cA² (in `aa`), then W ← aW + B·W (B·W in `x`, W's shape)
            matmul(a, a, r, r, r, aa);
            for (q, &p) in aa.iter_mut().zip(a.iter()) {
                *q = cb * p + cc * *q;
            }
            matmul(aa, w, r, r, c, x);
            for (v, &bx) in w.iter_mut().zip(x.iter()) {
                *v = ca * *v + bx;
            }
        }
        for i in 0..rows {
            for j in 0..cols {
                let k = if tall { j * rows + i } else { i * cols + j };
                x[i * cols + j] = w[k];
            }
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
        for (bi, g) in b.iter_mut().zip(grads.iter_mut()) {
            *bi = lerp(*bi, *g, w);
            *g = if self.cfg.nesterov {
                lerp(*g, *bi, mu)
            } else {
                *bi
            };
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
