//! Support for the real-stack tests: the stack's coordinates, the daemon process, Docker and
//! Neutron helpers, and clean-up of everything a run creates (also on failure).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{Method, Request};
use http_body_util::Full;
use serde_json::Value;

pub mod fault_proxy;
#[path = "../common/http1.rs"]
mod http1;
#[path = "../common/skip.rs"]
mod skip;
#[allow(unused_imports)] // not every binary including this module reads a stack variable
pub use skip::{skip_or_fail, stack_var};

pub const DOCKER: &str = "/usr/bin/docker";

/// Plugin name the daemon registers as: `kuryr`, or `KURYR_TEST_PLUGIN_NAME` to run beside
/// another daemon that holds `kuryr.sock`.
pub fn plugin_name() -> String {
    std::env::var("KURYR_TEST_PLUGIN_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "kuryr".into())
}

pub fn socket() -> String {
    format!("/run/docker/plugins/{}.sock", plugin_name())
}

/// The stack's coordinates (from `stack/env.sh`).
#[derive(Debug, Clone)]
pub struct StackEnv {
    pub neutron_url: String,
    pub chassis: String,
    pub image: String,
}

impl StackEnv {
    /// `None` (after [`skip_or_fail`]) when the real stack is not available.
    pub fn from_env() -> Option<Self> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if get("KURYR_TEST_DOCKER").is_none() {
            skip_or_fail("KURYR_TEST_DOCKER is not set (no docker daemon)");
            return None;
        }
        let Some(neutron_url) = get("KURYR_TEST_NEUTRON_URL") else {
            skip_or_fail("KURYR_TEST_NEUTRON_URL is not set (no neutron)");
            return None;
        };
        if std::os::unix::net::UnixStream::connect(socket()).is_ok() {
            skip_or_fail(&format!("another daemon already serves {}", socket()));
            return None;
        }
        Some(StackEnv {
            neutron_url,
            chassis: get("KURYR_TEST_CHASSIS").unwrap_or_else(hostname),
            image: get("KURYR_TEST_IMAGE").unwrap_or_else(|| "kuryr-busybox".into()),
        })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A minimal Neutron client for assertions (plain HTTP to the noauth API on loopback), with a
/// blocking API for the synchronous real-stack tests: hyper on a private runtime.
pub struct NeutronProbe {
    host_port: String,
    rt: tokio::runtime::Runtime,
}

/// The JSON key of a collection: its last path segment (`qos/policies` → `policies`).
fn json_key(resource: &str) -> String {
    resource
        .rsplit('/')
        .next()
        .unwrap_or(resource)
        .replace('-', "_")
}

fn singular(resource: &str) -> String {
    let k = json_key(resource);
    if let Some(s) = k.strip_suffix("ies") {
        format!("{s}y")
    } else {
        k.trim_end_matches('s').to_string()
    }
}

impl NeutronProbe {
    pub fn new(url: &str) -> Self {
        let host_port = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the neutron probe");
        NeutronProbe { host_port, rt }
    }

    /// One request on a new connection; `Err` for transport failures (worth a retry).
    async fn send(&self, method: &str, path: &str, body: String) -> Result<(u16, Value), String> {
        let (status, bytes) =
            http_request(&self.host_port, method, &format!("/v2.0/{path}"), body).await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// `GET http://<host_port><path>` as text, on this probe's runtime (the metrics endpoint).
    pub fn get_text(&self, host_port: &str, path: &str) -> (u16, String) {
        let got = self.rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(10),
                http_request(host_port, "GET", path, String::new()),
            )
            .await
        });
        match got {
            Ok(Ok((status, bytes))) => (status, String::from_utf8_lossy(&bytes).into_owned()),
            Ok(Err(e)) => panic!("GET {host_port}{path}: {e}"),
            Err(_) => panic!("GET {host_port}{path}: no answer within 10s"),
        }
    }

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut last = String::new();
        for attempt in 0..3 {
            // The timer must be made inside the runtime.
            let sent = self.rt.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(30),
                    self.send(method, path, body.clone()),
                )
                .await
            });
            match sent {
                Ok(Ok(reply)) => return reply,
                Ok(Err(e)) => last = e,
                Err(_) => last = "no answer within 30s".into(),
            }
            std::thread::sleep(Duration::from_millis(200 * (attempt + 1)));
        }
        panic!(
            "neutron at {} does not answer {method} {path}: {last}",
            self.host_port
        );
    }

    pub fn list(&self, resource: &str, filters: &[(&str, &str)]) -> Vec<Value> {
        let q: Vec<String> = filters
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let path = if q.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}?{}", q.join("&"))
        };
        let (status, v) = self.request("GET", &path, None);
        assert_eq!(status, 200, "GET {path}: {v}");
        v[json_key(resource)]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn get(&self, resource: &str, id: &str) -> Option<Value> {
        let (status, v) = self.request("GET", &format!("{resource}/{id}"), None);
        match status {
            200 => Some(v[singular(resource)].clone()),
            404 => None,
            s => panic!("GET {resource}/{id}: {s} {v}"),
        }
    }

    pub fn create(&self, resource: &str, body: Value) -> Value {
        let (status, v) = self.request("POST", resource, Some(&body));
        assert_eq!(status, 201, "POST {resource}: {v}");
        v[singular(resource)].clone()
    }

    pub fn put_action(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.request("PUT", path, Some(&body));
        assert_eq!(status, 200, "PUT {path}: {v}");
        v
    }

    /// Deletes; "not found" is fine.
    pub fn delete(&self, resource: &str, id: &str) {
        let (status, v) = self.request("DELETE", &format!("{resource}/{id}"), None);
        assert!(
            status == 204 || status == 404,
            "DELETE {resource}/{id}: {status} {v}"
        );
    }
}

