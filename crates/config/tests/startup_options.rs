//! Options of kuryr-libnetwork's `kuryr.conf` that kuryr-rs reports, takes from the environment,
//! or accepts without using: `[DEFAULT] use_syslog`, the `CAPABILITY_SCOPE` variable, and
//! keystoneauth's session/adapter options in `[neutron]`.

use kuryr_config::{ConfigError, ConfigSource, KuryrConfig};

/// An environment of fixed variables (the process's own is never read).
fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| {
        vars.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    }
}

/// A kuryr.conf in a temporary directory, loaded with `env`.
fn load(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<KuryrConfig, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kuryr.conf");
    std::fs::write(&path, text).unwrap();
    KuryrConfig::load_with_env(&[ConfigSource::File(path)], env)
}

// ---- 1. [DEFAULT] use_syslog ----

/// Syslog is not supported: the start-up warnings (what `serve` logs and `check-config`
/// reports) say so, and where the logs go instead.
#[test]
fn use_syslog_is_warned_with_where_the_logs_go() {
    let c = KuryrConfig::parse("[DEFAULT]\nuse_syslog = true\n").unwrap();
    assert!(c.default.use_syslog);
    assert!(
        c.warnings
            .iter()
            .any(|w| w == "[DEFAULT] use_syslog is not supported, logging to stderr"),
        "{:?}",
        c.warnings
    );

    let c = KuryrConfig::parse("[DEFAULT]\nuse_syslog = True\nlog_dir = /var/log/kuryr\n").unwrap();
    assert!(
        c.warnings.iter().any(|w| w
            == "[DEFAULT] use_syslog is not supported, logging to /var/log/kuryr/kuryr-server.log"),
        "{:?}",
        c.warnings
    );
    let c = KuryrConfig::parse(
        "[DEFAULT]\nuse_syslog = yes\nlog_dir = /var/log/kuryr\nlog_file = k.log\n",
    )
    .unwrap();
    assert!(
        c.warnings
            .iter()
            .any(|w| w == "[DEFAULT] use_syslog is not supported, logging to /var/log/kuryr/k.log"),
        "{:?}",
        c.warnings
    );

    // Once, and only when asked for.
    let c = KuryrConfig::parse("[DEFAULT]\nuse_syslog = true\n").unwrap();
    assert_eq!(
        c.warnings
            .iter()
            .filter(|w| w.contains("use_syslog"))
            .count(),
        1,
        "{:?}",
        c.warnings
    );
    for text in ["", "[DEFAULT]\nuse_syslog = false\n"] {
        let c = KuryrConfig::parse(text).unwrap();
        assert!(c.warnings.is_empty(), "{text:?}: {:?}", c.warnings);
    }
    // oslo's environment source turns it on too.
    let c =
        KuryrConfig::load_with_env(&[], &env_of(&[("OS_DEFAULT__USE_SYSLOG", "true")])).unwrap();
    assert!(
        c.warnings
            .iter()
            .any(|w| w.starts_with("[DEFAULT] use_syslog is not supported, logging to ")),
        "{:?}",
        c.warnings
    );
}

// ---- 2. CAPABILITY_SCOPE ----

/// kuryr-libnetwork: `default=os.environ.get('CAPABILITY_SCOPE', 'local')`: the variable sets the
/// default, a value in the file wins.
#[test]
fn capability_scope_variable_sets_the_default() {
    let global = env_of(&[("CAPABILITY_SCOPE", "global")]);
    let c = KuryrConfig::load_with_env(&[], &global).unwrap();
    assert_eq!(c.default.capability_scope, "global");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    let c = load("[DEFAULT]\nbindir = /usr/libexec/kuryr\n", &global).unwrap();
    assert_eq!(
        c.default.capability_scope, "global",
        "the file does not set it"
    );

    let c = load("[DEFAULT]\ncapability_scope = local\n", &global).unwrap();
    assert_eq!(c.default.capability_scope, "local", "the file wins");

    let local = env_of(&[("CAPABILITY_SCOPE", "local")]);
    let c = KuryrConfig::load_with_env(&[], &local).unwrap();
    assert_eq!(c.default.capability_scope, "local");

    // oslo's own variable beats the file and the default.
    let both = env_of(&[
        ("CAPABILITY_SCOPE", "local"),
        ("OS_DEFAULT__CAPABILITY_SCOPE", "global"),
    ]);
    let c = load("[DEFAULT]\ncapability_scope = local\n", &both).unwrap();
    assert_eq!(c.default.capability_scope, "global");

    let none = env_of(&[]);
    let c = KuryrConfig::load_with_env(&[], &none).unwrap();
    assert_eq!(c.default.capability_scope, "local", "the built-in default");
}

