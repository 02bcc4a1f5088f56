//! Byte layout of journal files (see the module documentation of [`super`]): constants, frame
//! encoding and parsing, and the payloads of the record types that are not raw bytes.
use std::ops::Range;

use crate::container::ContainerInfo;

use super::SessionInfo;
use crate::driver::Gone;

pub(crate) const MAGIC: [u8; 8] = *b"SIGTRACE";
/// Major format version written; a reader refuses files with a newer major version. Version
/// 2 keeps kernel and lost records in compressed `Block` frames; version 1 files (one frame
/// per record) are still read.
pub const FORMAT_MAJOR: u16 = 2;
/// Minor format version written; minor versions only add what older readers can skip.
pub const FORMAT_MINOR: u16 = 2;
pub(crate) const FILE_HEADER_LEN: usize = 16;
pub(crate) const FRAME_MARKER: [u8; 4] = [0xF5, b'S', b'J', b'F'];
pub(crate) const FRAME_HEADER_LEN: usize = 16;
/// Largest payload of one frame, in bytes. Also bounds what a damaged length field can claim.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// Record type numbers (frame header bytes 8..10).
pub mod record_type {
    pub const SESSION: u16 = 1;
    pub const KERNEL: u16 = 2;
    pub const LOST: u16 = 3;
    pub const CONTAINER: u16 = 4;
    pub const NOTE: u16 = 5;
    pub const BLOCK: u16 = 6;
    pub const GONE: u16 = 7;
}

/// Codec of a `Block` frame: LZ4 block format (`lz4_flex`).
pub(crate) const CODEC_LZ4: u8 = 1;
/// Bytes of a `Block` payload before the compressed data: codec, three reserved bytes, the
/// uncompressed length.
pub(crate) const BLOCK_HEADER_LEN: usize = 8;
/// Largest uncompressed block a reader accepts (the writer closes blocks at 64 KiB).
pub(crate) const MAX_BLOCK_RAW: usize = 1 << 20;
/// Bytes before each record inside a block: its type (`u16`) and length (`u32`).
pub(crate) const INNER_HEADER_LEN: usize = 6;

pub(crate) fn block_header(raw_len: usize) -> [u8; BLOCK_HEADER_LEN] {
    let mut h = [0u8; BLOCK_HEADER_LEN];
    h[0] = CODEC_LZ4;
    h[4..8].copy_from_slice(&(raw_len as u32).to_le_bytes());
    h
}

/// Decompresses a `Block` payload into `out` (replacing its contents).
pub(crate) fn decode_block(p: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    if p.len() < BLOCK_HEADER_LEN {
        return Err(format!(
            "{} bytes, need at least {BLOCK_HEADER_LEN}",
            p.len()
        ));
    }
    if p[0] != CODEC_LZ4 {
        return Err(format!("unknown codec {}", p[0]));
    }
    let raw_len = le_u32(p, 4) as usize;
    if raw_len > MAX_BLOCK_RAW {
        return Err(format!(
            "uncompressed length {raw_len} over {MAX_BLOCK_RAW}"
        ));
    }
    out.clear();
    out.resize(raw_len, 0);
    match lz4_flex::block::decompress_into(&p[BLOCK_HEADER_LEN..], out) {
        Ok(n) if n == raw_len => Ok(()),
        Ok(n) => Err(format!(
            "decompressed to {n} bytes, the header says {raw_len}"
        )),
        Err(e) => Err(format!("does not decompress: {e}")),
    }
}

/// The record at `at` of a decompressed block: `(type, payload range, next)`.
pub(crate) fn inner_record(b: &[u8], at: usize) -> Result<(u16, Range<usize>, usize), String> {
    if b.len() < at + INNER_HEADER_LEN {
        return Err(format!("record header cut at block byte {at}"));
    }
    let rtype = u16::from_le_bytes([b[at], b[at + 1]]);
    let len = le_u32(b, at + 2) as usize;
    let start = at + INNER_HEADER_LEN;
    if b.len() - start < len {
        return Err(format!("record at block byte {at} runs past the block"));
    }
    Ok((rtype, start..start + len, start + len))
}

pub(crate) fn file_header() -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&FORMAT_MAJOR.to_le_bytes());
    h[10..12].copy_from_slice(&FORMAT_MINOR.to_le_bytes());
    // 12..16: flags, zero.
    h
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderCheck {
    Ok,
    /// Shorter than a header but a prefix of a valid one (including empty).
    Short,
    Foreign,
    Newer(u16),
}

