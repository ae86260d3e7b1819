"""The page in real headless Chromium against the real server (waitress)."""

from __future__ import annotations

import re

import pytest

from draw2digit.training.synthetic import DIGIT_STROKES
from tests.conftest import ARTIFACTS
from tests.support.browser import MIDDLE, canvas_points, draw_with_mouse

pytestmark = pytest.mark.browser


def draw_with_touch(page, selector: str, strokes, frame=MIDDLE) -> None:
    """Real touch events through the DevTools protocol (Playwright's touchscreen only taps)."""
    cdp = page.context.new_cdp_session(page)
    box = page.locator(selector).bounding_box()
    for stroke in canvas_points(box, strokes, frame):
        x, y = stroke[0]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
        for x, y in stroke[1:]:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


CANVAS = "[data-testid=draw-canvas]"
DIGIT = "[data-testid=predicted-digit]"


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1000, "height": 800}, device_scale_factor=2)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server.url + "/")
    page.wait_for_selector(CANVAS)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def expect_digit(page, digit: int) -> None:
    from playwright.sync_api import expect

    expect(page.locator(DIGIT)).to_have_text(str(digit), timeout=10_000)


def test_blank_canvas_shows_a_prompt_not_a_guess(page):
    from playwright.sync_api import expect

    expect(page.locator("#prompt")).to_contain_text("Draw a digit")
    expect(page.locator(DIGIT)).to_have_text("")
    expect(page.locator("[data-testid=clear-button]")).to_be_disabled()


def test_drawing_each_digit_with_the_mouse(page):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    for digit in range(10):
        draw_with_mouse(page, CANVAS, DIGIT_STROKES[digit])
        expect_digit(page, digit)
        expect(page.locator("[data-testid=confidence]")).to_contain_text("% confident")
        top = page.locator("[data-testid=probabilities] li.top")
        expect(top).to_have_attribute("data-digit", str(digit))
        if digit == 3:
            page.wait_for_timeout(400)  # let the bars' 150 ms transition finish
            page.screenshot(path=str(ARTIFACTS / "flask-page.png"), full_page=True)
        page.click("[data-testid=clear-button]")
        expect(page.locator(DIGIT)).to_have_text("")


def test_preview_shows_the_model_input(page):
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[5])
    expect_digit(page, 5)
    lit = page.evaluate(
        """() => {
          const c = document.querySelector('[data-testid=preview]');
          const d = c.getContext('2d').getImageData(0, 0, 28, 28).data;
          let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++;
          return n;
        }"""
    )
    assert 40 < lit < 400, "the 28x28 preview shows a digit-sized amount of ink"


def test_undo_removes_the_last_stroke(page):
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[1])
    expect_digit(page, 1)
    before = page.eval_on_selector(CANVAS, "c => c.toDataURL()")
    # The 7's crossbar over the 1 turns it into a 7; undo brings the 1 back.
    draw_with_mouse(page, CANVAS, [[(0.1, 0.08), (0.6, 0.08)]])
    assert page.eval_on_selector(CANVAS, "c => c.toDataURL()") != before
    page.click("[data-testid=undo-button]")
    assert page.eval_on_selector(CANVAS, "c => c.toDataURL()") == before
    expect_digit(page, 1)
    page.keyboard.press("Control+z")
    from playwright.sync_api import expect

    expect(page.locator(DIGIT)).to_have_text("")
    expect(page.locator("[data-testid=undo-button]")).to_be_disabled()


def test_touch_drawing(browser, live_server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(live_server.url + "/")
    page.wait_for_selector(CANVAS)
    draw_with_touch(page, CANVAS, DIGIT_STROKES[4])
    expect_digit(page, 4)
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(400)
    page.screenshot(path=str(ARTIFACTS / "flask-page-phone.png"), full_page=True)
    context.close()


def test_a_speck_is_blank(page):
    from playwright.sync_api import expect

    box = page.locator(CANVAS).bounding_box()
    page.mouse.click(box["x"] + 140, box["y"] + 140)
    expect(page.locator("#prompt")).to_contain_text("too small", timeout=10_000)
    expect(page.locator(DIGIT)).to_have_text("")


def test_server_error_is_shown_and_the_drawing_stays(page):
    from playwright.sync_api import expect

    page.route(
        "**/predict",
        lambda route: route.fulfill(
            status=503, content_type="application/json", body='{"error": "overloaded"}'
        ),
    )
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[2])
    expect(page.locator("#error")).to_contain_text("overloaded", timeout=10_000)
    ink = page.eval_on_selector(
        CANVAS,
        "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 == 3 && v)",
    )
    assert ink, "the drawing is kept"
    page.unroute("**/predict")
    page.click("[data-testid=undo-button]")
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[2])
    expect_digit(page, 2)
    expect(page.locator("#error")).to_be_hidden()


def test_number_mode_reads_several_digits_and_boxes_them(page):
    from playwright.sync_api import expect

    page.click("label[for=mode-number]")
    expect(page.locator("body")).to_have_class("number-mode")
    for k, digit in enumerate((4, 2, 7)):
        left = 0.1 + 0.28 * k
        draw_with_mouse(page, CANVAS, DIGIT_STROKES[digit], frame=(left, 0.12, left + 0.17, 0.88))
    expect(page.locator(DIGIT)).to_have_text("427", timeout=10_000)
    expect(page.locator("[data-testid=number-digits] li")).to_have_count(3)
    boxed = page.eval_on_selector(
        "#overlay",
        "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 == 3 && v)",
    )
    assert boxed, "boxes are drawn around the digits"
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "flask-number-mode.png"))  # full_page would resize: boxes redraw
    page.click("label[for=mode-digit]")
    page.click("[data-testid=clear-button]")
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[8], frame=(0.35, 0.1, 0.65, 0.9))
    expect_digit(page, 8)


