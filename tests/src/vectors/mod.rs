//! Golden vectors: parse `margay-vectors/1` files and check cases.

use margay::optim::{
    AdaXConfig, AdafactorConfig, AdamWConfig, Cautious, ClipConfig, ClipForm, GlobalNormClip,
    LionConfig, LrMode, SgdmConfig, Step, TigerConfig, WeightDecay,
};
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

mod newer;
mod rope;

/// The format tag every file must carry.
pub const FORMAT: &str = "margay-vectors/1";

/// A file or case that could not be read, naming where.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatError {
    /// The file.
    pub file: PathBuf,
    /// The case name (or index) when the problem is inside a case.
    pub case: Option<String>,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.case {
            Some(c) => write!(f, "{}: case `{}`: {}", self.file.display(), c, self.msg),
            None => write!(f, "{}: {}", self.file.display(), self.msg),
        }
    }
}

impl std::error::Error for FormatError {}

/// One parsed vector file.
#[derive(Debug, Clone)]
pub struct VectorFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The `kind` field.
    pub kind: String,
    /// The raw cases.
    pub cases: Vec<Value>,
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// `kind/name`.
    pub name: String,
    /// Whether every value was within tolerance.
    pub passed: bool,
    /// Largest `|y − e|` seen, and the allowed bound at that element.
    pub worst: Option<(f64, f64)>,
    /// Why it failed (first offending value), or a note.
    pub detail: String,
}

/// Reads and checks the envelope of one file.
pub fn load_file(path: &Path) -> Result<VectorFile, FormatError> {
    let err = |msg: String| FormatError {
        file: path.to_path_buf(),
        case: None,
        msg,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let format = v.get("format").and_then(Value::as_str);
    if format != Some(FORMAT) {
        return Err(err(format!(
            "`format` must be \"{FORMAT}\", found {format:?}"
        )));
    }
    let kind = v
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| err("missing string field `kind`".into()))?
        .to_string();
    let cases = v
        .get("cases")
        .and_then(Value::as_array)
        .ok_or_else(|| err("missing array field `cases`".into()))?
        .clone();
    Ok(VectorFile {
        path: path.to_path_buf(),
        kind,
        cases,
    })
}

/// Every `*.json` file in `dir`, sorted; a path to a file is returned as is.
pub fn vector_files(path: &Path) -> Result<Vec<PathBuf>, FormatError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let rd = std::fs::read_dir(path).map_err(|e| FormatError {
        file: path.to_path_buf(),
        case: None,
        msg: format!("cannot list directory: {e} (pass a directory of *.json vector files)"),
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs every case of a file. A malformed case is an `Err` naming file and case; an
/// unknown kind or algorithm is a failed case.
pub fn run_file(file: &VectorFile) -> Result<Vec<CaseResult>, FormatError> {
    let mut out = Vec::with_capacity(file.cases.len());
    for (i, case) in file.cases.iter().enumerate() {
        let name = case
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("#{i}"));
        let wrap = |msg: String| FormatError {
            file: file.path.clone(),
            case: Some(name.clone()),
            msg,
        };
        let full = format!("{}/{}", file.kind, name);
        let r = match file.kind.as_str() {
            "optim" => run_optim(case).map_err(wrap)?,
            "clip" => run_clip(case).map_err(wrap)?,
            "fsq" => run_fsq(case).map_err(wrap)?,
            "int8" => run_int8(case).map_err(wrap)?,
            "lfq" => run_lfq(case).map_err(wrap)?,
            "rope" => rope::run_rope(case).map_err(wrap)?,
            "rope2d" => rope::run_rope2d(case).map_err(wrap)?,
            "muon" => newer::run_muon(case).map_err(wrap)?,
            "zo" => newer::run_zo(case).map_err(wrap)?,
            other => Outcome::fail(format!("kind `{other}` is not implemented")),
        };
        out.push(CaseResult {
            name: full,
            passed: r.passed,
            worst: r.worst,
            detail: r.detail,
        });
    }
    Ok(out)
}

/// Pass/fail of one case with its worst error.
struct Outcome {
    passed: bool,
    worst: Option<(f64, f64)>,
    detail: String,
}

impl Outcome {
    fn fail(detail: String) -> Self {
        Outcome {
            passed: false,
            worst: None,
            detail,
        }
    }
}

/// A tolerance `|y − e| <= abs + rel·|e|`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Absolute part.
    pub abs: f64,
    /// Relative part.
    pub rel: f64,
}

