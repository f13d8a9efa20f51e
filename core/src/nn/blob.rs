//! What every margay model blob shares: the magic, the checksum (FNV-1a) and the errors a
//! blob is refused with. The format itself (version 2: the layer sequence) is
//! [`super::engine::ModelBlob`].

use core::fmt;

/// The blob's first four bytes.
pub const MAGIC: [u8; 4] = *b"MGYB";

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
                "model blob has {len} bytes, this shape needs {expected}: truncated or another model; re-run the pretraining that wrote it (the digits demo: `margay digits pretrain`)"
            ),
            BlobError::Magic => f.write_str("not a margay model blob (magic is not MGYB)"),
            BlobError::Version { found } => write!(
                f,
                "model blob version {found}, this build reads version {}; re-run the pretraining that wrote it (the digits demo: `margay digits pretrain`)",
                super::engine::BLOB_VERSION
            ),
            BlobError::Checksum { stored, computed } => write!(
                f,
                "model blob checksum {stored:#010x} does not match its bytes ({computed:#010x}): corrupt; re-run the pretraining that wrote it (the digits demo: `margay digits pretrain`)"
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
