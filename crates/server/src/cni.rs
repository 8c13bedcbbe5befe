//! The CNI front end's daemon side: `POST /v1/cni` on its own root-only unix socket
//! (`[cni_daemon] socket_path`). `kuryr-cni` forwards each call (its `CNI_*` variables and
//! stdin); the call is parsed with `kuryr_cni`'s rules, carried out by the driver's CNI verbs,
//! and answered as what the plugin prints (a result or a CNI error object) and its exit status.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use kuryr_cni::command::{asked_version, Command, Invocation, Target};
use kuryr_cni::forward::{DaemonReply, PATH};
use kuryr_cni::wire::{
    code, version_reply, AddResult, CniError, Interface, IpConfig, NetConf, Route,
};
use kuryr_driver::cni::{
    Attachment, CniAdd, CniAttached, CniCheck, CniDel, CniGc, CniNetwork, PodRef,
};
use kuryr_driver::{DriverError, ErrorClass, KuryrDriver};

use crate::http::in_flight::Running;

/// The CNI endpoint's router.
pub fn cni_router(driver: Arc<KuryrDriver>) -> Router {
    Router::new().route(PATH, post(handle)).with_state(driver)
}

async fn handle(State(driver): State<Arc<KuryrDriver>>, body: Bytes) -> Response {
    let inv: Invocation = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not a kuryr-cni call: {e}"),
            )
                .into_response()
        }
    };
    // Runs to its end even if kuryr-cni goes away (the runtime's deadline): an ADD cut half-way
    // would leave a port; it unwinds or finishes instead, and the runtime's DEL cleans up.
    let task = tokio::spawn(async move {
        let _running = Running::start();
        answer(&driver, &inv).await
    });
    let reply = match task.await {
        Ok(r) => r,
        Err(e) => DaemonReply {
            exit_code: 1,
            stdout: CniError::new(code::KURYR_FAILED, format!("kuryr daemon task failed: {e}"))
                .to_json(),
        },
    };
    let body = serde_json::to_vec(&reply).expect("reply serialises");
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// What the plugin prints for this call, and its exit status.
pub async fn answer(driver: &KuryrDriver, inv: &Invocation) -> DaemonReply {
    let asked = asked_version(inv);
    let command = match kuryr_cni::parse_call(inv) {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let verb = inv.var("CNI_COMMAND").unwrap_or("").to_string();
    let started = std::time::Instant::now();
    let outcome = run(driver, command).await;
    tracing::debug!(command = %verb, container = inv.var("CNI_CONTAINERID").unwrap_or(""), ok = outcome.is_ok(), elapsed_ms = started.elapsed().as_millis() as u64, "cni call");
    match outcome {
        Ok(stdout) => DaemonReply {
            exit_code: 0,
            stdout,
        },
        Err(e) => {
            tracing::warn!(command = %verb, container = inv.var("CNI_CONTAINERID").unwrap_or(""), error = %e, "cni call failed");
            failed(e.in_version(&asked))
        }
    }
}

fn failed(e: CniError) -> DaemonReply {
    DaemonReply {
        exit_code: 1,
        stdout: e.to_json(),
    }
}

async fn run(driver: &KuryrDriver, command: Command) -> Result<String, CniError> {
    match command {
        Command::Version(asked) => Ok(version_reply(&asked).to_string()),
        Command::Add(t) => {
            let netns = t.netns.clone().unwrap_or_default();
            if !std::path::Path::new(&netns).exists() {
                return Err(CniError::new(
                    code::INVALID_ENV,
                    format!("CNI_NETNS {netns} does not exist"),
                ));
            }
            let req = CniAdd {
                attachment: attachment(&t),
                netns: PathBuf::from(&netns),
                network: network(&t.conf),
                pod: PodRef {
                    namespace: t.arg("K8S_POD_NAMESPACE").map(str::to_string),
                    name: t.arg("K8S_POD_NAME").map(str::to_string),
                    uid: t.arg("K8S_POD_UID").map(str::to_string),
                },
            };
            let done = driver
                .cni_add(&req)
                .await
                .map_err(|e| driver_error(e, Verb::Add))?;
            Ok(add_result(&done)
                .to_json(&t.conf.cni_version, t.conf.prev_result.as_ref())
                .to_string())
        }
        Command::Del(t) => {
            let req = CniDel {
                attachment: attachment(&t),
                // A namespace already gone is fine: the interface went with it.
                netns: t.netns.as_ref().map(PathBuf::from),
                network: network(&t.conf),
            };
            driver
                .cni_del(&req)
                .await
                .map_err(|e| driver_error(e, Verb::Del))?;
            Ok(String::new())
        }
        Command::Check(t) => {
            let req = CniCheck {
                attachment: attachment(&t),
                netns: PathBuf::from(t.netns.clone().unwrap_or_default()),
                network: network(&t.conf),
            };
            driver
                .cni_check(&req)
                .await
                .map_err(|e| driver_error(e, Verb::Check))?;
            Ok(String::new())
        }
        Command::Status(conf) => {
            driver
                .cni_status(&network(&conf))
                .await
                .map_err(|e| driver_error(e, Verb::Status))?;
            Ok(String::new())
        }
        Command::Gc(conf) => {
            let valid = conf
                .valid_attachments
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|a| Attachment {
                    container_id: a.container_id,
                    ifname: a.ifname,
                })
                .collect();
            let report = driver
                .cni_gc(&CniGc {
                    network: network(&conf),
                    valid,
                })
                .await
                .map_err(|e| driver_error(e, Verb::Gc))?;
            if !report.removed.is_empty() {
                tracing::info!(network = %conf.name, removed = ?report.removed, "cni gc removed attachments");
            }
            Ok(String::new())
        }
    }
}

