"""Shared fixtures. In CI (CI=true) a missing required part fails the run; locally it skips."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from draw2digit import data

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
MODELS = ROOT / "models"


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
