//! Lazy embedding rows for sign optimizers (kexue 9736; LazyOptimizer, kexue 6869).
//!
//! Under Lion and Tiger a row whose token has left the batch keeps a non-zero momentum, so
//! `sign(m)` keeps moving it by η per step, and weight decay balances that only at
//! `θ* = −sign(m)/λ`: rare tokens' embeddings drift to ±1/λ (±100 at λ = 0.01 in Su's 7B run).
//! The fix: update only the rows present in the batch, given by the batch's token ids
//! ([`Rows::Listed`]) or, lacking them, by a non-zero gradient row ([`Rows::NonZero`]). Rows
//! left out keep their weights *and* their momentum.
//!
//! Each touched row is one step of the underlying optimizer on that row, so Tiger's guard
//! and its `RmsPerRow` mode act per row, and a step's index `t` is shared by all rows
//! (Tiger's accumulation windows stay aligned).
//!
//! ```
//! use margay::optim::{LionConfig, Rows};
//! let lion = LionConfig::new(0.1).build().unwrap();
//! let mut table = [1.0_f32, 1.0, 2.0, 2.0];          // 2 rows of 2
//! let mut m = [0.5_f32; 4];                          // both rows have momentum
//! let g = [0.0_f32, 0.0, 1.0, 1.0];                  // only row 1 is in the batch
//! let n = lion.step_rows(lion.at(1), &mut table, &g, &mut m, 2, Rows::NonZero).unwrap();
//! assert_eq!((n, table[0], m[0]), (1, 1.0, 0.5));   // row 0 untouched, momentum kept
//! assert!(table[2] < 2.0);
//! ```

use super::error::StepError;
use super::{check_lengths, Lion, Moment, Step, Tiger};

/// Which rows of an embedding table a step touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows<'a> {
    /// These rows (the batch's token ids; repeats are touched once per occurrence, so pass
    /// each id once).
    Listed(&'a [usize]),
    /// Every row whose gradient has a non-zero (or non-finite) element.
    NonZero,
}

/// Validates the table shape and the row list; returns the number of rows.
fn check(
    len: usize,
    grads: usize,
    state: usize,
    cols: usize,
    rows: Rows<'_>,
) -> Result<usize, StepError> {
    check_lengths(len, grads, state)?;
    if cols == 0 || !len.is_multiple_of(cols) {
        return Err(StepError::RowMismatch { len, cols });
    }
    let n = len / cols;
    if let Rows::Listed(list) = rows {
        if let Some(&row) = list.iter().find(|&&r| r >= n) {
            return Err(StepError::RowOutOfRange { row, rows: n });
        }
    }
    Ok(n)
}

/// Calls `step` on each touched row; returns how many rows were touched.
fn for_rows<M>(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [M],
    cols: usize,
    rows: Rows<'_>,
    mut step: impl FnMut(&mut [f32], &[f32], &mut [M]),
) -> usize {
    let mut touched = 0;
    let mut one = |r: usize, params: &mut [f32], m: &mut [M]| {
        let span = r * cols..(r + 1) * cols;
        step(
            &mut params[span.clone()],
            &grads[span.clone()],
            &mut m[span],
        );
    };
    match rows {
        Rows::Listed(list) => {
            for &r in list {
                one(r, params, m);
                touched += 1;
            }
        }
        Rows::NonZero => {
            for r in 0..params.len() / cols {
                if grads[r * cols..(r + 1) * cols].iter().any(|g| *g != 0.0) {
                    one(r, params, m);
                    touched += 1;
                }
            }
        }
    }
    touched
}

impl Lion {
    /// One Lion step on the touched rows of a `[rows, cols]` table only. Errors (nothing
    /// written): lengths differ, `cols` does not divide the length, a listed row is out of
    /// range. Returns the number of rows updated.
    pub fn step_rows<M: Moment>(
        &self,
        s: Step,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [M],
        cols: usize,
        rows: Rows<'_>,
    ) -> Result<usize, StepError> {
        check(params.len(), grads.len(), m.len(), cols, rows)?;
        Ok(for_rows(params, grads, m, cols, rows, |p, g, m| {
            // Cannot fail: the row slices have equal lengths.
            let _ = self.step(s, p, g, m);
        }))
    }
}

