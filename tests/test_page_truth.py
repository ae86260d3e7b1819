"""What the page shows is always true (issue 43): one percent rule, no verdict mid-stroke, focus kept,
"Show why" in view, the tagline of the mode. Each test reproduces something seen to go wrong."""

from __future__ import annotations

import json
import re

import pytest

from draw2digit.canvas import percent
from draw2digit.training.synthetic import DIGIT_STROKES
from tests.conftest import ARTIFACTS
from tests.test_browser import CANVAS, DIGIT, HASH, draw_with_mouse, expect_digit

pytestmark = pytest.mark.browser


def expect():
    from playwright.sync_api import expect as _expect

    return _expect


def answer_with(page, body: dict) -> None:
    page.route(
        "**/predict",
        lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(body)),
    )


def test_every_percentage_follows_the_librarys_rule(open_page):
    page = open_page()
    probs = [0.99962, 0.00038, 0.0004, 0.5, 0.9994, 0.0, 0.00049, 0.12345, 0.9995, 1.0]
    answer_with(page, {"digit": 0, "confidence": probs[0], "probabilities": probs, "blank": False})
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[0])
    expect()(page.locator("[data-testid=confidence]")).to_have_text(f"{percent(probs[0])} confident")
    for d, p in enumerate(probs):
        bar = page.locator(f"[data-testid=probabilities] li[data-digit='{d}'] .bar-value")
        expect()(bar).to_have_text(percent(p))


def test_the_tagline_says_what_to_draw_in_each_mode(open_page):
    page = open_page()
    tagline = page.locator("[data-testid=tagline]")
    expect()(tagline).to_contain_text("Draw a digit")
    page.click("label[for=mode-number]")
    expect()(tagline).to_contain_text("Write a number")
    expect()(tagline).not_to_contain_text("Draw a digit")
    page.click("label[for=mode-digit]")
    expect()(tagline).to_contain_text("Draw a digit")


def test_no_verdict_while_the_pen_is_down_and_one_announcement_per_drawing(open_page):
    page = open_page()
    probs = [0.02] * 10
    probs[2] = 0.82
    answer_with(
        page,
        {
            "digit": None,
            "confidence": 0.82,
            "probabilities": probs,
            "blank": False,
            "rejected": True,
            "reason": "the model reads it as something other than a digit",
        },
    )
    page.eval_on_selector(
        "[data-testid=announce]",
        "el => { window.announced = 0; new MutationObserver(() => window.announced++)"
        ".observe(el, {childList: true, characterData: true, subtree: true}); }",
    )
    box = page.locator(CANVAS).bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3
    page.mouse.move(x0, y0)
    page.mouse.down()
    for k in range(20):  # one slow stroke: two seconds with the pen down
        page.mouse.move(x0 + 4 * k, y0 + 5 * k)
        page.wait_for_timeout(100)
        assert page.locator(DIGIT).inner_text() != "?", "no verdict while the pen is down"
        assert page.locator("[data-testid=correction]").is_hidden(), "no correction panel mid-stroke"
        assert "doesn't look like a digit" not in page.locator("#prompt").inner_text()
    expect()(page.locator(DIGIT)).to_have_text("2")  # the likeliest digit, shown quietly
    assert page.evaluate("window.announced") == 0, "nothing announced mid-stroke"
    page.mouse.up()
    expect()(page.locator(DIGIT)).to_have_text("?", timeout=10_000)  # the verdict, once the drawing settles
    expect()(page.locator("[data-testid=correct-panel]")).to_be_visible()
    page.wait_for_timeout(1500)
    assert page.evaluate("window.announced") == 1, "the settled answer is announced once"
    expect()(page.locator("[data-testid=announce]")).to_contain_text("Not a digit")


def test_keyboard_focus_never_drops_to_the_page(open_page):
    page = open_page()
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[1])
    expect_digit(page, 1)
    page.focus("[data-testid=undo-button]")
    page.keyboard.press("Enter")  # the last undo disables Undo
    expect()(page.locator("[data-testid=undo-button]")).to_be_disabled()
    assert page.evaluate("document.activeElement !== document.body"), "focus kept after the last Undo"
    page.keyboard.press("Enter")  # on Redo now: the stroke comes back
    expect_digit(page, 1)
    page.focus("[data-testid=clear-button]")
    page.keyboard.press("Enter")
    expect()(page.locator("[data-testid=clear-button]")).to_be_disabled()
    assert page.evaluate("document.activeElement.id") == "pad", "focus goes to the pad after Clear"


