//! The one table of (algorithm, config) pairs that the shared checks run through, and the
//! test problems they run on (from `margay_host::demo`).

use half::bf16;
use margay::optim::{LrMode, TigerConfig};
use margay_host::demo::{demo_adamw, demo_lion, demo_tiger};
pub use margay_host::demo::{
    run, AdaXRun, AdafactorRun, AdamWAccumRun, AdamWRun, CautiousLionRun, LionRun, Optimizer,
    Problem, Quadratic, Rosenbrock, SgdmRun, TigerRun,
};

/// One row of the table: a fresh optimizer for dimension `n`, and its base lr.
pub struct Entry {
    /// Row name.
    pub name: &'static str,
    /// Base learning rate for the convergence checks.
    pub lr: f32,
    /// Builds the optimizer with zeroed state for `n` parameters.
    pub make: fn(n: usize) -> Box<dyn Optimizer>,
}

/// Every optimizer configuration margay tests the same way.
pub fn table() -> Vec<Entry> {
    vec![
        Entry {
            name: "lion",
            lr: 1e-2,
            make: |n| Box::new(LionRun(demo_lion().build().unwrap(), vec![0.0f32; n])),
        },
        Entry {
            name: "lion-bf16",
            lr: 1e-2,
            make: |n| Box::new(LionRun(demo_lion().build().unwrap(), vec![bf16::ZERO; n])),
        },
        Entry {
            name: "tiger",
            lr: 1e-2,
            make: |n| Box::new(TigerRun(tiger(1), vec![0.0f32; n])),
        },
        Entry {
            name: "tiger-bf16",
            lr: 1e-2,
            make: |n| Box::new(TigerRun(tiger(1), vec![bf16::ZERO; n])),
        },
        Entry {
            name: "tiger-k4",
            lr: 1e-2,
            make: |n| Box::new(TigerRun(tiger(4), vec![0.0f32; n])),
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
                Box::new(TigerRun(c.build().unwrap(), vec![0.0f32; n]))
            },
        },
        Entry {
            name: "adamw",
            lr: 5e-2,
            make: |n| Box::new(AdamWRun(adamw(), vec![0.0f32; n], vec![0.0; n])),
        },
        Entry {
            name: "adaxw",
            lr: 5e-2,
            make: |n| {
                let c = margay::optim::AdaXConfig {
                    weight_decay: 0.0,
                    ..margay::optim::AdaXConfig::new(5e-2)
                };
                Box::new(AdaXRun(c.build().unwrap(), vec![0.0f32; n], vec![0.0; n]))
            },
        },
        Entry {
            name: "adax-l2",
            lr: 5e-2,
            make: |n| {
                let c = margay::optim::AdaXConfig {
                    weight_decay: 0.0,
                    ..margay::optim::AdaXConfig::l2(5e-2)
                };
                Box::new(AdaXRun(c.build().unwrap(), vec![0.0f32; n], vec![0.0; n]))
            },
        },
        Entry {
            name: "lion-cautious",
            lr: 1e-2,
            make: |n| {
                let k = margay::optim::Cautious::new(0.0).unwrap();
                Box::new(CautiousLionRun(
                    demo_lion().build().unwrap(),
                    k,
                    vec![0.0f32; n],
                ))
            },
        },
        Entry {
            name: "adamw-accum-k2",
            lr: 5e-2,
            make: |n| {
                let c = margay::optim::AdamWAccumConfig {
                    accumulation: 2,
                    ..margay::optim::AdamWAccumConfig::new(demo_adamw())
                };
                Box::new(AdamWAccumRun(
                    c.build().unwrap(),
                    vec![0.0f32; n],
                    vec![0.0; n],
                ))
            },
        },
        Entry {
            name: "adafactor",
            lr: 5e-2,
            make: |n| {
                let c = margay::optim::AdafactorConfig::new(5e-2);
                Box::new(AdafactorRun(c.build().unwrap(), vec![0.0f32; n]))
            },
        },
        Entry {
            name: "sgdm-k4",
            lr: 8e-3,
            make: |n| {
                let c = margay::optim::SgdmConfig {
                    accumulation: 4,
                    ..margay::optim::SgdmConfig::new(8e-3)
                };
                Box::new(SgdmRun(c.build().unwrap(), vec![0.0f32; n]))
            },
        },
        Entry {
            name: "adamw-bf16-m",
            lr: 5e-2,
            make: |n| Box::new(AdamWRun(adamw(), vec![bf16::ZERO; n], vec![0.0; n])),
        },
    ]
}

fn tiger(k: u32) -> margay::optim::Tiger {
    demo_tiger(k).build().unwrap()
}

fn adamw() -> margay::optim::AdamW {
    demo_adamw().build().unwrap()
}
