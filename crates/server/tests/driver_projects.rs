//! Real-stack test of Kuryr in one Keystone project beside another: the real `kuryr-server`
//! authenticates to the Keystone-protected Neutron as the stack's admin (whose token lists every
//! project's resources), scoped to the admin project; a second project on the same Keystone
//! holds a network carrying a Docker network's own Kuryr tags, a subnetpool with the name Kuryr
//! gives its pools, a network and a security group users name, and a port that looks like an
//! orphan reservation bound to this host. Kuryr works (containers ping each other), refuses to
//! adopt the other project's network or group, and leaves every one of its resources, tags
//! included, as it found them.
//!
//! Needs the local stack with Keystone (`stack.sh up --keystone`, as `./dev.sh test` runs it).

mod e2e;

use std::collections::BTreeSet;
use std::process::Command;

use e2e::*;
use serde_json::{json, Value};

struct Keystone {
    url: String,
    user: String,
    password: String,
    project: String,
    user_domain: String,
    project_domain: String,
}

fn keystone_env() -> Option<Keystone> {
    let v = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Some(Keystone {
        url: stack_var("KURYR_TEST_KEYSTONE_URL")?,
        user: stack_var("KURYR_TEST_KEYSTONE_USERNAME")?,
        password: stack_var("KURYR_TEST_KEYSTONE_PASSWORD")?,
        project: stack_var("KURYR_TEST_KEYSTONE_PROJECT")?,
        user_domain: v("KURYR_TEST_KEYSTONE_USER_DOMAIN").unwrap_or_else(|| "Default".into()),
        project_domain: v("KURYR_TEST_KEYSTONE_PROJECT_DOMAIN").unwrap_or_else(|| "Default".into()),
    })
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-m", "20"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Keystone {
    /// A token of the admin user scoped to its project (header `X-Subject-Token`).
    fn token(&self) -> String {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.user, "domain": {"name": self.user_domain},
                "password": self.password}}},
            "scope": {"project": {"name": self.project, "domain": {"name": self.project_domain}}}
        }});
        let headers = curl(&[
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-H",
            "Content-Type: application/json",
            "-d",
            &body.to_string(),
            &format!("{}/auth/tokens", self.url),
        ]);
        headers
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("x-subject-token")
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no token from keystone: {headers}"))
    }

    fn call(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/{path}", self.url);
        let auth = format!("X-Auth-Token: {token}");
        let mut args = vec![
            "-f",
            "-X",
            method,
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
        ];
        let body = body.map(|b| b.to_string());
        if let Some(b) = &body {
            args.extend_from_slice(&["-d", b]);
        }
        args.push(&url);
        let out = curl(&args);
        serde_json::from_str(&out).unwrap_or(Value::Null)
    }

    fn project_id(&self, token: &str, name: &str) -> String {
        let v = self.call(token, "GET", &format!("projects?name={name}"), None);
        v["projects"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no keystone project {name}: {v}"))
            .to_string()
    }

    /// `[neutron]` lines of kuryr.conf for this user and project.
    fn kuryr_conf(&self) -> String {
        format!(
            "auth_type = password\nauth_url = {}\nusername = {}\npassword = {}\n\
             project_name = {}\nuser_domain_name = {}\nproject_domain_name = {}",
            self.url, self.user, self.password, self.project, self.user_domain, self.project_domain
        )
    }
}

#[test]
fn kuryr_keeps_to_its_keystone_project() {
    let Some(env) = StackEnv::from_env() else {
        return;
    };
    let Some(ks) = keystone_env() else {
        return;
    };
    let token = ks.token();
    let own = ks.project_id(&token, &ks.project);
    let mut stack = Stack::start(env);
    let other_name = stack.unique("other-project");
    let created = ks.call(
        &token,
        "POST",
        "projects",
        Some(json!({"project": {"name": other_name, "domain_id": "default"}})),
    );
    let other = created["project"]["id"].as_str().unwrap().to_string();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        two_projects(&mut stack, &ks, &own, &other);
    }));
    stack.cleanup();
    ks.call(&token, "DELETE", &format!("projects/{other}"), None);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// Everything of `project` in Neutron, with its tags (and a port's binding and owner).
fn resources_of(s: &Stack, project: &str) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for kind in [
        "networks",
        "subnets",
        "subnetpools",
        "ports",
        "security-groups",
    ] {
        for r in s.neutron.list(kind, &[("project_id", project)]) {
            let mut tags = tags_of(&r);
            tags.sort();
            all.insert(format!(
                "{kind} {} {} tags={tags:?} owner={} host={}",
                r["id"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default(),
                r["device_owner"].as_str().unwrap_or_default(),
                r["binding:host_id"].as_str().unwrap_or_default(),
            ));
        }
    }
    all
}

