"""Corrections a flood cannot drown: rate limits per client, fair pruning and fine-tuning, no address kept.

The scenario of the issue, on SQLite and on PostgreSQL: twenty people on their own loopback addresses
correct ten drawings each, then one client floods from eight threads. Every loop is bounded.
"""

from __future__ import annotations

import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from draw2digit import db
from draw2digit.canvas import to_png
from draw2digit.feedback import FeedbackStore, fair_cap
from draw2digit.training.synthetic import digit_drawing
from tests.support.localhost import free_port

#: ten different drawings per person: digits in ten pen widths
DRAWINGS = [to_png(digit_drawing(d, width=4 + 2 * w)) for w in range(3) for d in range(10)]


@pytest.fixture
def server(predictor, store_url):
    """The app on a real socket (127.0.0.1), so that clients can come from other loopback addresses."""
    from draw2digit_app import create_app

    app = create_app({"DATABASE_URL": store_url}, predictor=predictor)
    port = free_port()
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield type("Server", (), {"port": port, "app": app, "url": store_url})
    httpd.shutdown()
    thread.join(timeout=10)


def post(port: int, source: str, path: str, body: dict) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}"), dict(response.getheaders())
    finally:
        conn.close()


def correction(i: int, label: int) -> dict:
    import base64

    return {"image": base64.b64encode(DRAWINGS[i % len(DRAWINGS)]).decode(), "label": label}


def limited_count(port: int) -> float:
    """``/metrics``' count of refused corrections (the process's: earlier tests add to it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    name = 'draw2digit_rate_limited_total{route="/feedback"}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_a_flood_is_limited_and_pruning_keeps_every_real_correction(server, capsys):
    counted_before = limited_count(server.port)
    people = [f"127.0.0.{k}" for k in range(2, 22)]
    for address in people:  # a person at a normal pace is never limited
        for i in range(10):
            status, body, _ = post(server.port, address, "/feedback", correction(i, (i + 3) % 10))
            assert status == 201, body
    flood_address = "127.0.0.99"

    def flood(i: int) -> tuple[int, dict, dict]:
        return post(server.port, flood_address, "/feedback", correction(i, (i + 1) % 10))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(flood, range(2000)))
    statuses = [s for s, _, _ in results]
    limited = [(b, h) for s, b, h in results if s == 429]
    assert statuses.count(201) + statuses.count(200) <= 30 and len(limited) >= 1970
    body, headers = limited[-1]
    assert body["error"].startswith("too many corrections") and int(headers["Retry-After"]) >= 1
    assert str(headers["Retry-After"]) in body["error"], "the message and the header agree"

    store = FeedbackStore(server.url)
    per_client = dict(store.clients())
    real = [client for client, n in per_client.items() if n == 10]
    assert len(real) == 20 and store.count() == 200 + statuses.count(201)
    keep = 200 + statuses.count(201) // 2  # must remove rows: only the flood's
    deleted = store.prune(keep)
    assert deleted > 0 and store.count() <= keep
    after = dict(store.clients())
    assert all(after[c] == 10 for c in real), "all 200 real corrections are still there"

    assert limited_count(server.port) - counted_before == len(limited), "/metrics counts them by route"

    from draw2digit.cli import main

    assert main(["db", "status", "--url", server.url]) == 0
    out = capsys.readouterr().out
    assert (
        "rows per client" in out and len([line for line in out.splitlines() if line.startswith("  ")]) == 10
    )


def test_client_addresses_are_never_stored_and_duplicates_are_kept_once(server):
    first = post(server.port, "127.0.0.7", "/feedback", correction(0, 5))
    again = post(server.port, "127.0.0.7", "/feedback", correction(0, 5))
    other = post(server.port, "127.0.0.8", "/feedback", correction(0, 5))
    assert first[0] == 201 and again[0] == 200 and again[1]["duplicate"] and again[1]["id"] == first[1]["id"]
    assert other[0] == 201, "another person's same correction is theirs"
    engine = FeedbackStore(server.url).engine()
    with engine.connect() as conn:
        rows = conn.execute(sa.select(db.corrections)).mappings().all()
    assert len(rows) == 2 and len({r["client"] for r in rows}) == 2
    dumped = repr([dict(r) for r in rows])
    assert "127.0.0.7" not in dumped and "127.0.0.8" not in dumped


def test_predict_is_not_limited_unless_an_operator_turns_it_on(predictor, store):
    from draw2digit_app import create_app

    body = correction(3, 0)
    off = create_app({"TESTING": True}, predictor=predictor, store=store).test_client()
    assert all(off.post("/predict", json=body).status_code == 200 for _ in range(12))
    config = {
        "TESTING": True,
        "PREDICT_LIMIT": "10 per minute",
        "FEEDBACK_LIMIT": "off",
    }
    on = create_app(config, predictor=predictor, store=store).test_client()
    codes = [on.post("/predict", json=body).status_code for _ in range(12)]
    assert codes == [200] * 10 + [429] * 2
    assert "too many requests" in on.post("/predict", json=body).get_json()["error"]
    assert all(on.post("/feedback", json=correction(i, 1)).status_code in (200, 201) for i in range(40))


def test_the_limit_holds_across_workers_sharing_the_database(predictor, store_url):
    """Two apps (two workers) on one database: a client's count is one count."""
    from draw2digit_app import create_app

    config = {
        "TESTING": True,
        "DATABASE_URL": store_url,
        "FEEDBACK_LIMIT": "4 per minute",
    }
    workers = [create_app(config, predictor=predictor).test_client() for _ in range(2)]
    codes = [
        workers[i % 2]
        .post("/feedback", json=correction(i, 2), environ_base={"REMOTE_ADDR": "127.0.0.5"})
        .status_code
        for i in range(6)
    ]
    assert codes == [201] * 4 + [429] * 2


