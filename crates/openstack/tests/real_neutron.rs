//! Against the local stack: the noauth Neutron (KURYR_TEST_NEUTRON_URL) and, when
//! KURYR_TEST_KEYSTONE_URL is set, Keystone + the Neutron its catalog names (password and
//! application-credential auth). Every resource carries a per-run tag and is deleted at the end,
//! also when an assertion fails.
//!
//! Without those variables a test prints `skipped: ...` and passes, except in CI (`CI=true`),
//! where a missing stack is a failure: see [`stack_var`].

use std::future::Future;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use kuryr_openstack::auth::{ClientSettings, KeystoneOptions};
use kuryr_openstack::neutron::*;
use secrecy::SecretString;
use serde_json::{json, Value};

fn unique() -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}-{n:x}", std::process::id())
}

/// The stack coordinate `name`, or `None` after printing why the test is skipped. In CI
/// (`CI=true`) a missing coordinate fails the test: CI must never pass by skipping the stack.
fn stack_var(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{name} is not set, and CI=true: the real-stack tests must run in CI")
        }
        _ => {
            println!("skipped: {name} is not set");
            None
        }
    }
}

fn some(v: impl Into<String>) -> Option<String> {
    Some(v.into())
}

fn noauth(endpoint: &str) -> KeystoneOptions {
    KeystoneOptions {
        auth_type: some("none"),
        endpoint: some(endpoint),
        ..Default::default()
    }
}

fn client(opts: &KeystoneOptions) -> HttpNeutron {
    let settings = ClientSettings::resolve_with_env(opts, &|_| None).unwrap();
    HttpNeutron::new(&settings).unwrap()
}

/// Delete everything tagged `run_tag`, dependants first; not-found counts as done.
async fn cleanup(n: &HttpNeutron, run_tag: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let by_tag = Filters::new().tags(&[run_tag]);
    let mut note = |what: &str, r: Result<()>| {
        if let Err(e) = r {
            if !e.is_not_found() {
                errors.push(format!("{what}: {e}"));
            }
        }
    };
    for t in n.list_trunks(&by_tag).await.unwrap_or_default() {
        let subs: Vec<String> = t.sub_ports.iter().map(|s| s.port_id.clone()).collect();
        if !subs.is_empty() {
            note(
                "remove subports",
                n.remove_subports(&t.id, &subs).await.map(|_| ()),
            );
        }
        note("delete trunk", n.delete_trunk(&t.id).await);
    }
    for p in n.list_ports(&by_tag).await.unwrap_or_default() {
        note("delete port", n.delete_port(&p.id).await);
    }
    for s in n.list_subnets(&by_tag).await.unwrap_or_default() {
        note("delete subnet", n.delete_subnet(&s.id).await);
    }
    for x in n.list_networks(&by_tag).await.unwrap_or_default() {
        note("delete network", n.delete_network(&x.id).await);
    }
    for p in n.list_subnetpools(&by_tag).await.unwrap_or_default() {
        note("delete subnetpool", n.delete_subnetpool(&p.id).await);
    }
    for g in n.list_security_groups(&by_tag).await.unwrap_or_default() {
        note(
            "delete security group",
            n.delete_security_group(&g.id).await,
        );
    }
    errors
}

/// Run `body`, then clean up whatever happened; re-raise a panic after cleaning.
async fn with_cleanup<F, Fut>(n: std::sync::Arc<HttpNeutron>, run_tag: String, body: F)
where
    F: FnOnce(std::sync::Arc<HttpNeutron>, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(body(n.clone(), run_tag.clone())).await;
    let errors = cleanup(&n, &run_tag).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    assert!(errors.is_empty(), "cleanup failed: {errors:?}");
    let left = n
        .list_ports(&Filters::new().tags(&[&run_tag]))
        .await
        .unwrap()
        .len()
        + n.list_networks(&Filters::new().tags(&[&run_tag]))
            .await
            .unwrap()
            .len()
        + n.list_subnetpools(&Filters::new().tags(&[&run_tag]))
            .await
            .unwrap()
            .len();
    assert_eq!(left, 0, "resources left behind");
}

