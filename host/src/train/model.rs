//! A decoder-only character transformer: token embedding (tied with the output head),
//! `n_layer` pre-norm blocks of RMSNorm → multi-head causal attention with margay's RoPE
//! (half-split layout) → RMSNorm → GELU MLP (4×), a final RMSNorm. No biases, no dropout,
//! no learned positions (RoPE carries them). Initialisation as nanoGPT (N(0, 0.02), output
//! projections N(0, 0.02/√(2·n_layer))), drawn on the host from a seed: the same weights on
//! every back end.

use burn::module::{Module, Param};
use burn::nn::{Linear, RmsNorm};
use burn::tensor::activation::{gelu, log_softmax, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use margay::math::SplitMix64;
use margay::rope::{Layout, Llama3, RopeConfig, Scaling, Yarn};

/// RoPE length-extension scaling, as stored in configs and checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RopeScaling {
    /// θᵢ = base^(−2i/r).
    #[default]
    None,
    /// Position interpolation: θᵢ / factor.
    Linear {
        /// s > 0.
        factor: f64,
    },
    /// NTK-aware: base′ = base·s^(r/(r−2)).
    Ntk {
        /// s > 0.
        factor: f64,
    },
    /// YaRN with Hugging Face's defaults for β.
    Yarn {
        /// s > 0.
        factor: f64,
        /// The context the model was trained at, L₀.
        original: u32,
    },
    /// Llama 3 with low/high frequency factors 1 and 4.
    Llama3 {
        /// s > 0.
        factor: f64,
        /// L₀.
        original: u32,
    },
}

impl RopeScaling {
    /// Parses `none`, `linear:S`, `ntk:S`, `yarn:S:L0`, `llama3:S:L0`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let num = |i: usize| -> Result<f64, String> {
            parts
                .get(i)
                .ok_or_else(|| format!("rope scaling {s:?}: missing a field"))?
                .parse::<f64>()
                .map_err(|e| format!("rope scaling {s:?}: {e}"))
        };
        let len = |i: usize| -> Result<u32, String> {
            parts
                .get(i)
                .ok_or_else(|| format!("rope scaling {s:?}: missing the original context L0"))?
                .parse::<u32>()
                .map_err(|e| format!("rope scaling {s:?}: {e}"))
        };
        Ok(match parts[0] {
            "none" => RopeScaling::None,
            "linear" => RopeScaling::Linear { factor: num(1)? },
            "ntk" => RopeScaling::Ntk { factor: num(1)? },
            "yarn" => RopeScaling::Yarn {
                factor: num(1)?,
                original: len(2)?,
            },
            "llama3" => RopeScaling::Llama3 {
                factor: num(1)?,
                original: len(2)?,
            },
            other => {
                return Err(format!(
                    "unknown rope scaling {other:?}: use none, linear:S, ntk:S, yarn:S:L0 or llama3:S:L0"
                ))
            }
        })
    }

    /// The core's scaling.
    pub fn core(&self) -> Scaling<'static> {
        match *self {
            RopeScaling::None => Scaling::Default,
            RopeScaling::Linear { factor } => Scaling::Linear { factor },
            RopeScaling::Ntk { factor } => Scaling::Ntk { factor },
            RopeScaling::Yarn { factor, original } => Scaling::Yarn(Yarn::new(factor, original)),
            RopeScaling::Llama3 { factor, original } => Scaling::Llama3(Llama3 {
                factor,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: original,
            }),
        }
    }
}

/// How the model knows where a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Positions {
    /// margay's RoPE on queries and keys (the default).
    #[default]
    Rope,
    /// A learned absolute position embedding added to the token embedding, as nanoGPT
    /// (for comparing with its published losses).
    Learned,
}

/// The model's shape and positional encoding (stored in every checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Vocabulary size (from the corpus).
    pub vocab: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Width.
    pub n_embd: usize,
    /// Context length in training.
    pub block_size: usize,
    /// RoPE base.
    pub rope_base: f64,
    /// Rotated dims per head (even, ≤ head dim); `None`: all.
    pub rotary_dim: Option<usize>,
    /// RoPE scaling.
    pub rope_scaling: RopeScaling,
    /// RoPE or learned absolute positions.
    #[serde(default)]
    pub positions: Positions,
}