def test_show_why_overlays_the_saliency(page):
    from playwright.sync_api import expect

    draw_with_mouse(page, CANVAS, DIGIT_STROKES[7])
    expect_digit(page, 7)
    page.check("[data-testid=explain-toggle]")
    saliency = page.locator("[data-testid=saliency]")
    expect(saliency).to_be_visible(timeout=30_000)  # the first explanation loads the Keras model
    expect(saliency).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    page.uncheck("[data-testid=explain-toggle]")
    expect(saliency).to_be_hidden(timeout=10_000)
    expect(page.locator("[data-testid=preview]")).to_be_visible()


@pytest.mark.slow
def test_a_correction_on_the_page_reaches_a_finetuned_model(page, live_server, tmp_path, mnist_dir):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from playwright.sync_api import expect

    from draw2digit.feedback import FeedbackStore

    before = FeedbackStore(live_server.feedback_db).count()
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[1])
    expect_digit(page, 1)
    page.click("[data-testid=not-right]")
    page.click("[data-testid=correct-7]")
    expect(page.locator("#correct-status")).to_contain_text("saved as a 7", timeout=10_000)
    stored = FeedbackStore(live_server.feedback_db).load()
    assert len(stored.labels) == before + 1 and stored.labels[-1] == 7

    exe = Path(sys.executable).with_name("draw2digit")
    out = tmp_path / "finetuned"
    proc = subprocess.run(
        [
            str(exe),
            "finetune",
            "--corrections",
            str(live_server.feedback_db),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--mnist-limit",
            "512",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DRAW2DIGIT_DATA_DIR": str(mnist_dir)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    card = json.loads((out / "model_card.json").read_text())
    assert card["finetune"]["corrections_used"] + card["finetune"]["corrections_held_back"] == before + 1
    assert (out / "model.tflite").stat().st_size > 0


HASH = [
    [(0.39, 0.14), (0.39, 0.86)],
    [(0.61, 0.14), (0.61, 0.86)],
    [(0.21, 0.36), (0.79, 0.36)],
    [(0.21, 0.64), (0.79, 0.64)],
]


def test_a_non_digit_is_called_so(page):
    from playwright.sync_api import expect

    draw_with_mouse(page, CANVAS, HASH, frame=(0, 0, 1, 1))
    expect(page.locator("#prompt")).to_contain_text("doesn't look like a digit", timeout=10_000)
    expect(page.locator(DIGIT)).to_have_text("?")
    expect(page.locator("[data-testid=probabilities] li.top")).to_have_count(0)
    page.click("[data-testid=clear-button]")
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[6])
    expect_digit(page, 6)


def test_the_page_learns_its_users_handwriting_and_forgets_it(page, browser, live_server):
    from playwright.sync_api import expect

    taught = page.locator("[data-testid=taught]")
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[1])
    expect_digit(page, 1)
    expect(taught).to_be_hidden()
    page.click("[data-testid=not-right]")
    page.click("[data-testid=correct-7]")
    expect(page.locator("#correct-status")).to_contain_text("Learned: your 7", timeout=10_000)
    expect_digit(page, 7)  # at once, for the drawing on the pad
    expect(taught).to_have_text("Read as 7 because you taught it; the model alone says 1.")
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(400)  # the bars' transition
    page.screenshot(path=str(ARTIFACTS / "flask-learned.png"), full_page=True)

    page.reload()  # the same person after a reload: the id lives in this browser
    page.wait_for_selector(CANVAS)
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[1])
    expect_digit(page, 7)
    expect(taught).to_be_visible()

    other = browser.new_context(viewport={"width": 1000, "height": 800}).new_page()
    other.goto(live_server.url + "/")
    draw_with_mouse(other, CANVAS, DIGIT_STROKES[1])
    expect_digit(other, 1)  # someone else's answers never change
    expect(other.locator("[data-testid=taught]")).to_be_hidden()
    other.context.close()

    page.click("[data-testid=forget-button]")
    expect(page.locator("[data-testid=forget-status]")).to_contain_text("Forgotten", timeout=10_000)
    expect_digit(page, 1)
    expect(taught).to_be_hidden()
    expect(page.locator("[data-testid=forget-button]")).to_be_focused()


def test_a_digit_corrected_in_a_number_is_read_as_taught(page):
    from playwright.sync_api import expect

    def write_427():
        for k, digit in enumerate((4, 2, 7)):
            left = 0.1 + 0.28 * k
            draw_with_mouse(page, CANVAS, DIGIT_STROKES[digit], frame=(left, 0.12, left + 0.17, 0.88))

    taught = page.locator("[data-testid=taught]")
    page.click("label[for=mode-number]")
    write_427()
    expect(page.locator(DIGIT)).to_have_text("427", timeout=10_000)
    expect(taught).to_be_hidden()
    page.click("[data-testid=number-digit-1]")
    page.click("[data-testid=correct-3]")
    expect(page.locator("#correct-status")).to_contain_text("Learned: your 3 (digit 2", timeout=10_000)
    expect(page.locator(DIGIT)).to_have_text("437", timeout=10_000)  # at once, for the number on the pad
    expect(taught).to_have_text("Digit 2: Read as 3 because you taught it; the model alone says 2.")
    expect(page.locator("#correct-status")).to_contain_text("Learned: your 3")  # the new answer keeps it
    expect(page.locator("[data-testid=number-digit-1]")).to_contain_text("3")

    page.click("[data-testid=clear-button]")
    expect(taught).to_be_hidden()
    write_427()
    expect(page.locator(DIGIT)).to_have_text("437", timeout=10_000)
    expect(taught).to_be_visible()
