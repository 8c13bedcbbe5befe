//! A container end inside a sandbox's network namespace, for front ends that place the
//! interface themselves (CNI: the runtime made the namespace; Docker moves its end on its own).
//!
//! Namespaces are per thread: no runtime thread ever switches. A netlink socket stays bound to
//! the namespace it was opened in, so a short-lived std thread enters the sandbox, opens the
//! socket, goes back and ends; the runtime then drives that socket from anywhere.

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use nix::sched::CloneFlags;
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use crate::error::BindingError;
use crate::link::{errno, nl_err, summarize, LinkInfoSummary};
use crate::naming;
use kuryr_types::{DockerId, MacAddr};

/// Where a container end lives in a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRef {
    /// The network namespace file (`CNI_NETNS`).
    pub netns: PathBuf,
    /// The interface's name inside it (`CNI_IFNAME`).
    pub ifname: String,
    /// The endpoint the interface belongs to (its links' alias names it).
    pub endpoint_id: DockerId,
}

/// A route to set in the sandbox; `gateway: None` is an on-link route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRoute {
    pub destination: IpNet,
    pub gateway: Option<IpAddr>,
}

/// Moves a bound port's container end (`host_ifname`, as `bind` named it) into a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterSandbox {
    pub sandbox: SandboxRef,
    pub host_ifname: String,
    /// Addresses with their subnet's prefix length.
    pub addresses: Vec<IpNet>,
    pub routes: Vec<SandboxRoute>,
}

/// What the sandbox's interface looks like now (CNI CHECK compares it with what ADD set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxState {
    pub mac: Option<MacAddr>,
    pub mtu: Option<u32>,
    pub up: bool,
    pub addresses: Vec<IpNet>,
    /// Routes through the interface (destination, gateway).
    pub routes: Vec<SandboxRoute>,
    /// The alias the interface carries (Kuryr's mark).
    pub alias: Option<String>,
}

/// A netlink socket in the namespace of `netns` (a file under /run/netns or /proc/PID/ns).
/// `Ok(None)` when that namespace file is gone.
pub(crate) async fn netlink_in(netns: &Path) -> Result<Option<Handle>, BindingError> {
    let target = match File::open(netns) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(BindingError::Other(format!(
                "cannot open network namespace {}: {e}",
                netns.display()
            )))
        }
    };
    let runtime = tokio::runtime::Handle::current();
    let shown = netns.display().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A thread of its own: it enters, opens, goes back and ends; never a runtime thread.
    std::thread::Builder::new()
        .name("kuryr-netns".into())
        .spawn(move || {
            let opened = (|| {
                let home = File::open("/proc/thread-self/ns/net")
                    .map_err(|e| format!("cannot open this thread's network namespace: {e}"))?;
                nix::sched::setns(&target, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("cannot enter network namespace {shown}: {e}"))?;
                let made = {
                    let _rt = runtime.enter();
                    rtnetlink::new_connection()
                };
                // If the way back fails this thread ends here anyway: it is never reused.
                let _ = nix::sched::setns(&home, CloneFlags::CLONE_NEWNET);
                let (conn, handle, _) =
                    made.map_err(|e| format!("cannot open netlink socket in {shown}: {e}"))?;
                runtime.spawn(conn);
                Ok::<_, String>(handle)
            })();
            let _ = tx.send(opened);
        })
        .map_err(|e| BindingError::Other(format!("cannot start a netns thread: {e}")))?;
    match rx.await {
        Ok(Ok(h)) => Ok(Some(h)),
        Ok(Err(m)) => Err(BindingError::Other(m)),
        Err(_) => Err(BindingError::Other("the netns thread died".into())),
    }
}

/// A netlink socket in the daemon's own (host) namespace.
fn netlink_here() -> Result<Handle, BindingError> {
    let (conn, handle, _) = rtnetlink::new_connection()
        .map_err(|e| BindingError::Other(format!("cannot open netlink socket: {e}")))?;
    tokio::spawn(conn);
    Ok(handle)
}

