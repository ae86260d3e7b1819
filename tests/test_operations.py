"""What operators watch (issue 12, part 4): liveness and readiness, request ids, JSON logs, metrics."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys

from draw2digit.canvas import to_png
from draw2digit.training.synthetic import digit_drawing
from tests.conftest import ROOT

IMAGE = base64.b64encode(to_png(digit_drawing(5))).decode()


def metric(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus' text format (0 when absent), whatever the label order."""
    import re

    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if found == {k: str(v) for k, v in labels.items()}:
            return float(m.group(3))
    return 0.0


def test_health_is_liveness_and_ready_reports_the_database(client):
    assert client.get("/health").get_json()["status"] == "ok"
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.get_json()["database"] == "ok"


def test_ready_stays_ready_when_the_database_is_down(predictor, tmp_path):
    from draw2digit.feedback import FeedbackStore
    from draw2digit_app import create_app

    (tmp_path / "not-a-dir").write_text("a file where the database's folder should be")
    store = FeedbackStore(tmp_path / "not-a-dir" / "feedback.sqlite3")
    client = create_app({"TESTING": True}, predictor=predictor, store=store).test_client()
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.get_json()["database"].startswith("unavailable")
    assert client.post("/predict", json={"image": IMAGE}).get_json()["digit"] == 5, (
        "/predict needs no database"
    )


def test_request_id_is_kept_or_made_and_returned(client):
    given = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = client.get("/health").headers["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/health").headers["X-Request-ID"]
    forged = 'x" status=500 <script>'
    hostile = client.get("/health", headers={"X-Request-ID": forged}).headers["X-Request-ID"]
    assert hostile != forged and len(hostile) == 32, "a malformed id is replaced, never echoed"


def test_one_json_log_line_per_request(predictor, store, caplog):
    from draw2digit_app import create_app

    app = create_app(
        {"TESTING": True, "LOG_REQUESTS": True, "LOG_FORMAT": "json"},
        predictor=predictor,
        store=store,
    )
    with caplog.at_level(logging.INFO, logger="draw2digit.app"):
        app.test_client().post("/predict", json={"image": IMAGE}, headers={"X-Request-ID": "req-42"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    assert len(lines) == 1
    assert lines[0] | {"ms": 0} == {
        "event": "request",
        "request_id": "req-42",
        "remote": "127.0.0.1",
        "method": "POST",
        "path": "/predict",
        "status": 200,
        "bytes": lines[0]["bytes"],
        "ms": 0,
    }


def test_metrics_count_requests_outcomes_latency_and_corrections(client):
    before = client.get("/metrics").get_data(as_text=True)
    client.post("/predict", json={"image": IMAGE})
    client.post("/predict", json={"image": IMAGE, "mode": "number"})
    client.post("/predict", json={"image": "%%%"})
    client.post("/feedback", json={"image": IMAGE, "label": 6, "predicted": 5})
    after = client.get("/metrics")
    assert after.mimetype == "text/plain"
    text = after.get_data(as_text=True)

    def grew(name, **labels):
        return metric(text, name, **labels) - metric(before, name, **labels)

    assert grew("draw2digit_requests_total", route="/predict", method="POST", status="200") == 2
    assert grew("draw2digit_requests_total", route="/predict", method="POST", status="400") == 1
    assert grew("draw2digit_predictions_total", outcome="digit") == 1
    assert grew("draw2digit_predictions_total", outcome="number") == 1
    assert grew("draw2digit_inference_seconds_count") == 2
    assert grew("draw2digit_corrections_total") == 1
    assert "draw2digit_model_info{" in text


WORKER = """
import base64, sys
from draw2digit.canvas import to_png
from draw2digit.training.synthetic import digit_drawing
from draw2digit_app import create_app
client = create_app({"TESTING": True, "FEEDBACK_DB": sys.argv[2]}).test_client()
image = base64.b64encode(to_png(digit_drawing(2))).decode()
for _ in range(int(sys.argv[1])):
    assert client.post("/predict", json={"image": image}).status_code == 200
"""


def test_metrics_add_up_across_worker_processes(tmp_path):
    """Multiprocess mode, as under gunicorn: each worker writes its files, /metrics sums them."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    (tmp_path / "prom").mkdir()
    db = str(tmp_path / "fb.sqlite3")
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(n), db], cwd=ROOT, env=env) for n in (3, 4)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    render = (
        "from draw2digit_app import create_app\n"
        f"c = create_app({{'TESTING': True, 'FEEDBACK_DB': {db!r}}}).test_client()\n"
        "print(c.get('/metrics').get_data(as_text=True))"
    )
    out = subprocess.run([sys.executable, "-c", render], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert metric(out.stdout, "draw2digit_predictions_total", outcome="digit") == 7
    assert metric(out.stdout, "draw2digit_requests_total", route="/predict", method="POST", status="200") == 7
