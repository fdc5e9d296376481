#!/usr/bin/env python3
"""Time a command fed a file on stdin, and tabulate the results.

    timeit_cmd.py run --label NAME --input FILE --runs N [--warmup W] --results FILE -- CMD [ARG...]
    timeit_cmd.py table --results FILE --input FILE [--base NAME] [--peer NAME] [--floor NAME]

`run` feeds FILE to CMD on stdin with stdout to /dev/null: first W untimed
warm-up runs, then N timed runs, and appends one JSON line to the results
file. Any non-zero exit fails the run, with the command's stderr shown.

Wall time is spawn-to-reap of CMD started directly, no shell. Peak RSS
comes from the warm-up runs, under GNU time (%M): a child spawned from
Python inherits Python's own ~15 MiB high-water mark in ru_maxrss, which
would swamp small tools like sha256sum, while GNU time forks from a tiny
process. Without /usr/bin/time the timed runs' ru_maxrss is used instead
and the table marks it as inflated.

`table` prints a markdown table and the ratios peer/base and base/floor.
Standard library only.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


GNU_TIME = "/usr/bin/time"


def run_once(cmd, input_path):
    """Returns (wall seconds, ru_maxrss in bytes) of one run of cmd."""
    with open(input_path, "rb") as stdin, open(os.devnull, "wb") as devnull, \
            tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=devnull, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            sys.stderr.write(err.read().decode(errors="replace")[-4000:])
            sys.exit(f"timeit_cmd: `{' '.join(cmd)}` exited with {proc.returncode}")
    return elapsed, usage.ru_maxrss * 1024  # ru_maxrss is KiB on Linux


def gnu_time_rss(cmd, input_path):
    """Peak RSS in bytes of one run of cmd, as GNU time reports it."""
    with tempfile.NamedTemporaryFile("r") as out:
        run_once([GNU_TIME, "-f", "%M", "-o", out.name, "--", *cmd], input_path)
        return int(out.read().split()[-1]) * 1024


def cmd_run(a):
    if not a.cmd:
        sys.exit("timeit_cmd: no command given after --")
    use_gnu_time = os.access(GNU_TIME, os.X_OK) and a.warmup > 0
    rss = []
    for _ in range(a.warmup):
        if use_gnu_time:
            rss.append(gnu_time_rss(a.cmd, a.input))
        else:
            run_once(a.cmd, a.input)
    times = []
    for i in range(a.runs):
        t, m = run_once(a.cmd, a.input)
        times.append(t)
        if not use_gnu_time:
            rss.append(m)
        print(f"  {a.label}: run {i + 1}/{a.runs}: {t:.3f} s", file=sys.stderr)
    with open(a.results, "a") as f:
        f.write(json.dumps({"label": a.label, "cmd": a.cmd, "times": times, "rss": rss,
                            "rss_source": "gnu-time" if use_gnu_time else "wait4"}) + "\n")


def cmd_table(a):
    rows = {}
    with open(a.results) as f:
        for line in f:
            r = json.loads(line)
            rows[r["label"]] = r
    size = os.path.getsize(a.input)
    med = {k: statistics.median(r["times"]) for k, r in rows.items()}
    rss = {k: max(r["rss"]) for k, r in rows.items()}

    print(f"Input: {a.input}, {size:,} bytes ({size / 2**20:.2f} MiB)\n")
    inflated = [k for k, r in rows.items() if r["rss_source"] != "gnu-time"]
    print("| command | runs | median (s) | min (s) | throughput (MiB/s, median) | peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for k, r in rows.items():
        print(f"| `{' '.join(r['cmd'])}` | {len(r['times'])} | {med[k]:.3f} | {min(r['times']):.3f} "
              f"| {size / 2**20 / med[k]:.1f} | {rss[k] / 2**20:.1f}{'*' if k in inflated else ''} |")
    print()
    if inflated:
        print("\\* no GNU time (or no warm-up run): RSS from wait4, inflated by the spawning "
              "Python's own pages (~15 MiB)\n")
    if a.peer in rows and a.base in rows:
        print(f"- {a.peer} / {a.base}, median wall time: **{med[a.peer] / med[a.base]:.1f}x**"
              f"; peak RSS: {rss[a.peer] / rss[a.base]:.1f}x")
    if a.base in rows and a.floor in rows:
        print(f"- {a.base} / {a.floor}, median wall time: **{med[a.base] / med[a.floor]:.1f}x**"
              f" (how far {a.base} is from just reading and hashing the bytes)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run")
    r.add_argument("--label", required=True)
    r.add_argument("--input", required=True)
    r.add_argument("--runs", type=int, default=10)
    r.add_argument("--warmup", type=int, default=1)
    r.add_argument("--results", required=True)
    r.add_argument("cmd", nargs=argparse.REMAINDER)
    t = sub.add_parser("table")
    t.add_argument("--results", required=True)
    t.add_argument("--input", required=True)
    t.add_argument("--base", default="reconfig")
    t.add_argument("--peer", default="pyyaml")
    t.add_argument("--floor", default="sha256sum")
    a = ap.parse_args()
    if a.what == "run":
        if a.cmd and a.cmd[0] == "--":
            a.cmd = a.cmd[1:]
        if a.runs < 1:
            ap.error("--runs must be at least 1")
        cmd_run(a)
    else:
        cmd_table(a)


if __name__ == "__main__":
    main()
