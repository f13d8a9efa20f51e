//! Kinds `muon` (PyTorch's `Muon`) and `zo` (MeZO / SPSA zeroth-order steps with explicit z).

use super::{field, mat64, num, to32, tolerance, tolerance_at, vec64, Checker, Outcome};
use margay::optim::{
    AdjustLr, Estimator, Explicit, MuonConfig, Optimizer, Perturbation, SgdConfig, Stage,
    TensorSpec, ZoConfig, ZoStatus,
};
use serde_json::Value;

fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    field(v, key)?
        .as_str()
        .ok_or_else(|| format!("`{key}` must be a string"))
}

fn count(v: &Value, key: &str) -> Result<usize, String> {
    field(v, key)?
        .as_u64()
        .map(|x| x as usize)
        .ok_or_else(|| format!("`{key}` must be a non-negative integer"))
}

/// `[[[...]]]`: one matrix per step.
fn cube(v: &Value, key: &str) -> Result<Vec<Vec<Vec<f64>>>, String> {
    let arr = field(v, key)?
        .as_array()
        .ok_or_else(|| format!("`{key}` must be an array"))?;
    arr.iter()
        .enumerate()
        .map(|(t, step)| {
            mat64(&serde_json::json!({ "m": step }), "m").map_err(|e| format!("`{key}[{t}]`: {e}"))
        })
        .collect()
}

pub(super) fn run_muon(case: &Value) -> Result<Outcome, String> {
    let alg = str_field(case, "algorithm")?;
    if alg != "muon" {
        return Ok(Outcome::fail(format!(
            "algorithm `{alg}` is not implemented"
        )));
    }
    let cfg = field(case, "config")?;
    let shape = vec64(case, "shape")?;
    let [rows, cols] = shape[..] else {
        return Err(format!("`shape` must be [rows, cols], got {shape:?}"));
    };
    let (rows, cols) = (rows as usize, cols as usize);
    let coef = vec64(cfg, "ns_coefficients")?;
    let [a, b, c] = coef[..] else {
        return Err("`ns_coefficients` must hold three numbers".into());
    };
    let adjust_lr = match str_field(cfg, "adjust_lr")? {
        "original" => AdjustLr::Original,
        "match_rms_adamw" => AdjustLr::MatchRmsAdamW,
        other => {
            return Ok(Outcome::fail(format!(
                "adjust_lr `{other}` is not implemented"
            )))
        }
    };
    let muon = MuonConfig {
        lr: num(cfg, "lr")? as f32,
        momentum: num(cfg, "momentum")? as f32,
        nesterov: field(cfg, "nesterov")?
            .as_bool()
            .ok_or("`nesterov` must be a boolean")?,
        weight_decay: num(cfg, "weight_decay")? as f32,
        ns_steps: count(cfg, "ns_steps")? as u32,
        ns_coefficients: [a as f32, b as f32, c as f32],
        eps: num(cfg, "eps")? as f32,
        adjust_lr,
    }
    .build();
    let muon = match muon {
        Ok(m) => m,
        Err(e) => return Ok(Outcome::fail(e.to_string())),
    };
    let spec = TensorSpec::matrix(rows, cols);
    let n = rows * cols;
    let mut p = to32(&vec64(case, "params")?);
    let grads = mat64(case, "grads")?;
    let expected = mat64(case, "expected")?;
    let orth = mat64(case, "orthogonalized")?;
    let (tol, tol_x) = (
        tolerance(case)?,
        tolerance_at(case, "orthogonalized_tolerance")?,
    );
    if expected.len() != grads.len() || orth.len() != grads.len() {
        return Err("`grads`, `expected` and `orthogonalized` differ in steps".into());
    }
    let mut state = vec![0.0f32; muon.state_len(&spec)];
    let mut chk = Checker::new();
    for (t, g) in grads.iter().enumerate() {
        let mut g = to32(g);
        if let Err(e) = muon.update(
            &(),
            muon.at(t as u64 + 1),
            &spec,
            &mut p,
            &mut g,
            &mut state,
        ) {
            return Ok(Outcome::fail(format!("step {}: {e}", t + 1)));
        }
        chk.check(&format!("step {}", t + 1), &p, &expected[t], tol);
        // The step's Newton–Schulz output stays in the state right after the momentum B.
        chk.check(
            &format!("step {} orthogonalized", t + 1),
            &state[n..2 * n],
            &orth[t],
            tol_x,
        );
    }
    Ok(chk.finish())
}

