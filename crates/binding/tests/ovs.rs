//! Real OVS plugging: against the stack's OVSDB (KURYR_TEST_OVSDB, bridge br-int) or, when
//! that is unset, a private ovsdb-server started by the test. Links live in a test netns.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command};

use common::*;
use kuryr_binding::{
    BindMode, BindingConfig, BindingError, HostBinding, LinuxHostBinding, OwnedKind, UnbindRequest,
};
use serde_json::json;

struct Ovsdb {
    db: String,
    no_wait: bool,
    _server: Option<(Child, tempfile::TempDir)>,
}

impl Drop for Ovsdb {
    fn drop(&mut self) {
        if let Some((child, _)) = &mut self._server {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn ovsdb(test: &str) -> Option<Ovsdb> {
    if let Ok(db) = std::env::var("KURYR_TEST_OVSDB") {
        return Some(Ovsdb {
            db,
            no_wait: false,
            _server: None,
        });
    }
    let schema = "/usr/share/openvswitch/vswitch.ovsschema";
    if !std::path::Path::new(schema).exists() || !sh("command -v ovsdb-server").0 {
        skip_or_fail(&format!(
            "{test}: KURYR_TEST_OVSDB unset and no ovsdb-server installed"
        ));
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("conf.db");
    let sock = dir.path().join("db.sock");
    sh_ok(&format!("ovsdb-tool create {} {schema}", file.display()));
    let child = Command::new("ovsdb-server")
        .arg(&file)
        .arg(format!("--remote=punix:{}", sock.display()))
        .arg(format!("--unixctl={}", dir.path().join("ctl").display()))
        .arg("--no-chdir")
        .spawn()
        .unwrap();
    let db = format!("unix:{}", sock.display());
    for _ in 0..50 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    sh_ok(&format!(
        "ovs-vsctl --db={db} --no-wait --timeout=5 init -- add-br br-int"
    ));
    Some(Ovsdb {
        db,
        no_wait: true,
        _server: Some((child, dir)),
    })
}

/// Removes the named ports on drop, so a failed assertion leaves the shared OVSDB clean.
struct PortGuard {
    db: String,
    ports: Vec<String>,
}

impl Drop for PortGuard {
    fn drop(&mut self) {
        for p in &self.ports {
            let _ = sh(&format!(
                "ovs-vsctl --db={} --timeout=5 --no-wait --if-exists del-port {p}",
                self.db
            ));
        }
    }
}

fn vsctl(db: &str, args: &str) -> String {
    sh_ok(&format!("ovs-vsctl --db={db} --timeout=5 {args}"))
        .trim()
        .to_string()
}

fn port_exists(db: &str, port: &str) -> bool {
    sh(&format!(
        "ovs-vsctl --db={db} --timeout=5 port-to-br {port}"
    ))
    .0
}

fn cfg(o: &Ovsdb) -> BindingConfig {
    BindingConfig {
        bindir: PathBuf::from("/nonexistent"),
        ovs_db: Some(o.db.clone()),
        ovs_no_wait: o.no_wait,
        ..Default::default()
    }
}

#[test]
fn ovs_plug_sets_external_ids_and_unbind_removes_port() {
    let test = "ovs_plug_sets_external_ids_and_unbind_removes_port";
    let Some(o) = ovsdb(test) else { return };
    let c = cfg(&o);
    let db = o.db.clone();
    in_netns(test, move || async move {
        let port = unique_id();
        let tap = format!("tap{}", &port[..11]);
        let _g = PortGuard {
            db: db.clone(),
            ports: vec![tap.clone()],
        };
        let b = LinuxHostBinding::new(c).unwrap();
        let r = req(
            &port,
            "ovs",
            json!({"bridge_name": "br-int", "port_filter": true}),
            BindMode::Veth,
        );
        b.bind(&r).await.unwrap();
        assert_eq!(vsctl(&db, &format!("port-to-br {tap}")), "br-int");
        let ids = vsctl(&db, &format!("get Interface {tap} external_ids"));
        for want in [
            format!("iface-id=\"{port}\""),
            "attached-mac=\"fa:16:3e:12:34:56\"".to_string(),
            "iface-status=active".to_string(),
            format!("vm-uuid={}", r.endpoint_id),
            "owner=kuryr".to_string(),
        ] {
            assert!(ids.contains(&want), "{want} not in {ids}");
        }
        let owned = b.list_owned().await.unwrap();
        assert!(owned.iter().any(|l| l.kind == OwnedKind::OvsPort
            && l.name == tap
            && l.port_id.as_deref() == Some(port.as_str())
            && l.endpoint_id.as_deref() == Some(r.endpoint_id.as_str())));

        b.unbind(&UnbindRequest::from(&r)).await.unwrap();
        assert!(!port_exists(&db, &tap));
        assert!(link(&tap).is_none());
        b.unbind(&UnbindRequest::from(&r)).await.unwrap();
    });
}

#[test]
fn ovs_hybrid_plug_and_unbind_leave_nothing() {
    let test = "ovs_hybrid_plug_and_unbind_leave_nothing";
    let Some(o) = ovsdb(test) else { return };
    let c = cfg(&o);
    let db = o.db.clone();
    in_netns(test, move || async move {
        let port = unique_id();
        let id = &port[..11];
        let (tap, qbr, qvb, qvo) = (
            format!("tap{id}"),
            format!("qbr{id}"),
            format!("qvb{id}"),
            format!("qvo{id}"),
        );
        let _g = PortGuard {
            db: db.clone(),
            ports: vec![tap.clone(), qvo.clone()],
        };
        let b = LinuxHostBinding::new(c).unwrap();
        let r = req(
            &port,
            "ovs",
            json!({"ovs_hybrid_plug": true}),
            BindMode::Veth,
        );
        b.bind(&r).await.unwrap();
        assert_eq!(link(&qbr).unwrap()["linkinfo"]["info_kind"], "bridge");
        assert_eq!(master_of(&tap).as_deref(), Some(qbr.as_str()));
        assert_eq!(master_of(&qvb).as_deref(), Some(qbr.as_str()));
        assert_eq!(link(&qvo).unwrap()["mtu"], 1442);
        assert_eq!(vsctl(&db, &format!("port-to-br {qvo}")), "br-int");
        assert!(!port_exists(&db, &tap));
        let ids = vsctl(&db, &format!("get Interface {qvo} external_ids:iface-id"));
        assert_eq!(ids.trim_matches('"'), port);

        // Reconcile sees every piece.
        let names: Vec<String> = b
            .list_owned()
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        for n in [&tap, &qbr, &qvb, &qvo] {
            assert!(names.contains(n), "{n} not listed in {names:?}");
        }

        // Unbind with the hybrid flag gone from vif_details still removes the hybrid pieces.
        let mut u = UnbindRequest::from(&r);
        u.vif_details.clear();
        b.unbind(&u).await.unwrap();
        for n in [&tap, &qbr, &qvb, &qvo] {
            assert!(link(n).is_none(), "{n} left behind");
        }
        assert!(!port_exists(&db, &qvo));
    });
}

#[test]
fn ovs_plug_failure_unwinds() {
    let test = "ovs_plug_failure_unwinds";
    let Some(o) = ovsdb(test) else { return };
    let c = cfg(&o);
    let db = o.db.clone();
    in_netns(test, move || async move {
        let port = unique_id();
        let tap = format!("tap{}", &port[..11]);
        let _g = PortGuard {
            db: db.clone(),
            ports: vec![tap.clone()],
        };
        let b = LinuxHostBinding::new(c).unwrap();
        let before = link_names();
        // A bridge that does not exist: add-port fails, the veth must go.
        let r = req(
            &port,
            "ovs",
            json!({"bridge_name": "br-kt-nope"}),
            BindMode::Veth,
        );
        let err = b.bind(&r).await.unwrap_err();
        assert!(matches!(err, BindingError::Ovs { .. }), "{err}");
        assert!(err.to_string().contains(&tap), "{err}");
        assert_eq!(link_names(), before);
        assert!(!port_exists(&db, &tap));
    });
}
