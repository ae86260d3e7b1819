"""The page as a user meets it, in headless Chromium: state that matches the screen, corrections, "Show why",
keys, phones and contrast (issue 14). Each test reproduces something seen to go wrong."""

from __future__ import annotations

import json
import re

import pytest

from draw2digit.feedback import FeedbackStore
from draw2digit.training.synthetic import DIGIT_STROKES
from tests.conftest import ARTIFACTS
from tests.test_browser import CANVAS, DIGIT, HASH, draw_with_mouse, draw_with_touch, expect_digit

pytestmark = pytest.mark.browser

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "has_touch": True,
    "is_mobile": True,
    "device_scale_factor": 3,
}
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "device_scale_factor": 1}


def expect():
    from playwright.sync_api import expect as _expect

    return _expect


def ink_columns(page, selector=CANVAS) -> list[tuple[int, int]]:
    """Runs of canvas columns that hold ink: roughly one run per digit drawn."""
    return page.eval_on_selector(
        selector,
        """c => {
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          const runs = []; let start = -1;
          for (let x = 0; x <= c.width; x++) {
            let ink = false;
            for (let y = 0; x < c.width && y < c.height && !ink; y++) ink = d[4 * (y * c.width + x) + 3] > 40;
            if (ink && start < 0) start = x;
            if (!ink && start >= 0) { runs.push([start, x]); start = -1; }
          }
          return runs;
        }""",
    )


def draw_number(page, digits=(4, 2, 7)) -> None:
    for k, digit in enumerate(digits):
        left = 0.06 + 0.31 * k
        draw_with_mouse(page, CANVAS, DIGIT_STROKES[digit], frame=(left, 0.12, left + 0.2, 0.88))


def luminance(rgb: str) -> float:
    r, g, b = (int(v) / 255 for v in re.findall(r"\d+", rgb)[:3])
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


# ---------------------------------------------------------------- 1. what the user sees is what is read


def test_switching_number_to_digit_fits_the_drawing_and_hides_the_chips(open_page):
    page = open_page()
    page.click("label[for=mode-number]")
    draw_number(page)
    expect()(page.locator(DIGIT)).to_have_text("427", timeout=10_000)
    page.click("label[for=mode-digit]")
    expect()(page.locator("[data-testid=number-digits]")).to_be_hidden()
    assert len(ink_columns(page)) == 3, "all three digits are still on the (smaller) pad"
    expect()(page.locator(DIGIT)).not_to_have_text(re.compile("^$"), timeout=10_000)  # it reads what is shown
    before = page.eval_on_selector(CANVAS, "c => c.toDataURL()")
    page.click("[data-testid=undo-button]")
    assert page.eval_on_selector(CANVAS, "c => c.toDataURL()") != before, "undo removes a stroke one can see"
    page.click("label[for=mode-number]")
    page.click("[data-testid=redo-button]")
    expect()(page.locator(DIGIT)).to_have_text("427", timeout=10_000)


def test_one_rounding_rule_for_confidence_and_bars(open_page):
    page = open_page()
    probs = [0.0] * 10
    probs[3], probs[8] = 0.99962, 0.00038
    body = {"digit": 3, "confidence": 0.99962, "probabilities": probs, "blank": False, "rejected": False}
    page.route(
        "**/predict",
        lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(body)),
    )
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[3])
    expect()(page.locator("[data-testid=confidence]")).to_have_text(">99.9 % confident", timeout=10_000)
    bar = page.locator("[data-testid=probabilities] li[data-digit='3'] .bar-value")
    expect()(bar).to_have_text(">99.9 %")
    expect()(page.locator("[data-testid=probabilities] li[data-digit='8'] .bar-value")).to_have_text("<0.1 %")


def test_network_error_says_what_happened_and_retries(open_page):
    page = open_page()
    page.route("**/predict", lambda route: route.abort("internetdisconnected"))
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[5])
    error = page.locator("[data-testid=error]")
    expect()(error).to_contain_text("can't be reached", timeout=10_000)
    expect()(page.locator("#prompt")).to_be_hidden()  # no "Draw a digit to begin." over a drawing
    expect()(page.locator("[data-testid=retry-button]")).to_be_visible()
    assert ink_columns(page), "the drawing is kept"
    page.unroute("**/predict")
    page.click("[data-testid=retry-button]")
    expect_digit(page, 5)
    expect()(error).to_be_hidden()


# ---------------------------------------------------------------- 2. keys


