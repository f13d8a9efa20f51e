//! The engine's model blob (format version 2): the layer sequence with every layer's kind,
//! shape and data, so a blob written for another architecture or layer order is refused
//! naming the first layer that differs.
//!
//! Layout (little-endian, no padding):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `MGYB` |
//! | 4 | 2 | version (2) |
//! | 6 | 2 | records `n` |
//! | 8 | … | `n` records: kind (u16), four dimensions (u16 each), payload length (u32), payload |
//! | end − 4 | 4 | FNV-1a (32-bit) of every byte before it |
//!
//! A model's records come from its layers in forward order ([`Persist`]); a [`super::Lora`]
//! writes its base layer's record, then its own (`A`, `B`). What trains (`Full`, `BiasOnly`,
//! `Frozen`) is not in the blob: the same weights can be fine-tuned either way.
//!
//! [`ModelBlob::load`] checks, in order: length, magic, version, checksum, record count,
//! then each record's kind, dimensions and payload length against the model, then that
//! every float is finite, and only then writes the model: a refused blob changes nothing.
//! Int8 weights are borrowed in place (they stay in flash on a microcontroller).

use crate::nn::{fnv1a32, BlobError, MAGIC};
use core::fmt;

/// The blob's first four bytes (shared with the version-1 blob).
pub const BLOB_MAGIC: [u8; 4] = MAGIC;
/// The engine blob's format version.
pub const BLOB_VERSION: u16 = 2;
const HEADER: usize = 8;
const RECORD: usize = 14;

/// A layer's kind in a blob record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u16)]
#[non_exhaustive]
pub enum LayerKind {
    /// [`super::Scale`]: dims (width).
    Scale = 1,
    /// A float dense layer: dims (in, out).
    Dense = 2,
    /// [`super::Int8Dense`]: dims (in, out).
    Int8Dense = 3,
    /// A float convolution: dims (cin, cout, k, s·256 + p).
    Conv = 4,
    /// A float depthwise convolution: dims (c, k, s, p).
    Depthwise = 5,
    /// A LoRA adapter: dims (cin, cout, rank, positions).
    Lora = 6,
    /// ReLU: dims (width).
    Relu = 7,
    /// ReLU6: dims (width).
    Relu6 = 8,
    /// Average pooling: dims (c, l, k, s).
    AvgPool = 9,
    /// Global average pooling: dims (c, l).
    GlobalAvgPool = 10,
    /// Flatten: dims (c, l).
    Flatten = 11,
    /// [`super::QInput`]: dims (width).
    QInput = 12,
    /// [`super::QDense`]: dims (in, out).
    QDense = 13,
    /// [`super::QConv1d`]: dims (cin, cout, k, s·256 + p).
    QConv = 14,
    /// [`super::QDepthwise1d`]: dims (c, k, s, p).
    QDepthwise = 15,
    /// [`super::Dequantize`]: dims (width).
    Dequantize = 16,
    /// A kind this build does not know.
    Unknown = 0xffff,
}

impl LayerKind {
    fn from_u16(v: u16) -> LayerKind {
        use LayerKind::*;
        match v {
            1 => Scale,
            2 => Dense,
            3 => Int8Dense,
            4 => Conv,
            5 => Depthwise,
            6 => Lora,
            7 => Relu,
            8 => Relu6,
            9 => AvgPool,
            10 => GlobalAvgPool,
            11 => Flatten,
            12 => QInput,
            13 => QDense,
            14 => QConv,
            15 => QDepthwise,
            16 => Dequantize,
            _ => Unknown,
        }
    }
}

/// A layer's kind and shape as a blob record states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LayerDesc {
    /// The kind.
    pub kind: LayerKind,
    /// Its dimensions (see [`LayerKind`]; unused ones 0).
    pub dims: [u16; 4],
}

impl LayerDesc {
    /// A record header; dimensions beyond `u16` are a build error where the layer states
    /// them.
    pub const fn new(kind: LayerKind, dims: [usize; 4]) -> Self {
        let mut d = [0u16; 4];
        let mut i = 0;
        while i < 4 {
            assert!(
                dims[i] <= u16::MAX as usize,
                "a layer dimension above 65535"
            );
            d[i] = dims[i] as u16;
            i += 1;
        }
        LayerDesc { kind, dims: d }
    }
}