/// Compares computed values against expected ones, tracking the worst element.
struct Checker {
    worst: Option<(f64, f64)>,
    first_fail: Option<String>,
}

impl Checker {
    fn new() -> Self {
        Checker {
            worst: None,
            first_fail: None,
        }
    }

    fn check(&mut self, what: &str, got: &[f32], want: &[f64], tol: Tolerance) {
        let got: Vec<f64> = got.iter().map(|&y| y as f64).collect();
        self.check64(what, &got, want, tol)
    }

    fn check64(&mut self, what: &str, got: &[f64], want: &[f64], tol: Tolerance) {
        if got.len() != want.len() {
            self.first_fail.get_or_insert(format!(
                "{what}: {} values computed, {} expected",
                got.len(),
                want.len()
            ));
            return;
        }
        for (i, (&y, &e)) in got.iter().zip(want).enumerate() {
            let ok = if e.is_nan() {
                y.is_nan()
            } else if e.is_infinite() {
                y == e
            } else {
                (y - e).abs() <= tol.abs + tol.rel * e.abs()
            };
            if e.is_finite() && y.is_finite() {
                let err = (y - e).abs();
                let bound = tol.abs + tol.rel * e.abs();
                if self
                    .worst
                    .is_none_or(|(w, b)| err / bound.max(1e-300) > w / b.max(1e-300))
                {
                    self.worst = Some((err, bound));
                }
            }
            if !ok && self.first_fail.is_none() {
                self.first_fail = Some(format!("{what}[{i}]: got {y:e}, expected {e:e}"));
            }
        }
    }

    fn finish(self) -> Outcome {
        Outcome {
            passed: self.first_fail.is_none(),
            worst: self.worst,
            detail: self.first_fail.unwrap_or_default(),
        }
    }
}

/// A JSON number or one of the strings "nan", "inf", "-inf".
pub fn number(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("bad number {n}")),
        Value::String(s) => match s.as_str() {
            "nan" => Ok(f64::NAN),
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            other => Err(format!("expected a number, found string {other:?}")),
        },
        other => Err(format!("expected a number, found {other}")),
    }
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("missing field `{key}`"))
}

fn num(v: &Value, key: &str) -> Result<f64, String> {
    number(field(v, key)?).map_err(|e| format!("`{key}`: {e}"))
}

fn vec64(v: &Value, key: &str) -> Result<Vec<f64>, String> {
    let arr = field(v, key)?
        .as_array()
        .ok_or_else(|| format!("`{key}` must be an array"))?;
    arr.iter()
        .map(number)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`{key}`: {e}"))
}

fn mat64(v: &Value, key: &str) -> Result<Vec<Vec<f64>>, String> {
    let arr = field(v, key)?
        .as_array()
        .ok_or_else(|| format!("`{key}` must be an array of arrays"))?;
    arr.iter()
        .enumerate()
        .map(|(i, row)| {
            row.as_array()
                .ok_or_else(|| format!("`{key}[{i}]` must be an array"))?
                .iter()
                .map(number)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("`{key}[{i}]`: {e}"))
        })
        .collect()
}

fn to32(xs: &[f64]) -> Vec<f32> {
    xs.iter().map(|&x| x as f32).collect()
}

/// The case's `tolerance` (a single entry; optim and clip use one per case).
pub fn tolerance(case: &Value) -> Result<Tolerance, String> {
    tolerance_at(case, "tolerance")
}

fn tolerance_at(case: &Value, key: &str) -> Result<Tolerance, String> {
    tolerance_of(field(case, key)?)
}

/// One `{"abs": a, "rel": r}` object.
fn tolerance_of(t: &Value) -> Result<Tolerance, String> {
    Ok(Tolerance {
        abs: num(t, "abs")?,
        rel: num(t, "rel")?,
    })
}

