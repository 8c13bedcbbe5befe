//! `check-config`: verify the configuration end to end — credentials, Keystone, the catalog,
//! Neutron and the extensions Kuryr needs — and say plainly what is wrong.
//!
//! Kuryr's own rules live here; `kuryr-openstack` only provides the generic calls
//! (credential resolution, `list_extensions`, `list_subnetpools`).

use std::fmt;
use std::io;

use kuryr_config::KuryrConfig;
use kuryr_openstack::auth::ClientSettings;
use kuryr_openstack::neutron::{extensions as ext, Filters, HttpNeutron, NeutronApi};

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Ok,
    /// Works, but something is missing or unusual.
    Warn,
    /// Kuryr cannot work like this.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckItem {
    pub name: String,
    pub status: CheckStatus,
    pub detail: String,
}

/// Everything checked, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub items: Vec<CheckItem>,
}

impl CheckReport {
    fn push(&mut self, name: &str, status: CheckStatus, detail: impl Into<String>) {
        self.items.push(CheckItem {
            name: name.to_string(),
            status,
            detail: detail.into(),
        });
    }

    /// True when nothing failed (warnings allowed).
    pub fn is_ok(&self) -> bool {
        !self.items.iter().any(|i| i.status == CheckStatus::Fail)
    }

    /// The item called `name`, if it was checked.
    pub fn get(&self, name: &str) -> Option<&CheckItem> {
        self.items.iter().find(|i| i.name == name)
    }

    /// What `check-config` prints: each item on its own line, then one summary line.
    pub fn write_to(&self, out: &mut dyn io::Write) -> io::Result<()> {
        writeln!(out, "{self}")
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in &self.items {
            let tag = match i.status {
                CheckStatus::Ok => " ok ",
                CheckStatus::Warn => "warn",
                CheckStatus::Fail => "FAIL",
            };
            writeln!(f, "[{tag}] {}: {}", i.name, i.detail)?;
        }
        let fails = self
            .items
            .iter()
            .filter(|i| i.status == CheckStatus::Fail)
            .count();
        let warns = self
            .items
            .iter()
            .filter(|i| i.status == CheckStatus::Warn)
            .count();
        if fails == 0 {
            write!(
                f,
                "configuration OK ({warns} warning{})",
                if warns == 1 { "" } else { "s" }
            )
        } else {
            write!(
                f,
                "configuration BROKEN: {fails} failed, {warns} warning{}",
                if warns == 1 { "" } else { "s" }
            )
        }
    }
}

/// Check `config` against the real cloud.
pub async fn run(config: &KuryrConfig) -> CheckReport {
    let mut report = CheckReport::default();
    config_items(config, &mut report);
    let settings = match ClientSettings::resolve(&config.neutron.auth) {
        Ok(s) => s,
        Err(e) => {
            report.push("credentials", CheckStatus::Fail, e.to_string());
            return report;
        }
    };
    report.push(
        "credentials",
        CheckStatus::Ok,
        format!(
            "auth_type {} from {}",
            settings.auth.kind(),
            settings.source
        ),
    );
    let client = match HttpNeutron::new(&settings) {
        Ok(c) => c,
        Err(e) => {
            report.push("http client", CheckStatus::Fail, e.to_string());
            return report;
        }
    };
    match client.session().credentials().await {
        Ok(c) => {
            let how = match settings.auth.auth_url() {
                Some(url) => format!("token from {url}"),
                None => "no keystone (fixed endpoint)".into(),
            };
            report.push("authentication", CheckStatus::Ok, how);
            report.push("neutron endpoint", CheckStatus::Ok, c.endpoint.clone());
        }
        Err(e) => {
            report.push("authentication", CheckStatus::Fail, e.to_string());
            return report;
        }
    }
    neutron_items(config, &client, &mut report).await;
    report
}

/// The checks that only need kuryr.conf.
fn config_items(config: &KuryrConfig, report: &mut CheckReport) {
    if config.files.is_empty() {
        report.push(
            "config files",
            CheckStatus::Warn,
            "no config file given: built-in defaults",
        );
    } else {
        let names: Vec<String> = config
            .files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        report.push("config files", CheckStatus::Ok, names.join(", "));
    }
    for w in &config.warnings {
        report.push("config", CheckStatus::Warn, w.clone());
    }
}