pub(crate) fn check_file_header(buf: &[u8]) -> HeaderCheck {
    if buf.len() < FILE_HEADER_LEN {
        let n = buf.len().min(MAGIC.len());
        return if buf[..n] == MAGIC[..n] {
            HeaderCheck::Short
        } else {
            HeaderCheck::Foreign
        };
    }
    if buf[..8] != MAGIC {
        return HeaderCheck::Foreign;
    }
    match u16::from_le_bytes([buf[8], buf[9]]) {
        0 => HeaderCheck::Foreign,
        v if v > FORMAT_MAJOR => HeaderCheck::Newer(v),
        _ => HeaderCheck::Ok,
    }
}

/// The frame header for a payload made of `parts`, CRC included.
pub(crate) fn frame_header(rtype: u16, parts: &[&[u8]]) -> [u8; FRAME_HEADER_LEN] {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[..4].copy_from_slice(&FRAME_MARKER);
    // The writer rejects payloads over MAX_PAYLOAD, so this fits.
    h[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    h[8..10].copy_from_slice(&rtype.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&h[4..12]);
    for p in parts {
        crc.update(p);
    }
    h[12..16].copy_from_slice(&crc.finalize().to_le_bytes());
    h
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    Ok {
        rtype: u16,
        payload: Range<usize>,
        next: usize,
    },
    /// The file ends before the frame starting here does.
    Incomplete,
    Bad(&'static str),
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Parses the frame at `pos` (which must be `<= buf.len()`).
pub(crate) fn parse_frame(buf: &[u8], pos: usize) -> Parsed {
    let rest = &buf[pos..];
    if rest.len() < FRAME_HEADER_LEN {
        let n = rest.len().min(FRAME_MARKER.len());
        return if rest[..n] == FRAME_MARKER[..n] {
            Parsed::Incomplete
        } else {
            Parsed::Bad("no frame marker")
        };
    }
    if rest[..4] != FRAME_MARKER {
        return Parsed::Bad("no frame marker");
    }
    let len = le_u32(rest, 4) as usize;
    if len > MAX_PAYLOAD {
        return Parsed::Bad("impossible frame length");
    }
    let end = FRAME_HEADER_LEN + len;
    if rest.len() < end {
        return Parsed::Incomplete;
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&rest[4..12]);
    crc.update(&rest[FRAME_HEADER_LEN..end]);
    if crc.finalize() != le_u32(rest, 12) {
        return Parsed::Bad("CRC mismatch");
    }
    Parsed::Ok {
        rtype: u16::from_le_bytes([rest[8], rest[9]]),
        payload: pos + FRAME_HEADER_LEN..pos + end,
        next: pos + end,
    }
}

/// The offset of the first valid frame at or after `from`, if any.
pub(crate) fn find_frame(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at < buf.len() {
        let skip = buf[at..].iter().position(|&b| b == FRAME_MARKER[0])?;
        at += skip;
        if matches!(parse_frame(buf, at), Parsed::Ok { .. }) {
            return Some(at);
        }
        at += 1;
    }
    None
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Strings longer than a u16 length are cut at a character boundary.
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

pub(crate) fn encode_session(s: &SessionInfo, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&s.clock_offset_ns.to_le_bytes());
    out.extend_from_slice(&s.started_wall_ns.to_le_bytes());
    put_str(out, &s.version);
    put_str(out, &s.hostname);
    put_str(out, &s.boot_id);
    if let Some(shaping) = &s.shaping {
        put_str(out, &serde_json::to_string(shaping).unwrap_or_default());
    }
}

pub(crate) fn decode_session(p: &[u8]) -> Result<SessionInfo, String> {
    if p.len() < 16 {
        return Err(format!("{} bytes, need at least 16", p.len()));
    }
    fn take_str(p: &[u8], at: &mut usize, name: &str) -> Result<String, String> {
        if p.len() < *at + 2 {
            return Err(format!("ends before the {name} length"));
        }
        let len = u16::from_le_bytes([p[*at], p[*at + 1]]) as usize;
        *at += 2;
        let bytes = p
            .get(*at..*at + len)
            .ok_or_else(|| format!("ends inside the {name}"))?;
        *at += len;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{name} is not UTF-8"))
    }
    let mut at = 16;
    let version = take_str(p, &mut at, "version")?;
    let hostname = take_str(p, &mut at, "hostname")?;
    let boot_id = take_str(p, &mut at, "boot id")?;
    // Since 2.1: what shaped the records; absent in older files.
    let shaping = if p.len() > at {
        let json = take_str(p, &mut at, "shaping")?;
        Some(serde_json::from_str(&json).map_err(|e| format!("shaping: {e}"))?)
    } else {
        None
    };
    Ok(SessionInfo {
        shaping,
        version,
        hostname,
        clock_offset_ns: le_u64(p, 0) as i64,
        started_wall_ns: le_u64(p, 8) as i64,
        boot_id,
    })
}

pub(crate) fn encode_lost(count: u64, mono_ns: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&count.to_le_bytes());
    b[8..].copy_from_slice(&mono_ns.to_le_bytes());
    b
}

/// `(count, mono_ns)`.
pub(crate) fn decode_lost(p: &[u8]) -> Result<(u64, u64), String> {
    if p.len() < 16 {
        return Err(format!("{} bytes, need 16", p.len()));
    }
    Ok((le_u64(p, 0), le_u64(p, 8)))
}

pub(crate) fn encode_gone(g: Gone) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[..4].copy_from_slice(&g.pid.to_le_bytes());
    b[8..16].copy_from_slice(&g.start_ns.to_le_bytes());
    b[16..].copy_from_slice(&g.mono_ns.to_le_bytes());
    b
}

pub(crate) fn decode_gone(p: &[u8]) -> Result<Gone, String> {
    if p.len() < 24 {
        return Err(format!("{} bytes, need 24", p.len()));
    }
    Ok(Gone {
        pid: u32::from_le_bytes([p[0], p[1], p[2], p[3]]),
        start_ns: le_u64(p, 8),
        mono_ns: le_u64(p, 16),
    })
}

/// `(cgroup_id, info)`.
pub(crate) fn decode_container(p: &[u8]) -> Result<(u64, ContainerInfo), String> {
    if p.len() < 8 {
        return Err(format!("{} bytes, need at least 8", p.len()));
    }
    let mut info: ContainerInfo =
        serde_json::from_slice(&p[8..]).map_err(|e| format!("bad JSON: {e}"))?;
    // Journals written before workloads existed: the pod name's rules give it.
    if info.workload.is_none() {
        info.workload = info
            .pod
            .as_deref()
            .map(|pod| crate::container::workload::derive(pod, None));
    }
    Ok((le_u64(p, 0), info))
}

pub(crate) use crate::event::utc_stamp;

/// Whether a file name is one the writer creates (and may therefore delete).
pub(crate) fn is_writer_name(name: &str) -> bool {
    name.starts_with("sigtrace-") && name.ends_with(".journal")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A container item written before workloads existed gets its workload from the pod name's
    /// rules at replay; one written with a workload keeps it.
    #[test]
    fn old_container_items_get_the_workload_from_the_pod_name() {
        let item = |json: &str| {
            let mut p = 7u64.to_le_bytes().to_vec();
            p.extend_from_slice(json.as_bytes());
            decode_container(&p).expect("decodes")
        };
        let (cg, info) = item(
            r#"{"id":"x","runtime":"containerd","name":"db","pod":"db-0","namespace":"n",
                "pod_uid":null,"qos":null,"container_type":null,"image":null,
                "cgroup_id":7,"cgroup_path":"/x"}"#,
        );
        assert_eq!(cg, 7);
        let w = info.workload.expect("derived");
        assert_eq!((w.name.as_str(), w.kind.as_str()), ("db", "statefulset"));
        let (_, info) = item(
            r#"{"id":"x","runtime":"cri-o","name":"db","pod":"db-0","namespace":"n",
                "pod_uid":null,"qos":null,"container_type":null,"image":null,
                "workload":"db","workload_type":"deployment","workload_source":"labels",
                "cgroup_id":7,"cgroup_path":"/x"}"#,
        );
        assert_eq!(info.workload.expect("kept").kind.as_str(), "deployment");
        // No pod: no workload.
        let (_, info) = item(
            r#"{"id":"x","runtime":"docker","name":"web","pod":null,"namespace":null,
                "pod_uid":null,"qos":null,"container_type":null,"image":null,
                "cgroup_id":7,"cgroup_path":"/x"}"#,
        );
        assert_eq!(info.workload, None);
    }
}
