//! Real netlink tests, each in a network namespace it creates (needs root; skips otherwise, and
//! fails in CI).

mod common;

use common::*;
use kuryr_binding::{
    BindMode, BindingConfig, BindingError, HostBinding, LinuxHostBinding, OwnedKind, UnbindRequest,
};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

/// No OVS in these tests: list_owned must not see the host's OVSDB.
fn cfg(bindir: &std::path::Path) -> BindingConfig {
    BindingConfig {
        bindir: bindir.to_path_buf(),
        ovs_vsctl_program: "/nonexistent/ovs-vsctl".into(),
        ..Default::default()
    }
}

#[test]
fn linux_bridge_plug_and_unbind() {
    in_netns("linux_bridge_plug_and_unbind", || async {
        let dir = tempfile::tempdir().unwrap();
        let b = LinuxHostBinding::new(cfg(dir.path())).unwrap();
        let port = unique_id();
        let r = req(&port, "bridge", json!({}), BindMode::Veth);
        let bound = b.bind(&r).await.unwrap();
        let tap = format!("tap{}", &port[..11]);
        let tc = format!("t_c{}", &port[..11]);
        let brq = format!("brq{}", &r.network_id[..11]);
        assert_eq!(bound.host_ifname.as_deref(), Some(tap.as_str()));
        assert_eq!(bound.container_ifname, tc);

        let t = link(&tap).expect("tap exists");
        assert_eq!(t["mtu"], 1442);
        assert!(t["flags"].as_array().unwrap().contains(&json!("UP")));
        let c = link(&tc).expect("t_c exists");
        assert_eq!(c["mtu"], 1442);
        assert_eq!(c["address"], "fa:16:3e:12:34:56");
        assert_eq!(link(&brq).unwrap()["linkinfo"]["info_kind"], "bridge");
        assert_eq!(master_of(&tap).as_deref(), Some(brq.as_str()));

        // A retried CreateEndpoint reuses the pair.
        b.bind(&r).await.unwrap();
        assert_eq!(master_of(&tap).as_deref(), Some(brq.as_str()));

        // vif_details bridge_name wins over brq<net>.
        let port2 = unique_id();
        let r2 = req(
            &port2,
            "bridge",
            json!({"bridge_name": "brcustom"}),
            BindMode::Veth,
        );
        b.bind(&r2).await.unwrap();
        assert_eq!(
            master_of(&format!("tap{}", &port2[..11])).as_deref(),
            Some("brcustom")
        );

        // Reconcile sees both ports' links, with ids from the alias; the bridges are not owned.
        let owned = b.list_owned().await.unwrap();
        assert!(owned.iter().any(|o| o.name == tap
            && o.port_id.as_deref() == Some(port.as_str())
            && o.endpoint_id.as_deref() == Some(r.endpoint_id.as_str())
            && o.kind == OwnedKind::Link));
        assert!(owned.iter().all(|o| !o.name.starts_with("br")));
        // Reconcile removes port2's links (its endpoint "no longer exists"), keeps port's.
        for o in owned
            .iter()
            .filter(|o| o.port_id.as_deref() == Some(port2.as_str()))
        {
            b.remove_owned(o).await.unwrap();
        }
        assert!(link(&format!("tap{}", &port2[..11])).is_none());
        assert!(link(&format!("t_c{}", &port2[..11])).is_none());
        assert!(link(&tap).is_some());

        b.unbind(&UnbindRequest::from(&r)).await.unwrap();
        assert!(link(&tap).is_none());
        assert!(link(&tc).is_none());
        // Idempotent: already gone is done.
        b.unbind(&UnbindRequest::from(&r)).await.unwrap();
        assert!(b.list_owned().await.unwrap().is_empty());
    });
}

