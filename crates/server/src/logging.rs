//! The daemon's logs, as kuryr.conf's oslo.log options say: `[DEFAULT] debug`, `log_file`,
//! `log_dir` and `use_json`; `RUST_LOG`, when set, replaces the level.
//!
//! Where (oslo.log's rule): `log_file` alone is the file; with `log_dir` too it is relative to
//! `log_dir` (an absolute `log_file` stays as it is); `log_dir` alone means
//! `<log_dir>/kuryr-server.log`; neither means stderr. Colour codes only go to a terminal.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kuryr_config::DefaultSection;
use tracing::Subscriber;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How to log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogSettings {
    /// `debug`: level debug instead of info.
    pub debug: bool,
    /// The log file; `None` logs to stderr.
    pub file: Option<PathBuf>,
    /// `use_json`: one JSON object per line instead of text.
    pub json: bool,
    /// A `RUST_LOG`-style filter that replaces the level (e.g. `kuryr_driver=debug,info`).
    pub filter: Option<String>,
}

impl LogSettings {
    /// From `[DEFAULT]`, with the filter from `RUST_LOG`.
    pub fn from_config(d: &DefaultSection) -> Self {
        LogSettings {
            debug: d.debug,
            file: log_path(d.log_file.as_deref(), d.log_dir.as_deref()),
            json: d.use_json,
            filter: std::env::var(EnvFilter::DEFAULT_ENV)
                .ok()
                .filter(|f| !f.trim().is_empty()),
        }
    }
}

/// oslo.log's `_get_log_file_path`: see the module docs (the rule lives in the config crate,
/// which also names the file in its `use_syslog` warning).
pub use kuryr_config::log_path;

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open log file {}: {e}", path.display()),
            )
        })
}

/// The subscriber `settings` describe; fails when the log file cannot be opened.
pub fn subscriber(settings: &LogSettings) -> io::Result<Box<dyn Subscriber + Send + Sync>> {
    let level = if settings.debug { "debug" } else { "info" };
    let filter = match &settings.filter {
        // An invalid RUST_LOG falls back to the configured level rather than stopping the daemon.
        Some(f) => EnvFilter::try_new(f).unwrap_or_else(|_| EnvFilter::new(level)),
        None => EnvFilter::new(level),
    };
    let (writer, ansi) = match &settings.file {
        Some(path) => (BoxMakeWriter::new(Mutex::new(open_log(path)?)), false),
        None => (BoxMakeWriter::new(io::stderr), io::stderr().is_terminal()),
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    let layer = if settings.json {
        layer.json().boxed()
    } else {
        layer.boxed()
    };
    Ok(Box::new(
        tracing_subscriber::registry().with(filter).with(layer),
    ))
}

/// Installs [`subscriber`] for the whole process (once; later calls change nothing).
pub fn init(settings: &LogSettings) -> io::Result<()> {
    let subscriber = subscriber(settings)?;
    // A second init (tests, embedding) keeps the first subscriber; that is not an error.
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_path_follows_oslo() {
        assert_eq!(log_path(None, None), None);
        assert_eq!(
            log_path(Some("/var/log/k.log"), None),
            Some("/var/log/k.log".into())
        );
        assert_eq!(
            log_path(Some("k.log"), Some("/var/log/kuryr")),
            Some("/var/log/kuryr/k.log".into())
        );
        assert_eq!(
            log_path(Some("/abs/k.log"), Some("/var/log/kuryr")),
            Some("/abs/k.log".into())
        );
        assert_eq!(
            log_path(None, Some("/var/log/kuryr")),
            Some("/var/log/kuryr/kuryr-server.log".into())
        );
        assert_eq!(log_path(Some(" "), Some("")), None);
    }

    fn log_to(settings: &LogSettings) {
        let sub = subscriber(settings).unwrap();
        tracing::subscriber::with_default(sub, || {
            tracing::info!(network = "n1", "serving the plugin api");
            tracing::debug!("a debug line");
        });
    }

    #[test]
    fn text_file_gets_the_lines_without_colour_codes() {
        let dir = tempfile::tempdir().unwrap();
        let settings = LogSettings {
            file: log_path(Some("k.log"), dir.path().to_str()),
            ..LogSettings::default()
        };
        log_to(&settings);
        let text = std::fs::read_to_string(dir.path().join("k.log")).unwrap();
        assert!(text.contains("serving the plugin api"), "{text}");
        assert!(text.contains("network=\"n1\""), "{text}");
        assert!(!text.contains('\x1b'), "escape codes in the file: {text:?}");
        assert!(!text.contains("a debug line"), "debug is off: {text}");

        // Appends, and `debug` lets debug lines through.
        log_to(&LogSettings {
            debug: true,
            ..settings
        });
        let text = std::fs::read_to_string(dir.path().join("k.log")).unwrap();
        assert_eq!(text.matches("serving the plugin api").count(), 2, "{text}");
        assert!(text.contains("a debug line"), "{text}");
        assert!(!text.contains('\x1b'), "{text:?}");
    }

    #[test]
    fn json_lines_and_filter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        log_to(&LogSettings {
            file: Some(path.clone()),
            json: true,
            filter: Some("debug".into()),
            ..LogSettings::default()
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["fields"]["message"], "serving the plugin api");
        assert_eq!(lines[0]["fields"]["network"], "n1");
        assert_eq!(lines[1]["fields"]["message"], "a debug line");
    }

    #[test]
    fn an_unwritable_log_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("k.log");
        let err = subscriber(&LogSettings {
            file: Some(path.clone()),
            ..LogSettings::default()
        })
        .err()
        .expect("no directory, no log file");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}