def test_keyboard_shortcuts(open_page):
    page = open_page()
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[7])
    expect_digit(page, 7)
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+Shift+Z")  # redo, never a second undo
    expect_digit(page, 7)
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+y")
    expect_digit(page, 7)
    page.focus("#brush")
    page.keyboard.press("Escape")  # Esc belongs to the slider: the drawing stays
    expect_digit(page, 7)
    page.locator("[data-testid=clear-button]").focus()
    page.keyboard.press("Escape")
    expect_digit(page, 7)
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("Escape")
    expect()(page.locator(DIGIT)).to_have_text("")
    page.keyboard.press("Control+z")  # a cleared drawing comes back
    expect_digit(page, 7)


# ---------------------------------------------------------------- 3. corrections


def test_corrections_are_big_marked_saved_once_and_cleared_by_the_next_stroke(open_page, live_server):
    page = open_page()
    store = FeedbackStore(live_server.feedback_db)
    before = store.count()
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[1])
    expect_digit(page, 1)
    panel = page.locator("[data-testid=correct-panel]")
    expect()(panel).to_be_hidden()  # a confident answer does not push the bars down
    page.click("[data-testid=not-right]")
    expect()(panel).to_be_visible()
    for d in range(10):
        box = page.locator(f"[data-testid=correct-{d}]").bounding_box()
        assert box["width"] >= 44 and box["height"] >= 44, (d, box)
    page.click("[data-testid=correct-1]")  # what it read: nothing to store
    expect()(page.locator("[data-testid=correct-status]")).to_contain_text("nothing to correct")
    assert store.count() == before
    # 9: no other test stores this drawing as a 9 (the same correction from the same client is kept once)
    page.dblclick("[data-testid=correct-9]")
    expect()(page.locator("[data-testid=correct-status]")).to_contain_text("saved as a 9", timeout=10_000)
    page.wait_for_timeout(300)
    assert store.count() == before + 1, "a double click saves once"
    expect()(page.locator("[data-testid=correct-9]")).to_have_attribute("aria-pressed", "true")
    draw_with_mouse(page, CANVAS, [[(0.5, 0.95), (0.52, 0.95)]])
    expect()(page.locator("[data-testid=correct-status]")).to_have_text("")


def test_an_answer_arriving_after_not_right_keeps_the_digits_open(open_page):
    """On a slow line the last answer to a drawing can come after the user asked to correct it."""
    page = open_page()
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[1])
    expect_digit(page, 1)
    panel = page.locator("[data-testid=correct-panel]")
    expect()(panel).to_be_hidden()
    page.click("[data-testid=not-right]")
    expect()(panel).to_be_visible()
    with page.expect_response(lambda r: r.url.endswith("/predict")):  # the same drawing, asked again
        page.check("[data-testid=explain-toggle]")
    page.wait_for_timeout(200)
    expect()(panel).to_be_visible()
    page.click("[data-testid=correct-7]")  # still there to be clicked
    expect()(page.locator("[data-testid=correct-status]")).to_contain_text("saved as a 7", timeout=10_000)
    page.click("[data-testid=not-right]")  # closed by the user: a later answer leaves it closed
    expect()(panel).to_be_hidden()
    with page.expect_response(lambda r: r.url.endswith("/predict")):
        page.uncheck("[data-testid=explain-toggle]")
    page.wait_for_timeout(200)
    expect()(panel).to_be_hidden()


def test_unsure_answers_open_the_digits(open_page):
    page = open_page()
    draw_with_mouse(page, CANVAS, HASH, frame=(0, 0, 1, 1))
    expect()(page.locator(DIGIT)).to_have_text("?", timeout=10_000)
    expect()(page.locator("[data-testid=correct-panel]")).to_be_visible()
    expect()(page.locator("[data-testid=not-right]")).to_be_hidden()


def test_one_digit_of_a_number_is_corrected(open_page, live_server):
    page = open_page()
    store = FeedbackStore(live_server.feedback_db)
    page.click("label[for=mode-number]")
    draw_number(page)
    expect()(page.locator(DIGIT)).to_have_text("427", timeout=10_000)
    page.click("[data-testid=number-digit-1]")
    expect()(page.locator("#correct-label")).to_have_text("Digit 2 of 3 is a:")
    page.click("[data-testid=correct-3]")
    expect()(page.locator("[data-testid=correct-status]")).to_contain_text(
        "digit 2 saved as a 3", timeout=10_000
    )
    rec = store.records()[-1]
    assert (rec["label"], rec["predicted"], rec["position"]) == (3, 2, 1)
    assert rec["box"] is not None and rec["drawing"]


def test_a_later_answer_to_the_same_number_keeps_the_chosen_digit_open(open_page):
    page = open_page()
    page.click("label[for=mode-number]")
    draw_number(page)
    expect()(page.locator(DIGIT)).to_have_text("427", timeout=10_000)
    page.click("[data-testid=number-digit-1]")
    with page.expect_response(lambda r: r.url.endswith("/predict")):
        page.dispatch_event("[data-testid=explain-toggle]", "change")  # asks again, the same drawing
    expect()(page.locator("#correct-label")).to_have_text("Digit 2 of 3 is a:")
    expect()(page.locator("[data-testid=correct-3]")).to_be_visible()


