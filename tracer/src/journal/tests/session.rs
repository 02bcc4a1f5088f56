//! The `Session` frame's payload across format versions: 2.1's shaping, and 2.0 payloads
//! without it.
use super::*;

/// [`session`] as an agent of format 2.1 writes it: with what shaped its records.
pub(super) fn shaped_session() -> SessionInfo {
    SessionInfo {
        shaping: Some(crate::journal::Shaping {
            grace_ms: Some(2500),
            stop_signals: vec![10],
            emit_mask: 0x1ff,
            runtime_comms: vec!["my-runtime".to_string()],
            resumed_at_mono_ns: Some(42_000_000_000),
            traced_from_mono_ns: Some(41_000_000_000),
        }),
        ..session()
    }
}

/// A 2.0 session payload (no shaping) still decodes, as `None`; a 2.1 one keeps its shaping;
/// a shaping that is not JSON is an error naming it.
#[test]
fn sessions_without_shaping_still_decode() {
    let old = session();
    let mut payload = Vec::new();
    super::format::encode_session(&old, &mut payload);
    assert_eq!(super::format::decode_session(&payload), Ok(old.clone()));
    super::format::encode_session(&shaped_session(), &mut payload);
    assert_eq!(
        super::format::decode_session(&payload),
        Ok(shaped_session())
    );
    super::format::encode_session(&old, &mut payload);
    payload.extend_from_slice(&3u16.to_le_bytes());
    payload.extend_from_slice(b"{x]");
    let e = super::format::decode_session(&payload).unwrap_err();
    assert!(e.contains("shaping"), "{e}");
}
