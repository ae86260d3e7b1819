"""Honest confidence and "not a digit"."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from draw2digit.calibration import Calibration, ModelOutputs, apply_temperature, mahalanobis_score
from draw2digit.canvas import to_png
from draw2digit.training.calibrate import calibrate, expected_calibration_error, fit_temperature
from draw2digit.training.synthetic import digit_drawing, non_digit_drawings
from tests.conftest import MODELS


def test_temperature_fixes_a_known_overconfidence(rng):
    # True probabilities from logits z; the "model" reports softmax(3 z): over-confident by T = 3.
    z = rng.normal(0, 1.5, size=(4000, 10))
    truth = apply_temperature(np.exp(z), 1.0)
    labels = np.array([rng.choice(10, p=p) for p in truth])
    reported = apply_temperature(np.exp(z), 1 / 3)
    t = fit_temperature(reported, labels)
    assert 2.5 < t < 3.6
    assert expected_calibration_error(apply_temperature(reported, t), labels) < expected_calibration_error(
        reported, labels
    )


def test_ece_is_zero_for_a_perfect_confident_model():
    probs = np.eye(10)[np.arange(100) % 10]
    assert expected_calibration_error(probs, np.arange(100) % 10) == 0


def outputs(probs, not_digit=None) -> ModelOutputs:
    return ModelOutputs(probs, None, not_digit)


def test_calibrate_chooses_from_measured_rates(rng):
    digits = np.eye(10)[rng.integers(0, 10, 2000)] * 0.9 + 0.01
    # A not-a-digit output that separates perfectly, and probabilities that do not separate at all:
    # the rule chosen must be the one that measures best on the fit non-digits.
    sure = outputs(digits, rng.uniform(0, 0.1, 2000))
    odd = outputs(digits[:300], rng.uniform(0.5, 1.0, 300))
    report = calibrate(
        {"mnist_validation": (sure, digits.argmax(1))},
        {"mnist_test": (sure, digits.argmax(1))},
        (odd, ["shape"] * 300),
        (odd, ["shape"] * 300),
    )
    assert set(report["rules"]) == {"max_probability", "entropy", "not_digit_class"}
    assert report["rule"] == "not_digit_class"
    chosen = report["rules"]["not_digit_class"]
    assert chosen["false_rejection"]["mnist_test"] <= 0.01 and chosen["non_digit_rejection"] == 1.0
    assert report["rules"]["max_probability"]["non_digit_rejection"] < 0.05


def test_threshold_keeps_every_fit_set_under_the_false_rejection_bound(rng):
    easy = outputs(np.eye(10)[np.zeros(1000, int)], rng.uniform(0.0, 0.1, 1000))
    hard = outputs(np.eye(10)[np.zeros(1000, int)], rng.uniform(0.0, 0.6, 1000))  # pen digits look odder
    odd = outputs(np.eye(10)[np.zeros(100, int)], rng.uniform(0.7, 1.0, 100))
    report = calibrate(
        {"mnist_validation": (easy, np.zeros(1000, int)), "pen_tuning_writers": (hard, np.zeros(1000, int))},
        {"mnist_test": (easy, np.zeros(1000, int))},
        (odd, ["shape"] * 100),
        (odd, ["shape"] * 100),
        max_false_rejection=0.02,
    )
    fr = report["rules"]["not_digit_class"]["false_rejection"]
    assert fr["pen_tuning_writers"] <= 0.02 and fr["mnist_validation"] == 0.0


def test_the_chosen_rule_is_measured_at_other_budgets(rng):
    """A stricter budget keeps more real digits and catches fewer non-digits; the asked one is the rule's."""
    n = 2000
    labels = rng.integers(0, 10, n)
    digits = outputs(np.eye(10)[labels] * 0.9 + 0.01, rng.beta(1, 8, n))  # some real digits look odd
    odd = outputs(np.eye(10)[np.zeros(400, int)] * 0.9 + 0.01, rng.beta(4, 2, 400))  # overlapping scores
    report = calibrate(
        {"mnist_validation": (digits, labels), "pen_tuning_writers": (digits, labels)},
        {"mnist_test": (digits, labels), "pen_heldout_writers": (digits, labels)},
        (odd, ["shape: star"] * 400),
        (odd, ["shape: star"] * 400),
        max_false_rejection=0.03,
    )
    rows = report["budgets"]
    assert [r["max_false_rejection"] for r in rows] == [0.0025, 0.005, 0.01, 0.02, 0.03]
    asked = rows[-1]
    chosen = report["rules"][report["rule"]]
    assert asked["threshold"] == report["threshold"] == chosen["threshold"]
    assert asked["non_digit_rejection"] == chosen["non_digit_rejection"]
    assert asked["false_rejection"] == chosen["false_rejection"]
    assert asked["accuracy_kept"] == chosen["accuracy_kept"]
    for row in rows:
        assert row["false_rejection"]["pen_tuning_writers"] <= row["max_false_rejection"] + 1 / n
    rejected = [r["non_digit_rejection"] for r in rows]
    kept = [r["accuracy_kept"]["pen_heldout_writers"] for r in rows]
    assert rejected == sorted(rejected) and rejected[0] < rejected[-1]
    assert kept == sorted(kept, reverse=True) and kept[0] > kept[-1]


