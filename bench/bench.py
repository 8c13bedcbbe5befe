#!/usr/bin/env python3
"""Side-by-side benchmark: Docker's bridge driver, the Python kuryr-libnetwork, and ours.

Runs the same workloads against each driver in turn on the local stack (see bench/run.sh, which
prepares everything and calls this), then writes docs/benchmarks/results.{md,json} and latency.png.
The kuryr daemons are started and stopped here, one at a time, and talk to Neutron through a
counting proxy (bench/neutron_proxy.py) so their Neutron requests are counted exactly. Ours runs
in up to three configurations of its port pools (`ours`, `ours-nopool`, `ours-noprep`), one at a
time, all as Docker plugin `kuryr`.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DOCKER = "/usr/bin/docker"
IMAGE = os.environ.get("KURYR_TEST_IMAGE", "kuryr-busybox")
NEUTRON = "http://127.0.0.1:9696"
PROXY_LISTEN = "127.0.0.1:9797"
PYTHON_URI = "http://127.0.0.1:23750"  # Docker caches a plugin's address per name: never change it
PYTHON_SPEC = "/etc/docker/plugins/kuryr-python.spec"
OURS_SOCK = "/run/docker/plugins/kuryr.sock"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# ours-*: the same binary and plugin name as ours, with another [vif_pool] configuration.
OURS_FAMILY = ("ours", "ours-nopool", "ours-noprep")
ALL_DRIVERS = ("bridge", "python") + OURS_FAMILY
QUICK_DRIVERS = ("bridge", "python", "ours")      # --quick without --drivers
FULL_DRIVERS = QUICK_DRIVERS + ("ours-nopool",)    # a full run without --drivers: what pools buy
DEFAULT_SCALE_DRIVERS = ("bridge", "ours", "ours-nopool")  # the Python original is too slow for 200
LABELS = {"bridge": "Docker bridge", "python": "Python kuryr-libnetwork 18.0.0", "ours": "kuryr-rs (ours)",
          "ours-nopool": "kuryr-rs, pools off (ours-nopool)",
          "ours-noprep": "kuryr-rs, pools without pre-plug (ours-noprep)"}
SHORT = {"bridge": "bridge", "python": "Python", "ours": "ours", "ours-nopool": "ours-nopool",
         "ours-noprep": "ours-noprep"}
# The [vif_pool] section each variant of ours gets; None leaves the daemon's defaults (pools on,
# pre-plug on, ports_pool_min 5, max 20, batch 10, update frequency 20 s).
VIF_POOL = {"ours": None, "ours-nopool": {"enabled": "false"}, "ours-noprep": {"pre_plug": "false"}}
# Distinct address space per driver so nothing collides with each other or with other users.
SUBNET_PREFIX = {"bridge": "10.241", "python": "10.242", "ours": "10.243", "ours-nopool": "10.244",
                 "ours-noprep": "10.245"}
# Third octets of the /24s: 1 warm-up, 10.. network create/rm and cold runs (one at a time),
# 246-248 the RSS networks, 250 the main network, 252-255 the scale network (a /22).
NET_OCTET0 = 10
RSS_NET_OCTETS = (246, 247, 248)
MAIN_NET_OCTET = 250
SCALE_NET_OCTET, SCALE_NET_PLEN = 252, 22
SCALE_MAX = 900  # the /22 has 1021 addresses; the pool and Neutron's own ports need some
SETTLE_CPU_MS = 20.0  # "quiet" also means the daemon used at most this much CPU in the quiet window
WORKLOADS = [
    ("network_create", "docker network create"),
    ("network_rm", "docker network rm"),
    ("network_rm_used", "docker network rm after one container (drains its pool)"),
    ("run_rm", "docker run --rm IMAGE true (warm)"),
    ("run_rm_cold", "docker run --rm, first on a new network (cold)"),
    ("run_rm_scale", "docker run --rm, --scale containers running"),
    ("connect", "docker network connect"),
    ("disconnect", "docker network disconnect"),
    ("pod_run", "pod sandbox start, containerd CRI RunPodSandbox (CNI ADD; warm)"),
    ("pod_stop", "pod sandbox stop, containerd CRI StopPodSandbox (CNI DEL)"),
]
# The pod workload: pods through containerd's CRI, Kuryr's CNI plugin (ours, pools on) against
# the reference `bridge` CNI plugin (host-local IPAM) on the same containerd, both in ours' turn.
POD_CONFLIST = "00-kuryr-bench.conflist"
POD_BRIDGE_OCTET = 200
POD_BRIDGE = "kbcni0"  # the bridge plugin's bridge; the pod workload removes it when done
POD_BLOCK = 5  # pods per block; ours' and the bridge plugin's blocks alternate
CHART_LABELS = {"network_create": "network create", "network_rm": "network rm",
                "network_rm_used": "network rm\n(after use)", "run_rm": "run --rm\n(warm)",
                "run_rm_cold": "run --rm\n(cold: new net)", "run_rm_scale": "run --rm\n(N running)",
                "connect": "network connect", "disconnect": "network disconnect",
                "pod_run": "pod start\n(CRI, warm)", "pod_stop": "pod stop\n(CRI)"}
TARGETS = {
    # against the Python original
    "run_rm_ratio_max": 0.5,
    "neutron_lifecycle_reduction_min": 1.5,
    "idle_rss_mb_max": 15.0,
    "burst50_failures_max": 0,
    # the port-pool issue: against Docker's bridge driver and absolute
    "run_rm_bridge_ratio_max": 1.3,
    "burst50_throughput_bridge_min": 0.7,
    "network_create_requests_max": 3,
    "network_rm_requests_max": 4,
    "scale_ratio_max": 1.2,
    "rss_pools3_mb_max": 15.0,
    # the CNI issue: a pod sandbox start through containerd, against the bridge CNI plugin
    "pod_run_bridge_ratio_max": 1.3,
}


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class BenchError(Exception):
    pass


def sh(*args, check=True, timeout=600):
    """Runs a command; returns (rc, stdout, stderr, elapsed ms)."""
    t0 = time.monotonic()
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    ms = (time.monotonic() - t0) * 1000.0
    if check and p.returncode != 0:
        raise BenchError("%s failed (rc %d): %s" % (" ".join(args), p.returncode, p.stderr.strip()[-500:]))
    return p.returncode, p.stdout, p.stderr, ms


def docker(*args, check=True, timeout=600):
    return sh(DOCKER, *args, check=check, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# statistics


def quantile(xs, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    s = sorted(xs)
    if not s:
        return None
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarize(xs):
    if not xs:
        return None
    return {
        "n": len(xs),
        "median": statistics.median(xs),
        "p90": quantile(xs, 0.9),
        "min": min(xs),
        "max": max(xs),
    }


# ---------------------------------------------------------------------------------------------
# process metrics


def proc_children(pid):
    """All live descendants of pid."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            kids = []
        out.extend(kids)
        todo.extend(kids)
    return out


def status_kb(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid):
    """RSS of the daemon plus any live children (helpers it spawned)."""
    return sum(status_kb(p, "VmRSS") for p in [pid] + proc_children(pid))


def peak_kb(pid):
    """VmHWM of the daemon plus any live children (an upper bound if they peaked apart)."""
    return sum(status_kb(p, "VmHWM") for p in [pid] + proc_children(pid))


def cpu_ms(pid):
    """utime+stime of the daemon and its live children, plus the children it has already waited
    for (cutime+cstime: the plug scripts and ovs-vsctl runs)."""
    ticks, seen = 0, False
    for p in [pid] + proc_children(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seen = True
        # fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14..17
        ticks += sum(int(x) for x in fields[11:15])
    return ticks * 1000.0 / CLK_TCK if seen else None


# ---------------------------------------------------------------------------------------------
# the counting proxy


class Proxy:
    def __init__(self, workdir):
        self.log_path = os.path.join(workdir, "neutron-proxy.log")
        self.proc = None

    def start(self):
        open(self.log_path, "w").close()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "neutron_proxy.py"), "--listen", PROXY_LISTEN,
             "--upstream", NEUTRON.split("//")[1], "--log", self.log_path],
            stdout=subprocess.DEVNULL, stderr=open(self.log_path + ".err", "w"))
        host, port = PROXY_LISTEN.rsplit(":", 1)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise BenchError("the counting proxy did not start (see %s.err)" % self.log_path)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def mark(self):
        # A reply is logged right after it is sent; give a line in flight time to land.
        time.sleep(0.02)
        return os.path.getsize(self.log_path)

    def lines_since(self, offset):
        with open(self.log_path) as f:
            f.seek(offset)
            data = f.read()
        out = []
        for line in data.splitlines():
            parts = line.split("\t")
            if len(parts) in (6, 7):
                out.append({"method": parts[1], "path": parts[2], "status": int(parts[3]),
                            "upstream_ms": float(parts[4]), "proxy_ms": float(parts[5]),
                            "created": [x for x in (parts[6] if len(parts) == 7 else "").split(",") if x]})
        return out


def count(lines):
    by = {}
    for ln in lines:
        by[ln["method"]] = by.get(ln["method"], 0) + 1
    return {"total": len(lines), "by_method": by,
            "neutron_ms": round(sum(ln["upstream_ms"] for ln in lines), 1),
            "errors": sum(1 for ln in lines if ln["status"] >= 500)}


# ---------------------------------------------------------------------------------------------
# drivers


def kuryr_conf(path, extra_default, wait_active, chassis, log_file, extra_sections=""):
    vif = ("vif_plugging_is_fatal = True\nvif_plugging_timeout = 30\n" if wait_active
           else "vif_plugging_is_fatal = False\nvif_plugging_timeout = 0\n")
    with open(path, "w") as f:
        f.write("""[DEFAULT]
%scapability_scope = local
process_external_connectivity = False
log_file = %s

[neutron]
auth_type = none
endpoint = http://%s
default_subnetpool_v4 = kuryr
default_subnetpool_v6 = kuryr6
%s
[binding]
default_driver = kuryr.lib.binding.drivers.veth
host_id = %s
%s""" % (extra_default, log_file, PROXY_LISTEN, vif, chassis, extra_sections))


