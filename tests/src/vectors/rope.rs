//! Kinds `rope` and `rope2d`: frequencies, attention factor and rotated rows.

use super::{field, mat64, num, to32, tolerance_of, vec64, Checker, Outcome, Tolerance};
use margay::rope::{
    AxialConfig, Direction, Layout, Llama3, LongRope, Positions, RopeConfig, Scaling, Yarn,
};
use serde_json::Value;

/// Pair capacity of the runner: head dims up to 512.
const CAP: usize = 256;

/// f64 frequencies agree with the float64 references to a few ulp.
const FREQ_TOL: Tolerance = Tolerance {
    abs: 0.0,
    rel: 1e-12,
};

fn layout(case: &Value) -> Result<Layout, String> {
    match field(case, "layout")?.as_str() {
        Some("interleaved") => Ok(Layout::Interleaved),
        Some("half") => Ok(Layout::HalfSplit),
        other => Err(format!(
            "`layout` must be \"interleaved\" or \"half\", found {other:?}"
        )),
    }
}

/// Per-row tolerances: a list (one per position) or one entry for every row.
fn row_tolerances(case: &Value, rows: usize) -> Result<Vec<Tolerance>, String> {
    let t = field(case, "tolerance")?;
    match t.as_array() {
        Some(list) if list.len() == rows => list.iter().map(tolerance_of).collect(),
        Some(list) => Err(format!(
            "`tolerance` lists {} entries for {rows} positions",
            list.len()
        )),
        None => Ok(vec![tolerance_of(t)?; rows]),
    }
}

fn u32_field(v: &Value, keys: &[&str]) -> Result<u32, String> {
    for k in keys {
        if v.get(*k).is_some() {
            let x = num(v, k)?;
            if x < 0.0 || x > u32::MAX as f64 || x.fract() != 0.0 {
                return Err(format!("`{k}` must be a non-negative integer"));
            }
            return Ok(x as u32);
        }
    }
    Err(format!("missing field `{}`", keys[0]))
}

fn opt_num(v: &Value, key: &str) -> Result<Option<f64>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => num(v, key).map(Some),
    }
}

/// The JSON `scaling` object → margay's `Scaling` (factor lists borrowed from `store`).
fn scaling<'a>(s: &Value, store: &'a [Vec<f64>; 3]) -> Result<Scaling<'a>, String> {
    const L0: &[&str] = &["original_max_position", "original_max_position_embeddings"];
    let kind = field(s, "type")?
        .as_str()
        .ok_or("`scaling.type` must be a string")?;
    Ok(match kind {
        "none" | "default" => Scaling::Default,
        "linear" => Scaling::Linear {
            factor: num(s, "factor")?,
        },
        "ntk" => Scaling::Ntk {
            factor: num(s, "factor")?,
        },
        "dynamic" => Scaling::Dynamic {
            factor: num(s, "factor")?,
            max_position_embeddings: u32_field(s, &[L0[0], L0[1], "max_position_embeddings"])?,
            seq_len: u32_field(s, &["seq_len"])?,
        },
        "yarn" => {
            let mut y = Yarn::new(num(s, "factor")?, u32_field(s, L0)?);
            if let Some(b) = opt_num(s, "beta_fast")? {
                y.beta_fast = b;
            }
            if let Some(b) = opt_num(s, "beta_slow")? {
                y.beta_slow = b;
            }
            if let Some(t) = s.get("truncate") {
                y.truncate = t.as_bool().ok_or("`truncate` must be a boolean")?;
            }
            y.mscale = opt_num(s, "mscale")?;
            y.mscale_all_dim = opt_num(s, "mscale_all_dim")?;
            y.attention_factor = opt_num(s, "attention_factor")?;
            Scaling::Yarn(y)
        }
        "llama3" => Scaling::Llama3(Llama3 {
            factor: num(s, "factor")?,
            low_freq_factor: num(s, "low_freq_factor")?,
            high_freq_factor: num(s, "high_freq_factor")?,
            original_max_position_embeddings: u32_field(s, L0)?,
        }),
        "longrope" => Scaling::LongRope(LongRope {
            short_factor: &store[0],
            long_factor: &store[1],
            original_max_position_embeddings: u32_field(s, L0)?,
            max_position_embeddings: u32_field(s, &["max_position_embeddings"])?,
            seq_len: u32_field(s, &["seq_len"])?,
            attention_factor: opt_num(s, "attention_factor")?,
        }),
        "per_pair" => Scaling::PerPair {
            factors: &store[2],
            attention_factor: opt_num(s, "attention_factor")?.unwrap_or(1.0),
        },
        other => return Err(format!("unknown scaling type `{other}`")),
    })
}