def test_non_digit_drawings_are_seeded_and_varied():
    a = non_digit_drawings(9, seed=3)
    b = non_digit_drawings(9, seed=3)
    assert [k for _, k in a] == [k for _, k in b] and np.array_equal(np.asarray(a[0][0]), np.asarray(b[0][0]))
    assert {k.split(": ")[0] for _, k in a} == {"letter or symbol", "scribble", "shape"}


def test_each_non_digit_says_which_glyph_or_shape_it_is():
    from PIL import Image

    from draw2digit.training.synthetic import NON_DIGIT_FAMILIES

    test = NON_DIGIT_FAMILIES["test"]
    for image, label in non_digit_drawings(60, seed=5, family="test"):
        kind, name = label.split(": ")
        assert isinstance(image, Image.Image)
        if kind == "shape":
            assert name in test["shapes"]
        elif kind == "letter or symbol":
            assert name and set(name) <= set(test["glyphs"])
        else:
            assert (kind, name) == ("scribble", "looping")
    assert {label for _, label in non_digit_drawings(6, seed=5, family="fit")} >= {"scribble: smooth"}


def test_calibrate_names_the_non_digits_that_pass_and_the_digit_read(rng):
    """Rates by kind hide that one shape close to a digit makes the misses; the report names it."""
    digits = np.eye(10)[rng.integers(0, 10, 1000)] * 0.9 + 0.01
    sure = outputs(digits, rng.uniform(0, 0.1, 1000))
    labels = ["shape: hexagon"] * 50 + ["shape: star"] * 50 + ["letter or symbol: U"] * 40
    not_digit = np.r_[rng.uniform(0, 0.05, 50), rng.uniform(0.8, 1, 50), rng.uniform(0, 1, 40)]
    read = np.eye(10)[np.r_[np.zeros(50, int), np.full(50, 4), np.full(40, 7)]] * 0.9 + 0.01
    odd = outputs(read, not_digit)
    report = calibrate({"mnist_validation": (sure, digits.argmax(1))}, {}, (odd, labels), (odd, labels))
    rule = report["rules"]["not_digit_class"]
    assert rule["non_digit_rejection_by_kind"] == pytest.approx(
        {"letter or symbol": (not_digit[100:] > 0.1).mean(), "shape": 0.5}, abs=0.03
    )
    passed = rule["non_digits_passed"]
    assert passed[0] == {"drawing": "shape: hexagon", "count": 50, "rejected": 0.0, "read_as": 0}
    assert [p["drawing"] for p in passed] == ["shape: hexagon", "letter or symbol: U"], "stars all rejected"
    assert passed[1]["read_as"] == 7 and 0 < passed[1]["rejected"] < 1


@pytest.fixture
def rejecting(predictor, monkeypatch):
    monkeypatch.setattr(predictor, "calibration", Calibration(1.0, "max_probability", 1.01))
    return predictor


def test_rejected_prediction_keeps_the_probabilities(rejecting):
    r = rejecting.predict(digit_drawing(3))
    assert r.rejected and r.digit is None and r.reason
    assert int(np.argmax(r.probabilities)) == 3 and abs(sum(r.probabilities) - 1) < 1e-5


def test_api_rejected(predictor, client, monkeypatch):
    monkeypatch.setattr(predictor, "calibration", Calibration(1.0, "max_probability", 1.01))
    body = client.post(
        "/predict", json={"image": base64.b64encode(to_png(digit_drawing(3))).decode()}
    ).get_json()
    assert body["digit"] is None and body["rejected"] is True and body["reason"]
    assert len(body["probabilities"]) == 10 and body["blank"] is False


def test_pad_says_it_is_not_a_digit(rejecting, tmp_path):
    from draw2digit.feedback import FeedbackStore
    from draw2digit.widget import DrawingPad

    pad = DrawingPad(rejecting, feedback=FeedbackStore(tmp_path / "fb.sqlite3"))
    pad.show_image(digit_drawing(3))
    assert pad.digit.value == "?" and "look like a digit" in pad.confidence.value


