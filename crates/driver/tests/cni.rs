//! The CNI front end's verbs over `FakeNeutron` + `FakeHostBinding`: what each verb asks of
//! Neutron and the host, idempotent DEL, CHECK's findings, GC's ownership rules.

mod common;

use common::*;
use kuryr_driver::cni::{Attachment, CniAdd, CniCheck, CniDel, CniGc, CniNetwork, PodRef};
use kuryr_driver::{DriverError, ErrorClass};
use kuryr_openstack::neutron::{
    ErrorContext, HostRoute, NeutronApi, NeutronError, NewNetwork, NewPort, NewSubnet,
};

const NS1: &str = "/run/netns/pod-1";
const NS2: &str = "/run/netns/pod-2";

/// A Neutron network `pods` with one subnet (gateway, a host route, a DNS server).
async fn pods_network(t: &T) -> String {
    let net = t
        .neutron
        .create_network(&NewNetwork {
            name: Some("pods".into()),
            mtu: Some(1442),
            ..Default::default()
        })
        .await
        .unwrap();
    t.neutron
        .create_subnet(&NewSubnet {
            network_id: net.id.clone(),
            ip_version: 4,
            cidr: Some("10.70.0.0/24".parse().unwrap()),
            gateway_ip: Some(Some("10.70.0.1".parse().unwrap())),
            host_routes: Some(vec![HostRoute {
                destination: "10.80.0.0/16".parse().unwrap(),
                nexthop: "10.70.0.254".parse().unwrap(),
            }]),
            dns_nameservers: Some(vec!["10.70.0.2".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
    net.id
}

fn network(neutron: &str) -> CniNetwork {
    CniNetwork {
        name: "kuryr-pods".into(),
        neutron_network: neutron.into(),
        subnet: None,
        mtu: None,
        security_groups: Vec::new(),
        project: None,
    }
}

fn attachment(container: &str, ifname: &str) -> Attachment {
    Attachment {
        container_id: container.into(),
        ifname: ifname.into(),
    }
}

fn add(container: &str, netns: &str, neutron: &str) -> CniAdd {
    CniAdd {
        attachment: attachment(container, "eth0"),
        netns: netns.into(),
        network: network(neutron),
        pod: PodRef {
            namespace: Some("default".into()),
            name: Some(format!("pod-{container}")),
            uid: Some("6e7f0c1a-0000-4000-8000-000000000001".into()),
        },
    }
}

fn del(container: &str, netns: Option<&str>, neutron: &str) -> CniDel {
    CniDel {
        attachment: attachment(container, "eth0"),
        netns: netns.map(Into::into),
        network: network(neutron),
    }
}

fn no_pools() -> T {
    let mut cfg = config();
    cfg.pool = None;
    setup_with(cfg)
}

fn ports_of(t: &T, container: &str) -> Vec<kuryr_openstack::neutron::Port> {
    let tag = format!("kuryr.cni.container:{container}");
    t.neutron
        .ports()
        .into_iter()
        .filter(|p| p.tags.contains(&tag))
        .collect()
}

#[tokio::test]
async fn add_places_the_port_in_the_sandbox_and_tags_it() {
    let t = no_pools();
    let net = pods_network(&t).await;
    t.binding.add_netns(NS1);
    let done = t.driver.cni_add(&add("c1", NS1, "pods")).await.unwrap();

    assert_eq!(done.ifname, "eth0");
    assert_eq!(done.mtu, 1442);
    let (addr, gw) = done.ips[0];
    assert!("10.70.0.0/24"
        .parse::<ipnet::IpNet>()
        .unwrap()
        .contains(&addr.addr()));
    assert_eq!(addr.prefix_len(), 24);
    assert_eq!(gw, Some("10.70.0.1".parse().unwrap()));
    assert!(done.routes.contains(&(
        "0.0.0.0/0".parse().unwrap(),
        Some("10.70.0.1".parse().unwrap())
    )));
    assert!(done.routes.contains(&(
        "10.80.0.0/16".parse().unwrap(),
        Some("10.70.0.254".parse().unwrap())
    )));
    assert_eq!(done.dns_nameservers, vec!["10.70.0.2".to_string()]);

    let ports = ports_of(&t, "c1");
    assert_eq!(ports.len(), 1, "one port for the attachment");
    let p = &ports[0];
    assert_eq!(p.network_id, net);
    assert_eq!(p.binding_host_id, HOST);
    assert_eq!(p.mac_address, done.mac);
    for tag in [
        "kuryr.cni.ifname:eth0",
        "kuryr.cni.network:kuryr-pods",
        "kuryr.k8s.namespace:default",
        "kuryr.k8s.pod:pod-c1",
        "kuryr.k8s.pod_uid:6e7f0c1a-0000-4000-8000-000000000001",
    ] {
        assert!(
            p.tags.iter().any(|t| t == tag),
            "{tag} missing: {:?}",
            p.tags
        );
    }
    assert_eq!(
        t.binding.sandboxed(),
        vec![(NS1.to_string(), "eth0".to_string())]
    );
    // By id as well as by name.
    t.binding.add_netns(NS2);
    t.driver.cni_add(&add("c2", NS2, &net)).await.unwrap();
    assert_eq!(ports_of(&t, "c2").len(), 1);
}

#[tokio::test]
async fn add_refuses_a_taken_interface_and_leaves_the_first_attachment() {
    let t = no_pools();
    pods_network(&t).await;
    t.binding.add_netns(NS1);
    t.driver.cni_add(&add("c1", NS1, "pods")).await.unwrap();
    let before = t.neutron.ports().len();
    let e = t.driver.cni_add(&add("c1", NS1, "pods")).await.unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(
        t.neutron.ports().len(),
        before,
        "no port made for the refused ADD"
    );
    assert_eq!(ports_of(&t, "c1").len(), 1);
    assert_eq!(t.binding.sandboxed().len(), 1);
}

#[tokio::test]
async fn add_failures_leave_nothing() {
    let t = no_pools();
    pods_network(&t).await;
    let before = t.neutron.ports().len();
    // No such namespace: the binding refuses after the port was made; all is unwound.
    let e = t.driver.cni_add(&add("c1", NS1, "pods")).await.unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert_eq!(t.neutron.ports().len(), before);
    assert!(t.binding.bound_ports().is_empty());
    // Unknown network: refused before anything is made.
    t.binding.add_netns(NS1);
    let e = t.driver.cni_add(&add("c1", NS1, "nope")).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::NotFound, "{e}");
    assert!(e.to_string().contains("\"nope\""), "{e}");
    assert_eq!(t.neutron.ports().len(), before);
    // Unknown subnet.
    let mut req = add("c1", NS1, "pods");
    req.network.subnet = Some("10.99.0.0/24".into());
    let e = t.driver.cni_add(&req).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::NotFound, "{e}");
    assert_eq!(t.neutron.ports().len(), before);
    // The host binding fails: the port goes too.
    t.binding.fail_next_bind("injected bind failure");
    let e = t.driver.cni_add(&add("c1", NS1, "pods")).await.unwrap_err();
    assert!(e.to_string().contains("injected bind failure"), "{e}");
    assert_eq!(t.neutron.ports().len(), before);
    assert!(t.binding.sandboxed().is_empty());
}

#[tokio::test]
async fn del_is_idempotent_with_or_without_namespace_and_after_restart() {
    let t = no_pools();
    pods_network(&t).await;
    let before = t.neutron.ports().len();
    t.binding.add_netns(NS1);
    t.binding.add_netns(NS2);
    t.driver.cni_add(&add("c1", NS1, "pods")).await.unwrap();
    t.driver.cni_add(&add("c2", NS2, "pods")).await.unwrap();

    t.driver
        .cni_del(&del("c1", Some(NS1), "pods"))
        .await
        .unwrap();
    assert!(ports_of(&t, "c1").is_empty());
    // Again, and with a namespace that is gone: still success, and this daemon, which
    // detached it, answers without asking Neutron (containerd sends DEL twice per pod).
    t.neutron.reset_calls();
    t.driver
        .cni_del(&del("c1", Some(NS1), "pods"))
        .await
        .unwrap();
    assert!(t.neutron.calls().is_empty(), "{:?}", t.neutron.calls());
    t.driver.cni_del(&del("c1", None, "pods")).await.unwrap();
    // Never added at all.
    t.driver
        .cni_del(&del("c9", Some(NS1), "pods"))
        .await
        .unwrap();

    // A restarted daemon finds c2's port by its tags; its namespace is gone by now.
    let t2 = t.restart();
    t.binding.remove_netns(NS2);
    t2.driver
        .cni_del(&del("c2", Some(NS2), "pods"))
        .await
        .unwrap();
    assert!(ports_of(&t, "c2").is_empty());
    assert_eq!(t.neutron.ports().len(), before);
    assert!(t.binding.bound_ports().is_empty(), "host side unplugged");

    // The port deleted in Neutron behind Kuryr's back: DEL still cleans the host and succeeds.
    t.binding.add_netns(NS2);
    t2.driver.cni_add(&add("c3", NS2, "pods")).await.unwrap();
    let port = ports_of(&t, "c3")[0].id.clone();
    t.neutron.delete_port(&port).await.unwrap();
    let t3 = t.restart();
    t3.driver
        .cni_del(&del("c3", Some(NS2), "pods"))
        .await
        .unwrap();
    assert!(
        t.binding.bound_ports().is_empty(),
        "host side of the vanished port removed"
    );
    assert!(
        t.binding.sandboxed().is_empty(),
        "and its interface in the pod"
    );
}

#[tokio::test]
async fn check_compares_the_sandbox_with_the_port() {
    let t = no_pools();
    pods_network(&t).await;
    t.binding.add_netns(NS1);
    let done = t.driver.cni_add(&add("c1", NS1, "pods")).await.unwrap();
    let check = CniCheck {
        attachment: attachment("c1", "eth0"),
        netns: NS1.into(),
        network: network("pods"),
    };
    t.binding
        .tamper_sandbox(NS1, "eth0", |s| s.mac = Some(done.mac));
    t.driver.cni_check(&check).await.unwrap();

    t.binding
        .tamper_sandbox(NS1, "eth0", |s| s.addresses.clear());
    let e = t.driver.cni_check(&check).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Conflict);
    assert!(e.to_string().contains("is missing"), "{e}");

    t.driver
        .cni_del(&del("c1", Some(NS1), "pods"))
        .await
        .unwrap();
    let e = t.driver.cni_check(&check).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::NotFound, "{e}");
}

