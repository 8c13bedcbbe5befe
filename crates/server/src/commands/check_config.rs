//! `kuryr-server check-config`: the checks of [`kuryr_libnetwork::check`], each printed once,
//! then one summary line.

use std::io::Write;

use anyhow::Context;

use crate::Cli;

pub async fn run(cli: &Cli) -> anyhow::Result<()> {
    let cfg = super::load_config(cli)?;
    let report = kuryr_libnetwork::check::run(&cfg).await;
    let mut out = std::io::stdout().lock();
    report
        .write_to(&mut out)
        .and_then(|()| out.flush())
        .context("cannot print the report")?;
    if report.is_ok() {
        Ok(())
    } else {
        anyhow::bail!("the configuration is broken")
    }
}
