"""Real pen digits: reading UNIPEN, checksums, the writer split, drawing like a canvas, evaluation."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from draw2digit.cli import main
from draw2digit.training import pendigits
from draw2digit.training.data import DataError, DataIntegrityError
from draw2digit.training.pendigits import Style, draw_pen_digit, parse_unipen
from tests.conftest import MODELS

SAMPLE = """.INCLUDE dene.doc
.SEGMENT DIGIT    0 ? "7"
.COMMENT 7 4  12
.PEN_DOWN
 100  400
 300  400
 200  100
.PEN_UP
.DT 100
.PEN_DOWN
 150  250
 250  250
.PEN_UP
.SEGMENT DIGIT    1 ? "1"
.COMMENT 1 9  3
.PEN_DOWN
 250  450
 250  50
.PEN_UP
"""


def test_parse_unipen_reads_labels_writers_and_strokes():
    seven, one = parse_unipen(SAMPLE)
    assert (seven.label, seven.writer, seven.sample, len(seven.strokes)) == (7, 4, 12, 2)
    assert (one.label, one.writer, one.sample, one.points) == (1, 9, 3, 2)
    # y points up on the tablet: the 7's bar (tablet y = 400) must end up on top (smallest screen y)
    assert seven.strokes[0][0, 1] < seven.strokes[0][2, 1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('.SEGMENT DIGIT 0 ? "3"\n.COMMENT 3 1 1\n.PEN_DOWN\n 1 2 3\n.PEN_UP\n', "line 4"),
        ('.SEGMENT DIGIT 0 ? "3"\n.COMMENT 4 1 1\n.PEN_DOWN\n 1 2\n.PEN_UP\n', "differs"),
        ('.SEGMENT DIGIT 0 ? "3"\n.COMMENT 3 1 1\n', "no strokes"),
    ],
)
def test_parse_unipen_refuses_broken_text(text, message):
    with pytest.raises(DataIntegrityError, match=message):
        parse_unipen(text)


def test_missing_data_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(pendigits.ENV_PENDIGITS_DIR, str(tmp_path))
    with pytest.raises(DataError, match=pendigits.ENV_PENDIGITS_DIR):
        pendigits.load_pendigits()


def test_damaged_file_fails_its_checksum(tmp_path, monkeypatch):
    (tmp_path / pendigits.TRAIN_FILE).write_text(SAMPLE)
    monkeypatch.setenv(pendigits.ENV_PENDIGITS_DIR, str(tmp_path))
    with pytest.raises(DataIntegrityError, match="SHA-256"):
        pendigits.load_pendigits()
    assert len(pendigits.load_pendigits(verify=False)) == 2


def test_the_shared_data_and_the_writer_split(pen_digits):
    # counts from the data set's README
    assert len(pen_digits) == 7494
    counts = Counter(d.label for d in pen_digits)
    assert [counts[c] for c in range(10)] == [780, 779, 780, 719, 780, 720, 720, 778, 719, 719]
    assert {d.writer for d in pen_digits} == set(pendigits.WRITERS)
    held, tune, fit = (
        set(w) for w in (pendigits.HELDOUT_WRITERS, pendigits.TUNE_WRITERS, pendigits.FIT_WRITERS)
    )
    assert len(held) == 10 and len(tune) == 4 and len(fit) == 16
    assert not (held & tune or held & fit or tune & fit) and held | tune | fit == set(pendigits.WRITERS)
    assert {d.writer for d in pendigits.by_writers(pen_digits, pendigits.HELDOUT_WRITERS)} == held


def ink(image) -> np.ndarray:
    return np.asarray(image)[..., 3] > 128


def test_drawn_like_a_canvas_upright_sized_and_placed():
    seven = parse_unipen(SAMPLE)[0]
    im = draw_pen_digit(seven, Style(height=0.5, center=(0.3, 0.6), pen=10, smooth=False), 200)
    assert im.mode == "RGBA" and im.size == (200, 200)
    a = ink(im)
    rows, cols = np.flatnonzero(a.any(1)), np.flatnonzero(a.any(0))
    # 0.5 of the canvas tall (plus the pen's width), centred where asked
    assert 100 <= rows[-1] - rows[0] <= 112
    assert abs((rows[0] + rows[-1]) / 2 - 120) < 3 and abs((cols[0] + cols[-1]) / 2 - 60) < 3
    # the bar of the 7 is at the top: its top rows hold far more ink than its bottom rows
    top, bottom = a[rows[0] : rows[0] + 12].sum(), a[rows[-1] - 11 : rows[-1] + 1].sum()
    assert top > 3 * bottom


def test_slant_leans_the_top_right():
    one = parse_unipen(SAMPLE)[1]
    upright = ink(draw_pen_digit(one, Style(slant=0, smooth=False), 200))
    leaning = ink(draw_pen_digit(one, Style(slant=20, smooth=False), 200))

    def top_minus_bottom_x(a):
        rows = np.flatnonzero(a.any(1))
        return np.flatnonzero(a[rows[0] + 5]).mean() - np.flatnonzero(a[rows[-1] - 5]).mean()

    assert abs(top_minus_bottom_x(upright)) < 3 and top_minus_bottom_x(leaning) > 20


def test_random_styles_and_perturbations_are_seeded_and_vary(pen_digits):
    d = pen_digits[0]
    a = [pendigits.random_style(np.random.default_rng(5)) for _ in range(2)]
    assert a[0] == a[1]
    styles = [pendigits.random_style(np.random.default_rng(s)) for s in range(50)]
    assert len({s.height for s in styles}) == 50 and min(s.height for s in styles) >= 0.3
    p1, p2 = (pendigits.perturb(d, np.random.default_rng(s)) for s in (1, 2))
    assert p1.label == d.label and not np.allclose(
        np.concatenate(p1.strokes)[:3], np.concatenate(p2.strokes)[:3]
    )


def test_perturb_strength_bends_the_strokes_further_and_zero_keeps_the_trace(pen_digits):
    """The same draws at each strength: 0 only resamples the writer's points, 2 moves them twice as far."""
    digits = pendigits.by_writers(pen_digits, [1])[:40]
    images = {
        s: pendigits.render_training_set(digits, 1, seed=3, strength=s)[0].astype(float)
        for s in (0.0, 1.0, 2.0)
    }
    moved = {s: np.abs(images[s] - images[0.0]).mean() for s in (1.0, 2.0)}
    assert 0 < moved[1.0] < moved[2.0]
    d = digits[0]
    kept = pendigits.perturb(d, np.random.default_rng(0), 0.0)
    original = {tuple(p) for st in d.strokes for p in st}
    assert {tuple(p) for st in kept.strokes for p in st} <= original, "no point moved, some may be dropped"