/// One HTTP/1 request on a new connection; `Err` for transport failures (worth a retry).
async fn http_request(
    host_port: &str,
    method: &str,
    path: &str,
    body: String,
) -> Result<(u16, Bytes), String> {
    let tcp = tokio::net::TcpStream::connect(host_port)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?)
        .uri(path)
        .header(HOST, host_port)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let (status, bytes) = http1::exchange(tcp, req).await?;
    Ok((status.as_u16(), bytes))
}

/// A loopback address with a port free right now (the daemon binds it moments later).
fn free_loopback_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    l.local_addr().expect("its address").to_string()
}

/// The value of the metric sample whose line starts with `name` and has every label of `labels`.
pub fn metric_value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|lb| l.contains(lb)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn tags_of(v: &Value) -> Vec<String> {
    v["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `cond` every 100 ms for up to `secs` seconds; whether it became true.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

/// The `kuryr-cni` binary of this build (target/<profile>/kuryr-cni, beside the test's deps/).
pub fn kuryr_cni_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("kuryr-cni");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p kuryr-cni)",
        bin.display()
    );
    bin
}

/// Runs the `kuryr-cni` binary as a runtime does: only the `CNI_*` variables given, the
/// configuration on stdin. Returns (success, stdout, stderr).
pub fn run_cni(bin: &Path, env: &[(&str, &str)], stdin: &str) -> (bool, String, String) {
    cni_output(spawn_cni(bin, env, stdin))
}

/// Waits for a plugin [`spawn_cni`] started: (success, stdout, stderr).
pub fn cni_output(child: std::process::Child) -> (bool, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// [`run_cni`] without waiting: the running plugin (stdin written and closed; stdout and
/// stderr piped), for a test that kills it half-way as a runtime's deadline does.
pub fn spawn_cni(bin: &Path, env: &[(&str, &str)], stdin: &str) -> std::process::Child {
    use std::io::Write;
    let mut child = Command::new(bin)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kuryr-cni");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child
}

/// The first address of a CNI ADD result, without its prefix length.
pub fn cni_result_ip(result: &Value) -> String {
    let addr = result["ips"][0]["address"].as_str().unwrap_or_default();
    addr.split('/').next().unwrap_or_default().to_string()
}

/// Whether `ping` (the command, without its target) reaches `ip` within a few tries: OVN
/// installs flows right after a port turns ACTIVE.
pub fn pings_within(ping: &[&str], ip: &str, tries: u32) -> bool {
    (0..tries).any(|i| {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(500));
        }
        Command::new(ping[0])
            .args(&ping[1..])
            .args(["ping", "-c", "1", "-W", "1", ip])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

pub fn tap_name(port_id: &str) -> String {
    format!("tap{}", &port_id[..11])
}

/// `docker network create` of a Kuryr network with Kuryr's IPAM on `cidr`, with `extra`
/// arguments before the name.
pub fn network_create_args<'a>(
    plugin: &'a str,
    cidr: &'a str,
    extra: &[&'a str],
    name: &'a str,
) -> Vec<&'a str> {
    let mut a = vec![
        "network",
        "create",
        "-d",
        plugin,
        "--ipam-driver",
        plugin,
        "--subnet",
        cidr,
    ];
    a.extend_from_slice(extra);
    a.push(name);
    a
}

/// `docker run -d` of a container that sleeps on `net`.
pub fn run_args<'a>(name: &'a str, net: &'a str, image: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "-d",
        "--name",
        name,
        "--network",
        net,
        image,
        "sleep",
        "600",
    ]
}