/// A parsed optimizer case.
#[derive(Debug, Clone)]
pub struct OptimCase {
    /// The algorithm with its config.
    pub algorithm: Algorithm,
    /// Initial parameters.
    pub params: Vec<f32>,
    /// Gradient per (micro-)step.
    pub grads: Vec<Vec<f32>>,
    /// Expected parameters after each step.
    pub expected: Vec<Vec<f64>>,
    /// Tolerance.
    pub tolerance: Tolerance,
}

/// An algorithm named by a vector file, with its config.
#[derive(Debug, Clone, Copy)]
pub enum Algorithm {
    /// AdamW.
    AdamW(AdamWConfig),
    /// Lion.
    Lion(LionConfig),
    /// Tiger.
    Tiger(TigerConfig),
    /// AdaX (`adax`: L2 decay) or AdaX-W (`adaxw`: decoupled).
    AdaX(AdaXConfig),
    /// SGDM with accumulation hidden in the momentum.
    Sgdm(SgdmConfig),
    /// Lion with cautious masking (the factor).
    LionCautious(LionConfig, f32),
    /// Adafactor (PyTorch conventions) on a tensor of this shape (1 or 2 dims).
    Adafactor(AdafactorConfig, [usize; 2]),
}

/// Parses an `optim` case.
pub fn parse_optim(case: &Value) -> Result<OptimCase, String> {
    let alg = field(case, "algorithm")?
        .as_str()
        .ok_or("`algorithm` must be a string")?;
    let c = field(case, "config")?;
    let f = |k: &str| num(c, k).map(|x| x as f32);
    let algorithm = match alg {
        "adamw" => Algorithm::AdamW(AdamWConfig {
            lr: f("lr")?,
            beta1: f("beta1")?,
            beta2: f("beta2")?,
            eps: f("eps")?,
            weight_decay: f("weight_decay")?,
        }),
        "lion" => Algorithm::Lion(LionConfig {
            lr: f("lr")?,
            beta1: f("beta1")?,
            beta2: f("beta2")?,
            weight_decay: f("weight_decay")?,
        }),
        "tiger" => {
            let mode = field(c, "lr_mode")?
                .as_str()
                .ok_or("`lr_mode` must be a string")?;
            let lr_mode = match mode {
                "absolute" => LrMode::Absolute,
                "rms" => LrMode::Rms,
                other => return Err(format!("unknown tiger lr_mode `{other}`")),
            };
            let k = num(c, "accumulation")?;
            if k < 1.0 || k.fract() != 0.0 || k > u32::MAX as f64 {
                return Err(format!(
                    "`accumulation` must be a whole number >= 1, got {k}"
                ));
            }
            let base = TigerConfig::new(f("lr")?);
            let cfg = TigerConfig {
                beta: f("beta")?,
                weight_decay: f("weight_decay")?,
                accumulation: k as u32,
                lr_mode,
                nan_shrink: c
                    .get("nan_shrink")
                    .map(number)
                    .transpose()?
                    .map_or(base.nan_shrink, |x| x as f32),
                nan_center: c
                    .get("nan_center")
                    .map(number)
                    .transpose()?
                    .map_or(base.nan_center, |x| x as f32),
                ..base
            };
            Algorithm::Tiger(cfg)
        }
        "adax" | "adaxw" => Algorithm::AdaX(AdaXConfig {
            lr: f("lr")?,
            beta1: f("beta1")?,
            beta2: f("beta2")?,
            eps: f("eps")?,
            weight_decay: f("weight_decay")?,
            decay: if alg == "adax" {
                WeightDecay::L2
            } else {
                WeightDecay::Decoupled
            },
        }),
        "adafactor" => {
            let shape = field(c, "shape")?
                .as_array()
                .ok_or("`shape` must be a list")?
                .iter()
                .map(|x| {
                    x.as_u64()
                        .map(|v| v as usize)
                        .ok_or("`shape` holds whole numbers")
                })
                .collect::<Result<Vec<_>, _>>()?;
            let shape = match shape[..] {
                [n] => [n, 0],
                [n, m] => [n, m],
                _ => {
                    return Err(format!(
                        "adafactor `shape` must have 1 or 2 dims, got {shape:?}"
                    ))
                }
            };
            Algorithm::Adafactor(
                AdafactorConfig {
                    lr: f("lr")?,
                    beta2_decay: f("beta2_decay")?,
                    eps1: f("eps1")?,
                    eps2: f("eps2")?,
                    d: f("d")?,
                    weight_decay: f("weight_decay")?,
                },
                shape,
            )
        }
        "lion_cautious" => Algorithm::LionCautious(
            LionConfig {
                lr: f("lr")?,
                beta1: f("beta1")?,
                beta2: f("beta2")?,
                weight_decay: f("weight_decay")?,
            },
            f("cautious_factor")?,
        ),
        "sgdm" => {
            let k = num(c, "accumulation")?;
            if k < 1.0 || k.fract() != 0.0 || k > u32::MAX as f64 {
                return Err(format!(
                    "`accumulation` must be a whole number >= 1, got {k}"
                ));
            }
            Algorithm::Sgdm(SgdmConfig {
                lr: f("lr")?,
                momentum: f("momentum")?,
                weight_decay: f("weight_decay")?,
                accumulation: k as u32,
            })
        }
        other => return Err(format!("unknown optim algorithm `{other}`")),
    };
    let params = to32(&vec64(case, "params")?);
    let grads: Vec<Vec<f32>> = mat64(case, "grads")?.iter().map(|g| to32(g)).collect();
    let expected = mat64(case, "expected")?;
    if grads.len() != expected.len() {
        return Err(format!(
            "{} gradient steps but {} expected steps",
            grads.len(),
            expected.len()
        ));
    }
    if let Some(i) = grads.iter().position(|g| g.len() != params.len()) {
        return Err(format!(
            "grads[{i}] has {} values, params has {}",
            grads[i].len(),
            params.len()
        ));
    }
    Ok(OptimCase {
        algorithm,
        params,
        grads,
        expected,
        tolerance: tolerance(case)?,
    })
}