/// GC of the `pods` CNI network with one valid attachment.
async fn gc_keeping(t: &T, container: &str) -> kuryr_driver::cni::GcReport {
    t.driver
        .cni_gc(&CniGc {
            network: network("pods"),
            valid: vec![attachment(container, "eth0")],
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn gc_removes_only_this_networks_stale_attachments_of_this_host() {
    let t = no_pools();
    let net = pods_network(&t).await;
    t.binding.add_netns(NS1);
    t.binding.add_netns(NS2);
    t.driver.cni_add(&add("keep", NS1, "pods")).await.unwrap();
    t.driver.cni_add(&add("gone", NS2, "pods")).await.unwrap();
    // Another host's attachment on the same CNI network, and a user's port.
    let elsewhere = t
        .neutron
        .create_port(&NewPort {
            network_id: net.clone(),
            device_owner: Some("compute:kuryr".into()),
            binding_host_id: Some("other-host".into()),
            tags: Some(vec![
                "kuryr.cni.container:far".into(),
                "kuryr.cni.ifname:eth0".into(),
                "kuryr.cni.network:kuryr-pods".into(),
            ]),
            ..Default::default()
        })
        .await
        .unwrap();
    let report = gc_keeping(&t, "keep").await;
    assert_eq!(
        report.removed,
        vec![("gone".to_string(), "eth0".to_string())]
    );
    assert!(ports_of(&t, "gone").is_empty());
    assert_eq!(ports_of(&t, "keep").len(), 1);
    assert!(t.neutron.ports().iter().any(|p| p.id == elsewhere.id));
    // Nothing left to collect.
    let again = gc_keeping(&t, "keep").await;
    assert!(again.removed.is_empty());
}

#[tokio::test]
async fn status_says_whether_add_can_be_served() {
    let t = no_pools();
    pods_network(&t).await;
    t.driver.cni_status(&network("pods")).await.unwrap();
    let e = t.driver.cni_status(&network("nope")).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::NotFound);
    t.neutron.fail_always(
        "list_networks",
        NeutronError::Timeout(ErrorContext::new(
            "GET",
            "/v2.0/networks",
            "injected timeout",
        )),
    );
    let e: DriverError = t.driver.cni_status(&network("pods")).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Unavailable, "{e}");
}

#[test]
fn each_interface_of_a_container_is_its_own_endpoint() {
    let a = attachment("c1", "eth0").endpoint_id();
    let b = attachment("c1", "eth1").endpoint_id();
    let c = attachment("c1e", "th0").endpoint_id();
    assert_ne!(a, b);
    assert_ne!(a, c);
    assert!(a.is_full_hex());
    assert_eq!(a, attachment("c1", "eth0").endpoint_id(), "stable");
}

#[tokio::test]
async fn pooled_ports_change_attachments_cleanly() {
    let mut cfg = config();
    cfg.pool.as_mut().expect("pools on by default").min = 2;
    let t = setup_with(cfg);
    pods_network(&t).await;
    t.binding.add_netns(NS1);
    t.binding.add_netns(NS2);
    // The first fills the pool; the second is served from it.
    t.driver.cni_add(&add("c1", NS1, "pods")).await.unwrap();
    let pools = t.driver.ports().pools().expect("pools on");
    t.settle(|| pools.sizes().0 >= 2).await;
    let pooled_before = pools.sizes().0;
    t.driver.cni_add(&add("c2", NS2, "pods")).await.unwrap();
    assert_eq!(pools.sizes().0, pooled_before - 1, "taken from the pool");
    t.settle(|| ports_of(&t, "c2").len() == 1).await;
    let p = &ports_of(&t, "c2")[0];
    assert!(
        p.tags.iter().any(|t| t == "kuryr.k8s.pod:pod-c2"),
        "{:?}",
        p.tags
    );
    // The tags say whose it is: the pooled port keeps its pool name (one Neutron write for
    // the claim, and none to undo at DEL).
    assert_eq!(p.name, "kuryr-pool-port", "{p:?}");
    assert!(p.device_id.is_empty(), "{p:?}");

    // Back to the pool at DEL; the next attachment's port carries none of c2's tags.
    t.driver
        .cni_del(&del("c2", Some(NS2), "pods"))
        .await
        .unwrap();
    t.binding.remove_netns(NS2);
    t.binding.add_netns(NS2);
    t.driver.cni_add(&add("c3", NS2, "pods")).await.unwrap();
    t.settle(|| ports_of(&t, "c3").len() == 1).await;
    for p in t.neutron.ports() {
        if p.tags.iter().any(|t| t == "kuryr.cni.container:c3") {
            assert!(
                !p.tags.iter().any(|t| t.contains("c2")),
                "stale tags on {}: {:?}",
                p.id,
                p.tags
            );
        }
    }
}

#[tokio::test]
async fn nested_pods_get_address_pairs_on_the_vms_port() {
    let (t, vm_net, vm) = in_a_vm(
        kuryr_driver::PortDriverKind::NestedMacvlan {
            link_iface: "eth0".into(),
        },
        "fa:16:3e:00:00:01",
        None,
    )
    .await;
    t.binding.add_netns(NS1);
    let done = t.driver.cni_add(&add("c1", NS1, "vm-net")).await.unwrap();
    let (addr, _) = done.ips[0];
    let vm_now = t.neutron.get_port(&vm.id).await.unwrap();
    assert_eq!(vm_now.allowed_address_pairs.len(), 1);
    let pair = &vm_now.allowed_address_pairs[0];
    assert_eq!(pair.ip_address, addr.addr().to_string());
    // No MAC from the runtime: a VRRP-range MAC, the kind ML2/OVN lets into the pairs; the
    // interface in the pod carries it.
    assert_eq!(pair.mac_address, Some(done.mac));
    assert!(
        done.mac.to_string().starts_with("00:00:5e:00:0"),
        "{}",
        done.mac
    );
    assert!(
        done.host_interface.is_none(),
        "a macvlan child has no host end"
    );
    let port = &ports_of(&t, "c1")[0];
    assert_eq!(port.network_id, vm_net.id);
    assert_eq!(
        port.binding_host_id, "",
        "container ports stay unbound in a vm"
    );
    assert_eq!(
        t.binding.sandboxed(),
        vec![(NS1.to_string(), "eth0".to_string())]
    );

    t.driver
        .cni_del(&del("c1", Some(NS1), "vm-net"))
        .await
        .unwrap();
    let vm_now = t.neutron.get_port(&vm.id).await.unwrap();
    assert!(vm_now.allowed_address_pairs.is_empty());
    // Back in the pool: its tags are reset at the pool's next tidy.
    if let Some(pools) = t.driver.ports().pools() {
        pools.tidy_now();
    }
    t.settle(|| ports_of(&t, "c1").is_empty()).await;
    assert!(ports_of(&t, "c1").is_empty());
    assert!(t.binding.sandboxed().is_empty());
}

#[tokio::test]
async fn security_groups_by_name_or_id_replace_the_defaults() {
    let t = no_pools();
    pods_network(&t).await;
    let sg = t
        .neutron
        .create_security_group(&kuryr_openstack::neutron::NewSecurityGroup {
            name: "pod-sg".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    t.binding.add_netns(NS1);
    t.binding.add_netns(NS2);
    let mut req = add("c1", NS1, "pods");
    req.network.security_groups = vec!["pod-sg".into()];
    t.driver.cni_add(&req).await.unwrap();
    assert_eq!(ports_of(&t, "c1")[0].security_groups, vec![sg.id.clone()]);
    let mut req = add("c2", NS2, "pods");
    req.network.security_groups = vec![sg.id.clone()];
    t.driver.cni_add(&req).await.unwrap();
    assert_eq!(ports_of(&t, "c2")[0].security_groups, vec![sg.id.clone()]);

    // A group that does not exist: refused before any port is taken.
    let before = t.neutron.ports().len();
    let mut req = add("c3", NS1, "pods");
    req.attachment.ifname = "eth1".into();
    req.network.security_groups = vec!["no-such-group".into()];
    let e = t.driver.cni_add(&req).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::NotFound, "{e}");
    assert!(e.to_string().contains("no-such-group"), "{e}");
    assert_eq!(t.neutron.ports().len(), before);
}

#[tokio::test]
async fn a_configured_project_owns_the_port_and_its_names() {
    // Pools on: a project's ports must still be made for it and never join the pool.
    let t = setup_with(config());
    let own = pods_network(&t).await;
    // The same name in another project, with a group of that project's.
    let theirs = t
        .neutron
        .create_network(&NewNetwork {
            name: Some("pods".into()),
            project_id: Some("tenant-b".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    t.neutron
        .create_subnet(&NewSubnet {
            network_id: theirs.id.clone(),
            ip_version: 4,
            cidr: Some("10.71.0.0/24".parse().unwrap()),
            project_id: Some("tenant-b".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    for project in ["tenant-b", "tenant-c"] {
        t.neutron
            .create_security_group(&kuryr_openstack::neutron::NewSecurityGroup {
                name: "web".into(),
                project_id: Some(project.into()),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    t.binding.add_netns(NS1);
    let mut req = add("c1", NS1, "pods");
    req.network.project = Some("tenant-b".into());
    req.network.security_groups = vec!["web".into()];
    let got = t.driver.cni_add(&req).await.unwrap();
    assert!(got.ips[0].0.to_string().starts_with("10.71.0."), "{got:?}");
    t.settle(|| ports_of(&t, "c1").len() == 1).await;
    let p = &ports_of(&t, "c1")[0];
    assert_eq!(p.project_id, "tenant-b");
    assert_eq!(p.network_id, theirs.id);
    assert!(
        p.tags.iter().any(|t| t == "kuryr.port.project"),
        "{:?}",
        p.tags
    );

    // Kuryr's own network by id is not the project's (not shared); an unknown name neither.
    t.binding.add_netns(NS2);
    let mut req = add("c2", NS2, &own);
    req.network.project = Some("tenant-b".into());
    let e = t.driver.cni_add(&req).await.unwrap_err();
    assert!(e.to_string().contains("not shared"), "{e}");
    req.network.neutron_network = "pods".into();
    req.network.project = Some("tenant-d".into());
    let e = t.driver.cni_add(&req).await.unwrap_err();
    assert!(e.to_string().contains("in project tenant-d"), "{e}");

    // DEL deletes it: it never joins Kuryr's own pool.
    let pools = t.driver.ports().pools().expect("pools on");
    let before = pools.sizes();
    let mut d = del("c1", Some(NS1), "pods");
    d.network.project = Some("tenant-b".into());
    t.driver.cni_del(&d).await.unwrap();
    t.settle(|| ports_of(&t, "c1").is_empty()).await;
    assert!(
        !t.neutron.ports().iter().any(|p| p.project_id == "tenant-b"),
        "the project's port is deleted"
    );
    assert_eq!(pools.sizes().0, before.0, "nothing joined the pool");
}
