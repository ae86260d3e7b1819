"""Number mode: several digits in one drawing, read left to right."""

from __future__ import annotations

import base64
import io
import itertools

import numpy as np
import pytest
from PIL import Image

from draw2digit.canvas import render_strokes, to_png
from draw2digit.preprocess import preprocess
from draw2digit.segment import _seams, shared_ink_cuts, split_digits
from draw2digit.training.evaluate import number_accuracy
from draw2digit.training.synthetic import DIGIT_STROKES, mnist_number, number_drawing, place_strokes


def written(number: str, extra: list | None = None, size: tuple[int, int] | None = None) -> Image.Image:
    """A number written with the digit templates, one box per digit, left to right."""
    w, h = size or (150 * len(number) + 150, 240)
    step = w / (len(number) + 1)
    strokes = []
    for k, ch in enumerate(number):
        left = (0.5 + k) * step
        box = (left / w, 0.12, (left + 0.8 * step) / w, 0.88)  # digits about 0.6 times as wide as tall
        strokes += place_strokes(DIGIT_STROKES[int(ch)], (w, h), box)
    return render_strokes(strokes + (extra or []), (w, h), 12)


@pytest.mark.parametrize("number", ["2025", "42", "7", "1234567890"])
def test_reads_written_numbers(predictor, number):
    result = predictor.predict_number(written(number))
    assert result.number == number
    lefts = [d.box[0] for d in result.digits]
    assert lefts == sorted(lefts)
    for a, b in itertools.pairwise(result.digits):
        assert a.box[2] <= b.box[0] + 5, "boxes do not overlap much"


def test_pieces_of_one_digit_are_merged(predictor):
    """A 1 and a 5 whose top bar was lifted off and drawn apart from its body."""
    w, h = 500, 240
    five = DIGIT_STROKES[5][0]
    body = five[1:]  # from the bar's left end down and round
    bar = [(0.4, -0.06), (0.85, -0.08)]  # the bar, drawn separately above and to the right
    strokes = [
        [(w * (0.1 + 0.2 * x), h * (0.1 + 0.8 * y)) for x, y in DIGIT_STROKES[1][0]],
        [(w * (0.5 + 0.3 * x), h * (0.14 + 0.76 * y)) for x, y in body],
        [(w * (0.5 + 0.3 * x), h * (0.14 + 0.76 * y)) for x, y in bar],
    ]
    result = predictor.predict_number(render_strokes(strokes, (w, h), 12))
    assert result.number == "15", [(d.digit, d.box) for d in result.digits]


def test_one_digit_matches_single_mode(predictor):
    image = written("3", size=(280, 280))
    parts = split_digits(image)
    assert len(parts) == 1
    # The same up to the faint anti-aliased fringe outside the ink's bounding box.
    np.testing.assert_allclose(parts[0].image, preprocess(image).image, atol=0.02)


def test_blank_number(predictor):
    result = predictor.predict_number(Image.new("RGBA", (400, 200)))
    assert (
        result.number == ""
        and result.blank
        and result.to_dict() == {"number": "", "digits": [], "blank": True, "rejected": False}
    )


def test_specks_are_ignored(predictor):
    image = written("42", extra=[[(30, 30)], [(700, 220)]])  # two stray dots
    assert predictor.predict_number(image).number == "42"


@pytest.mark.slow
def test_composed_mnist_numbers(predictor, mnist_test):
    result = number_accuracy(
        predictor, mnist_test.images, mnist_test.labels, count=60, lengths=(2, 4), seed=5
    )
    assert result[2]["digit_count_correct"] >= 0.9 and result[2]["sequence_accuracy"] >= 0.85
    assert result[4]["sequence_accuracy"] >= 0.7


def test_mnist_number_is_seeded(mnist_test):
    a = mnist_number(list(mnist_test.images[:3]), np.random.default_rng(1))
    b = mnist_number(list(mnist_test.images[:3]), np.random.default_rng(1))
    assert a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


def test_api_number_mode(client):
    body = {"image": base64.b64encode(to_png(written("2025"))).decode(), "mode": "number"}
    r = client.post("/predict", json=body)
    assert r.status_code == 200
    data = r.get_json()
    assert data["number"] == "2025" and data["blank"] is False
    assert [d["digit"] for d in data["digits"]] == [2, 0, 2, 5]
    assert all(len(d["box"]) == 4 and len(d["probabilities"]) == 10 for d in data["digits"])


