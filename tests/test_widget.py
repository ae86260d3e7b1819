"""The drawing pad's logic, without a browser: events in, predictions out."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from draw2digit.canvas import to_png
from draw2digit.feedback import FeedbackStore
from draw2digit.training.synthetic import DIGIT_STROKES, digit_drawing, place_strokes
from draw2digit.widget import DrawingPad


@pytest.fixture
def pad(predictor, tmp_path):
    return DrawingPad(predictor, feedback=FeedbackStore(tmp_path / "feedback.sqlite3"))


def send(pad: DrawingPad, event: str, **content) -> None:
    """A message exactly as ipycanvas' browser side sends it."""
    pad.canvas._handle_frontend_event(None, {"event": event, **content}, [])


def draw_with_mouse(pad: DrawingPad, digit: int) -> None:
    for stroke in place_strokes(DIGIT_STROKES[digit], pad.size):
        send(pad, "mouse_down", x=stroke[0][0], y=stroke[0][1])
        for x, y in stroke[1:]:
            send(pad, "mouse_move", x=x, y=y)
        send(pad, "mouse_up", x=stroke[-1][0], y=stroke[-1][1])


def test_blank_pad_prompts(pad):
    assert pad.prediction is None and pad.digit.value == ""
    assert "Draw a digit" in pad.confidence.value
    assert "0.0%" in pad.bars.value


@pytest.mark.parametrize("digit", range(10))
def test_mouse_events_to_prediction(pad, digit):
    draw_with_mouse(pad, digit)
    assert pad.prediction.digit == digit
    assert pad.digit.value == str(digit) and "% confident" in re.sub("<[^>]+>", "", pad.confidence.value)
    assert pad.preview.value[:4] == b"\x89PNG"
    assert 'class="row top"><span>' + str(digit) in pad.bars.value


def test_touch_events(pad):
    for stroke in place_strokes(DIGIT_STROKES[7], pad.size):
        send(pad, "touch_start", touches=[{"x": stroke[0][0], "y": stroke[0][1]}])
        for x, y in stroke[1:]:
            send(pad, "touch_move", touches=[{"x": x, "y": y}])
        send(pad, "touch_end", touches=[])
    assert pad.prediction.digit == 7


def test_moves_without_a_press_draw_nothing(pad):
    for x in range(20, 200, 10):
        send(pad, "mouse_move", x=x, y=100)
    send(pad, "mouse_up", x=200, y=100)
    assert pad.strokes == [] and pad.prediction is None


def test_leaving_the_canvas_ends_the_stroke(pad):
    send(pad, "mouse_down", x=150, y=30)
    for y in range(30, 260, 10):
        send(pad, "mouse_move", x=150, y=y)
    send(pad, "mouse_out", x=150, y=279)
    assert len(pad.strokes) == 1 and pad.prediction.digit == 1
    send(pad, "mouse_move", x=10, y=10)  # not drawing any more
    assert len(pad.strokes[0][1]) == 25


def test_undo_and_clear(pad):
    draw_with_mouse(pad, 1)
    assert pad.prediction.digit == 1
    pad.draw([[(40, 25), (200, 25)]])  # a crossbar: now a 7
    assert len(pad.strokes) == 2
    pad.undo_button.click()
    assert len(pad.strokes) == 1 and pad.prediction.digit == 1
    pad.clear_button.click()
    assert pad.strokes == [] and pad.prediction is None and pad.digit.value == ""


def test_a_dot_is_too_small(pad):
    send(pad, "mouse_down", x=140, y=140)
    send(pad, "mouse_up", x=140, y=140)
    assert pad.prediction.blank and "too small" in pad.confidence.value


def test_client_ready_replays_the_strokes(pad, monkeypatch):
    """A browser that connects late (or reloads) gets every stroke drawn again, in order."""
    draw_with_mouse(pad, 3)
    pad.draw([[(60, 250), (220, 250)]])
    painted = []
    monkeypatch.setattr(pad, "_paint", lambda stroke, points: painted.append(list(points)))
    send(pad, "client_ready")
    assert painted == [list(points) for _, points in pad.strokes] and len(painted) == 2


def test_bad_image_shows_an_error_not_a_traceback(pad):
    assert pad.show_image(b"not an image") is None
    assert "Could not read" in pad.confidence.value and pad.error


def test_show_image_predicts_any_image(pad):
    assert pad.show_image(digit_drawing(6)).digit == 6


