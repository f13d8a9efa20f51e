//! Adafactor (Shazeer & Stern 2018, arXiv 1804.04235; kexue 7302), with **PyTorch's
//! conventions** (`torch.optim.Adafactor`; the reference's table lists how Hugging Face and
//! optax differ).
//!
//! Intuition: Adam's second moment costs one value per weight; for an `n×m` matrix Adafactor
//! keeps only its row and column means (`n + m` values) and rebuilds the rank-1 estimate
//! `V̂ᵢⱼ = Rᵢ·Cⱼ / mean(R)`, the fit that minimises the generalised KL divergence. The step
//! is relative to the weight's own scale, and clipped by the update's RMS.
//!
//! | config field | symbol | default | source |
//! |---|---|---|---|
//! | `lr` | γ | 1e-2 | PyTorch |
//! | `beta2_decay` | c in β̂ₜ = 1 − tᶜ | −0.8 | PyTorch, paper |
//! | `eps1` | ε₁ | 1.19e-7 (f32 epsilon, PyTorch's `None`) | PyTorch |
//! | `eps2` | ε₂ | 1e-3 | PyTorch, paper |
//! | `d` | clipping threshold | 1.0 | PyTorch, paper (PyTorch refuses d < 1; margay takes any d > 0) |
//! | `weight_decay` | λ | 0 | PyTorch (θ·(1 − γλ)) |
//!
//! Step t (1-based), `w = tᶜ` (so w = 1 at t = 1), in PyTorch's order:
//! ```text
//! α = max(ε₂, RMS(θ)) · min(γ, 1/√t)                 (θ before the decay)
//! θ ← θ·(1 − γ·λ)
//! matrix: R ← (1−w)·R + w·meanⱼ(g²);  C ← (1−w)·C + w·meanᵢ(g²)
//!         V̂ᵢⱼ = Rᵢ·Cⱼ / max(mean(R), ε₁)
//! vector: V̂ ← (1−w)·V̂ + w·g²
//! u = g / √max(V̂, ε₁²);   θ ← θ − α / max(1, RMS(u)/d) · u
//! ```
//! State: `R` (n) and `C` (m) for a matrix, `V̂` (n) for a vector, all starting at 0, and the
//! step index (in [`super::Step`]). No momentum (PyTorch has none). A matrix with a zero
//! dimension, or state of the wrong length, is an error and nothing is written.
//!
//! ```
//! use margay::optim::AdafactorConfig;
//! let af = AdafactorConfig::new(1e-2).build().unwrap();
//! let mut w = [1.0_f32, -1.0, 0.5, 0.25, -0.5, 2.0]; // 2×3
//! let (mut r, mut c) = ([0.0_f32; 2], [0.0_f32; 3]);
//! af.step_matrix(af.at(1), &mut w, &[0.1, 0.2, -0.1, 0.3, 0.0, -0.2], 2, 3, &mut r, &mut c).unwrap();
//! assert!(w[0] < 1.0 && w[1] < -1.0);
//! ```

use super::error::{non_negative, positive, ConfigError, StepError};
use super::{check_len, Schedule, Step};
use crate::math::{powf, rms, sqrt};

/// Adafactor hyper-parameters (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdafactorConfig {
    /// Learning rate γ (caps the relative step `1/√t`).
    pub lr: f32,
    /// c in `β̂ₜ = 1 − tᶜ` (< 0).
    pub beta2_decay: f32,
    /// ε₁: floor of `mean(R)` and (squared) of V̂.
    pub eps1: f32,
    /// ε₂: floor of RMS(θ) in the step size.
    pub eps2: f32,
    /// Update-clipping threshold d on RMS(u).
    pub d: f32,
    /// Decoupled weight decay λ (multiplied by γ).
    pub weight_decay: f32,
}

impl Default for AdafactorConfig {
    fn default() -> Self {
        Self::new(1e-2)
    }
}

impl AdafactorConfig {
    /// PyTorch's defaults with the given learning rate.
    pub const fn new(lr: f32) -> Self {
        AdafactorConfig {
            lr,
            beta2_decay: -0.8,
            eps1: f32::EPSILON,
            eps2: 1e-3,
            d: 1.0,
            weight_decay: 0.0,
        }
    }