impl ModelConfig {
    /// Head dimension.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Checks the shape; the RoPE part is checked by building it with the core.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("vocab", self.vocab),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_embd", self.n_embd),
            ("block_size", self.block_size),
        ] {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(format!(
                "n_embd = {} is not a multiple of n_head = {}",
                self.n_embd, self.n_head
            ));
        }
        self.rope().map(|_| ())
    }

    /// The core RoPE this model uses.
    pub fn rope(&self) -> Result<margay::rope::Rope<512>, String> {
        let hd = self.head_dim();
        RopeConfig::new(hd)
            .rotary_dim(self.rotary_dim.unwrap_or(hd))
            .base(self.rope_base)
            .layout(Layout::HalfSplit)
            .scaling(self.rope_scaling.core())
            .build::<512>()
            .map_err(|e| format!("rope: {e}"))
    }

    /// Number of parameters.
    pub fn params(&self) -> usize {
        let d = self.n_embd;
        let wpe = match self.positions {
            Positions::Rope => 0,
            Positions::Learned => self.block_size * d,
        };
        self.vocab * d + wpe + self.n_layer * (12 * d * d + 2 * d) + d
    }

    /// Builds the model on `device`, initialised from margay's SplitMix64 seeded with
    /// `seed` on the host, so that every back end starts from the same weights.
    pub fn init<B: Backend>(&self, seed: u64, device: &B::Device) -> Result<Gpt<B>, String> {
        self.validate()?;
        let d = self.n_embd;
        let std = 0.02;
        let proj_std = 0.02 / ((2 * self.n_layer) as f64).sqrt();
        let mut rng = SplitMix64::new(seed);
        let mut normal = |shape: [usize; 2], std: f64| -> Param<Tensor<B, 2>> {
            let n = shape[0] * shape[1];
            let v: Vec<f32> = (0..n).map(|_| (gaussian(&mut rng) * std) as f32).collect();
            Param::from_data(TensorData::new(v, shape), device)
        };
        let mut lin = |i: usize, o: usize, std: f64| Linear {
            weight: normal([i, o], std),
            bias: None,
        };
        let blocks = (0..self.n_layer)
            .map(|_| Block {
                ln1: norm(d, device),
                qkv: lin(d, 3 * d, std),
                proj: lin(d, d, proj_std),
                ln2: norm(d, device),
                fc: lin(d, 4 * d, std),
                fc_proj: lin(4 * d, d, proj_std),
            })
            .collect();
        let mut rng = SplitMix64::new(seed ^ 0x00E5_BEDD);
        let v: Vec<f32> = (0..self.vocab * d)
            .map(|_| (gaussian(&mut rng) * std) as f32)
            .collect();
        let wte = Param::from_data(TensorData::new(v, [self.vocab, d]), device);
        let wpe = (self.positions == Positions::Learned).then(|| {
            let mut rng = SplitMix64::new(seed ^ 0x0905_1710);
            let v: Vec<f32> = (0..self.block_size * d)
                .map(|_| (gaussian(&mut rng) * std) as f32)
                .collect();
            Param::from_data(TensorData::new(v, [self.block_size, d]), device)
        });
        Ok(Gpt {
            wte,
            wpe,
            blocks,
            ln_f: norm(d, device),
            n_head: self.n_head,
        })
    }
}

/// RMSNorm with gain 1 and ε = 1e-5.
fn norm<B: Backend>(d: usize, device: &B::Device) -> RmsNorm<B> {
    RmsNorm {
        gamma: Param::from_data(TensorData::new(vec![1.0f32; d], [d]), device),
        epsilon: 1e-5,
    }
}

/// A standard normal draw (Box–Muller on two 24-bit uniforms).
fn gaussian(rng: &mut SplitMix64) -> f64 {
    let u1 = (rng.next_f32() as f64 + 0.5 / 16_777_216.0).min(1.0);
    let u2 = rng.next_f32() as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// One transformer block.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    ln1: RmsNorm<B>,
    qkv: Linear<B>,
    proj: Linear<B>,
    ln2: RmsNorm<B>,
    fc: Linear<B>,
    fc_proj: Linear<B>,
}

/// The whole model.
#[derive(Module, Debug)]
pub struct Gpt<B: Backend> {
    wte: Param<Tensor<B, 2>>,
    wpe: Option<Param<Tensor<B, 2>>>,
    blocks: Vec<Block<B>>,
    ln_f: RmsNorm<B>,
    n_head: usize,
}

/// cos/sin tables from margay's core RoPE for positions `0..len` (not trained; rebuilt
/// from the config on load).
#[derive(Debug, Clone)]
pub struct RopeCache<B: Backend> {
    cos: Tensor<B, 2>,
    sin: Tensor<B, 2>,
    rotary: usize,
    enabled: bool,
}

