#!/usr/bin/env python3
"""Footprint and latency of `reconfig watch` under kubelet-style updates (Python stdlib only).

Starts `reconfig watch --dir VOL --webhook http://127.0.0.1:PORT/` on a ConfigMap-like volume
(config files are .yaml, so every version is parsed before it is forwarded), a loopback webhook
receiver that records when each request arrives, and drives updates with an exact port of
kubelet's AtomicWriter (timestamped folder, ..data_tmp renamed over ..data, links, old folder
removed). Measures:

  - idle RSS (VmRSS of /proc/PID/status once start-up has settled), with its breakdown;
  - CPU ticks (utime+stime of /proc/PID/stat) over an idle window (--idle-seconds, default 60);
  - ..data swap -> webhook latency, p50/p99/max over --updates distinct updates (default 1000),
    each update waiting for the previous one's webhook; and that exactly that many reloads arrive;
  - reloads caused by --noops no-op rewrites (identical content through a full swap): must be 0;
  - reloads caused by --invalid invalid configs (YAML syntax errors): must be 0.

Targets (issue 4): idle RSS <= 4 MiB, 0 ticks idle, p99 <= 20 ms, counts exact.

Verification and rollback (issue 14; --verify-rounds, default 100, 0 skips; --verify-only runs
this phase alone): a second reconfig with --publish, a webhook and --verify-url on a loopback
app (verify.py below: it loads the published config.yaml when its reload endpoint is called,
and its /healthz answers 200 unless the config it loaded says `broken`). Each round writes a
good version, then a broken one. Measured, p50/p99 over the rounds:
  - ..data swap -> verified: until the app answers 200 to the check of the new version (reconfig
    marks it applied as that answer arrives);
  - failed verification -> last good back in place: from the swap of the broken version until
    the app is told to reload the good one again (published back), and until it is verified
    again; the rollback's cost is that minus --verify-timeout (goal: <= 50 ms).

The peer: when a configmap-reload binary is found (--peer PATH, else $CONFIGMAP_RELOAD, else
shared/peers/configmap-reload/configmap-reload beside the repository or a folder above it, as
../shared/peers is for a checkout in /work), it runs beside reconfig on its own volume and
receiver, through the same phases: the two take turns on every update, in alternating order, so
the machine's load hits both alike, and both columns come from one run. Target (issue 13):
reconfig's p50 and p99 no higher than configmap-reload's. Without it the bench says so and
measures reconfig alone; nothing else needs the peer. configmap-reload does not validate and
fires on every swap, so its no-op and invalid counts are shown, not judged.
"""

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

DATA = "..data"
DATA_TMP = "..data_tmp"
TICKS = os.sysconf("SC_CLK_TCK")


# --- kubelet's AtomicWriter ------------------------------------------------------------------


