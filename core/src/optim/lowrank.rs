//! LoRA seen as an optimizer (kexue 9590): train a low-rank change `W = W₀ + A·B` of a full
//! weight `W` (`n×m`, row-major), with `A` (`n×r`) and `B` (`r×m`) updated by *any* margay
//! optimizer from the projection of the full gradient `G = ∂L/∂W`:
//! ```text
//! ∂L/∂A = G·Bᵀ,   ∂L/∂B = Aᵀ·G                      (project)
//! W ← W + (A′B′ − AB)                               (apply the factors' change to W)
//! W ← W − A₀B₀  once, before training               (symmetric init: A₀, B₀ both non-zero)
//! G̃ = G·vᵀv + u·uᵀG,  u ~ N(0, Iₙ), v ~ N(0, Iₘ)    (random rank-1 projection, redrawn each
//!                                                    step; E[G̃] = 2G, full-rank SGD in expectation)
//! ```
//! Stateful optimizers keep state only for `A` and `B` (r·(n+m) values instead of n·m).
//! Slices are checked: a shape mismatch is a [`StepError`] and nothing is written.
//!
//! ```
//! use margay::optim::LowRank;
//! let lr = LowRank::new(2, 3, 1).unwrap();                   // n = 2, m = 3, r = 1
//! let g = [1.0_f32, 0.0, 2.0, 0.0, 1.0, 0.0];               // G
//! let (a, b) = ([1.0_f32, 2.0], [0.5_f32, 0.0, 1.0]);
//! let (mut da, mut db) = ([0.0_f32; 2], [0.0_f32; 3]);
//! lr.project(&g, &a, &b, &mut da, &mut db).unwrap();
//! assert_eq!(da, [2.5, 0.0]);                                // G·Bᵀ
//! assert_eq!(db, [1.0, 2.0, 2.0]);                           // Aᵀ·G
//! ```

use super::check_len;
use super::error::{ConfigError, StepError};
use crate::math::SplitMix64;

/// Shapes of a low-rank factorisation: `W` is `n×m`, `A` is `n×r`, `B` is `r×m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowRank {
    n: usize,
    m: usize,
    r: usize,
}