/// A link in the namespace `h` is bound to, as `LinkOps::get` summarises it.
async fn link_by_name(h: &Handle, name: &str) -> Result<Option<LinkInfoSummary>, BindingError> {
    let mut s = h.link().get().match_name(name.to_string()).execute();
    match s.try_next().await {
        Ok(m) => Ok(m.as_ref().map(summarize)),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl_err(name, "get", e)),
    }
}

/// Whether a link's alias says it is this endpoint's.
fn is_endpoints(l: &LinkInfoSummary, endpoint: &DockerId) -> bool {
    l.alias
        .as_deref()
        .and_then(naming::parse_link_alias)
        .is_some_and(|(ep, _)| ep == endpoint.as_str())
}

fn route_message(index: u32, r: &SandboxRoute) -> Result<RouteMessage, BindingError> {
    let b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(r.destination.addr(), r.destination.prefix_len())
        .map_err(|e| BindingError::InvalidRequest(format!("route {}: {e}", r.destination)))?
        .output_interface(index);
    let b = match r.gateway {
        Some(g) => b
            .gateway(g)
            .map_err(|e| BindingError::InvalidRequest(format!("gateway {g}: {e}")))?,
        None => b.scope(netlink_packet_route::route::RouteScope::Link),
    };
    Ok(b.build())
}

/// Moves the container end into the sandbox under its name there, then sets its addresses and
/// routes and brings it (and the sandbox's loopback) up. The interface name must be free in the
/// sandbox. On failure after the move the caller's unbind removes the pair (the host end takes
/// its peer with it wherever it is).
pub(crate) async fn enter(req: &EnterSandbox) -> Result<(), BindingError> {
    let sb = &req.sandbox;
    if !naming::valid_ifname(&sb.ifname) {
        return Err(BindingError::InvalidRequest(format!(
            "invalid interface name {:?}",
            sb.ifname
        )));
    }
    let inside = netlink_in(&sb.netns).await?.ok_or_else(|| {
        BindingError::InvalidRequest(format!(
            "network namespace {} does not exist",
            sb.netns.display()
        ))
    })?;
    if link_by_name(&inside, &sb.ifname).await?.is_some() {
        return Err(BindingError::InvalidRequest(format!(
            "interface {} already exists in {}",
            sb.ifname,
            sb.netns.display()
        )));
    }
    let here = netlink_here()?;
    let link = link_by_name(&here, &req.host_ifname)
        .await?
        .ok_or_else(|| BindingError::LinkNotFound(req.host_ifname.clone()))?;
    let ns = File::open(&sb.netns)
        .map_err(|e| BindingError::Other(format!("cannot open {}: {e}", sb.netns.display())))?;
    // Down, into the namespace and renamed in one message: the name never shows on the host.
    let mut msg = LinkUnspec::new_with_index(link.index)
        .setns_by_fd(ns.as_raw_fd())
        .down()
        .build();
    msg.attributes
        .push(LinkAttribute::IfName(sb.ifname.clone()));
    here.link()
        .set(msg)
        .execute()
        .await
        .map_err(|e| nl_err(&req.host_ifname, "move into sandbox", e))?;
    drop(ns);

    let moved = link_by_name(&inside, &sb.ifname)
        .await?
        .ok_or_else(|| BindingError::LinkNotFound(sb.ifname.clone()))?;
    let index = moved.index;
    for a in &req.addresses {
        inside
            .address()
            .add(index, a.addr(), a.prefix_len())
            .execute()
            .await
            .map_err(|e| nl_err(&sb.ifname, "add address", e))?;
    }
    inside
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| nl_err(&sb.ifname, "set up", e))?;
    if let Some(lo) = link_by_name(&inside, "lo").await? {
        if !lo.up {
            inside
                .link()
                .set(LinkUnspec::new_with_index(lo.index).up().build())
                .execute()
                .await
                .map_err(|e| nl_err("lo", "set up", e))?;
        }
    }
    // On-link routes first: a gateway must be reachable when its route is added.
    let mut routes: Vec<&SandboxRoute> = req.routes.iter().collect();
    routes.sort_by_key(|r| r.gateway.is_some());
    for r in routes {
        match inside.route().add(route_message(index, r)?).execute().await {
            Ok(()) => {}
            // The kernel made it already (the prefix route of an address).
            Err(e) if errno(&e) == Some(libc::EEXIST) => {}
            Err(e) => return Err(nl_err(&sb.ifname, "add route", e)),
        }
    }
    Ok(())
}

