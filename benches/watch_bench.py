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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/reconfig")
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--settle-seconds", type=float, default=2.0)
    ap.add_argument("--updates", type=int, default=1000)
    ap.add_argument("--noops", type=int, default=100)
    ap.add_argument("--invalid", type=int, default=100)
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for reconfig (e.g. MALLOC_ARENA_MAX=1)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    sys.setswitchinterval(0.0001)  # the receiver thread must not wait for the GIL

    work = tempfile.mkdtemp(prefix="reconfig-watch-bench-")
    vol = AtomicWriter(os.path.join(work, "config"))
    vol.write(config(0))
    receiver = Receiver()
    env = dict(os.environ)
    for kv in args.env:
        k, _, v = kv.partition("=")
        env[k] = v
    log_path = os.path.join(work, "reconfig.log")
    log = open(log_path, "w")
    cmd = [
        args.bin, "watch", "--dir", vol.root,
        "--webhook", f"http://127.0.0.1:{receiver.port}/",
        "--listen", "127.0.0.1:0",
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env)
    results = {"command": " ".join(cmd), "env": args.env}
    failures = []
    try:
        port = None
        deadline = time.monotonic() + 30
        while port is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"reconfig did not start:\n{open(log_path).read()}")
            m = re.search(r"serving /healthz, /readyz and /metrics on 127\.0\.0\.1:(\d+)", open(log_path).read())
            if m:
                port = int(m.group(1))
            else:
                time.sleep(0.01)
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                    if r.status == 200:
                        break
            except Exception:
                pass
            time.sleep(0.02)

        # Idle: settle, then leave it alone (no requests) for the whole window.
        time.sleep(args.settle_seconds)
        status = proc_status(proc.pid)
        rss = kib(status["VmRSS"])
        results["idle_rss_kib"] = rss
        results["idle_rss_breakdown_kib"] = {
            k: kib(status[k]) for k in ("RssAnon", "RssFile", "RssShmem") if k in status
        }
        results["threads"] = int(status["Threads"])
        t0 = cpu_ticks(proc.pid)
        time.sleep(args.idle_seconds)
        t1 = cpu_ticks(proc.pid)
        results["idle_window_s"] = args.idle_seconds
        results["idle_cpu_ticks"] = t1 - t0
        results["idle_rss_after_window_kib"] = kib(proc_status(proc.pid)["VmRSS"])

        # Latency and exact counts: update i+1 only after the webhook of update i arrived.
        latencies = []
        hashes = []
        busy0 = cpu_ticks(proc.pid)
        start = time.monotonic()
        for i in range(1, args.updates + 1):
            swapped = vol.write(config(i))
            if swapped is None:
                raise SystemExit("an update was not written")
            if not receiver.wait_count(i, 10):
                failures.append(f"update {i}: no webhook within 10 s")
                break
            arrived, h = receiver.arrivals[i - 1]
            latencies.append((arrived - swapped) / 1e6)
            hashes.append(h)
        elapsed = time.monotonic() - start
        busy1 = cpu_ticks(proc.pid)
        time.sleep(0.5)  # anything extra would arrive now
        got = receiver.count()
        lat = sorted(latencies)
        results["updates"] = args.updates
        results["reloads_for_updates"] = got
        results["distinct_hashes"] = len(set(hashes))
        results["latency_ms"] = {
            "p50": round(percentile(lat, 50), 3),
            "p90": round(percentile(lat, 90), 3),
            "p99": round(percentile(lat, 99), 3),
            "max": round(lat[-1], 3) if lat else None,
            "min": round(lat[0], 3) if lat else None,
        }
        results["update_phase_s"] = round(elapsed, 2)
        results["update_phase_cpu_ticks"] = busy1 - busy0
        results["rss_after_updates_kib"] = kib(proc_status(proc.pid)["VmRSS"])
        results["peak_rss_kib"] = kib(proc_status(proc.pid)["VmHWM"])
        if got != args.updates:
            failures.append(f"{args.updates} updates gave {got} reloads")

        # No-op rewrites: identical content through a full ..data swap, spaced past the 5 ms window.
        before = receiver.count()
        last = config(args.updates)
        for _ in range(args.noops):
            vol.write(last, force=True)
            time.sleep(0.02)
        time.sleep(0.3)
        noop_reloads = receiver.count() - before
        vol.write(config(args.updates + 1))  # barrier: one real change is exactly one reload
        receiver.wait_count(before + noop_reloads + 1, 10)
        time.sleep(0.3)
        results["noop_rewrites"] = args.noops
        results["reloads_for_noops"] = noop_reloads
        results["barrier_after_noops_reloads"] = receiver.count() - before - noop_reloads
        if noop_reloads != 0:
            failures.append(f"{noop_reloads} reloads for {args.noops} no-op rewrites")

        # Invalid configs: each one rejected (counted), none forwarded.
        before = receiver.count()
        failed0 = metric(metrics(port), "reconfig_validation_failures_total")
        for i in range(args.invalid):
            vol.write({"config.yaml": f"server:\n  port: [unclosed {i}\n".encode()})
            deadline = time.monotonic() + 10
            while metric(metrics(port), "reconfig_validation_failures_total") < failed0 + i + 1:
                if time.monotonic() > deadline:
                    failures.append(f"invalid config {i} was not rejected within 10 s")
                    break
                time.sleep(0.002)
        invalid_reloads = receiver.count() - before
        rejected = metric(metrics(port), "reconfig_validation_failures_total") - failed0
        vol.write(config(args.updates + 2))  # barrier
        receiver.wait_count(before + invalid_reloads + 1, 10)
        time.sleep(0.3)
        results["invalid_configs"] = args.invalid
        results["rejected"] = int(rejected)
        results["reloads_for_invalid"] = invalid_reloads
        results["barrier_after_invalid_reloads"] = receiver.count() - before - invalid_reloads
        if invalid_reloads != 0:
            failures.append(f"{invalid_reloads} reloads for {args.invalid} invalid configs")
        m = metrics(port)
        results["metric_reloads_success"] = int(metric(m, "reconfig_reloads_total", {"action": "webhook", "result": "success"}))
        results["metric_reloads_failure"] = int(metric(m, "reconfig_reloads_total", {"action": "webhook", "result": "failure"}))
        results["final_rss_kib"] = kib(proc_status(proc.pid)["VmRSS"])
    finally:
        proc.terminate()
        try:
            results["exit_code"] = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            results["exit_code"] = "killed"
        log.close()

    results["binary_bytes"] = os.path.getsize(args.bin)
    results["failures"] = failures
    report(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failures else 0)


