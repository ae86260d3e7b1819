"""`draw2digit serve --workers 2` (gunicorn): a killed worker, summed metrics, forwarded headers."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from draw2digit.canvas import to_png
from draw2digit.training.synthetic import digit_drawing
from tests.conftest import ARTIFACTS, MODELS
from tests.support.localhost import free_port, wait_for
from tests.test_operations import metric

BODY = json.dumps({"image": base64.b64encode(to_png(digit_drawing(4))).decode()}).encode()
CLIENTS = 4


def post(url: str) -> int:
    req = urllib.request.Request(url + "/predict", BODY, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status if json.load(r)["digit"] == 4 else -1
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError):
        return 0  # refused, reset or cut off mid-answer (the worker died with the request in flight)


@pytest.fixture
def gunicorn_server(tmp_path):
    import psutil

    port = free_port()
    exe = Path(sys.executable).with_name("draw2digit")
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "server-workers.log"
    env = {
        **os.environ,
        "DRAW2DIGIT_FEEDBACK_DB": str(tmp_path / "fb.sqlite3"),
        "DRAW2DIGIT_FEEDBACK_LIMIT": "6 per minute",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                str(exe),
                "serve",
                "--workers",
                "2",
                "--threads",
                "4",
                "--port",
                str(port),
                "--model",
                str(MODELS),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(url + "/ready", timeout=90, proc=proc, log_path=log_path)
            deadline = time.monotonic() + 30
            while len(psutil.Process(proc.pid).children()) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            yield url, proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.slow
def test_a_killed_worker_loses_only_its_requests_in_flight(gunicorn_server):
    import psutil

    url, proc = gunicorn_server
    workers = psutil.Process(proc.pid).children()
    assert len(workers) == 2
    results: list[int] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            results.append(post(url))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(3)
    before_kill = len(results)
    workers[0].send_signal(signal.SIGKILL)
    time.sleep(5)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    failed = [r for r in results if r != 200]
    assert before_kill > 20 and len(results) > before_kill + 20, "both before and after the kill it served"
    assert len(failed) <= CLIENTS, f"only requests in flight on the killed worker may fail: {failed}"
    deadline = time.monotonic() + 30
    while len(psutil.Process(proc.pid).children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(psutil.Process(proc.pid).children()) == 2, "the arbiter replaced the worker"
    assert post(url) == 200


@pytest.mark.slow
def test_metrics_add_up_across_gunicorn_workers(gunicorn_server):
    url, _ = gunicorn_server
    n = 24
    with __import__("concurrent.futures").futures.ThreadPoolExecutor(8) as pool:
        assert list(pool.map(lambda _: post(url), range(n))) == [200] * n
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    assert metric(text, "draw2digit_predictions_total", outcome="digit") == n
    pids = {
        line.split()[2]
        for line in (ARTIFACTS / "server-workers.log").read_text().splitlines()
        if "POST /predict" in line
    }
    assert len(pids) == 2, "both workers served"


def test_forwarded_headers_only_from_trusted_proxies(predictor, store):
    from draw2digit_app import create_app
    from draw2digit_app.server import trust_proxies

    seen = {}
    for hops in (0, 1):
        app = create_app({"TESTING": True}, predictor=predictor, store=store)
        app.add_url_rule("/whoami", "whoami", lambda: {"remote": __import__("flask").request.remote_addr})
        trust_proxies(app, hops)
        r = app.test_client().get("/whoami", headers={"X-Forwarded-For": "203.0.113.9"})
        seen[hops] = r.get_json()["remote"]
    assert seen == {0: "127.0.0.1", 1: "203.0.113.9"}


@pytest.mark.slow
def test_a_clients_rate_limit_holds_whichever_worker_serves_it(gunicorn_server):
    """Both workers count in one place (the corrections database): the seventh correction is refused."""
    url, _ = gunicorn_server
    pictures = [to_png(digit_drawing(d, width=6 + d)) for d in range(10)]

    def correct(i: int) -> int:
        body = {"image": base64.b64encode(pictures[i % 10]).decode(), "label": (i // 10 + i + 1) % 10}
        body = json.dumps(body).encode()
        req = urllib.request.Request(url + "/feedback", body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    with __import__("concurrent.futures").futures.ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(correct, range(40)))
    assert sorted(codes) == [201] * 6 + [429] * 34, codes
    pids = {
        line.split()[2]
        for line in (ARTIFACTS / "server-workers.log").read_text().splitlines()
        if "POST /feedback" in line
    }
    assert len(pids) == 2, "both workers served corrections"