class AtomicWriter:
    """pkg/volume/util/atomic_writer.go, step for step (current order: links after the swap)."""

    def __init__(self, root, mode=0o644):
        self.root = root
        self.mode = mode
        os.makedirs(root, exist_ok=True)

    def _old_ts_dir(self):
        try:
            return os.readlink(os.path.join(self.root, DATA))
        except FileNotFoundError:
            return None

    def write(self, payload, force=False):
        """Returns the monotonic time (ns) right after the ..data rename, or None if unchanged."""
        for name in payload:
            first = name.split("/")[0]
            if not name or name.startswith("/") or ".." in name.split("/") or (
                first.startswith("..") and len(first) > 2
            ):
                raise ValueError(f"invalid payload path {name!r}")
        old = self._old_ts_dir()
        to_remove = set()
        if old is not None:
            old_path = os.path.join(self.root, old)
            to_remove = self._paths_to_remove(payload, old_path)
            if not force and not self._should_write(payload, old_path) and not to_remove:
                return None  # (1) nothing is written when the content is unchanged
        # (2) a new hidden folder ..YYYY_MM_DD_HH_MM_SS.<random>, mode 0755, like os.MkdirTemp
        prefix = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
        while True:
            ts_dir = prefix + str(random.getrandbits(32))
            try:
                os.mkdir(os.path.join(self.root, ts_dir))
                break
            except FileExistsError:
                continue
        ts_path = os.path.join(self.root, ts_dir)
        os.chmod(ts_path, 0o755)
        for name, content in payload.items():
            full = os.path.join(ts_path, name)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(content)
            os.chmod(full, self.mode)
        # (3) ..data_tmp -> the new folder, renamed over ..data: the commit point
        tmp = os.path.join(self.root, DATA_TMP)
        os.symlink(ts_dir, tmp)
        os.rename(tmp, os.path.join(self.root, DATA))
        swapped = time.monotonic_ns()
        # (4) user-visible links for new top-level names, dropped ones removed
        for name in payload:
            top = name.split("/")[0]
            visible = os.path.join(self.root, top)
            if not os.path.islink(visible):
                os.symlink(os.path.join(DATA, top), visible)
        for path in to_remove:
            if "/" not in path:
                os.remove(os.path.join(self.root, path))
        # (5) the previous folder is removed
        if old is not None and old != ts_dir:
            shutil.rmtree(os.path.join(self.root, old))
        return swapped

    @staticmethod
    def _should_write(payload, old_path):
        for name, content in payload.items():
            path = os.path.join(old_path, name)
            if not os.path.lexists(path):
                return True
            with open(path, "rb") as f:
                if f.read() != content:
                    return True
        return False

    @staticmethod
    def _paths_to_remove(payload, old_path):
        current = set()
        for dirpath, dirnames, filenames in os.walk(old_path):
            for n in dirnames + filenames:
                current.add(os.path.relpath(os.path.join(dirpath, n), old_path))
        wanted = set()
        for name in payload:
            parts = name.split("/")
            for i in range(1, len(parts) + 1):
                wanted.add("/".join(parts[:i]))
        return current - wanted


# --- the webhook receiver --------------------------------------------------------------------


