//! Process names held inline: [`Comm`], the kernel's `task_struct.comm` without allocation.
use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes of a process name (`task_struct.comm`, NUL included when it fits).
pub use tracer_common::COMM_LEN;

/// A process name (`task_struct.comm`), held inline (16 bytes, `Copy`, no allocation).
///
/// It reads as the kernel's bytes up to the first NUL, decoded as UTF-8 with every invalid
/// sequence replaced by U+FFFD (`String::from_utf8_lossy`), which is what it displays,
/// compares as and serialises to (a JSON string). Stored form: those characters, except that
/// each U+FFFD is the single byte 0xFF (never valid in UTF-8), zero-padded; so the kernel's
/// at most 16 bytes always fit, and equal names have equal bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Comm([u8; COMM_LEN]);

const HIGH: u128 = u128::from_le_bytes([0x80; COMM_LEN]);

/// The kernel's 16 name bytes as one word, and the classic "has a zero byte" test on it: the
/// high bit of the lowest NUL byte is set (bits above it may be set wrongly), and the result
/// is zero exactly when there is no NUL.
pub(crate) fn nul_bits(bytes: &[u8; COMM_LEN]) -> (u128, u128) {
    const LOW: u128 = u128::from_le_bytes([0x01; COMM_LEN]);
    let v = u128::from_le_bytes(*bytes);
    (v, v.wrapping_sub(LOW) & !v & HIGH)
}

impl Comm {
    /// The name in the kernel's `comm` bytes (up to the first NUL).
    pub fn from_kernel(bytes: &[u8; COMM_LEN]) -> Self {
        // Word-at-a-time: the first NUL byte, then the bytes before it kept if they are all
        // ASCII.
        let (v, zeros) = nul_bits(bytes);
        let end = (zeros.trailing_zeros() / 8) as usize;
        let keep = if end >= COMM_LEN {
            u128::MAX
        } else {
            (1u128 << (8 * end)) - 1
        };
        if v & keep & HIGH == 0 {
            return Self((v & keep).to_le_bytes());
        }
        let raw = &bytes[..end.min(COMM_LEN)];
        let mut out = [0u8; COMM_LEN];
        let mut n = 0;
        for chunk in raw.utf8_chunks() {
            // Never longer than `raw`: characters keep their length, U+FFFD (3 bytes) and
            // each invalid sequence (≥ 1 byte) become one byte.
            for c in chunk.valid().chars() {
                n += Self::put(&mut out[n..], c);
            }
            if !chunk.invalid().is_empty() {
                out[n] = 0xFF;
                n += 1;
            }
        }
        Self(out)
    }

    fn stored_len(c: char) -> usize {
        if c == char::REPLACEMENT_CHARACTER {
            1
        } else {
            c.len_utf8()
        }
    }

    /// Stores `c` at the start of `out`, returns its stored length.
    fn put(out: &mut [u8], c: char) -> usize {
        if c == char::REPLACEMENT_CHARACTER {
            out[0] = 0xFF;
            1
        } else {
            c.encode_utf8(out).len()
        }
    }

    /// `name` as a comm; `None` when it holds a NUL or does not fit in 16 bytes (U+FFFD counts
    /// as one byte).
    pub fn new(name: &str) -> Option<Self> {
        let mut out = [0u8; COMM_LEN];
        let mut n = 0;
        for c in name.chars() {
            if c == '\0' || n + Self::stored_len(c) > COMM_LEN {
                return None;
            }
            n += Self::put(&mut out[n..], c);
        }
        Some(Self(out))
    }

    /// The stored bytes (see the type's docs), without the padding.
    fn stored(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
        &self.0[..end]
    }

    /// The name (borrowed unless it had invalid UTF-8).
    pub fn as_str(&self) -> Cow<'_, str> {
        let b = self.stored();
        // Nearly always valid (ASCII): checked without the lossy decoder's chunking.
        match std::str::from_utf8(b) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(b),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0[0] == 0
    }
}

impl From<&str> for Comm {
    /// `name`, cut at its first NUL and to the characters that fit in 16 bytes.
    fn from(name: &str) -> Self {
        let name = name.split('\0').next().unwrap_or_default();
        let mut out = [0u8; COMM_LEN];
        let mut n = 0;
        for c in name.chars() {
            if n + Self::stored_len(c) > COMM_LEN {
                break;
            }
            n += Self::put(&mut out[n..], c);
        }
        Self(out)
    }
}

impl PartialEq<str> for Comm {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Comm {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.as_str())
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.as_str(), f)
    }
}

impl Serialize for Comm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

impl<'de> Deserialize<'de> for Comm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        Comm::new(&s).ok_or_else(|| serde::de::Error::custom(format!("not a process name: {s:?}")))
    }
}