/// The checks that talk to Neutron; public so tests can run them against a fake.
pub async fn neutron_items(config: &KuryrConfig, api: &dyn NeutronApi, report: &mut CheckReport) {
    let extensions = match api.list_extensions().await {
        Ok(e) => e,
        Err(e) => {
            report.push("neutron api", CheckStatus::Fail, e.to_string());
            return;
        }
    };
    report.push(
        "neutron api",
        CheckStatus::Ok,
        format!("{} extensions", extensions.len()),
    );
    let has = |a: &str| extensions.iter().any(|e| e.alias == a);
    let driver = config
        .default
        .default_port_driver
        .rsplit('.')
        .next()
        .unwrap_or("veth")
        .to_string();
    let need = |report: &mut CheckReport, alias: &str, fail: bool, why: &str| {
        if has(alias) {
            report.push(&format!("extension {alias}"), CheckStatus::Ok, "present");
        } else {
            let status = if fail {
                CheckStatus::Fail
            } else {
                CheckStatus::Warn
            };
            report.push(
                &format!("extension {alias}"),
                status,
                format!("missing: {why}"),
            );
        }
    };
    need(
        report,
        ext::PORT_BINDING,
        true,
        "ports cannot be bound to this host",
    );
    need(
        report,
        ext::SUBNET_ALLOCATION,
        true,
        "Kuryr's IPAM allocates subnets from subnet pools",
    );
    if has(ext::STANDARD_ATTR_TAG) {
        report.push(
            "extension standard-attr-tag",
            CheckStatus::Ok,
            "present: resources are found by tags",
        );
    } else {
        // What `serve` checks too: the two must agree.
        report.push(
            "extension standard-attr-tag",
            CheckStatus::Fail,
            if has(ext::TAG) || has(ext::TAG_EXT) {
                "missing (legacy tag extensions only): kuryr-server keeps its state in tags and \
                 will not start"
            } else {
                "missing: kuryr-server keeps its state in tags and will not start"
            },
        );
    }
    need(
        report,
        ext::SECURITY_GROUP,
        false,
        "exposed ports cannot be programmed",
    );
    need(
        report,
        ext::PORT_SECURITY,
        false,
        "port security cannot be switched off",
    );
    let nested = matches!(driver.as_str(), "nested" | "vlan");
    need(
        report,
        ext::ALLOWED_ADDRESS_PAIRS,
        driver == "nested",
        "needed by the nested (macvlan) port driver",
    );
    need(
        report,
        ext::TRUNK,
        driver == "vlan",
        "needed by the vlan port driver",
    );
    if nested {
        need(
            report,
            ext::TRUNK_DETAILS,
            driver == "vlan",
            "the vlan port driver reads trunk_details",
        );
    }
    for (option, name) in [
        (
            "default_subnetpool_v4",
            &config.neutron.default_subnetpool_v4,
        ),
        (
            "default_subnetpool_v6",
            &config.neutron.default_subnetpool_v6,
        ),
    ] {
        let item = format!("subnet pool {name}");
        match api
            .list_subnetpools(
                &Filters::new()
                    .name(name.as_str())
                    .fields(&["id", "name", "prefixes"]),
            )
            .await
        {
            Ok(p) if p.len() == 1 => {
                let prefixes: Vec<String> = p[0].prefixes.iter().map(|x| x.to_string()).collect();
                report.push(
                    &item,
                    CheckStatus::Ok,
                    format!("{} ({})", p[0].id, prefixes.join(", ")),
                );
            }
            Ok(p) if p.is_empty() => report.push(
                &item,
                CheckStatus::Warn,
                format!(
                    "not found ([neutron] {option}): networks without --subnet cannot get a pool"
                ),
            ),
            Ok(p) => report.push(
                &item,
                CheckStatus::Warn,
                format!("{} pools have this name: ambiguous", p.len()),
            ),
            Err(e) => report.push(&item, CheckStatus::Fail, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuryr_openstack::neutron::{FakeNeutron, NewSubnetPool};

    #[tokio::test]
    async fn report_against_a_fake() {
        let fake = FakeNeutron::new();
        fake.create_subnetpool(&NewSubnetPool {
            name: "kuryr".into(),
            prefixes: vec!["10.10.0.0/16".parse().unwrap()],
            ..Default::default()
        })
        .await
        .unwrap();
        let cfg = KuryrConfig::parse("[DEFAULT]\ndefault_port_driver = vlan\n").unwrap();
        let mut r = CheckReport::default();
        neutron_items(&cfg, &fake, &mut r).await;
        assert!(r.is_ok(), "{r}");
        assert_eq!(r.get("subnet pool kuryr").unwrap().status, CheckStatus::Ok);
        assert_eq!(
            r.get("subnet pool kuryr6").unwrap().status,
            CheckStatus::Warn
        );

        fake.set_extensions(&["binding", "subnet_allocation"]);
        let mut r = CheckReport::default();
        neutron_items(&cfg, &fake, &mut r).await;
        assert!(!r.is_ok());
        assert_eq!(r.get("extension trunk").unwrap().status, CheckStatus::Fail);
        // Without tags `serve` refuses to start: check-config must not say OK.
        assert_eq!(
            r.get("extension standard-attr-tag").unwrap().status,
            CheckStatus::Fail
        );
        let text = r.to_string();
        assert!(text.contains("[FAIL] extension trunk: missing"), "{text}");
        assert!(
            text.ends_with("warnings") || text.contains("BROKEN"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn printed_report_has_each_item_once_and_one_summary() {
        let fake = FakeNeutron::new();
        let cfg = KuryrConfig::parse("[DEFAULT]\nbogus = 1\n").unwrap();
        let mut r = CheckReport::default();
        config_items(&cfg, &mut r);
        neutron_items(&cfg, &fake, &mut r).await;
        assert!(r.items.len() > 5, "{r}");
        let mut out = Vec::new();
        r.write_to(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), r.items.len() + 1, "{out}");
        for item in &r.items {
            let line = format!("{}: {}", item.name, item.detail);
            let n = lines.iter().filter(|l| l.ends_with(&line)).count();
            assert_eq!(n, 1, "{line:?} printed {n} times:\n{out}");
        }
        let summary = lines.last().unwrap();
        assert!(summary.starts_with("configuration "), "{summary}");
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("configuration "))
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn unreachable_neutron_fails_cleanly() {
        // A port nobody listens on: connection refused, reported, no panic.
        let cfg = KuryrConfig::parse(
            "[neutron]\nauth_type = none\nendpoint = http://127.0.0.1:9\ntimeout = 2\n",
        )
        .unwrap();
        let r = run(&cfg).await;
        assert!(!r.is_ok());
        assert_eq!(r.get("neutron api").unwrap().status, CheckStatus::Fail);
        let cfg =
            KuryrConfig::parse("[neutron]\nauth_type = password\nauth_url = http://127.0.0.1:9\n")
                .unwrap();
        let r = run(&cfg).await;
        assert_eq!(r.get("credentials").unwrap().status, CheckStatus::Fail);
    }
}
