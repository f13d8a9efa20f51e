//! Attention logit scales that go with RoPE: the standard 1/√d, the entropy-invariant
//! log-n scale (kexue 8823) and the gradient-maximizing scale (kexue 9812).
//!
//! These multiply q·k in the attention layer (not in RoPE); `n` is the number of attended
//! tokens (for causal decoders, kexue suggests n ≈ L_max/2 for the gradient scale).
//!
//! | function | value | reduces to 1/√d at |
//! |---|---|---|
//! | [`standard_scale`] | 1/√d | always |
//! | [`log_n_scale`] | log₅₁₂(n)/√d = ln n/(ln 512·√d) | n = 512 |
//! | [`log_n_scale_with`] | log_L(n)/√d for a training length L | n = L |
//! | [`log_n_inference_factor`] | max(1, log_L n), a multiplier for q at inference | n ≤ L |
//! | [`grad_max_scale`] | 0.84·√(ln n)/√d | — |
//!
//! Why log n: softmax entropy grows like ln n when logits keep their scale, so attention
//! blurs on longer inputs than trained; scaling logits by ln n keeps it roughly invariant.
//! Why 0.84·√(ln n): with logits α·s, s ~ N(0, 1) (scores after the usual 1/√d), the L1 norm
//! of the softmax Jacobian is α(1 − Σp²), which vanishes as α → 0 and α → ∞; its maximizer
//! fits α* ≈ 0.84·√(ln n) (≈ 2.1 at n = 512, "2.5/√d instead of 1/√d"). A Monte Carlo test
//! (`tests/tests/rope.rs`) checks the fit within 10 % for n = 64 … 4096.

use super::RopeError;

fn check(n: usize, head_dim: usize) -> Result<f64, RopeError> {
    if head_dim == 0 {
        return Err(RopeError::BadParam { name: "head_dim" });
    }
    if n == 0 {
        return Err(RopeError::BadParam { name: "n" });
    }
    Ok(libm::sqrt(head_dim as f64))
}

/// 1/√d. Error if `head_dim` is 0.
pub fn standard_scale(head_dim: usize) -> Result<f32, RopeError> {
    Ok((1.0 / check(1, head_dim)?) as f32)
}

/// log₅₁₂(n)/√d: kexue's entropy-invariant scale with his fixed base 512 (kept "blindly"
/// whatever the training length). 0 at n = 1, where softmax over one token is 1 anyway.
/// Errors: `n` or `head_dim` zero.
pub fn log_n_scale(n: usize, head_dim: usize) -> Result<f32, RopeError> {
    log_n_scale_with(n, 512, head_dim)
}

/// log_L(n)/√d for a training length `train_len` = L ≥ 2.
pub fn log_n_scale_with(n: usize, train_len: usize, head_dim: usize) -> Result<f32, RopeError> {
    let sqrt_d = check(n, head_dim)?;
    if train_len < 2 {
        return Err(RopeError::BadParam { name: "train_len" });
    }
    Ok((libm::log(n as f64) / libm::log(train_len as f64) / sqrt_d) as f32)
}

/// max(1, log_L n): multiply q by this at inference on a model not trained with the log-n
/// scale (kexue's ReRoPE experiments), so lengths up to L are unchanged.
pub fn log_n_inference_factor(n: usize, train_len: usize) -> Result<f32, RopeError> {
    check(n, 1)?;
    if train_len < 2 {
        return Err(RopeError::BadParam { name: "train_len" });
    }
    Ok((libm::log(n as f64) / libm::log(train_len as f64)).max(1.0) as f32)
}

/// The fitted coefficient of the gradient-maximizing scale, α* ≈ 0.84·√(ln n).
pub const GRAD_MAX_COEFF: f64 = 0.84;

/// 0.84·√(ln n)/√d: the logit scale that maximizes the softmax Jacobian's L1 norm for
/// unit-variance scores, as a multiplier of q·k. Errors: `n < 2` (no softmax to shape) or
/// `head_dim` zero.
pub fn grad_max_scale(n: usize, head_dim: usize) -> Result<f32, RopeError> {
    let sqrt_d = check(n, head_dim)?;
    if n < 2 {
        return Err(RopeError::BadParam { name: "n" });
    }
    Ok((GRAD_MAX_COEFF * libm::sqrt(libm::log(n as f64)) / sqrt_d) as f32)
}
