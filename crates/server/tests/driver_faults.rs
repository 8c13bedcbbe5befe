//! Real-stack tests of Kuryr with Neutron failing: the real `kuryr-server` and Docker, Neutron
//! behind a fault proxy (tests/e2e/fault_proxy.rs) that refuses connections, hangs, answers
//! slowly, answers 500, or resets the connection before or after Neutron did the work, for a
//! time window or for the k-th request of a command. After each case, once Neutron is well
//! again, Docker's commands work and nothing is left: Neutron's resources (with their tags),
//! the host's links and br-int's ports are what they were before.
//!
//! Needs the local stack, as driver_e2e; everything runs in one test, in sequence.

mod e2e;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::fault_proxy::{Fault, FaultProxy, Seen};
use e2e::*;

#[test]
fn kuryr_with_neutron_failing() {
    let Some(env) = StackEnv::from_env() else {
        return;
    };
    let proxy = FaultProxy::start(&env.neutron_url);
    // The orphan sweep's listing is periodic: "the k-th request of a command" must not depend
    // on when it runs.
    proxy.set_uncounted(Arc::new(|r: &Seen| {
        r.method == "GET"
            && r.query.contains("name=kuryr-unbound-port")
            && !r.query.contains("network_id")
    }));
    let mut stack = Stack::start_with_neutron_at(env, Some(proxy.url()));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stack.set_pools(false);
        run_scenarios(&mut stack, &proxy);
    }));
    proxy.set(Fault::Pass);
    stack.cleanup();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

