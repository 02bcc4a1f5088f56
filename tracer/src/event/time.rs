//! Wall-clock instants: [`WallTime`], formatted as RFC 3339 only when shown, and the
//! calendar arithmetic behind it.
use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A wall-clock instant (microseconds since the Unix epoch), shown and serialised as an
/// RFC 3339 UTC string with microseconds ([`rfc3339`]); formatted only when shown.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WallTime(i64);

impl WallTime {
    /// The instant of wall-clock nanoseconds since the epoch (truncated to microseconds).
    pub fn from_ns(wall_ns: i64) -> Self {
        Self(wall_ns.div_euclid(1000))
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// Parses what [`fmt::Display`] writes ("2023-11-14T22:13:20.123456Z").
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 27 {
            return None;
        }
        let num = |at: usize, width: usize| -> Option<i64> {
            b[at..at + width].iter().try_fold(0i64, |v, &c| {
                c.is_ascii_digit().then(|| v * 10 + i64::from(c - b'0'))
            })
        };
        let (y, m, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
        let (hh, mm, ss, us) = (num(11, 2)?, num(14, 2)?, num(17, 2)?, num(20, 6)?);
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
            return None;
        }
        let days = days_from_civil(y, m, d);
        let t = Self((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000 + us);
        // Rejects what does not format back the same (a 30th of February, separators).
        t.is(s).then_some(t)
    }
}

impl WallTime {
    /// The RFC 3339 text, without the formatting machinery, for years 0 to 9999 (every time
    /// an i64 of nanoseconds can hold).
    fn rfc3339_bytes(self) -> Option<[u8; 27]> {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        if !(0..=9999).contains(&y) {
            return None;
        }
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut v: i64| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, y);
        put(5, 2, m);
        put(8, 2, d);
        put(11, 2, sod / 3600);
        put(14, 2, sod % 3600 / 60);
        put(17, 2, sod % 60);
        put(20, 6, micros);
        Some(b)
    }

    fn is(self, text: &str) -> bool {
        match self.rfc3339_bytes() {
            Some(b) => b[..] == *text.as_bytes(),
            None => format!("{self}") == text,
        }
    }
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(b) = self.rfc3339_bytes() {
            return f.pad(std::str::from_utf8(&b).unwrap_or_default());
        }
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        f.pad(&format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        ))
    }
}

impl fmt::Debug for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl PartialEq<str> for WallTime {
    fn eq(&self, other: &str) -> bool {
        self.is(other)
    }
}

impl PartialEq<&str> for WallTime {
    fn eq(&self, other: &&str) -> bool {
        self.is(other)
    }
}

impl PartialEq<String> for WallTime {
    fn eq(&self, other: &String) -> bool {
        self.is(other)
    }
}

impl Serialize for WallTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WallTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        WallTime::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 UTC time: {s:?}")))
    }
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a (year, month, day) (Howard Hinnant's days_from_civil).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats wall-clock nanoseconds since the epoch as RFC 3339 UTC with microseconds.
pub fn rfc3339(wall_ns: i64) -> String {
    WallTime::from_ns(wall_ns).to_string()
}
