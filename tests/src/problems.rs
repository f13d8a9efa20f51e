//! The one table of (algorithm, config) pairs that the shared checks run through, and the
//! test problems they run on (from `margay_host::demo`).

use half::bf16;
use margay::optim::{
    AdaXConfig, AdafactorConfig, AdamWAccumConfig, CautiousStep, Chain, ClipConfig, ClipForm,
    EgStepSizeConfig, LrMode, SgdmConfig, TigerConfig,
};
use margay_host::demo::{demo_adamw, demo_lion, demo_tiger};
pub use margay_host::demo::{run, AdamWRun, Problem, Quadratic, Rosenbrock, Run, Runner};

/// One row of the table: a fresh optimizer for dimension `n`, and its base lr.
pub struct Entry {
    /// Row name.
    pub name: &'static str,
    /// Base learning rate for the convergence checks.
    pub lr: f32,
    /// Builds the optimizer with its state initialised for `n` parameters.
    pub make: fn(n: usize) -> Box<dyn Runner>,
}

/// Every optimizer configuration margay tests the same way. Each row but one runs through
/// the core's optimizer interface ([`Run`]); `adamw-bf16-m` keeps `v` in f32 beside a bf16
/// `m`, which only the direct step offers.
pub fn table() -> Vec<Entry> {
    vec![
        Entry {
            name: "lion",
            lr: 1e-2,
            make: |n| Run::<_, f32>::boxed("lion", demo_lion().build().unwrap(), n),
        },
        Entry {
            name: "lion-bf16",
            lr: 1e-2,
            make: |n| Run::<_, bf16>::boxed("lion", demo_lion().build().unwrap(), n),
        },
        Entry {
            name: "tiger",
            lr: 1e-2,
            make: |n| Run::<_, f32>::boxed("tiger", tiger(1), n),
        },
        Entry {
            name: "tiger-bf16",
            lr: 1e-2,
            make: |n| Run::<_, bf16>::boxed("tiger", tiger(1), n),
        },
        Entry {
            name: "tiger-k4",
            lr: 1e-2,
            make: |n| Run::<_, f32>::boxed("tiger-k4", tiger(4), n),
        },
        Entry {
            name: "tiger-inv-sqrt-dim",
            lr: 1e-2,
            make: |n| {
                let c = TigerConfig {
                    weight_decay: 0.0,
                    lr_mode: LrMode::InvSqrtDim { dim: 1 },
                    ..TigerConfig::new(1e-2)
                };
                Run::<_, f32>::boxed("tiger-inv-sqrt-dim", c.build().unwrap(), n)
            },
        },
        Entry {
            name: "adamw",
            lr: 5e-2,
            make: |n| Run::<_, f32>::boxed("adamw", adamw(), n),
        },
        Entry {
            name: "adaxw",
            lr: 5e-2,
            make: |n| {
                let c = AdaXConfig {
                    weight_decay: 0.0,
                    ..AdaXConfig::new(5e-2)
                };
                Run::<_, f32>::boxed("adaxw", c.build().unwrap(), n)
            },
        },
        Entry {
            name: "adax-l2",
            lr: 5e-2,
            make: |n| {
                let c = AdaXConfig {
                    weight_decay: 0.0,
                    ..AdaXConfig::l2(5e-2)
                };
                Run::<_, f32>::boxed("adax-l2", c.build().unwrap(), n)
            },
        },
        Entry {
            name: "lion-cautious",
            lr: 1e-2,
            make: |n| {
                let k = margay::optim::Cautious::new(0.0).unwrap();
                let opt = CautiousStep(demo_lion().build().unwrap(), k);
                Run::<_, f32>::boxed("lion-cautious", opt, n)
            },
        },
        Entry {
            name: "adamw-accum-k2",
            lr: 5e-2,
            make: |n| {
                let c = AdamWAccumConfig {
                    accumulation: 2,
                    ..AdamWAccumConfig::new(demo_adamw())
                };
                Run::<_, f32>::boxed("adamw-accum-k2", c.build().unwrap(), n)
            },
        },
        Entry {
            name: "adafactor",
            lr: 5e-2,
            make: |n| {
                let c = AdafactorConfig::new(5e-2);
                Run::<_, f32>::boxed("adafactor", c.build().unwrap(), n)
            },
        },
        Entry {
            name: "sgdm-k4",
            lr: 8e-3,
            make: |n| {
                let c = SgdmConfig {
                    accumulation: 4,
                    ..SgdmConfig::new(8e-3)
                };
                Run::<_, f32>::boxed("sgdm-k4", c.build().unwrap(), n)
            },
        },
        Entry {
            name: "adamw-bf16-m",
            lr: 5e-2,
            make: |n| Box::new(AdamWRun(adamw(), vec![bf16::ZERO; n], vec![0.0; n])),
        },
        Entry {
            name: "clip-tiger",
            lr: 1e-2,
            make: |n| {
                let clip = ClipConfig::new(1.0, ClipForm::Min).build().unwrap();
                Run::<_, f32>::boxed("clip-tiger", Chain(clip, tiger(1)), n)
            },
        },
        Entry {
            name: "clip-eg-lion",
            lr: 1e-2,
            make: |n| {
                let clip = ClipConfig::new(1.0, ClipForm::Smooth).build().unwrap();
                let eg = EgStepSizeConfig::new(0.01).build().unwrap();
                let opt = Chain((clip, eg), demo_lion().build().unwrap());
                Run::<_, f32>::boxed("clip-eg-lion", opt, n)
            },
        },
    ]
}

fn tiger(k: u32) -> margay::optim::Tiger {
    demo_tiger(k).build().unwrap()
}

fn adamw() -> margay::optim::AdamW {
    demo_adamw().build().unwrap()
}