def test_shipped_calibration_is_applied(predictor):
    cal = predictor.calibration
    assert cal.rule is not None and cal.threshold is not None, "models/calibration.json is shipped"
    raw = predictor.probabilities(np.zeros((1, 28, 28)), calibrated=False)
    np.testing.assert_allclose(predictor.probabilities(np.zeros((1, 28, 28))), cal.apply(raw), atol=1e-6)


@pytest.mark.slow
def test_shipped_rule_rates(predictor, mnist_test, pen_digits):
    """The shipped rule, measured here on fresh drawings (other seeds than calibration used)."""
    from draw2digit.preprocess import preprocess
    from draw2digit.training import pendigits
    from draw2digit.training.evaluate import pen_accuracy

    report = json.loads((MODELS / "calibration.json").read_text())
    chosen = report["rules"][report["rule"]]
    drawings = [preprocess(im) for im, _ in non_digit_drawings(300, seed=99, family="test")]
    preds = predictor.predict_preprocessed([d for d in drawings if not d.blank])
    non_digit_rejection = np.mean([p.rejected for p in preds])
    assert abs(non_digit_rejection - chosen["non_digit_rejection"]) < 0.1, "the rate holds on fresh drawings"
    false_rejection = predictor.calibration.rejects(*predictor.outputs(mnist_test.images / 255.0)).mean()
    assert false_rejection <= 0.02
    heldout = pendigits.by_writers(pen_digits, pendigits.HELDOUT_WRITERS)[::4]
    assert pen_accuracy(predictor, heldout, seed=11).false_rejection <= 0.02, "real digits are kept"


def test_mahalanobis_score_matches_the_definition(rng):
    means = rng.normal(size=(10, 6))
    a = rng.normal(size=(6, 6))
    precision = a @ a.T + np.eye(6)
    f = rng.normal(size=(5, 6))
    direct = np.array([min((x - m) @ precision @ (x - m) for m in means) for x in f])
    np.testing.assert_allclose(mahalanobis_score(f, means, precision), -direct, rtol=1e-9)


def test_non_digit_families_share_no_shape_and_every_shape_draws_ink():
    from draw2digit.canvas import render_strokes
    from draw2digit.training.synthetic import EXTRA_FIT_SHAPES, NON_DIGIT_FAMILIES, _shape

    fit, test = (set(NON_DIGIT_FAMILIES[f]["shapes"]) for f in ("fit", "test"))
    fit |= set(EXTRA_FIT_SHAPES)
    assert not fit & test, "the test family must stay unseen by training and by the rule"
    assert not set(NON_DIGIT_FAMILIES["fit"]["glyphs"]) & set(NON_DIGIT_FAMILIES["test"]["glyphs"])
    rng = np.random.default_rng(3)
    for name in sorted(fit | test):
        strokes = _shape(rng, 280, name)
        points = np.array([p for s in strokes for p in s])
        assert points.min() >= 0 and points.max() <= 280, name
        ink = np.asarray(render_strokes(strokes, 280, 12.0))[..., 3]
        assert (ink > 0).mean() > 0.01, name


@pytest.mark.training
def test_tuning_sets_are_drawn_like_the_evaluation(pen_digits):
    from draw2digit.training import pendigits
    from draw2digit.training.calibrate import non_digit_set, pen_set

    writer = pendigits.HELDOUT_WRITERS[0]
    images, labels = pen_set((writer,), seed=5)
    expected = [d.label for d in pendigits.by_writers(pen_digits, (writer,))]
    assert list(labels) == expected and images.shape == (len(expected), 28, 28)
    assert images.dtype == np.float32 and images.min() >= 0 and images.max() <= 1
    assert (images.reshape(len(images), -1).max(1) > 0.5).all(), "every digit has ink"
    again, _ = pen_set((writer,), seed=5)
    np.testing.assert_array_equal(images, again)
    assert not np.array_equal(images, pen_set((writer,), seed=6)[0]), "the seed varies the drawing"

    non, labels = non_digit_set(30, seed=1, family="test")
    assert len(non) == len(labels) == 30
    assert {label.split(": ")[0] for label in labels} == {"letter or symbol", "scribble", "shape"}


