"""Shared fixtures. In CI (CI=true) a missing required part fails the run; locally it skips."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from draw2digit.training import data
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.localhost import free_port, wait_for

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
    from draw2digit.training import pendigits

    try:
        return pendigits.load_pendigits()
    except data.DataError as exc:
        missing(f"pen digits: {exc}")
        raise AssertionError from exc  # unreachable


@pytest.fixture(autouse=True)
def _isolated_data_env(monkeypatch, tmp_path_factory, request):
    """Tests never download and never touch the user's cache or corrections."""
    monkeypatch.setenv(data.ENV_CACHE_DIR, str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("user-data")))
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
    from draw2digit.training.model import keras_predictor

    return keras_predictor(MODELS)


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

    return create_app({"TESTING": True}, predictor=predictor, store=store)


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
        # the page tests correct many drawings in a minute from one address: their own limit, not the default
        env={
            **os.environ,
            "DRAW2DIGIT_FEEDBACK_DB": str(feedback_db),
            "DRAW2DIGIT_FEEDBACK_LIMIT": "600 per minute",
        },
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


@pytest.fixture
def open_page(browser, live_server):
    """A fresh context per call, with JavaScript errors failing the test."""
    contexts, errors = [], []

    def open_(**options):
        context = browser.new_context(**(options or {"viewport": {"width": 1280, "height": 900}}))
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(live_server.url + "/")
        page.wait_for_selector("[data-testid=draw-canvas]")
        return page

    yield open_
    for c in contexts:
        c.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _postgres_bindir() -> Path | None:
    """Debian keeps the server's programs in /usr/lib/postgresql/<version>/bin."""
    import shutil

    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server on a free loopback port, stopped at the end of the session.

    initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user.
    """
    import shutil
    import subprocess
    import tempfile

    bindir = _postgres_bindir()
    if bindir is None:
        missing("a PostgreSQL server (apt-get install postgresql)")
    try:
        import psycopg
    except ImportError:
        missing("psycopg (pip install 'draw2digit[postgres]')")
    as_postgres: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="d2d-pg-"))
    if os.geteuid() == 0:
        as_postgres = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres", "postgres")
    port = free_port()
    data_dir, log = base / "data", base / "server.log"

    def run(*cmd: str) -> None:
        proc = subprocess.run([*as_postgres, *cmd], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {proc.stderr[-2000:]}")

    run(
        str(bindir / "initdb"),
        "-D",
        str(data_dir),
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--no-sync",
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    run(str(bindir / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-o", options, "-w", "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}", psycopg
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the session's server for one test."""
    import uuid

    server, psycopg = postgres_server
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"{server}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """Each store test runs on SQLite and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'feedback.sqlite3'}"
    return request.getfixturevalue("postgres_url")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start PostgreSQL are marked so that `make test-fast` can leave them out."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "postgres_server" in getattr(item, "fixturenames", ()) or params.get("store_url") == "postgresql":
            item.add_marker(pytest.mark.postgres)
