//! The model blob: a pretrained classifier's frozen int8 base and float head, as written by
//! `margay digits pretrain` on the host and included in the firmware with `include_bytes!`.
//!
//! Layout (version 1, little-endian, no padding):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `MGYB` |
//! | 4 | 2 | version (1) |
//! | 6 | 2 | inputs `IN` |
//! | 8 | 2 | hidden `HID` |
//! | 10 | 2 | classes `OUT` |
//! | 12 | 4 | input scale (f32: reading → model input) |
//! | 16 | HID·IN | base weights, int8, row-major (one row per hidden unit) |
//! | … | 4·HID | per-row scales (f32; weight = q·scale) |
//! | … | 4·HID | hidden biases (f32) |
//! | … | 4·OUT·HID | head weights (f32, row-major) |
//! | … | 4·OUT | head biases (f32) |
//! | end − 4 | 4 | FNV-1a (32-bit) of every byte before it |
//!
//! [`BaseModel::parse`] checks, in order: magic, version, shape, length, checksum, then that
//! every float is finite; the first failure is the error and nothing is returned. The int8
//! weights are borrowed in place (they stay in flash on a microcontroller).

use core::fmt;

/// The blob's first four bytes.
pub const MAGIC: [u8; 4] = *b"MGYB";
/// The format version this build reads and writes.
pub const VERSION: u16 = 1;
const HEADER: usize = 16;

/// The byte length of a version-1 blob for these sizes.
pub const fn blob_len(inputs: usize, hidden: usize, classes: usize) -> usize {
    HEADER + hidden * inputs + 4 * (2 * hidden + classes * hidden + classes) + 4
}

/// FNV-1a, 32-bit.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    h
}

/// Why a blob was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BlobError {
    /// The byte length is not the one the shape needs (truncated, or a different model).
    Length {
        /// Bytes given.
        len: usize,
        /// Bytes this shape needs.
        expected: usize,
    },
    /// Not a margay model blob.
    Magic,
    /// Written by another format version.
    Version {
        /// The blob's version.
        found: u16,
    },
    /// The blob holds another shape than the firmware was built for.
    Shape {
        /// The blob's (inputs, hidden, classes).
        found: (u16, u16, u16),
        /// The build's.
        expected: (u16, u16, u16),
    },
    /// The checksum does not match: the blob is corrupt or was edited.
    Checksum {
        /// Stored in the blob.
        stored: u32,
        /// Computed over its bytes.
        computed: u32,
    },
    /// The blob has another number of layer records than the model.
    Layers {
        /// Records in the blob.
        found: u16,
        /// Records the model has.
        expected: u16,
    },
    /// A layer record differs from the model's layer at that position (kind or shape).
    Layer {
        /// 0-based record index.
        index: u16,
        /// The blob's record.
        found: super::engine::LayerDesc,
        /// The model's.
        expected: super::engine::LayerDesc,
    },
    /// A weight, scale or bias is NaN or ±Inf (byte offset of the first one).
    NonFinite {
        /// Byte offset.
        offset: usize,
    },
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BlobError::Length { len, expected } => write!(
                f,
                "model blob has {len} bytes, this shape needs {expected}: truncated or another model; re-run `margay digits pretrain`"
            ),
            BlobError::Magic => f.write_str("not a margay model blob (magic is not MGYB)"),
            BlobError::Version { found } => write!(
                f,
                "model blob version {found}, this build reads version {VERSION}; re-run `margay digits pretrain`"
            ),
            BlobError::Shape { found, expected } => write!(
                f,
                "model blob shape {found:?} (inputs, hidden, classes), this build expects {expected:?}"
            ),
            BlobError::Checksum { stored, computed } => write!(
                f,
                "model blob checksum {stored:#010x} does not match its bytes ({computed:#010x}): corrupt; re-run `margay digits pretrain`"
            ),
            BlobError::Layers { found, expected } => write!(
                f,
                "model blob has {found} layer records, this model has {expected}: another architecture; re-run the pretraining for this model"
            ),
            BlobError::Layer { index, found, expected } => write!(
                f,
                "model blob layer {index} is {found}, this model's layer {index} is {expected}: another architecture or layer order; re-run the pretraining for this model"
            ),
            BlobError::NonFinite { offset } => {
                write!(f, "model blob has a NaN/Inf value at byte {offset}")
            }
        }
    }
}

/// A verified blob of a pretrained `IN → HID → OUT` classifier: a view over its bytes
/// (nothing is copied, so on a microcontroller the whole model stays in flash).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaseModel<'a, const IN: usize, const HID: usize, const OUT: usize> {
    bytes: &'a [u8],
}