def test_api_number_mode_multipart_and_default_unchanged(client):
    png = to_png(written("42"))
    r = client.post(
        "/predict?mode=number", data={"image": (io.BytesIO(png), "n.png")}, content_type="multipart/form-data"
    )
    assert r.get_json()["number"] == "42"
    single = client.post("/predict", json={"image": base64.b64encode(png).decode()}).get_json()
    assert set(single) == {"digit", "confidence", "probabilities", "blank", "rejected", "reason"}


def test_api_bad_mode(client):
    r = client.post("/predict", json={"image": "x", "mode": "letters"})
    assert r.status_code == 400 and "mode" in r.get_json()["error"]
    png = to_png(written("42"))
    form = {"image": (io.BytesIO(png), "n.png")}
    r = client.post("/predict?mode=letters", data=form, content_type="multipart/form-data")
    assert r.status_code == 400 and "mode" in r.get_json()["error"]
    r = client.post("/predict?mode=letters", data=png, content_type="image/png")
    assert r.status_code == 400 and "mode" in r.get_json()["error"]


@pytest.mark.slow
def test_numbers_of_real_pen_digits(predictor, pen_digits):
    from draw2digit.training import pendigits

    heldout = pendigits.by_writers(pen_digits, pendigits.HELDOUT_WRITERS)
    result = number_accuracy(
        predictor,
        heldout,
        [d.label for d in heldout],
        count=40,
        lengths=(2, 4),
        seed=7,
        compose=pendigits.pen_number,
    )
    assert result[2]["digit_count_correct"] >= 0.9 and result[2]["sequence_accuracy"] >= 0.85
    assert result[4]["sequence_accuracy"] >= 0.75


