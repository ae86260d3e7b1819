"""Benchmark POST /predict on loopback: Draw2Digit against a tutorial-style server.

    python -m benchmarks.bench_api            # or: make bench-api

Both servers get the same real drawings (the digit templates at several pen
widths and MNIST test digits re-drawn on a 280x280 canvas), first one request at
a time (p50/p99 latency), then from 8 concurrent clients (throughput). Prints
both, the ratios, and how many drawings each server read correctly. Draw2Digit
is measured once more with a user whose memory is full (200 finished drawings
sent first), each request paired with the same one without a user: the cost of
learning each person's handwriting.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from draw2digit.canvas import to_png
from draw2digit.training.synthetic import digit_drawing, random_redraw
from tests.support.localhost import free_port

ROOT = Path(__file__).resolve().parent.parent


def drawings(count: int, seed: int = 0) -> list[tuple[bytes, int]]:
    """(JSON body, true digit) pairs: canvas PNG data URLs, as the page sends them."""
    from draw2digit.training.data import load_split

    items = [(digit_drawing(d, width=w), d) for d in range(10) for w in (6, 12, 18, 28)]
    test = load_split("test")
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(test.labels), size=max(0, count - len(items)), replace=False):
        image = random_redraw(test.images[i], rng).convert("RGBA")
        items.append((image, int(test.labels[i])))
    out = []
    for image, digit in items:
        url = "data:image/png;base64," + base64.b64encode(to_png(image.convert("RGBA"))).decode()
        out.append((json.dumps({"image": url}).encode(), digit))
    return out


class Client:
    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def predict(self, body: bytes) -> dict:
        self.conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
        return json.loads(data)


def sequential(port: int, items, runs: int) -> tuple[np.ndarray, float]:
    client = Client(port)
    for body, _ in items[:20]:
        client.predict(body)  # warm-up
    ms, correct = [], 0
    for k in range(runs):
        body, digit = items[k % len(items)]
        t = time.perf_counter()
        result = client.predict(body)
        ms.append((time.perf_counter() - t) * 1000)
        correct += result["digit"] == digit
    return np.array(ms), correct / runs


def concurrent(port: int, items, seconds: float, workers: int = 8) -> float:
    stop = time.monotonic() + seconds
    done = [0] * workers

    def work(w: int) -> None:
        client = Client(port)
        k = w
        while time.monotonic() < stop:
            client.predict(items[k % len(items)][0])
            done[w] += 1
            k += workers

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - started)


def with_user(items, user: str, final: bool = False) -> list[tuple[bytes, int]]:
    """The same requests from one user; ``final``: each drawing finished (remembered unless corrected)."""
    return [(json.dumps({**json.loads(body), "user": user, "final": final}).encode(), d) for body, d in items]


def paired(port: int, items, mine, runs: int, pause: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """The same drawings without and with a user, one after the other, so that drift hits both alike.

    A person draws for seconds between answers; the short pause lets the server write what the last
    answer was (after replying, off the request's path) before the next request, as it would then.
    """
    client = Client(port)
    alone, with_user = [], []
    for k in range(runs):
        for body, out in ((items[k % len(items)][0], alone), (mine[k % len(mine)][0], with_user)):
            time.sleep(pause)
            t = time.perf_counter()
            client.predict(body)
            out.append((time.perf_counter() - t) * 1000)
    return np.array(alone), np.array(with_user)


def start(cmd: list[str], port: int, log: Path, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})}
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            Client(port).predict(json.dumps({"image": ""}).encode())
        except RuntimeError:
            return proc  # answered (with an error): it is up
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            if proc.poll() is not None:
                raise SystemExit(f"server exited: {log.read_text()[-2000:]}") from None
            time.sleep(0.3)
        else:
            return proc
    raise SystemExit(f"server on port {port} did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=400, help="sequential requests per server")
    parser.add_argument("--seconds", type=float, default=15, help="length of the concurrent phase")
    parser.add_argument("--drawings", type=int, default=200)
    parser.add_argument("--model", default=str(ROOT / "models"))
    args = parser.parse_args()

    items = drawings(args.drawings)
    logs = ROOT / "test-artifacts"
    logs.mkdir(exist_ok=True)
    exe = Path(sys.executable).with_name("draw2digit")
    servers = {
        "draw2digit (waitress, LiteRT)": lambda port: [
            str(exe),
            "serve",
            "--port",
            str(port),
            "--model",
            args.model,
        ],
        "tutorial (Flask dev, model.predict)": lambda port: [
            sys.executable,
            str(ROOT / "benchmarks" / "tutorial_server.py"),
            str(port),
            str(Path(args.model) / "model.keras"),
        ],
    }
    results, personal = {}, None
    database = Path(tempfile.mkdtemp()) / "bench.sqlite3"  # not the user's own corrections
    for name, command in servers.items():
        port = free_port()
        log = logs / f"bench-{name.split()[0]}.log"
        proc = start(command(port), port, log, {"DRAW2DIGIT_FEEDBACK_DB": str(database)})
        try:
            ms, accuracy = sequential(port, items, args.runs)
            throughput = concurrent(port, items, args.seconds)
            if personal is None:  # ours: as one user whose memory fills up first, paired with no user
                user = str(uuid.uuid4())
                for body, _ in with_user(items, user, final=True):  # fills the memory: 200 accepted answers
                    Client(port).predict(body)
                personal = paired(port, items, with_user(items, user), args.runs)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        results[name] = (np.median(ms), np.percentile(ms, 99), throughput, accuracy)

    print(
        f"POST /predict on 127.0.0.1, {len(items)} canvas drawings (280x280 PNG data URLs), "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'server':<38}{'p50 ms':>9}{'p99 ms':>9}{'req/s @8':>10}{'correct':>9}")
    for name, (p50, p99, rps, acc) in results.items():
        print(f"{name:<38}{p50:>9.2f}{p99:>9.2f}{rps:>10.1f}{100 * acc:>8.1f}%")
    (ours, ref) = results.values()
    print(
        f"ratio (draw2digit better by): p50 {ref[0] / ours[0]:.1f}x, p99 {ref[1] / ours[1]:.1f}x, "
        f"throughput {ours[2] / ref[2]:.1f}x"
    )
    alone, mine = personal
    print(
        f"the same server, requests 20 ms apart, paired without and with a user whose memory is full: p50 "
        f"{np.median(alone):.2f} and {np.median(mine):.2f} ms, p99 {np.percentile(alone, 99):.2f} and "
        f"{np.percentile(mine, 99):.2f} ms"
    )
    print(f"learning each person's handwriting costs {np.median(mine) - np.median(alone):+.2f} ms at p50")
    return 0


if __name__ == "__main__":
    sys.exit(main())
