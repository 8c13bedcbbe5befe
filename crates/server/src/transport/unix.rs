//! The unix socket Docker finds at `/run/docker/plugins/<name>.sock`.
//!
//! Binding is atomic with respect to permissions and to stale sockets: the socket is bound inside
//! a private (0700) directory next to the target, given its final mode, then renamed over the
//! target path. So Docker never sees a socket with the wrong permissions, a stale socket from a
//! crashed run is replaced in one step, and a live one (another daemon answering) is refused.

use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;

/// Where Docker looks for the `kuryr` plugin.
pub const DEFAULT_SOCKET_PATH: &str = "/run/docker/plugins/kuryr.sock";
/// Root-only: whoever can talk to the socket can make the daemon change host networking.
pub const DEFAULT_SOCKET_MODE: u32 = 0o600;

/// How to bind the plugin socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixListenerConfig {
    /// Socket path.
    pub path: PathBuf,
    /// Permission bits of the socket file.
    pub mode: u32,
}

impl UnixListenerConfig {
    /// A socket at `path` with root-only permissions.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        UnixListenerConfig {
            path: path.into(),
            mode: DEFAULT_SOCKET_MODE,
        }
    }
}

impl Default for UnixListenerConfig {
    fn default() -> Self {
        Self::new(DEFAULT_SOCKET_PATH)
    }
}

/// A bound listener plus the guard that removes its socket file.
#[derive(Debug)]
pub struct BoundUnixListener {
    /// The listener, ready for [`serve_unix`].
    pub listener: tokio::net::UnixListener,
    /// Removes the socket file when dropped.
    pub guard: SocketGuard,
}

/// Removes the socket file on drop, but only if it is still the one we created (a newer daemon
/// may have replaced it already).
#[derive(Debug)]
pub struct SocketGuard {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl SocketGuard {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the socket file in place (e.g. when handing it over).
    pub fn disarm(mut self) {
        self.identity = None;
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let Some(ours) = self.identity else { return };
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == ours => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot remove plugin socket");
                } else {
                    tracing::info!(path = %self.path.display(), "removed plugin socket");
                }
            }
            // Gone already, or replaced by someone else: not ours to remove.
            _ => {}
        }
    }
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Refuses to replace a socket someone is serving, or a file that is not a socket.
fn check_existing(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(with_path(e, "cannot inspect", path)),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another process is serving {}", path.display()),
        )),
        // Refused (or vanished): a stale socket from a previous run, replaced by the rename.
        Err(_) => {
            tracing::info!(path = %path.display(), "replacing stale plugin socket");
            Ok(())
        }
    }
}

/// Binds the plugin socket (see the module docs). Must run inside a tokio runtime.
pub fn bind_unix(cfg: &UnixListenerConfig) -> io::Result<BoundUnixListener> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);

    let path = &cfg.path;
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("socket path {} has no file name", path.display()),
        )
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&parent)
        .map_err(|e| with_path(e, "cannot create socket directory", &parent))?;
    check_existing(path)?;

    let private = parent.join(format!(
        ".{}.bind-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(|e| with_path(e, "cannot create", &private))?;
    let staged = private.join("s");
    let result = (|| -> io::Result<std::os::unix::net::UnixListener> {
        let listener = std::os::unix::net::UnixListener::bind(&staged)
            .map_err(|e| with_path(e, "cannot bind", &staged))?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(cfg.mode))
            .map_err(|e| with_path(e, "cannot set permissions of", &staged))?;
        std::fs::rename(&staged, path).map_err(|e| with_path(e, "cannot move socket to", path))?;
        Ok(listener)
    })();
    // Best effort: the directory is empty after a successful rename.
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&private);
    let listener = result?;

    let meta = std::fs::symlink_metadata(path).map_err(|e| with_path(e, "cannot inspect", path))?;
    let guard = SocketGuard {
        path: path.clone(),
        identity: Some((meta.dev(), meta.ino())),
    };
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;
    tracing::info!(path = %path.display(), mode = format_args!("{:o}", cfg.mode), "listening on plugin socket");
    Ok(BoundUnixListener { listener, guard })
}

/// Serves the plugin API on `listener` until `shutdown` resolves, then lets in-flight calls
/// finish. The caller keeps the [`SocketGuard`] alive across this call and drops it afterwards.
pub async fn serve_unix<F>(
    listener: tokio::net::UnixListener,
    router: Router,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "kuryr-unix-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[tokio::test]
    async fn binds_with_mode_replaces_stale_and_cleans_up() {
        let dir = temp_dir();
        let path = dir.join("sub").join("p.sock");
        // A stale socket: bound, then its listener closed.
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());

        let bound = bind_unix(&UnixListenerConfig::new(&path)).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Nothing left behind from staging.
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("p.sock")]);

        // A live socket is not stolen.
        let err = bind_unix(&UnixListenerConfig::new(&path)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");

        drop(bound.listener);
        drop(bound.guard);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn refuses_non_socket_and_guard_spares_replacement() {
        let dir = temp_dir();
        let path = dir.join("f.sock");
        std::fs::write(&path, b"x").unwrap();
        let err = bind_unix(&UnixListenerConfig::new(&path)).unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err}");
        std::fs::remove_file(&path).unwrap();

        let first = bind_unix(&UnixListenerConfig::new(&path)).unwrap();
        drop(first.listener);
        // Someone else replaces the (now stale) socket; our guard must not delete theirs.
        let second = bind_unix(&UnixListenerConfig::new(&path)).unwrap();
        drop(first.guard);
        assert!(path.exists());
        drop(second.guard);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