class Driver:
    """Docker's built-in bridge: no daemon of its own."""
    name = "bridge"
    net_driver = "bridge"
    ipam_driver = None

    def __init__(self, args, workdir):
        self.args, self.workdir = args, workdir
        self.pid = None

    def start(self):
        return None

    def stop(self):
        pass


class DaemonDriver(Driver):
    plugin = None

    def command(self, conf):
        raise NotImplementedError

    def activated(self):
        raise NotImplementedError

    def prepare(self):
        pass

    def extra_sections(self):
        return ""

    def start(self):
        self.prepare()
        conf = os.path.join(self.workdir, "%s.conf" % self.name)
        logf = os.path.join(self.workdir, "%s.log" % self.name)
        open(logf, "w").close()
        kuryr_conf(conf, self.extra_default(), self.args.wait_active, self.args.chassis, logf,
                   self.extra_sections())
        self.out = open(os.path.join(self.workdir, "%s.out" % self.name), "w")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.command(conf), stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 60
        while not self.activated():
            if self.proc.poll() is not None:
                raise BenchError("%s exited with %d at start (see %s and %s)"
                                 % (self.name, self.proc.returncode, logf, self.out.name))
            if time.monotonic() > deadline:
                raise BenchError("%s did not answer Plugin.Activate within 60 s" % self.name)
            time.sleep(0.02)
        return (time.monotonic() - t0) * 1000.0

    def stop(self):
        if getattr(self, "proc", None) and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class PythonDriver(DaemonDriver):
    name = "python"
    net_driver = ipam_driver = "kuryr-python"

    def extra_default(self):
        return "bindir = %s/libexec/kuryr\nkuryr_uri = %s\n" % (self.args.python_venv, PYTHON_URI)

    def prepare(self):
        if self.activated():
            raise BenchError("something already answers on %s: stop it first" % PYTHON_URI)
        os.makedirs(os.path.dirname(PYTHON_SPEC), exist_ok=True)
        # Remember across rounds whether the file was ours to remove at the end.
        self.spec_created = getattr(self, "spec_created", False) or not os.path.exists(PYTHON_SPEC)
        with open(PYTHON_SPEC, "w") as f:
            f.write(PYTHON_URI + "\n")

    def command(self, conf):
        return [os.path.join(self.args.python_venv, "bin", "kuryr-server"), "--config-file", conf]

    def activated(self):
        try:
            req = urllib.request.Request(PYTHON_URI + "/Plugin.Activate", data=b"{}", method="POST")
            with urllib.request.urlopen(req, timeout=1) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False


class OursDriver(DaemonDriver):
    """Ours, in one of its [vif_pool] configurations (VIF_POOL); always plugin `kuryr`."""
    name = "ours"
    net_driver = ipam_driver = "kuryr"

    def __init__(self, args, workdir, variant="ours"):
        super().__init__(args, workdir)
        self.name = variant

    def extra_default(self):
        return ""

    def cni_socket(self):
        return os.path.join(self.workdir, "%s-cni.sock" % self.name)

    def extra_sections(self):
        # The CNI front end is on for every variant: the pod workload uses it.
        cni = "\n[cni_daemon]\nenabled = true\nsocket_path = %s\n" % self.cni_socket()
        opts = VIF_POOL[self.name]
        if opts is None:
            return cni
        return cni + "\n[vif_pool]\n" + "".join("%s = %s\n" % kv for kv in opts.items())

    def prepare(self):
        if not os.access(self.args.ours_bin, os.X_OK):
            raise BenchError("%s is missing: build it with cargo build --release -p kuryr-libnetwork"
                             % self.args.ours_bin)
        if self.activated():
            raise BenchError("another kuryr-server already answers on %s: stop it first" % OURS_SOCK)

    def command(self, conf):
        return [self.args.ours_bin, "--config-file", conf]

    def activated(self):
        # Plugin.Activate over the unix socket, the way Docker asks.
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                s.connect(OURS_SOCK)
                s.sendall(b"POST /Plugin.Activate HTTP/1.1\r\nHost: kuryr\r\nContent-Length: 2\r\n"
                          b"Connection: close\r\n\r\n{}")
                return s.recv(64).split(b" ")[1:2] == [b"200"]
        except (OSError, IndexError):
            return False


def make_driver(name, args, workdir):
    if name in OURS_FAMILY:
        return OursDriver(args, workdir, name)
    return {"bridge": Driver, "python": PythonDriver}[name](args, workdir)


# ---------------------------------------------------------------------------------------------
# one driver's run


class Acc:
    """One driver's raw measurements, pooled over all rounds."""

    def __init__(self, name):
        self.name = name
        self.samples = {}   # workload -> [ms]
        self.neutron = {}   # workload -> [count() dict per op, with cpu_ms]
        self.phase = {}     # workload -> [count() dict per phase until quiet, with cpu_ms and ops]
        self.bursts = {}    # n -> [burst rep dicts]
        self.scale = []     # one dict per round
        self.daemon = []    # one dict per round
        self.errors, self.cleanup_errors, self.leaks = [], [], []
        self.docker_stale_networks = []
        self.net_ids = []   # every Docker network id created, for the Neutron leak check
        self.port_ids = set()  # every Neutron port the daemon created (from the proxy), ditto