def _stem(label: int) -> pendigits.PenDigit:
    """A bare vertical stroke (a plain 1, or a 7's stem for the crossbar), y down."""
    return pendigits.PenDigit(label, 1, 0, (np.array([[250, 50], [250, 450]], np.float32),))


def test_training_set_is_preprocessed_like_the_server(pen_digits):
    from draw2digit.preprocess import CENTRE

    images, labels = pendigits.render_training_set(pen_digits[:20], copies=2, seed=0)
    assert images.shape == (40, 28, 28) and images.dtype == np.uint8
    assert list(labels) == [d.label for d in pen_digits[:20]] * 2
    # MNIST framing: the centre of mass near (14, 14)
    rows = (images.sum(2) * np.arange(28)).sum(1) / images.sum((1, 2))
    assert np.all(np.abs(rows - CENTRE) < 1.5)


def test_numbers_of_pen_digits(pen_digits):
    rng = np.random.default_rng(3)
    two = pendigits.pen_number(pen_digits[:2], rng)
    five = pendigits.pen_number(pen_digits[:5], np.random.default_rng(3))
    assert five.size[0] > two.size[0] and two.size[1] == five.size[1] == int(120 * 1.6 + 80)
    assert two.mode == "RGBA" and ink(two).any()
    again = pendigits.pen_number(pen_digits[:2], np.random.default_rng(3))
    assert np.array_equal(np.asarray(two), np.asarray(again))