/// Runs an optimizer case through margay, returning the parameters after every step.
pub fn simulate(case: &OptimCase) -> Result<Vec<Vec<f32>>, String> {
    let n = case.params.len();
    let mut p = case.params.clone();
    let mut m = vec![0.0f32; n];
    let mut v = vec![0.0f32; n];
    let mut out = Vec::with_capacity(case.grads.len());
    // Adafactor's factored statistics: rows and columns.
    let (mut rows, mut cols) = match case.algorithm {
        Algorithm::Adafactor(_, [r, c]) => (vec![0.0f32; r], vec![0.0f32; c]),
        _ => (Vec::new(), Vec::new()),
    };
    for (i, g) in case.grads.iter().enumerate() {
        let t = i as u64 + 1;
        let r = match case.algorithm {
            Algorithm::AdamW(c) => {
                let o = c.build().map_err(|e| e.to_string())?;
                o.step(Step::new(t, c.lr).unwrap(), &mut p, g, &mut m, &mut v)
            }
            Algorithm::Lion(c) => {
                let o = c.build().map_err(|e| e.to_string())?;
                o.step(o.at(t), &mut p, g, &mut m)
            }
            Algorithm::Tiger(c) => {
                let o = c.build().map_err(|e| e.to_string())?;
                o.step(o.at(t), &mut p, g, &mut m).map(|_| ())
            }
            Algorithm::AdaX(c) => {
                let o = c.build().map_err(|e| e.to_string())?;
                o.step(o.at(t), &mut p, g, &mut m, &mut v)
            }
            Algorithm::Adafactor(c, [r, cols_n]) => {
                let o = c.build().map_err(|e| e.to_string())?;
                if cols_n == 0 {
                    o.step_vector(o.at(t), &mut p, g, &mut v)
                } else {
                    o.step_matrix(o.at(t), &mut p, g, r, cols_n, &mut rows, &mut cols)
                }
            }
            Algorithm::LionCautious(c, factor) => {
                let o = c.build().map_err(|e| e.to_string())?;
                let k = Cautious::new(factor).map_err(|e| e.to_string())?;
                o.step_cautious(o.at(t), &mut p, g, &mut m, k)
            }
            Algorithm::Sgdm(c) => {
                let o = c.build().map_err(|e| e.to_string())?;
                o.step(o.at(t), &mut p, g, &mut m)
            }
        };
        r.map_err(|e| e.to_string())?;
        out.push(p.clone());
    }
    Ok(out)
}

