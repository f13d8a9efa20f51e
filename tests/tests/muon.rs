//! Muon (`margay::optim::Muon`) against `torch.optim.Muon`'s golden vectors
//! (`tests/vectors/muon.json`, a copy of `../shared/vectors/muon.json`, kind `muon`, format in that folder's README): every case,
//! every step, the parameters within `tolerance` and the Newton–Schulz output within
//! `orthogonalized_tolerance`; plus the properties the issue names.

use margay::optim::{AdjustLr, MuonConfig, Optimizer, Stage, TensorSpec};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/muon.json");
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}; tests/vectors ships muon.json"));
    serde_json::from_str(&text).expect("muon.json parses")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn within(got: &[f32], want: &[f32], tol: &Value, what: &str) {
    let (abs, rel) = (tol["abs"].as_f64().unwrap(), tol["rel"].as_f64().unwrap());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w as f64).abs();
        assert!(
            err <= abs + rel * (w as f64).abs(),
            "{what} [{i}]: {g} vs {w} (err {err:e})"
        );
    }
}

#[test]
fn muon_matches_torch_on_every_golden_case() {
    let v = vectors();
    assert_eq!(v["kind"], "muon");
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 14);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let cfg = &c["config"];
        let (rows, cols) = (
            c["shape"][0].as_u64().unwrap() as usize,
            c["shape"][1].as_u64().unwrap() as usize,
        );
        let coef = floats(&cfg["ns_coefficients"]);
        let muon = MuonConfig {
            lr: cfg["lr"].as_f64().unwrap() as f32,
            momentum: cfg["momentum"].as_f64().unwrap() as f32,
            nesterov: cfg["nesterov"].as_bool().unwrap(),
            weight_decay: cfg["weight_decay"].as_f64().unwrap() as f32,
            ns_steps: cfg["ns_steps"].as_u64().unwrap() as u32,
            ns_coefficients: [coef[0], coef[1], coef[2]],
            eps: cfg["eps"].as_f64().unwrap() as f32,
            adjust_lr: match cfg["adjust_lr"].as_str().unwrap() {
                "original" => AdjustLr::Original,
                "match_rms_adamw" => AdjustLr::MatchRmsAdamW,
                other => panic!("{name}: unknown adjust_lr {other}"),
            },
        }
        .build()
        .unwrap();
        let spec = TensorSpec::matrix(rows, cols);
        let mut p = floats(&c["params"]);
        let mut state = vec![0.0f32; muon.state_len(&spec)];
        let n = rows * cols;
        for (t, g) in c["grads"].as_array().unwrap().iter().enumerate() {
            let mut g = floats(g);
            muon.update(
                &(),
                muon.at(t as u64 + 1),
                &spec,
                &mut p,
                &mut g,
                &mut state,
            )
            .unwrap();
            within(
                &p,
                &floats(&c["expected"][t]),
                &c["tolerance"],
                &format!("{name} step {}", t + 1),
            );
            // The step's Newton–Schulz output stays in the state's scratch right after B.
            within(
                &state[n..2 * n],
                &floats(&c["orthogonalized"][t]),
                &c["orthogonalized_tolerance"],
                &format!("{name} step {} orthogonalized", t + 1),
            );
        }
    }
}

/// One value changed in the golden file is caught (the check above is not vacuous).
#[test]
fn a_changed_golden_value_fails_the_check() {
    let v = vectors();
    let c = &v["cases"][0];
    let mut want = floats(&c["expected"][0]);
    want[3] += 1e-3;
    let r = std::panic::catch_unwind(|| {
        within(&floats(&c["expected"][0]), &want, &c["tolerance"], "x")
    });
    assert!(r.is_err());
}

/// Muon's step depends on the gradient only through the normalised momentum: scaling every
/// gradient by a power of two (exact in f32) leaves the step bit for bit the same.
#[test]
fn scaling_the_gradient_by_a_power_of_two_leaves_the_step_bit_identical() {
    let muon = MuonConfig::new(0.02).build().unwrap();
    let spec = TensorSpec::matrix(4, 6);
    let g0: Vec<f32> = (0..24)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
        .collect();
    let run = |scale: f32| {
        let mut p = vec![0.5f32; 24];
        let mut st = vec![0.0f32; muon.state_len(&spec)];
        for t in 1..4 {
            let mut g: Vec<f32> = g0.iter().map(|x| x * scale * t as f32).collect();
            muon.update(&(), muon.at(t), &spec, &mut p, &mut g, &mut st)
                .unwrap();
        }
        p.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    };
    let base = run(1.0);
    for s in [0.25f32, 4.0, 1024.0] {
        assert_eq!(run(s), base, "scale {s}");
    }
}

