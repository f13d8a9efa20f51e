//! Llama 3 / 3.1 frequency scaling (Hugging Face `llama3`).
//!
//! By wavelength λᵢ = 2π/θᵢ against the training context L₀:
//! - λᵢ < L₀ / `high_freq_factor`: keep θᵢ (fast pairs);
//! - λᵢ > L₀ / `low_freq_factor`: θᵢ / s (slow pairs);
//! - otherwise θᵢ·[(1 − α)/s + α] with α = (L₀/λᵢ − low_freq_factor)/(high − low).
//!
//! Llama 3.1 ships s = 8, low 1, high 4, L₀ = 8192, base 500,000: with r = 128 the pairs split
//! 29 kept / 6 blended / 29 divided. The attention factor stays 1.

use super::freq::positive;
use super::RopeError;

/// Llama 3's parameters, named as Hugging Face's `rope_scaling` names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3 {
    /// s > 0.
    pub factor: f64,
    /// > 0.
    pub low_freq_factor: f64,
    /// > `low_freq_factor`.
    pub high_freq_factor: f64,
    /// L₀ > 0.
    pub original_max_position_embeddings: u32,
}

impl Llama3 {
    /// Llama 3.1's values: s = 8, low 1, high 4, L₀ = 8192 (pair with base 500,000).
    pub const LLAMA_3_1: Llama3 = Llama3 {
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192,
    };

    pub(super) fn validate(&self) -> Result<(), RopeError> {
        positive(self.factor, "factor")?;
        let low = positive(self.low_freq_factor, "low_freq_factor")?;
        let high = positive(self.high_freq_factor, "high_freq_factor")?;
        if high <= low {
            return Err(RopeError::BadParam {
                name: "high_freq_factor",
            });
        }
        if self.original_max_position_embeddings == 0 {
            return Err(RopeError::BadParam {
                name: "original_max_position_embeddings",
            });
        }
        Ok(())
    }

    /// θ′ for one default θ.
    pub(super) fn inv_freq(&self, theta: f64) -> f64 {
        let l0 = self.original_max_position_embeddings as f64;
        let wavelen = core::f64::consts::TAU / theta;
        if wavelen < l0 / self.high_freq_factor {
            theta
        } else if wavelen > l0 / self.low_freq_factor {
            theta / self.factor
        } else {
            let alpha = (l0 / wavelen - self.low_freq_factor)
                / (self.high_freq_factor - self.low_freq_factor);
            (1.0 - alpha) * theta / self.factor + alpha * theta
        }
    }
}