/// The parts of a blob, for [`BaseModel::encode`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaseParts<'a, const IN: usize, const HID: usize, const OUT: usize> {
    /// Base weights as int8 bytes, `HID·IN`, row-major.
    pub q: &'a [u8],
    /// Per-row scales (weight = q·scale).
    pub scale: &'a [f32; HID],
    /// Hidden biases.
    pub b1: &'a [f32; HID],
    /// Head weights, one row per class.
    pub w2: &'a [[f32; HID]; OUT],
    /// Head biases.
    pub b2: &'a [f32; OUT],
    /// Reading → model input factor (1/16 for 0..16 pixels).
    pub input_scale: f32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<'a, const IN: usize, const HID: usize, const OUT: usize> BaseModel<'a, IN, HID, OUT> {
    /// The blob length for this shape.
    pub const LEN: usize = blob_len(IN, HID, OUT);
    const Q: usize = HEADER;
    const SCALE: usize = HEADER + HID * IN;
    const B1: usize = Self::SCALE + 4 * HID;
    const W2: usize = Self::B1 + 4 * HID;
    const B2: usize = Self::W2 + 4 * HID * OUT;

    /// Reads and verifies a version-1 blob (see the module docs for the order of checks).
    pub fn parse(b: &'a [u8]) -> Result<Self, BlobError> {
        let length = BlobError::Length {
            len: b.len(),
            expected: Self::LEN,
        };
        if b.len() < HEADER {
            return Err(length);
        }
        if b[..4] != MAGIC {
            return Err(BlobError::Magic);
        }
        let found = u16_at(b, 4);
        if found != VERSION {
            return Err(BlobError::Version { found });
        }
        let shape = (u16_at(b, 6), u16_at(b, 8), u16_at(b, 10));
        let expected = (IN as u16, HID as u16, OUT as u16);
        if shape != expected {
            return Err(BlobError::Shape {
                found: shape,
                expected,
            });
        }
        if b.len() != Self::LEN {
            return Err(length);
        }
        let end = b.len() - 4;
        let stored = u32::from_le_bytes([b[end], b[end + 1], b[end + 2], b[end + 3]]);
        let computed = fnv1a32(&b[..end]);
        if stored != computed {
            return Err(BlobError::Checksum { stored, computed });
        }
        let floats = core::iter::once(12).chain((Self::SCALE..end).step_by(4));
        for at in floats {
            if !f32_at(b, at).is_finite() {
                return Err(BlobError::NonFinite { offset: at });
            }
        }
        Ok(BaseModel { bytes: b })
    }

    /// The int8 base weights (as bytes), `HID·IN`, row-major.
    pub fn q(&self) -> &'a [u8] {
        &self.bytes[Self::Q..Self::SCALE]
    }
    /// Row `o`'s scale.
    pub fn scale(&self, o: usize) -> f32 {
        f32_at(self.bytes, Self::SCALE + 4 * o)
    }
    /// Hidden bias `o`.
    pub fn b1(&self, o: usize) -> f32 {
        f32_at(self.bytes, Self::B1 + 4 * o)
    }
    /// Head weight from hidden unit `i` to class `o`.
    pub fn w2(&self, o: usize, i: usize) -> f32 {
        f32_at(self.bytes, Self::W2 + 4 * (o * HID + i))
    }
    /// Head bias `o`.
    pub fn b2(&self, o: usize) -> f32 {
        f32_at(self.bytes, Self::B2 + 4 * o)
    }
    /// Reading → model input factor.
    pub fn input_scale(&self) -> f32 {
        f32_at(self.bytes, 12)
    }

    /// Writes a blob of `parts` into `out` (exactly [`Self::LEN`] bytes, else an error and
    /// nothing written; `parts.q` must hold `HID·IN` bytes).
    pub fn encode(parts: &BaseParts<'_, IN, HID, OUT>, out: &mut [u8]) -> Result<(), BlobError> {
        if out.len() != Self::LEN {
            return Err(BlobError::Length {
                len: out.len(),
                expected: Self::LEN,
            });
        }
        if parts.q.len() != HID * IN {
            return Err(BlobError::Length {
                len: parts.q.len(),
                expected: HID * IN,
            });
        }
        out[..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&VERSION.to_le_bytes());
        out[6..8].copy_from_slice(&(IN as u16).to_le_bytes());
        out[8..10].copy_from_slice(&(HID as u16).to_le_bytes());
        out[10..12].copy_from_slice(&(OUT as u16).to_le_bytes());
        out[12..16].copy_from_slice(&parts.input_scale.to_le_bytes());
        out[Self::Q..Self::SCALE].copy_from_slice(parts.q);
        let mut at = Self::SCALE;
        let floats = parts
            .scale
            .iter()
            .chain(parts.b1)
            .chain(parts.w2.as_flattened())
            .chain(parts.b2);
        for x in floats {
            out[at..at + 4].copy_from_slice(&x.to_le_bytes());
            at += 4;
        }
        let sum = fnv1a32(&out[..at]);
        out[at..at + 4].copy_from_slice(&sum.to_le_bytes());
        Ok(())
    }
}
