//! The shared checks: every (algorithm, config) in `margay_tests::problems::table()` runs
//! through the same convergence, finiteness and determinism checks.

use margay_tests::problems::{run, table, Problem, Quadratic, Rosenbrock};

const STEPS: u64 = 3000;

fn check_converges(problem: &dyn Problem, threshold: f32) {
    let mut failures = Vec::new();
    for e in table() {
        let mut opt = (e.make)(problem.dim());
        let start = problem.eval(&problem.start(), &mut vec![0.0; problem.dim()]);
        let vals = run(problem, opt.as_mut(), e.lr, STEPS, &[STEPS]);
        let end = vals[0];
        let finite = opt.state().iter().all(|x| x.is_finite());
        let converged = end.is_finite() && end <= threshold * start;
        if !converged || !finite {
            failures.push(format!(
                "{}: {start} -> {end} (state finite: {finite})",
                e.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}: {failures:#?}", problem.name());
}

#[test]
fn every_optimizer_converges_on_an_ill_conditioned_quadratic() {
    check_converges(&Quadratic { dim: 32 }, 1e-4);
}

#[test]
fn every_optimizer_converges_on_rosenbrock() {
    check_converges(&Rosenbrock, 1e-3);
}

#[test]
fn every_optimizer_is_deterministic() {
    let p = Rosenbrock;
    for e in table() {
        let a = run(&p, (e.make)(2).as_mut(), e.lr, 500, &[100, 500]);
        let b = run(&p, (e.make)(2).as_mut(), e.lr, 500, &[100, 500]);
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "{}",
            e.name
        );
    }
}