impl Tiger {
    /// One Tiger micro-step on the touched rows of a `[rows, cols]` table only (the guard
    /// and `RmsPerRow` act per row). Errors as [`Lion::step_rows`]. Returns the number of
    /// rows updated.
    pub fn step_rows<M: Moment>(
        &self,
        s: Step,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [M],
        cols: usize,
        rows: Rows<'_>,
    ) -> Result<usize, StepError> {
        check(params.len(), grads.len(), m.len(), cols, rows)?;
        if let super::LrMode::RmsPerRow { cols: c } = self.config().lr_mode {
            if !cols.is_multiple_of(c) {
                return Err(StepError::RowMismatch { len: cols, cols: c });
            }
        }
        Ok(for_rows(params, grads, m, cols, rows, |p, g, m| {
            // Cannot fail: equal lengths, and a per-row mode's rows divide the table's.
            let _ = self.step(s, p, g, m);
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::TigerConfig;

    const COLS: usize = 4;
    const ROWS: usize = 6;

    /// kexue 9736 in miniature: a rare token (row 5) appears once; under plain Tiger its row
    /// drifts to −sign(m)/λ = ±1/λ, under lazy updates it stays where its one update left it.
    #[test]
    fn rare_rows_drift_to_one_over_lambda_under_plain_tiger_and_not_under_lazy() {
        let lambda = 0.1f32;
        let tiger = TigerConfig {
            weight_decay: lambda,
            ..TigerConfig::new(1e-2)
        }
        .build()
        .unwrap();
        let init: [f32; COLS * ROWS] = core::array::from_fn(|i| ((i * 7 % 11) as f32 - 5.0) * 0.02);
        let (mut plain, mut mp) = (init, [0.0f32; COLS * ROWS]);
        let (mut lazy, mut ml) = (init, [0.0f32; COLS * ROWS]);
        let mut rng = 0x1234_5678u32;
        for t in 1..=8000u64 {
            let mut g = [0.0f32; COLS * ROWS];
            // Rows 0..4 are frequent tokens with pull toward 0; row 5 appears at t = 1 only.
            for r in 0..4 {
                for c in 0..COLS {
                    let noise =
                        (crate::math::xorshift32(&mut rng) >> 8) as f32 / 16_777_216.0 - 0.5;
                    g[r * COLS + c] = plain[r * COLS + c] + 0.1 * noise;
                }
            }
            if t == 1 {
                g[5 * COLS..].copy_from_slice(&[1.0, -1.0, 0.5, -0.5]);
            }
            let mut present = [0usize, 1, 2, 3, 5];
            let present: &[usize] = if t == 1 {
                &present[..]
            } else {
                &mut present[..4]
            };
            tiger.step(tiger.at(t), &mut plain, &g, &mut mp).unwrap();
            tiger
                .step_rows(
                    tiger.at(t),
                    &mut lazy,
                    &g,
                    &mut ml,
                    COLS,
                    Rows::Listed(present),
                )
                .unwrap();
        }
        for c in 0..COLS {
            let p = plain[5 * COLS + c];
            assert!((p.abs() - 1.0 / lambda).abs() < 0.05, "plain row 5 = {p}");
            let l = lazy[5 * COLS + c];
            assert!(
                (l - init[5 * COLS + c]).abs() <= 1.01e-2,
                "lazy row 5 moved to {l}"
            );
        }
        // Row 4 never appears: lazy leaves it exactly; plain Tiger never gave it momentum.
        assert_eq!(lazy[4 * COLS..5 * COLS], init[4 * COLS..5 * COLS]);
    }

    #[test]
    fn bad_shapes_and_rows_are_errors_and_write_nothing() {
        let tiger = TigerConfig::new(1e-2).build().unwrap();
        let (mut p, mut m) = ([1.0f32; 8], [0.0f32; 8]);
        let g = [1.0f32; 8];
        assert_eq!(
            tiger.step_rows(tiger.at(1), &mut p, &g, &mut m, 3, Rows::NonZero),
            Err(StepError::RowMismatch { len: 8, cols: 3 })
        );
        assert_eq!(
            tiger.step_rows(tiger.at(1), &mut p, &g, &mut m, 4, Rows::Listed(&[0, 2])),
            Err(StepError::RowOutOfRange { row: 2, rows: 2 })
        );
        let per_row = TigerConfig {
            lr_mode: crate::optim::LrMode::RmsPerRow { cols: 3 },
            ..TigerConfig::new(1e-2)
        }
        .build()
        .unwrap();
        assert_eq!(
            per_row.step_rows(per_row.at(1), &mut p, &g, &mut m, 4, Rows::NonZero),
            Err(StepError::RowMismatch { len: 4, cols: 3 })
        );
        assert_eq!(p, [1.0; 8]);
    }
}
