"""The Voila app for many users: memory per connected visitor and time to their first prediction.

    python -m benchmarks.voila_users [--users 3]      # or: make bench-voila

Each Voila visitor gets a kernel that runs the notebook. For each setting (no
preheated kernels; a pool of preheated kernels) this starts `draw2digit voila`,
opens --users pages in headless Chromium one after another, and for each times
from opening the page to the first prediction on screen (a drawn 7), then
prints the memory of Voila and all its kernels, idle and with every visitor
connected. Loopback only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from draw2digit.training.synthetic import DIGIT_STROKES
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, draw_with_mouse
from tests.support.localhost import free_port, wait_for


def rss_mib(pid: int) -> float:
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def run(browser, users: int, preheat: int) -> dict:
    port = free_port()
    exe = Path(sys.executable).with_name("draw2digit")
    cmd = [str(exe), "voila", "--port", str(port)] + (["--preheat", str(preheat)] if preheat else [])
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    pages, firsts = [], []
    try:
        wait_for(url, timeout=120, proc=server)
        time.sleep(8 + 6 * preheat)  # the pool's kernels have run the notebook
        idle = rss_mib(server.pid)
        for _ in range(users):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            started = time.perf_counter()
            page.goto(url, timeout=180_000)
            page.wait_for_selector("canvas.d2d-canvas", timeout=180_000)
            page.wait_for_function(
                "document.querySelector('.d2d-confidence')?.textContent.includes('Draw a digit')",
                timeout=180_000,
            )
            draw_with_mouse(page, "canvas.d2d-canvas", DIGIT_STROKES[7])
            page.wait_for_function(
                "document.querySelector('.d2d-digit')?.textContent.trim() === '7'", timeout=60_000
            )
            firsts.append(time.perf_counter() - started)
            pages.append(page)
        time.sleep(2)  # the last visitor's kernel has settled
        connected = rss_mib(server.pid)
    finally:
        for page in pages:
            page.close()
        server.terminate()
        server.wait(timeout=60)
    return {"firsts": firsts, "idle": idle, "connected": connected, "per_user": (connected - idle) / users}


def main() -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3, help="visitors, one after another (default 3)")
    args = parser.parse_args()
    settings = (("no preheated kernels", 0), ("2 preheated kernels", 2))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        rows = [(name, run(browser, args.users, preheat)) for name, preheat in settings]
        browser.close()
    print(f"{args.users} visitors one after another, loopback, {os.cpu_count()} CPU cores")
    print(f"{'setting':<34} {'open -> first prediction, s':<30} {'memory MiB: idle, connected, per visitor'}")
    for name, r in rows:
        times = ", ".join(f"{t:.1f}" for t in r["firsts"])
        print(
            f"{name:<34} {times:<19} (median {statistics.median(r['firsts']):.1f}) "
            f"{r['idle']:6.0f} {r['connected']:6.0f} {r['per_user']:6.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