fn write_script(dir: &std::path::Path, name: &str, body: &str) {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn hook_plug_gets_kuryr_lib_arguments() {
    in_netns("hook_plug_gets_kuryr_lib_arguments", || async {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls.log");
        // The hook checks the interface exists when called, like a real plug script.
        write_script(
            dir.path(),
            "vendor",
            &format!(
                "#!/bin/sh\nip link show dev \"$3\" >/dev/null || exit 9\n\
                 printf '%s|' \"$@\" >> {log}\necho >> {log}\n",
                log = log.display()
            ),
        );
        let b = LinuxHostBinding::new(cfg(dir.path())).unwrap();
        let port = unique_id();
        let r = req(
            &port,
            "vendor",
            json!({"port_filter": true}),
            BindMode::Veth,
        );
        b.bind(&r).await.unwrap();
        let tap = format!("tap{}", &port[..11]);
        assert!(link(&tap).is_some());
        b.unbind(&UnbindRequest::from(&r)).await.unwrap();
        assert!(link(&tap).is_none());

        let calls = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = calls.lines().collect();
        assert_eq!(lines.len(), 2, "{calls}");
        assert_eq!(
            lines[0],
            format!(
                "bind|{port}|{tap}|{ep}|fa:16:3e:12:34:56|{net}|proj1|\"{{'port_filter': True}}\"|",
                ep = r.endpoint_id,
                net = r.network_id
            )
        );
        assert_eq!(
            lines[1],
            format!(
                "unbind|{port}|{tap}|{ep}|fa:16:3e:12:34:56|\"{{'port_filter': True}}\"|{net}|",
                ep = r.endpoint_id,
                net = r.network_id
            )
        );
    });
}

#[test]
fn failing_hook_leaves_nothing_behind() {
    in_netns("failing_hook_leaves_nothing_behind", || async {
        let dir = tempfile::tempdir().unwrap();
        write_script(
            dir.path(),
            "broken",
            "#!/bin/sh\necho 'plug refused' >&2\nexit 4\n",
        );
        let b = LinuxHostBinding::new(cfg(dir.path())).unwrap();
        let port = unique_id();
        let before = link_names();
        let err = b
            .bind(&req(&port, "broken", json!({}), BindMode::Veth))
            .await
            .unwrap_err();
        assert!(matches!(err, BindingError::Hook { .. }), "{err}");
        assert!(err.to_string().contains("plug refused"), "{err}");
        assert_eq!(link_names(), before);

        // No script at all: refused before anything is created.
        let err = b
            .bind(&req(&port, "vhostuser", json!({}), BindMode::Veth))
            .await
            .unwrap_err();
        assert!(
            matches!(err, BindingError::VifTypeNotSupported { .. }),
            "{err}"
        );
        assert_eq!(link_names(), before);
    });
}

#[test]
fn tap_vif_type_leaves_tap_unbridged() {
    in_netns("tap_vif_type_leaves_tap_unbridged", || async {
        let dir = tempfile::tempdir().unwrap();
        let b = LinuxHostBinding::new(cfg(dir.path())).unwrap();
        let port = unique_id();
        let mut r = req(&port, "tap", json!({}), BindMode::Veth);
        r.mtu = None;
        b.bind(&r).await.unwrap();
        let tap = format!("tap{}", &port[..11]);
        assert_eq!(master_of(&tap), None);
        assert_eq!(link(&tap).unwrap()["mtu"], 1500);
        b.unbind(&UnbindRequest::from(&r)).await.unwrap();
        assert!(link(&tap).is_none());
    });
}

/// Kuryr inside a VM: this namespace is the VM, `vmeth0` its NIC, the NIC's peer sits in an
/// "outside" namespace. Two macvlan children, moved into two "container" namespaces the way
/// Docker does, ping each other and the outside.
#[test]
fn nested_macvlan_end_to_end() {
    in_netns("nested_macvlan_end_to_end", || async {
        let outside = NamedNetns::new("kt-out");
        let c1 = NamedNetns::new("kt-c1");
        let c2 = NamedNetns::new("kt-c2");
        sh_ok("ip link add vmeth0 type veth peer name wire0");
        sh_ok(&format!("ip link set wire0 netns {}", outside.0));
        sh_ok("ip link set vmeth0 up");
        let (ok, out) =
            outside.exec("sh -c 'ip addr add 10.99.0.1/24 dev wire0 && ip link set wire0 up'");
        assert!(ok, "{out}");

        let dir = tempfile::tempdir().unwrap();
        let b = LinuxHostBinding::new(cfg(dir.path())).unwrap();
        let mode = BindMode::NestedMacvlan {
            parent_ifname: "vmeth0".into(),
        };
        let p1 = unique_id();
        let p2 = unique_id();
        let mut r1 = req(&p1, "", json!({}), mode.clone());
        r1.mac = "fa:16:3e:00:00:11".parse().unwrap();
        let mut r2 = req(&p2, "", json!({}), mode.clone());
        r2.mac = "fa:16:3e:00:00:12".parse().unwrap();
        let b1 = b.bind(&r1).await.unwrap();
        let b2 = b.bind(&r2).await.unwrap();
        assert_eq!(b1.host_ifname, None);
        let l1 = link(&b1.container_ifname).unwrap();
        assert_eq!(l1["linkinfo"]["info_kind"], "macvlan");
        assert_eq!(l1["linkinfo"]["info_data"]["mode"], "bridge");
        assert_eq!(l1["address"], "fa:16:3e:00:00:11");
        assert_eq!(l1["link"], "vmeth0");
        assert_eq!(l1["mtu"], 1442);

        // What Docker does on Join: move into the sandbox, address, up.
        for (bound, ns, ip) in [(&b1, &c1, "10.99.0.11"), (&b2, &c2, "10.99.0.12")] {
            sh_ok(&format!(
                "ip link set {} netns {}",
                bound.container_ifname, ns.0
            ));
            let (ok, out) = ns.exec(&format!(
                "sh -c 'ip addr add {ip}/24 dev {i} && ip link set {i} up && ip link set lo up'",
                i = bound.container_ifname
            ));
            assert!(ok, "{out}");
        }
        let (ok, out) = c1.exec("ping -c 2 -W 2 10.99.0.12");
        assert!(ok, "container to container: {out}");
        let (ok, out) = c2.exec("ping -c 2 -W 2 10.99.0.1");
        assert!(ok, "container to outside: {out}");
        // The MAC seen outside is the container port's MAC (what allowed_address_pairs lists).
        let (_, neigh) = outside.exec("ip neigh show 10.99.0.12");
        assert!(neigh.contains("fa:16:3e:00:00:12"), "{neigh}");

        // Leave: Docker moves the link back; DeleteEndpoint unbinds.
        // (`netns <tid>` is this thread's namespace, the "VM"; never the real host's.)
        let vm_tid = nix::unistd::gettid();
        sh_ok(&format!(
            "ip -n {} link set {} netns {vm_tid}",
            c1.0, b1.container_ifname
        ));
        assert!(link(&b1.container_ifname).is_some());
        b.unbind(&UnbindRequest::from(&r1)).await.unwrap();
        b.unbind(&UnbindRequest::from(&r2)).await.unwrap();
        assert!(link(&b1.container_ifname).is_none());

        // Parent missing: a clear error, nothing created.
        let r3 = req(
            &unique_id(),
            "",
            json!({}),
            BindMode::NestedMacvlan {
                parent_ifname: "nosuch0".into(),
            },
        );
        assert!(matches!(
            b.bind(&r3).await,
            Err(BindingError::LinkNotFound(n)) if n == "nosuch0"
        ));
    });
}

#[test]
fn nested_vlan_child_or_explicit_skip() {
    in_netns("nested_vlan_child_or_explicit_skip", || async {
        sh_ok("ip link add vmeth0 type veth peer name wire0");
        let dir = tempfile::tempdir().unwrap();
        let b = LinuxHostBinding::new(cfg(dir.path())).unwrap();
        let port = unique_id();
        let r = req(
            &port,
            "",
            json!({}),
            BindMode::NestedVlan {
                parent_ifname: "vmeth0".into(),
                vlan_id: 101,
            },
        );
        let name = format!("t_c{}", &port[..11]);
        match b.bind(&r).await {
            Err(BindingError::Unsupported(m)) => {
                assert!(link(&name).is_none());
                // A documented kernel limitation, not a missing stack: a skip even in CI.
                println!("skipped: this kernel has no 8021q ({m})");
            }
            Ok(bound) => {
                let l = link(&bound.container_ifname).unwrap();
                assert_eq!(l["linkinfo"]["info_kind"], "vlan");
                assert_eq!(l["linkinfo"]["info_data"]["id"], 101);
                assert_eq!(l["address"], "fa:16:3e:12:34:56");
                b.unbind(&UnbindRequest::from(&r)).await.unwrap();
                assert!(link(&name).is_none());
            }
            Err(e) => panic!("unexpected vlan error: {e}"),
        }
    });
}

/// A pooled port's container end that comes back from a container clean is reused with its plug
/// (its MAC reset, up); one that comes back with a setting of its container is refused.
#[test]
fn pooled_port_reused_only_when_its_container_end_comes_back_clean() {
    in_netns("pooled_port_reused_only_when_clean", || async {
        let dir = tempfile::tempdir().unwrap();
        let b = LinuxHostBinding::new(cfg(dir.path())).unwrap();
        let port = unique_id();
        let mut pool_req = req(&port, "bridge", json!({}), BindMode::Veth);
        pool_req.endpoint_id = kuryr_binding::constants::POOL_LINK_OWNER.parse().unwrap();
        let ep_req = req(&port, "bridge", json!({}), BindMode::Veth);
        let tc = format!("t_c{}", &port[..11]);
        b.bind(&pool_req).await.unwrap();
        // Not given back yet: the links are the endpoint's.
        assert!(b.claim(&ep_req).await.unwrap());
        assert!(!b.reuse(&pool_req).await.unwrap());

        // A container has it, changes its MAC and addresses, and gives it back.
        let sandbox = NamedNetns::new("kreuse");
        let round_trip = |inside: &str| {
            sh_ok(&format!("ip link set {tc} netns {}", sandbox.0));
            for cmd in inside.split(';') {
                let (ok, out) = sandbox.exec(cmd.trim());
                assert!(ok, "{cmd}: {out}");
            }
            // `$$`: the shell, in this test's namespace.
            sh_ok(&format!("ip -n {} link set {tc} netns $$", sandbox.0));
        };
        round_trip(&format!(
            "ip link set {tc} address 02:00:00:00:00:09; ip link set {tc} up; ip addr add 10.9.9.9/24 dev {tc}"
        ));
        b.unclaim(&UnbindRequest::from(&ep_req)).await.unwrap();
        assert!(b.reuse(&pool_req).await.unwrap());
        let c = link(&tc).expect("container end back");
        assert_eq!(c["address"], "fa:16:3e:12:34:56");
        assert!(c["flags"].as_array().unwrap().contains(&json!("UP")));
        assert_eq!(
            master_of(&format!("tap{}", &port[..11])).as_deref(),
            Some(format!("brq{}", &pool_req.network_id[..11])).as_deref()
        );

        // The next container leaves promiscuous mode on: not reused.
        assert!(b.claim(&ep_req).await.unwrap());
        round_trip(&format!("ip link set {tc} promisc on"));
        b.unclaim(&UnbindRequest::from(&ep_req)).await.unwrap();
        assert!(!b.reuse(&pool_req).await.unwrap());

        // A container end that never came back (its sandbox deleted it): not reused.
        b.unbind(&UnbindRequest::from(&pool_req)).await.unwrap();
        b.bind(&pool_req).await.unwrap();
        sh_ok(&format!("ip link del {tc}"));
        assert!(!b.reuse(&pool_req).await.unwrap());
        b.unbind(&UnbindRequest::from(&pool_req)).await.unwrap();
    });
}

#[test]
fn a_bound_port_enters_a_sandbox_and_comes_back() {
    use kuryr_binding::{EnterSandbox, SandboxRef, SandboxRoute};
    in_netns("a_bound_port_enters_a_sandbox_and_comes_back", || async {
        let dir = tempfile::tempdir().unwrap();
        let b = LinuxHostBinding::new(cfg(dir.path())).unwrap();
        let port = unique_id();
        let r = req(&port, "bridge", json!({}), BindMode::Veth);
        let bound = b.bind(&r).await.unwrap();
        let pod = NamedNetns::new("kuryr-sbx");
        let sandbox = SandboxRef {
            netns: format!("/run/netns/{}", pod.0).into(),
            ifname: "eth0".into(),
            endpoint_id: r.endpoint_id.clone(),
        };
        let enter = EnterSandbox {
            sandbox: sandbox.clone(),
            host_ifname: bound.container_ifname.clone(),
            addresses: vec!["10.77.0.5/24".parse().unwrap()],
            routes: vec![
                SandboxRoute {
                    destination: "0.0.0.0/0".parse().unwrap(),
                    gateway: Some("10.77.0.1".parse().unwrap()),
                },
                SandboxRoute {
                    destination: "10.88.0.0/16".parse().unwrap(),
                    gateway: Some("10.77.0.254".parse().unwrap()),
                },
            ],
        };
        b.enter_sandbox(&enter).await.unwrap();
        assert!(
            link(&bound.container_ifname).is_none(),
            "moved out of the host"
        );
        let inside = sh_ok(&format!("ip -n {} -j addr show dev eth0", pod.0));
        assert!(inside.contains("10.77.0.5"), "{inside}");
        let routes = sh_ok(&format!("ip -n {} route", pod.0));
        assert!(
            routes.contains("default via 10.77.0.1 dev eth0"),
            "{routes}"
        );
        assert!(
            routes.contains("10.88.0.0/16 via 10.77.0.254 dev eth0"),
            "{routes}"
        );
        assert!(sh_ok(&format!("ip -n {} -j link show dev lo", pod.0)).contains("UP"));

        let state = b
            .inspect_sandbox(&sandbox)
            .await
            .unwrap()
            .expect("interface there");
        assert_eq!(state.mac, Some(r.mac));
        assert_eq!(state.mtu, Some(1442));
        assert!(state.up);
        assert!(state.addresses.contains(&"10.77.0.5/24".parse().unwrap()));
        assert!(state
            .routes
            .iter()
            .any(|rt| rt.destination.prefix_len() == 0
                && rt.gateway == Some("10.77.0.1".parse().unwrap())));

        // The name is taken now: a second ADD is refused, the first interface untouched.
        let e = b.enter_sandbox(&enter).await.unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");

        // Another endpoint's interface is never taken out.
        let stranger = SandboxRef {
            endpoint_id: "0123abcd".parse().unwrap(),
            ..sandbox.clone()
        };
        assert!(!b
            .leave_sandbox(&stranger, Some(&bound.container_ifname))
            .await
            .unwrap());

        // Back to the host under its own name, both ends there again; then nothing to do.
        assert!(b
            .leave_sandbox(&sandbox, Some(&bound.container_ifname))
            .await
            .unwrap());
        assert!(link(&bound.container_ifname).is_some(), "back on the host");
        assert!(b.inspect_sandbox(&sandbox).await.unwrap().is_none());
        assert!(!b
            .leave_sandbox(&sandbox, Some(&bound.container_ifname))
            .await
            .unwrap());

        // A namespace that is gone: nothing there, and not an error.
        let gone = SandboxRef {
            netns: "/run/netns/kuryr-no-such-sandbox".into(),
            ..sandbox.clone()
        };
        assert!(b.inspect_sandbox(&gone).await.unwrap().is_none());
        assert!(!b.leave_sandbox(&gone, None).await.unwrap());
        b.unbind(&UnbindRequest::from(&r)).await.unwrap();
    });
}
