"""The corrections store on SQLite and on a real PostgreSQL server started by the suite (issue 12, part 2)."""

from __future__ import annotations

import base64
import io
import sqlite3
import subprocess
import sys

import pytest
import sqlalchemy as sa
from PIL import Image

from draw2digit import db
from draw2digit.canvas import to_png
from draw2digit.feedback import BlankCorrectionError, FeedbackStore, StoreUnavailable
from draw2digit.training.synthetic import digit_drawing
from tests.conftest import ROOT
from tests.support.localhost import free_port

B64 = {d: base64.b64encode(to_png(digit_drawing(d))).decode() for d in range(10)}


def test_created_on_first_use_and_round_trips(store_url):
    store = FeedbackStore(store_url)
    assert store.count() == 0
    first = store.add(digit_drawing(3), 8, predicted=3)
    second = store.add(B64[1], 1)
    assert second > first and store.count() == 2
    data = store.load()
    assert data.labels.tolist() == [8, 1] and data.images.shape == (2, 28, 28) and data.images.max() > 200
    assert db.current_revision(store.engine()) == "0005"


def test_the_migrations_build_exactly_the_schema_the_code_uses(store_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = FeedbackStore(store_url).engine()
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diffs == []


def test_validates(store_url):
    store = FeedbackStore(store_url)
    for bad in (10, -1, True, "3"):  # None is "not a digit"; 10 only through it
        with pytest.raises(ValueError):
            store.add(digit_drawing(3), bad)
    with pytest.raises(BlankCorrectionError):
        store.add(Image.new("RGBA", (280, 280)), 3)
    assert store.count() == 0


def test_pruning_keeps_the_newest_and_is_a_job_not_a_request(store_url):
    store = FeedbackStore(store_url)
    ids = [store.add(digit_drawing(d), d) for d in range(5)]
    assert store.count() == 5, "adding never deletes"
    assert store.prune(keep=3) == 2
    assert store.load().ids.tolist() == ids[2:]
    from draw2digit.cli import main

    assert main(["db", "prune", "--url", store_url, "--keep", "1"]) == 0
    assert store.load().ids.tolist() == ids[4:]


def test_large_originals_are_shrunk(store_url):
    store = FeedbackStore(store_url)
    store.add(digit_drawing(4, size=2000), 4)
    with store.engine().connect() as conn:
        png = conn.execute(sa.select(db.corrections.c.original)).scalar_one()
    assert max(Image.open(io.BytesIO(bytes(png))).size) <= 560


WRITER = """
import base64, sys
from draw2digit.canvas import to_png
from draw2digit.feedback import FeedbackStore
from draw2digit.training.synthetic import digit_drawing
store = FeedbackStore(sys.argv[1])
k = int(sys.argv[2])
image = to_png(digit_drawing(k % 10))
print(",".join(str(store.add(image, (k + i) % 10)) for i in range(10)))
"""


def test_several_processes_writing_at_once(store_url):
    """Fresh database, four processes starting together (so they also migrate it together)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, store_url, str(k)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for k in range(4)
    ]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4
    ids = [int(i) for out in outs for i in out.strip().split(",")]
    store = FeedbackStore(store_url)
    assert len(ids) == len(set(ids)) == 40, "ids are unique"
    assert store.count() == 40 and sorted(store.load().ids.tolist()) == sorted(ids), "nothing lost"


def test_an_sqlite_file_from_the_first_release_keeps_its_rows(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:  # the schema of the first release, made without Alembic
        conn.execute(
            "CREATE TABLE corrections (id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL,"
            " label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),"
            " predicted INTEGER CHECK (predicted IS NULL OR predicted BETWEEN 0 AND 9),"
            " original BLOB NOT NULL, image BLOB NOT NULL)"
        )
        conn.execute(
            "INSERT INTO corrections (created, label, predicted, original, image)"
            " VALUES ('x', 5, 3, x'00', ?)",
            (bytes(784),),
        )
    store = FeedbackStore(path)
    store.add(to_png(digit_drawing(1)), 7, 1)
    rec = store.records()
    assert [(r["label"], r["position"]) for r in rec] == [(5, None), (7, None)]
    assert rec[0]["drawing"] is None and len(rec[1]["drawing"]) == 16
    assert db.current_revision(store.engine()) == "0005"


def test_db_status_and_upgrade_commands(store_url, capsys):
    from draw2digit.cli import main

    assert main(["db", "upgrade", "--url", store_url]) == 0
    assert main(["db", "status", "--url", store_url]) == 0
    out = capsys.readouterr().out
    assert "revision 0005, 0 corrections" in out
    assert "secret" not in str(FeedbackStore("postgresql+psycopg://user:secret@db.example/x")), (
        "no password shown"
    )


def test_a_database_that_is_down_is_a_clear_error(postgres_server):
    """A server that is not there (the suite's own server proves the driver is installed)."""
    down = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    store = FeedbackStore(down)
    with pytest.raises(StoreUnavailable, match="unavailable"):
        store.add(digit_drawing(3), 3)
    assert store.check().startswith("unavailable")


def test_feedback_answers_503_and_predict_keeps_working_when_the_database_is_down(predictor):
    from draw2digit_app import create_app

    down = FeedbackStore(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing")
    client = create_app({"TESTING": True}, predictor=predictor, store=down).test_client()
    r = client.post("/feedback", json={"image": B64[3], "label": 5})
    assert r.status_code == 503 and "nothing was stored" in r.get_json()["error"]
    assert client.post("/predict", json={"image": B64[3]}).get_json()["digit"] == 3
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.get_json()["database"].startswith("unavailable")


def test_the_app_and_finetune_read_the_same_url(predictor, store_url, monkeypatch):
    from draw2digit_app import create_app

    monkeypatch.setenv(db.ENV_DATABASE_URL, store_url)
    client = create_app({"TESTING": True}, predictor=predictor).test_client()
    assert client.post("/feedback", json={"image": B64[7], "label": 1, "predicted": 7}).status_code == 201
    assert FeedbackStore().load().labels.tolist() == [1], "the default store is the URL's"
