//! Reading sigtrace's Prometheus exposition in tests: a free port, a plain HTTP GET, and the
//! value of a series by its labels.
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    time::Duration,
};

use crate::wait_until;

const T: Duration = Duration::from_secs(15);

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// `GET path` over HTTP/1.0 (the server closes the connection): (status, body).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

/// One sample of the text exposition: (series with labels, value).
pub fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Sum of the samples of `name` whose labels include every `k="v"` of `labels`.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for (series, v) in samples(text) {
        let (n, rest) = series.split_once('{').unwrap_or((&series, ""));
        if n != name {
            continue;
        }
        if labels
            .iter()
            .all(|(k, val)| rest.contains(&format!("{k}=\"{val}\"")))
        {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

pub fn metrics_text(addr: &str) -> String {
    let (status, body) = http_get(addr, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "GET /metrics: {body}");
    body
}

/// Waits until the exposition satisfies `f`; returns the last exposition.
pub fn wait_metrics(addr: &str, what: &str, mut f: impl FnMut(&str) -> bool) -> String {
    let mut text = String::new();
    let ok = wait_until(T, || {
        text = http_get(addr, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default();
        f(&text)
    });
    assert!(ok, "metrics never showed {what}:\n{text}");
    text
}