@pytest.mark.training
def test_cut_pieces_are_the_digits_the_reader_cuts_out_of_touching_pairs(pen_digits):
    """Pairs of a 0 and a 1 only: every piece kept is one of them, both occur, and a stricter
    share of the digit's own ink keeps fewer pieces; seeded like every training drawing."""
    from draw2digit.preprocess import CENTRE

    pool = [next(d for d in pen_digits if d.label == 0), next(d for d in pen_digits if d.label == 1)]
    images, labels = pendigits.render_cut_pieces(pool, 24, seed=0)
    assert images.dtype == np.uint8 and images.shape == (len(labels), 28, 28) and len(labels) >= 12
    assert set(labels.tolist()) == {0, 1}
    rows = (images.sum(2) * np.arange(28)).sum(1) / images.sum((1, 2))
    assert np.all(np.abs(rows - CENTRE) < 1.5), "prepared like the reader's pieces: MNIST framing"
    again, _ = pendigits.render_cut_pieces(pool, 24, seed=0)
    other, _ = pendigits.render_cut_pieces(pool, 24, seed=1)
    assert np.array_equal(images, again) and not np.array_equal(images[:8], other[:8])
    strict, _ = pendigits.render_cut_pieces(pool, 24, seed=0, whole_share=0.97, foreign_share=0.02)
    assert len(strict) < len(labels)
    assert len(pendigits.render_cut_pieces(pool, 24, seed=0, whole_share=1.01)[1]) == 0


def test_cut_pieces_come_from_the_readers_own_cuts(pen_digits):
    """The pieces of one touching pair are among the halves ``split_digits`` weighs."""
    from draw2digit import segment

    pool = [d for d in pen_digits[:60] if d.label in (3, 0)]
    images, _ = pendigits.render_cut_pieces(pool, 1, seed=6)
    assert len(images), "this seed's pair touches"
    drawing, _, _ = pendigits.touching_pair(pool, np.random.default_rng(6))
    weighed = []

    def confidence(batch):
        weighed.extend(np.uint8(np.round(b * 255)) for b in batch)
        return [0.5] * len(batch)

    segment.split_digits(drawing, confidence=confidence)
    assert all(any(np.array_equal(piece, w) for w in weighed) for piece in images)


@pytest.mark.training
def test_pen_accuracy_report_adds_up(predictor, pen_digits):
    from draw2digit.training.evaluate import pen_accuracy

    sample = pendigits.by_writers(pen_digits, [5])[:120]
    r = pen_accuracy(predictor, sample, seed=0)
    assert r.count == 120 and r.confusion.sum() == 120 and r.writers == [5] and r.accuracy_interval is None
    assert r.accuracy == pytest.approx(np.trace(r.confusion) / 120)
    assert r.false_rejection == pytest.approx(r.confusion[:, 10].sum() / 120)
    assert r.top_accuracy >= r.accuracy > 0.8
    assert len(r.mistakes) == 120 - np.trace(r.confusion)
    assert "held-out writers" in r.table() and "interval" not in r.table()
    two = pen_accuracy(predictor, sample[:60] + pendigits.by_writers(pen_digits, [7])[:60], seed=0)
    low, high = two.accuracy_interval
    assert two.writers == [5, 7] and low <= two.accuracy <= high
    assert f"{100 * low:.2f}-{100 * high:.2f} %" in two.table()