def test_seam_goes_round_ink_no_straight_cut_misses():
    """Two slanted blobs side by side: every middle column meets ink, the path between them none."""
    y, x = np.mgrid[0:60, 0:60]
    gap = 20 + 0.4 * y
    region = ((np.abs(x - gap) > 3) & (x > 4) & (x < 56)).astype(np.float32)
    w = region.shape[1]
    assert all(region[:, c].any() for c in range(w // 5, 4 * w // 5 + 1))
    seams = _seams(region)
    assert seams, "no path found"
    best = seams[0]
    assert len(best) == 60 and np.all(np.abs(np.diff(best)) <= 1)
    assert region[np.arange(60), best].sum() == 0


def test_each_cut_is_tried_again_with_the_ink_near_it_on_both_sides():
    """A bar 6 pixels thick cut at column 30: first the plain halves, then halves that both keep
    the 3 columns (half a pen width) either side of the cut, so neither digit comes out open."""
    blob = np.zeros((20, 60), bool)
    blob[7:13, 2:58] = True
    side = np.broadcast_to(np.arange(60) < 30, blob.shape)
    (left, right), (wide_left, wide_right) = shared_ink_cuts(blob, [side])
    assert np.array_equal(left, side) and np.array_equal(right, ~side)
    shared = np.flatnonzero((blob & wide_left & wide_right).any(axis=0))
    assert 5 <= len(shared) <= 8 and shared.min() >= 26 and shared.max() <= 33
    assert np.array_equal(blob & (wide_left | wide_right), blob)


@pytest.mark.parametrize(("seed", "truth"), [(86, "32"), (166, "06"), (355, "30"), (718, "00")])
def test_real_pen_numbers_that_touch_or_have_loose_strokes(predictor, pen_digits, seed, truth):
    """Held-out writers' pairs the straight-cut reader got wrong (322, 106, 33, 07): a 2 with a long
    tail, strokes that lean into the neighbour, a loose stroke inside a 0."""
    from draw2digit.training import pendigits

    heldout = pendigits.by_writers(pen_digits, pendigits.HELDOUT_WRITERS)
    rng = np.random.default_rng(seed)
    pair = [heldout[i] for i in rng.choice(len(heldout), size=2, replace=False)]
    assert "".join(str(d.label) for d in pair) == truth
    assert predictor.predict_number(pendigits.pen_number(pair, rng)).number == truth


@pytest.mark.parametrize("number", ["20250", "86431"])
def test_template_numbers_with_touching_neighbours(predictor, number):
    """``number_drawing`` (used by ``draw2digit bench``): an overlap joins neighbours into one blob."""
    apart, touching = number_drawing(number, 0.0), number_drawing(number, 0.35)
    assert ndimage_count(apart) == len(number)
    assert ndimage_count(touching) < len(number)
    assert predictor.predict_number(apart).number == number
    assert predictor.predict_number(touching).number == number


def test_cutting_work_is_bounded_on_a_big_scribble(predictor, monkeypatch):
    """A zigzag across a 2000x2000 canvas is one huge blob: trying cuts stops at the budget."""
    import draw2digit.segment as segment

    xs = np.arange(20, 1980, 4)
    zigzag = [[(float(x), float(1000 + 800 * np.sin(x / 37.0))) for x in xs]]
    image = render_strokes(zigzag, (2000, 2000), 40)
    seen: list[int] = []

    def confidence(images):
        seen.append(len(images))
        return [0.5] * len(images)  # every reading equally unsure: nothing cut, all tried

    assert len(split_digits(image, confidence=confidence)) == 1
    assert 1 < sum(seen) <= segment.MAX_CUT_IMAGES + 12  # one batch of cuts may start under the limit
    seen.clear()
    monkeypatch.setattr(segment, "MAX_CUT_PIXELS", 0)
    assert len(split_digits(image, confidence=confidence)) == 1
    assert seen == []  # no cut prepared, so nothing read to choose between


def test_a_short_piece_is_never_read_as_a_digit_of_its_own():
    """A 9 whose stem was drawn apart, overlapping the loop's columns: even a classifier surer of
    the pieces than of the whole (as a stroke read as 1 can be) does not make it two digits."""
    loop = [(140 + 50 * np.cos(t), 75 + 45 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 40)]
    stem = [(150.0, 135.0), (120.0, 215.0)]  # below the loop, in the same columns
    image = render_strokes([loop, stem], (300, 240), 12)
    assert ndimage_count(image) == 2

    def confidence(images):
        return [0.2] + [0.9] * (len(images) - 1)  # the whole unsure, its pieces sure

    parts = split_digits(image, confidence=confidence)
    assert len(parts) == 1


def ndimage_count(image) -> int:
    from scipy import ndimage

    from draw2digit.preprocess import ink_map

    return ndimage.label(ink_map(image) > 0.2, structure=np.ones((3, 3)))[1]


def smiley() -> Image.Image:
    from PIL import ImageDraw

    image = Image.new("RGBA", (560, 280))
    draw = ImageDraw.Draw(image)
    draw.ellipse((150, 60, 180, 90), fill="black")
    draw.ellipse((380, 60, 410, 90), fill="black")
    draw.arc((140, 80, 420, 240), 20, 160, fill="black", width=18)
    return image


def two_a_five() -> Image.Image:
    w, h = 616, 280
    strokes = place_strokes(DIGIT_STROKES[2], (w, h), (0.05, 0.1, 0.3, 0.9))
    strokes += place_strokes(DIGIT_STROKES[5], (w, h), (0.69, 0.1, 0.94, 0.9))
    strokes += [
        [(0.37 * w, 0.9 * h), (0.47 * w, 0.1 * h), (0.57 * w, 0.9 * h)],
        [(0.41 * w, 0.6 * h), (0.53 * w, 0.6 * h)],
    ]
    return render_strokes(strokes, (w, h), 16)


def _number(client, image) -> dict:
    r = client.post("/predict", json={"image": base64.b64encode(to_png(image)).decode(), "mode": "number"})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_a_number_says_which_piece_is_not_a_digit(client):
    face = _number(client, smiley())
    assert face["rejected"] is True and all(d["rejected"] for d in face["digits"]), "no digit at all"
    mixed = _number(client, two_a_five())
    assert [d["rejected"] for d in mixed["digits"]] == [False, True, False] and mixed["rejected"] is False
    assert [mixed["digits"][i]["digit"] for i in (0, 2)] == [2, 5]
    plain = _number(client, number_drawing("427"))
    assert plain["number"] == "427" and not any(d["rejected"] for d in plain["digits"])


def test_a_finished_drawing_of_two_digits_in_digit_mode_suggests_a_number(client):
    image = base64.b64encode(to_png(number_drawing("71"))).decode()
    r = client.post("/predict", json={"image": image, "final": True}).get_json()
    assert r["looks_like_number"] == "71"
    assert "looks_like_number" not in client.post("/predict", json={"image": image}).get_json(), (
        "only when final"
    )
    one = base64.b64encode(to_png(number_drawing("7"))).decode()
    assert "looks_like_number" not in client.post("/predict", json={"image": one, "final": True}).get_json()