def test_calibrate_command_lists_the_non_digits_that_pass(rng, monkeypatch, tmp_path, capsys):
    from draw2digit.cli import main
    from draw2digit.cli import training as commands

    digits = np.eye(10)[rng.integers(0, 10, 500)] * 0.9 + 0.01
    sure = (outputs(digits, rng.uniform(0, 0.1, 500)), digits.argmax(1))
    odd = outputs(np.eye(10)[np.zeros(60, int)] * 0.9 + 0.01, np.r_[np.zeros(30), np.ones(30)])
    labels = ["shape: hexagon"] * 30 + ["shape: star"] * 30
    report = calibrate(
        {"mnist_validation": sure, "pen_tuning_writers": sure},
        {"mnist_test": sure, "pen_heldout_writers": sure},
        (odd, labels),
        (odd, labels),
    )
    report["pen_writers"] = {"tuning": [], "heldout": [], "heldout_seen_in_training": []}
    budgets, given = [], []

    def fake_calibration(predictor, config, not_digits=None):
        budgets.append(config.max_false_rejection)
        given.append(None if not_digits is None else len(not_digits))
        return report, None

    monkeypatch.setattr(commands, "run_calibration", fake_calibration)
    assert main(["calibrate", "--out", str(tmp_path), "--max-false-rejection", "0.0025"]) == 0
    out = capsys.readouterr().out
    assert budgets == [0.0025] and "each threshold set so at most 0.25 % of MNIST" in out
    table = out.split("at other budgets")[1].split("\n\n")[0].strip().splitlines()[2:]
    assert [line.split()[0] for line in table] == ["0.25%", "0.5%", "1%", "2%"]
    assert [line.endswith("(this calibration)") for line in table] == [False, False, True, False]
    listed = out.split("lets through most")[1].split("\n\n")[0].strip().splitlines()[1:]
    assert len(listed) == 1 and " ".join(listed[0].split()) == "shape: hexagon 0 % rejected of 30, read as 0"
    saved = json.loads((tmp_path / "calibration.json").read_text())
    assert saved["rules"]["not_digit_class"]["non_digits_passed"][0]["drawing"] == "shape: hexagon"
    from draw2digit.feedback import FeedbackStore
    from draw2digit.training.synthetic import digit_drawing

    store = FeedbackStore(tmp_path / "corrections.sqlite3")
    store.add(digit_drawing(1), None)  # "not a digit"
    store.add(digit_drawing(7), 1)
    assert main(["calibrate", "--out", str(tmp_path), "--corrections", str(store.path)]) == 0
    assert given == [None, 1], "the drawings people said are not digits join the rule's fit set"
    capsys.readouterr()
    for bad in ("0", "1.5", "-0.01"):
        assert main(["calibrate", "--out", str(tmp_path), "--max-false-rejection", bad]) == 2
        err = capsys.readouterr().err
        assert (
            "max_false_rejection is a share of real digits between 0 and 1" in err and "Traceback" not in err
        )
    assert budgets == [0.0025, 0.01], "refused before any work"


@pytest.mark.parametrize(
    "learned, expected",
    [({"extra_shapes": True}, (True,)), ({"extra_shapes": False}, (False,)), (None, (False,))],
)
def test_rule_is_chosen_on_the_fit_family_the_model_learned(monkeypatch, learned, expected):
    """An ``extra_shapes`` model is calibrated on what it learned; the check family never changes."""
    from types import SimpleNamespace

    from draw2digit.artifacts import ModelCard
    from draw2digit.training import calibrate as calibration
    from draw2digit.training.data import Split

    tiny = Split(np.zeros((4, 28, 28), np.uint8), np.arange(4, dtype=np.uint8))
    calls = []

    def spy(count, seed, family, extra_shapes=False):
        calls.append((family, seed, extra_shapes))
        return np.zeros((2, 28, 28), np.float32), ["shape: star"] * 2

    monkeypatch.setattr(calibration, "non_digit_set", spy)
    monkeypatch.setattr(calibration, "pen_set", lambda writers, seed: (np.zeros((3, 28, 28)), np.arange(3)))
    monkeypatch.setattr(calibration, "validation_split", lambda card: (tiny, tiny))
    monkeypatch.setattr(calibration, "load_split", lambda name: tiny)
    monkeypatch.setattr(calibration, "calibrate", lambda *args, **kwargs: {})
    card = ModelCard({"data": {"non_digits": learned}} if learned else {"data": {}})
    predictor = SimpleNamespace(
        card=card,
        outputs=lambda images, calibrated: ModelOutputs(np.full((len(images), 10), 0.1), None, None),
    )
    calibration.run_calibration(predictor, calibration.CalibrationConfig(non_digits=2, seed=7))
    assert calls == [("fit", 7, *expected), ("test", 8, False)]


@pytest.mark.training
def test_extra_shapes_widen_the_fit_family_only():
    from draw2digit.training.synthetic import EXTRA_FIT_SHAPES, non_digit_drawings

    def shapes(**kwargs) -> set[str]:
        return {
            k.split(": ")[1]
            for _, k in non_digit_drawings(300, seed=4, family="fit", **kwargs)
            if "shape" in k
        }

    assert not shapes() & set(EXTRA_FIT_SHAPES)
    assert shapes(extra_shapes=True) & set(EXTRA_FIT_SHAPES)
    with pytest.raises(ValueError, match="test family must stay unseen"):
        non_digit_drawings(3, family="test", extra_shapes=True)
