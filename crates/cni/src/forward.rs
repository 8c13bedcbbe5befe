//! The binary → daemon hop: one HTTP/1.1 POST of the [`Invocation`] on the daemon's unix
//! socket, answered with what to print and how to exit. Plain std and a few lines of HTTP: the
//! runtime starts this binary for every pod, so it carries no async runtime and no HTTP stack.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::command::Invocation;

/// Where the node daemon listens (`[cni_daemon] socket_path`).
pub const DEFAULT_SOCKET: &str = "/run/kuryr/cni.sock";
/// The daemon's path for CNI calls.
pub const PATH: &str = "/v1/cni";
/// Longer than any ADD can take (a port waiting for ACTIVE); the runtime has its own deadline.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// What the daemon answers: the plugin's stdout and exit status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonReply {
    pub exit_code: i32,
    pub stdout: String,
}

/// Sends the call to the daemon and returns its answer.
pub fn call(socket: &Path, inv: &Invocation, timeout: Duration) -> io::Result<DaemonReply> {
    let body = serde_json::to_vec(inv).map_err(io::Error::other)?;
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: kuryr\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(&body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let (status, body) = parse_response(&raw)?;
    if status != 200 {
        return Err(io::Error::other(format!(
            "daemon answered HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    serde_json::from_slice(&body).map_err(|e| io::Error::other(format!("bad daemon answer: {e}")))
}

/// Status and body of an HTTP/1.1 response (Content-Length, chunked, or until close).
fn parse_response(raw: &[u8]) -> io::Result<(u16, Vec<u8>)> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("incomplete HTTP response"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("non-UTF-8 HTTP head"))?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no HTTP status"))?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if k == "content-length" {
                length = v.parse::<usize>().ok();
            }
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or_else(|| bad("short HTTP body"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..nl]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[nl + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_length_and_chunked_bodies() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_response(r).unwrap(), (200, b"hello".to_vec()));
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).unwrap(), (200, b"hello".to_vec()));
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }

    #[test]
    fn talks_to_a_daemon_on_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cni.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = c.read(&mut buf).unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let body = r#"{"exit_code":0,"stdout":"{}"}"#;
            write!(
                c,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            req
        });
        let mut inv = Invocation::default();
        inv.env.insert("CNI_COMMAND".into(), "ADD".into());
        let reply = call(&path, &inv, Duration::from_secs(5)).unwrap();
        assert_eq!(reply.exit_code, 0);
        let req = server.join().unwrap();
        assert!(req.starts_with("POST /v1/cni HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("\"CNI_COMMAND\":\"ADD\""), "{req}");
    }
}