def test_writer_interval_grows_with_how_much_writers_differ():
    from draw2digit.training.evaluate import writer_interval

    writers = np.repeat(np.arange(10), 100)
    alike = np.tile(np.arange(100) < 98, 10)  # every writer 98 %
    assert writer_interval(alike, writers) == pytest.approx((0.98, 0.98))
    # the same 98 % overall, but writers 0 and 1 at 90 %, the others at 100 %: the interval
    # reaches down past the two weak writers' share and stays under 100 % above
    apart = np.concatenate([np.arange(100) < (90 if w < 2 else 100) for w in range(10)])
    low, high = writer_interval(apart, writers)
    assert apart.mean() == pytest.approx(0.98) and 0.90 <= low <= 0.93 and 0.99 <= high < 1.0
    assert writer_interval(apart, np.zeros(1000)) is None, "one writer: no spread to measure"


def test_writer_interval_holds_the_true_accuracy_of_new_writers_95_times_in_100():
    """Ten writers of 250 digits each, their own accuracies drawn around 98.7 % as the held-out
    writers' are: the 95 % interval must hold the accuracy of writers at large about that often
    (resampling the ten writers, the method before, held it 86 % of the time here)."""
    from draw2digit.training.evaluate import writer_interval

    rng = np.random.default_rng(1)
    writers = np.repeat(np.arange(10), 250)
    mean, held = 60 / 60.8, 0
    for _ in range(400):
        own = rng.beta(60, 0.8, 10)  # each writer's own accuracy
        right = rng.random(writers.size) < own[writers]
        low, high = writer_interval(right, writers)
        held += low <= mean <= high
    assert held / 400 >= 0.92


def _report(count: int, wrong: list[int]):
    from draw2digit.training.evaluate import PenReport

    return PenReport(
        count=count,
        accuracy=1 - len(wrong) / count,
        top_accuracy=1.0,
        false_rejection=0.0,
        per_digit=[],
        per_writer={},
        confusion=np.zeros((10, 11), np.int64),
        writers=[],
        mistakes=[(i, 0, 1) for i in wrong],
    )


def test_paired_comparison_counts_the_drawings_only_one_model_reads():
    from draw2digit.training.evaluate import paired_comparison

    before = _report(100, [0, 1, 2, 3, 4, 5, 6, 7, 50])
    after = _report(100, [7, 60])  # 8 gained (0-6 and 50), 1 lost (60), 7 missed by both
    c = paired_comparison(after, before)
    assert (c["gained"], c["lost"]) == (8, 1)
    assert c["after_accuracy"] - c["before_accuracy"] == pytest.approx((8 - 1) / 100)
    assert c["p_value"] == pytest.approx(2 * (1 + 9) / 2**9)  # 8 of 9 on one side: 0.039
    assert paired_comparison(before, after)["p_value"] == pytest.approx(c["p_value"]), "symmetric"
    assert paired_comparison(_report(100, [1, 2]), _report(100, [3, 4]))["p_value"] == 1.0
    assert paired_comparison(after, after)["p_value"] == 1.0
    with pytest.raises(ValueError, match="different drawings"):
        paired_comparison(after, _report(99, []))


@pytest.mark.training
def test_cli_evaluate_pen_against_a_baseline(capsys, mnist_dir, monkeypatch):
    monkeypatch.setenv("DRAW2DIGIT_DATA_DIR", str(mnist_dir))
    args = ["evaluate", "--pen", "--writers", "28", "--baseline", str(MODELS / "mnist-only")]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    c = out["pen_baseline"]
    assert c["after_accuracy"] == out["pen"]["accuracy"]
    assert c["after_accuracy"] - c["before_accuracy"] == pytest.approx((c["gained"] - c["lost"]) / 250)
    assert c["gained"] > c["lost"] and c["p_value"] < 0.05, "the pen-trained model reads writer 28 better"
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"{c['gained']} read right only after and {c['lost']} only before" in printed


