//! Embeds the optimizer golden cases (tests/vectors/optim.json) and the host's results for
//! them into the firmware, and picks the memory map for the target core.

#[allow(dead_code)]
#[path = "src/scenarios.rs"]
mod scenarios;
// The sensor example's model and its host side (pretraining, blob, replay), as a user's
// build script would include them.
#[path = "src/sensor_net/host.rs"]
mod sensor_host;
#[allow(dead_code)]
#[path = "src/sensor_net/model.rs"]
mod sensor_model;

use margay::optim::{Guard, LrMode};
use margay_tests::vectors::{load_file, parse_optim, simulate, Algorithm};
use std::fmt::Write as _;
use std::path::PathBuf;

fn f(x: f32) -> String {
    format!("f32::from_bits({:#010x})", x.to_bits())
}

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target = std::env::var("TARGET").unwrap();
    let memory = if target.starts_with("thumbv6m") {
        "memory-m0.x"
    } else {
        "memory-m4f.x"
    };
    std::fs::copy(memory, out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={memory}");

    let src = PathBuf::from("../tests/vectors/optim.json");
    println!("cargo:rerun-if-changed={}", src.display());
    let file = load_file(&src).unwrap_or_else(|e| panic!("{e}"));
    let mut code = String::from("pub static CASES: &[Case] = &[\n");
    let mut max_n = 0;
    for raw in &file.cases {
        let name = raw["name"].as_str().unwrap();
        let case =
            parse_optim(raw).unwrap_or_else(|e| panic!("{}: case {name}: {e}", src.display()));
        let host = simulate(&case).unwrap_or_else(|e| panic!("case {name}: {e}"));
        let n = case.params.len();
        max_n = max_n.max(n);
        let alg = match case.algorithm {
            Algorithm::AdamW(c) => format!(
                "Alg::AdamW(AdamWConfig {{ lr: {}, beta1: {}, beta2: {}, eps: {}, weight_decay: {} }})",
                f(c.lr), f(c.beta1), f(c.beta2), f(c.eps), f(c.weight_decay)
            ),
            Algorithm::Lion(c) => format!(
                "Alg::Lion(LionConfig {{ lr: {}, beta1: {}, beta2: {}, weight_decay: {} }})",
                f(c.lr), f(c.beta1), f(c.beta2), f(c.weight_decay)
            ),
            Algorithm::Tiger(c) => {
                let mode = match c.lr_mode {
                    LrMode::Absolute => "LrMode::Absolute",
                    LrMode::Rms => "LrMode::Rms",
                    other => panic!("lr mode {other:?} not embedded"),
                };
                assert_eq!(c.guard, Guard::NonFinite);
                assert_eq!(c.lr_scale, 1.0);
                format!(
                    "Alg::Tiger(TigerConfig {{ beta: {}, weight_decay: {}, accumulation: {}, lr_mode: {mode}, \
                     nan_shrink: {}, nan_center: {}, ..TigerConfig::new({}) }})",
                    f(c.beta), f(c.weight_decay), c.accumulation, f(c.nan_shrink), f(c.nan_center), f(c.lr)
                )
            }
            other => panic!("{name}: {other:?} is not embedded in the firmware (optim.json holds AdamW, Lion, Tiger)"),
        };
        let bits = |xs: &mut dyn Iterator<Item = f32>| {
            xs.map(|x| format!("{:#x}", x.to_bits()))
                .collect::<Vec<_>>()
                .join(",")
        };
        let grads = bits(&mut case.grads.iter().flatten().copied());
        let expected = bits(&mut case.expected.iter().flatten().map(|&x| x as f32));
        let host_bits = bits(&mut host.iter().flatten().copied());
        writeln!(
            code,
            "  Case {{ name: {name:?}, alg: {alg}, n: {n}, params: &[{}], grads: &[{grads}], \
             expected: &[{expected}], host: &[{host_bits}], tol_abs: {}, tol_rel: {} }},",
            bits(&mut case.params.iter().copied()),
            f(case.tolerance.abs as f32),
            f(case.tolerance.rel as f32),
        )
        .unwrap();
    }
    code.push_str("];\n");
    writeln!(code, "pub const MAX_N: usize = {max_n};").unwrap();
    std::fs::write(out.join("cases.rs"), code).unwrap();

    // The quantizer/RoPE workloads on the host: every word the firmware must reproduce,
    // stored as one FNV-1a hash per block of BLOCK words (the words themselves would take
    // tens of KiB of the Cortex-M0's 256 KiB flash); a mismatch still names its block.
    println!("cargo:rerun-if-changed=src/scenarios.rs");
    let mut host = String::from("pub static HOST: [(&[u32], usize); SCENARIOS.len()] = [\n");
    for (_, run) in scenarios::SCENARIOS {
        let mut words = Vec::new();
        run(&mut |w| words.push(w));
        let list: Vec<String> = words
            .chunks(scenarios::BLOCK)
            .map(|b| format!("{:#x}", scenarios::block_hash(b.iter().copied())))
            .collect();
        writeln!(host, "  (&[{}], {}),", list.join(","), words.len()).unwrap();
    }
    host.push_str("];\n");
    std::fs::write(out.join("host_words.rs"), host).unwrap();

    digits(&out, &target);
    sensor_net(&out, &target);
}

