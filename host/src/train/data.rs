//! Character-level tinyshakespeare: vocabulary, the fixed 90/10 split, and seeded batches.
//!
//! Nothing here touches burn: batches are plain `Vec<i64>` token ids, so the sampling order
//! (and therefore a resumed run) depends only on margay's own SplitMix64 state.

use std::io::Read;
use std::path::{Path, PathBuf};

use margay::math::SplitMix64;

/// The corpus shipped with the crate (gzip of `../shared/data/tinyshakespeare.txt`).
pub const SHIPPED: &[u8] = include_bytes!("../../data/tinyshakespeare.txt.gz");

/// Where the text came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The gzip compiled into the binary.
    Shipped,
    /// A UTF-8 text file given on the command line.
    File(PathBuf),
}

/// A character vocabulary: the distinct characters of the text, sorted by code point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocab {
    chars: Vec<char>,
}

impl Vocab {
    /// The vocabulary of `text`.
    pub fn of(text: &str) -> Self {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Vocab { chars }
    }

    /// Rebuilt from the string a checkpoint stores.
    pub fn from_string(s: &str) -> Self {
        Vocab {
            chars: s.chars().collect(),
        }
    }

    /// The characters in id order, as one string (stored in checkpoints).
    pub fn as_string(&self) -> String {
        self.chars.iter().collect()
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// `true` for an empty text.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// Token id of `c`, if it is in the vocabulary.
    pub fn id(&self, c: char) -> Option<usize> {
        self.chars.binary_search(&c).ok()
    }

    /// Character of token `id`.
    pub fn char(&self, id: usize) -> char {
        self.chars[id]
    }

    /// Encodes `text`; the first character outside the vocabulary is an error.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        text.chars()
            .map(|c| {
                self.id(c).map(|i| i as u32).ok_or_else(|| {
                    format!(
                        "character {c:?} is not in the model's vocabulary of {} characters",
                        self.len()
                    )
                })
            })
            .collect()
    }
}

/// Which half of the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The first 90% of the characters.
    Train,
    /// The last 10%.
    Val,
}

/// The encoded corpus, split 90/10 by position (nanoGPT's `prepare.py`).
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Vocabulary of the whole text.
    pub vocab: Vocab,
    train: Vec<u32>,
    val: Vec<u32>,
}

impl Corpus {
    /// Loads the shipped corpus or a text file. Errors name the file and the fix.
    pub fn load(source: &Source) -> Result<Self, String> {
        let text = match source {
            Source::Shipped => {
                let mut s = String::new();
                flate2::read::GzDecoder::new(SHIPPED)
                    .read_to_string(&mut s)
                    .map_err(|e| format!("the shipped corpus does not decompress: {e}"))?;
                s
            }
            Source::File(p) => read_text(p)?,
        };
        Self::from_text(&text).map_err(|e| match source {
            Source::Shipped => e,
            Source::File(p) => format!("{}: {e}", p.display()),
        })
    }

    /// Splits and encodes `text` (at least 2 distinct characters and long enough for a
    /// validation half).
    pub fn from_text(text: &str) -> Result<Self, String> {
        let vocab = Vocab::of(text);
        if vocab.len() < 2 {
            return Err("the text needs at least 2 distinct characters to train on".into());
        }
        let ids = vocab.encode(text)?;
        let n = ids.len() * 9 / 10;
        let (train, val) = (ids[..n].to_vec(), ids[n..].to_vec());
        Ok(Corpus { vocab, train, val })
    }

    /// The tokens of one half.
    pub fn tokens(&self, split: Split) -> &[u32] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        }
    }

    /// Checks that both halves hold at least one window of `block + 1` tokens.
    pub fn check_block(&self, block: usize) -> Result<(), String> {
        for (name, s) in [("train", &self.train), ("validation", &self.val)] {
            if s.len() <= block + 1 {
                return Err(format!(
                    "the {name} split has {} characters, fewer than block_size + 2 = {}: use a \
                     longer text or a smaller --block-size",
                    s.len(),
                    block + 2
                ));
            }
        }
        Ok(())
    }

    /// `batch` random windows (offsets drawn from `rng`): inputs and next-character
    /// targets, row-major `[batch, block]`.
    pub fn batch(
        &self,
        split: Split,
        batch: usize,
        block: usize,
        rng: &mut SplitMix64,
    ) -> (Vec<i64>, Vec<i64>) {
        let data = self.tokens(split);
        let span = (data.len() - block - 1) as u64;
        let (mut x, mut y) = (
            Vec::with_capacity(batch * block),
            Vec::with_capacity(batch * block),
        );
        for _ in 0..batch {
            let i = rng.below(span) as usize;
            x.extend(data[i..i + block].iter().map(|&t| t as i64));
            y.extend(data[i + 1..i + 1 + block].iter().map(|&t| t as i64));
        }
        (x, y)
    }
}

fn read_text(p: &Path) -> Result<String, String> {
    let bytes = std::fs::read(p).map_err(|e| {
        format!(
            "{}: cannot read the training text ({e}); pass an existing UTF-8 file with --data, or \
             leave --data out to use the shipped tinyshakespeare",
            p.display()
        )
    })?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{}: not UTF-8 text (invalid byte at offset {}); convert it to UTF-8",
            p.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_corpus_splits_like_nanogpt() {
        let c = Corpus::load(&Source::Shipped).unwrap();
        assert_eq!(c.vocab.len(), 65);
        assert_eq!(c.tokens(Split::Train).len(), 1_003_854);
        assert_eq!(c.tokens(Split::Val).len(), 111_540);
        assert_eq!(c.vocab.char(0), '\n');
    }

    #[test]
    fn batches_are_shifted_windows_and_seeded() {
        let c = Corpus::from_text("abcdefghijklmnopqrstuvwxyz0123456789").unwrap();
        let (x, y) = c.batch(Split::Train, 3, 4, &mut SplitMix64::new(7));
        assert_eq!(x.len(), 12);
        for r in 0..3 {
            assert_eq!(&x[r * 4 + 1..r * 4 + 4], &y[r * 4..r * 4 + 3]);
        }
        assert_eq!(
            (x.clone(), y),
            c.batch(Split::Train, 3, 4, &mut SplitMix64::new(7))
        );
    }

    #[test]
    fn bad_text_is_an_error_naming_the_fix() {
        assert!(Corpus::from_text("aaaa")
            .unwrap_err()
            .contains("2 distinct"));
        let e = Corpus::load(&Source::File("/nonexistent/x.txt".into())).unwrap_err();
        assert!(
            e.contains("/nonexistent/x.txt") && e.contains("--data"),
            "{e}"
        );
        let c = Corpus::from_text("abcdefghij").unwrap();
        assert!(c.check_block(64).unwrap_err().contains("--block-size"));
    }
}