def test_show_why_comes_into_view(open_page):
    page = open_page(viewport={"width": 1000, "height": 560})
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[4])
    expect_digit(page, 4)
    page.click("[data-testid=explain-toggle]")
    expect()(page.locator("[data-testid=saliency]")).to_be_visible(timeout=10_000)
    page.wait_for_timeout(800)  # the smooth scroll
    top = page.eval_on_selector("[data-testid=why-card]", "el => el.getBoundingClientRect().top")
    assert top < page.evaluate("innerHeight"), "the card that opened is on screen"


def test_a_number_with_a_symbol_says_which_piece_is_not_a_digit(open_page):
    page = open_page()
    page.click("label[for=mode-number]")
    for left, strokes in ((0.05, DIGIT_STROKES[2]), (0.37, HASH), (0.69, DIGIT_STROKES[5])):
        draw_with_mouse(page, CANVAS, strokes, frame=(left, 0.12, left + 0.22, 0.88))
    expect()(page.locator(DIGIT)).to_have_text("2?5", timeout=10_000)
    expect()(page.locator("[data-testid=confidence]")).to_have_text("Digit 2 doesn't look like a digit.")
    expect()(page.locator("[data-testid=number-digit-1]")).to_contain_text("?")
    expect()(page.locator("#correct-label")).to_have_text("Digit 2 of 3 is a:")  # that piece's correction


def test_a_drawing_with_no_digit_is_not_read_as_a_number(open_page):
    page = open_page()
    page.click("label[for=mode-number]")
    eye = [[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)]]
    mouth = [[(x / 10, 0.3 + 0.7 * (1 - ((x - 5) / 5) ** 2)) for x in range(11)]]
    draw_with_mouse(page, CANVAS, eye, frame=(0.3, 0.2, 0.34, 0.28))
    draw_with_mouse(page, CANVAS, eye, frame=(0.66, 0.2, 0.7, 0.28))
    draw_with_mouse(page, CANVAS, mouth, frame=(0.25, 0.45, 0.75, 0.8))
    expect()(page.locator(DIGIT)).to_have_text("?", timeout=10_000)
    expect()(page.locator("#prompt")).to_contain_text("no digit in it")


def test_two_digits_in_digit_mode_suggest_a_number(open_page):
    page = open_page()
    for left, d in ((0.12, 7), (0.55, 1)):
        draw_with_mouse(page, CANVAS, DIGIT_STROKES[d], frame=(left, 0.25, left + 0.3, 0.75))
    suggest = page.locator("[data-testid=number-suggest]")
    expect()(suggest).to_contain_text("(71)", timeout=10_000)
    page.click("[data-testid=read-as-number]")
    expect()(page.locator(DIGIT)).to_have_text("71", timeout=10_000)
    expect()(suggest).to_be_hidden()


def test_a_correction_can_say_not_a_digit(open_page, live_server):
    from draw2digit.feedback import FeedbackStore

    page = open_page()
    store = FeedbackStore(live_server.feedback_db)
    before = len(store.not_digits())
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[1])
    expect_digit(page, 1)
    page.click("[data-testid=not-right]")
    page.click("[data-testid=correct-none]")
    expect()(page.locator("#correct-status")).to_contain_text("saved as not a digit", timeout=10_000)
    assert len(store.not_digits()) == before + 1, "stored as such, not as a digit"
    expect()(page.locator(DIGIT)).to_have_text("?", timeout=10_000)  # this person taught it: not a digit
    expect()(page.locator("[data-testid=taught]")).to_contain_text("the model alone says 1")


