//! NTK-aware base scaling, static (kexue 9675) and dynamic (Hugging Face `dynamic`).
//!
//! "High frequencies extrapolate, low frequencies interpolate": raising the base by
//! κ^(r/(r−2)) leaves θ₀ = 1 unchanged and divides the slowest frequency θ_{r/2−1} by
//! exactly κ, as position interpolation would. Static: κ = s. Dynamic: κ = s·ℓ/L₀ − (s − 1)
//! for the current length ℓ > L₀ (κ = 1 at ℓ = L₀, so nothing changes until the context
//! outgrows training). Example: r = 128, s = 8 gives base 10,000 → 82,685.

use super::freq::positive;
use super::RopeError;

/// r/(r−2); undefined for r = 2, where one pair has no "lowest frequency" to match.
fn exponent(rotary_dim: usize) -> Result<f64, RopeError> {
    if rotary_dim <= 2 {
        return Err(RopeError::BadParam { name: "rotary_dim" });
    }
    let r = rotary_dim as f64;
    Ok(r / (r - 2.0))
}

/// base · s^(r/(r−2)).
pub(super) fn static_base(base: f64, factor: f64, rotary_dim: usize) -> Result<f64, RopeError> {
    let s = positive(factor, "factor")?;
    Ok(base * libm::pow(s, exponent(rotary_dim)?))
}

/// base · (s·ℓ/L₀ − (s − 1))^(r/(r−2)) with ℓ = max(seq_len, L₀).
pub(super) fn dynamic_base(
    base: f64,
    factor: f64,
    max_position_embeddings: u32,
    seq_len: u32,
    rotary_dim: usize,
) -> Result<f64, RopeError> {
    let s = positive(factor, "factor")?;
    if max_position_embeddings == 0 {
        return Err(RopeError::BadParam {
            name: "max_position_embeddings",
        });
    }
    let l0 = max_position_embeddings as f64;
    let l = (seq_len.max(max_position_embeddings)) as f64;
    // κ = 1 + s·(ℓ/L₀ − 1) ≥ 1 since s > 0 and ℓ ≥ L₀.
    let kappa = s * l / l0 - (s - 1.0);
    Ok(base * libm::pow(kappa, exponent(rotary_dim)?))
}