impl fmt::Display for LayerDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}{:?}", self.kind, self.dims)
    }
}

/// One record as a layer declares it: header, payload length and where its floats are (the
/// byte range `floats` of the payload, checked to be finite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Kind and shape.
    pub desc: LayerDesc,
    /// Payload bytes.
    pub len: usize,
    /// Byte range of f32 values in the payload.
    pub floats: (usize, usize),
}

/// A record's payload being read.
#[derive(Debug)]
pub struct Payload<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Payload<'a> {
    /// The next `n` bytes (zeros past the end: lengths were checked before any load).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let s = self.b.get(self.at..self.at + n).unwrap_or(&[]);
        self.at += n;
        s
    }
    /// The next f32.
    pub fn f32(&mut self) -> f32 {
        let b = self.bytes(4);
        b.try_into().map(f32::from_le_bytes).unwrap_or(0.0)
    }
    /// The next i32.
    pub fn i32(&mut self) -> i32 {
        let b = self.bytes(4);
        b.try_into().map(i32::from_le_bytes).unwrap_or(0)
    }
}

/// Reads a checked blob's records in order (given to [`Persist::load`]).
#[derive(Debug)]
pub struct BlobReader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> BlobReader<'a> {
    /// The next record's payload (the blob was checked against the model's records).
    pub fn record(&mut self) -> Payload<'a> {
        let len = self
            .b
            .get(self.at + 10..self.at + RECORD)
            .and_then(|l| l.try_into().ok())
            .map(u32::from_le_bytes)
            .unwrap_or(0) as usize;
        let start = self.at + RECORD;
        self.at = start + len;
        Payload {
            b: self.b.get(start..start + len).unwrap_or(&[]),
            at: 0,
        }
    }
}

/// Writes records into a blob (given to [`Persist::save`]); a write past the end is
/// remembered and makes [`ModelBlob::encode`] fail.
#[derive(Debug)]
pub struct BlobWriter<'o> {
    out: &'o mut [u8],
    at: usize,
    overflow: bool,
}

impl BlobWriter<'_> {
    /// A record header.
    pub fn record(&mut self, r: &Record) {
        self.u16(r.desc.kind as u16);
        for d in r.desc.dims {
            self.u16(d);
        }
        self.bytes(&(r.len as u32).to_le_bytes());
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes())
    }
    /// Raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        match self.out.get_mut(self.at..self.at + b.len()) {
            Some(o) => o.copy_from_slice(b),
            None => self.overflow = true,
        }
        self.at += b.len();
    }
    /// An f32.
    pub fn f32(&mut self, v: f32) {
        self.bytes(&v.to_le_bytes())
    }
    /// Several f32.
    pub fn f32s<'v>(&mut self, v: impl IntoIterator<Item = &'v f32>) {
        for v in v {
            self.f32(*v)
        }
    }
    /// An i32.
    pub fn i32(&mut self, v: i32) {
        self.bytes(&v.to_le_bytes())
    }
}

