"""What a person waits for on the page, measured in headless Chromium against `draw2digit serve`.

    python -m benchmarks.page_timings        # or: make bench-page

Starts the server, opens the page, draws a 7 and times the first "Show why"
(from the click to the explanation on screen), then draws each digit with the
mouse and times, in the page, from the pen lifting to the answer on screen.
"Show why" runs on the served model, so there is nothing to warm up: the first
one is asked at once after start-up. Prints medians; nothing is asserted (the
browser tests check behaviour).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from draw2digit.training.synthetic import DIGIT_STROKES
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, draw_with_mouse
from tests.support.localhost import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent

# In the page: the time from the last pointerup to the next change of the answer, and from
# ticking "Show why" to the explanation being shown.
PROBE = """() => {
  window.__d2d = {lifted: 0, answered: []};
  const pad = document.querySelector('[data-testid=draw-canvas]');
  pad.addEventListener('pointerup', () => { window.__d2d.lifted = performance.now(); }, true);
  new MutationObserver(() => {
    if (window.__d2d.lifted) window.__d2d.answered.push(performance.now() - window.__d2d.lifted);
    window.__d2d.lifted = 0;
  }).observe(document.querySelector('#digit'), {childList: true, characterData: true, subtree: true});
}"""

WHY = """async () => {
  const started = performance.now();
  document.querySelector('#explain').click();  // shows "Working out why" at once
  while (!document.querySelector('#why-status').hidden) await new Promise(r => setTimeout(r, 5));
  return performance.now() - started;
}"""


def draw(page, digit: int) -> None:
    draw_with_mouse(page, "[data-testid=draw-canvas]", DIGIT_STROKES[digit])


def health(url: str) -> dict:
    with urllib.request.urlopen(url + "/health", timeout=5) as r:
        return json.load(r)


def measure(browser, url: str) -> dict:
    started = time.perf_counter()  # the server has just answered /health
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url + "/")
    page.evaluate(PROBE)
    draw(page, 7)  # the first thing a curious visitor does: draw, then ask why
    page.wait_for_function("window.__d2d.answered.length > 0", timeout=10_000)
    why_ms = page.evaluate(WHY)
    clicked_after = time.perf_counter() - started
    page.uncheck("#explain")
    page.click("[data-testid=clear-button]")
    answers = []
    for digit in range(10):
        before = page.evaluate("window.__d2d.answered.length")
        draw(page, digit)
        page.wait_for_function(f"window.__d2d.answered.length > {before}", timeout=10_000)
        answers.append(page.evaluate("window.__d2d.answered.at(-1)"))
        page.click("[data-testid=clear-button]")
    page.close()
    return {"answer_ms": answers, "why_ms": why_ms, "clicked_s": clicked_after}


def main() -> int:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        results = {}
        for label in ("at once after start-up",):
            port = free_port()
            exe = Path(sys.executable).with_name("draw2digit")
            server = subprocess.Popen(
                [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            url = f"http://127.0.0.1:{port}"
            try:
                wait_for(url + "/health", proc=server)
                results[label] = measure(browser, url)
            finally:
                server.terminate()
                server.wait(timeout=20)
        browser.close()
    for label, r in results.items():
        a = sorted(r["answer_ms"])
        print(
            f"{label:<24} answer after the pen lifts: median {statistics.median(a):.0f} ms "
            f"(max {a[-1]:.0f}); first 'Show why' {r['clicked_s']:.1f} s after the server was up: "
            f"{r['why_ms'] / 1000:.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