impl LowRank {
    /// `n, m, r >= 1`.
    pub fn new(n: usize, m: usize, r: usize) -> Result<Self, ConfigError> {
        for (field, v) in [("n", n), ("m", m), ("r", r)] {
            if v == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        Ok(LowRank { n, m, r })
    }

    /// `∂L/∂A = G·Bᵀ` into `da`, `∂L/∂B = Aᵀ·G` into `db`.
    pub fn project(
        &self,
        g: &[f32],
        a: &[f32],
        b: &[f32],
        da: &mut [f32],
        db: &mut [f32],
    ) -> Result<(), StepError> {
        let (n, m, r) = (self.n, self.m, self.r);
        check_len(n * m, g.len())?;
        check_len(n * r, a.len())?;
        check_len(r * m, b.len())?;
        check_len(n * r, da.len())?;
        check_len(r * m, db.len())?;
        for i in 0..n {
            for k in 0..r {
                da[i * r + k] = (0..m).map(|j| g[i * m + j] * b[k * m + j]).sum();
            }
        }
        for k in 0..r {
            for j in 0..m {
                db[k * m + j] = (0..n).map(|i| a[i * r + k] * g[i * m + j]).sum();
            }
        }
        Ok(())
    }

    /// `W ← W + sign·A·B` (`sign` = −1 for the symmetric init, +1 to add a product).
    fn add_product(&self, w: &mut [f32], a: &[f32], b: &[f32], sign: f32) -> Result<(), StepError> {
        let (n, m, r) = (self.n, self.m, self.r);
        check_len(n * m, w.len())?;
        check_len(n * r, a.len())?;
        check_len(r * m, b.len())?;
        for i in 0..n {
            for j in 0..m {
                let ab: f32 = (0..r).map(|k| a[i * r + k] * b[k * m + j]).sum();
                w[i * m + j] += sign * ab;
            }
        }
        Ok(())
    }

    /// Symmetric initialisation: `W ← W − A₀B₀`, so that `W − A₀B₀ + AB` starts at `W₀`
    /// with both factors non-zero.
    pub fn symmetric_init(&self, w: &mut [f32], a0: &[f32], b0: &[f32]) -> Result<(), StepError> {
        self.add_product(w, a0, b0, -1.0)
    }

    /// `W ← W + (A′B′ − AB)` after the factors moved from `(a, b)` to `(a_new, b_new)`.
    pub fn apply_change(
        &self,
        w: &mut [f32],
        a: &[f32],
        b: &[f32],
        a_new: &[f32],
        b_new: &[f32],
    ) -> Result<(), StepError> {
        check_len(self.n * self.r, a_new.len())?;
        check_len(self.r * self.m, b_new.len())?;
        self.add_product(w, a, b, -1.0)?;
        self.add_product(w, a_new, b_new, 1.0)
    }

    /// The random rank-1 projection `G̃ = G·vᵀv + u·uᵀG` with fresh `u, v ~ N(0, 1)` drawn
    /// from `rng` into `u` (n) and `v` (m), written to `out` (n×m).
    pub fn random_projection(
        &self,
        g: &[f32],
        rng: &mut SplitMix64,
        u: &mut [f32],
        v: &mut [f32],
        out: &mut [f32],
    ) -> Result<(), StepError> {
        let (n, m) = (self.n, self.m);
        check_len(n * m, g.len())?;
        check_len(n, u.len())?;
        check_len(m, v.len())?;
        check_len(n * m, out.len())?;
        for x in u.iter_mut().chain(v.iter_mut()) {
            *x = gaussian(rng);
        }
        // G·v (n) and uᵀ·G (m).
        for i in 0..n {
            let gv: f32 = (0..m).map(|j| g[i * m + j] * v[j]).sum();
            for j in 0..m {
                out[i * m + j] = gv * v[j];
            }
        }
        for j in 0..m {
            let ug: f32 = (0..n).map(|i| u[i] * g[i * m + j]).sum();
            for i in 0..n {
                out[i * m + j] += u[i] * ug;
            }
        }
        Ok(())
    }
}

/// A standard normal draw (Box–Muller, f32).
fn gaussian(rng: &mut SplitMix64) -> f32 {
    let u1 = rng.next_f32().max(1.0 / 16_777_216.0);
    let u2 = rng.next_f32();
    crate::math::sqrt(-2.0 * crate::math::ln(u1)) * crate::math::cos(core::f32::consts::TAU * u2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::LionConfig;

    #[test]
    fn shapes_are_checked() {
        assert!(LowRank::new(0, 2, 1).is_err());
        let lr = LowRank::new(2, 2, 1).unwrap();
        let mut w = [1.0f32; 4];
        assert!(lr.symmetric_init(&mut w, &[1.0; 3], &[1.0; 2]).is_err());
        assert_eq!(w, [1.0; 4]);
    }

    /// Symmetric init leaves W₀ + AB − A₀B₀ = W₀ at the start; a Lion step on the factors,
    /// applied through `apply_change`, gives W = W₀ − A₀B₀ + A′B′.
    #[test]
    fn symmetric_init_and_any_optimizer_on_the_factors() {
        let lr = LowRank::new(3, 2, 1).unwrap();
        let w0 = [0.5f32, -1.0, 2.0, 0.25, -0.5, 1.5];
        let (a0, b0) = ([0.1f32, -0.2, 0.3], [0.4f32, -0.1]);
        let mut w = w0;
        lr.symmetric_init(&mut w, &a0, &b0).unwrap();
        let mut eff = w;
        lr.apply_change(&mut eff, &[0.0; 3], &[0.0; 2], &a0, &b0)
            .unwrap();
        for (x, y) in eff.iter().zip(&w0) {
            assert!((x - y).abs() < 1e-6);
        }
        let lion = LionConfig::new(0.01).build().unwrap();
        let g = [1.0f32, -1.0, 0.5, 0.5, -2.0, 1.0];
        let (mut da, mut db) = ([0.0f32; 3], [0.0f32; 2]);
        lr.project(&g, &a0, &b0, &mut da, &mut db).unwrap();
        let (mut a, mut b, mut ma, mut mb) = (a0, b0, [0.0f32; 3], [0.0f32; 2]);
        lion.step_array(lion.at(1), &mut a, &da, &mut ma);
        lion.step_array(lion.at(1), &mut b, &db, &mut mb);
        let mut w_eff = w0;
        lr.apply_change(&mut w_eff, &a0, &b0, &a, &b).unwrap();
        for i in 0..3 {
            for j in 0..2 {
                let want = w0[i * 2 + j] - a0[i] * b0[j] + a[i] * b[j];
                assert!((w_eff[i * 2 + j] - want).abs() < 1e-6);
            }
        }
    }

    /// The random projection is 2G in expectation (each term is G in expectation).
    #[test]
    fn random_projection_is_unbiased_up_to_the_factor_two() {
        let lr = LowRank::new(3, 4, 1).unwrap();
        let g: [f32; 12] = core::array::from_fn(|i| (i as f32 - 5.5) * 0.1);
        let mut rng = SplitMix64::new(42);
        let (mut u, mut v, mut out) = ([0.0f32; 3], [0.0f32; 4], [0.0f32; 12]);
        let mut mean = [0.0f64; 12];
        let draws = 200_000;
        for _ in 0..draws {
            lr.random_projection(&g, &mut rng, &mut u, &mut v, &mut out)
                .unwrap();
            for (m, o) in mean.iter_mut().zip(&out) {
                *m += *o as f64 / draws as f64;
            }
        }
        for (m, x) in mean.iter().zip(&g) {
            assert!((m - 2.0 * *x as f64).abs() < 0.03, "{m} vs {}", 2.0 * x);
        }
    }
}