# ---------------------------------------------------------------- 4. "Show why"


def test_show_why_shows_progress_then_input_and_map_side_by_side(open_page):
    page = open_page()
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[7])
    expect_digit(page, 7)
    shown_at_once = page.evaluate(
        "() => { document.querySelector('#explain').click();"
        " return !document.querySelector('#why-status').hidden; }"
    )
    assert shown_at_once, "progress shows the moment Show why is asked for"
    saliency = page.locator("[data-testid=saliency]")
    expect()(saliency).to_have_attribute("src", re.compile(r"^data:image/png;base64,"), timeout=30_000)
    expect()(page.locator("[data-testid=why-status]")).to_be_hidden(timeout=30_000)
    seen, heat = page.evaluate(  # at one instant: the card may still be scrolling into view
        "['#why-input', '#saliency'].map(s => { const r = document.querySelector(s).getBoundingClientRect();"
        " return {x: r.x, y: r.y, width: r.width, height: r.height}; })"
    )
    assert min(seen["width"], heat["width"], heat["height"]) >= 224, (seen, heat)
    assert abs(seen["y"] - heat["y"]) < 2 and heat["x"] > seen["x"] + seen["width"], "side by side"
    expect()(page.locator("[data-testid=why-legend]")).to_be_visible()
    expect()(page.locator("[data-testid=why-caption]")).to_contain_text(re.compile(r"Next most likely: \d, "))
    expect()(page.locator("[data-testid=preview]")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "flask-show-why.png"), full_page=True)
    page.uncheck("[data-testid=explain-toggle]")
    expect()(page.locator("[data-testid=why-card]")).to_be_hidden(timeout=10_000)


# ---------------------------------------------------------------- 5. phones, layout, contrast


def test_phone_pad_uses_the_width_and_the_answer_stays_in_view(open_page):
    page = open_page(**PHONE)
    pad = page.locator(CANVAS).bounding_box()
    assert pad["width"] >= 330 and pad["x"] >= 0 and pad["x"] + pad["width"] <= 390, pad
    draw_with_touch(page, CANVAS, DIGIT_STROKES[4])
    expect_digit(page, 4)
    mini = page.locator("[data-testid=mini-answer]")
    expect()(mini).to_contain_text(re.compile(r"^4 .*next \d"))
    box = mini.bounding_box()
    assert box["y"] + box["height"] <= 844 and page.evaluate("window.scrollY") == 0, "seen while drawing"
    page.click("label[for=mode-number]")
    number_pad = page.locator(CANVAS).bounding_box()
    assert number_pad["height"] >= 180 and number_pad["x"] + number_pad["width"] <= 390, number_pad
    page.click("[data-testid=clear-button]")
    for k, digit in enumerate((1, 7)):  # written up to the pad's top edge
        left = 0.15 + 0.45 * k
        draw_with_touch(page, CANVAS, DIGIT_STROKES[digit], (left, 0.0, left + 0.25, 0.8))
    expect()(page.locator(DIGIT)).to_have_text("17", timeout=10_000)
    labels = json.loads(page.eval_on_selector("#overlay", "c => c.dataset.labels"))
    height = page.locator(CANVAS).bounding_box()["height"]
    assert len(labels) == 2 and all(lab["top"] >= 0 and lab["bottom"] <= height for lab in labels), labels
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "flask-number-mode-phone.png"), full_page=True)


