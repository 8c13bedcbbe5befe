//! systemd socket activation (`LISTEN_FDS`), so the socket exists before dockerd starts even if
//! the daemon itself starts later (a `.socket` unit with `ListenStream=/run/docker/plugins/kuryr.sock`).

use std::io;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileTypeExt;

/// First file descriptor systemd passes.
const SD_LISTEN_FDS_START: i32 = 3;

/// The listener systemd passed to this process, if any. Must run inside a tokio runtime.
///
/// The socket file belongs to systemd then: do not remove it on shutdown.
pub fn listener_from_systemd() -> io::Result<Option<tokio::net::UnixListener>> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    if !for_us || count == 0 {
        return Ok(None);
    }
    if count > 1 {
        tracing::warn!(count, "systemd passed several sockets, using the first");
    }
    let fd_path = format!("/proc/self/fd/{SD_LISTEN_FDS_START}");
    let is_socket = std::fs::metadata(&fd_path)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false);
    if !is_socket {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "LISTEN_FDS is set but file descriptor 3 is not a socket",
        ));
    }
    // SAFETY: systemd hands fd 3 to this process (LISTEN_PID matched) and nothing else in the
    // process owns it; it was checked to be a socket above.
    let passed = unsafe { std::os::unix::net::UnixListener::from_raw_fd(SD_LISTEN_FDS_START) };
    // The duplicate is close-on-exec (fd 3 is not), so helper processes never inherit the
    // listening socket; dropping `passed` closes fd 3.
    let listener = passed.try_clone()?;
    drop(passed);
    listener.set_nonblocking(true)?;
    tracing::info!("using the socket passed by systemd");
    Ok(Some(tokio::net::UnixListener::from_std(listener)?))
}