/// Runs `/usr/bin/docker` with `args`; stdout on success, stderr on failure.
pub fn docker_cmd(args: &[&str]) -> Result<String, String> {
    let out = Command::new(DOCKER)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {DOCKER}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Stops a daemon: SIGTERM first (a graceful shutdown removes its socket), SIGKILL after 10 s.
pub fn stop_child(child: Option<Child>) {
    if let Some(mut c) = child {
        let _ = Command::new("kill").arg(c.id().to_string()).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if c.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// The running test stack: daemon, config, and everything to clean up.
pub struct Stack {
    pub env: StackEnv,
    pub neutron: NeutronProbe,
    pub dir: PathBuf,
    pub run_id: String,
    pub default_pool_v4: String,
    pub default_pool_v6: String,
    daemon: Option<Child>,
    containers: Vec<String>,
    /// Containers `run` has started, for unique names (some are removed on the way).
    started: usize,
    networks: Vec<String>,
    neutron_resources: Vec<(String, String)>,
    created_default_pools: Vec<String>,
    /// Kuryr networks and ports seen in this run (the leftover checks look only at these, so
    /// other daemons on the shared stack do not matter).
    seen_nets: std::cell::RefCell<std::collections::BTreeSet<String>>,
    seen_ports: std::cell::RefCell<std::collections::BTreeSet<String>>,
    /// `127.0.0.1:<port>` of the daemon's metrics endpoint.
    pub metrics_addr: String,
    /// `[vif_pool] enabled`: the on-demand scenarios run without pools, the pool scenarios with
    /// the defaults.
    pools: bool,
    /// `[vif_pool] pre_plug`.
    pre_plug: bool,
    /// More `[DEFAULT]` and `[neutron]` lines (options under test).
    extra_default: String,
    extra_neutron: String,
    /// A named crash point the next daemon start aborts at (`KURYR_TEST_CRASH_AT`).
    crash_at: Option<String>,
    /// The daemon's `[neutron] endpoint` when not Neutron's own (a fault proxy).
    daemon_neutron_url: Option<String>,
    /// The daemon's `[neutron]` authentication lines when not noauth (Keystone).
    daemon_neutron_auth: Option<String>,
}

impl Stack {
    pub fn start(env: StackEnv) -> Self {
        Self::start_with_neutron_at(env, None)
    }

    /// Starts with the daemon talking to Neutron through `url` (a fault proxy), when given.
    pub fn start_with_neutron_at(env: StackEnv, url: Option<String>) -> Self {
        let run_id = format!(
            "{:x}",
            (std::process::id() as u64) << 20
                ^ (Instant::now().elapsed().as_nanos() as u64)
                ^ std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_micros() as u64
        );
        let run_id = run_id[run_id.len().saturating_sub(6)..].to_string();
        let dir = std::env::temp_dir().join(format!("kuryr-e2e-{run_id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let neutron = NeutronProbe::new(&env.neutron_url);
        let mut s = Stack {
            env,
            neutron,
            dir,
            run_id,
            default_pool_v4: String::new(),
            default_pool_v6: String::new(),
            daemon: None,
            containers: Vec::new(),
            started: 0,
            networks: Vec::new(),
            neutron_resources: Vec::new(),
            created_default_pools: Vec::new(),
            crash_at: None,
            daemon_neutron_url: url,
            daemon_neutron_auth: None,
            seen_nets: Default::default(),
            seen_ports: Default::default(),
            metrics_addr: free_loopback_addr(),
            pools: false,
            pre_plug: true,
            extra_default: String::new(),
            extra_neutron: String::new(),
        };
        s.default_pool_v4 = s.ensure_pool("kuryr", "10.90.0.0/16", 24);
        s.default_pool_v6 = s.ensure_pool("kuryr6", "fd90::/48", 64);
        s.write_config();
        s.start_daemon();
        s
    }

    /// The deployer creates the default pools; create them if this stack has none.
    fn ensure_pool(&mut self, name: &str, prefix: &str, len: u8) -> String {
        if let Some(p) = self.neutron.list("subnetpools", &[("name", name)]).first() {
            return p["id"].as_str().unwrap().to_string();
        }
        let p = self.neutron.create(
            "subnetpools",
            serde_json::json!({"subnetpool": {"name": name, "prefixes": [prefix], "default_prefixlen": len}}),
        );
        let id = p["id"].as_str().unwrap().to_string();
        self.created_default_pools.push(id.clone());
        id
    }

    /// Restarts the daemon authenticating to Neutron with `auth` (`[neutron]` lines: Keystone's
    /// URL, user, project), or noauth again with `None`.
    pub fn restart_with_neutron_auth(&mut self, auth: Option<String>) {
        self.reconfigure(|s| s.daemon_neutron_auth = auth);
    }

    /// Stops the daemon, changes its configuration and starts it again.
    fn reconfigure(&mut self, change: impl FnOnce(&mut Self)) {
        self.stop_daemon();
        change(self);
        self.write_config();
        self.start_daemon();
    }

    fn write_config(&self) {
        let url = self
            .daemon_neutron_url
            .as_deref()
            .unwrap_or(&self.env.neutron_url);
        let auth = self
            .daemon_neutron_auth
            .clone()
            .unwrap_or_else(|| format!("auth_type = none\nendpoint = {url}"));
        let conf = format!(
            "[DEFAULT]\ndebug = true\nhost = {chassis}\nkuryr_uri = unix://{sock}\ncapability_scope = local\nprocess_external_connectivity = true\norphan_sweep_interval = 2\nstate_path = {state}\n{extra_default}\n\
             [neutron]\n{auth}\n{extra_neutron}\ndefault_subnetpool_v4 = kuryr\n\
             default_subnetpool_v6 = kuryr6\nvif_plugging_is_fatal = true\nvif_plugging_timeout = 30\n\
             \n[binding]\nveth_dst_prefix = eth\n\n[metrics]\nlisten_address = {metrics}\n\n\
             [vif_pool]\nenabled = {pools}\npre_plug = {pre_plug}\n\n[cni_daemon]\nenabled = true\nsocket_path = {cni}\n",
            chassis = self.env.chassis,
            state = self.dir.join("state").display(),
            sock = socket(),
            metrics = self.metrics_addr,
            pools = self.pools,
            pre_plug = self.pre_plug,
            extra_default = self.extra_default,
            extra_neutron = self.extra_neutron,
            cni = self.cni_socket().display()
        );
        std::fs::write(self.dir.join("kuryr.conf"), conf).unwrap();
    }

    /// The daemon's CNI socket (`[cni_daemon] socket_path`): private to this run.
    pub fn cni_socket(&self) -> PathBuf {
        self.dir.join("cni.sock")
    }

    /// The daemon's metrics, scraped as Prometheus would.
    pub fn scrape_metrics(&self) -> String {
        let (status, text) = self.neutron.get_text(&self.metrics_addr, "/metrics");
        assert_eq!(status, 200, "{text}");
        text
    }

    pub fn start_daemon(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("kuryr.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kuryr-server"))
            .arg("--config-file")
            .arg(self.dir.join("kuryr.conf"))
            .env("RUST_LOG", "debug,hyper_util=info,hyper=info,reqwest=info")
            .envs(self.crash_at.take().map(|at| ("KURYR_TEST_CRASH_AT", at)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start kuryr-server");
        self.daemon = Some(child);
        let start = Instant::now();
        while std::os::unix::net::UnixStream::connect(socket()).is_err() {
            if let Some(status) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("kuryr-server exited with {status}:\n{}", self.log_tail());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "kuryr-server did not listen on {}:\n{}",
                socket(),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops (SIGTERM) and starts the daemon again.
    pub fn restart_daemon(&mut self) {
        self.stop_daemon();
        self.start_daemon();
    }

    /// Whether the daemon process is gone.
    pub fn daemon_running(&mut self) -> bool {
        self.daemon
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Restarts the daemon so that it aborts at the named crash point (once: the start after
    /// that is a normal one).
    pub fn restart_crashing_at(&mut self, point: &str) {
        self.stop_daemon();
        self.crash_at = Some(point.to_string());
        self.start_daemon();
    }

    /// Waits (up to `secs`) for the daemon to exit by itself; whether it did.
    pub fn daemon_exited_within(&mut self, secs: u64) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            if let Some(c) = self.daemon.as_mut() {
                if c.try_wait().ok().flatten().is_some() {
                    self.daemon = None;
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Restarts the daemon with port pools on (the defaults) or off.
    pub fn set_pools(&mut self, on: bool) {
        self.reconfigure(|s| s.pools = on);
    }

    /// Restarts the daemon with `[vif_pool] pre_plug` on (the default) or off.
    pub fn set_pre_plug(&mut self, on: bool) {
        self.reconfigure(|s| s.pre_plug = on);
    }

    /// Restarts the daemon with these `[DEFAULT]` and `[neutron]` lines added (empty: none).
    pub fn set_extra_config(&mut self, default: &str, neutron: &str) {
        self.reconfigure(|s| {
            s.extra_default = default.to_string();
            s.extra_neutron = neutron.to_string();
        });
    }

    /// Ports in this host's port pool on a network (free or held by a container).
    pub fn pool_ports(&self, net_id: &str) -> Vec<Value> {
        let tag = format!("kuryr.pool:{}", self.env.chassis);
        let ports = self
            .neutron
            .list("ports", &[("network_id", net_id), ("tags", &tag)]);
        for p in &ports {
            self.seen_ports
                .borrow_mut()
                .insert(p["id"].as_str().unwrap().to_string());
        }
        ports
    }

    /// A metric's value, 0 when absent.
    pub fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        metric_value(&self.scrape_metrics(), name, labels).unwrap_or(0.0)
    }

    /// SIGKILL: no clean shutdown, as in a crash.
    pub fn kill_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn stop_daemon(&mut self) {
        stop_child(self.daemon.take());
    }

    /// Whether the daemon's log (this run's) has a line containing `text`.
    pub fn log_has(&self, text: &str) -> bool {
        std::fs::read_to_string(self.dir.join("kuryr.log"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains(text))
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("kuryr.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    pub fn unique(&self, tag: &str) -> String {
        format!("kt{}-{tag}", self.run_id)
    }

    pub fn docker(&self, args: &[&str]) -> String {
        docker_cmd(args).unwrap_or_else(|e| panic!("{e}\n--- kuryr log ---\n{}", self.log_tail()))
    }

    pub fn network_create(&mut self, tag: &str, args: &[&str]) -> String {
        self.network_create_with_ipam(tag, &plugin_name(), args)
    }

    /// `ipam`: Kuryr's own (the plugin name) or Docker's (`default`).
    pub fn network_create_with_ipam(&mut self, tag: &str, ipam: &str, args: &[&str]) -> String {
        let name = self.unique(tag);
        let name_p = plugin_name();
        let mut all = vec!["network", "create", "-d", &name_p, "--ipam-driver", ipam];
        all.extend_from_slice(args);
        all.push(&name);
        self.networks.push(name.clone());
        self.docker(&all);
        name
    }

    pub fn network_rm(&mut self, name: &str) {
        self.docker(&["network", "rm", name]);
        self.networks.retain(|n| n != name);
    }

    /// A network Docker no longer has (it dropped it after a failed removal).
    pub fn forget_network(&mut self, name: &str) {
        self.networks.retain(|n| n != name);
    }

    pub fn docker_network_id(&self, name: &str) -> String {
        self.docker(&["network", "inspect", "-f", "{{.Id}}", name])
            .trim()
            .to_string()
    }

    pub fn run(&mut self, net: &str, extra: &[&str]) -> String {
        let name = self.unique(&format!("c{}", self.started));
        self.started += 1;
        self.containers.push(name.clone());
        let mut args = vec!["run", "-d", "--name", &name, "--network", net];
        args.extend_from_slice(extra);
        let image = self.env.image.clone();
        args.extend_from_slice(&[&image, "sleep", "600"]);
        self.docker(&args);
        name
    }

    /// A container on Docker's own bridge, to `docker network connect` with options (one on
    /// "none" cannot join another network; Docker 20.10 passes endpoint options only there).
    pub fn run_on_bridge(&mut self, tag: &str) -> String {
        let name = self.unique(tag);
        self.track_container(&name);
        let image = self.env.image.clone();
        self.docker(&["run", "-d", "--name", &name, &image, "sleep", "600"]);
        name
    }

    pub fn track_container(&mut self, name: &str) {
        self.containers.push(name.to_string());
    }

    pub fn rm(&mut self, name: &str) {
        self.docker(&["rm", "-f", name]);
        self.containers.retain(|c| c != name);
    }

    pub fn container_ip(&self, c: &str, net: &str) -> String {
        let f = format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}");
        self.docker(&["inspect", "-f", &f, c]).trim().to_string()
    }

    pub fn exec(&self, c: &str, cmd: &[&str]) -> Result<String, String> {
        let mut args = vec!["exec", c];
        args.extend_from_slice(cmd);
        docker_cmd(&args)
    }

    pub fn exec_ok(&self, c: &str, cmd: &[&str]) -> String {
        self.exec(c, cmd)
            .unwrap_or_else(|e| panic!("{e}\n--- kuryr log ---\n{}", self.log_tail()))
    }

    pub fn track_neutron(&mut self, resource: &str, id: &str) {
        self.neutron_resources
            .push((resource.to_string(), id.to_string()));
    }

    /// A Neutron router (cleaned up with the run) with an interface on each subnet.
    pub fn router_joining(&mut self, tag: &str, subnets: &[&str]) -> String {
        let router = self.neutron.create(
            "routers",
            serde_json::json!({"router": {"name": self.unique(tag)}}),
        );
        let rid = router["id"].as_str().unwrap().to_string();
        self.track_neutron("routers", &rid);
        self.router_interfaces(&rid, subnets, "add_router_interface");
        rid
    }

    /// Takes the router's interfaces off the subnets again.
    pub fn router_leaving(&mut self, rid: &str, subnets: &[&str]) {
        self.router_interfaces(rid, subnets, "remove_router_interface");
    }

    fn router_interfaces(&self, rid: &str, subnets: &[&str], action: &str) {
        for sub in subnets {
            self.neutron.put_action(
                &format!("routers/{rid}/{action}"),
                serde_json::json!({"subnet_id": sub}),
            );
        }
    }

    /// The one Neutron network tagged with the Docker network id.
    /// The Neutron network id of a Docker network (by its name).
    pub fn neutron_net_id(&self, net: &str) -> String {
        self.neutron_network_of(&self.docker_network_id(net))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn neutron_network_of(&self, docker_id: &str) -> Value {
        let tags = format!(
            "kuryr.net.uuid.lh:{},kuryr.net.uuid.uh:{}",
            &docker_id[..32],
            &docker_id[32..]
        );
        let nets = self.neutron.list("networks", &[("tags", &tags)]);
        assert_eq!(nets.len(), 1, "networks tagged {tags}: {nets:?}");
        if nets[0]["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("kuryr-net-")
        {
            self.seen_nets
                .borrow_mut()
                .insert(nets[0]["id"].as_str().unwrap().to_string());
        }
        nets[0].clone()
    }

    /// Ports Kuryr bound on a network.
    pub fn kuryr_ports(&self, net_id: &str) -> Vec<Value> {
        let ports = self.neutron.list(
            "ports",
            &[("network_id", net_id), ("device_owner", "compute:kuryr")],
        );
        let adopted: Vec<&String> = self.neutron_resources.iter().map(|(_, id)| id).collect();
        for p in &ports {
            let id = p["id"].as_str().unwrap().to_string();
            if !adopted.contains(&&id) {
                self.seen_ports.borrow_mut().insert(id);
            }
        }
        ports
    }

    pub fn host_has_link(&self, name: &str) -> bool {
        Path::new("/sys/class/net").join(name).exists()
    }

    pub fn ovs_has_port(&self, name: &str) -> bool {
        Command::new("ovs-vsctl")
            .args(["list-ports", "br-int"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l == name)
            })
            .unwrap_or(false)
    }

    /// Everything in Neutron (networks and ports with their tags) and on the host (links,
    /// br-int's ports) a Kuryr command could make or leave: equal before and after a scenario
    /// means nothing was left, whatever failed in between.
    pub fn footprint(&self) -> std::collections::BTreeSet<String> {
        let mut all = std::collections::BTreeSet::new();
        for r in [
            "networks",
            "subnets",
            "subnetpools",
            "ports",
            "security-groups",
        ] {
            for v in self.neutron.list(r, &[]) {
                let mut tags = tags_of(&v);
                tags.sort();
                all.insert(format!(
                    "{r}:{} {}",
                    v["id"].as_str().unwrap_or("?"),
                    tags.join(",")
                ));
            }
        }
        for e in std::fs::read_dir("/sys/class/net").unwrap().flatten() {
            all.insert(format!("link:{}", e.file_name().to_string_lossy()));
        }
        let ovs = Command::new("ovs-vsctl")
            .args(["list-ports", "br-int"])
            .output()
            .unwrap();
        for p in String::from_utf8_lossy(&ovs.stdout).lines() {
            all.insert(format!("ovs:{p}"));
        }
        all
    }

    /// After a scenario: nothing Kuryr made for this run is left in Neutron or on the host.
    pub fn assert_no_kuryr_leftovers(&self, scenario: &str) {
        for id in self.seen_nets.borrow().iter() {
            let n = self.neutron.get("networks", id);
            assert!(n.is_none(), "{scenario}: kuryr network left: {n:?}");
        }
        let ports: Vec<String> = self.seen_ports.borrow().iter().cloned().collect();
        for id in &ports {
            let p = self.neutron.get("ports", id);
            assert!(p.is_none(), "{scenario}: kuryr port left: {p:?}");
            let sgs = self.neutron.list(
                "security-groups",
                &[("name", &format!("{id}-exposed_ports"))],
            );
            assert!(
                sgs.is_empty(),
                "{scenario}: exposed-port group left: {sgs:?}"
            );
            assert!(
                !self.host_has_link(&tap_name(id)),
                "{scenario}: tap of {id} left"
            );
        }
        let pools: Vec<Value> = self
            .neutron
            .list("subnetpools", &[])
            .into_iter()
            .filter(|p| {
                p["name"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("kuryrPool-10.91.")
            })
            .collect();
        assert!(
            pools.is_empty(),
            "{scenario}: kuryr subnetpools left: {pools:?}"
        );
        let out = Command::new("ovs-vsctl")
            .args([
                "--bare",
                "--columns=external_ids",
                "find",
                "Interface",
                "external_ids:owner=kuryr",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        for id in &ports {
            assert!(
                !out.contains(id.as_str()),
                "{scenario}: ovs port of {id} left"
            );
        }
    }

    /// Removes everything the run created; never panics.
    pub fn cleanup(&mut self) {
        for c in std::mem::take(&mut self.containers) {
            let _ = docker_cmd(&["rm", "-f", &c]);
        }
        for n in std::mem::take(&mut self.networks) {
            let _ = docker_cmd(&["network", "rm", &n]);
        }
        self.stop_daemon();
        for (r, id) in std::mem::take(&mut self.neutron_resources)
            .into_iter()
            .rev()
        {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if r == "networks" {
                    // Ports a failed scenario left on it first.
                    for p in self.neutron.list("ports", &[("network_id", &id)]) {
                        if p["device_owner"]
                            .as_str()
                            .unwrap_or("")
                            .starts_with("network:")
                        {
                            continue;
                        }
                        self.neutron.delete("ports", p["id"].as_str().unwrap());
                    }
                }
                self.neutron.delete(&r, &id)
            }));
        }
        for id in std::mem::take(&mut self.created_default_pools) {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.neutron.delete("subnetpools", &id)
            }));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
