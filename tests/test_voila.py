"""The Voila app (notebooks/03_draw.ipynb) in headless Chromium: draw, read, clear."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from draw2digit.localhost import free_port, wait_for
from draw2digit.synthetic import DIGIT_STROKES
from tests.conftest import ARTIFACTS, MODELS
from tests.test_browser import draw_with_mouse

pytestmark = pytest.mark.browser

PAD = "canvas.d2d-canvas"


@pytest.fixture(scope="module")
def voila_app():
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "voila.log"
    log = log_path.open("w")
    exe = Path(sys.executable).with_name("draw2digit")
    proc = subprocess.Popen(
        [str(exe), "voila", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "DRAW2DIGIT_MODEL": str(MODELS)},
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(url, timeout=120, proc=proc, log_path=log_path)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
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