def _flood_rows(url: str, client: str | None, count: int) -> None:
    """Rows straight into the table (no images to prepare): what an unlimited flood left behind."""
    engine = FeedbackStore(url).engine()
    row = {"created": "x", "label": 1, "original": b"png", "image": bytes(784), "client": client}
    with engine.begin() as conn:
        conn.execute(db.corrections.insert(), [{**row, "drawing": f"{i:016x}"} for i in range(count)])


def test_fair_pruning_never_takes_one_clients_rows_for_anothers(store_url):
    store = FeedbackStore(store_url)
    for k in range(20):
        _flood_rows(store_url, f"real{k:012d}", 10)
    _flood_rows(store_url, "f" * 16, 2000)
    _flood_rows(store_url, None, 7)  # rows from before clients were kept: one unknown client
    assert store.count() == 2207
    assert store.prune(1200) == 2207 - 1200
    left = dict(store.clients())
    assert left.pop("f" * 16) == 1200 - 207 and left.pop("unknown") == 7
    assert set(left.values()) == {10}, "every real correction kept"
    assert fair_cap([10, 10, 2000], 1200) == 1180 and fair_cap([5, 3], 100) == 5 and fair_cap([4, 4], 0) == 0


def test_fine_tuning_takes_at_most_its_cap_from_any_one_client(store_url, monkeypatch, tmp_path):
    store = FeedbackStore(store_url)
    for k in range(3):
        _flood_rows(store_url, f"c{k:015d}", 4)
    _flood_rows(store_url, "f" * 16, 50)
    capped = store.load(max_per_client=5)
    assert len(capped.labels) == 3 * 4 + 5
    assert capped.ids.tolist() == sorted(capped.ids.tolist()), "oldest first, as before"
    assert len(store.load().labels) == 62

    from draw2digit.cli import main
    from draw2digit.cli import training as commands

    seen = []

    def spy(model, corrections, out, config, verbose):
        seen.append(len(corrections.labels))
        raise SystemExit(0)

    monkeypatch.setattr(commands, "finetune", spy)
    with pytest.raises(SystemExit):
        main(["finetune", "--corrections", store_url, "--out", str(tmp_path / "ft"), "--max-per-client", "5"])
    with pytest.raises(SystemExit):
        main(["finetune", "--corrections", store_url, "--out", str(tmp_path / "ft")])
    assert seen == [17, 62], "the default cap (100) leaves small stores whole"


def test_a_database_of_the_previous_release_upgrades_with_its_rows(store_url):
    engine = db.make_engine(store_url)
    db.upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO corrections (created, label, predicted, original, image) "
                "VALUES ('old', 4, 9, :png, :img)"
            ),
            {"png": b"png", "img": bytes(784)},
        )
    engine.dispose()
    store = FeedbackStore(store_url)
    assert db.current_revision(store.engine()) == "0005"
    assert store.count() == 1 and store.clients() == [("unknown", 1)]
    assert store.records()[0]["label"] == 4
    new = store.add(DRAWINGS[0], 3, client="127.0.0.3")
    assert new > 0 and dict(store.clients())["unknown"] == 1 and len(store.clients()) == 2


def test_the_pad_says_when_it_is_limited(predictor, tmp_path):
    from draw2digit.widget import DrawingPad

    pad = DrawingPad(
        predictor, feedback=FeedbackStore(tmp_path / "fb.sqlite3"), feedback_limit="2 per minute"
    )
    said = []
    # three different drawings (a bar, a seven, a ring), each corrected to a digit it is not
    ring = [(140 + 90 * np.cos(t), 140 + 110 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 40)]
    for strokes in ([[(140, 30), (140, 250)]], [[(60, 40), (220, 40), (110, 250)]], [ring]):
        pad.clear()
        pad.draw(strokes)
        said.append(pad.correct((pad.prediction.digit + 1) % 10))
    assert said[0] and said[1] and said[2] is None
    assert "Too many corrections, try again in" in pad.correct_status.value
    assert pad.feedback.count() == 2 and pad.feedback.clients()[0][1] == 2, "the pad is one client"