    /// Validates: `lr, eps1, eps2, d > 0` finite; `beta2_decay < 0` finite (PyTorch: ≤ 0;
    /// 0 would never forget); `λ >= 0` finite.
    pub fn build(self) -> Result<Adafactor, ConfigError> {
        positive("lr", self.lr)?;
        positive("beta2_decay (negated)", -self.beta2_decay)?;
        positive("eps1", self.eps1)?;
        positive("eps2", self.eps2)?;
        positive("d", self.d)?;
        non_negative("weight_decay", self.weight_decay)?;
        Ok(Adafactor { cfg: self })
    }
}

/// A validated Adafactor optimizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adafactor {
    cfg: AdafactorConfig,
}

impl Adafactor {
    /// The validated configuration.
    pub const fn config(&self) -> &AdafactorConfig {
        &self.cfg
    }

    /// Step `t` at the configured learning rate.
    pub const fn at(&self, t: u64) -> Step {
        Step::trusted(t, self.cfg.lr)
    }

    /// Step `t` at the configured learning rate times `schedule.factor(t)`.
    pub fn at_scheduled<S: Schedule>(&self, t: u64, schedule: &S) -> Step {
        Step::trusted(t, self.cfg.lr * schedule.factor(t))
    }

    /// `(w, α)` of step `t` for parameters `params`, and applies the weight decay.
    fn begin(&self, s: Step, params: &mut [f32]) -> (f32, f32) {
        let t = s.t as f32;
        let w = powf(t, self.cfg.beta2_decay);
        let rho = s.lr.min(1.0 / sqrt(t));
        let alpha = self.cfg.eps2.max(rms(params)) * rho;
        if self.cfg.weight_decay != 0.0 {
            let decay = 1.0 - s.lr * self.cfg.weight_decay;
            for p in params.iter_mut() {
                *p *= decay;
            }
        }
        (w, alpha)
    }

    /// One step on an `rows × cols` matrix (row-major) with its row and column statistics.
    /// Errors (nothing written): a zero dimension, or any length that does not match.
    #[allow(clippy::too_many_arguments)]
    pub fn step_matrix(
        &self,
        s: Step,
        params: &mut [f32],
        grads: &[f32],
        rows: usize,
        cols: usize,
        row_var: &mut [f32],
        col_var: &mut [f32],
    ) -> Result<(), StepError> {
        if rows == 0 || cols == 0 {
            return Err(StepError::RowMismatch {
                len: params.len(),
                cols,
            });
        }
        check_len(rows * cols, params.len())?;
        check_len(rows * cols, grads.len())?;
        check_len(rows, row_var.len())?;
        check_len(cols, col_var.len())?;
        let (w, alpha) = self.begin(s, params);
        let keep = 1.0 - w;
        for (i, r) in row_var.iter_mut().enumerate() {
            let g = &grads[i * cols..(i + 1) * cols];
            let mean = g.iter().map(|x| x * x).sum::<f32>() / cols as f32;
            *r = keep * *r + w * mean;
        }
        for (j, c) in col_var.iter_mut().enumerate() {
            let mean = (0..rows)
                .map(|i| grads[i * cols + j] * grads[i * cols + j])
                .sum::<f32>()
                / rows as f32;
            *c = keep * *c + w * mean;
        }
        let r_mean = (row_var.iter().sum::<f32>() / rows as f32).max(self.cfg.eps1);
        let floor = self.cfg.eps1 * self.cfg.eps1;
        let u = |i: usize, j: usize| {
            let v = (row_var[i] * col_var[j] / r_mean).max(floor);
            grads[i * cols + j] / sqrt(v)
        };
        let mut sum_sq = 0.0f32;
        for i in 0..rows {
            for j in 0..cols {
                let x = u(i, j);
                sum_sq += x * x;
            }
        }
        let scale = alpha / (sqrt(sum_sq / (rows * cols) as f32) / self.cfg.d).max(1.0);
        for i in 0..rows {
            for j in 0..cols {
                params[i * cols + j] -= scale * u(i, j);
            }
        }
        Ok(())
    }