@pytest.mark.training
def test_cli_evaluate_pen_json(capsys, mnist_dir, monkeypatch):
    monkeypatch.setenv("DRAW2DIGIT_DATA_DIR", str(mnist_dir))
    assert main(["evaluate", "--pen", "--writers", "28", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    pen = out["pen"]
    assert pen["writers"] == [28] and pen["count"] == 250 and list(pen["per_writer"]) == ["28"]
    assert len(pen["confusion"]) == 10 and len(pen["confusion"][0]) == 11
    assert sum(map(sum, pen["confusion"])) == 250 and pen["accuracy_interval"] is None


@pytest.mark.parametrize("writers", ["0", "31", "five", ""])
def test_cli_evaluate_refuses_unknown_writers(capsys, writers):
    assert main(["evaluate", "--pen", "--writers", writers]) == 2
    assert "--writers" in capsys.readouterr().err


@pytest.mark.parametrize(("writers", "message"), [("1,x", "numbers like"), ("0,31", "numbered 1 to 30")])
def test_cli_train_refuses_unknown_pen_writers(capsys, tmp_path, writers, message):
    args = ["train", "--out", str(tmp_path), "--set", "pen_copies=1", "--set", f"pen_writers={writers}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "pen_writers" in err and message in err and "Traceback" not in err
    for setting, said in (
        ("pen_writers=all", "pen_writers shapes the pen digits: it needs pen_copies"),
        ("extra_shapes=true", "extra_shapes widens the non-digits: it needs non_digits"),
        ("cut_pieces=100", "cut_pieces shapes the pen digits: it needs pen_copies"),
        ("pen_perturb=2", "pen_perturb shapes the pen digits: it needs pen_copies"),
        ("distill_weight=1.5", "distill_weight is a share between 0 and 1"),
        ("elastic=30", "unknown field 'elastic'"),
    ):
        assert main(["train", "--out", str(tmp_path), "--set", setting]) == 2
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err, setting
    assert not any(tmp_path.iterdir()), "refused before any work"


def test_seen_in_training_reads_the_model_card():
    from draw2digit.artifacts import ModelCard

    card = ModelCard({"data": {"pen_digits": {"writers": [1, 2, 5, 28]}}})
    assert pendigits.seen_in_training(card, pendigits.HELDOUT_WRITERS) == [5, 28]
    assert pendigits.seen_in_training(card, [3, 4]) == []
    assert pendigits.seen_in_training(ModelCard({"data": {}}), pendigits.WRITERS) == [], "MNIST-only saw none"


@pytest.mark.training
def test_cli_evaluate_says_when_the_writers_were_in_training(capsys, tmp_path, mnist_dir, monkeypatch):
    """A model trained on all 30 writers has no held-out figure: evaluate says so instead of boasting."""
    import shutil

    from tests.conftest import MODELS

    monkeypatch.setenv("DRAW2DIGIT_DATA_DIR", str(mnist_dir))
    for name in ("model.tflite", "model_card.json", "calibration.json", "calibration_features.npz"):
        shutil.copy(MODELS / name, tmp_path / name)
    card = json.loads((tmp_path / "model_card.json").read_text())

    def trained_on(writers):
        card["data"]["pen_digits"]["writers"] = list(writers)
        (tmp_path / "model_card.json").write_text(json.dumps(card))

    trained_on(pendigits.FIT_WRITERS)
    assert main(["evaluate", "--model", str(tmp_path), "--pen", "--writers", "28"]) == 0
    assert "not held-out" not in capsys.readouterr().out
    trained_on(pendigits.WRITERS)
    assert main(["evaluate", "--model", str(tmp_path), "--pen", "--writers", "28,5"]) == 0
    assert "trained on writers [5, 28]: their figures below are not held-out" in capsys.readouterr().out
    assert main(["evaluate", "--model", str(tmp_path), "--pen", "--writers", "28", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pen_writers_seen_in_training"] == [28]


def test_cli_evaluate_pen_without_data_says_where_to_put_it(capsys, tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("DRAW2DIGIT_DATA_DIR", str(mnist_dir))
    monkeypatch.setenv(pendigits.ENV_PENDIGITS_DIR, str(tmp_path))
    assert main(["evaluate", "--pen"]) == 2
    err = capsys.readouterr().err
    assert "pen digits not found" in err and pendigits.ENV_PENDIGITS_DIR in err and "Traceback" not in err
