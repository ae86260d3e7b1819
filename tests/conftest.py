"""Shared fixtures. In CI (CI=true) a missing required part fails the run; locally it skips."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from draw2digit import data
from draw2digit.localhost import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
MODELS = ROOT / "models"
ARTIFACTS = ROOT / "test-artifacts"


def missing(what: str) -> None:
    """Fail in CI, skip elsewhere: CI must never turn a missing part into a green run."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"required for CI but missing: {what}", pytrace=False)
    pytest.skip(f"missing: {what}")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    env = os.environ.get(data.ENV_DATA_DIR)
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "data" / "mnist")
    for c in candidates:
        if all((c / name).is_file() for name in data.FILES):
            return c
    missing(f"MNIST files ({', '.join(data.FILES)}); set {data.ENV_DATA_DIR}")
    raise AssertionError  # unreachable


@pytest.fixture(scope="session")
def pen_digits():
    """The real pen digits (UCI pendigits, 30 writers) from ../shared or $DRAW2DIGIT_PENDIGITS_DIR."""
    from draw2digit import pendigits

    try:
        return pendigits.load_pendigits()
    except data.DataError as exc:
        missing(f"pen digits: {exc}")
        raise AssertionError from exc  # unreachable


@pytest.fixture(autouse=True)
def _isolated_data_env(monkeypatch, tmp_path_factory, request):
    """Tests never download and never touch the user's cache."""
    monkeypatch.setenv(data.ENV_CACHE_DIR, str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv(data.ENV_MIRRORS, "http://127.0.0.1:9/")  # discard port: refuses at once


@pytest.fixture(scope="session")
def mnist_test(mnist_dir) -> data.Split:
    mp = pytest.MonkeyPatch()
    mp.setenv(data.ENV_DATA_DIR, str(mnist_dir))
    try:
        return data.load_split("test", download=False)
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def predictor():
    from draw2digit.predictor import Predictor

    return Predictor(MODELS)


@pytest.fixture(scope="session")
def keras_predictor():
    from draw2digit.predictor import Predictor

    return Predictor(MODELS, backend="keras")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def store(tmp_path):
    """A fresh, empty corrections database for each test."""
    from draw2digit.feedback import FeedbackStore

    return FeedbackStore(tmp_path / "feedback.sqlite3")


@pytest.fixture
def app(predictor, store):
    """A fresh app per test (as in flaskr), sharing the session's loaded model."""
    from draw2digit_app import create_app

    return create_app({"TESTING": True, "WARM_EXPLAIN": False}, predictor=predictor, store=store)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The real thing: `draw2digit serve` (waitress) on a free loopback port."""
    import subprocess
    import sys

    port = free_port()
    exe = Path(sys.executable).with_name("draw2digit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "draw2digit"]
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "server.log"
    log = log_path.open("w")  # a file, not a pipe: nobody drains a pipe, and a full one blocks the server
    feedback_db = tmp_path_factory.mktemp("live") / "feedback.sqlite3"
    proc = subprocess.Popen(
        [*cmd, "serve", "--host", "127.0.0.1", "--port", str(port), "--model", str(MODELS)],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "DRAW2DIGIT_FEEDBACK_DB": str(feedback_db)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/health", proc=proc, log_path=log_path)
        yield type(
            "Server",
            (),
            {"url": url, "pid": proc.pid, "proc": proc, "log": log_path, "feedback_db": feedback_db},
        )
    finally:
        log.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


CHROMIUM = os.environ.get("DRAW2DIGIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (never Playwright's own download)."""
    if not Path(CHROMIUM).is_file():
        missing(f"chromium at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright (pip install playwright)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