def test_brush_width_is_kept_per_stroke(pad):
    pad.brush.value = 6
    pad.draw([[(140, 30), (140, 250)]])
    pad.brush.value = 30
    pad.draw([[(60, 140), (220, 140)]])
    assert [w for w, _ in pad.strokes] == [6.0, 30.0]


def test_pad_and_api_give_the_same_answer(pad, client):
    draw_with_mouse(pad, 2)
    body = {"image": "data:image/png;base64," + base64.b64encode(to_png(pad.image())).decode()}
    api = client.post("/predict", json=body).get_json()
    assert api["digit"] == pad.prediction.digit == 2
    np.testing.assert_allclose(api["probabilities"], pad.prediction.probabilities, atol=1e-5)


def test_number_mode(pad):
    pad.mode.value = "number"
    assert pad.canvas.width > pad.size, "a wider pad for several digits"
    assert "Write a number" in pad.confidence.value
    for k, digit in enumerate((4, 2)):
        box = (0.1 + 0.4 * k, 0.1, 0.35 + 0.4 * k, 0.9)
        pad.draw(place_strokes(DIGIT_STROKES[digit], (pad.canvas.width, pad.canvas.height), box))
    assert pad.number.number == "42" and pad.digit.value == "42"
    assert len(pad.number.digits) == 2 and pad.preview.value[:4] == b"\x89PNG"
    pad.mode.value = "digit"
    assert pad.canvas.width == pad.size and pad.number is None


def test_show_why(pad):
    draw_with_mouse(pad, 4)
    plain = pad.preview.value
    assert pad.why.layout.display == "none"
    pad.explain.value = True
    import io

    from PIL import Image

    assert pad.preview.value == plain, "the small preview stays; the explanation is shown beside the input"
    assert pad.why.layout.display == ""
    assert pad.why_status.value == "", pad.why_status.value
    heat, seen = Image.open(io.BytesIO(pad.why_map.value)), Image.open(io.BytesIO(pad.why_input.value))
    assert heat.mode == "RGB" and heat.size == seen.size and heat.size[0] >= 224, "big enough to read"
    assert "Why it reads 4" in pad.why_title.value and "Next most likely:" in pad.why_caption.value
    assert pad.why_status.value == "", "no progress message once it is shown"
    pad.explain.value = False
    assert pad.why.layout.display == "none"


def test_correction_from_the_pad(pad):
    assert pad.correction_row.layout.display == "none", "nothing to correct yet"
    draw_with_mouse(pad, 1)
    assert pad.prediction.confidence > 0.9
    assert pad.correction_row.layout.display == "" and pad.correct_panel.layout.display == "none"
    pad.not_right.value = True  # "Not right?" opens the digits
    assert pad.correct_panel.layout.display == ""
    pad.correct_buttons[1].click()  # what it read: not a correction
    assert pad.feedback.count() == 0 and "nothing to correct" in pad.correct_status.value
    pad.correct_buttons[7].click()
    pad.correct_buttons[7].click()  # a double click saves once
    data = pad.feedback.load()
    assert data.labels.tolist() == [7] and "saved as a 7" in pad.correct_status.value
    assert pad.correct_buttons[7].button_style == "primary" and pad.correct_buttons[3].button_style == ""
    assert all(b.disabled for b in pad.correct_buttons)
    draw_with_mouse(pad, 1)  # the next stroke: a new drawing, the thanks go away
    assert pad.correct_status.value == "" and not pad.correct_buttons[7].disabled
    pad.clear()
    assert pad.correction_row.layout.display == "none"


def test_unsure_answers_open_the_correction_digits(pad):
    pad.draw([[(30, 60), (250, 60)], [(30, 140), (250, 140)], [(90, 20), (90, 260)], [(190, 20), (190, 260)]])
    p = pad.prediction
    assert p.rejected or p.confidence < 0.8
    assert pad.correct_panel.layout.display == "" and pad.not_right.layout.display == "none"


