"""Corrections: stored safely, validated like /predict, and learned by `draw2digit finetune`."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from PIL import Image

from draw2digit.canvas import to_png
from draw2digit.cli import main
from draw2digit.feedback import FeedbackStore
from draw2digit.predictor import Predictor
from draw2digit.training.data import Split
from draw2digit.training.finetune import FinetuneConfig, finetune
from draw2digit.training.synthetic import digit_drawing
from tests.conftest import MODELS

B64 = {d: base64.b64encode(to_png(digit_drawing(d))).decode() for d in range(10)}


def test_api_feedback(client, store):
    r = client.post("/feedback", json={"image": B64[7], "label": 1, "predicted": 7})
    assert r.status_code == 201
    body = r.get_json()
    assert body == {"id": body["id"], "label": 1, "stored": 1}
    r = client.post(
        "/feedback",
        data={"image": (__import__("io").BytesIO(to_png(digit_drawing(2))), "x.png"), "label": "2"},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201 and r.get_json()["stored"] == 2
    rows = store.load()
    assert rows.ids.tolist() == [body["id"], r.get_json()["id"]] and rows.labels.tolist() == [1, 2]


def _number_png(digits=(4, 2, 7)) -> bytes:
    from draw2digit.canvas import render_strokes
    from draw2digit.training.synthetic import DIGIT_STROKES, place_strokes

    w, h = 616, 280
    strokes = []
    for k, d in enumerate(digits):
        box = (0.05 + 0.32 * k, 0.1, 0.3 + 0.32 * k, 0.9)
        strokes += place_strokes(DIGIT_STROKES[d], (w, h), box)
    return to_png(render_strokes(strokes, (w, h), 18))


def test_api_feedback_for_one_digit_of_a_number(client, store, predictor):
    png = _number_png()
    number = predictor.predict_number(png)
    assert number.number == "427"
    image = base64.b64encode(png).decode()
    r = client.post("/feedback", json={"image": image, "label": 3, "position": 1})
    assert r.status_code == 201, r.get_json()
    (rec,) = store.records()
    assert (rec["label"], rec["predicted"], rec["position"]) == (3, 2, 1), "what the server read there"
    assert rec["box"] == list(number.digits[1].box) and len(rec["drawing"]) == 16
    np.testing.assert_allclose(store.load().images[0] / 255, number.digits[1].image, atol=1 / 255)
    client.post("/feedback", json={"image": image, "label": 9, "position": 0})
    first, second = store.records()
    assert first["drawing"] == second["drawing"], "two digits of one drawing are grouped"
    r = client.post("/feedback", json={"image": image, "label": 3, "position": 3})
    assert r.status_code == 400 and "the drawing has 3 digits" in r.get_json()["error"]
    r = client.post("/feedback", json={"image": image, "label": 3, "position": -1})
    assert r.status_code == 400 and "position" in r.get_json()["error"]


@pytest.mark.parametrize(
    "kwargs, status, words",
    [
        (dict(json={"image": B64[7]}), 400, "label"),
        (dict(json={"image": B64[7], "label": 10}), 400, "label"),
        (dict(json={"image": B64[7], "label": True}), 400, "label"),
        (dict(json={"image": B64[7], "label": 3, "predicted": "x"}), 400, "predicted"),
        (dict(json={"label": 3}), 400, "image"),
        (dict(json={"image": 5, "label": 3}), 400, "string"),
        (dict(json={"image": "%%%", "label": 3}), 400, "base64"),
        (
            dict(json={"image": base64.b64encode(to_png(Image.new("RGBA", (99, 99)))).decode(), "label": 3}),
            400,
            "blank",
        ),
        (dict(json=[1]), 400, "object"),
        (dict(data="{oops", content_type="application/json"), 400, "JSON"),
        (dict(data="3", content_type="text/plain"), 415, "content type"),
        (dict(), 400, "no body"),
    ],
)
def test_api_feedback_bad_input(client, store, kwargs, status, words):
    r = client.post("/feedback", **kwargs)
    assert r.status_code == status and r.is_json and words.lower() in r.get_json()["error"].lower()
    assert store.count() == 0, "nothing is stored from a refused request"
    assert client.post("/feedback", json={"image": B64[5], "label": 5}).status_code == 201
    assert store.load().labels.tolist() == [5]


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, mnist_test):
    """A fine-tune on a small slice of MNIST plus ten corrections, in seconds."""
    tmp = tmp_path_factory.mktemp("ft")
    store = FeedbackStore(tmp / "fb.sqlite3")
    # Ten drawings labelled "7" that the model reads as something else: the thing to learn.
    for width in range(10):
        store.add(digit_drawing(1, width=4 + 3 * width), 7, predicted=1)
    small = Split(mnist_test.images[:1024], mnist_test.labels[:1024])
    held = Split(mnist_test.images[9000:], mnist_test.labels[9000:])
    card = finetune(
        MODELS,
        store.load(),
        tmp / "model",
        FinetuneConfig(epochs=2, learning_rate=3e-4, repeat=40),
        verbose=0,
        train_split=small,
        test_split=held,
    )
    return tmp, store, card


@pytest.mark.slow
def test_finetune_writes_a_versioned_model_that_learned(finetuned):
    tmp, store, card = finetuned
    ft = card["finetune"]
    assert "+ft." in card["version"] and ft["corrections_used"] == 8 and ft["corrections_held_back"] == 2
    assert set(ft["held_back_ids"]) <= set(store.load().ids.tolist())
    assert ft["after"]["heldout_corrections_accuracy"] > ft["before"]["heldout_corrections_accuracy"]
    assert ft["after"]["mnist_test_accuracy"] > 0.97, "MNIST is not forgotten"
    model = Predictor(tmp / "model")
    assert model.card.version == card["version"]
    assert json.loads((tmp / "model" / "model_card.json").read_text())["finetune"]["before"]


@pytest.mark.slow
def test_evaluate_shows_before_and_after(finetuned, mnist_dir, monkeypatch, capsys):
    tmp, store, _ = finetuned
    monkeypatch.setenv("DRAW2DIGIT_DATA_DIR", str(mnist_dir))
    args = [
        "evaluate",
        "--model",
        str(tmp / "model"),
        "--baseline",
        str(MODELS),
        "--corrections",
        str(store.path),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "held-back corrections" in out and "before" in out
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["baseline"]
    assert result["heldout_corrections"] == 2
    assert result["after"]["heldout_corrections_accuracy"] >= result["before"]["heldout_corrections_accuracy"]


def test_finetune_without_corrections_is_a_clear_error(tmp_path, capsys):
    assert main(["finetune", "--corrections", str(tmp_path / "none.sqlite3")]) == 2
    assert "no corrections" in capsys.readouterr().err


@pytest.mark.training
def test_finetune_model_reads_like_the_base_on_mnist(finetuned, mnist_test, predictor):
    tmp, _, _ = finetuned
    x = mnist_test.images[:500] / 255.0
    new, old = Predictor(tmp / "model").probabilities(x), predictor.probabilities(x)
    assert (new.argmax(1) == old.argmax(1)).mean() > 0.97
    assert np.abs(new - old).max() > 1e-4, "fine-tuning changed the model"


@pytest.mark.training
@pytest.mark.parametrize("quantize", [True, False])
def test_finetune_serves_as_its_parent_was(tmp_path, mnist_test, quantize):
    """A fine-tune of an int8 model is int8 on disk (and of a float one, float), like a blend."""
    from ai_edge_litert.interpreter import Interpreter

    from draw2digit.artifacts import is_quantized, read_model_card
    from draw2digit.training.export import save_model
    from draw2digit.training.model import build_model

    save_model(build_model(width=4, classes=11), tmp_path / "base", {"version": "b-1"}, quantize=quantize)
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    for d in range(6):
        store.add(digit_drawing(d), d, predicted=(d + 1) % 10)
    tiny = Split(mnist_test.images[:64], mnist_test.labels[:64])
    card = finetune(
        tmp_path / "base",
        store.load(),
        tmp_path / "ft",
        FinetuneConfig(epochs=1, repeat=2),
        verbose=0,
        train_split=tiny,
        test_split=tiny,
    )
    assert card["finetune"]["parent_version"] == "b-1"
    assert is_quantized(read_model_card(tmp_path / "ft")) is quantize
    tensors = Interpreter(model_path=str(tmp_path / "ft" / "model.tflite")).get_tensor_details()
    assert any(t["dtype"] == np.int8 for t in tensors) is quantize, "int8 weights on disk as the parent's"
    assert Predictor(tmp_path / "ft").outputs(mnist_test.images[:2] / 255.0).probabilities.shape == (2, 10)


def test_the_page_the_pad_and_finetune_share_one_store_by_default(predictor, tmp_path, monkeypatch, capsys):
    """No setting at all: a correction made on the page and one made on the pad both reach fine-tuning."""
    from draw2digit.widget import DrawingPad
    from draw2digit_app import create_app

    for name in ("DRAW2DIGIT_FEEDBACK_DB", "DRAW2DIGIT_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the per-user data folder, here
    monkeypatch.chdir(tmp_path)  # a checkout's instance folder would be elsewhere again
    client = create_app({"TESTING": True}, predictor=predictor).test_client()
    image = base64.b64encode(to_png(digit_drawing(1))).decode()
    assert client.post("/feedback", json={"image": image, "label": 7}).status_code == 201
    pad = DrawingPad(predictor)
    pad.draw([[(140, 30), (140, 250)]])
    assert pad.correct(4) is not None
    assert main(["finetune", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 corrections would be used" in out and str(tmp_path / "data") in out
    assert main(["db", "status"]) == 0 and "2 corrections" in capsys.readouterr().out


def test_a_correction_can_say_not_a_digit(client, store):
    r = client.post("/feedback", json={"image": B64[1], "label": "not a digit", "predicted": 1})
    assert r.status_code == 201 and r.get_json()["label"] == "not a digit"
    form = {"image": (__import__("io").BytesIO(to_png(digit_drawing(4))), "x.png"), "label": "not a digit"}
    assert client.post("/feedback", data=form, content_type="multipart/form-data").status_code == 201
    client.post("/feedback", json={"image": B64[7], "label": 1})
    assert store.count() == 3
    assert store.load().labels.tolist() == [1], "kept out of digit fine-tuning"
    assert store.not_digits().shape == (2, 28, 28) and store.not_digits().max() > 200
    assert [r["label"] for r in store.records()] == [None, None, 1]
    for bad in ("not digit", "10", 10, -1):
        r = client.post("/feedback", json={"image": B64[2], "label": bad})
        assert r.status_code == 400 and "not a digit" in r.get_json()["error"], bad