class Run:
    """One round of one driver: start its daemon, run every workload, clean up, stop it."""

    def __init__(self, args, drv, proxy, run_id, acc, round_no, reps, burst_reps, peers):
        self.args, self.drv, self.proxy, self.acc = args, drv, proxy, acc
        # The other drivers' accumulators: the pod workload times the bridge plugin's pods
        # in ours' turn.
        self.peers = peers
        self.reps, self.burst_reps = reps, burst_reps
        self.prefix = "kb-%s-%s-r%d" % (run_id, drv.name, round_no)
        self.label = "kuryr-bench=%s" % run_id

    # --- helpers ---

    def counted(self):
        return self.drv.pid is not None

    def cpu(self):
        return cpu_ms(self.drv.pid) if self.counted() else None

    def net_create(self, name, octet, plen=24):
        base = "%s.%d" % (SUBNET_PREFIX[self.drv.name], octet)
        cmd = ["network", "create", "-d", self.drv.net_driver, "--label", self.label,
               "--subnet", "%s.0/%d" % (base, plen), "--gateway", base + ".1"]
        if self.drv.ipam_driver:
            cmd += ["--ipam-driver", self.drv.ipam_driver]
        _, out, _, ms = docker(*cmd, name)
        self.acc.net_ids.append(out.strip())
        return ms

    def net_rm(self, name):
        return docker("network", "rm", name)[3]

    def timed_op(self, key, fn):
        mark = self.proxy.mark() if self.counted() else None
        c0 = self.cpu()
        ms = fn()
        self.acc.samples.setdefault(key, []).append(ms)
        if mark is not None:
            c = count(self.proxy.lines_since(mark))
            c["cpu_ms"] = self.cpu() - c0
            self.acc.neutron.setdefault(key, []).append(c)
        return ms

    def phase_start(self):
        """Start of a phase whose Neutron requests are counted until the daemon is quiet again:
        unlike timed_op's window, this includes background work (pool refill and recycling)."""
        return (self.proxy.mark(), self.cpu()) if self.counted() else None

    def phase_end(self, key, start, ops):
        """Call after settle(): every request since phase_start, attributed to `ops` operations."""
        if start is None:
            return None
        c = count(self.proxy.lines_since(start[0]))
        c["cpu_ms"] = self.cpu() - start[1]
        c["ops"] = ops
        self.acc.phase.setdefault(key, []).append(c)
        return c

    def docker_run_rm(self, net):
        return docker(*self.run_cmd(net)[1:])[3]

    # --- workloads ---

    def wl_rss_pools(self, d):
        """Idle RSS with pools on 3 networks: one container on each (which fills its pool), then
        quiet. For the Python original and ours-nopool: idle RSS after the same work."""
        nets = []
        for k, octet in enumerate(RSS_NET_OCTETS):
            name = "%s-rss%d" % (self.prefix, k)
            self.net_create(name, octet)
            nets.append(name)
            self.docker_run_rm(name)
        self.settle()
        time.sleep(1.0)  # as for the idle reading
        d["rss_pools3_kb"] = rss_kb(self.drv.pid)
        for name in nets:
            self.net_rm(name)

    def wl_network(self):
        # Warm-up (not measured): the first use activates the plugin in Docker.
        self.net_create(self.prefix + "-warm", 1)
        self.net_rm(self.prefix + "-warm")
        for i in range(self.reps):
            name = "%s-net%d" % (self.prefix, i)
            self.timed_op("network_create", lambda: self.net_create(name, NET_OCTET0 + i))
            self.timed_op("network_rm", lambda: self.net_rm(name))

    def run_cmd(self, net):
        return [DOCKER, "run", "--rm", "--network", net, "--label", self.label, IMAGE, "true"]

    def wl_run(self, net):
        """Warm pool: the first container on the network starts the pool's refill; the reps start
        once the daemon is quiet, i.e. the pool is full."""
        self.docker_run_rm(net)  # warm-up: first container on the network
        self.settle()
        ph = self.phase_start()
        for _ in range(self.reps):
            self.timed_op("run_rm", lambda: self.docker_run_rm(net))
        self.settle()
        self.phase_end("run_rm", ph, self.reps)

    def wl_cold(self):
        """Cold pool: each rep times the first `docker run --rm` on a network just created; the
        network is removed (after the daemon is quiet: a full pool to drain) before the next."""
        for i in range(self.reps):
            name = "%s-cold%d" % (self.prefix, i)
            self.net_create(name, NET_OCTET0 + i)
            ph = self.phase_start()
            self.timed_op("run_rm_cold", lambda: self.docker_run_rm(name))
            self.settle()
            self.phase_end("run_rm_cold", ph, 1)
            self.timed_op("network_rm_used", lambda: self.net_rm(name))

    def wl_connect(self, net):
        holder = self.prefix + "-holder"
        docker("run", "-d", "--name", holder, "--label", self.label, IMAGE, "sleep", "3600")
        docker("network", "connect", net, holder)  # warm-up
        docker("network", "disconnect", net, holder)
        for _ in range(self.reps):
            self.timed_op("connect", lambda: docker("network", "connect", net, holder)[3])
            self.timed_op("disconnect", lambda: docker("network", "disconnect", net, holder)[3])
        docker("rm", "-f", holder)

    def pod_conflist(self, plugin_of, net):
        """(CNI configuration, address prefix its pods get) for `plugin_of`'s pods: Kuryr's on
        the main network's Neutron network (its pool is warm by now), or the bridge plugin."""
        if plugin_of == "bridge":
            base = "%s.%d" % (SUBNET_PREFIX["bridge"], POD_BRIDGE_OCTET)
            plugin = {"type": "bridge", "bridge": POD_BRIDGE, "isGateway": True, "ipMasq": False,
                      "ipam": {"type": "host-local", "subnet": base + ".0/24",
                               "dataDir": os.path.join(self.args.workdir, "host-local")}}
        else:
            _, did, _, _ = docker("network", "inspect", "-f", "{{.Id}}", net)
            did = did.strip()
            tags = "kuryr.net.uuid.lh:%s,kuryr.net.uuid.uh:%s" % (did[:32], did[32:])
            nets = neutron_get("/v2.0/networks?tags=" + tags)["networks"]
            if len(nets) != 1:
                raise BenchError("no single Neutron network for %s: %s" % (net, nets))
            base = "%s.%d" % (SUBNET_PREFIX[self.drv.name], MAIN_NET_OCTET)
            plugin = {"type": "kuryr-cni", "neutron_network": nets[0]["id"],
                      "daemon_socket": self.drv.cni_socket()}
        conf = {"cniVersion": "1.0.0", "name": "kuryr-bench-" + plugin_of, "plugins": [plugin]}
        return conf, base + "."

    def pod_block(self, conf, prefix, n, acc):
        """n timed pods (after one warm-up, which also waits for containerd to load `conf`)."""
        path = os.path.join(self.args.cni_conf_dir, POD_CONFLIST)
        with open(path, "w") as f:
            json.dump(conf, f)
        try:
            rc, out, err, _ = sh(self.args.cri_pods_bin, self.args.cri_socket, str(n), prefix, "1",
                                 check=False, timeout=600)
            if rc:
                raise BenchError("pod workload failed: %s" % err.strip()[-300:])
            got = json.loads(out)
            acc.samples.setdefault("pod_run", []).extend(got["run_ms"])
            acc.samples.setdefault("pod_stop", []).extend(got["stop_ms"])
        finally:
            os.unlink(path)

    def wl_pods(self, net, bridge_acc):
        """Ours' pods and the bridge plugin's in alternating blocks of POD_BLOCK, in this turn:
        the machine's speed drifts with the pod churn itself (the kernel's namespace clean-up,
        containerd), so pods timed in separate turns compare badly. The bridge plugin needs no
        daemon; its samples go to the bridge driver (`bridge_acc`, None when not in the run)."""
        # After the bursts: their ports' recycling and tidying must not run (and load Neutron
        # and the CPU) during the pods, which the bridge plugin's pods never meet.
        self.settle()
        ours = self.pod_conflist(self.drv.name, net)
        bridge = self.pod_conflist("bridge", net) if bridge_acc is not None else None
        start = self.phase_start()
        blocks = -(-self.reps // POD_BLOCK)
        for i in range(blocks):
            n = min(POD_BLOCK, self.reps - i * POD_BLOCK)
            pair = [(ours, self.acc), (bridge, bridge_acc)]
            if i % 2:
                pair.reverse()
            for (conf, prefix), acc in [(c, a) for c, a in pair if c is not None]:
                self.pod_block(conf, prefix, n, acc)
        self.settle()
        # Ours' warm-ups and timed pods: every Neutron request of theirs, background included.
        self.phase_end("pod_run", start, self.reps + blocks)
        if bridge is not None:
            # Its pods are gone; the bridge the plugin made for them is the bench's to remove.
            sh("ip", "link", "del", POD_BRIDGE, check=False)

    def one_burst(self, net, n):
        results = [None] * n
        barrier = threading.Barrier(n + 1)

        def worker(i):
            barrier.wait()
            t0 = time.monotonic()
            try:
                p = subprocess.run(self.run_cmd(net), capture_output=True, text=True, timeout=600)
                ok, err = p.returncode == 0, p.stderr.strip()[-300:]
            except subprocess.TimeoutExpired:
                ok, err = False, "timeout"
            results[i] = ((time.monotonic() - t0) * 1000.0, ok, err)

        # daemon threads: an interrupted burst must not keep the harness from cleaning up and exiting
        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        mark = self.proxy.mark() if self.counted() else None
        c0 = self.cpu()
        barrier.wait()
        t0 = time.monotonic()
        for t in threads:
            t.join()
        wall = (time.monotonic() - t0) * 1000.0
        c1 = self.cpu()
        failures = [r[2] for r in results if not r[1]]
        rep = {"wall_ms": round(wall, 1), "throughput_per_s": n / (wall / 1000.0),
               "failures": len(failures), "errors": sorted(set(failures))[:5],
               "per_container_ms": [round(r[0], 1) for r in results]}
        if mark is not None:
            rep["neutron"] = count(self.proxy.lines_since(mark))
            rep["cpu_ms"] = c1 - c0
        return rep

    def wl_bursts(self, net):
        for n in self.args.bursts:
            for _ in range(self.burst_reps):
                rep = self.one_burst(net, n)
                self.acc.bursts.setdefault(n, []).append(rep)
                log("  burst %d: wall %.0f ms, %.2f containers/s, %d failures"
                    % (n, rep["wall_ms"], rep["throughput_per_s"], rep["failures"]))

    def parallel(self, fn, items):
        """fn over items with --scale-parallel docker commands at a time; results in order. On an
        interrupt the queued items are dropped (the ones running finish; cleanup removes them)."""
        ex = concurrent.futures.ThreadPoolExecutor(self.args.scale_parallel)
        try:
            out = list(ex.map(fn, items))
        except BaseException:
            ex.shutdown(wait=False, cancel_futures=True)
            raise
        ex.shutdown()
        return out

    def wl_scale(self):
        """`docker run --rm` with --scale containers running on the network (started in parallel,
        --scale-parallel at a time), once the daemon is quiet; then they are removed."""
        n = self.args.scale
        net = self.prefix + "-scale"
        self.net_create(net, SCALE_NET_OCTET, SCALE_NET_PLEN)
        rec = {"n": n}
        ph = self.phase_start()
        t0 = time.monotonic()

        def start(_):
            rc, out, err, _ = docker("run", "-d", "--network", net, "--label", self.label,
                                     IMAGE, "sleep", "3600", check=False)
            return out.strip() if rc == 0 else None, err.strip()[-300:]

        started = self.parallel(start, range(n))
        rec["start_wall_ms"] = round((time.monotonic() - t0) * 1000.0, 1)
        ids = [cid for cid, _ in started if cid]
        errs = [err for cid, err in started if not cid]
        rec.update(started=len(ids), start_failures=len(errs), start_errors=sorted(set(errs))[:5])
        log("  %d/%d containers running after %.1f s%s" % (len(ids), n, rec["start_wall_ms"] / 1000,
                                                          "; errors: %s" % errs[:1] if errs else ""))
        self.settle()
        c = self.phase_end("scale_start", ph, n)
        if c:
            rec["start_neutron"] = c["total"]
        ph = self.phase_start()
        for _ in range(self.reps):
            self.timed_op("run_rm_scale", lambda: self.docker_run_rm(net))
        self.settle()
        self.phase_end("run_rm_scale", ph, self.reps)
        ph = self.phase_start()
        t0 = time.monotonic()
        removed = self.parallel(lambda cid: docker("rm", "-f", cid, check=False)[0] == 0, ids)
        rec["teardown_wall_ms"] = round((time.monotonic() - t0) * 1000.0, 1)
        rec["teardown_failures"] = removed.count(False)
        self.settle()
        c = self.phase_end("scale_teardown", ph, len(ids))
        if c:
            rec["teardown_neutron"] = c["total"]
        self.acc.scale.append(rec)
        rc, _, err, _ = docker("network", "rm", net, check=False)
        if rc:  # left to cleanup(), which knows Docker's own stale bridge endpoints
            log("%s: network rm %s failed (cleanup retries): %s" % (self.drv.name, net, err.strip()[-200:]))

    # --- the whole round ---

    def execute(self):
        name = self.drv.name
        turn_mark = self.proxy.mark()
        try:
            start_ms = self.drv.start()
            if self.counted():
                time.sleep(1.0)  # let start-up allocations settle before the idle reading
                d = {"start_ms": round(start_ms, 1), "rss_idle_kb": rss_kb(self.drv.pid)}
                self.acc.daemon.append(d)
                proxy_start = self.proxy.mark()
                log("%s: idle RSS with 3 networks used" % name)
                self.wl_rss_pools(d)
            log("%s: network create/rm x%d" % (name, self.reps))
            self.wl_network()
            net = self.prefix + "-main"
            self.net_create(net, MAIN_NET_OCTET)
            log("%s: docker run --rm x%d (warm)" % (name, self.reps))
            self.wl_run(net)
            log("%s: docker run --rm on a new network x%d (cold)" % (name, self.reps))
            self.wl_cold()
            log("%s: network connect/disconnect x%d" % (name, self.reps))
            self.wl_connect(net)
            log("%s: bursts %s x%d" % (name, self.args.bursts, self.burst_reps))
            self.wl_bursts(net)
            if self.args.pods and name == "ours":
                log("%s and bridge: pod sandbox start/stop through containerd's CRI x%d, in alternating blocks"
                    % (name, self.reps))
                self.wl_pods(net, self.peers.get("bridge"))
            if self.args.scale and name in self.args.scale_drivers:
                log("%s: docker run --rm x%d with %d containers running" % (name, self.reps, self.args.scale))
                self.wl_scale()
            if self.counted():
                d["rss_peak_kb"] = peak_kb(self.drv.pid)
                d["cpu_total_ms"] = cpu_ms(self.drv.pid)
                lines = self.proxy.lines_since(proxy_start)
                d["neutron_requests_total"] = len(lines)
                d["proxy_ms"] = [ln["proxy_ms"] for ln in lines]
        except Exception as e:  # recorded, the other drivers still run
            self.acc.errors.append("%s: %s" % (type(e).__name__, e))
            log("%s: ERROR %s" % (name, self.acc.errors[-1]))
        except BaseException:
            # Interrupted: a killed docker CLI does not cancel the work it started in dockerd
            # and the driver; let that finish so it can be cleaned up.
            log("%s: interrupted, cleaning up" % name)
            self.settle()
            raise
        finally:
            self.cleanup()
            self.settle()
            errors = self.cleanup()
            self.settle()  # e.g. a pool drained on network rm
            self.drv.stop()
            # Every port the daemon made this turn, for the leak check at the end.
            for ln in self.proxy.lines_since(turn_mark):
                self.acc.port_ids.update(ln["created"])
            if errors:
                self.acc.cleanup_errors.extend(errors)
                log("%s: cleanup errors: %s" % (name, errors))

    def settle(self, quiet_s=None, max_s=60.0):
        """Waits until the daemon has made no Neutron request and used at most SETTLE_CPU_MS of
        CPU (with its children: plug work) for quiet_s (default --settle), at most max_s."""
        quiet_s = self.args.settle if quiet_s is None else quiet_s
        if not self.counted():
            time.sleep(quiet_s)
            return True
        deadline = time.monotonic() + max_s
        size = os.path.getsize(self.proxy.log_path)
        cpu = self.cpu()
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = os.path.getsize(self.proxy.log_path)
            if now != size:
                size, cpu, quiet_since = now, self.cpu(), time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                c = self.cpu()
                if c is None or cpu is None or c - cpu <= SETTLE_CPU_MS:
                    return True
                cpu, quiet_since = c, time.monotonic()
        log("%s: not quiet after %.0f s; going on" % (self.drv.name, max_s))
        return False

    def cleanup(self):
        """Removes every container and network this run created, while the driver still runs.
        Called twice (before and after the daemon settles): the second pass catches anything whose
        creation was still in flight; its errors are the ones returned."""
        errors = []
        _, out, _, _ = docker("ps", "-aq", "--filter", "label=" + self.label, check=False)
        ids = out.split()
        if ids:
            rc, _, err, _ = docker("rm", "-f", *ids, check=False)
            if rc:
                errors.append(err.strip())
        _, out, _, _ = docker("network", "ls", "-q", "--filter", "label=" + self.label, check=False)
        stale = []
        for nid in out.split():
            rc, _, err, _ = docker("network", "rm", nid, check=False)
            if rc and "has active endpoints" in err and not self.attached(nid):
                # Docker 20.10 sometimes keeps an endpoint of a container that concurrent
                # `run --rm`s removed (any driver): no container is attached, and only a dockerd
                # restart clears it. Then the network is removed as usual, while the driver
                # still runs, so the leak check stays strict.
                stale.append(nid)
                continue
            if rc:
                errors.append(err.strip())
        if stale:
            log("%s: docker kept stale endpoints on %s (moby bug): restarting dockerd"
                % (self.drv.name, " ".join(n[:12] for n in stale)))
            self.acc.docker_stale_networks.extend(stale)
            subprocess.run(["bash", os.path.join(REPO, "stack", "stack.sh"), "restart-docker"],
                           check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for nid in stale:
                rc, _, err, _ = docker("network", "rm", nid, check=False)
                if rc:
                    errors.append(err.strip())
        return errors

    def attached(self, nid):
        """Whether any container is attached to the network, as Docker reports it."""
        rc, out, _, _ = docker("network", "inspect", "-f", "{{len .Containers}}", nid, check=False)
        return rc != 0 or out.strip() not in ("", "0")


def workload_entry(acc, key):
    xs = acc.samples.get(key, [])
    entry = {"samples_ms": [round(x, 1) for x in xs], "stats": summarize(xs)}
    per = acc.neutron.get(key)
    if per:
        totals = [c["total"] for c in per]
        by = {}
        for c in per:
            for m, n in c["by_method"].items():
                by[m] = by.get(m, 0) + n
        entry["neutron"] = {
            "per_op": totals,
            "median": statistics.median(totals),
            "mean": sum(totals) / len(totals),
            "by_method_mean": {m: n / len(per) for m, n in sorted(by.items())},
            "neutron_ms_median": statistics.median(c["neutron_ms"] for c in per),
            "server_errors": sum(c["errors"] for c in per),
        }
        entry["cpu_ms_per_op"] = sum(c["cpu_ms"] for c in per) / len(per)
    ph = acc.phase.get(key)
    if ph:
        # From the first op of a phase until the daemon was quiet after the last: background
        # pool work (refill, recycling) included, whenever it ran.
        ops = sum(c["ops"] for c in ph)
        by = {}
        for c in ph:
            for m, n in c["by_method"].items():
                by[m] = by.get(m, 0) + n
        entry["neutron_phase"] = {
            "ops": ops, "requests": sum(c["total"] for c in ph),
            "per_op": sum(c["total"] for c in ph) / ops,
            "by_method_per_op": {m: n / ops for m, n in sorted(by.items())},
            "cpu_ms_per_op": sum(c["cpu_ms"] for c in ph) / ops,
        }
    return entry


def burst_entry(n, reps):
    per = [x for r in reps for x in r["per_container_ms"]]
    entry = {"n": n, "reps": reps,
             "wall_ms": summarize([r["wall_ms"] for r in reps]),
             "throughput_per_s": summarize([r["throughput_per_s"] for r in reps]),
             "failures": sum(r["failures"] for r in reps),
             "per_container_ms": summarize(per)}
    if all("neutron" in r for r in reps):
        entry["neutron_per_container"] = sum(r["neutron"]["total"] for r in reps) / (n * len(reps))
        entry["cpu_ms_per_container"] = sum(r["cpu_ms"] for r in reps) / (n * len(reps))
    return entry


def scale_entry(acc):
    """The scale run over rounds, and its median against the same driver's empty-host run_rm."""
    recs = acc.scale
    if not recs:
        return None
    empty = get(summarize(acc.samples.get("run_rm", [])), "median")
    full = get(summarize(acc.samples.get("run_rm_scale", [])), "median")
    entry = {"n": max(r["n"] for r in recs), "rounds": len(recs),
             "started": sum(r["started"] for r in recs),
             "start_failures": sum(r["start_failures"] for r in recs),
             "start_errors": sorted({e for r in recs for e in r["start_errors"]})[:5],
             "start_wall_ms": statistics.median(r["start_wall_ms"] for r in recs),
             "teardown_wall_ms": statistics.median(r["teardown_wall_ms"] for r in recs),
             "teardown_failures": sum(r["teardown_failures"] for r in recs),
             "run_rm_empty_median_ms": empty, "run_rm_scale_median_ms": full,
             "ratio_vs_empty": ratio(full, empty), "per_round": recs}
    if all("start_neutron" in r for r in recs) and entry["started"]:
        entry["start_neutron_per_container"] = sum(r["start_neutron"] for r in recs) / sum(r["n"] for r in recs)
    return entry


def finalize(acc):
    """The per-driver result (results.json) from the pooled measurements."""
    res = {"label": LABELS[acc.name], "error": "; ".join(acc.errors) or None,
           "workloads": {k: workload_entry(acc, k) for k, _ in WORKLOADS if acc.samples.get(k)},
           "bursts": {str(n): burst_entry(n, reps) for n, reps in sorted(acc.bursts.items())},
           "scale": scale_entry(acc), "leaks": acc.leaks, "daemon": None}
    if acc.cleanup_errors:
        res["cleanup_errors"] = acc.cleanup_errors
    if acc.docker_stale_networks:
        res["docker_stale_networks"] = acc.docker_stale_networks
    rounds = acc.daemon
    if rounds:
        done = [d for d in rounds if "cpu_total_ms" in d]
        proxy_ms = [x for d in done for x in d["proxy_ms"]]
        res["daemon"] = {
            "rounds": len(rounds),
            "start_ms": statistics.median(d["start_ms"] for d in rounds),
            "rss_idle_kb": statistics.median(d["rss_idle_kb"] for d in rounds),
            "rss_pools3_kb": (statistics.median(d["rss_pools3_kb"] for d in rounds if "rss_pools3_kb" in d)
                              if any("rss_pools3_kb" in d for d in rounds) else None),
            "rss_peak_kb": max((d["rss_peak_kb"] for d in done), default=None),
            # CPU and requests add up over rounds: the daemon's whole share of the work
            "cpu_total_ms": sum(d["cpu_total_ms"] for d in done) if done else None,
            "neutron_requests_total": sum(d["neutron_requests_total"] for d in done),
            "proxy_overhead_ms_median": statistics.median(proxy_ms) if proxy_ms else None,
        }
    return res


def neutron_get(path):
    with urllib.request.urlopen(NEUTRON + path, timeout=30) as r:
        return json.load(r)


def neutron_post(path, body):
    req = urllib.request.Request(NEUTRON + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def ensure_default_subnetpools():
    # The deployer's job (kuryr expects them): same pools as stack.sh creates for `up --kuryr`.
    for name, prefix, plen in (("kuryr", "10.90.0.0/16", 24), ("kuryr6", "fd90::/48", 64)):
        if not neutron_get("/v2.0/subnetpools?name=" + name)["subnetpools"]:
            neutron_post("/v2.0/subnetpools", {"subnetpool": {"name": name, "prefixes": [prefix],
                                                              "default_prefixlen": plen}})


def find_leaks(driver, docker_net_ids, port_ids=()):
    """Neutron networks still tagged with a Docker network id this run created (and removed),
    subnetpools left over for this driver's subnets, and of the ports the daemon created (pooled or
    not): any still in Neutron, still an OVS interface (external_ids:iface-id) or a host link."""
    leaks = []
    if docker_net_ids:
        nets = neutron_get("/v2.0/networks?fields=id&fields=name&fields=tags")["networks"]
        wanted = {"kuryr.net.uuid.lh:" + i[:32] for i in docker_net_ids}
        leaks += ["network " + (n["name"] or n["id"]) for n in nets if wanted & set(n.get("tags") or [])]
    pools = neutron_get("/v2.0/subnetpools?fields=id&fields=name")["subnetpools"]
    leaks += ["subnetpool " + p["name"] for p in pools
              if p["name"].startswith("kuryrPool-%s." % SUBNET_PREFIX[driver])]
    port_ids = set(port_ids)
    if port_ids:
        left = port_ids & {p["id"] for p in neutron_get("/v2.0/ports?fields=id")["ports"]}
        leaks += ["port " + i for i in sorted(left)]
        leaks += host_leaks(port_ids)
    return leaks


def host_leaks(port_ids):
    """OVS interfaces bound to, and host links named after (<prefix><port id[:11]>, as tap…/t_c…),
    any of these ports. The stack is shared, but only this run's own port ids are looked for."""
    leaks = []
    try:
        p = subprocess.run(["ovs-vsctl", "--timeout=10", "--format=json", "--columns=name,external_ids",
                            "list", "Interface"], capture_output=True, text=True, timeout=30)
        if p.returncode:
            leaks.append("OVS check failed: %s" % p.stderr.strip()[-200:])
        else:
            for name, ext in json.loads(p.stdout)["data"]:
                ids = dict(ext[1]) if isinstance(ext, list) and ext and ext[0] == "map" else {}
                if ids.get("iface-id") in port_ids:
                    leaks.append("OVS interface %s (port %s)" % (name, ids["iface-id"]))
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired) as e:
        leaks.append("OVS check failed: %s" % e)
    try:
        out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=30).stdout
        shorts = {i[:11] for i in port_ids}
        for line in out.splitlines():
            parts = line.split(": ", 2)
            if len(parts) < 2:
                continue
            name = parts[1].split("@")[0]
            if len(name) > 11 and name[-11:] in shorts:
                leaks.append("host link %s" % name)
    except (OSError, subprocess.TimeoutExpired) as e:
        leaks.append("link check failed: %s" % e)
    return leaks


# ---------------------------------------------------------------------------------------------
# output


def machine_info(args):
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    _, dv, _, _ = docker("version", "--format", "{{.Server.Version}}", check=False)
    neutron = "unknown"
    try:
        neutron = subprocess.run([os.path.join(os.path.dirname(args.python_venv), "neutron-venv", "bin", "python"), "-c",
                                  "import importlib.metadata as m; print(m.version('neutron'))"],
                                 capture_output=True, text=True, timeout=30).stdout.strip() or neutron
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "loadavg_start": os.getloadavg()[0], "mem_gib": round(mem_kb / 1024 / 1024, 1), "cpu": cpu,
            "kernel": platform.release(), "docker": dv.strip(), "neutron": neutron}


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def fmt_ratio(r):
    return "n/a" if r is None else "%.2f" % r