    /// One step on a vector with its unfactored second moment `var`. Errors (nothing
    /// written): an empty vector or lengths that differ.
    pub fn step_vector(
        &self,
        s: Step,
        params: &mut [f32],
        grads: &[f32],
        var: &mut [f32],
    ) -> Result<(), StepError> {
        if params.is_empty() {
            return Err(StepError::RowMismatch { len: 0, cols: 0 });
        }
        super::check_lengths(params.len(), grads.len(), var.len())?;
        let (w, alpha) = self.begin(s, params);
        let keep = 1.0 - w;
        let floor = self.cfg.eps1 * self.cfg.eps1;
        let mut sum_sq = 0.0f32;
        for (v, &g) in var.iter_mut().zip(grads) {
            *v = keep * *v + w * (g * g);
            let x = g / sqrt(v.max(floor));
            sum_sq += x * x;
        }
        let scale = alpha / (sqrt(sum_sq / params.len() as f32) / self.cfg.d).max(1.0);
        for ((p, &g), v) in params.iter_mut().zip(grads).zip(var.iter()) {
            *p -= scale * (g / sqrt(v.max(floor)));
        }
        Ok(())
    }
}

/// Adafactor's names and lengths for the [`super::Optimizer`] interface.
impl super::Stage for Adafactor {
    type Round = ();
    const NAME: &'static str = "adafactor";
    fn lr(&self) -> f32 {
        self.cfg.lr
    }
    fn state_len(&self, spec: &super::TensorSpec) -> usize {
        match spec.shape {
            super::Shape::Vector(n) => n,
            super::Shape::Matrix { rows, cols } => rows.saturating_add(cols),
        }
    }
    fn begin(&self, _loss: f32) {}
    fn check(&self, spec: &super::TensorSpec) -> Result<(), StepError> {
        if spec.is_empty() {
            return Err(super::interface::refused(
                "adafactor",
                "a tensor with a zero dimension has no second moment",
            ));
        }
        Ok(())
    }
}
/// Adafactor through the interface (f32 state): a matrix keeps `R` then `C`
/// (`rows + cols` values), a vector its unfactored `V̂` (`len` values).
impl super::Optimizer<f32> for Adafactor {
    #[inline]
    fn apply(
        &self,
        _: &(),
        s: Step,
        spec: &super::TensorSpec,
        params: &mut [f32],
        grads: &mut [f32],
        state: &mut [f32],
    ) -> Result<super::Outcome, StepError> {
        match spec.shape {
            super::Shape::Vector(_) => self.step_vector(s, params, grads, state)?,
            super::Shape::Matrix { rows, cols } => {
                let (r, c) = super::interface::split_state(state, rows)?;
                self.step_matrix(s, params, grads, rows, cols, r, c)?
            }
        }
        Ok(super::Outcome::Updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configs_and_shapes_are_errors() {
        assert!(AdafactorConfig::new(0.0).build().is_err());
        assert!(AdafactorConfig {
            beta2_decay: 0.1,
            ..AdafactorConfig::new(1e-2)
        }
        .build()
        .is_err());
        let af = AdafactorConfig::new(1e-2).build().unwrap();
        let (mut p, mut r, mut c) = ([1.0f32; 6], [0.0f32; 2], [0.0f32; 3]);
        assert!(af
            .step_matrix(af.at(1), &mut p, &[1.0; 6], 0, 3, &mut r, &mut c)
            .is_err());
        assert!(af
            .step_matrix(af.at(1), &mut p, &[1.0; 6], 3, 2, &mut r, &mut c)
            .is_err());
        assert!(af.step_vector(af.at(1), &mut [], &[], &mut []).is_err());
        assert_eq!(p, [1.0; 6]);
    }

    /// State is n + m values, and the first step's update has RMS ≤ d before scaling, so
    /// no weight moves by more than α·√(n·m) (here: RMS(u) = 1 exactly for a rank-1 g²).
    #[test]
    fn first_step_of_a_rank_one_gradient_moves_by_alpha_sign() {
        let af = AdafactorConfig::new(1e-2).build().unwrap();
        let mut p = [2.0f32; 6];
        let g = [0.1f32, 0.2, 0.4, 0.2, 0.4, 0.8]; // g² = outer([1,4], [.01,.04,.16])
        let (mut r, mut c) = ([0.0f32; 2], [0.0f32; 3]);
        af.step_matrix(af.at(1), &mut p, &g, 2, 3, &mut r, &mut c)
            .unwrap();
        // V̂ = g² exactly, u = sign(g), RMS(u) = 1, α = RMS(θ)·min(γ, 1) = 2·1e-2.
        for x in p {
            assert!((x - (2.0 - 0.02)).abs() < 1e-6, "{x}");
        }
    }
}
