#!/usr/bin/env python3
"""Side-by-side benchmark: Docker's bridge driver, the Python kuryr-libnetwork, and ours.

Runs the same workloads against each driver in turn on the local stack (see bench/run.sh, which
prepares everything and calls this), then writes docs/benchmarks/results.{md,json} and latency.png.
The kuryr daemons are started and stopped here, one at a time, and talk to Neutron through a
counting proxy (bench/neutron_proxy.py) so their Neutron requests are counted exactly.
"""
import argparse
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
ALL_DRIVERS = ("bridge", "python", "ours")
LABELS = {"bridge": "Docker bridge", "python": "Python kuryr-libnetwork 18.0.0", "ours": "kuryr-rs (ours)"}
# Distinct address space per driver so nothing collides with each other or with other users.
SUBNET_PREFIX = {"bridge": "10.241", "python": "10.242", "ours": "10.243"}
MAIN_NET_OCTET = 250
WORKLOADS = [
    ("network_create", "docker network create"),
    ("network_rm", "docker network rm"),
    ("run_rm", "docker run --rm IMAGE true"),
    ("connect", "docker network connect"),
    ("disconnect", "docker network disconnect"),
]
TARGETS = {
    "run_rm_ratio_max": 0.5,
    "neutron_lifecycle_reduction_min": 1.5,
    "idle_rss_mb_max": 15.0,
    "burst50_failures_max": 0,
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
            if len(parts) == 6:
                out.append({"method": parts[1], "path": parts[2], "status": int(parts[3]),
                            "upstream_ms": float(parts[4]), "proxy_ms": float(parts[5])})
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


def kuryr_conf(path, extra_default, wait_active, chassis, log_file):
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
""" % (extra_default, log_file, PROXY_LISTEN, vif, chassis))


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

    def start(self):
        self.prepare()
        conf = os.path.join(self.workdir, "%s.conf" % self.name)
        logf = os.path.join(self.workdir, "%s.log" % self.name)
        open(logf, "w").close()
        kuryr_conf(conf, self.extra_default(), self.args.wait_active, self.args.chassis, logf)
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
    name = "ours"
    net_driver = ipam_driver = "kuryr"

    def extra_default(self):
        return ""

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


DRIVER_CLASSES = {"bridge": Driver, "python": PythonDriver, "ours": OursDriver}


# ---------------------------------------------------------------------------------------------
# one driver's run


class Acc:
    """One driver's raw measurements, pooled over all rounds."""

    def __init__(self, name):
        self.name = name
        self.samples = {}   # workload -> [ms]
        self.neutron = {}   # workload -> [count() dict per op, with cpu_ms]
        self.bursts = {}    # n -> [burst rep dicts]
        self.daemon = []    # one dict per round
        self.errors, self.cleanup_errors, self.leaks = [], [], []
        self.docker_stale_networks = []
        self.net_ids = []   # every Docker network id created, for the Neutron leak check


class Run:
    """One round of one driver: start its daemon, run every workload, clean up, stop it."""

    def __init__(self, args, drv, proxy, run_id, acc, round_no, reps, burst_reps):
        self.args, self.drv, self.proxy, self.acc = args, drv, proxy, acc
        self.reps, self.burst_reps = reps, burst_reps
        self.prefix = "kb-%s-%s-r%d" % (run_id, drv.name, round_no)
        self.label = "kuryr-bench=%s" % run_id

    # --- helpers ---

    def counted(self):
        return self.drv.pid is not None

    def cpu(self):
        return cpu_ms(self.drv.pid) if self.counted() else None

    def net_create(self, name, octet):
        base = "%s.%d" % (SUBNET_PREFIX[self.drv.name], octet)
        cmd = ["network", "create", "-d", self.drv.net_driver, "--label", self.label,
               "--subnet", base + ".0/24", "--gateway", base + ".1"]
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

    # --- workloads ---

    def wl_network(self):
        # Warm-up (not measured): the first use activates the plugin in Docker.
        self.net_create(self.prefix + "-warm", 1)
        self.net_rm(self.prefix + "-warm")
        for i in range(self.reps):
            name = "%s-net%d" % (self.prefix, i)
            self.timed_op("network_create", lambda: self.net_create(name, 10 + i))
            self.timed_op("network_rm", lambda: self.net_rm(name))

    def run_cmd(self, net):
        return [DOCKER, "run", "--rm", "--network", net, "--label", self.label, IMAGE, "true"]

    def wl_run(self, net):
        docker(*self.run_cmd(net)[1:])  # warm-up: first container on the network
        for _ in range(self.reps):
            self.timed_op("run_rm", lambda: docker(*self.run_cmd(net)[1:])[3])

    def wl_connect(self, net):
        holder = self.prefix + "-holder"
        docker("run", "-d", "--name", holder, "--label", self.label, IMAGE, "sleep", "3600")
        docker("network", "connect", net, holder)  # warm-up
        docker("network", "disconnect", net, holder)
        for _ in range(self.reps):
            self.timed_op("connect", lambda: docker("network", "connect", net, holder)[3])
            self.timed_op("disconnect", lambda: docker("network", "disconnect", net, holder)[3])
        docker("rm", "-f", holder)

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

    # --- the whole round ---

    def execute(self):
        name = self.drv.name
        try:
            start_ms = self.drv.start()
            if self.counted():
                time.sleep(1.0)  # let start-up allocations settle before the idle reading
                d = {"start_ms": round(start_ms, 1), "rss_idle_kb": rss_kb(self.drv.pid)}
                self.acc.daemon.append(d)
                proxy_start = self.proxy.mark()
            log("%s: network create/rm x%d" % (name, self.reps))
            self.wl_network()
            net = self.prefix + "-main"
            self.net_create(net, MAIN_NET_OCTET)
            log("%s: docker run --rm x%d" % (name, self.reps))
            self.wl_run(net)
            log("%s: network connect/disconnect x%d" % (name, self.reps))
            self.wl_connect(net)
            log("%s: bursts %s x%d" % (name, self.args.bursts, self.burst_reps))
            self.wl_bursts(net)
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
            self.drv.stop()
            if errors:
                self.acc.cleanup_errors.extend(errors)
                log("%s: cleanup errors: %s" % (name, errors))

    def settle(self, quiet_s=2.0, max_s=60.0):
        """Waits until the daemon has made no Neutron request for quiet_s (max max_s)."""
        if not self.counted():
            time.sleep(quiet_s)
            return
        deadline = time.monotonic() + max_s
        size = os.path.getsize(self.proxy.log_path)
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = os.path.getsize(self.proxy.log_path)
            if now != size:
                size, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                return

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
        for nid in out.split():
            rc, _, err, _ = docker("network", "rm", nid, check=False)
            if rc and self.drv.name == "bridge" and "has active endpoints" in err \
                    and not self.attached(nid):
                # Docker 20.10's bridge driver sometimes keeps an endpoint of a container that
                # concurrent `run --rm`s removed: no container is attached, and only a dockerd
                # restart clears it. Docker's own leak, not a driver's; reported, not failed.
                log("%s: docker kept a stale endpoint on network %s (moby bug); left for the "
                    "next dockerd restart" % (self.drv.name, nid))
                self.acc.docker_stale_networks.append(nid)
                continue
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


def finalize(acc):
    """The per-driver result (results.json) from the pooled measurements."""
    res = {"label": LABELS[acc.name], "error": "; ".join(acc.errors) or None,
           "workloads": {k: workload_entry(acc, k) for k, _ in WORKLOADS if acc.samples.get(k)},
           "bursts": {str(n): burst_entry(n, reps) for n, reps in sorted(acc.bursts.items())},
           "leaks": acc.leaks, "daemon": None}
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


def find_leaks(driver, docker_net_ids):
    """Neutron networks still tagged with a Docker network id this run created (and removed), and
    subnetpools left over for this driver's subnets."""
    leaks = []
    if docker_net_ids:
        nets = neutron_get("/v2.0/networks?fields=id&fields=name&fields=tags")["networks"]
        wanted = {"kuryr.net.uuid.lh:" + i[:32] for i in docker_net_ids}
        leaks += ["network " + (n["name"] or n["id"]) for n in nets if wanted & set(n.get("tags") or [])]
    pools = neutron_get("/v2.0/subnetpools?fields=id&fields=name")["subnetpools"]
    leaks += ["subnetpool " + p["name"] for p in pools
              if p["name"].startswith("kuryrPool-%s." % SUBNET_PREFIX[driver])]
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


def compute_summary(res):
    drv = res["drivers"]
    ours, py, br = drv.get("ours"), drv.get("python"), drv.get("bridge")
    ratios = {}
    for key, _ in WORKLOADS:
        o = get(ours, "workloads", key, "stats", "median")
        ratios[key] = {"ours_python": ratio(o, get(py, "workloads", key, "stats", "median")),
                       "ours_bridge": ratio(o, get(br, "workloads", key, "stats", "median"))}
    for n in res["settings"]["bursts"]:
        o = get(ours, "bursts", str(n), "wall_ms", "median")
        ratios["burst_%d_wall" % n] = {"ours_python": ratio(o, get(py, "bursts", str(n), "wall_ms", "median")),
                                       "ours_bridge": ratio(o, get(br, "bursts", str(n), "wall_ms", "median"))}
    ratios["neutron_per_lifecycle"] = {"ours_python": ratio(get(ours, "workloads", "run_rm", "neutron", "mean"),
                                                            get(py, "workloads", "run_rm", "neutron", "mean"))}
    ratios["rss_idle"] = {"ours_python": ratio(get(ours, "daemon", "rss_idle_kb"), get(py, "daemon", "rss_idle_kb"))}
    ratios["rss_peak"] = {"ours_python": ratio(get(ours, "daemon", "rss_peak_kb"), get(py, "daemon", "rss_peak_kb"))}
    ratios["cpu_total"] = {"ours_python": ratio(get(ours, "daemon", "cpu_total_ms"), get(py, "daemon", "cpu_total_ms"))}
    res["ratios"] = ratios

    targets = []
    r = ratios["run_rm"]["ours_python"]
    targets.append({"target": "docker run --rm at most half the Python original's time (ours/Python <= %.2f)"
                    % TARGETS["run_rm_ratio_max"], "value": fmt_ratio(r),
                    "pass": None if r is None else r <= TARGETS["run_rm_ratio_max"]})
    o = get(ours, "workloads", "run_rm", "neutron", "mean")
    p = get(py, "workloads", "run_rm", "neutron", "mean")
    red = ratio(p, o)
    targets.append({"target": "at least %.1fx fewer Neutron requests per container lifecycle (Python/ours)"
                    % TARGETS["neutron_lifecycle_reduction_min"],
                    "value": "n/a" if red is None else "%.2fx (%.1f vs %.1f)" % (red, p, o),
                    "pass": None if red is None else red >= TARGETS["neutron_lifecycle_reduction_min"]})
    idle = get(ours, "daemon", "rss_idle_kb")
    targets.append({"target": "idle RSS at most %.0f MB" % TARGETS["idle_rss_mb_max"],
                    "value": "n/a" if idle is None else "%.1f MB" % (idle / 1024),
                    "pass": None if idle is None else idle / 1024 <= TARGETS["idle_rss_mb_max"]})
    f50 = get(ours, "bursts", "50", "failures")
    targets.append({"target": "zero failures in the 50-container burst",
                    "value": "n/a (not run)" if f50 is None else str(f50),
                    "pass": None if f50 is None else f50 <= TARGETS["burst50_failures_max"]})
    res["targets"] = targets


def write_markdown(res, path):
    s, m, drv = res["settings"], res["machine"], res["drivers"]
    names = [d for d in ALL_DRIVERS if d in drv]
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
    for d in names:
        if drv[d].get("error"):
            L.append("**%s did not complete:** `%s`\n" % (LABELS[d], drv[d]["error"]))

    L.append("## Targets (ours)\n")
    L.append("| target | value | result |\n|---|---|---|")
    for t in res["targets"]:
        L.append("| %s | %s | %s |" % (t["target"], t["value"],
                                      "n/a" if t["pass"] is None else ("PASS" if t["pass"] else "FAIL")))
    L.append("")

    L.append("## Latency per operation (ms)\n")
    L.append("| operation | driver | median | p90 | min | max | Neutron req/op | Neutron time/op | daemon CPU/op |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for key, title in WORKLOADS:
        for d in names:
            w = get(drv[d], "workloads", key)
            st = get(w, "stats")
            if not st:
                continue
            nreq = get(w, "neutron", "mean")
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                title, LABELS[d], fmt_ms(st["median"]), fmt_ms(st["p90"]), fmt_ms(st["min"]), fmt_ms(st["max"]),
                "0" if d == "bridge" else ("n/a" if nreq is None else "%.1f" % nreq),
                "-" if d == "bridge" else fmt_ms(get(w, "neutron", "neutron_ms_median")),
                "in dockerd" if d == "bridge" else fmt_ms(get(w, "cpu_ms_per_op"))))
    L.append("")
    L.append("Neutron time/op is the median time Neutron itself took to answer the daemon's requests for one "
             "operation (measured at the proxy); daemon CPU/op is user+system CPU of the daemon and its "
             "children per operation.\n")

    L.append("## Concurrent `docker run --rm` bursts\n")
    L.append("| burst | driver | wall median (ms) | wall max (ms) | containers/s (median) | failures | "
             "per-container median / p90 (ms) | Neutron req/container |")
    L.append("|---|---|---|---|---|---|---|---|")
    for n in s["bursts"]:
        for d in names:
            b = get(drv[d], "bursts", str(n))
            if not b:
                continue
            nq = b.get("neutron_per_container")
            L.append("| %d | %s | %s | %s | %.2f | %d / %d | %s / %s | %s |" % (
                n, LABELS[d], fmt_ms(b["wall_ms"]["median"]), fmt_ms(b["wall_ms"]["max"]),
                b["throughput_per_s"]["median"], b["failures"], n * len(b["reps"]),
                fmt_ms(b["per_container_ms"]["median"]), fmt_ms(b["per_container_ms"]["p90"]),
                "0" if d == "bridge" else ("n/a" if nq is None else "%.1f" % nq)))
    L.append("")

    L.append("## Daemon footprint\n")
    L.append("Start-up and idle RSS: median over rounds; peak: the highest round; CPU time and Neutron "
             "requests: summed over rounds.\n")
    L.append("| driver | start to Plugin.Activate (ms) | RSS idle (MB) | RSS peak, VmHWM (MB) | CPU time, whole run (s) "
             "| Neutron requests, whole run | proxy overhead/request (ms) |")
    L.append("|---|---|---|---|---|---|---|")
    for d in names:
        dm = drv[d].get("daemon")
        if d == "bridge":
            L.append("| %s | n/a (inside dockerd) | n/a | n/a | n/a | 0 | - |" % LABELS[d])
        elif dm:
            mb = lambda k: "n/a" if dm.get(k) is None else "%.1f" % (dm[k] / 1024)  # noqa: E731
            cpu = dm.get("cpu_total_ms")
            L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                LABELS[d], fmt_ms(dm.get("start_ms")), mb("rss_idle_kb"), mb("rss_peak_kb"),
                "n/a" if cpu is None else "%.2f" % (cpu / 1000), dm.get("neutron_requests_total", "n/a"),
                "n/a" if dm.get("proxy_overhead_ms_median") is None else "%.2f" % dm["proxy_overhead_ms_median"]))
    L.append("")

    L.append("## Ratios\n")
    L.append("Below 1 means ours is faster / smaller / makes fewer requests.\n")
    L.append("| figure | ours / Python | ours / bridge |\n|---|---|---|")
    titles = dict(WORKLOADS)
    for key, r in res["ratios"].items():
        if key in titles:
            title = titles[key] + " (median latency)"
        elif key.startswith("burst_"):
            title = "burst of %s, wall time (median)" % key.split("_")[1]
        else:
            title = {"neutron_per_lifecycle": "Neutron requests per container lifecycle (run --rm)",
                     "rss_idle": "daemon RSS idle", "rss_peak": "daemon RSS peak",
                     "cpu_total": "daemon CPU time, whole run"}[key]
        L.append("| %s | %s | %s |" % (title, fmt_ratio(r.get("ours_python")),
                                        fmt_ratio(r["ours_bridge"]) if "ours_bridge" in r else "n/a"))
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
    groups = [(title, lambda d, k=key: get(drv[d], "workloads", k, "stats")) for key, title in WORKLOADS]
    groups += [("burst of %d\n(wall)" % n, lambda d, n=n: get(drv[d], "bursts", str(n), "wall_ms"))
               for n in res["settings"]["bursts"]]
    colors = {"bridge": "#9e9e9e", "python": "#3572a5", "ours": "#dea584"}
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(groups)), 5))
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
    ax.set_xticklabels([g[0].replace("docker ", "").replace(" IMAGE true", "") for g in groups], fontsize=8)
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
    r, drv = res["ratios"], res["drivers"]
    ran = ", ".join(d for d in ALL_DRIVERS if d in drv and not drv[d].get("error"))
    lines = ["Latest run: %s, %d cores, %d reps%s, drivers: %s (full tables: docs/benchmarks/results.md)."
             % (res["date"][:10], res["machine"]["nproc"], res["settings"]["reps"],
                ", quick" if res["settings"]["quick"] else "", ran or "none"), ""]
    lines.append("| figure | bridge | Python | ours | ours / Python | ours / bridge |")
    lines.append("|---|---|---|---|---|---|")

    def ms(d, key):
        return fmt_ms(get(drv.get(d), "workloads", key, "stats", "median")) + " ms"

    def mb(d, key):
        v = get(drv.get(d), "daemon", key)
        return "n/a" if v is None else "%.1f MB" % (v / 1024)

    def req(d):
        v = get(drv.get(d), "workloads", "run_rm", "neutron", "mean")
        return "n/a" if v is None else "%.1f" % v

    def cpu(d):
        v = get(drv.get(d), "daemon", "cpu_total_ms")
        return "n/a" if v is None else "%.1f s" % (v / 1000)

    rows = [("`docker run --rm` median", "run_rm", lambda d: ms(d, "run_rm")),
            ("`docker network create` median", "network_create", lambda d: ms(d, "network_create")),
            ("`docker network connect` median", "connect", lambda d: ms(d, "connect")),
            ("Neutron requests per container lifecycle", "neutron_per_lifecycle", req),
            ("daemon RSS idle", "rss_idle", lambda d: mb(d, "rss_idle_kb")),
            ("daemon CPU time, whole run", "cpu_total", cpu)]
    for title, key, fn in rows:
        bridge = "0" if key == "neutron_per_lifecycle" else (fn("bridge") if key in dict(WORKLOADS) else "-")
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            title, bridge.replace("n/a ms", "n/a"), fn("python").replace("n/a ms", "n/a"),
            fn("ours").replace("n/a ms", "n/a"), fmt_ratio(r[key].get("ours_python")),
            fmt_ratio(r[key]["ours_bridge"]) if "ours_bridge" in r[key] else "-"))
    lines.append("")
    lines.append("Targets: " + "; ".join("%s: %s" % (t["target"].split(" (")[0],
                                                      "n/a" if t["pass"] is None else ("PASS" if t["pass"] else "FAIL"))
                                          for t in res["targets"]) + ".")
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
    drv = res["drivers"]
    print("\n=== benchmark summary (%s) ===" % res["run_id"])
    for key, title in WORKLOADS:
        row = []
        for d in ALL_DRIVERS:
            st = get(drv.get(d), "workloads", key, "stats")
            if st:
                nq = get(drv[d], "workloads", key, "neutron", "mean")
                row.append("%s %s ms%s" % (d, fmt_ms(st["median"]), "" if nq is None else " (%.1f req)" % nq))
        if row:
            print("%-28s %s" % (title, " | ".join(row)))
    for n in res["settings"]["bursts"]:
        row = []
        for d in ALL_DRIVERS:
            b = get(drv.get(d), "bursts", str(n))
            if b:
                row.append("%s %s ms, %.2f/s, %d failed" % (d, fmt_ms(b["wall_ms"]["median"]),
                                                            b["throughput_per_s"]["median"], b["failures"]))
        if row:
            print("%-28s %s" % ("burst %d" % n, " | ".join(row)))
    for d in ("python", "ours"):
        dm = get(drv.get(d), "daemon")
        if dm:
            print("%-28s idle %.1f MB, peak %.1f MB, CPU %.2f s" % (
                d + " daemon", dm["rss_idle_kb"] / 1024, dm.get("rss_peak_kb", 0) / 1024,
                (dm.get("cpu_total_ms") or 0) / 1000))
        if get(drv.get(d), "error"):
            print("%-28s ERROR %s" % (d, drv[d]["error"]))
    for t in res["targets"]:
        print("target: %-80s %-24s %s" % (t["target"], t["value"],
                                          "n/a" if t["pass"] is None else ("PASS" if t["pass"] else "FAIL")))