def fmt_ms(x):
    return "n/a" if x is None else ("%.0f" % x if x >= 10 else "%.1f" % x)


def get(d, *path):
    for p in path:
        if d is None:
            return None
        d = d.get(p) if isinstance(d, dict) else None
    return d


def lifecycle_requests(dr):
    """Neutron requests per container lifecycle (warm run_rm): counted until the daemon was quiet
    after the last rep, so background pool work is included; the timed-window mean otherwise."""
    return get(dr, "workloads", "run_rm", "neutron_phase", "per_op") or get(dr, "workloads", "run_rm", "neutron", "mean")


def burst_tput(n):
    return lambda dr: get(dr, "bursts", str(n), "throughput_per_s", "median")


def ratio_figures(res):
    """(key, title, value function, compared with bridge?) for every ratio reported."""
    figs = [(key, title + " (median latency)", lambda dr, k=key: get(dr, "workloads", k, "stats", "median"), True)
            for key, title in WORKLOADS]
    for n in res["settings"]["bursts"]:
        figs.append(("burst_%d_wall" % n, "burst of %d, wall time (median)" % n,
                     lambda dr, n=n: get(dr, "bursts", str(n), "wall_ms", "median"), True))
        figs.append(("burst_%d_throughput" % n, "burst of %d, containers/s (median; higher is better)" % n,
                     burst_tput(n), True))
    figs += [
        ("neutron_per_lifecycle", "Neutron requests per container lifecycle (incl. background pool work)",
         lifecycle_requests, False),
        ("neutron_network_create", "Neutron requests per network create (median)",
         lambda dr: get(dr, "workloads", "network_create", "neutron", "median"), False),
        ("neutron_network_rm", "Neutron requests per network rm (median)",
         lambda dr: get(dr, "workloads", "network_rm", "neutron", "median"), False),
        ("rss_idle", "daemon RSS idle", lambda dr: get(dr, "daemon", "rss_idle_kb"), False),
        ("rss_pools3", "daemon RSS idle, 3 networks used (pools on 3 networks)",
         lambda dr: get(dr, "daemon", "rss_pools3_kb"), False),
        ("rss_peak", "daemon RSS peak", lambda dr: get(dr, "daemon", "rss_peak_kb"), False),
        ("cpu_total", "daemon CPU time, whole run", lambda dr: get(dr, "daemon", "cpu_total_ms"), False),
    ]
    return figs