/// `½·Σ a(θ − c)²` in f32, in index order.
fn quadratic(theta: &[f32], a: &[f32], c: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for ((&t, &a), &c) in theta.iter().zip(a).zip(c) {
        let d = t - c;
        s += 0.5 * a * d * d;
    }
    s
}

pub(super) fn run_zo(case: &Value) -> Result<Outcome, String> {
    let base = str_field(case, "base")?;
    let perturbation = match str_field(case, "perturbation")? {
        "two_side" => Perturbation::TwoSided,
        "one_side" => Perturbation::OneSided,
        other => {
            return Ok(Outcome::fail(format!(
                "perturbation `{other}` is not implemented"
            )))
        }
    };
    let cfg = field(case, "config")?;
    let (lr, wd) = (num(cfg, "lr")? as f32, num(cfg, "weight_decay")? as f32);
    let (estimator, momentum) = match base {
        "sgd" => (Estimator::Projected, 0.0),
        "sgd_momentum" => (Estimator::Projected, num(cfg, "momentum")? as f32),
        "sign" => (Estimator::Sign, 0.0),
        other => return Ok(Outcome::fail(format!("base `{other}` is not implemented"))),
    };
    let zo = ZoConfig {
        eps: num(case, "eps")? as f32,
        samples: count(case, "samples")? as u32,
        perturbation,
        estimator,
        ..ZoConfig::default()
    }
    .build();
    let sgd = SgdConfig {
        lr,
        momentum,
        weight_decay: wd,
    }
    .build();
    let (zo, sgd) = match (zo, sgd) {
        (Ok(z), Ok(s)) => (z, s),
        (Err(e), _) | (_, Err(e)) => return Ok(Outcome::fail(e.to_string())),
    };
    let mut theta = to32(&vec64(case, "params")?);
    let (a, c) = (to32(&vec64(case, "a")?), to32(&vec64(case, "c")?));
    let d = theta.len();
    if a.len() != d || c.len() != d {
        return Err(format!(
            "`a`, `c` and `params` differ in length ({}, {}, {d})",
            a.len(),
            c.len()
        ));
    }
    let z: Vec<Vec<Vec<f32>>> = cube(case, "z")?
        .iter()
        .map(|s| s.iter().map(|v| to32(v)).collect())
        .collect();
    let pgs = mat64(case, "projected_grads")?;
    let losses = cube(case, "losses")?;
    let expected = mat64(case, "expected")?;
    let (tol, tol_pg, tol_f) = (
        tolerance(case)?,
        tolerance_at(case, "projected_grads_tolerance")?,
        tolerance_at(case, "losses_tolerance")?,
    );
    if [pgs.len(), losses.len(), expected.len()] != [z.len(); 3] {
        return Err("`z`, `projected_grads`, `losses` and `expected` differ in steps".into());
    }
    let mut m = vec![0.0f32; sgd.momentum_len(d)];
    let mut chk = Checker::new();
    for (t, zt) in z.iter().enumerate() {
        if zt.iter().any(|v| v.len() != d) {
            return Err(format!("`z[{t}]` holds a vector whose length is not {d}"));
        }
        let views: Vec<&[f32]> = zt.iter().map(|v| v.as_slice()).collect();
        let dirs = Explicit::new(&views, 1).map_err(|e| e.to_string())?;
        let est = zo.estimate(&dirs, &mut [&mut theta[..]], |p| quadratic(p[0], &a, &c));
        if est.status() != ZoStatus::Estimated {
            return Ok(Outcome::fail(format!("step {}: {:?}", t + 1, est.status())));
        }
        chk.check(
            &format!("step {} projected_grads", t + 1),
            est.projected(),
            &pgs[t],
            tol_pg,
        );
        let flat: Vec<f32> = est.losses().iter().flatten().copied().collect();
        let want: Vec<f64> = losses[t].iter().flatten().copied().collect();
        chk.check(&format!("step {} losses", t + 1), &flat, &want, tol_f);
        if let Err(e) = est.sgd_step(&dirs, &sgd, sgd.at(t as u64 + 1), 0, &mut theta, &mut m) {
            return Ok(Outcome::fail(format!("step {}: {e}", t + 1)));
        }
        chk.check(&format!("step {}", t + 1), &theta, &expected[t], tol);
    }
    Ok(chk.finish())
}
