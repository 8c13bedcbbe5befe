//! A fault-injecting HTTP proxy in front of the real Neutron, for the reliability tests.
//!
//! The daemon under test is pointed at it (`[neutron] endpoint`); the tests' own Neutron probe
//! goes straight to Neutron. Every request is read whole, counted, and then passed on or failed
//! as the current [`Fault`] says, for every request (a time window: set, then set back to
//! [`Fault::Pass`]) or for the k-th request only. Each request gets its own upstream connection
//! and every answer says `Connection: close`, as Neutron's uwsgi does, so that a client never
//! reuses a connection the proxy is about to fail.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HEAD_LIMIT: usize = 256 * 1024;

/// What happens to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Passed on to Neutron, its answer passed back.
    Pass,
    /// New connections are refused (the proxy stops listening) and requests on open ones are
    /// dropped unanswered: Neutron is down.
    Refuse,
    /// Read and never answered until the proxy's faults change next; then the connection is
    /// closed without an answer. Never reaches Neutron.
    Hang,
    /// Passed on at once, the answer held back this long: Neutron did the work, slowly.
    Delay(Duration),
    /// Answered with this status and a Neutron-style error body; never reaches Neutron.
    Status(u16),
    /// The connection is reset after the request was read; never reaches Neutron.
    ResetBefore,
    /// Passed on (Neutron does the work), then the connection is reset half-way through the
    /// answer: the client never learns the outcome.
    ResetAfter,
}

/// One request seen by the proxy.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub query: String,
    pub fault: Fault,
    /// Counted for "the k-th request" (not a daemon's periodic work).
    pub counted: bool,
}

/// Requests that a fault for "the k-th request" does not count and never fails (a daemon's
/// periodic work, which would make the k-th request of a command a matter of timing).
pub type Uncounted = Arc<dyn Fn(&Seen) -> bool + Send + Sync>;

struct State {
    /// The fault of every request, unless `once` picks this one.
    window: Fault,
    /// (n, fault): the n-th request counted from when it was set gets the fault.
    once: Option<(usize, Fault)>,
    /// Requests since `once` was set.
    since_once: usize,
    /// Bumped at every change: a hanging request waits until the next one.
    generation: u64,
    uncounted: Option<Uncounted>,
    seen: Vec<Seen>,
}

pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Starts the proxy on a free loopback port in front of `upstream` (`http://host:port...`).
    pub fn start(upstream: &str) -> Self {
        let rest = upstream
            .strip_prefix("http://")
            .expect("the fault proxy speaks plain HTTP to Neutron");
        let upstream: String = rest.split('/').next().unwrap().to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // Non-blocking, so that the accept loop can stop listening when told to refuse.
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            window: Fault::Pass,
            once: None,
            since_once: 0,
            generation: 0,
            uncounted: None,
            seen: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || accept_loop(Some(listener), addr, upstream, st, sp));
        FaultProxy { addr, state, stop }
    }

    /// The URL to give the daemon as Neutron's endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The fault of every request from now on (`Pass` ends a window).
    pub fn set(&self, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        s.window = fault;
        s.generation += 1;
    }

    /// Only the `n`-th request from now (1-based) gets `fault`; the others pass.
    pub fn at_request(&self, n: usize, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        s.window = Fault::Pass;
        s.once = Some((n, fault));
        s.since_once = 0;
        s.generation += 1;
    }

    /// Requests that `at_request` does not count (they pass).
    pub fn set_uncounted(&self, f: Uncounted) {
        self.state.lock().unwrap().uncounted = Some(f);
    }

    /// Forgets the requests seen so far.
    pub fn clear(&self) {
        let mut s = self.state.lock().unwrap();
        s.seen.clear();
        s.once = None;
        s.since_once = 0;
        s.generation += 1;
    }

    /// The requests seen since the last `clear`.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn accept_loop(
    mut listener: Option<TcpListener>,
    addr: SocketAddr,
    upstream: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let refusing = state.lock().unwrap().window == Fault::Refuse;
        if refusing {
            // Closing the listening socket makes connects fail with "connection refused".
            listener = None;
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => {
                // Listening again on the same port (std sets SO_REUSEADDR).
                match TcpListener::bind(addr) {
                    Ok(l) => {
                        l.set_nonblocking(true).unwrap();
                        listener.insert(l)
                    }
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                }
            }
        };
        match l.accept() {
            Ok((conn, _)) => {
                let (u, st) = (upstream.clone(), state.clone());
                std::thread::spawn(move || {
                    let _ = serve_connection(conn, &u, &st);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Reads one HTTP/1.1 message head and its `Content-Length` body; `None` at a clean EOF.
fn read_message(conn: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<Vec<u8>>> {
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > HEAD_LIMIT {
            return Err(std::io::Error::other("head too large"));
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let len = content_length(&buf[..head_end]).unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("closed inside a body"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let msg: Vec<u8> = buf.drain(..head_end + len).collect();
    Ok(Some(msg))
}

fn content_length(head: &[u8]) -> Option<usize> {
    String::from_utf8_lossy(head).lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())
            .flatten()
    })
}

/// The head with any `Connection` header replaced by `Connection: close`.
fn with_connection_close(msg: &[u8]) -> Vec<u8> {
    let Some(end) = msg.windows(4).position(|w| w == b"\r\n\r\n") else {
        return msg.to_vec();
    };
    let head = String::from_utf8_lossy(&msg[..end]);
    let mut out = String::new();
    for line in head.split("\r\n") {
        let is_conn = line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"));
        if !is_conn {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut v = out.into_bytes();
    v.extend_from_slice(&msg[end + 4..]);
    v
}

/// Closes with a TCP reset instead of a FIN (SO_LINGER 0).
fn reset(conn: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(conn);
}

fn forward(upstream: &str, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&with_connection_close(request))?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    Ok(answer)
}

fn serve_connection(
    mut conn: TcpStream,
    upstream: &str,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let Some(request) = read_message(&mut conn, &mut buf)? else {
        return Ok(());
    };
    let line = String::from_utf8_lossy(&request[..request.len().min(512)])
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (path, query) = (path.to_string(), query.to_string());
    let (fault, generation) = {
        let mut s = state.lock().unwrap();
        let mut seen = Seen {
            method,
            path,
            query,
            fault: s.window.clone(),
            counted: true,
        };
        let counted = !s.uncounted.as_ref().is_some_and(|f| f(&seen));
        seen.counted = counted;
        if let Some((n, f)) = s.once.clone() {
            if counted {
                s.since_once += 1;
                if s.since_once == n {
                    seen.fault = f;
                }
            } else {
                seen.fault = Fault::Pass;
            }
        }
        let fault = seen.fault.clone();
        s.seen.push(seen);
        (fault, s.generation)
    };
    match fault {
        Fault::Pass => {
            let answer = forward(upstream, &request)?;
            conn.write_all(&with_connection_close(&answer))?;
        }
        Fault::Delay(d) => {
            let answer = forward(upstream, &request)?;
            std::thread::sleep(d);
            conn.write_all(&with_connection_close(&answer))?;
        }
        Fault::Refuse | Fault::ResetBefore => reset(conn),
        Fault::Hang => {
            let start = Instant::now();
            while state.lock().unwrap().generation == generation
                && start.elapsed() < Duration::from_secs(600)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = conn.shutdown(Shutdown::Both);
        }
        Fault::Status(code) => {
            let body = format!(
                "{{\"NeutronError\": {{\"type\": \"HTTPError\", \"message\": \"injected by the fault proxy: {code}\", \"detail\": \"\"}}}}"
            );
            let answer = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(answer.as_bytes())?;
        }
        Fault::ResetAfter => {
            let answer = forward(upstream, &request)?;
            let _ = conn.write_all(&answer[..answer.len() / 2]);
            reset(conn);
        }
    }
    Ok(())
}
