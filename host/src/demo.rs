//! A short demonstration of the core optimizers on two test problems.

use margay::optim::{AdamW, AdamWConfig, LionConfig, Moment, Step, TensorSpec, TigerConfig};

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

/// An optimizer together with its state for one tensor, as the demo and the shared table
/// drive it.
pub trait Runner {
    /// Name shown in tables.
    fn name(&self) -> String;
    /// One step at index `t` (1-based) with learning rate `lr`.
    fn step(&mut self, t: u64, lr: f32, x: &mut [f32], g: &[f32]);
    /// Every state value, as f32.
    fn state(&self) -> Vec<f32>;
}

/// Any optimizer of the core's [`margay::optim::Optimizer`] interface (a chain too) on one
/// vector, with its state in storage `M`: one round per step (observe phase included).
pub struct Run<O, M> {
    name: String,
    opt: O,
    spec: TensorSpec,
    state: Vec<M>,
    grads: Vec<f32>,
}

impl<M: Moment, O: margay::optim::Optimizer<M>> Run<O, M> {
    /// `opt` on a vector of `n` parameters, its state set by the optimizer's `init`.
    pub fn new(name: impl Into<String>, opt: O, n: usize) -> Self {
        let spec = TensorSpec::vector(n);
        let mut state = vec![M::default(); opt.state_len(&spec)];
        opt.init(&spec, &mut state);
        Run {
            name: format!("{}/{}", name.into(), storage::<M>()),
            opt,
            spec,
            state,
            grads: vec![0.0; n],
        }
    }

    /// [`Run::new`], boxed for a table.
    pub fn boxed(name: impl Into<String>, opt: O, n: usize) -> Box<dyn Runner>
    where
        O: 'static,
    {
        Box::new(Self::new(name, opt, n))
    }
}

impl<M: Moment, O: margay::optim::Optimizer<M>> Runner for Run<O, M> {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn step(&mut self, t: u64, lr: f32, x: &mut [f32], g: &[f32]) {
        // The interface rewrites gradients in place (a chain's transforms): work on a copy.
        self.grads.copy_from_slice(g);
        let mut round = self.opt.begin(0.0);
        self.opt.observe(&mut round, &self.spec, &self.grads);
        self.opt.finish(&mut round);
        self.opt
            .update(
                &round,
                step_ctx(t, lr),
                &self.spec,
                x,
                &mut self.grads,
                &mut self.state,
            )
            .expect("buffers sized by Run::new");
    }
    fn state(&self) -> Vec<f32> {
        self.state.iter().map(|m| m.load()).collect()
    }
}

/// AdamW with `m` in storage `M` and `v` in f32 (mixed storage: the direct step, which the
/// interface, one storage type per tensor, does not offer).
pub struct AdamWRun<M: Moment>(pub AdamW, pub Vec<M>, pub Vec<f32>);

fn storage<M: Moment>() -> &'static str {
    if M::BYTES == 2 {
        "bf16"
    } else {
        "f32"
    }
}

fn step_ctx(t: u64, lr: f32) -> Step {
    Step::new(t, lr).expect("learning rates from a schedule are finite and >= 0")
}

impl<M: Moment> Runner for AdamWRun<M> {
    fn name(&self) -> String {
        format!("adamw/{}+f32", storage::<M>())
    }
    fn step(&mut self, t: u64, lr: f32, x: &mut [f32], g: &[f32]) {
        self.0
            .step(step_ctx(t, lr), x, g, &mut self.1, &mut self.2)
            .expect("buffers sized by the caller");
    }
    fn state(&self) -> Vec<f32> {
        self.1
            .iter()
            .map(|m| m.load())
            .chain(self.2.iter().copied())
            .collect()
    }
}

/// The demo's Lion: defaults with lr 1e-2.
pub fn demo_lion() -> LionConfig {
    LionConfig::new(1e-2)
}

/// The demo's Tiger: lr 1e-2, no weight decay, `k` micro-steps per update.
pub fn demo_tiger(k: u32) -> TigerConfig {
    TigerConfig {
        weight_decay: 0.0,
        accumulation: k,
        ..TigerConfig::new(1e-2)
    }
}

