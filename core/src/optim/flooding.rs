//! Flooding (Ishida et al., ICML 2020, arXiv 2002.08709; kexue 7643).
//!
//! Intuition: stop the training loss from going below a level `b` by doing gradient ascent
//! whenever it does, which acts like a gradient-norm penalty.
//!
//! | config field | symbol | source |
//! |---|---|---|
//! | `level` | b (the flood level, >= 0) | the paper; no default, it is tuned |
//!
//! ```text
//! L̃ = |L − b| + b          ∂L̃/∂θ = sign(L − b) · ∂L/∂θ        sign(0) = 0
//! ```
//! State: none. Only the scalar loss is needed before backprop; [`Flooding::grad_scale`]
//! is the factor to multiply the gradients by (or the loss's upstream gradient).
//!
//! ```
//! use margay::optim::FloodingConfig;
//! let flood = FloodingConfig { level: 0.5 }.build().unwrap();
//! assert_eq!(flood.loss(0.25), 0.75);
//! assert_eq!(flood.grad_scale(0.25), -1.0);
//! let mut g = [1.0_f32, -2.0];
//! flood.apply(0.25, &mut g);
//! assert_eq!(g, [-1.0, 2.0]);
//! ```

use super::error::{non_negative, ConfigError};
use crate::math::sign;

/// Flooding hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloodingConfig {
    /// The flood level b.
    pub level: f32,
}

impl FloodingConfig {
    /// Validates: `level` finite and >= 0.
    pub fn build(self) -> Result<Flooding, ConfigError> {
        non_negative("level", self.level)?;
        Ok(Flooding { b: self.level })
    }
}

/// A validated Flooding transform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flooding {
    b: f32,
}

impl Flooding {
    /// The flooded loss `|L − b| + b`.
    pub fn loss(&self, loss: f32) -> f32 {
        let d = loss - self.b;
        (if d < 0.0 { -d } else { d }) + self.b
    }

    /// `sign(L − b)`: +1 above the level (descent), −1 below (ascent), 0 at it.
    /// NaN for a NaN loss, so a broken loss is not silently turned into a zero gradient.
    pub fn grad_scale(&self, loss: f32) -> f32 {
        sign(loss - self.b)
    }

    /// Multiplies the gradients of `loss` by [`Self::grad_scale`]; returns the flooded loss.
    pub fn apply(&self, loss: f32, grads: &mut [f32]) -> f32 {
        super::clip::scale(grads, self.grad_scale(loss));
        self.loss(loss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flooding_is_identity_above_the_level() {
        let f = FloodingConfig { level: 0.1 }.build().unwrap();
        assert_eq!(f.loss(2.0), 2.0);
        assert_eq!(f.grad_scale(2.0), 1.0);
    }

    #[test]
    fn flooding_rejects_bad_levels() {
        assert!(FloodingConfig { level: -0.1 }.build().is_err());
        assert!(FloodingConfig { level: f32::NAN }.build().is_err());
    }

    #[test]
    fn flooding_nan_loss_gives_nan_scale() {
        let f = FloodingConfig { level: 0.1 }.build().unwrap();
        assert!(f.grad_scale(f32::NAN).is_nan());
    }
}
