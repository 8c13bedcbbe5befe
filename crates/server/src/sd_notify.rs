//! systemd's readiness protocol (sd_notify(3)): one datagram of `KEY=VALUE` lines to the unix
//! socket named by `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). The unit's
//! `Type=notify` then waits for `READY=1` before starting what is ordered after it (dockerd),
//! and shows `STATUS=` in `systemctl status`.
//!
//! Nothing happens when `NOTIFY_SOCKET` is unset: [`Notifier::from_env`] is `None`.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::time::Duration;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// Start-up finished: the plugin socket answers.
pub const READY: &str = "READY=1";
/// Shutting down.
pub const STOPPING: &str = "STOPPING=1";

/// systemd reads the socket at once; this only bounds a wedged receiver.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyAddr {
    /// A socket file.
    Path(PathBuf),
    /// A name in the abstract namespace (`@name` in `NOTIFY_SOCKET`, without the `@`).
    Abstract(Vec<u8>),
}

impl NotifyAddr {
    /// Reads a `NOTIFY_SOCKET` value: an absolute path or `@name`. Other forms (systemd's
    /// `vsock:` addresses, relative paths) are refused.
    pub fn parse(value: &OsStr) -> io::Result<Self> {
        let bytes = value.as_bytes();
        match bytes.first() {
            Some(b'/') => Ok(NotifyAddr::Path(PathBuf::from(value))),
            Some(b'@') if bytes.len() > 1 => Ok(NotifyAddr::Abstract(bytes[1..].to_vec())),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{NOTIFY_SOCKET}={} is neither an absolute path nor @name",
                    value.to_string_lossy()
                ),
            )),
        }
    }

    fn socket_addr(&self) -> io::Result<SocketAddr> {
        match self {
            NotifyAddr::Path(p) => SocketAddr::from_pathname(p),
            NotifyAddr::Abstract(name) => SocketAddr::from_abstract_name(name),
        }
    }
}

/// Sends state changes to systemd.
#[derive(Debug, Clone)]
pub struct Notifier {
    addr: NotifyAddr,
}

impl Notifier {
    /// Sends to `addr`.
    pub fn new(addr: NotifyAddr) -> Self {
        Notifier { addr }
    }

    /// The notifier `NOTIFY_SOCKET` asks for: `None` when it is unset or empty (not started by
    /// systemd as `Type=notify`); an unusable value is logged once and ignored, so a start-up
    /// is never failed by it.
    pub fn from_env() -> Option<Self> {
        Self::from_value(std::env::var_os(NOTIFY_SOCKET))
    }

    fn from_value(value: Option<OsString>) -> Option<Self> {
        let value = value.filter(|v| !v.is_empty())?;
        match NotifyAddr::parse(&value) {
            Ok(addr) => Some(Notifier::new(addr)),
            Err(e) => {
                tracing::warn!("not notifying systemd: {e}");
                None
            }
        }
    }

    /// Where this notifier sends.
    pub fn addr(&self) -> &NotifyAddr {
        &self.addr
    }

    /// Sends `state` (newline-separated `KEY=VALUE` lines) in one datagram.
    pub fn notify(&self, state: &str) -> io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        socket.set_write_timeout(Some(SEND_TIMEOUT))?;
        let sent = socket
            .send_to_addr(state.as_bytes(), &self.addr.socket_addr()?)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot notify {:?}: {e}", self.addr)))?;
        if sent != state.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short notification to {:?}", self.addr),
            ));
        }
        Ok(())
    }

    /// [`notify`](Self::notify), a failure logged: systemd's bookkeeping never stops the daemon.
    pub fn notify_or_warn(&self, state: &str) {
        match self.notify(state) {
            Ok(()) => tracing::debug!(state, "notified systemd"),
            Err(e) => tracing::warn!("{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_one_datagram_to_a_socket_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let systemd = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::from_value(Some(path.clone().into())).expect("a notifier");
        assert_eq!(n.addr(), &NotifyAddr::Path(path));

        n.notify(&format!("{READY}\nSTATUS=serving")).unwrap();
        n.notify(STOPPING).unwrap();
        assert_eq!(receive(&systemd), "READY=1\nSTATUS=serving");
        assert_eq!(receive(&systemd), "STOPPING=1");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!("kuryr-sd-notify-test-{}", std::process::id());
        let systemd =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let n = Notifier::from_value(Some(format!("@{name}").into())).expect("a notifier");
        assert_eq!(n.addr(), &NotifyAddr::Abstract(name.into_bytes()));

        n.notify(READY).unwrap();
        assert_eq!(receive(&systemd), "READY=1");
    }

    #[test]
    fn unset_or_empty_means_no_notifier() {
        assert!(Notifier::from_value(None).is_none());
        assert!(Notifier::from_value(Some(OsString::new())).is_none());
    }

    #[test]
    fn refuses_what_is_not_a_unix_socket_address() {
        for bad in ["vsock:2:1234", "relative/notify", "@"] {
            let err = NotifyAddr::parse(OsStr::new(bad)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad}");
            assert!(err.to_string().contains(bad), "{err}");
            assert!(Notifier::from_value(Some(bad.into())).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_missing_socket_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.sock");
        let err = Notifier::new(NotifyAddr::Path(path.clone()))
            .notify(READY)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("gone.sock"), "{err}");
    }
}