# ---------------------------------------------------------------------------------------------


def parse_args():
    p = argparse.ArgumentParser(description="kuryr-rs side-by-side benchmark (use bench/run.sh)")
    p.add_argument("--drivers", default=",".join(ALL_DRIVERS),
                   help="comma separated subset of %s" % ",".join(ALL_DRIVERS))
    p.add_argument("--reps", type=int, default=None, help="repetitions per operation (default 10, --quick 3)")
    p.add_argument("--burst-reps", type=int, default=None, help="repetitions per burst (default 3, --quick 1)")
    p.add_argument("--bursts", default=None, help="burst sizes (default 1,10,50; --quick 1,10)")
    p.add_argument("--rounds", type=int, default=None,
                   help="split the reps over this many rounds, alternating driver order (default 2, --quick 1)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--wait-active", action="store_true",
                   help="both kuryr daemons wait for the Neutron port to be ACTIVE")
    p.add_argument("--out", default=os.path.join(REPO, "docs", "benchmarks"))
    p.add_argument("--workdir", default=os.path.join(os.environ.get("KURYR_STACK_DIR", "/var/lib/kuryr-stack"),
                                                     "bench"))
    p.add_argument("--python-venv", default=os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "kuryr-rs", "kuryr-python-venv"))
    p.add_argument("--ours-bin", default=os.path.join(REPO, "target", "release", "kuryr-server"))
    p.add_argument("--chassis", default=os.environ.get("KURYR_TEST_CHASSIS", socket.gethostname()))
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
    a.drivers = [d.strip() for d in a.drivers.split(",") if d.strip()]
    bad = [d for d in a.drivers if d not in ALL_DRIVERS]
    if bad or not a.drivers:
        p.error("unknown driver(s) %s; choose from %s" % (bad, ",".join(ALL_DRIVERS)))
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
                        "image": IMAGE, "proxy": PROXY_LISTEN},
           "drivers": {}}
    proxy = Proxy(args.workdir)
    proxy.start()
    drivers = {name: DRIVER_CLASSES[name](args, args.workdir) for name in args.drivers}
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
                Run(args, drivers[name], proxy, run_id, accs[name], rnd + 1, reps, burst_reps).execute()
        for name, acc in accs.items():
            if name == "bridge":
                continue
            try:
                acc.leaks = find_leaks(name, [i for i in acc.net_ids if i])
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
