//! `kuryr-server check-config`: the openstack crate's checks, printed one per line.

use crate::Cli;

pub async fn run(cli: &Cli) -> anyhow::Result<()> {
    let cfg = super::load_config(cli)?;
    let report = kuryr_openstack::check::run(&cfg).await;
    for item in &report.items {
        println!(
            "{:<5} {:<20} {}",
            format!("{:?}", item.status).to_lowercase(),
            item.name,
            item.detail
        );
    }
    println!("{report}");
    if report.is_ok() {
        Ok(())
    } else {
        anyhow::bail!("the configuration is broken")
    }
}
