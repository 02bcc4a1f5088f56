//! The diagnosis vocabulary ([`Diagnosis`]): one variant per failure mode, its public name
//! (JSON, metric labels, filters, the report's colours), its hint and its rank as the
//! explanation of a container or pod stop. Names, the list of all and parsing are derived.
use serde::{Deserialize, Serialize};
use strum::{IntoEnumIterator, VariantArray};

/// What went wrong (or right) in one shutdown. The snake_case names are a public interface
/// (JSON, metric labels, dashboards).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Default,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Diagnosis {
    #[default]
    Graceful,
    DefaultAction,
    IgnoredByPid1,
    ShellNotForwarding,
    WrongSignal,
    SignalIgnored,
    SignalBlocked,
    SlowHandler,
    ForceKilled,
    OomKilled,
    OrphanKilled,
    SlowPrestop,
}

impl Diagnosis {
    /// Every diagnosis, in vocabulary order.
    pub const ALL: &'static [Diagnosis] = <Self as VariantArray>::VARIANTS;

    /// The public name (`graceful`, `ignored_by_pid1`, ...).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses a public name.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// Every public name, in vocabulary order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Self::iter().map(Self::as_str)
    }

    /// The one-line fix shown to the user (`None` for `graceful` and `force_killed`).
    pub fn hint(self) -> Option<&'static str> {
        match self {
            Self::Graceful | Self::ForceKilled => None,
            Self::DefaultAction => Some("install a handler if in-flight work matters"),
            Self::IgnoredByPid1 => {
                Some("handle the signal, or run under an init (tini, dumb-init, `--init`)")
            }
            Self::ShellNotForwarding => {
                Some("`exec` the app from the script, or trap and forward, or use tini/dumb-init")
            }
            Self::WrongSignal => Some("set STOPSIGNAL to the handled signal, or handle SIGTERM"),
            Self::SignalIgnored => Some("stop ignoring it"),
            Self::SignalBlocked => Some("unblock it / investigate D-state"),
            Self::SlowHandler => {
                Some("shorten cleanup or raise the grace period (by how much is in the record)")
            }
            Self::OomKilled => Some("raise the memory limit / fix the leak"),
            Self::OrphanKilled => Some("the init must stop and reap its children"),
            Self::SlowPrestop => {
                Some("shorten the preStop hook or raise terminationGracePeriodSeconds")
            }
        }
    }

    /// Rank of a diagnosis as the explanation of a container stop (lower explains more).
    pub fn rank(self) -> u8 {
        match self {
            Diagnosis::OomKilled => 0,
            Diagnosis::ShellNotForwarding => 1,
            Diagnosis::IgnoredByPid1 => 2,
            Diagnosis::WrongSignal => 3,
            Diagnosis::SignalIgnored => 4,
            Diagnosis::SignalBlocked => 5,
            Diagnosis::SlowPrestop => 6,
            Diagnosis::SlowHandler => 7,
            Diagnosis::ForceKilled => 8,
            Diagnosis::DefaultAction => 9,
            Diagnosis::OrphanKilled => 10,
            Diagnosis::Graceful => 11,
        }
    }
}
