"""Serving without TensorFlow, and from a built wheel rather than the checkout (issue 12, part 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import ROOT

NO_TENSORFLOW = """
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras", "matplotlib"):
            raise ModuleNotFoundError(f"No module named {name!r} (refused by the test)", name=name)
        return None
sys.meta_path.insert(0, Refuse())
"""

SERVE_AND_PREDICT = """
import base64, json, sys
from draw2digit.canvas import to_png
from draw2digit.training.synthetic import digit_drawing
from draw2digit_app import create_app

app = create_app({"TESTING": True, "FEEDBACK_DB": sys.argv[1]})
client = app.test_client()
image = base64.b64encode(to_png(digit_drawing(3))).decode()
plain = client.post("/predict", json={"image": image}).get_json()
why = client.post("/predict", json={"image": image, "explain": True})
stored = client.post("/feedback", json={"image": image, "label": 8}).status_code  # migrations ship too
warm = client.post("/predict", json={"image": image, "explain": True}).get_json()
print(json.dumps({"plain": plain, "why_status": why.status_code, "why": why.get_json(), "stored": stored,
                  "warm_map": warm["saliency"] == why.get_json()["saliency"],
                  "tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules}))
"""


def serve_and_predict(python, code: str, db, cwd=ROOT, env=None, timeout: int = 120) -> dict:
    """Run SERVE_AND_PREDICT (after ``code``'s set-up) in a fresh process; what it printed."""
    proc = subprocess.run(
        [str(python), "-c", code + SERVE_AND_PREDICT, str(db)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_app_serves_where_tensorflow_cannot_be_imported(tmp_path):
    out = serve_and_predict(sys.executable, NO_TENSORFLOW, tmp_path / "fb.sqlite3")
    assert out["plain"]["digit"] == 3
    assert out["why_status"] == 200 and out["why"]["digit"] == 3
    assert out["why"]["saliency_png"].startswith("data:image/png") and "explain_error" not in out["why"]
    assert len(out["why"]["saliency"]) == 28 and out["warm_map"], (
        "Show why without TensorFlow, the same each time"
    )
    assert not out["tensorflow"] and not out["keras"]


def test_a_serving_process_never_imports_tensorflow_even_where_it_is_installed(tmp_path):
    """This environment has TensorFlow; serving, "Show why" and a correction still leave it alone."""
    out = serve_and_predict(sys.executable, "", tmp_path / "fb.sqlite3")
    assert out["why"]["saliency_png"] and out["stored"] == 201
    assert not out["tensorflow"] and not out["keras"]


def test_a_command_that_needs_training_extras_says_which(tmp_path):
    code = NO_TENSORFLOW + "from draw2digit.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "train",
            "--out",
            str(tmp_path / "m"),
            "--set",
            "epochs=1",
            "--set",
            "limit=64",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "pip install 'draw2digit[train]'" in proc.stderr


@pytest.mark.slow
def test_a_built_wheel_serves_the_shipped_model(tmp_path):
    """Build the wheel, install it (not editable) into a fresh venv, serve from elsewhere, predict."""
    import shutil

    source = tmp_path / "source"  # setuptools builds in the source tree: build a copy, not the checkout
    heavy = (
        ".venv",
        ".git",
        "runs",
        "build",
        "dist",
        "test-artifacts",
        "instance",
        "*.egg-info",
        "__pycache__",
    )
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*heavy))
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("draw2digit-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", str(wheel)], capture_output=True, text=True, timeout=900
    )
    assert install.returncode == 0, install.stderr[-3000:]
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    top = {p.name for p in site.iterdir()}
    assert "app" not in top and {"draw2digit", "draw2digit_app"} <= top
    assert not any(name.startswith("tensorflow") for name in top), "serving installs no TensorFlow"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRAW2DIGIT_")}
    env["DRAW2DIGIT_FEEDBACK_DB"] = str(tmp_path / "fb.sqlite3")
    out = serve_and_predict(py, "", tmp_path / "fb.sqlite3", cwd=elsewhere, env=env, timeout=300)
    assert out["plain"]["digit"] == 3 and out["why"]["saliency_png"].startswith("data:image/png")
    assert out["stored"] == 201, "the corrections store (and its migrations) work from the wheel"
    instance = subprocess.run(
        [
            str(py),
            "-c",
            "from draw2digit_app import create_app; print(create_app({'TESTING': True}).instance_path)",
        ],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
        timeout=120,
    )
    assert instance.returncode == 0, instance.stderr[-2000:]
    assert "site-packages" not in instance.stdout, "the instance folder stays outside site-packages"
