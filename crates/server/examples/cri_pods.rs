//! The benchmark's pod workload (`bench/bench.py`): pod sandboxes started and removed through
//! containerd's CRI, as the kubelet does, timed per call. containerd runs whatever CNI
//! configuration the caller put first in its configuration directory.
//!
//!   cri_pods <cri socket> <reps> <expected address prefix> [warm-up pods, default 2]
//!
//! Prints one JSON object: `run_ms` (RunPodSandbox, each), `remove_ms` (StopPodSandbox +
//! RemovePodSandbox, each), `stop_ms` (the StopPodSandbox part: it runs CNI DEL), `ips`. The warm-up pods wait until containerd has loaded the
//! configuration that gives addresses with the expected prefix (it reloads on a file change).

use std::time::{Duration, Instant};

use k8s_cri::v1::{
    PodSandboxStatusRequest, RemovePodSandboxRequest, RunPodSandboxRequest, StopPodSandboxRequest,
};

#[path = "../tests/common/cri.rs"]
mod cri;

type Client = cri::CriClient;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: cri_pods <cri socket> <reps> <expected address prefix> [warm-up]");
        std::process::exit(2);
    }
    let (socket, reps, prefix) = (args[1].clone(), args[2].parse::<usize>().unwrap(), &args[3]);
    let warmup = args.get(4).map_or(2, |w| w.parse().unwrap());
    let mut c = cri::connect(socket).await;
    let tag = format!("{}", std::process::id());

    // Warm-up: the configuration in effect, the pool, caches.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut warmed = 0;
    let mut n = 0;
    while warmed < warmup {
        n += 1;
        let (id, _) = run(&mut c, &format!("bench-{tag}-w{n}")).await;
        let ip = ip_of(&mut c, &id).await;
        remove(&mut c, &id).await;
        if ip.starts_with(prefix.as_str()) {
            warmed += 1;
        } else if Instant::now() > deadline {
            eprintln!("containerd still gives {ip}, not {prefix}*: wrong CNI configuration");
            std::process::exit(1);
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    let (mut run_ms, mut remove_ms, mut stop_ms, mut ips) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..reps {
        let (id, ms) = run(&mut c, &format!("bench-{tag}-{i}")).await;
        run_ms.push(ms);
        ips.push(ip_of(&mut c, &id).await);
        let t = Instant::now();
        let stopped = remove(&mut c, &id).await;
        remove_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        stop_ms.push(stopped);
    }
    println!(
        "{}",
        serde_json::json!({"run_ms": run_ms, "remove_ms": remove_ms, "stop_ms": stop_ms, "ips": ips})
    );
}

async fn run(c: &mut Client, name: &str) -> (String, f64) {
    let config = cri::sandbox_config(name, "kuryr-bench", &[], Vec::new());
    let t = Instant::now();
    let id = c
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox {name}: {}", e.message()))
        .into_inner()
        .pod_sandbox_id;
    (id, t.elapsed().as_secs_f64() * 1000.0)
}

async fn ip_of(c: &mut Client, id: &str) -> String {
    c.pod_sandbox_status(PodSandboxStatusRequest {
        pod_sandbox_id: id.to_string(),
        verbose: false,
    })
    .await
    .ok()
    .and_then(|r| r.into_inner().status)
    .and_then(|s| s.network)
    .map(|n| n.ip)
    .unwrap_or_default()
}

/// Stops and removes a pod; returns how long the stop (which runs CNI DEL) took.
async fn remove(c: &mut Client, id: &str) -> f64 {
    let t = Instant::now();
    c.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: id.to_string(),
    })
    .await
    .unwrap_or_else(|e| panic!("StopPodSandbox {id}: {}", e.message()));
    let stopped = t.elapsed().as_secs_f64() * 1000.0;
    c.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: id.to_string(),
    })
    .await
    .unwrap_or_else(|e| panic!("RemovePodSandbox {id}: {}", e.message()));
    stopped
}