/// A layer (or model) that has records in a blob: its records in forward order, how to
/// write them and how to load them (after [`ModelBlob::load`] checked them).
pub trait Persist<'a> {
    /// Records this layer writes.
    const RECORDS: usize;
    /// Bytes of its records (headers and payloads).
    const BYTES: usize;
    /// Each record in order.
    fn records(f: &mut dyn FnMut(Record));
    /// Writes its records.
    fn save(&self, w: &mut BlobWriter<'_>);
    /// Reads its records (checked: every length and float is as [`Persist::records`] says).
    fn load(&mut self, r: &mut BlobReader<'a>);
}

/// The model blob of a [`Persist`] model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelBlob;

/// Bytes of one record.
pub const fn record_bytes(payload: usize) -> usize {
    RECORD + payload
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

impl ModelBlob {
    /// The blob length of model `M`.
    pub const fn len<'a, M: Persist<'a>>() -> usize {
        HEADER + M::BYTES + 4
    }

    /// Writes `model`'s blob into `out` (exactly [`ModelBlob::len`] bytes, else an error
    /// and nothing written).
    pub fn encode<'a, M: Persist<'a>>(model: &M, out: &mut [u8]) -> Result<(), BlobError> {
        let expected = Self::len::<M>();
        if out.len() != expected {
            return Err(BlobError::Length {
                len: out.len(),
                expected,
            });
        }
        let mut w = BlobWriter {
            out,
            at: 0,
            overflow: false,
        };
        w.bytes(&BLOB_MAGIC);
        w.u16(BLOB_VERSION);
        w.u16(M::RECORDS as u16);
        model.save(&mut w);
        let (at, overflow) = (w.at, w.overflow);
        if overflow || at != expected - 4 {
            return Err(BlobError::Length {
                len: at + 4,
                expected,
            });
        }
        let sum = fnv1a32(&out[..at]);
        out[at..].copy_from_slice(&sum.to_le_bytes());
        Ok(())
    }

    /// Checks `bytes` against model `M` (see the module docs for the order), changing nothing.
    pub fn check<'a, M: Persist<'a>>(bytes: &[u8]) -> Result<(), BlobError> {
        let expected = Self::len::<M>();
        if bytes.len() < HEADER + 4 {
            return Err(BlobError::Length {
                len: bytes.len(),
                expected,
            });
        }
        if bytes[..4] != BLOB_MAGIC {
            return Err(BlobError::Magic);
        }
        let found = u16_at(bytes, 4);
        if found != BLOB_VERSION {
            return Err(BlobError::Version { found });
        }
        let end = bytes.len() - 4;
        let stored =
            u32::from_le_bytes([bytes[end], bytes[end + 1], bytes[end + 2], bytes[end + 3]]);
        let computed = fnv1a32(&bytes[..end]);
        if stored != computed {
            return Err(BlobError::Checksum { stored, computed });
        }
        let records = u16_at(bytes, 6);
        if records as usize != M::RECORDS {
            return Err(BlobError::Layers {
                found: records,
                expected: M::RECORDS as u16,
            });
        }
        let mut at = HEADER;
        let mut index = 0u16;
        let mut err = None;
        M::records(&mut |r| {
            if err.is_some() {
                return;
            }
            if at + RECORD > end {
                err = Some(BlobError::Length {
                    len: bytes.len(),
                    expected,
                });
                return;
            }
            let mut dims = [0u16; 4];
            for (i, d) in dims.iter_mut().enumerate() {
                *d = u16_at(bytes, at + 2 + 2 * i);
            }
            let found = LayerDesc {
                kind: LayerKind::from_u16(u16_at(bytes, at)),
                dims,
            };
            if found != r.desc {
                err = Some(BlobError::Layer {
                    index,
                    found,
                    expected: r.desc,
                });
                return;
            }
            let len = u32::from_le_bytes([
                bytes[at + 10],
                bytes[at + 11],
                bytes[at + 12],
                bytes[at + 13],
            ]) as usize;
            let start = at + RECORD;
            if len != r.len || start + len > end {
                err = Some(BlobError::Length {
                    len: bytes.len(),
                    expected,
                });
                return;
            }
            for f in (start + r.floats.0..start + r.floats.1).step_by(4) {
                let v = f32::from_le_bytes([bytes[f], bytes[f + 1], bytes[f + 2], bytes[f + 3]]);
                if !v.is_finite() {
                    err = Some(BlobError::NonFinite { offset: f });
                    return;
                }
            }
            at = start + len;
            index += 1;
        });
        if let Some(e) = err {
            return Err(e);
        }
        if at != end {
            return Err(BlobError::Length {
                len: bytes.len(),
                expected,
            });
        }
        Ok(())
    }

    /// Checks `bytes` ([`ModelBlob::check`]) and loads them into `model`; on an error the
    /// model is unchanged.
    pub fn load<'a, M: Persist<'a>>(model: &mut M, bytes: &'a [u8]) -> Result<(), BlobError> {
        Self::check::<M>(bytes)?;
        let mut r = BlobReader {
            b: bytes,
            at: HEADER,
        };
        model.load(&mut r);
        Ok(())
    }
}