/// With σ_min/‖U‖_F ≥ 1e-2 (here ≈ 0.09), the 5-step quintic's singular values lie in
/// [0.68, 1.14]: U = R·diag(1, 0.5, 0.1) with R a rotation, so X = R·diag(f(σᵢ)) and XᵀX's
/// diagonal holds the squared singular values.
#[test]
fn the_quintic_leaves_singular_values_near_one() {
    let muon = MuonConfig::new(0.02).build().unwrap();
    // U = diag(1, 0.5, 0.1) ⊕ a rotation: singular values 1, 0.5, 0.1 (σ_min/‖U‖_F ≈ 0.09).
    let (rows, cols) = (3, 3);
    let (c, s) = (0.6f32, 0.8f32);
    let d = [1.0f32, 0.5, 0.1];
    let mut u = [0.0f32; 9];
    for i in 0..3 {
        for j in 0..3 {
            // rotation about the z axis times diag(d)
            let r = match (i, j) {
                (0, 0) => c,
                (0, 1) => -s,
                (1, 0) => s,
                (1, 1) => c,
                (2, 2) => 1.0,
                _ => 0.0,
            };
            u[i * 3 + j] = r * d[j];
        }
    }
    let mut x = [0.0f32; 9];
    let mut scratch = vec![0.0f32; margay::optim::ns_scratch_len(rows, cols)];
    muon.orthogonalize(&u, rows, cols, &mut x, &mut scratch)
        .unwrap();
    for j in 0..3 {
        let sq: f32 = (0..3).map(|i| x[i * 3 + j] * x[i * 3 + j]).sum();
        let sigma = sq.sqrt();
        assert!((0.68..=1.14).contains(&sigma), "σ_{j} = {sigma}");
    }
}

/// The MuonWithAuxAdam preset: hidden matrices step exactly as bare Muon, the embedding, the
/// head and vectors exactly as the auxiliary's group at its own lr (times the same schedule).
#[test]
fn muon_with_aux_routes_by_kind_with_the_bare_optimizers_bits() {
    use margay::optim::{AdamWConfig, Grouped, MuonWithAux, ParamKind, TigerConfig};
    let muon = MuonConfig::new(0.02).build().unwrap();
    let aux = Grouped::build(4, |k| AdamWConfig::new(3e-4).preset(k).build()).unwrap();
    let opt = MuonWithAux::new(muon, aux).unwrap();
    let specs = [
        (TensorSpec::matrix(3, 4), true),
        (TensorSpec::matrix(1, 4), true),
        (
            TensorSpec::matrix(6, 4).with_kind(ParamKind::Embedding { cols: 4 }),
            false,
        ),
        (TensorSpec::matrix(4, 6).with_kind(ParamKind::Head), false),
        (TensorSpec::vector(4).with_kind(ParamKind::Bias), false),
        (TensorSpec::vector(4).with_kind(ParamKind::NormGain), false),
        (TensorSpec::vector(4), false),
    ];
    for (spec, to_muon) in specs {
        assert_eq!(opt.routes_to_muon(&spec), to_muon, "{spec:?}");
        let n = spec.len();
        let g0: Vec<f32> = (0..n).map(|i| (i as f32 - 5.0) / 9.0).collect();
        let (mut p1, mut p2) = (vec![0.3f32; n], vec![0.3f32; n]);
        let mut s1 = vec![0.0f32; opt.state_len(&spec)];
        for t in 1..=3u64 {
            // A schedule factor of ½ at step 3: both groups scale together.
            let f = if t == 3 { 0.5 } else { 1.0 };
            let step = margay::optim::Step::new(t, 0.02 * f).unwrap();
            opt.update(&(), step, &spec, &mut p1, &mut g0.clone(), &mut s1)
                .unwrap();
        }
        // The same three steps on the bare optimizer.
        let mut s2 = vec![
            0.0f32;
            if to_muon {
                muon.state_len(&spec)
            } else {
                aux.state_len(&spec)
            }
        ];
        for t in 1..=3u64 {
            let f = if t == 3 { 0.5 } else { 1.0 };
            if to_muon {
                let step = margay::optim::Step::new(t, 0.02 * f).unwrap();
                muon.update(&(), step, &spec, &mut p2, &mut g0.clone(), &mut s2)
                    .unwrap();
            } else {
                let step = margay::optim::Step::new(t, 3e-4 * f).unwrap();
                aux.update(&(), step, &spec, &mut p2, &mut g0.clone(), &mut s2)
                    .unwrap();
            }
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&p1), bits(&p2), "{spec:?}");
    }
    // Tiger as the auxiliary; a vector never reaches Muon's refusal.
    let aux = Grouped::build(4, |k| TigerConfig::new(1e-3).preset(k).build()).unwrap();
    let opt = MuonWithAux::new(muon, aux).unwrap();
    // An accumulating auxiliary would step on other micro-steps than Muon: refused.
    let accumulating = Grouped::build(4, |k| {
        TigerConfig {
            accumulation: 4,
            ..TigerConfig::new(1e-3).preset(k)
        }
        .build()
    })
    .unwrap();
    assert!(MuonWithAux::new(muon, accumulating).is_err());
    let spec = TensorSpec::vector(4).with_kind(ParamKind::Bias);
    let mut st = vec![0.0f32; opt.state_len(&spec)];
    assert!(opt
        .update(&(), opt.at(1), &spec, &mut [0.1; 4], &mut [0.2; 4], &mut st)
        .is_ok());
    // A wrong state length is an error, nothing modified.
    let mut p = [0.5f32; 12];
    let r = opt.update(
        &(),
        opt.at(1),
        &TensorSpec::matrix(3, 4),
        &mut p,
        &mut [1.0; 12],
        &mut [0.0; 5],
    );
    assert!(r.is_err());
    assert_eq!(p, [0.5; 12]);
}