type Scenario = (&'static str, fn(&mut Stack, &FaultProxy));

fn run_scenarios(s: &mut Stack, p: &FaultProxy) {
    let scenarios: &[Scenario] = &[
        ("Neutron down during each command", scenario_neutron_down),
        (
            "a fault at the k-th Neutron request of a container's lifecycle",
            scenario_kth_request_of_a_container,
        ),
        (
            "a fault at the k-th Neutron request of a network's lifecycle",
            scenario_kth_request_of_a_network,
        ),
        ("Neutron slow: 2 s, then 20 s per answer", scenario_slow),
        ("Neutron hanging during docker run", scenario_hang),
    ];
    // `KURYR_TEST_ONLY=<part of a name>` runs only the matching scenarios (development).
    let only = std::env::var("KURYR_TEST_ONLY").unwrap_or_default();
    for (name, f) in scenarios.iter().filter(|(n, _)| n.contains(only.as_str())) {
        eprintln!("=== scenario: {name}");
        let t = Instant::now();
        p.set(Fault::Pass);
        p.clear();
        f(s, p);
        p.set(Fault::Pass);
        s.assert_no_kuryr_leftovers(name);
        eprintln!("=== ok ({:.1}s): {name}", t.elapsed().as_secs_f64());
    }
}

/// Waits (up to `secs`) until the stack's footprint is `before` again; panics with the
/// difference otherwise.
fn settles_to(s: &Stack, before: &BTreeSet<String>, secs: u64, what: &str) {
    let mut now = BTreeSet::new();
    if wait_until(secs, || {
        now = s.footprint();
        &now == before
    }) {
        return;
    }
    let left: Vec<&String> = now.difference(before).collect();
    let gone: Vec<&String> = before.difference(&now).collect();
    panic!(
        "{what}: the stack did not return to its state before:\n  left: {left:#?}\n  gone: {gone:#?}\n--- kuryr log ---\n{}",
        s.log_tail()
    );
}

/// Docker's error names the cause an operator can act on.
fn assert_clear_error(err: &str, what: &str) {
    let lower = err.to_lowercase();
    assert!(
        lower.contains("neutron"),
        "{what}: Docker's error does not say Neutron failed: {err}"
    );
}

/// Neutron refusing connections during `docker network create`, `docker run`, `docker rm` and
/// `docker network rm`: Docker shows an error naming Neutron, nothing is half-made, and the same
/// command works once Neutron is back; Docker forgets a container or network whatever its
/// driver says on removal, so Kuryr finishes those tear-downs by itself when Neutron is back.
fn scenario_neutron_down(s: &mut Stack, p: &FaultProxy) {
    let plugin = plugin_name();
    let image = s.env.image.clone();
    let before = s.footprint();

    // docker network create
    let net = s.unique("down");
    p.set(Fault::Refuse);
    let err = docker_cmd(&network_create_args(&plugin, "10.91.200.0/24", &[], &net))
        .expect_err("network create with Neutron down");
    p.set(Fault::Pass);
    assert_clear_error(&err, "network create");
    assert!(docker_cmd(&["network", "inspect", &net]).is_err());
    settles_to(s, &before, 30, "a refused network create");
    let net = s.network_create("down", &["--subnet", "10.91.200.0/24"]);
    let nid = s.neutron_net_id(&net);
    let with_net = s.footprint();

    // docker run
    let c1 = s.unique("downc1");
    p.set(Fault::Refuse);
    let err = docker_cmd(&run_args(&c1, &net, &image)).expect_err("run with Neutron down");
    p.set(Fault::Pass);
    assert_clear_error(&err, "docker run");
    let _ = docker_cmd(&["rm", "-f", &c1]);
    settles_to(s, &with_net, 30, "a refused docker run");
    s.track_container(&c1);
    s.docker(&run_args(&c1, &net, &image));
    let c2 = s.run(&net, &[]);
    let ip2 = s.container_ip(&c2, &net);
    s.exec_ok(&c1, &["ping", "-c", "1", "-W", "2", &ip2]);
    assert_eq!(s.kuryr_ports(&nid).len(), 2);

    // docker rm: Docker removes the container whatever the plugin answers.
    p.set(Fault::Refuse);
    let rm = docker_cmd(&["rm", "-f", &c2]);
    assert!(
        docker_cmd(&["inspect", &c2]).is_err(),
        "docker rm with Neutron down: {rm:?}"
    );
    std::thread::sleep(Duration::from_secs(3));
    p.set(Fault::Pass);
    s.rm(&c1);
    // Kuryr finishes the removal of c2's port and links once Neutron answers again.
    settles_to(s, &with_net, 90, "docker rm with Neutron down");

    // docker network rm: Docker forgets the network whatever the plugin answers.
    p.set(Fault::Refuse);
    let rm = docker_cmd(&["network", "rm", &net]);
    std::thread::sleep(Duration::from_secs(3));
    p.set(Fault::Pass);
    if docker_cmd(&["network", "inspect", &net]).is_ok() {
        // Docker kept it: the same command works now.
        s.network_rm(&net);
    } else {
        eprintln!("docker network rm with Neutron down: {rm:?}; Docker forgot the network");
        s.forget_network(&net);
    }
    settles_to(s, &before, 90, "docker network rm with Neutron down");
}

/// The Neutron requests the proxy counted since it was cleared (logged with `what`).
fn counted_requests(p: &FaultProxy, what: &str) -> usize {
    let calls: Vec<String> = p
        .seen()
        .iter()
        .filter(|r| r.counted)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    eprintln!("{what}: {} Neutron requests: {calls:?}", calls.len());
    assert!(calls.len() >= 3, "{calls:?}");
    calls.len()
}

/// The request that got `fault`, as `METHOD path`.
fn faulted_request(p: &FaultProxy, fault: &Fault) -> String {
    p.seen()
        .iter()
        .find(|r| &r.fault == fault)
        .map(|r| format!("{} {}", r.method, r.path))
        .unwrap_or_else(|| "(not reached)".into())
}

/// The faults of a single request: Neutron's 500, a reset before the request reached Neutron,
/// a reset after Neutron did the work (the answer lost).
const ONE_REQUEST_FAULTS: [Fault; 3] = [Fault::Status(500), Fault::ResetBefore, Fault::ResetAfter];

/// `docker run` then `docker rm -f` on a network, with a fault at the k-th Neutron request for
/// every k of the lifecycle: nothing left each time, and the next lifecycle works.
fn scenario_kth_request_of_a_container(s: &mut Stack, p: &FaultProxy) {
    let image = s.env.image.clone();
    let net = s.network_create("kth", &["--subnet", "10.91.201.0/24"]);
    let base = s.footprint();
    // The lifecycle's requests, without faults.
    p.clear();
    let c = s.run(&net, &[]);
    s.rm(&c);
    let n = counted_requests(p, "a container's lifecycle");
    settles_to(s, &base, 30, "a clean lifecycle");
    for fault in ONE_REQUEST_FAULTS {
        for k in 1..=n {
            let what = format!("{fault:?} at request {k} of {n}");
            let c = s.unique(&format!("kth{k}"));
            p.at_request(k, fault.clone());
            let run = docker_cmd(&run_args(&c, &net, &image));
            let rm = docker_cmd(&["rm", "-f", &c]);
            eprintln!(
                "{what}: {} -> run {}, rm {}",
                faulted_request(p, &fault),
                if run.is_ok() { "ok" } else { "failed" },
                if rm.is_ok() { "ok" } else { "failed" }
            );
            if let Err(e) = &run {
                assert_clear_error(e, &what);
            }
            p.clear();
            settles_to(s, &base, 60, &what);
        }
    }
    // And the network still serves.
    let c1 = s.run(&net, &[]);
    let c2 = s.run(&net, &[]);
    let ip2 = s.container_ip(&c2, &net);
    s.exec_ok(&c1, &["ping", "-c", "1", "-W", "2", &ip2]);
    s.rm(&c1);
    s.rm(&c2);
    s.network_rm(&net);
}

/// `docker network create` then `docker network rm`, with a fault at the k-th request.
fn scenario_kth_request_of_a_network(s: &mut Stack, p: &FaultProxy) {
    let plugin = plugin_name();
    let base = s.footprint();
    p.clear();
    let net = s.network_create("kthn", &["--subnet", "10.91.202.0/24"]);
    s.network_rm(&net);
    let n = counted_requests(p, "a network's lifecycle");
    settles_to(s, &base, 30, "a clean network lifecycle");
    for fault in ONE_REQUEST_FAULTS {
        for k in 1..=n {
            let what = format!("{fault:?} at request {k} of {n}");
            let net = s.unique(&format!("kthn{k}"));
            p.at_request(k, fault.clone());
            let created = docker_cmd(&network_create_args(&plugin, "10.91.202.0/24", &[], &net));
            let removed = created
                .as_ref()
                .ok()
                .map(|_| docker_cmd(&["network", "rm", &net]));
            eprintln!(
                "{what}: {} -> create {}, rm {:?}",
                faulted_request(p, &fault),
                if created.is_ok() { "ok" } else { "failed" },
                removed.as_ref().map(|r| r.is_ok())
            );
            if let Err(e) = &created {
                assert_clear_error(e, &what);
            }
            p.clear();
            if docker_cmd(&["network", "inspect", &net]).is_ok() {
                // Docker kept it (a refused rm): the same command works now.
                s.docker(&["network", "rm", &net]);
            }
            settles_to(s, &base, 60, &what);
        }
    }
}

/// Every Neutron answer 2 s late: Docker's commands still work (slowly). Then 20 s late: a
/// container start takes longer than the daemon's 60 s per call; Docker gets an error, and
/// once Neutron is quick again nothing is left.
fn scenario_slow(s: &mut Stack, p: &FaultProxy) {
    let image = s.env.image.clone();
    let net = s.network_create("slow", &["--subnet", "10.91.203.0/24"]);
    let base = s.footprint();
    let c0 = s.run(&net, &[]);
    p.set(Fault::Delay(Duration::from_secs(2)));
    let t = Instant::now();
    let c1 = s.run(&net, &[]);
    eprintln!(
        "docker run with 2 s per Neutron answer: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let ip0 = s.container_ip(&c0, &net);
    s.exec_ok(&c1, &["ping", "-c", "1", "-W", "2", &ip0]);
    s.rm(&c1);
    p.set(Fault::Pass);
    s.rm(&c0);
    settles_to(s, &base, 30, "2 s per answer");

    p.set(Fault::Delay(Duration::from_secs(20)));
    let c = s.unique("slow20");
    let t = Instant::now();
    let run = docker_cmd(&run_args(&c, &net, &image));
    eprintln!(
        "docker run with 20 s per Neutron answer: {:.1} s, {}",
        t.elapsed().as_secs_f64(),
        match &run {
            Ok(_) => "ok".to_string(),
            Err(e) => e.clone(),
        }
    );
    p.set(Fault::Pass);
    let _ = docker_cmd(&["rm", "-f", &c]);
    // Work still running past the deadline finishes and is undone.
    settles_to(s, &base, 120, "20 s per answer");
    s.network_rm(&net);

    // A network create whose CreateNetwork (three Neutron requests) outlives the 60 s a call
    // gets: Docker fails the command; the call's late success is undone.
    let plugin = plugin_name();
    let before = s.footprint();
    let late = s.unique("late");
    p.set(Fault::Delay(Duration::from_secs(22)));
    let t = Instant::now();
    let created = docker_cmd(&network_create_args(&plugin, "10.91.205.0/24", &[], &late));
    p.set(Fault::Pass);
    eprintln!(
        "docker network create with 22 s per Neutron answer: {:.1} s, {created:?}",
        t.elapsed().as_secs_f64()
    );
    let err = created.expect_err("CreateNetwork takes three answers of 22 s");
    assert!(err.contains("did not finish within 60 s"), "{err}");
    assert!(docker_cmd(&["network", "inspect", &late]).is_err());
    // The call went on, succeeded, and was undone.
    assert!(
        wait_until(120, || s
            .log_has("CreateNetwork finished after Docker was told it failed")),
        "no late success of CreateNetwork\n{}",
        s.log_tail()
    );
    settles_to(s, &before, 120, "a network create past its deadline");
}

/// Neutron hanging (requests never answered) during `docker run`: the call fails at the
/// daemon's deadline with an error naming Neutron, and nothing is left.
fn scenario_hang(s: &mut Stack, p: &FaultProxy) {
    let image = s.env.image.clone();
    let net = s.network_create("hang", &["--subnet", "10.91.204.0/24"]);
    let base = s.footprint();
    let c = s.unique("hang");
    p.set(Fault::Hang);
    let t = Instant::now();
    let run = docker_cmd(&run_args(&c, &net, &image));
    let took = t.elapsed();
    p.set(Fault::Pass);
    eprintln!(
        "docker run with Neutron hanging: {:.1} s, {run:?}",
        took.as_secs_f64()
    );
    let err = run.expect_err("docker run with Neutron hanging");
    assert_clear_error(&err, "docker run with Neutron hanging");
    assert!(took < Duration::from_secs(100), "{took:?}");
    let _ = docker_cmd(&["rm", "-f", &c]);
    settles_to(s, &base, 120, "Neutron hanging");
    // And it works once Neutron answers.
    let c1 = s.run(&net, &[]);
    s.rm(&c1);
    s.network_rm(&net);
}