/// oslo.config checks a default against the option's choices: an invalid `CAPABILITY_SCOPE`
/// stops the Python daemon, whatever the file says. Refused here too, naming the variable.
#[test]
fn an_invalid_capability_scope_variable_is_refused() {
    for text in ["", "[DEFAULT]\ncapability_scope = global\n"] {
        let e =
            load(text, &env_of(&[("CAPABILITY_SCOPE", "planet")])).expect_err("planet is no scope");
        assert!(matches!(e, ConfigError::Value { .. }), "{e:?}");
        let e = e.to_string();
        assert!(
            e.contains("CAPABILITY_SCOPE")
                && e.contains("capability_scope")
                && e.contains("\"planet\"")
                && e.contains("local, global"),
            "{text:?}: {e}"
        );
    }
    for bad in ["Global", "", " local"] {
        let e = KuryrConfig::load_with_env(&[], &env_of(&[("CAPABILITY_SCOPE", bad)]))
            .expect_err(bad)
            .to_string();
        assert!(e.contains("CAPABILITY_SCOPE"), "{bad:?}: {e}");
    }
}

// ---- 3. keystoneauth options accepted and not used ----

const UNUSED_KEYSTONE_OPTS: &[(&str, &str)] = &[
    ("collect_timing", "true"),
    ("split_loggers", "false"),
    ("www_authenticate_uri", "http://keystone:5000/v3"),
    ("service_type", "network"),
    ("service_name", "neutron"),
    ("min_version", "2.0"),
    ("max_version", "2.latest"),
    ("version", "2.0"),
    ("connect_retries", "3"),
    ("connect_retry_delay", "0.5"),
    ("status_code_retries", "2"),
    ("status_code_retry_delay", "1.0"),
    ("trust_id", "0123456789abcdef"),
    ("system_scope", "all"),
    ("tenant_id", "fedcba9876543210"),
];

/// Accepted (a file written for keystoneauth loads), never an error and never an unknown option.
/// (Whether each also gets a "has no effect" note is not asserted here.)
#[test]
fn unused_keystoneauth_options_are_accepted() {
    let mut text = String::from(
        "[neutron]\nauth_type = password\nauth_url = http://keystone:5000/v3\n\
         username = kuryr\npassword = pw\nproject_name = service\n\
         user_domain_name = Default\nproject_domain_name = Default\n",
    );
    for (k, v) in UNUSED_KEYSTONE_OPTS {
        text.push_str(&format!("{k} = {v}\n"));
    }
    let unknown = |c: &KuryrConfig| -> Vec<String> {
        c.warnings
            .iter()
            .filter(|w| w.contains("unknown option"))
            .cloned()
            .collect()
    };
    let c = load(&text, &env_of(&[])).unwrap();
    assert!(unknown(&c).is_empty(), "{:?}", c.warnings);
    assert_eq!(c.neutron.auth.auth_type.as_deref(), Some("password"));
    assert_eq!(c.neutron.auth.username.as_deref(), Some("kuryr"));
    assert_eq!(c.neutron.auth.project_name.as_deref(), Some("service"));
    // `tenant_id` is not `project_id` (nor `tenant_name`'s deprecation).
    assert_eq!(c.neutron.auth.project_id, None);
    assert!(
        !c.warnings.iter().any(|w| w.contains("deprecated")),
        "{:?}",
        c.warnings
    );
    let c = KuryrConfig::parse(&text).unwrap();
    assert!(unknown(&c).is_empty(), "{:?}", c.warnings);

    // Each one alone, too (a typo in the list would show here).
    for (k, v) in UNUSED_KEYSTONE_OPTS {
        let c = KuryrConfig::parse(&format!("[neutron]\n{k} = {v}\n"))
            .unwrap_or_else(|e| panic!("{k}: {e}"));
        assert!(unknown(&c).is_empty(), "{k}: {:?}", c.warnings);
    }

    // Not accepted wholesale: a key that is not keystoneauth's is still reported.
    let c = KuryrConfig::parse(&format!("{text}bogus_retries = 3\n")).unwrap();
    assert_eq!(
        unknown(&c),
        vec!["<string>:24: unknown option [neutron] bogus_retries".to_string()],
        "{:?}",
        c.warnings
    );
    // Nor in another section.
    let c = KuryrConfig::parse("[binding]\nconnect_retries = 3\n").unwrap();
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("unknown option [binding] connect_retries")),
        "{:?}",
        c.warnings
    );
}
