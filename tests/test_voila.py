"""The Voila app (notebooks/04_draw.ipynb) in headless Chromium: draw, read, clear."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from draw2digit.training.synthetic import DIGIT_STROKES
from tests.conftest import ARTIFACTS, MODELS
from tests.support.localhost import free_port, wait_for
from tests.test_browser import draw_with_mouse

pytestmark = pytest.mark.browser

PAD = "canvas.d2d-canvas"


@pytest.fixture(scope="module")
def voila_store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("voila") / "feedback.sqlite3"


def start_voila(port: int, log, *args: str, **env: str) -> subprocess.Popen:
    """`draw2digit voila` on 127.0.0.1:port with the shipped model, its output into ``log``."""
    exe = Path(sys.executable).with_name("draw2digit")
    return subprocess.Popen(
        [str(exe), "voila", "--port", str(port), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "DRAW2DIGIT_MODEL": str(MODELS), **env},
    )


def stop_voila(proc: subprocess.Popen, timeout: float = 15) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def voila_app(voila_store):
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "voila.log"
    log = log_path.open("w")
    proc = start_voila(port, log, DRAW2DIGIT_FEEDBACK_DB=str(voila_store))
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(url, timeout=120, proc=proc, log_path=log_path)
        yield url
    finally:
        stop_voila(proc)
        log.close()


def test_draw_in_the_voila_app(browser, voila_app):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1100, "height": 820})
    page.goto(voila_app, timeout=120_000)
    page.wait_for_selector(PAD, timeout=120_000)
    assert page.locator("text=from draw2digit.widget import").count() == 0, "no code cells shown"
    expect(page.locator(".d2d-confidence")).to_contain_text("Draw a digit", timeout=30_000)
    for digit in (3, 7):
        draw_with_mouse(page, PAD, DIGIT_STROKES[digit])
        expect(page.locator(".d2d-digit")).to_have_text(str(digit), timeout=20_000)
        expect(page.locator(".d2d-confidence")).to_contain_text("% confident")
        if digit == 3:
            page.screenshot(path=str(ARTIFACTS / "voila-app.png"), full_page=True)
            # the page's hierarchy: a small pixelated 28x28 beside its caption, under the bars
            seen = page.locator(".d2d-preview").bounding_box()
            bars = page.locator(".d2d-bars").bounding_box()
            assert 100 <= seen["width"] <= 130 and 100 <= seen["height"] <= 130, seen
            assert seen["y"] > bars["y"] + bars["height"] - 1, (seen, bars)
        page.locator(".d2d-clear").click()
        expect(page.locator(".d2d-digit")).to_have_text("", timeout=20_000)
    ink = page.eval_on_selector(
        PAD,
        "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 == 3 && v)",
    )
    assert not ink, "clear empties the pad in the browser too"
    page.close()


def test_voila_app_on_a_phone(browser, voila_app):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(voila_app, timeout=120_000)
    page.wait_for_selector(PAD, timeout=120_000)
    draw_with_mouse(page, PAD, DIGIT_STROKES[4])
    expect(page.locator(".d2d-digit")).to_have_text("4", timeout=20_000)
    for selector in (PAD, ".d2d-preview", ".d2d-bars", ".d2d-clear"):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1, (selector, box)
    page.screenshot(path=str(ARTIFACTS / "voila-app-phone.png"), full_page=True)
    context.close()


# ---------------------------------------------------------------- as finished as the page (issue 14)


def open_app(browser, url, **options):
    context = browser.new_context(**(options or {"viewport": {"width": 1280, "height": 900}}))
    page = context.new_page()
    page.goto(url, timeout=120_000)
    page.wait_for_selector(PAD, timeout=120_000)
    from playwright.sync_api import expect

    expect(page.locator(".d2d-confidence")).to_contain_text("Draw a digit", timeout=60_000)
    return context, page


def ink(page) -> bool:
    return page.eval_on_selector(
        PAD,
        "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 == 3 && v)",
    )


def test_voila_number_mode_clear_and_switch(browser, voila_app):
    from playwright.sync_api import expect

    from tests.test_page_ux import ink_columns

    context, page = open_app(browser, voila_app)
    page.locator(".d2d-mode button", has_text="A number").click()
    expect(page.locator(".d2d-confidence")).to_contain_text("Write a number", timeout=20_000)
    for k, digit in enumerate((4, 2)):
        left = 0.08 + 0.45 * k
        draw_with_mouse(page, PAD, DIGIT_STROKES[digit], frame=(left, 0.12, left + 0.3, 0.88))
    expect(page.locator(".d2d-digit")).to_have_text("42", timeout=30_000)
    page.locator(".d2d-clear").click()
    expect(page.locator(".d2d-digit")).to_have_text("", timeout=20_000)
    page.wait_for_timeout(500)
    assert not ink(page), "Clear leaves no boxes behind"
    for k, digit in enumerate((4, 2)):
        left = 0.08 + 0.45 * k
        draw_with_mouse(page, PAD, DIGIT_STROKES[digit], frame=(left, 0.12, left + 0.3, 0.88))
    expect(page.locator(".d2d-digit")).to_have_text("42", timeout=30_000)
    page.locator(".d2d-mode button", has_text="One digit").click()
    expect(page.locator(".d2d-pieces")).to_be_hidden(timeout=20_000)
    page.wait_for_timeout(800)
    assert len(ink_columns(page, PAD)) == 2, "both digits are still on the (smaller) pad"
    preview = page.locator(".d2d-preview").bounding_box()
    assert preview["width"] <= 130, preview
    context.close()


def test_voila_keys_and_tab_leaves_the_pad(browser, voila_app):
    from playwright.sync_api import expect

    context, page = open_app(browser, voila_app)
    digit = page.locator(".d2d-digit")
    draw_with_mouse(page, PAD, DIGIT_STROKES[7])
    expect(digit).to_have_text("7", timeout=20_000)
    assert page.evaluate("document.activeElement.classList.contains('d2d-canvas')"), "drawing focuses the pad"
    pad = page.locator(PAD)
    expect(pad).to_have_attribute("aria-label", re.compile("Drawing area"))  # a name for a screen reader
    expect(pad).to_have_attribute("role", "img")
    ring = "e => { const s = getComputedStyle(e); return [s.outlineStyle, s.outlineWidth]; }"
    page.keyboard.press("Tab")
    assert not page.evaluate("document.activeElement.classList.contains('d2d-canvas')"), "Tab leaves the pad"
    assert page.evaluate(f"({ring})(document.activeElement)") == ["solid", "3px"], "a visible focus ring"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.classList.contains('d2d-canvas')"), "Shift+Tab comes back"
    assert page.evaluate(f"({ring})(document.activeElement)") == ["solid", "3px"], "the pad's focus ring"
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+Shift+Z")  # redo, never a second undo
    page.wait_for_timeout(500)
    expect(digit).to_have_text("7", timeout=20_000)
    page.keyboard.press("Escape")
    expect(digit).to_have_text("", timeout=20_000)
    page.keyboard.press("Control+z")  # a cleared drawing comes back
    expect(digit).to_have_text("7", timeout=20_000)
    page.locator(".d2d-undo").focus()
    page.keyboard.press("Escape")  # Esc belongs to the focused button: nothing is cleared
    page.wait_for_timeout(800)
    expect(digit).to_have_text("7")
    page.keyboard.press("Control+y")  # redo: the Clear that Ctrl+Z undid
    expect(digit).to_have_text("", timeout=20_000)
    context.close()


def test_voila_corrections(browser, voila_app, voila_store):
    from playwright.sync_api import expect

    from draw2digit.feedback import FeedbackStore

    store = FeedbackStore(voila_store)
    before = store.count()
    context, page = open_app(browser, voila_app)
    draw_with_mouse(page, PAD, DIGIT_STROKES[1])
    expect(page.locator(".d2d-digit")).to_have_text("1", timeout=20_000)
    expect(page.locator(".d2d-correct-7")).to_be_hidden()  # behind "Not right?" when confident
    page.locator(".d2d-not-right").click()
    seven = page.locator(".d2d-correct-7")
    expect(seven).to_be_visible(timeout=20_000)
    for d in range(10):
        box = page.locator(f".d2d-correct-{d}").bounding_box()
        assert box["width"] >= 44 and box["height"] >= 44, (d, box)
    page.locator(".d2d-correct-1").click()
    expect(page.locator(".d2d-correct-status")).to_contain_text("nothing to correct", timeout=20_000)
    seven.dblclick()
    expect(page.locator(".d2d-correct-status")).to_contain_text("saved as a 7", timeout=20_000)
    page.wait_for_timeout(800)
    assert store.count() == before + 1, "a double click saves once"
    expect(seven).to_have_class(re.compile("mod-primary"))
    # the pad learned this session's handwriting at once, and forgets it on request
    expect(page.locator(".d2d-correct-status")).to_contain_text("Learned: your 7")
    expect(page.locator(".d2d-digit")).to_have_text("7", timeout=20_000)
    expect(page.locator(".d2d-confidence")).to_contain_text("the model alone says 1")
    page.locator(".d2d-forget").click()
    expect(page.locator(".d2d-digit")).to_have_text("1", timeout=20_000)
    expect(page.get_by_text("Forgotten: answers come from the model alone.")).to_be_visible()
    draw_with_mouse(page, PAD, [[(0.5, 0.95), (0.52, 0.95)]])
    expect(page.locator(".d2d-correct-status")).to_have_text("", timeout=20_000)

    page.locator(".d2d-mode button", has_text="A number").click()
    expect(page.locator(PAD)).to_have_attribute("width", "616", timeout=20_000)
    page.locator(".d2d-clear").click()
    expect(page.locator(".d2d-confidence")).to_contain_text("Write a number", timeout=20_000)
    for k, digit in enumerate((4, 2, 7)):
        left = 0.05 + 0.32 * k
        draw_with_mouse(page, PAD, DIGIT_STROKES[digit], frame=(left, 0.12, left + 0.22, 0.88))
    expect(page.locator(".d2d-digit")).to_have_text("427", timeout=30_000)
    page.locator(".d2d-pieces button").nth(1).click()
    expect(page.locator(".d2d-correction")).to_contain_text("Digit 2 of 3 is a:", timeout=20_000)
    page.locator(".d2d-correct-3").click()
    expect(page.locator(".d2d-correct-status")).to_contain_text("digit 2 saved as a 3", timeout=20_000)
    rec = store.records()[-1]
    assert (rec["label"], rec["predicted"], rec["position"]) == (3, 2, 1) and rec["box"]
    context.close()


def test_voila_show_why_side_by_side(browser, voila_app):
    from playwright.sync_api import expect

    context, page = open_app(browser, voila_app)
    draw_with_mouse(page, PAD, DIGIT_STROKES[7])
    expect(page.locator(".d2d-digit")).to_have_text("7", timeout=20_000)
    page.locator(".d2d-explain input").check()
    caption = page.locator(".d2d-why-caption")
    expect(caption).to_contain_text(re.compile(r"Next most likely: \d, "), timeout=60_000)
    seen, heat = page.locator(".d2d-why-input").bounding_box(), page.locator(".d2d-why-map").bounding_box()
    assert min(seen["width"], heat["width"], heat["height"]) >= 224, (seen, heat)
    assert abs(seen["y"] - heat["y"]) < 2 and heat["x"] > seen["x"] + seen["width"] - 1, "side by side"
    expect(page.locator(".d2d-why-legend")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "voila-show-why.png"), full_page=True)
    context.close()


def test_voila_number_mode_fits_a_phone(browser, voila_app):
    from playwright.sync_api import expect

    phone = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True}
    context, page = open_app(browser, voila_app, **phone)
    draw_with_mouse(page, PAD, DIGIT_STROKES[3])
    expect(page.locator(".d2d-digit")).to_have_text("3", timeout=20_000)
    page.locator(".d2d-not-right").click()
    expect(page.locator(".d2d-correct-0")).to_be_visible(timeout=20_000)
    clipped = page.eval_on_selector_all(
        ".d2d-correct-buttons button", "bs => bs.filter(b => b.scrollWidth > b.clientWidth).length"
    )
    assert clipped == 0, "digit labels are not cut"
    page.locator(".d2d-mode button", has_text="A number").click()
    page.wait_for_timeout(800)
    for selector in (PAD, ".d2d-left .widget-slider", ".d2d-clear", ".d2d-seen .d2d-caption"):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1, (selector, box)
    caption = page.locator(".d2d-seen .d2d-caption")
    expect(caption).to_contain_text("each digit, 28×28 pixels")
    assert caption.bounding_box()["width"] > 100, "the caption is not squeezed into a column"
    expect(page.locator(".d2d-explain")).to_be_hidden()  # no Show why where none is shown
    page.locator(".d2d-clear").click()
    for k, digit in enumerate((2, 0, 2, 5, 7)):  # a long number shows whole; each "%" stays by its number
        left = 0.02 + 0.195 * k
        draw_with_mouse(page, PAD, DIGIT_STROKES[digit], frame=(left, 0.15, left + 0.15, 0.85))
    expect(page.locator(".d2d-digit")).to_have_text(re.compile(r"^[\d?]{5}$"), timeout=30_000)
    wrapped = page.eval_on_selector_all(
        ".d2d-pct, .d2d-piece",
        "es => es.filter(e => e.getBoundingClientRect().height > "
        "1.6 * parseFloat(getComputedStyle(e).fontSize))"
        ".map(e => e.textContent)",
    )  # one line each
    assert page.locator(".d2d-piece").count() == 5 and wrapped == [], wrapped
    ink_right = page.evaluate(
        "() => { const r = document.createRange();"
        " r.selectNodeContents(document.querySelector('.d2d-digit .widget-html-content'));"
        " return [r.getBoundingClientRect().right, r.getBoundingClientRect().height,"
        " document.querySelector('.d2d-confidence').getBoundingClientRect().left]; }"
    )
    assert ink_right[0] <= ink_right[2] and ink_right[1] <= 90, (
        f"the number runs into its caption: {ink_right}"
    )
    right = page.eval_on_selector_all(
        ".d2d-confidence, .d2d-piece", "es => es.map(e => e.getBoundingClientRect().right)"
    )
    assert max(right) <= 390 + 1, right
    page.screenshot(path=str(ARTIFACTS / "voila-number-mode-phone.png"), full_page=True)
    context.close()


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_stopping_voila_stops_its_kernels(browser, signal_name):
    import signal

    import psutil

    port = free_port()
    log_path = ARTIFACTS / f"voila-stop-{signal_name}.log"
    family: list = []
    with log_path.open("w") as log:
        proc = start_voila(port, log)
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_for(url, timeout=120, proc=proc, log_path=log_path)
            context, _ = open_app(browser, url)  # a visitor: Voila starts a kernel
            family[:] = psutil.Process(proc.pid).children(recursive=True)
            assert any("ipykernel" in " ".join(p.cmdline()) for p in family), [p.cmdline() for p in family]
            proc.send_signal(getattr(signal, signal_name))
            assert proc.wait(timeout=30) == 0
            _, alive = psutil.wait_procs(family, timeout=15)
            assert not alive, [p.cmdline() for p in alive]
            context.close()
        finally:
            if proc.poll() is None:
                proc.kill()
            for child in family:  # even when the test fails, nothing it started outlives it
                if child.is_running():
                    child.kill()


@pytest.mark.parametrize("cull_idle", [3, 0])
def test_voila_stops_kernels_no_page_is_connected_to(cull_idle):
    """A bare GET of the app (a probe, a closed tab) starts a kernel: --cull-idle stops it, 0 keeps it."""
    import psutil

    port = free_port()
    log_path = ARTIFACTS / f"voila-cull-{cull_idle}.log"

    def kernels(proc) -> list:
        return [
            p
            for p in psutil.Process(proc.pid).children(recursive=True)
            if "ipykernel" in " ".join(p.cmdline())
        ]

    with log_path.open("w") as log:
        proc = start_voila(port, log, "--cull-idle", str(cull_idle))
        try:
            wait_for(f"http://127.0.0.1:{port}/", timeout=120, proc=proc, log_path=log_path)
            started = kernels(proc)
            assert started, "the GET ran the notebook in a kernel"
            _, alive = psutil.wait_procs(started, timeout=20)
            if cull_idle:
                assert not alive, "an idle kernel without a page is stopped"
            else:
                assert alive == started, "without culling the kernel stays"
        finally:
            stop_voila(proc, timeout=30)


def test_a_lost_voila_server_is_said_with_a_reload(browser):
    """The server (and its kernel) stops mid-use: the app greys its answer and offers a reload that works."""
    from playwright.sync_api import expect

    port = free_port()
    log_path = ARTIFACTS / "voila-lost.log"
    with log_path.open("w") as log:
        proc = start_voila(port, log)
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_for(url, timeout=120, proc=proc, log_path=log_path)
            context, page = open_app(browser, url)
            draw_with_mouse(page, PAD, DIGIT_STROKES[3])
            expect(page.locator(".d2d-digit")).to_have_text("3", timeout=20_000)
            expect(page.locator(".d2d-lost")).to_have_count(0)
            stop_voila(proc)
            lost = page.locator(".d2d-lost")
            expect(lost).to_contain_text("stopped answering", timeout=20_000)
            expect(page.locator(".d2d-pad")).to_have_class(re.compile(r"\bd2d-stale\b"))
            proc = start_voila(port, log)
            wait_for(url, timeout=120, proc=proc, log_path=log_path)
            page.locator(".d2d-reload").click()
            page.wait_for_selector(PAD, timeout=60_000)
            draw_with_mouse(page, PAD, DIGIT_STROKES[7])
            expect(page.locator(".d2d-digit")).to_have_text("7", timeout=30_000)
            expect(page.locator(".d2d-lost")).to_have_count(0)
            context.close()
        finally:
            stop_voila(proc)
