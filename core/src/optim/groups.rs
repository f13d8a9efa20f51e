//! Parameter groups: one model, different rules for weights, biases, norm gains and
//! embeddings.
//!
//! Build one validated optimizer per [`ParamKind`] from a base config with `preset`, and
//! step each tensor with the optimizer of its kind (all at the same step index):
//!
//! | kind | Tiger preset (`bojone/tiger`) | Lion / AdamW preset |
//! |---|---|---|
//! | `Weight` (matrix kernels) | `LrMode::Rms`, decay λ | decay λ |
//! | `Bias` | `Absolute`, `lr_scale = 0.5`, no decay, guard centre 0 | no decay |
//! | `NormGain` (γ of a norm, init 1) | `Absolute`, `lr_scale = 0.5`, no decay, **guard centre 1** | no decay |
//! | `Embedding { cols }` | `RmsPerRow { cols }`, decay λ | decay λ |
//!
//! ```
//! use margay::optim::{ParamKind, TigerConfig};
//! let base = TigerConfig::new(1.76e-3);
//! let weights = base.preset(ParamKind::Weight).build().unwrap();
//! let gains = base.preset(ParamKind::NormGain).build().unwrap();
//! let (mut w, mut mw) = ([0.5_f32, -0.5], [0.0_f32; 2]);
//! let (mut g, mut mg) = ([1.0_f32, 1.0], [0.0_f32; 2]);
//! let t = 1;
//! weights.step_array(weights.at(t), &mut w, &[0.1, 0.2], &mut mw).unwrap();
//! gains.step_array(gains.at(t), &mut g, &[0.3, -0.3], &mut mg).unwrap();
//! assert_eq!(g, [1.0 - 0.88e-3, 1.0 + 0.88e-3]);
//! ```

use super::{AdamWConfig, LionConfig, LrMode, TigerConfig};

/// The role of a parameter tensor in a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ParamKind {
    /// A matrix kernel.
    Weight,
    /// A bias vector (init 0).
    Bias,
    /// A norm gain γ (init 1).
    NormGain,
    /// An embedding table with rows of `cols` elements.
    Embedding {
        /// Row length (the embedding width).
        cols: usize,
    },
}

impl TigerConfig {
    /// Tiger's per-kind preset (see the module table); other fields are kept.
    pub const fn preset(self, kind: ParamKind) -> TigerConfig {
        match kind {
            ParamKind::Weight => TigerConfig {
                lr_mode: LrMode::Rms,
                ..self
            },
            ParamKind::Bias => TigerConfig {
                lr_mode: LrMode::Absolute,
                lr_scale: 0.5,
                weight_decay: 0.0,
                nan_center: 0.0,
                ..self
            },
            ParamKind::NormGain => TigerConfig {
                lr_mode: LrMode::Absolute,
                lr_scale: 0.5,
                weight_decay: 0.0,
                nan_center: 1.0,
                ..self
            },
            ParamKind::Embedding { cols } => TigerConfig {
                lr_mode: LrMode::RmsPerRow { cols },
                ..self
            },
        }
    }
}

impl LionConfig {
    /// No weight decay on biases and norm gains; other kinds keep the config.
    pub const fn preset(self, kind: ParamKind) -> LionConfig {
        match kind {
            ParamKind::Bias | ParamKind::NormGain => LionConfig {
                weight_decay: 0.0,
                ..self
            },
            _ => self,
        }
    }
}

impl AdamWConfig {
    /// No weight decay on biases and norm gains; other kinds keep the config.
    pub const fn preset(self, kind: ParamKind) -> AdamWConfig {
        match kind {
            ParamKind::Bias | ParamKind::NormGain => AdamWConfig {
                weight_decay: 0.0,
                ..self
            },
            _ => self,
        }
    }
}