fn positions(case: &Value, rows: usize) -> Result<Vec<i32>, String> {
    let p = vec64(case, "positions")?;
    if p.len() != rows {
        return Err(format!("{} positions for {rows} rows of `x`", p.len()));
    }
    p.iter()
        .map(|&v| {
            if v.fract() == 0.0 && v >= i32::MIN as f64 && v <= i32::MAX as f64 {
                Ok(v as i32)
            } else {
                Err(format!("position {v} is not an i32"))
            }
        })
        .collect()
}

/// Input rows (f32) and expected rows (f64).
type Rows = (Vec<Vec<f32>>, Vec<Vec<f64>>);

fn rows_of(case: &Value, d: usize) -> Result<Rows, String> {
    let x: Vec<Vec<f32>> = mat64(case, "x")?.iter().map(|r| to32(r)).collect();
    let e = mat64(case, "expected")?;
    if e.len() != x.len() || x.iter().any(|r| r.len() != d) || e.iter().any(|r| r.len() != d) {
        return Err(format!(
            "`x` and `expected` need the same number of rows of head_dim = {d}"
        ));
    }
    Ok((x, e))
}

pub(super) fn run_rope(case: &Value) -> Result<Outcome, String> {
    let head_dim = num(case, "head_dim")? as usize;
    let s = field(case, "scaling")?;
    let list = |k: &str| -> Result<Vec<f64>, String> {
        if s.get(k).is_some() {
            vec64(s, k)
        } else {
            Ok(Vec::new())
        }
    };
    let store = [
        list("short_factor")?,
        list("long_factor")?,
        list("factors")?,
    ];
    let cfg = RopeConfig::new(head_dim)
        .rotary_dim(num(case, "rotary_dim")? as usize)
        .base(num(case, "base")?)
        .layout(layout(case)?)
        .scaling(scaling(s, &store)?);
    let (x, expected) = rows_of(case, head_dim)?;
    let pos = positions(case, x.len())?;
    let tol = row_tolerances(case, x.len())?;
    let rope = match cfg.build::<CAP>() {
        Ok(r) => r,
        Err(e) => return Ok(Outcome::fail(e.to_string())),
    };
    let mut chk = Checker::new();
    let f = rope.frequencies();
    chk.check64("inv_freq", &f.inv_freq, &vec64(case, "inv_freq")?, FREQ_TOL);
    chk.check64(
        "attention_factor",
        &[f.attention_factor],
        &[num(case, "attention_factor")?],
        FREQ_TOL,
    );
    let mut flat: Vec<f32> = x.concat();
    if let Err(e) = rope.apply_rows(&mut flat, Positions::List(&pos), Direction::Forward) {
        return Ok(Outcome::fail(e.to_string()));
    }
    for (r, got) in flat.chunks_exact(head_dim).enumerate() {
        chk.check(
            &format!("expected[{r}] (position {})", pos[r]),
            got,
            &expected[r],
            tol[r],
        );
    }
    Ok(chk.finish())
}

pub(super) fn run_rope2d(case: &Value) -> Result<Outcome, String> {
    let head_dim = num(case, "head_dim")? as usize;
    let cfg = AxialConfig::two_d(head_dim)
        .base(num(case, "base")?)
        .layout(layout(case)?);
    let (x, expected) = rows_of(case, head_dim)?;
    let pos: Vec<[i32; 2]> = mat64(case, "positions")?
        .iter()
        .map(|p| match p.as_slice() {
            [a, b] => Ok([*a as i32, *b as i32]),
            _ => Err("each position must be [x, y]".to_string()),
        })
        .collect::<Result<_, _>>()?;
    if pos.len() != x.len() {
        return Err(format!("{} positions for {} rows", pos.len(), x.len()));
    }
    let tol = row_tolerances(case, x.len())?;
    let rope = match cfg.build::<CAP>() {
        Ok(r) => r,
        Err(e) => return Ok(Outcome::fail(e.to_string())),
    };
    let mut chk = Checker::new();
    let mut flat: Vec<f32> = x.concat();
    if let Err(e) = rope.apply_rows(&mut flat, &pos, Direction::Forward) {
        return Ok(Outcome::fail(e.to_string()));
    }
    for (r, got) in flat.chunks_exact(head_dim).enumerate() {
        chk.check(
            &format!("expected[{r}] (position {:?})", pos[r]),
            got,
            &expected[r],
            tol[r],
        );
    }
    Ok(chk.finish())
}