impl<B: Backend> RopeCache<B> {
    /// Tables for positions `0..len` of `cfg`'s RoPE.
    pub fn new(cfg: &ModelConfig, len: usize, device: &B::Device) -> Result<Self, String> {
        let rope = cfg.rope()?;
        let pairs = rope.rotary_dim() / 2;
        let (mut cos, mut sin) = (vec![0f32; len * pairs], vec![0f32; len * pairs]);
        for p in 0..len {
            let r = p * pairs..(p + 1) * pairs;
            rope.cos_sin(p as i32, &mut cos[r.clone()], &mut sin[r])
                .map_err(|e| format!("rope: {e}"))?;
        }
        let t = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [len, pairs]), device);
        Ok(RopeCache {
            cos: t(cos),
            sin: t(sin),
            rotary: rope.rotary_dim(),
            enabled: cfg.positions == Positions::Rope,
        })
    }

    /// Rotates `x: [batch, heads, seq, head_dim]`, position = index along `seq`; half-split
    /// pairs `(i, i + r/2)`, dims past `r` unchanged. Same operations as the core's
    /// `Rope::apply` (`a' = a·cos − b·sin`, `b' = b·cos + a·sin`). The identity for a model
    /// with learned positions.
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if !self.enabled {
            return x;
        }
        let [_, _, t, hd] = x.dims();
        let half = self.rotary / 2;
        let cos = self.cos.clone().narrow(0, 0, t).reshape([1, 1, t, half]);
        let sin = self.sin.clone().narrow(0, 0, t).reshape([1, 1, t, half]);
        let a = x.clone().narrow(3, 0, half);
        let b = x.clone().narrow(3, half, half);
        let a2 = a.clone() * cos.clone() - b.clone() * sin.clone();
        let b2 = b * cos + a * sin;
        let mut parts = vec![a2, b2];
        if self.rotary < hd {
            parts.push(x.narrow(3, self.rotary, hd - self.rotary));
        }
        Tensor::cat(parts, 3)
    }
}

impl<B: Backend> Block<B> {
    fn forward(&self, x: Tensor<B, 3>, n_head: usize, rope: &RopeCache<B>) -> Tensor<B, 3> {
        let [b, t, d] = x.dims();
        let hd = d / n_head;
        let qkv = self.qkv.forward(self.ln1.forward(x.clone()));
        let heads = |i: usize| {
            qkv.clone()
                .narrow(2, i * d, d)
                .reshape([b, t, n_head, hd])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (rope.apply(heads(0)), rope.apply(heads(1)), heads(2));
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (hd as f64).sqrt());
        // `tril_mask` is true above the diagonal: the future positions.
        let mask = Tensor::<B, 2, Bool>::tril_mask([t, t], 0, &scores.device())
            .reshape([1, 1, t, t])
            .expand([b, n_head, t, t]);
        let att = softmax(scores.mask_fill(mask, f32::NEG_INFINITY), 3);
        let y = att.matmul(v).swap_dims(1, 2).reshape([b, t, d]);
        let x = x + self.proj.forward(y);
        let h = self
            .fc_proj
            .forward(gelu(self.fc.forward(self.ln2.forward(x.clone()))));
        x + h
    }
}

impl<B: Backend> Gpt<B> {
    /// Logits `[batch, seq, vocab]` for token ids `[batch, seq]` (seq ≤ the cache length).
    pub fn forward(&self, idx: Tensor<B, 2, Int>, rope: &RopeCache<B>) -> Tensor<B, 3> {
        let [_, t] = idx.dims();
        let mut x = burn::tensor::module::embedding(self.wte.val(), idx);
        if let Some(wpe) = &self.wpe {
            let d = wpe.dims()[1];
            x = x + wpe.val().narrow(0, 0, t).reshape([1, t, d]);
        }
        for blk in &self.blocks {
            x = blk.forward(x, self.n_head, rope);
        }
        let x = self.ln_f.forward(x);
        let [b, t, d] = x.dims();
        let v = self.wte.dims()[0];
        x.reshape([b * t, d])
            .matmul(self.wte.val().transpose())
            .reshape([b, t, v])
    }

    /// Mean cross-entropy of next-character prediction (natural log), shape `[1]`.
    pub fn loss(
        &self,
        idx: Tensor<B, 2, Int>,
        targets: Tensor<B, 2, Int>,
        rope: &RopeCache<B>,
    ) -> Tensor<B, 1> {
        let logits = self.forward(idx, rope);
        let [b, t, v] = logits.dims();
        let logp = log_softmax(logits.reshape([b * t, v]), 1);
        let picked = logp.gather(1, targets.reshape([b * t, 1]));
        picked.mean().neg()
    }
}