/// The demo's AdamW: lr 5e-2, no weight decay.
pub fn demo_adamw() -> AdamWConfig {
    AdamWConfig {
        weight_decay: 0.0,
        ..AdamWConfig::new(5e-2)
    }
}

/// The demo's optimizers for a problem of dimension `n`, with their base learning rates.
pub fn runners(n: usize) -> Vec<(Box<dyn Runner>, f32)> {
    let (lion, tiger, adamw) = (demo_lion(), demo_tiger(1), demo_adamw());
    vec![
        (
            Run::<_, f32>::boxed("lion", lion.build().unwrap(), n),
            lion.lr,
        ),
        (
            Run::<_, f32>::boxed("tiger", tiger.build().unwrap(), n),
            tiger.lr,
        ),
        (
            Run::<_, f32>::boxed("adamw", adamw.build().unwrap(), n),
            adamw.lr,
        ),
    ]
}

/// Runs `steps` steps with a linear decay of the lr to 1% and returns the values at
/// `checkpoints` (step indices).
pub fn run(
    problem: &dyn Problem,
    runner: &mut dyn Runner,
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

/// One row of the bf16-vs-f32 state comparison.
pub struct Drift {
    /// Problem name.
    pub problem: &'static str,
    /// Optimizer family.
    pub optimizer: &'static str,
    /// Final loss with f32 state.
    pub loss_f32: f32,
    /// Final loss with bf16 state (AdamW: `m` in bf16, `v` in f32).
    pub loss_bf16: f32,
    /// Largest `|θ_bf16 − θ_f32|` over the run.
    pub max_param_diff: f32,
}

/// Runs each optimizer twice on each problem, once with f32 and once with bf16 moments,
/// from the same start with the same gradients schedule, and reports how far they drift.
pub fn bf16_drift(steps: u64) -> Vec<Drift> {
    use half::bf16;
    let problems: [&dyn Problem; 2] = [&Quadratic { dim: 64 }, &Rosenbrock];
    let mut rows = Vec::new();
    for p in problems {
        let n = p.dim();
        let (lion, tiger, adamw) = (demo_lion(), demo_tiger(1), demo_adamw());
        let (lr_lion, lr_tiger, lr_adamw) = (lion.lr, tiger.lr, adamw.lr);
        let (lion, tiger, adamw) = (
            lion.build().unwrap(),
            tiger.build().unwrap(),
            adamw.build().unwrap(),
        );
        type Pair = (&'static str, f32, Box<dyn Runner>, Box<dyn Runner>);
        let pairs: Vec<Pair> = vec![
            (
                "lion",
                lr_lion,
                Run::<_, f32>::boxed("lion", lion, n),
                Run::<_, bf16>::boxed("lion", lion, n),
            ),
            (
                "tiger",
                lr_tiger,
                Run::<_, f32>::boxed("tiger", tiger, n),
                Run::<_, bf16>::boxed("tiger", tiger, n),
            ),
            (
                "adamw",
                lr_adamw,
                Box::new(AdamWRun(adamw, vec![0.0f32; n], vec![0.0; n])),
                Box::new(AdamWRun(adamw, vec![bf16::ZERO; n], vec![0.0; n])),
            ),
        ];
        for (name, lr, mut a, mut b) in pairs {
            let (mut xa, mut xb) = (p.start(), p.start());
            let (mut ga, mut gb) = (vec![0.0; n], vec![0.0; n]);
            let mut max_diff = 0.0f32;
            for t in 1..=steps {
                p.eval(&xa, &mut ga);
                p.eval(&xb, &mut gb);
                let lr_t = lr * (1.0 - 0.99 * (t - 1) as f32 / steps as f32);
                a.step(t, lr_t, &mut xa, &ga);
                b.step(t, lr_t, &mut xb, &gb);
                for (u, v) in xa.iter().zip(&xb) {
                    max_diff = max_diff.max((u - v).abs());
                }
            }
            rows.push(Drift {
                problem: p.name(),
                optimizer: name,
                loss_f32: p.eval(&xa, &mut ga),
                loss_bf16: p.eval(&xb, &mut gb),
                max_param_diff: max_diff,
            });
        }
    }
    rows
}
