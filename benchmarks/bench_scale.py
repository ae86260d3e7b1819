"""One process against N worker processes, under the same locust load: throughput, latency, memory.

    python -m benchmarks.bench_scale [--workers 2] [--users 32] [--seconds 20]   # or: make bench-scale

Starts `draw2digit serve` on loopback, first as one waitress process (8
threads), then as --workers gunicorn processes (4 threads each), runs locust
headless against each for a bounded time, and prints requests/s, p50/p95,
failures and the servers' memory (all processes summed) idle, after a third
of the run and at its end: flat means the last two agree.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from tests.support.localhost import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent


def rss_mib(pid: int) -> float:
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def run(workers: int, threads: int, users: int, seconds: int) -> dict:
    port = free_port()
    exe = Path(sys.executable).with_name("draw2digit")
    env = dict(os.environ)
    server = subprocess.Popen(
        [str(exe), "serve", "--port", str(port), "--workers", str(workers), "--threads", str(threads)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/ready", timeout=90, proc=server)
        time.sleep(2)  # every worker up
        before = rss_mib(server.pid)
        with tempfile.TemporaryDirectory() as tmp:
            prefix = Path(tmp) / "stats"
            load = subprocess.Popen(
                [
                    sys.executable, "-m", "locust", "-f", str(ROOT / "benchmarks" / "locustfile.py"),
                    "--headless", "--host", url, "-u", str(users), "-r", str(users), "-t", f"{seconds}s",
                    "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
                    "--exit-code-on-error", "0",
                ],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(seconds / 3)
            warm = rss_mib(server.pid)  # after the first third: threads and interpreters all made
            load.wait(timeout=seconds + 60)
            with open(f"{prefix}_stats.csv") as f:
                total = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
            with open(f"{prefix}_failures.csv") as f:
                failures = [f"{r['Occurrences']} x {r['Name']}: {r['Error']}" for r in csv.DictReader(f)]
        after = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "rps": float(total["Requests/s"]),
        "p50": float(total["50%"]),
        "p95": float(total["95%"]),
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "mem_before": before,
        "mem_warm": warm,
        "mem_after": after,
        "why": failures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes to compare with one (default 2)"
    )
    parser.add_argument("--users", type=int, default=32, help="simulated people drawing (default 32)")
    parser.add_argument("--seconds", type=int, default=30, help="seconds of load per server (default 30)")
    args = parser.parse_args()
    rows = [
        ("1 process x 8 threads (waitress)", run(1, 8, args.users, args.seconds)),
        (f"{args.workers} processes x 4 threads (gunicorn)", run(args.workers, 4, args.users, args.seconds)),
    ]
    print(f"locust: {args.users} users, {args.seconds} s each, loopback, {os.cpu_count()} CPU cores")
    print(
        f"{'server':<36} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'failures':>9}  memory MiB: idle, 1/3, end"
    )
    for name, r in rows:
        print(
            f"{name:<36} {r['rps']:7.0f} {r['p50']:7.0f} {r['p95']:7.0f} "
            f"{r['failures']:>4}/{r['requests']:<5} "
            f"{r['mem_before']:5.0f} {r['mem_warm']:5.0f} {r['mem_after']:5.0f}"
        )
    for name, r in rows:
        for line in r["why"]:
            print(f"  failed on {name}: {line}")
    return 0 if all(r["failures"] == 0 for _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
