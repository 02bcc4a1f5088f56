//! Wall-clock instants: [`WallTime`], formatted as RFC 3339 only when shown, and
//! [`parse_rfc3339`], the one parser of times people type; the calendar is `jiff`'s.
use std::borrow::Cow;
use std::fmt;

use jiff::{tz::Offset, Timestamp};
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

    /// The instant of wall-clock microseconds since the epoch.
    pub fn from_micros(us: i64) -> Self {
        Self(us)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// Parses what [`fmt::Display`] writes ("2023-11-14T22:13:20.123456Z"), nothing else.
    pub fn parse(s: &str) -> Option<Self> {
        let t = Self(s.parse::<Timestamp>().ok()?.as_microsecond());
        // Rejects other precisions, offsets and separators: only what formats back the same.
        t.is(s).then_some(t)
    }

    /// The RFC 3339 text, without the formatting machinery.
    fn rfc3339_bytes(self) -> Option<[u8; 27]> {
        let dt = Offset::UTC.to_datetime(Timestamp::from_microsecond(self.0).ok()?);
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, v: i64| {
            let mut v = v;
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, i64::from(dt.year()));
        put(5, 2, i64::from(dt.month()));
        put(8, 2, i64::from(dt.day()));
        put(11, 2, i64::from(dt.hour()));
        put(14, 2, i64::from(dt.minute()));
        put(17, 2, i64::from(dt.second()));
        put(20, 6, i64::from(dt.subsec_nanosecond() / 1000));
        (dt.year() >= 0).then_some(b)
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
        match self.rfc3339_bytes() {
            Some(b) => f.pad(std::str::from_utf8(&b).unwrap_or_default()),
            // Before year 0 or past what jiff spans: not a time a kernel clock gives.
            None => match Timestamp::from_microsecond(self.0) {
                Ok(t) => f.pad(&t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()),
                Err(_) => write!(f, "{}us", self.0),
            },
        }
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

/// Formats wall-clock nanoseconds since the epoch as RFC 3339 UTC with microseconds.
pub fn rfc3339(wall_ns: i64) -> String {
    WallTime::from_ns(wall_ns).to_string()
}

/// Parses an RFC 3339 time ("2026-11-21T10:00:00Z", fractional seconds and numeric offsets
/// accepted) into nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let t: Timestamp = s.parse().map_err(|e| {
        format!("invalid time {s:?}: expected RFC 3339 like 2026-11-21T10:00:00Z ({e})")
    })?;
    i64::try_from(t.as_nanosecond())
        .map_err(|_| format!("time {s:?} is outside what nanoseconds since 1970 can hold"))
}

/// Seconds since the Unix epoch of a `yyyymmddThhmmssZ` stamp ([`utc_stamp`]).
pub fn parse_utc_stamp(stamp: &str) -> Option<u64> {
    let t = jiff::fmt::strtime::parse("%Y%m%dT%H%M%SZ", stamp)
        .ok()?
        .to_datetime()
        .ok()?;
    let ts = jiff::tz::TimeZone::UTC.to_timestamp(t).ok()?;
    u64::try_from(ts.as_second()).ok()
}

/// `yyyymmddThhmmssZ` for seconds since the Unix epoch (UTC): journal file names.
pub fn utc_stamp(secs: u64) -> String {
    match i64::try_from(secs)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
    {
        Some(t) => t.strftime("%Y%m%dT%H%M%SZ").to_string(),
        None => format!("{secs}"),
    }
}
