//! LongRoPE (Hugging Face `longrope`) and plain per-pair divisors (ggml `freq_factors`).
//!
//! θ′ᵢ = θᵢ / extᵢ, where ext = `long_factor` when `seq_len` > L₀, else `short_factor` (one
//! entry per pair). The attention factor defaults to √(1 + ln s / ln L₀) with
//! s = `max_position_embeddings` / L₀ (1 when s ≤ 1).

use super::freq::positive;
use super::RopeError;

/// LongRoPE's parameters, named as Hugging Face names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LongRope<'a> {
    /// Divisors for sequences up to L₀ (r/2 entries, each finite and > 0).
    pub short_factor: &'a [f64],
    /// Divisors beyond L₀.
    pub long_factor: &'a [f64],
    /// L₀ > 0.
    pub original_max_position_embeddings: u32,
    /// The extended context (s = this / L₀).
    pub max_position_embeddings: u32,
    /// The current sequence length: picks short or long factors.
    pub seq_len: u32,
    /// Explicit attention factor (overrides the default).
    pub attention_factor: Option<f64>,
}

pub(super) fn check_factors(f: &[f64], pairs: usize, name: &'static str) -> Result<(), RopeError> {
    if f.len() != pairs {
        return Err(RopeError::LengthMismatch {
            expected: pairs,
            got: f.len(),
        });
    }
    for &x in f {
        positive(x, name)?;
    }
    Ok(())
}

impl<'a> LongRope<'a> {
    /// The divisors to use and the attention factor.
    pub(super) fn select(&self, pairs: usize) -> Result<(&'a [f64], f64), RopeError> {
        check_factors(self.short_factor, pairs, "short_factor")?;
        check_factors(self.long_factor, pairs, "long_factor")?;
        let l0 = self.original_max_position_embeddings;
        if l0 < 2 {
            // ln L₀ divides the default attention factor.
            return Err(RopeError::BadParam {
                name: "original_max_position_embeddings",
            });
        }
        let factors = if self.seq_len > l0 {
            self.long_factor
        } else {
            self.short_factor
        };
        let s = self.max_position_embeddings as f64 / l0 as f64;
        let attn = match self.attention_factor {
            Some(a) => positive(a, "attention_factor")?,
            None if s <= 1.0 => 1.0,
            None => libm::sqrt(1.0 + libm::log(s) / libm::log(l0 as f64)),
        };
        Ok((factors, attn))
    }
}