fn two_projects(s: &mut Stack, ks: &Keystone, own: &str, other: &str) {
    // The other project's resources, made through the noauth API on its behalf.
    let their_net = s.neutron.create(
        "networks",
        json!({"network": {"name": s.unique("theirs"), "project_id": other}}),
    );
    let their_net_id = their_net["id"].as_str().unwrap().to_string();
    s.track_neutron("networks", &their_net_id);
    let their_subnet = s.neutron.create(
        "subnets",
        json!({"subnet": {"network_id": their_net_id, "ip_version": 4,
            "cidr": "10.77.1.0/24", "project_id": other}}),
    );
    let their_pool = s.neutron.create(
        "subnetpools",
        json!({"subnetpool": {"name": "kuryrPool-10.77.2.0/24", "prefixes": ["10.77.2.0/24"],
            "project_id": other}}),
    );
    let their_pool_id = their_pool["id"].as_str().unwrap().to_string();
    s.track_neutron("subnetpools", &their_pool_id);
    let their_group = s.neutron.create(
        "security-groups",
        json!({"security_group": {"name": s.unique("theirs-sg"), "project_id": other}}),
    );
    s.track_neutron("security-groups", their_group["id"].as_str().unwrap());
    // An orphan reservation, to every appearance (Kuryr's name and owner, bound to this host).
    let their_port = s.neutron.create(
        "ports",
        json!({"port": {"network_id": their_net_id, "name": "kuryr-unbound-port",
            "device_owner": "compute:kuryr", "binding:host_id": s.env.chassis,
            "project_id": other}}),
    );
    let their_port_id = their_port["id"].as_str().unwrap().to_string();
    s.track_neutron("ports", &their_port_id);

    s.restart_with_neutron_auth(Some(ks.kuryr_conf()));

    // Kuryr's own network: its pool is made anew, not the other project's of the same name.
    let net = s.network_create("mine", &["--subnet", "10.77.2.0/24"]);
    let docker_id = s.docker_network_id(&net);
    let mine = s.neutron_network_of(&docker_id);
    assert_eq!(mine["project_id"].as_str(), Some(own), "{mine}");
    let mine_id = mine["id"].as_str().unwrap().to_string();
    let my_subnets = s.neutron.list("subnets", &[("network_id", &mine_id)]);
    assert_eq!(my_subnets.len(), 1, "{my_subnets:?}");
    assert_ne!(
        my_subnets[0]["subnetpool_id"].as_str(),
        Some(their_pool_id.as_str())
    );

    // Another project's network carrying this Docker network's own Kuryr tags.
    let tagged = s.neutron.create(
        "networks",
        json!({"network": {"name": s.unique("theirs-tagged"), "project_id": other}}),
    );
    let tagged_id = tagged["id"].as_str().unwrap().to_string();
    s.track_neutron("networks", &tagged_id);
    let kuryr_tags = tags_of(&mine);
    assert!(kuryr_tags.len() >= 2, "{mine}");
    s.neutron.put_action(
        &format!("networks/{tagged_id}/tags"),
        json!({"tags": kuryr_tags}),
    );
    let before = resources_of(s, other);

    // Containers on Kuryr's network reach each other (the tag look-ups found its network only).
    let a = s.run(&net, &[]);
    let b = s.run(&net, &[]);
    let ip_b = s.container_ip(&b, &net);
    assert!(pings_within(&["docker", "exec", &a], &ip_b, 20));

    // The other project's network and group, named by a user: not Kuryr's to use.
    let plugin = plugin_name();
    let name = s.unique("refused");
    let refused = |cidr: &str, option: String| {
        let args = network_create_args(&plugin, cidr, &["-o", &option], &name);
        docker_cmd(&args).expect_err(&option)
    };
    let their_name = their_net["name"].as_str().unwrap();
    let e = refused("10.77.3.0/24", format!("neutron.net.name={their_name}"));
    assert!(e.contains("does not exist"), "{e}");
    let e = refused("10.77.1.0/24", format!("neutron.net.uuid={their_net_id}"));
    assert!(e.contains("not shared"), "{e}");
    let group = their_group["name"].as_str().unwrap();
    let e = refused(
        "10.77.4.0/24",
        format!("neutron.port.security_groups={group}"),
    );
    assert!(e.contains(group), "{e}");

    // The orphan sweep (every 2 s, deletes what it sees twice) leaves their port alone.
    std::thread::sleep(std::time::Duration::from_secs(7));

    s.rm(&a);
    s.rm(&b);
    s.network_rm(&net);
    assert!(
        s.neutron.get("networks", &mine_id).is_none(),
        "kuryr's network removed"
    );
    assert_eq!(
        resources_of(s, other),
        before,
        "the other project's resources are as they were"
    );
    assert!(s
        .neutron
        .get("subnets", their_subnet["id"].as_str().unwrap())
        .is_some());
    assert!(s.neutron.get("ports", &their_port_id).is_some());
    s.assert_no_kuryr_leftovers("two projects");
}