fn attachment(t: &Target) -> Attachment {
    Attachment {
        container_id: t.container_id.clone(),
        ifname: t.ifname.clone(),
    }
}

/// The Neutron side of a call: the pod's annotations may choose the network and subnet.
fn network(c: &NetConf) -> CniNetwork {
    CniNetwork {
        name: c.name.clone(),
        neutron_network: c.network_for_pod().unwrap_or_default().to_string(),
        subnet: c.subnet_for_pod().map(str::to_string),
        mtu: c.mtu,
        security_groups: c.security_groups.clone().unwrap_or_default(),
        project: c.project.clone().filter(|p| !p.is_empty()),
    }
}

fn add_result(a: &CniAttached) -> AddResult {
    let mut interfaces = vec![Interface {
        name: a.ifname.clone(),
        mac: a.mac.to_string(),
        mtu: Some(a.mtu),
        sandbox: Some(a.sandbox.display().to_string()),
    }];
    // The host end, without a sandbox: chained plugins (bandwidth) shape traffic on it.
    if let Some((name, mac)) = &a.host_interface {
        interfaces.push(Interface {
            name: name.clone(),
            mac: mac.to_string(),
            mtu: Some(a.mtu),
            sandbox: None,
        });
    }
    AddResult {
        interfaces,
        ips: a
            .ips
            .iter()
            .map(|(net, gw)| IpConfig {
                address: net.to_string(),
                gateway: gw.map(|g| g.to_string()),
                interface: 0,
                v6: net.addr().is_ipv6(),
            })
            .collect(),
        routes: a
            .routes
            .iter()
            .map(|(dst, gw)| Route {
                dst: dst.to_string(),
                gw: gw.map(|g| g.to_string()),
            })
            .collect(),
        nameservers: a.dns_nameservers.clone(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    Add,
    Del,
    Check,
    Status,
    Gc,
}

/// A driver error as a CNI error: Neutron down or slow is worth retrying (11; STATUS: 50);
/// a network or subnet the configuration names that does not exist is a configuration error
/// (7); CHECK finding a difference is 101, a missing attachment 3; anything else 100.
fn driver_error(e: DriverError, verb: Verb) -> CniError {
    let class = e.class();
    let c = match (verb, class) {
        (Verb::Status, _) => code::NOT_AVAILABLE,
        (_, ErrorClass::Unavailable) => code::TRY_AGAIN_LATER,
        (Verb::Check, ErrorClass::NotFound) => code::UNKNOWN_CONTAINER,
        (Verb::Check, ErrorClass::Conflict) => code::KURYR_CHECK_FAILED,
        (_, ErrorClass::NotFound) | (_, ErrorClass::BadRequest) => code::INVALID_NETWORK_CONFIG,
        _ => code::KURYR_FAILED,
    };
    CniError::new(c, e.to_string())
}