def test_a_phone_sends_the_pad_at_css_size_and_boxes_still_fit_the_ink(open_page):
    """At 3x the pad's bitmap is 9x the pixels: the server gets the pad's CSS size (what a desktop sends),
    and number mode's boxes, measured in those pixels, land on the ink of the 3x bitmap."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    page = open_page(**PHONE)
    sent = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/predict") else None)
    page.click("label[for=mode-number]")
    for k, digit in enumerate((1, 7)):
        left = 0.15 + 0.45 * k
        draw_with_touch(page, CANVAS, DIGIT_STROKES[digit], (left, 0.15, left + 0.25, 0.85))
    expect()(page.locator(DIGIT)).to_have_text("17", timeout=10_000)
    pad = page.locator(CANVAS).bounding_box()
    image = Image.open(io.BytesIO(base64.b64decode(sent[-1]["image"].split(",", 1)[1])))
    assert abs(image.width - pad["width"]) <= 1 and abs(image.height - pad["height"]) <= 1, (image.size, pad)
    bitmap = page.eval_on_selector(CANVAS, "c => [c.width, c.height]")
    assert bitmap[0] >= 2.9 * image.width, (bitmap, image.size)
    ink = np.asarray(image.convert("RGBA"))[..., 3] > 40
    ys, xs = np.nonzero(ink)
    assert len(xs), "the strokes were sent"

    def extent(selector, test):
        return page.eval_on_selector(
            selector,
            f"""c => {{
              const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
              let l = c.width, t = c.height, r = -1, b = -1;
              for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {{
                const i = 4 * (y * c.width + x);
                if (!({test})) continue;
                l = Math.min(l, x); r = Math.max(r, x); t = Math.min(t, y); b = Math.max(b, y);
              }}
              return [l, t, r, b];
            }}""",
        )

    ink_box = extent(CANVAS, "d[i + 3] > 40")
    box_box = extent("#overlay", "d[i + 3] > 200 && d[i + 2] > 150 && d[i] < 80")  # the boxes' blue
    # the sent picture is the bitmap shrunk by the density: same ink, a third of the size
    assert abs(xs.min() * 3 - ink_box[0]) <= 9 and abs(ys.max() * 3 - ink_box[3]) <= 9, (xs.min(), ink_box)
    # the blue boxes surround the ink in the bitmap, 4 CSS pixels out plus the line (not 3x off, not inside)
    assert box_box[0] < ink_box[0] and box_box[2] > ink_box[2] and box_box[3] > ink_box[3], (box_box, ink_box)
    assert ink_box[0] - box_box[0] <= 3 * 8 and box_box[2] - ink_box[2] <= 3 * 8, (box_box, ink_box)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_toolbar_buttons_stay_on_one_line(open_page, size):
    page = open_page(**(PHONE if size == "phone" else DESKTOP))
    ys = [page.locator(f"[data-testid={b}-button]").bounding_box()["y"] for b in ("undo", "redo", "clear")]
    assert max(ys) - min(ys) < 2, ys


def test_focus_ring_on_the_chosen_mode_is_visible(open_page):
    page = open_page()
    page.keyboard.press("Tab")  # keyboard focus: the first control is the chosen mode
    for _ in range(5):
        if page.evaluate("document.activeElement.id") == "mode-digit":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "mode-digit"
    ring = page.eval_on_selector(
        "label[for=mode-digit]",
        "l => { const s = getComputedStyle(l);"
        " return [s.outlineStyle, s.outlineWidth, s.outlineColor, s.backgroundColor]; }",
    )
    style, width, colour, background = ring
    assert style != "none" and float(width.rstrip("px")) >= 2, ring
    assert contrast(colour, background) >= 3, ring


def test_pad_border_and_hint_contrast(open_page):
    page = open_page()
    border = page.eval_on_selector(CANVAS, "c => getComputedStyle(c).borderTopColor")
    hint = page.eval_on_selector("#canvas-hint", "h => getComputedStyle(h).color")
    white = "rgb(255, 255, 255)"
    assert contrast(border, white) >= 3, border
    assert contrast(hint, white) >= 4.5, hint


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_axe_finds_no_accessibility_violations(open_page, size):
    from axe_playwright_python.sync_playwright import Axe

    page = open_page(**(PHONE if size == "phone" else DESKTOP))
    axe = Axe()
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[2])
    expect_digit(page, 2)
    page.click("[data-testid=not-right]")
    found = axe.run(page).response["violations"]
    page.click("label[for=mode-number]")
    draw_number(page, (3, 5))
    expect()(page.locator(DIGIT)).to_have_text(re.compile(r"^\d\d$"), timeout=10_000)
    found += axe.run(page).response["violations"]
    assert not found, [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in found]


def test_a_limited_correction_says_when_to_try_again(open_page):
    """The server's 429 (too many corrections from this address) is said, with its wait; nothing is lost."""
    page = open_page()
    body = json.dumps({"error": "too many corrections from this address: try again in 42 s"})
    page.route(
        "**/feedback",
        lambda route: route.fulfill(
            status=429, headers={"Retry-After": "42"}, content_type="application/json", body=body
        ),
    )
    draw_with_mouse(page, CANVAS, DIGIT_STROKES[1])
    expect_digit(page, 1)
    page.click("[data-testid=not-right]")
    page.click("[data-testid=correct-7]")
    status = page.locator("[data-testid=correct-status]")
    expect()(status).to_have_text("Too many corrections, try again in 42 s.", timeout=10_000)
    expect()(page.locator("[data-testid=correct-7]")).to_be_enabled()  # a later try is one click away
    page.unroute("**/feedback")
    page.click("[data-testid=correct-7]")
    expect()(status).to_contain_text("saved as a 7", timeout=10_000)