fn run_optim(case: &Value) -> Result<Outcome, String> {
    let c = parse_optim(case)?;
    let got = match simulate(&c) {
        Ok(g) => g,
        Err(e) => return Ok(Outcome::fail(e)),
    };
    let mut chk = Checker::new();
    for (t, (y, e)) in got.iter().zip(&c.expected).enumerate() {
        chk.check(&format!("step {}", t + 1), y, e, c.tolerance);
    }
    Ok(chk.finish())
}

fn run_clip(case: &Value) -> Result<Outcome, String> {
    let max_norm = num(case, "max_norm")? as f32;
    let grads: Vec<Vec<f32>> = mat64(case, "grads")?.iter().map(|g| to32(g)).collect();
    let total = num(case, "total_norm")?;
    let exp_min = mat64(case, "expected_min")?;
    let exp_smooth = mat64(case, "expected_smooth")?;
    let tol = tolerance(case)?;
    let mut chk = Checker::new();
    for (form, expected, label) in [
        (ClipForm::Min, &exp_min, "min"),
        (ClipForm::Smooth, &exp_smooth, "smooth"),
    ] {
        let clip = match ClipConfig::new(max_norm, form).build() {
            Ok(c) => c,
            Err(e) => return Ok(Outcome::fail(e.to_string())),
        };
        let mut g = grads.clone();
        let mut views: Vec<&mut [f32]> = g.iter_mut().map(|x| x.as_mut_slice()).collect();
        let report = clip.apply(&mut views);
        chk.check("total_norm", &[report.norm], &[total], tol);
        if expected.len() != g.len() {
            return Err(format!(
                "`expected_{label}` has {} tensors, `grads` {}",
                expected.len(),
                g.len()
            ));
        }
        for (i, (y, e)) in g.iter().zip(expected.iter()).enumerate() {
            chk.check(&format!("{label}[{i}]"), y, e, tol);
        }
    }
    let views: Vec<&[f32]> = grads.iter().map(|x| x.as_slice()).collect();
    chk.check(
        "global_norm",
        &[GlobalNormClip::global_norm(&views)],
        &[total],
        tol,
    );
    Ok(chk.finish())
}

fn run_fsq(case: &Value) -> Result<Outcome, String> {
    let levels: Vec<u32> = vec64(case, "levels")?
        .iter()
        .map(|&l| {
            if l >= 0.0 && l.fract() == 0.0 && l <= u32::MAX as f64 {
                Ok(l as u32)
            } else {
                Err(format!("`levels`: {l} is not a level count"))
            }
        })
        .collect::<Result<_, _>>()?;
    let z: Vec<Vec<f32>> = mat64(case, "z")?.iter().map(|r| to32(r)).collect();
    let codes = mat64(case, "codes")?;
    let indices = vec64(case, "indices")?;
    let codebook = match case.get("codebook") {
        Some(Value::Null) | None => None,
        Some(_) => Some(mat64(case, "codebook")?),
    };
    let tol = tolerance(case)?;
    if codes.len() != z.len() || indices.len() != z.len() {
        return Err(format!(
            "`z` has {} rows, `codes` {}, `indices` {}",
            z.len(),
            codes.len(),
            indices.len()
        ));
    }
    let io = FsqIo {
        levels: &levels,
        z: &z,
        codes: &codes,
        indices: &indices,
        codebook: codebook.as_deref(),
        tol,
    };
    Ok(match levels.len() {
        1 => fsq_case::<1>(&io),
        2 => fsq_case::<2>(&io),
        3 => fsq_case::<3>(&io),
        4 => fsq_case::<4>(&io),
        5 => fsq_case::<5>(&io),
        6 => fsq_case::<6>(&io),
        7 => fsq_case::<7>(&io),
        8 => fsq_case::<8>(&io),
        n => Outcome::fail(format!("{n} FSQ channels: the runner handles 1 to 8")),
    })
}