def compute_summary(res):
    drv = res["drivers"]
    ours, py, br = drv.get("ours"), drv.get("python"), drv.get("bridge")
    fam = [d for d in OURS_FAMILY if d in drv]
    ratios = {}
    for key, _, fn, vs_bridge in ratio_figures(res):
        r = {}
        for d in fam:
            # keys: ours_python, ours_bridge, ours-nopool_python, ...
            r[d + "_python"] = ratio(fn(drv[d]), fn(py))
            if vs_bridge:
                r[d + "_bridge"] = ratio(fn(drv[d]), fn(br))
        if "ours" in drv and "ours-nopool" in drv:
            r["ours_ours-nopool"] = ratio(fn(ours), fn(drv["ours-nopool"]))
        ratios[key] = r
    res["ratios"] = ratios

    def target(group, short, text, value, ok):
        targets.append({"group": group, "short": short, "target": text, "value": value,
                        "pass": None if ok is None else bool(ok)})

    targets = []
    # --- against the Python original ---
    r = get(ratios, "run_rm", "ours_python")
    target("python", "docker run --rm at most half the Python original's time",
           "docker run --rm at most half the Python original's time (ours/Python <= %.2f)"
           % TARGETS["run_rm_ratio_max"], fmt_ratio(r), None if r is None else r <= TARGETS["run_rm_ratio_max"])
    o, p = lifecycle_requests(ours), lifecycle_requests(py)
    red = ratio(p, o)
    target("python", "at least %.1fx fewer Neutron requests per container lifecycle" % TARGETS["neutron_lifecycle_reduction_min"],
           "at least %.1fx fewer Neutron requests per container lifecycle, background pool work included "
           "(Python/ours)" % TARGETS["neutron_lifecycle_reduction_min"],
           "n/a" if red is None else "%.2fx (%.1f vs %.1f)" % (red, p, o),
           None if red is None else red >= TARGETS["neutron_lifecycle_reduction_min"])
    idle = get(ours, "daemon", "rss_idle_kb")
    target("python", "idle RSS at most %.0f MB" % TARGETS["idle_rss_mb_max"],
           "idle RSS at most %.0f MB" % TARGETS["idle_rss_mb_max"],
           "n/a" if idle is None else "%.1f MB" % (idle / 1024),
           None if idle is None else idle / 1024 <= TARGETS["idle_rss_mb_max"])
    f50 = get(ours, "bursts", "50", "failures")
    target("python", "zero failures in the 50-container burst", "zero failures in the 50-container burst",
           "n/a (not run)" if f50 is None else str(f50),
           None if f50 is None else f50 <= TARGETS["burst50_failures_max"])
    # --- the port-pool issue: against Docker's bridge driver, and absolute ---
    r = get(ratios, "run_rm", "ours_bridge")
    target("pools", "docker run --rm at most %.1fx bridge" % TARGETS["run_rm_bridge_ratio_max"],
           "docker run --rm (warm) median at most %.1fx Docker bridge's (ours/bridge)" % TARGETS["run_rm_bridge_ratio_max"],
           fmt_ratio(r), None if r is None else r <= TARGETS["run_rm_bridge_ratio_max"])
    r = get(ratios, "burst_50_throughput", "ours_bridge")
    leaks = None if ours is None else len(ours.get("leaks") or []) + len(ours.get("cleanup_errors") or [])
    target("pools", "burst-50 throughput at least %.1fx bridge, 0 failures, 0 leaks" % TARGETS["burst50_throughput_bridge_min"],
           "50-container burst: throughput at least %.1fx Docker bridge's (ours/bridge), 0 failures, 0 leaks"
           % TARGETS["burst50_throughput_bridge_min"],
           "n/a (not run)" if r is None else "%.2f, %d failures, %d leaks" % (r, f50, leaks or 0),
           None if r is None else (r >= TARGETS["burst50_throughput_bridge_min"] and f50 == 0 and not leaks))
    for key, wl, limit in (("network_create", "create", TARGETS["network_create_requests_max"]),
                           ("network_rm", "rm", TARGETS["network_rm_requests_max"])):
        v = get(ours, "workloads", key, "neutron", "median")
        target("pools", "network %s at most %d Neutron requests" % (wl, limit),
               "docker network %s: at most %d Neutron requests (median over reps)" % (wl, limit),
               "n/a" if v is None else "%g" % v, None if v is None else v <= limit)
    r = get(ratios, "pod_run", "ours_bridge")
    target("pools", "pod sandbox start at most %.1fx the bridge CNI plugin" % TARGETS["pod_run_bridge_ratio_max"],
           "pod sandbox start through containerd's CRI (warm pool) median at most %.1fx the bridge CNI "
           "plugin's (ours/bridge)" % TARGETS["pod_run_bridge_ratio_max"],
           fmt_ratio(r), None if r is None else r <= TARGETS["pod_run_bridge_ratio_max"])
    sc = get(ours, "scale")
    n = res["settings"].get("scale") or 0
    r = get(sc, "ratio_vs_empty")
    target("pools", "with %d running, next run at most %.1fx empty-host" % (n, TARGETS["scale_ratio_max"]),
           "with %d containers running, the next docker run --rm median at most %.1fx the empty-host median "
           "(same driver), all of them started" % (n, TARGETS["scale_ratio_max"]),
           "n/a (not run)" if r is None else "%.2f (%s vs %s ms)%s" % (
               r, fmt_ms(sc["run_rm_scale_median_ms"]), fmt_ms(sc["run_rm_empty_median_ms"]),
               ", %d failed to start" % sc["start_failures"] if sc["start_failures"] else ""),
           None if r is None else (r <= TARGETS["scale_ratio_max"] and sc["start_failures"] == 0))
    v = get(ours, "daemon", "rss_pools3_kb")
    target("pools", "idle RSS with pools on 3 networks at most %.0f MB" % TARGETS["rss_pools3_mb_max"],
           "idle RSS with pools on 3 networks at most %.0f MB" % TARGETS["rss_pools3_mb_max"],
           "n/a" if v is None else "%.1f MB" % (v / 1024), None if v is None else v / 1024 <= TARGETS["rss_pools3_mb_max"])
    res["targets"] = targets


