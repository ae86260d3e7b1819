"""A bounded load test against the real server: no errors, memory roughly flat."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from draw2digit.canvas import to_png
from draw2digit.training.synthetic import digit_drawing

DURATION_S = 20  # well inside the 60 s bound
CONCURRENCY = 16


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@pytest.mark.slow
def test_load_no_errors_and_flat_memory(live_server):
    import base64

    bodies = [
        json.dumps(
            {"image": "data:image/png;base64," + base64.b64encode(to_png(digit_drawing(d, width=w))).decode()}
        ).encode()
        for d in range(10)
        for w in (8, 18, 30)
    ]
    stop = time.monotonic() + DURATION_S
    counts = {"ok": 0, "errors": 0}
    failures: list[str] = []
    lock = threading.Lock()
    rss: list[int] = []

    def worker(k: int) -> None:
        i = k
        while time.monotonic() < stop:
            req = urllib.request.Request(
                live_server.url + "/predict",
                data=bodies[i % len(bodies)],
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    ok = r.status == 200 and json.load(r)["digit"] == (i % len(bodies)) // 3
            except (urllib.error.URLError, OSError, ValueError) as exc:
                ok = False
                with lock:
                    failures.append(repr(exc))
            with lock:
                counts["ok" if ok else "errors"] += 1
            i += CONCURRENCY

    def sampler() -> None:
        while time.monotonic() < stop:
            rss.append(rss_kib(live_server.pid))
            time.sleep(0.5)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CONCURRENCY)]
    threads.append(threading.Thread(target=sampler))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DURATION_S + 60)
    assert counts["errors"] == 0, failures[:5]
    assert counts["ok"] > 100, counts
    warm = max(rss[len(rss) // 4 : len(rss) // 2])  # after warm-up (threads' interpreters exist)
    end = max(rss[-4:])
    assert end < warm * 1.15 + 10_000, f"memory grew from {warm} KiB to {end} KiB"
    print(f"{counts['ok']} requests in {DURATION_S} s at concurrency {CONCURRENCY}; RSS {warm} -> {end} KiB")