struct FsqIo<'a> {
    levels: &'a [u32],
    z: &'a [Vec<f32>],
    codes: &'a [Vec<f64>],
    indices: &'a [f64],
    codebook: Option<&'a [Vec<f64>]>,
    tol: Tolerance,
}

fn fsq_case<const D: usize>(io: &FsqIo) -> Outcome {
    let mut levels = [0u32; D];
    levels.copy_from_slice(io.levels);
    let fsq = match margay::quant::FsqConfig::new(levels).build() {
        Ok(f) => f,
        Err(e) => return Outcome::fail(e.to_string()),
    };
    let mut chk = Checker::new();
    for (r, (row, (want_codes, &want_idx))) in
        io.z.iter().zip(io.codes.iter().zip(io.indices)).enumerate()
    {
        let mut v = [0.0f32; D];
        if row.len() != D {
            return Outcome::fail(format!("z[{r}] has {} values, levels {D}", row.len()));
        }
        v.copy_from_slice(row);
        let (codes, idx) = fsq.quantize(&v);
        chk.check(&format!("codes[{r}]"), &codes, want_codes, io.tol);
        if idx as f64 != want_idx && chk.first_fail.is_none() {
            chk.first_fail = Some(format!("indices[{r}]: got {idx}, expected {want_idx}"));
        }
        match fsq.decode(idx) {
            Ok(back) if back == codes => {}
            _ => {
                chk.first_fail
                    .get_or_insert(format!("decode(encode(z[{r}])) differs from its codes"));
            }
        }
    }
    if let Some(book) = io.codebook {
        if book.len() != fsq.codebook_size() as usize {
            return Outcome::fail(format!(
                "codebook lists {} codes, levels give {}",
                book.len(),
                fsq.codebook_size()
            ));
        }
        for (i, want) in book.iter().enumerate() {
            match fsq.decode(i as u32) {
                Ok(c) => chk.check(&format!("codebook[{i}]"), &c, want, io.tol),
                Err(e) => return Outcome::fail(e.to_string()),
            }
        }
    }
    chk.finish()
}

fn run_int8(case: &Value) -> Result<Outcome, String> {
    let w = mat64(case, "weights")?;
    let scales = vec64(case, "scales")?;
    let q = mat64(case, "q")?;
    let deq = mat64(case, "dequantized")?;
    let tol = tolerance(case)?;
    let cols = w.first().map_or(0, |r| r.len());
    if w.iter().any(|r| r.len() != cols) || q.len() != w.len() || deq.len() != w.len() {
        return Err("`weights`, `q` and `dequantized` must be matrices of one shape".into());
    }
    let flat: Vec<f32> = w.iter().flat_map(|r| to32(r)).collect();
    let mut got_q = vec![0i8; flat.len()];
    let mut got_s = vec![0.0f32; w.len()];
    if let Err(e) = margay::quant::quantize_rows(&flat, cols, &mut got_q, &mut got_s) {
        return Ok(Outcome::fail(e.to_string()));
    }
    let mut chk = Checker::new();
    chk.check("scales", &got_s, &scales, tol);
    for (r, (want_q, want_d)) in q.iter().zip(&deq).enumerate() {
        let row = &got_q[r * cols..(r + 1) * cols];
        let as_f: Vec<f32> = row.iter().map(|&x| x as f32).collect();
        chk.check(
            &format!("q[{r}]"),
            &as_f,
            want_q,
            Tolerance { abs: 0.0, rel: 0.0 },
        );
        let d: Vec<f32> = row.iter().map(|&x| x as f32 * got_s[r]).collect();
        chk.check(&format!("dequantized[{r}]"), &d, want_d, tol);
    }
    Ok(chk.finish())
}