def pass_text(t):
    return "n/a" if t["pass"] is None else ("PASS" if t["pass"] else "FAIL")


def fmt_count(x):
    return "n/a" if x is None else ("%d" % x if float(x).is_integer() else "%.1f" % x)


def write_markdown(res, path):
    s, m, drv = res["settings"], res["machine"], res["drivers"]
    names = [d for d in ALL_DRIVERS if d in drv]
    fam = [d for d in OURS_FAMILY if d in drv]
    L = []
    L.append("# Benchmark results: bridge vs Python kuryr-libnetwork vs kuryr-rs\n")
    L.append("Generated by `./dev.sh bench%s` on %s (run `%s`); method in [README.md](README.md).\n"
             % ("".join(" " + a for a in s["argv"]), res["date"], res["run_id"]))
    L.append("Machine: %d cores (%s), %.1f GiB RAM, kernel %s. Docker %s, Neutron %s (ML2/OVN, noauth).\n"
             % (m["nproc"], m["cpu"], m["mem_gib"], m["kernel"], m["docker"], m["neutron"]))
    L.append("1-minute load average at start / end: %.2f / %.2f (other work on the machine skews "
             "absolute times; the ratios within one run are what carries over).\n"
             % (m["loadavg_start"], m.get("loadavg_end", 0)))
    L.append("Settings: %d reps per operation (plus one unmeasured warm-up per round), bursts %s x%d, "
             "in %d round(s) (driver order reversed every other round, each kuryr daemon restarted per round), "
             "vif plugging: %s (both kuryr daemons), kuryr daemons talk to Neutron through a counting "
             "proxy, drivers run one at a time.\n"
             % (s["reps"], ", ".join(str(b) for b in s["bursts"]), s["burst_reps"], s["rounds"],
                "wait for ACTIVE (`vif_plugging_is_fatal = True`)" if s["wait_active"]
                else "do not wait for ACTIVE (`vif_plugging_is_fatal = False`, the Python default)"))
    if fam:
        L.append("Ours, one configuration at a time (same binary, plugin `kuryr`): %s.\n" % "; ".join(
            "%s: %s" % (d, "`[vif_pool]` defaults (pools on, pre-plug on)" if VIF_POOL[d] is None else
                        "`[vif_pool] %s`" % ", ".join("%s = %s" % kv for kv in VIF_POOL[d].items()))
            for d in fam))
    sd = [d for d in names if d in s.get("scale_drivers", [])]
    L.append("Scale run: %s.\n" % ("%d containers running (`sleep 3600`, started %d at a time) for %s"
                                   % (s["scale"], s["scale_parallel"], ", ".join(SHORT[d] for d in sd))
                                   if s.get("scale") and sd else "not run"))
    for d in names:
        if drv[d].get("error"):
            L.append("**%s did not complete:** `%s`\n" % (LABELS[d], drv[d]["error"]))
        if drv[d].get("leaks"):
            L.append("**%s left resources behind:** %s\n" % (LABELS[d], ", ".join("`%s`" % x for x in drv[d]["leaks"][:20])))

    L.append("## Targets (ours)\n")
    for group, title in (("pools", "Port-pool issue: against Docker's bridge driver, and absolute"),
                         ("python", "Against the Python original")):
        L.append("%s:\n" % title)
        L.append("| target | value | result |\n|---|---|---|")
        for t in res["targets"]:
            if t["group"] == group:
                L.append("| %s | %s | %s |" % (t["target"], t["value"], pass_text(t)))
        L.append("")

    L.append("## Latency per operation (ms)\n")
    L.append("| operation | driver | median | p90 | min | max | Neutron req/op (timed window) | Neutron time/op | daemon CPU/op |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for key, title in WORKLOADS:
        for d in names:
            w = get(drv[d], "workloads", key)
            st = get(w, "stats")
            if not st:
                continue
            nreq = get(w, "neutron", "mean")
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                title.replace("--scale", str(s.get("scale"))), LABELS[d], fmt_ms(st["median"]), fmt_ms(st["p90"]),
                fmt_ms(st["min"]), fmt_ms(st["max"]),
                "0" if d == "bridge" else ("n/a" if nreq is None else "%.1f" % nreq),
                "-" if d == "bridge" else fmt_ms(get(w, "neutron", "neutron_ms_median")),
                "in dockerd" if d == "bridge" else fmt_ms(get(w, "cpu_ms_per_op"))))
    L.append("")
    L.append("Neutron req/op counts the requests made while the operation ran; with pools that window also "
             "catches background pool work (refill, recycling of a released port) that happened to run then, "
             "and misses what ran after: see the next table for the whole cost. Neutron time/op is the median "
             "time Neutron itself took to answer the daemon's requests in that window (measured at the proxy); "
             "daemon CPU/op is user+system CPU of the daemon and its children per operation. Cold: each rep "
             "creates a network (untimed), times the first `docker run --rm` on it, waits until the daemon is "
             "quiet and times `docker network rm` (\"after one container\").\n")

    L.append("## Neutron requests per container lifecycle, background pool work included\n")
    L.append("Counted from the first rep until the daemon was quiet again after the last (no request and "
             "no CPU for %g s), divided by the reps: pool refill, recycling and pre-plug included, "
             "whenever they ran.\n" % s.get("settle", 2.0))
    L.append("| driver | warm `run --rm`: in timed window | warm: whole cost | by method (whole cost) | "
             "cold (first on a new network): in timed window | cold: until quiet, pool fill included | "
             "with N running: whole cost |")
    L.append("|---|---|---|---|---|---|---|")
    for d in names:
        if d == "bridge":
            continue
        w = get(drv[d], "workloads")
        if not w:
            continue

        def ph(key, field="per_op"):
            v = get(w, key, "neutron_phase", field)
            return "n/a" if v is None else "%.1f" % v
        by = get(w, "run_rm", "neutron_phase", "by_method_per_op") or {}
        L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            LABELS[d], fmt_count(get(w, "run_rm", "neutron", "mean")), ph("run_rm"),
            ", ".join("%s %.1f" % kv for kv in by.items()) or "-",
            fmt_count(get(w, "run_rm_cold", "neutron", "mean")), ph("run_rm_cold"), ph("run_rm_scale")))
    L.append("")

    L.append("## Neutron requests per network operation\n")
    L.append("| driver | network create (median / max) | network rm, empty (median / max) | "
             "network rm after one container (median / max) |")
    L.append("|---|---|---|---|")
    for d in names:
        if d == "bridge":
            continue

        def mm(key):
            per = get(drv[d], "workloads", key, "neutron", "per_op")
            return "n/a" if not per else "%s / %d" % (fmt_count(statistics.median(per)), max(per))
        L.append("| %s | %s | %s | %s |" % (LABELS[d], mm("network_create"), mm("network_rm"), mm("network_rm_used")))
    L.append("")

    if any(get(drv[d], "scale") for d in names):
        L.append("## With containers already running\n")
        L.append("`docker run --rm` on a network with N containers running (`sleep 3600`), against the same "
                 "driver's warm `docker run --rm` on an empty host.\n")
        L.append("| driver | N running | started in (s) | failed to start | `run --rm` median with N (ms) | "
                 "empty host (ms) | with N / empty | Neutron req per started container | removed in (s) |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for d in names:
            sc = get(drv[d], "scale")
            if not sc:
                continue
            nq = sc.get("start_neutron_per_container")
            L.append("| %s | %d | %.1f | %d | %s | %s | %s | %s | %.1f |" % (
                LABELS[d], sc["n"], sc["start_wall_ms"] / 1000, sc["start_failures"],
                fmt_ms(sc["run_rm_scale_median_ms"]), fmt_ms(sc["run_rm_empty_median_ms"]),
                fmt_ratio(sc["ratio_vs_empty"]), "0" if d == "bridge" else ("n/a" if nq is None else "%.1f" % nq),
                sc["teardown_wall_ms"] / 1000))
        L.append("")

    L.append("## Concurrent `docker run --rm` bursts\n")
    L.append("| burst | driver | wall median (ms) | wall max (ms) | containers/s (median) | x bridge | failures | "
             "per-container median / p90 (ms) | Neutron req/container |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for n in s["bursts"]:
        bt = burst_tput(n)(drv.get("bridge"))
        for d in names:
            b = get(drv[d], "bursts", str(n))
            if not b:
                continue
            nq = b.get("neutron_per_container")
            L.append("| %d | %s | %s | %s | %.2f | %s | %d / %d | %s / %s | %s |" % (
                n, LABELS[d], fmt_ms(b["wall_ms"]["median"]), fmt_ms(b["wall_ms"]["max"]),
                b["throughput_per_s"]["median"], "-" if d == "bridge" else fmt_ratio(ratio(b["throughput_per_s"]["median"], bt)),
                b["failures"], n * len(b["reps"]),
                fmt_ms(b["per_container_ms"]["median"]), fmt_ms(b["per_container_ms"]["p90"]),
                "0" if d == "bridge" else ("n/a" if nq is None else "%.1f" % nq)))
    L.append("")

    L.append("## Daemon footprint\n")
    L.append("Start-up and idle RSS: median over rounds; peak: the highest round; CPU time and Neutron "
             "requests: summed over rounds. \"3 networks used\": idle (quiet) after one container on each of "
             "3 new networks, so with ours' pools on those 3 networks full.\n")
    L.append("| driver | start to Plugin.Activate (ms) | RSS idle (MB) | RSS idle, 3 networks used (MB) | "
             "RSS peak, VmHWM (MB) | CPU time, whole run (s) | Neutron requests, whole run | proxy overhead/request (ms) |")
    L.append("|---|---|---|---|---|---|---|---|")
    for d in names:
        dm = drv[d].get("daemon")
        if d == "bridge":
            L.append("| %s | n/a (inside dockerd) | n/a | n/a | n/a | n/a | 0 | - |" % LABELS[d])
        elif dm:
            mb = lambda k: "n/a" if dm.get(k) is None else "%.1f" % (dm[k] / 1024)  # noqa: E731
            cpu = dm.get("cpu_total_ms")
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                LABELS[d], fmt_ms(dm.get("start_ms")), mb("rss_idle_kb"), mb("rss_pools3_kb"), mb("rss_peak_kb"),
                "n/a" if cpu is None else "%.2f" % (cpu / 1000), dm.get("neutron_requests_total", "n/a"),
                "n/a" if dm.get("proxy_overhead_ms_median") is None else "%.2f" % dm["proxy_overhead_ms_median"]))
    L.append("")

    cols = ([(d, "python", "%s / Python" % SHORT[d]) for d in fam if "python" in drv]
            + [(d, "bridge", "%s / bridge" % SHORT[d]) for d in fam if "bridge" in drv])
    if "ours" in drv and "ours-nopool" in drv:
        cols.append(("ours", "ours-nopool", "ours / ours-nopool"))
    if cols:
        L.append("## Ratios\n")
        L.append("Below 1 means the kuryr-rs configuration is faster / smaller / makes fewer requests (except "
                 "containers/s, where higher is better). All from this run.\n")
        L.append("| figure | %s |" % " | ".join(c[2] for c in cols))
        L.append("|---|" + "---|" * len(cols))
        for key, title, _, _ in ratio_figures(res):
            r = res["ratios"][key]
            if all(r.get("%s_%s" % (a, b)) is None for a, b, _ in cols):
                continue
            L.append("| %s | %s |" % (title.replace("--scale", str(s.get("scale"))),
                                      " | ".join(fmt_ratio(r.get("%s_%s" % (a, b))) if ("%s_%s" % (a, b)) in r else "-"
                                                 for a, b, _ in cols)))
        L.append("")
    L.append("![latency](latency.png)\n")
    with open(path, "w") as f:
        f.write("\n".join(L))