/// The sensor example (`src/bin/sensor_net.rs`): pretraining on upright windows, the blob,
/// the device's data as flash arrays and the host's replay of the device run in the
/// device's format (f32 on the Cortex-M4F, I16F16 on the M0).
fn sensor_net(out: &std::path::Path, target: &str) {
    use sensor_host as h;
    println!("cargo:rerun-if-changed=src/sensor_net");
    let (clean, stream, test) = h::data();
    let check = h::samples(h::TEST_WINDOWS, false, 0x5e45_0004);
    let (blob, pretrained) = h::pretrain(&clean, &check);
    assert!(
        pretrained * 10 >= check.y.len() * 9,
        "sensor example: pretraining reached only {pretrained} of {} upright windows",
        check.y.len()
    );
    let run = if target.starts_with("thumbv6m") {
        h::finetune::<margay::quant::I16F16>(&blob, &stream, &test)
    } else {
        h::finetune::<f32>(&blob, &stream, &test)
    };
    let rows = |s: &h::Samples| {
        s.x.iter()
            .map(|w| format!("{w:?}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut code = String::new();
    let n = (stream.y.len(), test.y.len());
    writeln!(
        code,
        "pub static STREAM_X: [[[i8; LEN]; AXES]; {}] = [{}];",
        n.0,
        rows(&stream)
    )
    .unwrap();
    writeln!(code, "pub static STREAM_Y: [u8; {}] = {:?};", n.0, stream.y).unwrap();
    writeln!(
        code,
        "pub static TEST_X: [[[i8; LEN]; AXES]; {}] = [{}];",
        n.1,
        rows(&test)
    )
    .unwrap();
    writeln!(code, "pub static TEST_Y: [u8; {}] = {:?};", n.1, test.y).unwrap();
    writeln!(code, "pub const PRETRAINED: usize = {pretrained};").unwrap();
    let s = run.stats;
    writeln!(
        code,
        "pub const HOST: Host = Host {{ before: {}, after: {}, samples: {}, updates: {}, guarded: {}, saturated: {}, fingerprint: {:#x} }};",
        run.before, run.after, s.samples, s.updates, s.guarded, s.saturated, run.fingerprint
    )
    .unwrap();
    std::fs::write(out.join("sensor_net_data.rs"), code).unwrap();
    std::fs::write(out.join("sensor_net.mgyb"), blob).unwrap();
}

/// The digits demo: the device's data (mirrored stream and held-out rows) as flash arrays,
/// the model blob (or a corrupted copy with `--features corrupt-blob`), and the host's run of
/// the same fine-tuning in the same format, which the firmware must reproduce bit for bit.
fn digits(out: &std::path::Path, target: &str) {
    use margay::quant::I8F24;
    use margay_host::digits as d;

    println!("cargo::rustc-check-cfg=cfg(fixed_point)");
    let fixed = target.starts_with("thumbv6m");
    if fixed {
        println!("cargo:rustc-cfg=fixed_point");
    }
    let data = d::data_path();
    println!("cargo:rerun-if-changed={}", data.display());
    let split = d::load(&data).unwrap_or_else(|e| panic!("{e}"));
    let blob_path = std::path::PathBuf::from("model/digits.mgyb");
    println!("cargo:rerun-if-changed={}", blob_path.display());
    let mut blob = d::read_blob(&blob_path).unwrap_or_else(|e| panic!("{e}"));
    let (stream, test) = (split.stream.mirrored(), split.test.mirrored());
    let (report, zo) = if fixed {
        (
            d::finetune::<I8F24>(&blob, &stream, &test).0,
            d::finetune_zo::<I8F24>(&blob, &stream, &test).0,
        )
    } else {
        (
            d::finetune::<f32>(&blob, &stream, &test).0,
            d::finetune_zo::<f32>(&blob, &stream, &test).0,
        )
    };
    let rows = |s: &d::Samples| {
        s.x.iter()
            .map(|r| format!("{r:?}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let t = d::device_tiger();
    let mut code = String::new();
    writeln!(code, "pub const EPOCHS: usize = {};", d::EPOCHS).unwrap();
    writeln!(code, "pub const ZO_EPOCHS: usize = {};", d::ZO_EPOCHS).unwrap();
    writeln!(code, "pub const ZO_BATCH: usize = {};", d::ZO_BATCH).unwrap();
    writeln!(code, "pub const ZO_SAMPLES: u32 = {};", d::ZO_SAMPLES).unwrap();
    writeln!(code, "pub const ZO_EPS: f32 = {};", f(d::ZO_EPS)).unwrap();
    writeln!(code, "pub const ZO_LR: f32 = {};", f(d::ZO_LR)).unwrap();
    writeln!(code, "pub const SEED: u32 = {:#x};", d::SEED).unwrap();
    writeln!(code, "pub const LR: f32 = {};", f(t.lr)).unwrap();
    writeln!(code, "pub const ACCUMULATION: u32 = {};", t.accumulation).unwrap();
    writeln!(
        code,
        "pub const HUGE_READING: f32 = {};",
        f(d::HUGE_READING)
    )
    .unwrap();
    writeln!(
        code,
        "pub static STREAM_X: [[u8; IN]; {}] = [{}];",
        stream.x.len(),
        rows(&stream)
    )
    .unwrap();
    writeln!(
        code,
        "pub static STREAM_Y: [u8; {}] = {:?};",
        stream.y.len(),
        stream.y
    )
    .unwrap();
    writeln!(
        code,
        "pub static TEST_X: [[u8; IN]; {}] = [{}];",
        test.x.len(),
        rows(&test)
    )
    .unwrap();
    writeln!(
        code,
        "pub static TEST_Y: [u8; {}] = {:?};",
        test.y.len(),
        test.y
    )
    .unwrap();
    let s = report.stats;
    writeln!(
        code,
        "pub const HOST: Host = Host {{ before: {}, after: {}, samples: {}, updates: {}, guarded: {}, saturated: {}, fingerprint: {:#x} }};",
        report.before, report.after, s.samples, s.updates, s.guarded, s.saturated, report.fingerprint
    )
    .unwrap();
    let z = zo.stats;
    writeln!(
        code,
        "pub const HOST_ZO: Host = Host {{ before: {}, after: {}, samples: {}, updates: {}, guarded: {}, saturated: {}, fingerprint: {:#x} }};",
        zo.before, zo.after, z.samples, z.updates, z.guarded, z.saturated, zo.fingerprint
    )
    .unwrap();
    std::fs::write(out.join("digits_data.rs"), code).unwrap();
    if std::env::var_os("CARGO_FEATURE_CORRUPT_BLOB").is_some() {
        let mid = blob.len() / 2;
        blob[mid] ^= 0x10;
    }
    if std::env::var_os("CARGO_FEATURE_OTHER_ARCHITECTURE").is_some() {
        // Record 2 is the LoRA adapter: its rank (third dimension) becomes 4, the checksum
        // is made valid again, so only the layer check can refuse it.
        let at = 8 + 14 + 4 + 14 + (d::HID * d::IN + 8 * d::HID);
        assert_eq!(
            u16::from_le_bytes([blob[at], blob[at + 1]]),
            6,
            "the LoRA record"
        );
        blob[at + 6..at + 8].copy_from_slice(&4u16.to_le_bytes());
        let end = blob.len() - 4;
        let sum = margay::nn::fnv1a32(&blob[..end]);
        blob[end..].copy_from_slice(&sum.to_le_bytes());
    }
    std::fs::write(out.join("digits.mgyb"), blob).unwrap();
}