def report(r):
    mib = lambda k: f"{k / 1024:.2f} MiB"
    lat = r.get("latency_ms", {})
    b = r.get("idle_rss_breakdown_kib", {})
    ok = lambda cond: "ok" if cond else "MISSED"
    rows = [
        ("idle RSS", f"{mib(r['idle_rss_kib'])} (anon {mib(b.get('RssAnon', 0))}, file {mib(b.get('RssFile', 0))}), {r['threads']} threads", "<= 4 MiB", ok(r["idle_rss_kib"] <= 4096)),
        (f"CPU ticks over {r['idle_window_s']:g} s idle", f"{r['idle_cpu_ticks']} (at {TICKS} Hz)", "0", ok(r["idle_cpu_ticks"] == 0)),
        (f"swap -> webhook over {r['updates']} updates", f"p50 {lat.get('p50')} ms, p90 {lat.get('p90')} ms, p99 {lat.get('p99')} ms, max {lat.get('max')} ms", "p99 <= 20 ms", ok((lat.get("p99") or 1e9) <= 20)),
        ("reloads for distinct updates", f"{r['reloads_for_updates']} of {r['updates']} ({r['distinct_hashes']} distinct hashes)", "exact", ok(r["reloads_for_updates"] == r["updates"])),
        ("reloads for no-op rewrites", f"{r['reloads_for_noops']} of {r['noop_rewrites']} (barrier: {r['barrier_after_noops_reloads']})", "0", ok(r["reloads_for_noops"] == 0)),
        ("reloads for invalid configs", f"{r['reloads_for_invalid']} of {r['invalid_configs']}, {r['rejected']} rejected (barrier: {r['barrier_after_invalid_reloads']})", "0", ok(r["reloads_for_invalid"] == 0 and r["rejected"] == r["invalid_configs"])),
        ("RSS after the updates / peak", f"{mib(r['rss_after_updates_kib'])} / {mib(r['peak_rss_kib'])}", "", ""),
        ("update phase", f"{r['update_phase_s']} s wall, {r['update_phase_cpu_ticks']} CPU ticks", "", ""),
        ("binary", f"{r['binary_bytes'] / 1e6:.1f} MB; exit on SIGTERM: {r['exit_code']}", "", ""),
    ]
    print(f"command: {r['command']}" + (f"  env: {' '.join(r['env'])}" if r["env"] else ""))
    w = max(len(x[0]) for x in rows)
    for name, value, target, verdict in rows:
        print(f"  {name:<{w}}  {value}" + (f"   [target {target}: {verdict}]" if target else ""))
    for f in r["failures"]:
        print(f"  FAILED: {f}")


if __name__ == "__main__":
    main()
