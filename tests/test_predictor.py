from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from draw2digit.artifacts import ModelNotFoundError, resolve_model_path
from draw2digit.canvas import to_png
from draw2digit.predictor import Predictor
from draw2digit.training.evaluate import evaluate_arrays
from draw2digit.training.synthetic import digit_drawing, redraw


@pytest.mark.slow
def test_shipped_model_accuracy_on_full_test_set(predictor, mnist_test):
    probs = predictor.probabilities(mnist_test.images.astype(np.float32) / 255)
    report = evaluate_arrays(probs, mnist_test.labels)
    assert report.count == 10000
    assert report.accuracy >= 0.995, f"shipped model scores {report.accuracy:.4f}"
    assert min(report.per_class_accuracy) >= 0.985


def test_litert_agrees_with_keras(predictor, keras_predictor, mnist_test):
    """The served LiteRT copy is the Keras model: to 1e-4 with float weights, to a few digits with int8."""
    from draw2digit.artifacts import is_quantized

    x = mnist_test.images[:1000].astype(np.float32) / 255
    fast, ref = predictor.probabilities(x), keras_predictor.probabilities(x)
    if is_quantized(predictor.card):
        assert np.abs(fast - ref).max() < 0.2 and (fast.argmax(1) == ref.argmax(1)).mean() >= 0.997
        assert np.abs(fast - ref).max() > 0, "the card says int8: the LiteRT copy must not be the float one"
    else:
        assert np.abs(fast - ref).max() < 1e-4
        assert (fast.argmax(1) == ref.argmax(1)).all()
    np.testing.assert_allclose(fast.sum(axis=1), 1.0, atol=1e-5)


def test_single_and_batch_give_the_same_answer(predictor):
    pngs = [to_png(digit_drawing(d)) for d in range(10)]
    batch = predictor.predict_many(pngs)
    single = [predictor.predict(p) for p in pngs]
    for a, b in zip(batch, single, strict=True):
        assert a.digit == b.digit
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)


@pytest.mark.parametrize("digit", range(10))
def test_reads_drawn_digits_at_any_size_place_and_polarity(predictor, digit):
    cases = [
        digit_drawing(digit),
        digit_drawing(digit, size=500, box=(0.02, 0.55, 0.22, 0.95), width=8),
        digit_drawing(digit, width=3),
        digit_drawing(digit, width=40),
        digit_drawing(digit, mode="RGB", ink=(255, 255, 255), background=(0, 0, 0)),
        digit_drawing(digit, mode="RGB", ink=(10, 10, 60), background=(245, 245, 235)),
    ]
    got = [p.digit for p in predictor.predict_many(cases)]
    assert got == [digit] * len(cases)


def test_redrawn_mnist_digits_are_read(predictor, mnist_test, rng):
    hits = 0
    idx = rng.choice(10000, 60, replace=False)
    for i in idx:
        drawing = redraw(
            mnist_test.images[i], height=float(rng.uniform(0.3, 0.9)), pen=float(rng.uniform(-1, 6))
        )
        hits += predictor.predict(drawing).digit == mnist_test.labels[i]
    assert hits >= 57


def test_blank_is_never_predicted(predictor):
    result = predictor.predict(to_png(digit_drawing(1).crop((0, 0, 10, 10))))
    assert result.blank and result.digit is None and result.confidence == 0
    assert result.to_dict() == {
        "digit": None,
        "confidence": 0.0,
        "probabilities": [0.0] * 10,
        "blank": True,
        "rejected": False,
        "reason": None,
    }


def test_result_and_its_json_form(predictor):
    r = predictor.predict(digit_drawing(7))
    assert r.digit == 7 and r.confidence == max(r.probabilities) and not r.blank
    assert r.image.shape == (28, 28)
    d = r.to_dict()
    assert set(d) == {"digit", "confidence", "probabilities", "blank", "rejected", "reason"}
    assert len(d["probabilities"]) == 10


def test_thread_safe(predictor):
    drawings = [to_png(digit_drawing(d % 10, width=10 + d)) for d in range(40)]
    serial = [predictor.predict(d).probabilities for d in drawings]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda d: predictor.predict(d).probabilities, drawings * 3))
    for i, probs in enumerate(parallel):
        np.testing.assert_allclose(probs, serial[i % 40], atol=1e-6)


def test_missing_model_has_a_helpful_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="draw2digit train"):
        Predictor(tmp_path)


def test_model_path_resolution(tmp_path, monkeypatch):
    (tmp_path / "model.tflite").write_bytes(b"x")
    monkeypatch.setenv("DRAW2DIGIT_MODEL", str(tmp_path))
    assert resolve_model_path() == tmp_path / "model.tflite"


def test_probabilities_input_checks(predictor):
    assert predictor.probabilities(np.zeros((0, 28, 28))).shape == (0, 10)
    assert predictor.probabilities(np.zeros((28, 28))).shape == (1, 10)
    with pytest.raises(ValueError):
        predictor.probabilities(np.zeros((2, 32, 32)))
    assert predictor.probabilities(np.zeros((300, 28, 28))).shape == (300, 10)  # more than one batch