def test_one_digit_of_a_number_is_corrected(pad):
    pad.mode.value = "number"
    for k, digit in enumerate((4, 2, 7)):
        box = (0.05 + 0.32 * k, 0.1, 0.3 + 0.32 * k, 0.9)
        pad.draw(place_strokes(DIGIT_STROKES[digit], (pad.canvas.width, pad.canvas.height), box))
    assert pad.number.number == "427"
    assert pad.correct_panel.layout.display == "none", "first choose which digit"
    pad.pieces.value = 1
    assert pad.correct_panel.layout.display == "" and "Digit 2 of 3" in pad.correct_label.value
    pad.correct_buttons[3].click()
    rec = pad.feedback.records()
    assert [(r["label"], r["predicted"], r["position"]) for r in rec] == [(3, 2, 1)]
    assert rec[0]["box"] == list(pad.number.digits[1].box) and len(rec[0]["drawing"]) == 16
    stored = pad.feedback.load().images[0] / 255
    np.testing.assert_allclose(stored, pad.number.digits[1].image, atol=1 / 255)


def test_mode_switch_fits_the_strokes_to_the_new_pad(pad):
    pad.mode.value = "number"
    strokes = [[(500.0, 40.0), (560.0, 240.0)]]  # far right of the wide pad
    pad.draw(strokes)
    pad.mode.value = "digit"
    (width, points), *_ = pad.strokes
    assert all(0 <= x <= pad.canvas.width and 0 <= y <= pad.canvas.height for x, y in points)
    assert width < float(pad.brush.value), "the pen shrinks with the drawing"
    pad.undo()
    pad.redo()
    assert pad.strokes[0][1] == points, "undo and redo stay on the new pad"


def test_undo_redo_and_clear_is_undoable(pad):
    draw_with_mouse(pad, 7)
    n = len(pad.strokes)
    pad.clear()
    assert pad.strokes == []
    pad.undo()
    assert len(pad.strokes) == n and pad.prediction.digit == 7, "Ctrl+Z brings a cleared drawing back"
    pad.undo()
    assert len(pad.strokes) == n - 1
    pad.redo()
    assert len(pad.strokes) == n
    pad.shortcuts._handle_custom_msg({"action": "clear"}, [])
    assert pad.strokes == [], "the shortcut keys' messages act as the buttons do"
    pad.shortcuts._handle_custom_msg({"action": "undo"}, [])
    assert len(pad.strokes) == n


def test_number_mode_clear_leaves_no_boxes(pad):
    pad.mode.value = "number"
    pad.draw([[(100, 40), (100, 240)]])
    assert pad.number is not None
    pad.clear()
    assert pad.number is None and pad.digit.value == ""


def test_the_pad_can_say_a_drawing_is_not_a_digit(predictor, tmp_path):
    from draw2digit.feedback import FeedbackStore
    from draw2digit.widget import DrawingPad

    pad = DrawingPad(predictor, feedback=FeedbackStore(tmp_path / "f.sqlite3"))
    pad.draw([[(140, 30), (140, 250)]])
    assert pad.prediction.digit == 1
    pad.correct_buttons[10].click()
    assert "saved as not a digit" in pad.correct_status.value
    assert pad.feedback.load().labels.tolist() == [] and len(pad.feedback.not_digits()) == 1
    assert pad.correct_buttons[10].button_style == "primary"


def test_the_pads_buttons_are_disabled_when_they_can_do_nothing(predictor, tmp_path):
    from draw2digit.feedback import FeedbackStore
    from draw2digit.widget import DrawingPad

    pad = DrawingPad(predictor, feedback=FeedbackStore(tmp_path / "f.sqlite3"))
    state = lambda: (pad.undo_button.disabled, pad.redo_button.disabled, pad.clear_button.disabled)  # noqa: E731
    assert state() == (True, True, True), "nothing drawn"
    pad.draw([[(140, 30), (140, 250)]])
    assert state() == (False, True, False)
    pad.undo()
    assert state() == (True, False, True)
    pad.redo()
    pad.clear()
    assert state() == (False, True, True), "Clear is a step: Undo brings the drawing back"


def test_number_mode_says_what_the_strip_is_and_drops_show_why(predictor, tmp_path):
    from draw2digit.feedback import FeedbackStore
    from draw2digit.widget import DrawingPad

    pad = DrawingPad(predictor, feedback=FeedbackStore(tmp_path / "f.sqlite3"))
    assert "28×28 pixels" in pad.seen_caption.value and pad.explain.layout.display != "none"
    pad.mode.value = "number"
    pad.draw([[(60, 40), (60, 250)], [(300, 40), (300, 250)]])
    assert "each digit, 28×28 pixels (2 side by side)" in pad.seen_caption.value
    assert pad.explain.layout.display == "none" and pad.seen.layout.flex_flow == "column"
    assert "2 digits" in pad.confidence.value
