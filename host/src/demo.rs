//! A short demonstration of the core optimizers on two test problems.

use margay::optim::{AdamWConfig, LionConfig, LrMode, Step, TigerConfig};

/// A test problem: value and gradient at a point.
pub trait Problem {
    /// Name shown in the table.
    fn name(&self) -> &'static str;
    /// Dimension.
    fn dim(&self) -> usize;
    /// Starting point.
    fn start(&self) -> Vec<f32>;
    /// Value at `x`; writes the gradient into `g`.
    fn eval(&self, x: &[f32], g: &mut [f32]) -> f32;
}

/// `f(x) = ½·Σ cᵢ·xᵢ²` with condition number 100, minimum 0 at the origin.
pub struct Quadratic {
    /// Dimension.
    pub dim: usize,
}

impl Problem for Quadratic {
    fn name(&self) -> &'static str {
        "quadratic"
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn start(&self) -> Vec<f32> {
        (0..self.dim)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect()
    }
    fn eval(&self, x: &[f32], g: &mut [f32]) -> f32 {
        let n = self.dim.max(2) as f32 - 1.0;
        let mut f = 0.0;
        for (i, (&xi, gi)) in x.iter().zip(g.iter_mut()).enumerate() {
            let c = 1.0 + 99.0 * i as f32 / n;
            *gi = c * xi;
            f += 0.5 * c * xi * xi;
        }
        f
    }
}

/// Rosenbrock `f(x, y) = (1 − x)² + 100·(y − x²)²`, minimum 0 at (1, 1).
pub struct Rosenbrock;

impl Problem for Rosenbrock {
    fn name(&self) -> &'static str {
        "rosenbrock"
    }
    fn dim(&self) -> usize {
        2
    }
    fn start(&self) -> Vec<f32> {
        vec![-1.2, 1.0]
    }
    fn eval(&self, x: &[f32], g: &mut [f32]) -> f32 {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        (1.0 - a) * (1.0 - a) + 100.0 * (b - a * a) * (b - a * a)
    }
}

/// An optimizer with its state, stepping one tensor.
pub enum Runner {
    /// Lion with its momentum.
    Lion(margay::optim::Lion, Vec<f32>),
    /// Tiger with its momentum.
    Tiger(margay::optim::Tiger, Vec<f32>),
    /// AdamW with both moments.
    AdamW(margay::optim::AdamW, Vec<f32>, Vec<f32>),
}

impl Runner {
    /// Name shown in the table.
    pub fn name(&self) -> &'static str {
        match self {
            Runner::Lion(..) => "lion",
            Runner::Tiger(..) => "tiger",
            Runner::AdamW(..) => "adamw",
        }
    }

    /// One step at index `t` with learning rate `lr`.
    pub fn step(&mut self, t: u64, lr: f32, x: &mut [f32], g: &[f32]) {
        let s = Step::new(t, lr).expect("demo learning rates are valid");
        let r = match self {
            Runner::Lion(o, m) => o.step(s, x, g, m),
            Runner::Tiger(o, m) => o.step(s, x, g, m).map(|_| ()),
            Runner::AdamW(o, m, v) => o.step(s, x, g, m, v),
        };
        r.expect("demo buffers have equal lengths");
    }
}

/// The demo's optimizers for a problem of dimension `n`.
pub fn runners(n: usize) -> Vec<(Runner, f32)> {
    let tiger = TigerConfig {
        weight_decay: 0.0,
        lr_mode: LrMode::Absolute,
        ..TigerConfig::new(1e-2)
    };
    let lion = LionConfig {
        beta1: 0.9,
        beta2: 0.99,
        ..LionConfig::new(1e-2)
    };
    let adamw = AdamWConfig {
        weight_decay: 0.0,
        ..AdamWConfig::new(5e-2)
    };
    vec![
        (Runner::Lion(lion.build().unwrap(), vec![0.0; n]), lion.lr),
        (
            Runner::Tiger(tiger.build().unwrap(), vec![0.0; n]),
            tiger.lr,
        ),
        (
            Runner::AdamW(adamw.build().unwrap(), vec![0.0; n], vec![0.0; n]),
            adamw.lr,
        ),
    ]
}

/// Runs `steps` steps with a linear decay of the lr to 1% and returns the values at
/// `checkpoints` (step indices).
pub fn run(
    problem: &dyn Problem,
    runner: &mut Runner,
    lr: f32,
    steps: u64,
    checkpoints: &[u64],
) -> Vec<f32> {
    let mut x = problem.start();
    let mut g = vec![0.0; problem.dim()];
    let mut out = Vec::new();
    for t in 1..=steps {
        problem.eval(&x, &mut g);
        let frac = (t - 1) as f32 / steps as f32;
        runner.step(t, lr * (1.0 - 0.99 * frac), &mut x, &g);
        if checkpoints.contains(&t) {
            out.push(problem.eval(&x, &mut g));
        }
    }
    out
}