def test_a_lost_server_is_said_and_the_page_recovers_when_it_returns(browser, tmp_path):
    """The real thing: the server stops mid-use and starts again on the same port."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import MODELS
    from tests.support.localhost import free_port, wait_for

    port = free_port()
    exe = Path(sys.executable).with_name("draw2digit")
    cmd = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--model", str(MODELS)]
    env = {**os.environ, "DRAW2DIGIT_FEEDBACK_DB": str(tmp_path / "f.sqlite3")}
    url = f"http://127.0.0.1:{port}"

    def start():
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(url + "/health", proc=proc)
        return proc

    server = start()
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    phone_context = browser.new_context(viewport={"width": 390, "height": 740}, has_touch=True)
    try:
        page = context.new_page()
        phone = phone_context.new_page()
        for p in (page, phone):
            p.goto(url + "/")
            p.wait_for_selector(CANVAS)
        draw_with_mouse(page, CANVAS, DIGIT_STROKES[3])
        expect_digit(page, 3)
        draw_with_mouse(phone, CANVAS, DIGIT_STROKES[3])
        expect_digit(phone, 3)
        page.check("[data-testid=explain-toggle]")
        expect()(page.locator("[data-testid=saliency]")).to_be_visible(timeout=10_000)
        server.terminate()
        server.wait(timeout=20)
        page.evaluate("scrollTo(0, 0)")  # Show why scrolled its card into view: the pad back in place
        page.wait_for_timeout(800)

        page.click("[data-testid=clear-button]")  # a new drawing while the server is away
        draw_with_mouse(page, CANVAS, DIGIT_STROKES[7])
        error = page.locator("[data-testid=error]")
        expect()(error).to_contain_text("can't be reached", timeout=10_000)
        expect()(page.locator(".card.result")).to_have_class(re.compile(r"\bstale\b"))  # the old 3 is greyed
        expect()(page.locator("[data-testid=why-card]")).to_be_hidden()  # no empty pictures
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "flask-server-lost.png"), full_page=True)
        assert page.eval_on_selector(
            CANVAS,
            "c => c.getContext('2d').getImageData(0,0,c.width,c.height).data.some((v, i) => i % 4 == 3 && v)",
        ), "the drawing is kept"
        # the wait counts down: after the first retry fails, "in 2 s" becomes "in 1 s"
        expect()(error).to_contain_text("trying again in 2 s", timeout=10_000)
        expect()(error).to_contain_text("trying again in 1 s", timeout=3_000)

        # on a phone the answer card is below the pad: the line under the pad, in view, says it
        phone.click("[data-testid=clear-button]")
        draw_with_mouse(phone, CANVAS, DIGIT_STROKES[7])
        mini = phone.locator("[data-testid=mini-answer]")
        expect()(mini).to_contain_text("Server can't be reached", timeout=10_000)
        box, height = mini.bounding_box(), phone.viewport_size["height"]
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= height, f"{box}: out of view"
        assert "3" not in mini.inner_text(), "the old answer is gone from the line"

        server = start()  # back: the page asks again by itself
        expect()(error).to_be_hidden(timeout=20_000)
        expect_digit(page, 7)
        expect()(page.locator(".card.result")).not_to_have_class(re.compile(r"\bstale\b"))
        expect_digit(phone, 7)
        expect()(mini).not_to_contain_text("can't be reached")
    finally:
        context.close()
        phone_context.close()
        server.terminate()
        server.wait(timeout=20)


def test_a_resize_that_keeps_the_pad_keeps_the_number_boxes(open_page):
    page = open_page(viewport={"width": 1000, "height": 800})
    page.click("label[for=mode-number]")
    for k, digit in enumerate((4, 2, 7)):
        left = 0.05 + 0.32 * k
        draw_with_mouse(page, CANVAS, DIGIT_STROKES[digit], frame=(left, 0.12, left + 0.22, 0.88))
    expect()(page.locator(DIGIT)).to_have_text("427", timeout=10_000)
    boxes = (
        "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 == 3 && v)"
    )
    assert page.eval_on_selector("#overlay", boxes), "boxes drawn"
    page.set_viewport_size({"width": 1000, "height": 700})  # a phone's address bar: height only
    page.wait_for_timeout(500)
    assert page.eval_on_selector("#overlay", boxes), "the boxes are still there"


def test_requests_on_their_way_when_the_server_goes_wait_once(open_page):
    """A stroke drawn while an answer is on its way queues another request; when the server is gone both
    fail, one after the other. The page then waits once (1 s), not once per failed request (1 s, then 2 s)."""
    page = open_page()
    held, gone = [], []

    def server(route):  # every answer on its way is held; once the server is gone, every request fails
        if gone:
            route.abort()
        else:
            held.append(route)

    page.route("**/predict", server)
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[7])
    page.wait_for_timeout(1500)
    assert held, "the drawing asked for an answer"
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[7])  # over itself: queued behind the held request
    page.wait_for_timeout(1500)
    gone.append(True)
    for route in held:
        route.abort()
    error = page.locator("[data-testid=error]")
    expect()(error).to_contain_text("can't be reached", timeout=5_000)
    page.wait_for_timeout(300)
    assert "trying again in 1 s" in error.inner_text()