def write_chart(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is missing: no chart (run via bench/run.sh, which provides it)")
        return False
    drv = res["drivers"]
    names = [d for d in ALL_DRIVERS if d in drv]
    groups = [(CHART_LABELS[key], lambda d, k=key: get(drv[d], "workloads", k, "stats"))
              for key, _ in WORKLOADS if any(get(drv[d], "workloads", key, "stats") for d in names)]
    groups += [("burst of %d\n(wall)" % n, lambda d, n=n: get(drv[d], "bursts", str(n), "wall_ms"))
               for n in res["settings"]["bursts"]]
    colors = {"bridge": "#9e9e9e", "python": "#3572a5", "ours": "#dea584", "ours-nopool": "#8c4a1c",
              "ours-noprep": "#f2d3b3"}
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(min(18, max(8, 2 + 0.28 * len(groups) * len(names))), 5.5))
    have_data = False
    for i, d in enumerate(names):
        xs, meds, errs = [], [], []
        for g, (_, fn) in enumerate(groups):
            st = fn(d)
            if st:
                xs.append(g + (i - (len(names) - 1) / 2) * width)
                meds.append(st["median"])
                errs.append(max(st["p90"] - st["median"], 0))
        have_data = have_data or bool(meds)
        ax.bar(xs, meds, width, label=LABELS[d], color=colors[d],
               yerr=[[0] * len(errs), errs], capsize=3, error_kw={"elinewidth": 1})
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g[0] for g in groups], fontsize=8)
    if have_data:
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no driver completed", transform=ax.transAxes, ha="center")
    ax.set_ylabel("ms (median, whisker to p90; log scale)")
    ax.set_title("Docker operations: bridge vs Python kuryr-libnetwork vs kuryr-rs (%s)" % res["date"][:10],
                 fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


MARK_START, MARK_END = "<!-- bench:latest:start -->", "<!-- bench:latest:end -->"


def latest_block(res):
    """A few lines quoting the latest figures and ratios, for READMEs that carry the markers."""
    r, drv, s = res["ratios"], res["drivers"], res["settings"]
    cols = [d for d in ALL_DRIVERS if d in drv]
    ran = ", ".join(d for d in cols if not drv[d].get("error"))
    lines = ["Latest run: %s, %d cores, %d reps%s, drivers: %s (full tables: docs/benchmarks/results.md)."
             % (res["date"][:10], res["machine"]["nproc"], s["reps"],
                ", quick" if s["quick"] else "", ran or "none"), ""]
    ratio_cols = [("ours_python", "ours / Python"), ("ours_bridge", "ours / bridge")]
    if "ours" in drv and "ours-nopool" in drv:
        ratio_cols.append(("ours_ours-nopool", "ours / ours-nopool"))
    lines.append("| figure | %s | %s |" % (" | ".join(SHORT[d] for d in cols), " | ".join(t for _, t in ratio_cols)))
    lines.append("|---|" + "---|" * (len(cols) + len(ratio_cols)))

    def ms(key):
        return lambda d: (lambda v: "n/a" if v is None else fmt_ms(v) + " ms")(
            get(drv.get(d), "workloads", key, "stats", "median"))

    def daemon(fn):
        return lambda d: "-" if d == "bridge" else fn(d)

    def mb(key):
        return daemon(lambda d: (lambda v: "n/a" if v is None else "%.1f MB" % (v / 1024))(get(drv.get(d), "daemon", key)))

    def nreq(fn):
        return lambda d: "0" if d == "bridge" else (
            lambda v: "n/a" if v is None else (v if isinstance(v, str) else fmt_count(v)))(fn(drv.get(d)))

    def scale(d):
        sc = get(drv.get(d), "scale")
        return "-" if not sc else "%s (%s ms)" % (fmt_ratio(sc["ratio_vs_empty"]), fmt_ms(sc["run_rm_scale_median_ms"]))

    def burst50(d):
        b = get(drv.get(d), "bursts", "50")
        return "n/a" if not b else "%.2f/s, %d failed" % (b["throughput_per_s"]["median"], b["failures"])

    def cpu(d):
        v = get(drv.get(d), "daemon", "cpu_total_ms")
        return "n/a" if v is None else "%.1f s" % (v / 1000)

    rows = [("`docker run --rm` median (warm)", "run_rm", ms("run_rm")),
            ("`docker run --rm` median, first on a new network (cold)", "run_rm_cold", ms("run_rm_cold")),
            ("`docker run --rm` with %s running / empty host (median with them)" % s.get("scale"), None, scale),
            ("burst of 50: containers/s (median), failures", "burst_50_throughput", burst50),
            ("`docker network create` median", "network_create", ms("network_create")),
            ("`docker network connect` median", "connect", ms("connect")),
            ("Neutron requests per network create / rm (median)", None,
             nreq(lambda dr: None if get(dr, "workloads", "network_create", "neutron", "median") is None else
                  "%s / %s" % (fmt_count(get(dr, "workloads", "network_create", "neutron", "median")),
                               fmt_count(get(dr, "workloads", "network_rm", "neutron", "median"))))),
            ("Neutron requests per container lifecycle (incl. background pool work)", "neutron_per_lifecycle",
             nreq(lifecycle_requests)),
            ("daemon RSS idle", "rss_idle", mb("rss_idle_kb")),
            ("daemon RSS idle, 3 networks used (ours: pools on them)", "rss_pools3", mb("rss_pools3_kb")),
            ("daemon CPU time, whole run", "cpu_total", daemon(cpu))]
    for title, key, fn in rows:
        if key == "burst_50_throughput" and 50 not in s["bursts"]:
            continue
        if key is None and title.startswith("`docker run --rm` with") and not any(get(drv[d], "scale") for d in cols):
            continue
        vals = [fn(d).replace("n/a ms", "n/a") for d in cols]
        rr = r.get(key) or {}
        lines.append("| %s | %s | %s |" % (title, " | ".join(vals),
                                          " | ".join(fmt_ratio(rr[k]) if k in rr else "-" for k, _ in ratio_cols)))
    lines.append("")
    lines.append("Targets: " + "; ".join("%s: %s" % (t["short"], pass_text(t)) for t in res["targets"]) + ".")
    return "\n".join(lines)


def update_readmes(res, paths):
    for path in paths:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        a, b = text.find(MARK_START), text.find(MARK_END)
        if a < 0 or b < a:
            continue
        text = text[:a + len(MARK_START)] + "\n" + latest_block(res) + "\n" + text[b:]
        with open(path, "w") as f:
            f.write(text)
        log("updated the latest figures in %s" % path)


def print_summary(res):
    drv, s = res["drivers"], res["settings"]
    print("\n=== benchmark summary (%s) ===" % res["run_id"])
    for key, title in WORKLOADS:
        row = []
        for d in ALL_DRIVERS:
            st = get(drv.get(d), "workloads", key, "stats")
            if st:
                nq = get(drv[d], "workloads", key, "neutron", "mean")
                row.append("%s %s ms%s" % (d, fmt_ms(st["median"]), "" if nq is None else " (%.1f req)" % nq))
        if row:
            print("%-34s %s" % (title.replace("--scale", str(s.get("scale")))[:34], " | ".join(row)))
    for n in s["bursts"]:
        row = []
        for d in ALL_DRIVERS:
            b = get(drv.get(d), "bursts", str(n))
            if b:
                row.append("%s %s ms, %.2f/s, %d failed" % (d, fmt_ms(b["wall_ms"]["median"]),
                                                            b["throughput_per_s"]["median"], b["failures"]))
        if row:
            print("%-34s %s" % ("burst %d" % n, " | ".join(row)))
    row = ["%s %s" % (d, fmt_ratio(get(drv.get(d), "scale", "ratio_vs_empty"))) for d in ALL_DRIVERS
           if get(drv.get(d), "scale")]
    if row:
        print("%-34s %s" % ("with %s running / empty" % s.get("scale"), " | ".join(row)))
    for d in ALL_DRIVERS:
        if d == "bridge":
            continue
        dm = get(drv.get(d), "daemon")
        if dm:
            print("%-34s idle %.1f MB, 3 networks used %s MB, peak %.1f MB, CPU %.2f s" % (
                d + " daemon", dm["rss_idle_kb"] / 1024,
                "n/a" if dm.get("rss_pools3_kb") is None else "%.1f" % (dm["rss_pools3_kb"] / 1024),
                (dm.get("rss_peak_kb") or 0) / 1024, (dm.get("cpu_total_ms") or 0) / 1000))
        if get(drv.get(d), "error"):
            print("%-34s ERROR %s" % (d, drv[d]["error"]))
        if get(drv.get(d), "leaks"):
            print("%-34s LEFT BEHIND %s" % (d, drv[d]["leaks"][:10]))
    for t in res["targets"]:
        print("target: %-72s %-30s %s" % (t["short"], t["value"], pass_text(t)))


# ---------------------------------------------------------------------------------------------


def parse_args():
    p = argparse.ArgumentParser(description="kuryr-rs side-by-side benchmark (use bench/run.sh)")
    p.add_argument("--drivers", default=None,
                   help="comma separated subset of %s (default %s; with --quick %s)"
                   % (",".join(ALL_DRIVERS), ",".join(FULL_DRIVERS), ",".join(QUICK_DRIVERS)))
    p.add_argument("--reps", type=int, default=None, help="repetitions per operation (default 10, --quick 3)")
    p.add_argument("--burst-reps", type=int, default=None, help="repetitions per burst (default 3, --quick 1)")
    p.add_argument("--bursts", default=None, help="burst sizes (default 1,10,50; --quick 1,10)")
    p.add_argument("--rounds", type=int, default=None,
                   help="split the reps over this many rounds, alternating driver order (default 2, --quick 1)")
    p.add_argument("--scale", type=int, default=None,
                   help="containers kept running for the scale run (default 200, --quick 50; 0: no scale run)")
    p.add_argument("--scale-drivers", default=",".join(DEFAULT_SCALE_DRIVERS),
                   help="drivers that get the scale run, if in --drivers (default %s)" % ",".join(DEFAULT_SCALE_DRIVERS))
    p.add_argument("--scale-parallel", type=int, default=10,
                   help="docker run -d / rm -f commands at a time when starting and removing them (default 10)")
    p.add_argument("--settle", type=float, default=2.0,
                   help="seconds without a Neutron request (or daemon CPU) that count as quiet (default 2)")
    p.add_argument("--quick", action="store_true",
                   help="3 reps, bursts 1,10 x1, 1 round, scale 50, drivers %s" % ",".join(QUICK_DRIVERS))
    p.add_argument("--wait-active", action="store_true",
                   help="both kuryr daemons wait for the Neutron port to be ACTIVE")
    p.add_argument("--out", default=os.path.join(REPO, "docs", "benchmarks"))
    p.add_argument("--workdir", default=os.path.join(os.environ.get("KURYR_STACK_DIR", "/var/lib/kuryr-stack"),
                                                     "bench"))
    p.add_argument("--python-venv", default=os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "kuryr-rs", "kuryr-python-venv"))
    p.add_argument("--ours-bin", default=os.path.join(REPO, "target", "release", "kuryr-server"))
    p.add_argument("--chassis", default=os.environ.get("KURYR_TEST_CHASSIS", socket.gethostname()))
    p.add_argument("--pods", type=int, default=1,
                   help="1: the pod workload through containerd's CRI (bridge and ours); 0: skip it")
    p.add_argument("--cri-socket", default=os.environ.get("KURYR_TEST_CRI_SOCKET", ""))
    p.add_argument("--cni-conf-dir", default=os.environ.get("KURYR_TEST_CNI_CONF_DIR", ""))
    p.add_argument("--cri-pods-bin", default=os.path.join(REPO, "target", "release", "examples", "cri_pods"))
    a = p.parse_args()
    # What the user typed, for the report (run.sh adds --python-venv itself).
    a.argv, skip = [], False
    for x in sys.argv[1:]:
        if skip:
            skip = False
        elif x == "--python-venv":
            skip = True
        elif not x.startswith("--python-venv="):
            a.argv.append(x)
    if a.drivers is None:
        a.drivers = ",".join(QUICK_DRIVERS if a.quick else FULL_DRIVERS)
    a.drivers = [d.strip() for d in a.drivers.split(",") if d.strip()]
    bad = [d for d in a.drivers if d not in ALL_DRIVERS]
    if bad or not a.drivers or len(set(a.drivers)) != len(a.drivers):
        p.error("unknown or repeated driver(s) %s; choose from %s" % (bad, ",".join(ALL_DRIVERS)))
    a.scale_drivers = [d.strip() for d in a.scale_drivers.split(",") if d.strip()]
    bad = [d for d in a.scale_drivers if d not in ALL_DRIVERS]
    if bad:
        p.error("unknown scale driver(s) %s; choose from %s" % (bad, ",".join(ALL_DRIVERS)))
    a.scale = (50 if a.quick else 200) if a.scale is None else a.scale
    if not 0 <= a.scale <= SCALE_MAX or a.scale_parallel < 1 or a.settle <= 0:
        p.error("--scale must be 0..%d, --scale-parallel and --settle positive" % SCALE_MAX)
    if a.pods and not (a.cri_socket and a.cni_conf_dir and os.access(a.cri_pods_bin, os.X_OK)):
        p.error("the pod workload needs the stack's containerd (KURYR_TEST_CRI_SOCKET, KURYR_TEST_CNI_CONF_DIR) "
                "and %s (run.sh builds it); --pods 0 skips it" % a.cri_pods_bin)
    a.reps = a.reps or (3 if a.quick else 10)
    a.burst_reps = a.burst_reps or (1 if a.quick else 3)
    a.rounds = a.rounds or (1 if a.quick else 2)
    a.bursts = [int(x) for x in (a.bursts or ("1,10" if a.quick else "1,10,50")).split(",")]
    if a.reps < 1 or a.burst_reps < 1 or a.reps > 200 or a.rounds < 1 or any(b < 1 for b in a.bursts):
        p.error("reps must be 1..200; rounds, burst sizes and burst reps at least 1")
    return a


