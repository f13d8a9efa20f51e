//! Golden vectors in `cargo test`: the kinds implemented so far pass, a changed expected
//! value fails, and malformed files are errors that name the file and the case.

use margay_tests::vectors::{load_file, run_file};
use std::path::{Path, PathBuf};
use std::process::Command;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn run_kind(file: &str) -> usize {
    let f = load_file(&vectors_dir().join(file)).unwrap();
    let results = run_file(&f).unwrap();
    let failed: Vec<_> = results.iter().filter(|r| !r.passed).collect();
    assert!(failed.is_empty(), "failed cases: {failed:#?}");
    results.len()
}

#[test]
fn optim_golden_vectors_pass() {
    assert_eq!(run_kind("optim.json"), 27);
}

#[test]
fn clip_golden_vectors_pass() {
    assert_eq!(run_kind("clip.json"), 3);
}

#[test]
fn fsq_golden_vectors_pass() {
    assert_eq!(run_kind("fsq.json"), 6);
}

#[test]
fn int8_golden_vectors_pass() {
    assert_eq!(run_kind("int8.json"), 3);
}

#[test]
fn lfq_golden_vectors_pass() {
    assert_eq!(run_kind("lfq.json"), 5);
}

#[test]
fn rope_golden_vectors_pass() {
    assert_eq!(run_kind("rope.json"), 10);
}

#[test]
fn rope2d_golden_vectors_pass() {
    assert_eq!(run_kind("rope2d.json"), 2);
}

#[test]
fn muon_golden_vectors_pass() {
    assert_eq!(run_kind("muon.json"), 14);
}

#[test]
fn zo_golden_vectors_pass() {
    assert_eq!(run_kind("zo.json"), 8);
}

/// One value changed in `muon.json` (a parameter, then a Newton–Schulz output) and in
/// `zo.json` (a parameter, a projected gradient, a loss) fails that case and only that case.
#[test]
fn changed_muon_and_zo_values_fail() {
    let changes: [(&str, &str, usize, f64); 5] = [
        ("muon.json", "expected", 1, 1e-3),
        ("muon.json", "orthogonalized", 0, 1e-2),
        ("zo.json", "expected", 2, 1e-3),
        ("zo.json", "projected_grads", 1, 1e-1),
        ("zo.json", "losses", 0, 1e-3),
    ];
    for (file, key, step, delta) in changes {
        let text = std::fs::read_to_string(vectors_dir().join(file)).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let case = &mut v["cases"][3];
        let slot = match key {
            "losses" => &mut case[key][step][0][0],
            _ => &mut case[key][step][0],
        };
        let e = slot.as_f64().unwrap();
        *slot = serde_json::json!(e + delta);
        let mut f = load_file(&vectors_dir().join(file)).unwrap();
        f.cases = v["cases"].as_array().unwrap().clone();
        let results = run_file(&f).unwrap();
        let failed: Vec<_> = results.iter().filter(|r| !r.passed).collect();
        assert_eq!(failed.len(), 1, "{file} {key}: {results:#?}");
        assert_eq!(failed[0].name, results[3].name);
        assert!(
            failed[0].detail.contains(&format!("step {}", step + 1)),
            "{:?}",
            failed[0]
        );
    }
}

#[test]
fn unknown_zo_base_and_muon_adjust_lr_are_failures() {
    for (file, edit) in [("zo.json", "base"), ("muon.json", "adjust_lr")] {
        let mut f = load_file(&vectors_dir().join(file)).unwrap();
        match edit {
            "base" => f.cases[0]["base"] = serde_json::json!("adam"),
            _ => f.cases[0]["config"]["adjust_lr"] = serde_json::json!("spectral"),
        }
        let r = run_file(&f).unwrap();
        assert!(
            !r[0].passed && r[0].detail.contains("not implemented"),
            "{:?}",
            r[0]
        );
    }
}

