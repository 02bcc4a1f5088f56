//! Serde helpers of the records: signals, results and dispositions by name, containers
//! inline, the stop dispositions as a map.
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::container::ContainerInfo;
use crate::event::{Disposition, SigResult, Signal, StopDispositions};

pub(super) fn ser_signal<S: Serializer>(sig: &Signal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&sig.name())
}

pub(super) fn ser_opt_signal<S: Serializer>(sig: &Option<Signal>, s: S) -> Result<S::Ok, S::Error> {
    match sig {
        Some(sig) => s.serialize_str(&sig.name()),
        None => s.serialize_none(),
    }
}

pub(super) fn ser_result<S: Serializer>(r: &SigResult, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

pub(super) fn ser_disposition<S: Serializer>(d: &Disposition, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.as_str())
}

pub(super) fn ser_container<S: Serializer>(
    c: &Option<Arc<ContainerInfo>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    c.as_deref().serialize(s)
}

pub(super) fn ser_container_req<S: Serializer>(
    c: &Arc<ContainerInfo>,
    s: S,
) -> Result<S::Ok, S::Error> {
    c.as_ref().serialize(s)
}

pub(super) fn de_container_req<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Arc<ContainerInfo>, D::Error> {
    ContainerInfo::deserialize(d).map(Arc::new)
}

pub(super) fn ser_dispositions<S: Serializer>(
    d: &Option<StopDispositions>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let Some(d) = d else {
        return s.serialize_none();
    };
    let mut m = s.serialize_map(None)?;
    for (sig, disp) in d.entries() {
        m.serialize_entry(&sig.name(), disp.as_str())?;
    }
    m.end()
}

pub(super) fn parse_signal<E: serde::de::Error>(s: &str) -> Result<Signal, E> {
    Signal::parse(s).ok_or_else(|| E::custom(format!("unknown signal {s:?}")))
}

pub(super) fn parse_disposition<E: serde::de::Error>(s: &str) -> Result<Disposition, E> {
    [
        Disposition::Default,
        Disposition::Ignore,
        Disposition::Handler,
        Disposition::Unknown,
    ]
    .into_iter()
    .find(|d| d.as_str() == s)
    .ok_or_else(|| E::custom(format!("unknown disposition {s:?}")))
}

pub(super) fn de_signal<'de, D: Deserializer<'de>>(d: D) -> Result<Signal, D::Error> {
    parse_signal(&String::deserialize(d)?)
}

pub(super) fn de_opt_signal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Signal>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| parse_signal(&s))
        .transpose()
}

pub(super) fn de_result<'de, D: Deserializer<'de>>(d: D) -> Result<SigResult, D::Error> {
    let s = String::deserialize(d)?;
    (0..=5)
        .map(SigResult::from_raw)
        .find(|r| r.as_str() == s)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown signal result {s:?}")))
}

pub(super) fn de_disposition<'de, D: Deserializer<'de>>(d: D) -> Result<Disposition, D::Error> {
    parse_disposition(&String::deserialize(d)?)
}

pub(super) fn de_container<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Arc<ContainerInfo>>, D::Error> {
    Ok(Option::<ContainerInfo>::deserialize(d)?.map(Arc::new))
}

pub(super) fn de_dispositions<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<StopDispositions>, D::Error> {
    let Some(raw) = Option::<std::collections::BTreeMap<String, String>>::deserialize(d)? else {
        return Ok(None);
    };
    let mut out = StopDispositions::default();
    for (sig, disp) in &raw {
        let (sig, disp) = (parse_signal(sig)?, parse_disposition(disp)?);
        match sig.0 {
            15 => out.term = disp,
            2 => out.int = disp,
            3 => out.quit = disp,
            1 => out.hup = disp,
            _ => out.other = Some((sig, disp)),
        }
    }
    for need in ["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP"] {
        if !raw.contains_key(need) {
            return Err(serde::de::Error::custom(format!(
                "dispositions without {need}"
            )));
        }
    }
    Ok(Some(out))
}
