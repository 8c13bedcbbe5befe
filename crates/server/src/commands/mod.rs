//! One file per subcommand.

pub mod check_config;
pub mod serve;
pub mod version;

use anyhow::Context;
use kuryr_config::KuryrConfig;

use crate::Cli;

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The configuration from the command line's files (`/etc/kuryr/kuryr.conf` when none is given
/// and it exists, as the original's default).
pub fn load_config(cli: &Cli) -> anyhow::Result<KuryrConfig> {
    let mut files = cli.config_files.clone();
    let default = std::path::Path::new("/etc/kuryr/kuryr.conf");
    if files.is_empty() && cli.config_dirs.is_empty() && default.is_file() {
        files.push(default.to_path_buf());
    }
    KuryrConfig::load_files(&files, &cli.config_dirs).context("cannot load the configuration")
}