class Receiver:
    """Answers 200 to every request and records (arrival ns, X-Reconfig-Hash)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.arrivals = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                arrived = time.monotonic_ns()
                head = data.split(b"\r\n\r\n")[0].decode("latin-1")
                match = re.search(r"(?im)^x-reconfig-hash:\s*(\S+)", head)
                with self.cond:
                    self.arrivals.append((arrived, match.group(1) if match else None))
                    self.cond.notify_all()
                try:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    def count(self):
        with self.cond:
            return len(self.arrivals)

    def wait_count(self, n, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.arrivals) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True


# --- reconfig --------------------------------------------------------------------------------


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        raw = f.read()
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def kib(value):
    return int(value.split()[0])


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def metric(text, name, labels=None):
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        if labels is None and series == name:
            return float(value)
        if labels is not None and series.startswith(name + "{") and all(
            f'{k}="{v}"' in series for k, v in labels.items()
        ):
            return float(value)
    return 0.0


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def config(n, pad=""):
    text = f"# version {n}\nserver:\n  port: {8000 + n % 1000}\n  name: app-{n}\nfeatures: [a, b, c]\n{pad}"
    return {"config.yaml": text.encode()}


# --- the peer --------------------------------------------------------------------------------

PEER_ENV = "CONFIGMAP_RELOAD"
PEER_PATH = os.path.join("shared", "peers", "configmap-reload", "configmap-reload")


def find_peer(given):
    """configmap-reload's binary: --peer, else $CONFIGMAP_RELOAD, else shared/peers/ next to the
    repository (../shared/peers) or next to a folder above it. Returns (path or None, note)."""
    if given == "none":
        return None, "--peer none"
    for candidate, origin in ((given, "--peer"), (os.environ.get(PEER_ENV), f"${PEER_ENV}")):
        if candidate:
            path = os.path.join(candidate, "configmap-reload") if os.path.isdir(candidate) else candidate
            if not os.access(path, os.X_OK):
                raise SystemExit(f"{origin}: {path} is not an executable configmap-reload")
            return path, None
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folder = os.path.dirname(repo)
    while True:
        path = os.path.join(folder, PEER_PATH)
        if os.access(path, os.X_OK):
            return path, None
        if os.path.dirname(folder) == folder:
            break
        folder = os.path.dirname(folder)
    return None, (
        f"configmap-reload not found (no --peer, no ${PEER_ENV}, no {PEER_PATH} beside {repo} "
        "or a folder above it): measuring reconfig alone"
    )


# --- one program under test ------------------------------------------------------------------


class Subject:
    """A watcher on its own volume, calling its own receiver."""

    def __init__(self, name, work, argv, env):
        self.name = name
        self.vol = AtomicWriter(os.path.join(work, name, "config"))
        self.vol.write(config(0))
        self.receiver = Receiver()
        self.log_path = os.path.join(work, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.cmd = argv(self.vol.root, f"http://127.0.0.1:{self.receiver.port}/")
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log, env=env
        )
        self.latencies = []
        self.hashes = []
        self.update_s = 0.0
        self.lost = None  # the first update whose webhook never came
        self.r = {"command": " ".join(self.cmd)}

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def update(self, i, timeout=10):
        """One distinct update; its latency once its webhook arrived."""
        if self.lost is not None:
            return
        expected = self.receiver.count() + 1
        began = time.monotonic()
        swapped = self.vol.write(config(i))
        if swapped is None:
            raise SystemExit("an update was not written")
        if not self.receiver.wait_count(expected, timeout):
            self.lost = i
            return
        self.update_s += time.monotonic() - began
        arrived, h = self.receiver.arrivals[expected - 1]
        self.latencies.append((arrived - swapped) / 1e6)
        self.hashes.append(h)

    def stop(self):
        self.proc.terminate()
        try:
            self.r["exit_code"] = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.r["exit_code"] = "killed"
        self.log.close()


class VerifyApp:
    """The app for the verification phase: POST /-/reload loads the published config.yaml;
    GET /healthz answers 200 unless the loaded config says `broken`. Records (ns) each reload
    with what it loaded, and each 200 check with the config it vouched for."""

    def __init__(self, config_path):
        self.config_path = config_path
        self.loaded = None
        self.reloads = []  # (ns, text)
        self.oks = []  # (ns, text)
        self.cond = threading.Condition()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                now = time.monotonic_ns()
                line = data.split(b"\r\n")[0].decode("latin-1")
                status = 404
                with self.cond:
                    if line.startswith("POST /-/reload"):
                        with open(self.config_path) as f:
                            self.loaded = f.read()
                        self.reloads.append((now, self.loaded))
                        status = 200
                    elif line.startswith("GET /healthz"):
                        if self.loaded is None:
                            with open(self.config_path) as f:
                                self.loaded = f.read()
                        status = 500 if "broken" in self.loaded else 200
                        if status == 200:
                            self.oks.append((now, self.loaded))
                    self.cond.notify_all()
                try:
                    conn.sendall(f"HTTP/1.1 {status} S\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
                except OSError:
                    pass

    def wait(self, what, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = predicate()
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"verify phase: timed out waiting for {what}")
                self.cond.wait(left)

    def first_after(self, events, since, text):
        for t, loaded in events:
            if t >= since and loaded == text:
                return t
        return None


def verify_phase(args, work, env):
    """See the module documentation; returns the figures."""
    timeout_ms = args.verify_timeout_ms
    vol = AtomicWriter(os.path.join(work, "verify", "config"))
    out = os.path.join(work, "verify", "out")
    good = lambda i: {"config.yaml": f"# good {i}\nserver:\n  port: {8000 + i % 1000}\n".encode()}
    bad = lambda i: {"config.yaml": f"# broken {i}\nserver:\n  port: {8000 + i % 1000}\n".encode()}
    vol.write(good(0))
    app = VerifyApp(os.path.join(out, "config.yaml"))
    log_path = os.path.join(work, "verify.log")
    log = open(log_path, "w")
    cmd = [
        args.bin, "watch", "--dir", vol.root, "--publish", out,
        "--webhook", f"http://127.0.0.1:{app.port}/-/reload",
        "--verify-url", f"http://127.0.0.1:{app.port}/healthz",
        "--verify-timeout", f"{timeout_ms}ms", "--verify-interval", "10ms",
        "--listen", "127.0.0.1:0",
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env)
    subject = type("S", (), {"proc": proc, "log_text": lambda self: open(log_path).read()})()
    verified, back, back_verified = [], [], []
    try:
        port = wait_for_reconfig(subject)
        app.wait("the start-up verification", lambda: app.oks[-1][0] if app.oks else None)
        for i in range(1, args.verify_rounds + 1):
            text = good(i)["config.yaml"].decode()
            swapped = vol.write(good(i))
            t = app.wait(f"good {i} verified", lambda: app.first_after(app.oks, swapped, text))
            verified.append((t - swapped) / 1e6)
            # Let the status settle on applied before the broken one comes.
            deadline = time.monotonic() + 10
            while '"phase":"applied"' not in urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5).read().decode():
                if time.monotonic() > deadline:
                    raise SystemExit(f"verify phase: good {i} not applied:\n{subject.log_text()}")
                time.sleep(0.001)
            swapped = vol.write(bad(i))
            reloaded = app.wait(f"good {i} back", lambda: app.first_after(app.reloads, swapped, text))
            back.append((reloaded - swapped) / 1e6)
            t = app.wait(f"good {i} verified again", lambda: app.first_after(app.oks, reloaded, text))
            back_verified.append((t - swapped) / 1e6)
        rollbacks = int(metric(metrics(port), "reconfig_rollbacks_total"))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    stats = lambda values: {
        "p50": round(percentile(sorted(values), 50), 3),
        "p99": round(percentile(sorted(values), 99), 3),
        "max": round(max(values), 3),
    }
    return {
        "command": " ".join(cmd),
        "rounds": args.verify_rounds,
        "verify_timeout_ms": timeout_ms,
        "swap_to_verified_ms": stats(verified),
        "failed_to_good_back_ms": stats(back),
        "failed_to_good_verified_ms": stats(back_verified),
        "rollback_overhead_ms": stats([b - timeout_ms for b in back]),
        "rollbacks": rollbacks,
    }


def report_verify(v):
    print(f"verify:  {v['command']}")
    print(f"  {v['rounds']} rounds, --verify-timeout {v['verify_timeout_ms']} ms, reconfig_rollbacks_total {v['rollbacks']}")
    fmt = lambda s: f"p50 {s['p50']:.3f} ms  p99 {s['p99']:.3f} ms  max {s['max']:.3f} ms"
    print(f"  swap -> verified:                                {fmt(v['swap_to_verified_ms'])}")
    print(f"  broken swap -> last good back (reloaded):        {fmt(v['failed_to_good_back_ms'])}")
    print(f"  broken swap -> last good verified again:         {fmt(v['failed_to_good_verified_ms'])}")
    over = v["rollback_overhead_ms"]
    verdict = "ok" if over["p99"] <= 50 else "MISSED"
    print(f"  rollback beyond --verify-timeout:                {fmt(over)}   [target p99 <= 50 ms: {verdict}]")


def wait_for_reconfig(subject):
    """The metrics port from reconfig's log, once /readyz answers 200."""
    port = None
    deadline = time.monotonic() + 30
    while port is None:
        if subject.proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"reconfig did not start:\n{subject.log_text()}")
        m = re.search(r"serving /healthz, /readyz, /status and /metrics on 127\.0\.0\.1:(\d+)", subject.log_text())
        if m:
            port = int(m.group(1))
        else:
            time.sleep(0.01)
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                if r.status == 200:
                    return port
        except Exception:
            pass
        time.sleep(0.02)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/reconfig")
    ap.add_argument(
        "--peer",
        help=f"configmap-reload binary (or its folder) to run beside reconfig; 'none' to skip it. "
        f"Default: ${PEER_ENV}, else {PEER_PATH} found beside the repository or a folder above it",
    )
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--settle-seconds", type=float, default=2.0)
    ap.add_argument("--updates", type=int, default=1000)
    ap.add_argument("--noops", type=int, default=100)
    ap.add_argument("--invalid", type=int, default=100)
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for reconfig (e.g. MALLOC_ARENA_MAX=1)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--verify-rounds", type=int, default=100, help="good/broken rounds of the verification phase (0 skips it)")
    ap.add_argument("--verify-timeout-ms", type=int, default=250)
    ap.add_argument("--verify-only", action="store_true", help="run the verification phase alone")
    args = ap.parse_args()
    sys.setswitchinterval(0.0001)  # the receiver threads must not wait for the GIL
    peer_bin, peer_note = find_peer(args.peer)

    work = tempfile.mkdtemp(prefix="reconfig-watch-bench-")
    env = dict(os.environ)
    for kv in args.env:
        k, _, v = kv.partition("=")
        env[k] = v
    if args.verify_only:
        figures = verify_phase(args, work, env)
        report_verify(figures)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"verify": figures}, f, indent=2)
        shutil.rmtree(work, ignore_errors=True)
        sys.exit(0 if figures["rollbacks"] == args.verify_rounds else 1)
    rc = Subject(
        "reconfig",
        work,
        lambda vol, url: [args.bin, "watch", "--dir", vol, "--webhook", url, "--listen", "127.0.0.1:0"],
        env,
    )
    subjects = [rc]
    peer = None
    if peer_bin:
        peer = Subject(
            "configmap-reload",
            work,
            lambda vol, url: [
                peer_bin, "--volume-dir", vol, "--webhook-url", url, "--web.listen-address", "127.0.0.1:0",
            ],
            dict(os.environ),
        )
        subjects.append(peer)
    results = {"command": rc.r["command"], "env": args.env, "peer_note": peer_note}
    failures = []
    try:
        port = wait_for_reconfig(rc)
        if peer and peer.proc.poll() is not None:
            raise SystemExit(f"configmap-reload did not start:\n{peer.log_text()}")

        # Idle: settle, then leave both alone (no requests) for the whole window.
        time.sleep(args.settle_seconds)
        ticks0 = {}
        for s in subjects:
            status = proc_status(s.proc.pid)
            s.r["idle_rss_kib"] = kib(status["VmRSS"])
            s.r["idle_rss_breakdown_kib"] = {
                k: kib(status[k]) for k in ("RssAnon", "RssFile", "RssShmem") if k in status
            }
            s.r["threads"] = int(status["Threads"])
            ticks0[s.name] = cpu_ticks(s.proc.pid)
        time.sleep(args.idle_seconds)
        for s in subjects:
            s.r["idle_cpu_ticks"] = cpu_ticks(s.proc.pid) - ticks0[s.name]
            s.r["idle_rss_after_window_kib"] = kib(proc_status(s.proc.pid)["VmRSS"])
        results["idle_window_s"] = args.idle_seconds

        # Latency and exact counts: each update waits for the previous one's webhook. The two
        # programs take turns, in alternating order, so the machine's load hits both alike.
        for s in subjects:
            s.r["busy0"] = cpu_ticks(s.proc.pid)
        for i in range(1, args.updates + 1):
            for s in subjects if i % 2 else subjects[::-1]:
                s.update(i)
        time.sleep(0.5)  # anything extra would arrive now
        for s in subjects:
            got = s.receiver.count()
            lat = sorted(s.latencies)
            s.r["updates"] = args.updates
            s.r["reloads_for_updates"] = got
            s.r["distinct_hashes"] = len(set(s.hashes))
            s.r["latency_ms"] = {
                "p50": round(percentile(lat, 50), 3),
                "p90": round(percentile(lat, 90), 3),
                "p99": round(percentile(lat, 99), 3),
                "max": round(lat[-1], 3) if lat else None,
                "min": round(lat[0], 3) if lat else None,
            }
            s.r["update_phase_s"] = round(s.update_s, 2)
            s.r["update_phase_cpu_ticks"] = cpu_ticks(s.proc.pid) - s.r.pop("busy0")
            s.r["rss_after_updates_kib"] = kib(proc_status(s.proc.pid)["VmRSS"])
            s.r["peak_rss_kib"] = kib(proc_status(s.proc.pid)["VmHWM"])
            if s.lost is not None:
                failures.append(f"{s.name}: update {s.lost}: no webhook within 10 s")
            if got != args.updates:
                failures.append(f"{s.name}: {args.updates} updates gave {got} reloads")

        # No-op rewrites: identical content through a full ..data swap, spaced past the 5 ms window.
        last = config(args.updates)
        for s in subjects:
            before = s.receiver.count()
            for _ in range(args.noops):
                s.vol.write(last, force=True)
                time.sleep(0.02)
            time.sleep(0.3)
            noop_reloads = s.receiver.count() - before
            s.vol.write(config(args.updates + 1))  # barrier: one real change is exactly one reload
            s.receiver.wait_count(before + noop_reloads + 1, 10)
            time.sleep(0.3)
            s.r["noop_rewrites"] = args.noops
            s.r["reloads_for_noops"] = noop_reloads
            s.r["barrier_after_noops_reloads"] = s.receiver.count() - before - noop_reloads
        if rc.r["reloads_for_noops"] != 0:
            failures.append(f"{rc.r['reloads_for_noops']} reloads for {args.noops} no-op rewrites")

        # Invalid configs: each one rejected (counted), none forwarded.
        before = rc.receiver.count()
        failed0 = metric(metrics(port), "reconfig_validation_failures_total")
        for i in range(args.invalid):
            rc.vol.write({"config.yaml": f"server:\n  port: [unclosed {i}\n".encode()})
            deadline = time.monotonic() + 10
            while metric(metrics(port), "reconfig_validation_failures_total") < failed0 + i + 1:
                if time.monotonic() > deadline:
                    failures.append(f"invalid config {i} was not rejected within 10 s")
                    break
                time.sleep(0.002)
        if peer:
            # It does not validate: each invalid version is forwarded, or the count says otherwise.
            peer_before = peer.receiver.count()
            for i in range(args.invalid):
                peer.vol.write({"config.yaml": f"server:\n  port: [unclosed {i}\n".encode()})
                peer.receiver.wait_count(peer_before + i + 1, 1)
            peer.r["rejected"] = 0
        rc.r["rejected"] = int(metric(metrics(port), "reconfig_validation_failures_total") - failed0)
        for s in subjects:
            start = before if s is rc else peer_before
            invalid_reloads = s.receiver.count() - start
            s.vol.write(config(args.updates + 2))  # barrier
            s.receiver.wait_count(start + invalid_reloads + 1, 10)
            time.sleep(0.3)
            s.r["invalid_configs"] = args.invalid
            s.r["reloads_for_invalid"] = invalid_reloads
            s.r["barrier_after_invalid_reloads"] = s.receiver.count() - start - invalid_reloads
        if rc.r["reloads_for_invalid"] != 0:
            failures.append(f"{rc.r['reloads_for_invalid']} reloads for {args.invalid} invalid configs")
        m = metrics(port)
        results["metric_reloads_success"] = int(metric(m, "reconfig_reloads_total", {"action": "webhook", "result": "success"}))
        results["metric_reloads_failure"] = int(metric(m, "reconfig_reloads_total", {"action": "webhook", "result": "failure"}))
        for s in subjects:
            s.r["final_rss_kib"] = kib(proc_status(s.proc.pid)["VmRSS"])
    finally:
        for s in subjects:
            s.stop()

    if args.verify_rounds > 0:
        results["verify"] = verify_phase(args, work, env)
        if results["verify"]["rollbacks"] != args.verify_rounds:
            failures.append(f"{args.verify_rounds} broken versions gave {results['verify']['rollbacks']} rollbacks")
    rc.r["binary_bytes"] = os.path.getsize(args.bin)
    results["reconfig"] = rc.r
    if peer:
        peer.r["binary_bytes"] = os.path.getsize(peer_bin)
        results["configmap_reload"] = peer.r
    results["failures"] = failures
    report(results)
    if "verify" in results:
        report_verify(results["verify"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failures else 0)


def report(results):
    """One row per figure: reconfig's column, then configmap-reload's from the same run."""
    rc = results["reconfig"]
    peer = results.get("configmap_reload")
    mib = lambda k: f"{k / 1024:.2f} MiB"
    ok = lambda cond: "ok" if cond else "MISSED"

    def rss(r):
        b = r["idle_rss_breakdown_kib"]
        return f"{mib(r['idle_rss_kib'])} (anon {mib(b.get('RssAnon', 0))}, file {mib(b.get('RssFile', 0))})"

    def lat(r, p):
        v = r["latency_ms"].get(p)
        return "-" if v is None else f"{v:.3f} ms"

    def versus(p):
        """reconfig's percentile is no higher than the peer's, from this same run."""
        if not peer:
            return None
        mine, theirs = rc["latency_ms"].get(p), peer["latency_ms"].get(p)
        return ("<= configmap-reload", ok(mine is not None and theirs is not None and mine <= theirs))

    n = rc["updates"]
    rows = [
        ("idle RSS", rss, ("<= 4 MiB", ok(rc["idle_rss_kib"] <= 4096))),
        ("threads", lambda r: str(r["threads"]), None),
        (f"CPU ticks over {results['idle_window_s']:g} s idle", lambda r: f"{r['idle_cpu_ticks']} (at {TICKS} Hz)", ("0", ok(rc["idle_cpu_ticks"] == 0))),
        (f"swap -> webhook p50 ({n} updates)", lambda r: lat(r, "p50"), versus("p50")),
        ("swap -> webhook p90", lambda r: lat(r, "p90"), None),
        ("swap -> webhook p99", lambda r: lat(r, "p99"), ("<= 20 ms", ok((rc["latency_ms"].get("p99") or 1e9) <= 20)), versus("p99")),
        ("swap -> webhook max", lambda r: lat(r, "max"), None),
        ("reloads for distinct updates", lambda r: f"{r['reloads_for_updates']} of {r['updates']}", ("exact", ok(rc["reloads_for_updates"] == n))),
        ("reloads for no-op rewrites", lambda r: f"{r['reloads_for_noops']} of {r['noop_rewrites']} (barrier {r['barrier_after_noops_reloads']})", ("0", ok(rc["reloads_for_noops"] == 0))),
        ("reloads for invalid configs", lambda r: f"{r['reloads_for_invalid']} of {r['invalid_configs']}, {r['rejected']} rejected (barrier {r['barrier_after_invalid_reloads']})", ("0", ok(rc["reloads_for_invalid"] == 0 and rc["rejected"] == rc["invalid_configs"]))),
        ("RSS after the updates / peak", lambda r: f"{mib(r['rss_after_updates_kib'])} / {mib(r['peak_rss_kib'])}", None),
        ("update phase", lambda r: f"{r['update_phase_s']} s waited, {r['update_phase_cpu_ticks']} CPU ticks", None),
        ("binary", lambda r: f"{r['binary_bytes'] / 1e6:.1f} MB", None),
        ("exit on SIGTERM", lambda r: str(r["exit_code"]), None),
    ]
    print(f"command: {rc['command']}" + (f"  env: {' '.join(results['env'])}" if results["env"] else ""))
    if peer:
        print(f"peer:    {peer['command']}")
        print("         (the two take turns on every update, in alternating order)")
    else:
        print(f"note: {results['peer_note']}")
    cols = [[name, value(rc)] + ([value(peer)] if peer else []) for name, value, *_ in rows]
    heads = ["", "reconfig watch"] + (["configmap-reload"] if peer else [])
    widths = [max(len(c[i]) for c in cols + [heads]) for i in range(len(heads))]
    line = lambda cells: "  " + "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths))
    print(line(heads).rstrip())
    for cells, (_, _, *targets) in zip(cols, rows):
        verdicts = "".join(f"   [target {t[0]}: {t[1]}]" for t in targets if t)
        print((line(cells) + verdicts).rstrip())
    for f in results["failures"]:
        print(f"  FAILED: {f}")


if __name__ == "__main__":
    main()
