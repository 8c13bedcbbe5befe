//! `check-config` against the local stack's noauth Neutron (KURYR_TEST_NEUTRON_URL) and, when
//! KURYR_TEST_KEYSTONE_URL and its credentials are set, through Keystone. Without the Neutron URL
//! it prints `skipped: ...` and passes, except in CI (`CI=true`), where that is a failure.

use kuryr_config::KuryrConfig;
use kuryr_libnetwork::check::{self, CheckStatus};

#[path = "common/skip.rs"]
mod skip;
use skip::stack_var;

#[tokio::test]
async fn check_config_against_the_stack() {
    let Some(url) = stack_var("KURYR_TEST_NEUTRON_URL") else {
        return;
    };
    let cfg =
        KuryrConfig::parse(&format!("[neutron]\nauth_type = none\nendpoint = {url}\n")).unwrap();
    let report = check::run(&cfg).await;
    println!("{report}");
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        report.get("extension binding").unwrap().status,
        CheckStatus::Ok
    );
    assert_eq!(report.get("neutron endpoint").unwrap().detail, url);

    let Some(ks_url) = stack_var("KURYR_TEST_KEYSTONE_URL") else {
        return;
    };
    let v = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_string());
    let password = v("KURYR_TEST_KEYSTONE_PASSWORD", "");
    let conf = format!(
        "[neutron]\nauth_type = password\nauth_url = {ks_url}\nusername = {}\npassword = {password}\n\
         project_name = {}\nuser_domain_name = {}\nproject_domain_name = {}\n",
        v("KURYR_TEST_KEYSTONE_USERNAME", ""),
        v("KURYR_TEST_KEYSTONE_PROJECT", ""),
        v("KURYR_TEST_KEYSTONE_USER_DOMAIN", "Default"),
        v("KURYR_TEST_KEYSTONE_PROJECT_DOMAIN", "Default"),
    );
    let report = check::run(&KuryrConfig::parse(&conf).unwrap()).await;
    assert!(report.is_ok(), "{report}");
    assert!(
        password.is_empty() || !report.to_string().contains(&password),
        "the report never shows the password"
    );
}