fn run_lfq(case: &Value) -> Result<Outcome, String> {
    let dim = num(case, "dim")?;
    let z: Vec<Vec<f32>> = mat64(case, "z")?.iter().map(|r| to32(r)).collect();
    let io = LfqIo {
        cfg: margay::quant::LfqConfig {
            scale: num(case, "codebook_scale")? as f32,
            inv_temperature: num(case, "inv_temperature")? as f32,
            diversity_gamma: num(case, "diversity_gamma")? as f32,
            entropy_weight: 1.0,
            commitment_weight: 0.0,
        },
        z: &z,
        codes: &mat64(case, "codes")?,
        indices: &vec64(case, "indices")?,
        entropies: [
            num(case, "per_sample_entropy")?,
            num(case, "codebook_entropy")?,
            num(case, "aux_loss")?,
        ],
        grad: &mat64(case, "grad")?,
        tol: tolerance(case)?,
        grad_tol: tolerance_at(case, "grad_tolerance")?,
    };
    if io.codes.len() != z.len() || io.indices.len() != z.len() || io.grad.len() != z.len() {
        return Err("`z`, `codes`, `indices` and `grad` must have one row per input".into());
    }
    if z.iter().any(|r| r.len() as f64 != dim) {
        return Err(format!("every row of `z` must have `dim` = {dim} values"));
    }
    Ok(match dim as usize {
        1 => lfq_case::<1>(&io),
        2 => lfq_case::<2>(&io),
        3 => lfq_case::<3>(&io),
        4 => lfq_case::<4>(&io),
        5 => lfq_case::<5>(&io),
        6 => lfq_case::<6>(&io),
        7 => lfq_case::<7>(&io),
        8 => lfq_case::<8>(&io),
        9 => lfq_case::<9>(&io),
        10 => lfq_case::<10>(&io),
        11 => lfq_case::<11>(&io),
        12 => lfq_case::<12>(&io),
        n => Outcome::fail(format!("LFQ dim {n}: the runner handles 1 to 12")),
    })
}

struct LfqIo<'a> {
    cfg: margay::quant::LfqConfig,
    z: &'a [Vec<f32>],
    codes: &'a [Vec<f64>],
    indices: &'a [f64],
    entropies: [f64; 3],
    grad: &'a [Vec<f64>],
    tol: Tolerance,
    grad_tol: Tolerance,
}

fn lfq_case<const D: usize>(io: &LfqIo) -> Outcome {
    let lfq = match io.cfg.build::<D>() {
        Ok(l) => l,
        Err(e) => return Outcome::fail(e.to_string()),
    };
    let mut chk = Checker::new();
    for (r, row) in io.z.iter().enumerate() {
        let mut v = [0.0f32; D];
        v.copy_from_slice(row);
        let (codes, idx) = lfq.quantize(&v);
        chk.check(&format!("codes[{r}]"), &codes, &io.codes[r], io.tol);
        if idx as f64 != io.indices[r] && chk.first_fail.is_none() {
            chk.first_fail = Some(format!(
                "indices[{r}]: got {idx}, expected {}",
                io.indices[r]
            ));
        }
    }
    let flat: Vec<f32> = io.z.iter().flatten().copied().collect();
    let mut scratch = vec![0.0f32; 1 << D];
    match lfq.entropy(&flat, &mut scratch) {
        Ok(e) => chk.check(
            "per_sample_entropy, codebook_entropy, aux_loss",
            &[e.per_sample, e.codebook, e.aux],
            &io.entropies,
            io.tol,
        ),
        Err(e) => return Outcome::fail(e.to_string()),
    }
    let mut grad = vec![0.0f32; flat.len()];
    if let Err(e) = lfq.entropy_grad(&flat, &mut scratch, &mut grad) {
        return Outcome::fail(e.to_string());
    }
    for (r, want) in io.grad.iter().enumerate() {
        chk.check(
            &format!("grad[{r}]"),
            &grad[r * D..(r + 1) * D],
            want,
            io.grad_tol,
        );
    }
    chk.finish()
}