/// Every resource type through the API: create, list, filter by tag, update, delete.
async fn exercise(n: std::sync::Arc<HttpNeutron>, run: String, chassis: Option<String>) {
    let tag = |t: &str| format!("{t}-{run}");
    let base_tags = vec![run.clone()];

    // Extensions Kuryr relies on.
    let ext: Vec<String> = n
        .list_extensions()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.alias)
        .collect();
    for needed in [
        extensions::STANDARD_ATTR_TAG,
        extensions::PORT_BINDING,
        extensions::SUBNET_ALLOCATION,
        extensions::TRUNK,
    ] {
        assert!(ext.iter().any(|e| e == needed), "missing {needed}");
    }

    // Subnet pool and a subnet allocated from it by prefix length.
    let pool = n
        .create_subnetpool(&NewSubnetPool {
            name: format!("kuryrPool-test-{run}"),
            prefixes: vec!["10.233.0.0/16".parse().unwrap()],
            default_prefixlen: Some(24),
            tags: Some(base_tags.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pool.default_prefixlen, Some(24));
    assert_eq!(pool.tags, base_tags);

    // Network with tags on create (sent as a second request), then filtered.
    let net = n
        .create_network(&NewNetwork {
            name: Some(format!("kuryr-net-{run}")),
            tags: Some(vec![run.clone(), tag("lh")]),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut tags = net.tags.clone();
    tags.sort();
    let mut want = vec![run.clone(), tag("lh")];
    want.sort();
    assert_eq!(tags, want);
    assert!(net.mtu.is_some());
    let other = n
        .create_network(&NewNetwork {
            name: Some(format!("other-{run}")),
            tags: Some(base_tags.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let found = n
        .list_networks(&Filters::new().tags(&[run.clone(), tag("lh")]))
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|x| &x.id).collect::<Vec<_>>(),
        vec![&net.id]
    );
    let any = n
        .list_networks(&Filters::new().tags_any(&[tag("lh"), run.clone()]))
        .await
        .unwrap();
    assert_eq!(any.len(), 2);
    let not = n
        .list_networks(&Filters::new().tags(&[&run]).not_tags(&[tag("lh")]))
        .await
        .unwrap();
    assert_eq!(
        not.iter().map(|x| &x.id).collect::<Vec<_>>(),
        vec![&other.id]
    );
    let not_any = n
        .list_networks(&Filters::new().tags(&[&run]).not_tags_any(&[tag("lh")]))
        .await
        .unwrap();
    assert_eq!(not_any.len(), 1);
    let renamed = n
        .update_network(
            &net.id,
            &NetworkUpdate {
                name: Some(format!("renamed-{run}")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, format!("renamed-{run}"));
    n.delete_network(&other.id).await.unwrap();
    assert!(n.get_network(&other.id).await.unwrap_err().is_not_found());

    let subnet = n
        .create_subnet(&NewSubnet {
            network_id: net.id.clone(),
            ip_version: 4,
            subnetpool_id: Some(pool.id.clone()),
            prefixlen: Some(26),
            name: Some(format!("kuryr-subnet-{run}")),
            enable_dhcp: Some(false),
            tags: Some(vec![run.clone(), pool.id.clone()]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(subnet.cidr.prefix_len(), 26);
    assert!(pool.prefixes[0].contains(&subnet.cidr));
    assert_eq!(subnet.subnetpool_id.as_deref(), Some(pool.id.as_str()));
    let by_pool_tag = n
        .list_subnets(&Filters::new().tags(&[&pool.id]).network_id(&net.id))
        .await
        .unwrap();
    assert_eq!(by_pool_tag.len(), 1);
    let upd = n
        .update_subnet(
            &subnet.id,
            &SubnetUpdate {
                dns_nameservers: Some(vec!["10.233.0.53".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(upd.dns_nameservers, vec!["10.233.0.53".to_string()]);

    // Ports: a specific address, a conflict on it, bulk create, field selection, pagination.
    let gw = subnet.gateway_ip.unwrap();
    let wanted: IpAddr = match gw {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) + 9).into()),
        IpAddr::V6(_) => unreachable!(),
    };
    let port = n
        .create_port(&NewPort {
            network_id: net.id.clone(),
            // Not Kuryr's reservation name: a daemon's orphan sweep on this host (the driver's
            // real-stack tests run alongside) would take it for a reservation left by a crash.
            name: Some("kuryr-client-test-port".into()),
            fixed_ips: Some(vec![FixedIpRequest::address(&subnet.id, wanted)]),
            device_owner: Some("kuryr:container".into()),
            tags: Some(base_tags.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(port.fixed_ips[0].ip_address, wanted);
    assert_eq!(port.tags, base_tags);
    let dup = n
        .create_port(&NewPort {
            network_id: net.id.clone(),
            fixed_ips: Some(vec![FixedIpRequest::address(&subnet.id, wanted)]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(dup.is_conflict(), "{dup}");
    assert_eq!(dup.neutron_kind(), Some("IpAddressAlreadyAllocated"));
    assert!(
        dup.request_id().is_some_and(|r| r.starts_with("req-")),
        "{dup}"
    );
    let bulk = n
        .create_ports(&[
            NewPort {
                network_id: net.id.clone(),
                name: Some("b1".into()),
                tags: Some(base_tags.clone()),
                ..Default::default()
            },
            NewPort {
                network_id: net.id.clone(),
                name: Some("b2".into()),
                tags: Some(base_tags.clone()),
                ..Default::default()
            },
        ])
        .await
        .unwrap();
    assert_eq!(bulk.len(), 2);
    assert!(bulk.iter().all(|p| p.tags == base_tags));
    let mine = Filters::new().tags(&[&run]).network_id(&net.id);
    let paged = n.list_ports(&mine.clone().limit(1)).await.unwrap();
    assert_eq!(
        paged.len(),
        3,
        "limit is a page size, the listing is complete"
    );
    let slim = n
        .list_ports(&mine.clone().fields(&["id", "name"]))
        .await
        .unwrap();
    assert!(slim
        .iter()
        .all(|p| !p.id.is_empty() && p.mac_address == Port::NO_MAC));
    let by_ip = n
        .list_ports(&Filters::new().fixed_ip(Some(&subnet.id), Some(wanted)))
        .await
        .unwrap();
    assert_eq!(
        by_ip.iter().map(|p| &p.id).collect::<Vec<_>>(),
        vec![&port.id]
    );

    // Bind like CreateEndpoint does: host, owner, device id and the MAC in one PUT.
    let mut update = PortUpdate {
        device_owner: Some("compute:kuryr".into()),
        device_id: Some(format!("ep-{run}")),
        mac_address: Some("fa:16:3e:12:34:56".parse().unwrap()),
        ..Default::default()
    };
    update.binding_host_id = chassis.clone();
    let bound = n.update_port(&port.id, &update).await.unwrap();
    assert_eq!(bound.mac_address.to_string(), "fa:16:3e:12:34:56");
    assert_eq!(bound.device_owner, "compute:kuryr");
    if let Some(host) = &chassis {
        assert_eq!(&bound.binding_host_id, host);
        assert_eq!(
            bound.binding_vif_type,
            kuryr_types::VifType::Ovs,
            "bound to an OVN chassis"
        );
        assert!(
            bound.binding_vif_details.contains_key("bridge_name"),
            "{:?}",
            bound.binding_vif_details
        );
    }

    // Tags: add, filter, remove, replace.
    n.add_tag(ResourceKind::Port, &port.id, &tag("ep"))
        .await
        .unwrap();
    let tagged = n
        .list_ports(&Filters::new().tags(&[tag("ep")]))
        .await
        .unwrap();
    assert_eq!(tagged.len(), 1);
    n.remove_tag(ResourceKind::Port, &port.id, &tag("ep"))
        .await
        .unwrap();
    assert!(n
        .remove_tag(ResourceKind::Port, &port.id, &tag("ep"))
        .await
        .unwrap_err()
        .is_not_found());
    let replaced = n
        .replace_tags(
            ResourceKind::Port,
            &port.id,
            &[run.clone(), tag("x"), tag("y")],
        )
        .await
        .unwrap();
    assert_eq!(replaced.len(), 3);
    n.add_tag(ResourceKind::Subnet, &subnet.id, &tag("s"))
        .await
        .unwrap();
    n.add_tag(ResourceKind::SubnetPool, &pool.id, &tag("p"))
        .await
        .unwrap();
    assert_eq!(
        n.list_subnetpools(&Filters::new().tags(&[tag("p")]))
            .await
            .unwrap()
            .len(),
        1
    );

    // Security group with a rule, attached to a port, then detached.
    let sg = n
        .create_security_group(&NewSecurityGroup {
            name: format!("{}-exposed_ports", port.id),
            description: Some("Docker exposed ports created by Kuryr.".into()),
            tags: Some(base_tags.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut rule = NewSecurityGroupRule::ingress(&sg.id, "IPv4");
    rule.protocol = Some("tcp".into());
    rule.port_range_min = Some(8080);
    rule.port_range_max = Some(8080);
    let r = n.create_security_group_rule(&rule).await.unwrap();
    assert!(n
        .create_security_group_rule(&rule)
        .await
        .unwrap_err()
        .is_conflict());
    let rules = n
        .list_security_group_rules(
            &Filters::new()
                .eq("security_group_id", &sg.id)
                .eq("direction", "ingress"),
        )
        .await
        .unwrap();
    assert_eq!(rules.iter().map(|x| &x.id).collect::<Vec<_>>(), vec![&r.id]);
    let with_sg = n
        .update_port(
            &bulk[0].id,
            &PortUpdate {
                security_groups: Some(vec![sg.id.clone()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(with_sg.security_groups, vec![sg.id.clone()]);
    assert!(n
        .delete_security_group(&sg.id)
        .await
        .unwrap_err()
        .is_conflict());
    n.update_port(
        &bulk[0].id,
        &PortUpdate {
            security_groups: Some(vec![]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    n.delete_security_group_rule(&r.id).await.unwrap();
    n.delete_security_group(&sg.id).await.unwrap();
    assert!(n
        .get_security_group(&sg.id)
        .await
        .unwrap_err()
        .is_not_found());

    // Trunk with a VLAN subport; the parent shows trunk_details.
    let trunk = n
        .create_trunk(&NewTrunk {
            port_id: bulk[0].id.clone(),
            name: Some(format!("trunk-{run}")),
            tags: Some(base_tags.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let t = n
        .add_subports(&trunk.id, &[SubPort::vlan(&bulk[1].id, 101)])
        .await
        .unwrap();
    assert_eq!(t.sub_ports, vec![SubPort::vlan(&bulk[1].id, 101)]);
    let parent = n.get_port(&bulk[0].id).await.unwrap();
    let details = parent.trunk_details.expect("trunk-details");
    assert_eq!(details.trunk_id, trunk.id);
    assert_eq!(details.sub_ports[0].segmentation_id, 101);
    assert_eq!(
        n.list_trunks(&Filters::new().tags(&[&run]))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(n.get_trunk(&trunk.id).await.unwrap().sub_ports.len(), 1);
    let t = n
        .remove_subports(&trunk.id, &[bulk[1].id.clone()])
        .await
        .unwrap();
    assert!(t.sub_ports.is_empty());
    n.delete_trunk(&trunk.id).await.unwrap();

    // Deletes, and "in use" conflicts before them.
    // Neutron answers 400 here, not 409.
    let in_use = n.delete_subnetpool(&pool.id).await.unwrap_err();
    assert_eq!(
        in_use.neutron_kind(),
        Some("SubnetPoolDeleteError"),
        "{in_use}"
    );
    for p in [&port, &bulk[0], &bulk[1]] {
        n.delete_port(&p.id).await.unwrap();
    }
    assert!(n.delete_port(&port.id).await.unwrap_err().is_not_found());
    n.delete_subnet(&subnet.id).await.unwrap();
    n.delete_network(&net.id).await.unwrap();
    n.delete_subnetpool(&pool.id).await.unwrap();
}

#[tokio::test]
async fn noauth_neutron_every_resource_type() {
    let Some(url) = stack_var("KURYR_TEST_NEUTRON_URL") else {
        return;
    };
    let chassis = std::env::var("KURYR_TEST_CHASSIS").ok();
    let n = std::sync::Arc::new(client(&noauth(&url)));
    let run = format!("kuryr-rs-test-{}", unique());
    with_cleanup(n, run, move |n, run| exercise(n, run, chassis)).await;
}

struct Keystone {
    url: String,
    user: String,
    password: String,
    project: String,
    user_domain: String,
    project_domain: String,
}

fn keystone_env() -> Option<Keystone> {
    let v = |k: &str| std::env::var(k).ok();
    Some(Keystone {
        url: stack_var("KURYR_TEST_KEYSTONE_URL")?,
        user: stack_var("KURYR_TEST_KEYSTONE_USERNAME")?,
        password: stack_var("KURYR_TEST_KEYSTONE_PASSWORD")?,
        project: stack_var("KURYR_TEST_KEYSTONE_PROJECT")?,
        user_domain: v("KURYR_TEST_KEYSTONE_USER_DOMAIN").unwrap_or_else(|| "Default".into()),
        project_domain: v("KURYR_TEST_KEYSTONE_PROJECT_DOMAIN").unwrap_or_else(|| "Default".into()),
    })
}

impl Keystone {
    fn password_opts(&self) -> KeystoneOptions {
        KeystoneOptions {
            auth_type: some("password"),
            auth_url: some(&self.url),
            username: some(&self.user),
            password: Some(SecretString::from(self.password.clone())),
            project_name: some(&self.project),
            user_domain_name: some(&self.user_domain),
            project_domain_name: some(&self.project_domain),
            ..Default::default()
        }
    }

    /// A token and the user's id, straight from Keystone's API.
    async fn token(&self, http: &reqwest::Client) -> (String, String) {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": self.user, "domain": {"name": self.user_domain}, "password": self.password}}},
            "scope": {"project": {"name": self.project, "domain": {"name": self.project_domain}}}}});
        let r = http
            .post(format!("{}/auth/tokens", self.url.trim_end_matches('/')))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "keystone: {}", r.status());
        let token = r.headers()["x-subject-token"].to_str().unwrap().to_string();
        let v: Value = r.json().await.unwrap();
        (
            token,
            v["token"]["user"]["id"].as_str().unwrap().to_string(),
        )
    }
}

#[tokio::test]
async fn keystone_password_and_application_credential() {
    let Some(ks) = keystone_env() else {
        return;
    };
    // Password auth, endpoint from the catalog.
    let pw = std::sync::Arc::new(client(&ks.password_opts()));
    let creds = pw.session().credentials().await.unwrap();
    assert!(creds.token.is_some());
    let noauth = std::env::var("KURYR_TEST_NEUTRON_URL").unwrap_or_default();
    assert_ne!(
        creds.endpoint.trim_end_matches('/'),
        noauth.trim_end_matches('/'),
        "the catalog names the keystone-protected Neutron"
    );
    let run = format!("kuryr-rs-ks-{}", unique());
    with_cleanup(pw.clone(), run, |n, run| exercise(n, run, None)).await;

    // An application credential created for this test, then used.
    let http = reqwest::Client::new();
    let (token, user_id) = ks.token(&http).await;
    let name = format!("kuryr-rs-test-{}", unique());
    let base = ks.url.trim_end_matches('/').to_string();
    let r = http
        .post(format!("{base}/users/{user_id}/application_credentials"))
        .header("x-auth-token", &token)
        .json(&json!({"application_credential": {"name": name}}))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "create application credential: {}",
        r.status()
    );
    let ac: Value = r.json().await.unwrap();
    let (ac_id, ac_secret) = (
        ac["application_credential"]["id"]
            .as_str()
            .unwrap()
            .to_string(),
        ac["application_credential"]["secret"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let conf = KeystoneOptions {
        auth_type: some("v3applicationcredential"),
        auth_url: some(&ks.url),
        application_credential_id: some(&ac_id),
        application_credential_secret: Some(SecretString::from(ac_secret)),
        ..Default::default()
    };
    let outcome = tokio::spawn(async move {
        let n = std::sync::Arc::new(client(&conf));
        let run = format!("kuryr-rs-ac-{}", unique());
        let tag = run.clone();
        with_cleanup(n, run, move |n, _| async move {
            let net = n
                .create_network(&NewNetwork {
                    name: Some(tag.clone()),
                    tags: Some(vec![tag.clone()]),
                    ..Default::default()
                })
                .await
                .unwrap();
            let found = n
                .list_networks(&Filters::new().tags(&[&tag]))
                .await
                .unwrap();
            assert_eq!(
                found.iter().map(|x| &x.id).collect::<Vec<_>>(),
                vec![&net.id]
            );
            let upd = n
                .update_network(
                    &net.id,
                    &NetworkUpdate {
                        description: Some("via app cred".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(upd.description, "via app cred");
            n.delete_network(&net.id).await.unwrap();
        })
        .await;
    })
    .await;
    let del = http
        .delete(format!(
            "{base}/users/{user_id}/application_credentials/{ac_id}"
        ))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    assert!(
        del.status().is_success(),
        "delete application credential: {}",
        del.status()
    );
}