def on_sigterm(_signum, _frame):
    # Unwinds like Ctrl-C, so every `finally` clean-up runs.
    raise KeyboardInterrupt("SIGTERM")


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    if os.geteuid() != 0:
        sys.exit("bench: run as root")
    os.makedirs(args.workdir, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    run_id = time.strftime("%m%d%H%M%S")
    if shutil.which(DOCKER) is None:
        sys.exit("bench: %s not found" % DOCKER)
    ensure_default_subnetpools()
    res = {"run_id": run_id, "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "machine": machine_info(args),
           "settings": {"reps": args.reps, "burst_reps": args.burst_reps, "bursts": args.bursts,
                        "quick": args.quick, "wait_active": args.wait_active, "argv": args.argv,
                        "rounds": args.rounds, "drivers": args.drivers,
                        "scale": args.scale, "scale_parallel": args.scale_parallel,
                        "scale_drivers": [d for d in args.scale_drivers if d in args.drivers] if args.scale else [],
                        "settle": args.settle,
                        "vif_pool": {d: VIF_POOL[d] for d in args.drivers if d in OURS_FAMILY},
                        "image": IMAGE, "proxy": PROXY_LISTEN},
           "drivers": {}}
    proxy = Proxy(args.workdir)
    proxy.start()
    drivers = {name: make_driver(name, args, args.workdir) for name in args.drivers}
    accs = {name: Acc(name) for name in args.drivers}
    reps = -(-args.reps // args.rounds)  # per round, rounded up
    burst_reps = -(-args.burst_reps // args.rounds)
    try:
        for rnd in range(args.rounds):
            # Every other round runs the drivers in reverse order, so that neither kuryr daemon
            # always goes first (the machine's load drifts during a run).
            order = args.drivers if rnd % 2 == 0 else list(reversed(args.drivers))
            for name in order:
                if accs[name].errors:
                    continue  # failed in an earlier round: reported once
                log("=== %s (round %d/%d) ===" % (LABELS[name], rnd + 1, args.rounds))
                Run(args, drivers[name], proxy, run_id, accs[name], rnd + 1, reps, burst_reps, accs).execute()
        for name, acc in accs.items():
            if name == "bridge":
                continue
            try:
                acc.leaks = find_leaks(name, [i for i in acc.net_ids if i], acc.port_ids)
            except Exception as e:  # a failed check is reported, not fatal
                acc.leaks = ["leak check failed: %s" % e]
            if acc.leaks:
                log("%s: Neutron resources left behind: %s" % (name, acc.leaks))
    finally:
        proxy.stop()
        if any(getattr(d, "spec_created", False) for d in drivers.values()) and os.path.exists(PYTHON_SPEC):
            os.unlink(PYTHON_SPEC)
    res["settings"]["reps"] = reps * args.rounds
    res["settings"]["burst_reps"] = burst_reps * args.rounds
    res["drivers"] = {name: finalize(acc) for name, acc in accs.items()}
    res["machine"]["loadavg_end"] = os.getloadavg()[0]
    compute_summary(res)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
    write_markdown(res, os.path.join(args.out, "results.md"))
    write_chart(res, os.path.join(args.out, "latency.png"))
    if os.path.realpath(args.out) == os.path.realpath(os.path.join(REPO, "docs", "benchmarks")):
        # Only a run that writes the published results refreshes the quoted figures.
        update_readmes(res, [os.path.join(args.out, "README.md"), os.path.join(REPO, "README.md")])
    print_summary(res)
    log("wrote %s/results.md, results.json, latency.png" % args.out)
    failed = [d for d, r in res["drivers"].items() if r.get("error") or r.get("leaks") or r.get("cleanup_errors")]
    if failed:
        log("incomplete or unclean runs: %s" % ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        log("interrupted; what this run created has been removed")
        sys.exit(130)
