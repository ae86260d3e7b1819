"""What the two fronts share about drawings: fitting to a new pad, percentages, undo and redo."""

from __future__ import annotations

import pytest

from draw2digit.canvas import fit_strokes, percent
from draw2digit.history import History


def test_fit_strokes_keeps_every_point_on_the_new_pad():
    wide = [(18.0, [(600.0, 10.0), (610.0, 270.0)]), (18.0, [(5.0, 140.0)])]
    narrow = fit_strokes(wide, (616, 280), (280, 280))
    scale = 280 / 616
    assert narrow[0][0] == pytest.approx(18 * scale), "the pen shrinks with the drawing"
    for _, points in narrow:
        assert all(0 <= x <= 280 and 0 <= y <= 280 for x, y in points)
    back = fit_strokes(narrow, (280, 280), (616, 280))
    assert back[1][1][0] == pytest.approx(
        (5 * scale + (616 - 280) / 2, 140 * scale + (280 - 280 * scale) / 2)
    )


@pytest.mark.parametrize(
    "p, text",
    [
        (1.0, "100.0 %"),
        (0.99962, ">99.9 %"),
        (0.9994, "99.9 %"),
        (0.5, "50.0 %"),
        (0.0004, "<0.1 %"),
        (0.0, "0.0 %"),
    ],
)
def test_one_rounding_rule(p, text):
    assert percent(p) == text


def test_history_undo_redo_and_map():
    h = History([])
    h.push([1])
    h.push([1, 2])
    h.push([])  # a clear is a step too
    assert h.undo() and h.present == [1, 2]
    assert h.undo() and h.present == [1]
    assert h.redo() and h.present == [1, 2]
    h.push([1, 2, 3])
    assert not h.redo(), "a new step drops what could be redone"
    h.map(lambda s: [10 * v for v in s])
    assert h.present == [10, 20, 30] and h.past == [[], [10], [10, 20]]
    while h.undo():
        pass
    assert h.present == [] and not h.undo()
