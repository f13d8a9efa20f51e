//! Storage types for optimizer moments.

/// A storage type for one optimizer moment.
///
/// Arithmetic is always done in f32: a moment is loaded, updated in f32 and stored back.
/// - `f32`: 4 bytes, exact.
/// - [`half::bf16`]: 2 bytes; `store` rounds to nearest, ties to even (8 significant bits,
///   unit roundoff 2⁻⁸). An EMA `m ← β·m + (1−β)·g` in bf16 keeps its error within
///   `2⁻⁸·max|m|/(1−β)` of the f32 EMA (a tested property), and with `g = 0` it stops
///   decaying once `(1−β)·|m|` is below half an ulp of `m` (from `β ≈ 0.996` up): keep
///   AdamW's `v` (β₂ = 0.999) in f32.
pub trait Moment: Copy + Default + PartialEq + core::fmt::Debug + 'static {
    /// Bytes of storage per element.
    const BYTES: usize;
    /// The value as f32.
    fn load(self) -> f32;
    /// Rounds an f32 into storage.
    fn store(x: f32) -> Self;
    /// The buffer as plain `f32` when that is the storage type (lets a step choose an
    /// f32-only vector loop); `None` otherwise.
    #[inline(always)]
    fn as_f32_mut(xs: &mut [Self]) -> Option<&mut [f32]> {
        let _ = xs;
        None
    }
}

impl Moment for f32 {
    const BYTES: usize = 4;
    #[inline(always)]
    fn load(self) -> f32 {
        self
    }
    #[inline(always)]
    fn store(x: f32) -> Self {
        x
    }
    #[inline(always)]
    fn as_f32_mut(xs: &mut [Self]) -> Option<&mut [f32]> {
        Some(xs)
    }
}

impl Moment for half::bf16 {
    const BYTES: usize = 2;
    #[inline(always)]
    fn load(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn store(x: f32) -> Self {
        half::bf16::from_f32(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::bf16;

    #[test]
    fn bf16_store_rounds_ties_to_even() {
        // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1 + 2^-7: ties to even -> 1.0.
        assert_eq!(<bf16 as Moment>::store(1.0 + 1.0 / 256.0).load(), 1.0);
        // 1 + 3*2^-8 is halfway between 1+2^-7 and 1+2^-6: ties to even -> 1 + 2^-6.
        assert_eq!(
            <bf16 as Moment>::store(1.0 + 3.0 / 256.0).load(),
            1.0 + 1.0 / 64.0
        );
    }

    #[test]
    fn bf16_round_trip_is_exact_for_every_bf16_pattern() {
        for bits in 0..=u16::MAX {
            let b = bf16::from_bits(bits);
            let back = <bf16 as Moment>::store(b.load());
            if b.is_nan() {
                assert!(back.is_nan());
            } else {
                assert_eq!(back.to_bits(), bits);
            }
        }
    }
}