/// Brings this endpoint's interface back from the sandbox to the host under `host_ifname`
/// (what Docker does at Leave), so the host end's tear-down or reuse finds both ends. Without a
/// `host_ifname` the interface is deleted in the sandbox. `Ok(false)`: the sandbox or the
/// interface is gone already (the pair went with the namespace), or the interface there is not
/// this endpoint's (left alone).
pub(crate) async fn leave(
    sb: &SandboxRef,
    host_ifname: Option<&str>,
) -> Result<bool, BindingError> {
    let Some(inside) = netlink_in(&sb.netns).await? else {
        return Ok(false);
    };
    let Some(link) = link_by_name(&inside, &sb.ifname).await? else {
        return Ok(false);
    };
    if !is_endpoints(&link, &sb.endpoint_id) {
        tracing::warn!(netns = %sb.netns.display(), ifname = %sb.ifname, "interface in the sandbox is not this endpoint's: left alone");
        return Ok(false);
    }
    let index = link.index;
    match host_ifname {
        Some(name) => {
            let home = File::open("/proc/thread-self/ns/net")
                .map_err(|e| BindingError::Other(format!("cannot open host namespace: {e}")))?;
            let mut msg = LinkUnspec::new_with_index(index)
                .setns_by_fd(home.as_raw_fd())
                .down()
                .build();
            msg.attributes.push(LinkAttribute::IfName(name.to_string()));
            inside
                .link()
                .set(msg)
                .execute()
                .await
                .map_err(|e| nl_err(&sb.ifname, "move out of sandbox", e))?;
        }
        None => match inside.link().del(index).execute().await {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(libc::ENODEV) => {}
            Err(e) => return Err(nl_err(&sb.ifname, "delete", e)),
        },
    }
    Ok(true)
}

/// The sandbox interface's state; `Ok(None)` when the sandbox or the interface is gone.
pub(crate) async fn inspect(sb: &SandboxRef) -> Result<Option<SandboxState>, BindingError> {
    let Some(inside) = netlink_in(&sb.netns).await? else {
        return Ok(None);
    };
    let Some(link) = link_by_name(&inside, &sb.ifname).await? else {
        return Ok(None);
    };
    let index = link.index;
    let mut state = SandboxState {
        mac: link.mac,
        mtu: link.mtu,
        up: link.up,
        addresses: Vec::new(),
        routes: Vec::new(),
        alias: link.alias,
    };
    let addrs: Vec<AddressMessage> = inside
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(|e| nl_err(&sb.ifname, "list addresses", e))?;
    for m in &addrs {
        let ip = m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        });
        if let Some(ip) = ip {
            if let Ok(net) = IpNet::new(ip, m.header.prefix_len) {
                state.addresses.push(net);
            }
        }
    }
    for (family, v6) in [
        (
            RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
            false,
        ),
        (
            RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
            true,
        ),
    ] {
        let routes: Vec<RouteMessage> = inside
            .route()
            .get(family)
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err(&sb.ifname, "list routes", e))?;
        for r in &routes {
            let through_us = r
                .attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Oif(i) if *i == index));
            if !through_us {
                continue;
            }
            let dst = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(d) => route_ip(d),
                _ => None,
            });
            let gw = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Gateway(g) => route_ip(g),
                _ => None,
            });
            let dst = match dst {
                Some(d) => IpNet::new(d, r.header.destination_prefix_length).ok(),
                None if r.header.destination_prefix_length == 0 => Some(if v6 {
                    IpNet::V6(Default::default())
                } else {
                    IpNet::V4(Default::default())
                }),
                None => None,
            };
            if let Some(destination) = dst {
                state.routes.push(SandboxRoute {
                    destination,
                    gateway: gw,
                });
            }
        }
    }
    Ok(Some(state))
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}