/// The shipped tolerance at position 131,071 is ~0.06 (sized for an f32 `pos·θ`); margay's
/// exact angles must pass a far tighter one: 1e-6 at every position.
#[test]
fn rope_passes_with_a_position_independent_tolerance_of_1e_6() {
    let text = std::fs::read_to_string(vectors_dir().join("rope.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for case in v["cases"].as_array_mut().unwrap() {
        case["tolerance"] = serde_json::json!({"abs": 1e-6, "rel": 0.0});
    }
    let dir = tmpdir("rope_tight");
    std::fs::write(dir.join("rope.json"), v.to_string()).unwrap();
    let (code, stdout, _) = conformance(&dir);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.trim_end().ends_with("10 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn changed_rope_value_at_a_long_position_fails() {
    let text = std::fs::read_to_string(vectors_dir().join("rope.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Row 7 is position 131,071; its tolerance is ~0.06, so move the value by 0.1.
    let e = &mut v["cases"][9]["expected"][7][5];
    *e = serde_json::json!(e.as_f64().unwrap() + 0.1);
    let f = &mut v["cases"][8]["inv_freq"][30];
    *f = serde_json::json!(f.as_f64().unwrap() * (1.0 + 1e-9));
    let dir = tmpdir("rope_changed");
    std::fs::write(dir.join("rope.json"), v.to_string()).unwrap();
    let (code, stdout, _) = conformance(&dir);
    assert_ne!(code, 0);
    assert!(
        stdout.contains("FAIL rope.json rope/rope_9_half_llama3"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL rope.json rope/rope_8_half_yarn"),
        "{stdout}"
    );
    assert!(stdout.contains("inv_freq[30]"), "{stdout}");
}

#[test]
fn unknown_rope_scaling_type_is_a_failure() {
    let text = std::fs::read_to_string(vectors_dir().join("rope.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["cases"][0]["scaling"]["type"] = serde_json::json!("xpos");
    v["cases"].as_array_mut().unwrap().truncate(1);
    let dir = tmpdir("rope_unknown");
    std::fs::write(dir.join("rope.json"), v.to_string()).unwrap();
    let (code, stdout, stderr) = conformance(&dir);
    assert_ne!(code, 0);
    assert!(
        format!("{stdout}{stderr}").contains("unknown scaling type `xpos`"),
        "{stdout}{stderr}"
    );
}

#[test]
fn changed_lfq_gradient_fails() {
    let text = std::fs::read_to_string(vectors_dir().join("lfq.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let g = &mut v["cases"][0]["grad"][1][2];
    *g = serde_json::json!(g.as_f64().unwrap() * 1.001);
    let dir = tmpdir("lfq_changed");
    std::fs::write(dir.join("lfq.json"), v.to_string()).unwrap();
    let (code, stdout, _) = conformance(&dir);
    assert_ne!(code, 0);
    assert!(stdout.contains("FAIL lfq.json lfq/lfq_d4_soft"), "{stdout}");
}

#[test]
fn runner_fails_when_one_fsq_index_is_changed() {
    let dir = tmpdir("fsq-changed");
    let text = std::fs::read_to_string(vectors_dir().join("fsq.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let idx = &mut v["cases"][0]["indices"][3];
    *idx = serde_json::json!(idx.as_u64().unwrap() + 1);
    std::fs::write(dir.join("fsq.json"), v.to_string()).unwrap();
    let (code, stdout, _) = conformance(&dir);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAIL fsq.json fsq/fsq_3x5x4"), "{stdout}");
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("margay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn conformance(dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_conformance"))
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn runner_fails_when_one_expected_value_is_changed() {
    let dir = tmpdir("changed");
    let text = std::fs::read_to_string(vectors_dir().join("optim.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let case = &mut v["cases"][17]; // tiger_c0_n5
    assert_eq!(case["name"], "tiger_c0_n5");
    let e = case["expected"][2][3].as_f64().unwrap();
    case["expected"][2][3] = serde_json::json!(e + 1e-4);
    std::fs::write(dir.join("optim.json"), v.to_string()).unwrap();
    let (code, stdout, _) = conformance(&dir);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("FAIL optim.json optim/tiger_c0_n5"),
        "{stdout}"
    );
    assert!(stdout.contains("step 3[3]"), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("26 passed, 1 failed"),
        "{stdout}"
    );
}

#[test]
fn runner_passes_every_shipped_file() {
    let dir = tmpdir("shipped");
    for f in [
        "optim.json",
        "clip.json",
        "fsq.json",
        "int8.json",
        "lfq.json",
        "rope.json",
        "rope2d.json",
        "muon.json",
        "zo.json",
    ] {
        std::fs::copy(vectors_dir().join(f), dir.join(f)).unwrap();
    }
    let (code, stdout, stderr) = conformance(&dir);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.trim_end().ends_with("78 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn malformed_case_names_the_file_and_the_case() {
    let dir = tmpdir("malformed");
    let body = r#"{"format": "margay-vectors/1", "kind": "optim", "cases": [
        {"name": "no_config", "algorithm": "lion", "params": [1.0], "grads": [[1.0]],
         "expected": [[1.0]], "tolerance": {"abs": 0, "rel": 0}}]}"#;
    std::fs::write(dir.join("bad.json"), body).unwrap();
    let (code, stdout, stderr) = conformance(&dir);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("bad.json: case `no_config`: missing field `config`"),
        "{stderr}"
    );
}

#[test]
fn unknown_kind_and_algorithm_are_failures_not_skips() {
    let dir = tmpdir("unknown");
    std::fs::write(
        dir.join("k.json"),
        r#"{"format": "margay-vectors/1", "kind": "teleport", "cases": [{"name": "x"}]}"#,
    )
    .unwrap();
    let (code, stdout, _) = conformance(&dir);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAIL k.json teleport/x"), "{stdout}");
    assert!(stdout.trim_end().ends_with("0 passed, 1 failed"));

    std::fs::write(
        dir.join("k.json"),
        r#"{"format": "margay-vectors/1", "kind": "optim", "cases": [{"name": "y",
            "algorithm": "sgd", "config": {}, "params": [], "grads": [], "expected": [],
            "tolerance": {"abs": 0, "rel": 0}}]}"#,
    )
    .unwrap();
    let (code, _, stderr) = conformance(&dir);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("case `y`: unknown optim algorithm `sgd`"),
        "{stderr}"
    );
}

#[test]
fn wrong_format_tag_and_invalid_json_are_errors_naming_the_file() {
    let dir = tmpdir("format");
    std::fs::write(
        dir.join("a.json"),
        r#"{"format": "other/2", "kind": "optim", "cases": []}"#,
    )
    .unwrap();
    let (code, _, stderr) = conformance(&dir);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("a.json: `format` must be \"margay-vectors/1\""),
        "{stderr}"
    );
    std::fs::write(dir.join("a.json"), "{not json").unwrap();
    let (code, _, stderr) = conformance(&dir);
    assert_eq!(code, 2);
    assert!(stderr.contains("a.json: not valid JSON"), "{stderr}");
}
