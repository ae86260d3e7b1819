from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from draw2digit.cli import main
from draw2digit.training.synthetic import EXAMPLES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("draw2digit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "draw2digit"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


def test_predict_reads_every_bundled_example():
    files = sorted(EXAMPLES_DIR.glob("*"))
    assert {f.name for f in files} == set(EXAMPLES)
    proc = run("predict", *map(str, files))
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(": ", 1) for line in proc.stdout.strip().splitlines())
    for name, (digit, _) in EXAMPLES.items():
        shown = lines[str(EXAMPLES_DIR / name)]
        assert shown.startswith("blank" if digit is None else f"{digit} ("), (name, shown)


def test_predict_json(capsys):
    files = [str(EXAMPLES_DIR / "3_chalkboard.png"), str(EXAMPLES_DIR / "blank.png")]
    assert main(["predict", "--json", *files]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["digit"] for r in rows] == [3, None] and rows[1]["blank"] is True
    assert len(rows[0]["probabilities"]) == 10 and rows[0]["file"] == files[0]


@pytest.mark.parametrize("content", [None, b"definitely not an image", b""], ids=["missing", "text", "empty"])
def test_predict_bad_file_is_one_line_and_exit_2(tmp_path, content):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    proc = run("predict", str(path), str(EXAMPLES_DIR / "0_canvas.png"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("draw2digit: error:")]
    assert len(errors) == 1 and "bad.png" in errors[0]
    assert "0_canvas.png: 0 (" in proc.stdout, "the good file is still read"


def test_predict_directory_and_missing_model(tmp_path, capsys):
    assert main(["predict", str(tmp_path)]) == 2
    assert "directory" in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path), str(EXAMPLES_DIR / "0_canvas.png")]) == 2
    assert "no model at" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_prints_accuracy_and_writes_figures(mnist_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRAW2DIGIT_DATA_DIR", str(mnist_dir))
    assert main(["evaluate", "--figures", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "accuracy:" in out and "Confusion matrix" in out
    for name in ("confusion_matrix.png", "per_class_accuracy.png", "worst_mistakes.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    assert main(["evaluate", "--json", "--redrawn", "200", "--ablation"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] >= 0.995 and result["errors"] == round(10000 * (1 - result["accuracy"]))
    assert result["redrawn"]["count"] == 200 and result["redrawn"]["accuracy"] > 0.9
    assert result["redrawn"]["accuracy"] > result["redrawn"]["naive resize (tutorial)"]


def test_evaluate_without_data_names_the_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRAW2DIGIT_DATA_DIR", str(tmp_path))
    assert main(["evaluate"]) == 2
    err = capsys.readouterr().err
    assert "DRAW2DIGIT_DATA_DIR" in err and err.count("\n") == 1


def test_bench_prints_latency_and_throughput(capsys):
    assert main(["bench", "--runs", "40"]) == 0
    out = capsys.readouterr().out
    assert "preprocess + inference, batch 1" in out and "p50" in out and "p99" in out
    assert "images/s" in out
    assert "number mode, 5 digits" in out


def test_train_refuses_to_overwrite_a_model(tmp_path, capsys):
    shutil.copy(ROOT / "models" / "model.keras", tmp_path / "model.keras")
    assert main(["train", "--out", str(tmp_path), "--set", "epochs=1"]) == 2
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "bench"])
def test_help(command):
    proc = run(command, "--help")
    assert proc.returncode == 0 and "usage: draw2digit" in proc.stdout


def test_no_command_is_a_usage_error():
    proc = run(env={**os.environ})
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_finetune_refuses_settings_it_cannot_use_before_any_work(tmp_path, capsys):
    from draw2digit.feedback import FeedbackStore
    from draw2digit.training.synthetic import digit_drawing

    db = tmp_path / "fb.sqlite3"
    FeedbackStore(db).add(digit_drawing(1), 7, predicted=1)
    out = tmp_path / "ft"
    assert main(["finetune", "--corrections", str(db), "--out", str(out), "--epochs", "0"]) == 2
    assert "epochs and repeat must be at least 1" in capsys.readouterr().err
    assert main(["finetune", "--corrections", str(db), "--out", str(out), "--learning-rate", "-1"]) == 2
    assert "learning_rate must be over 0" in capsys.readouterr().err
    assert not out.exists(), "refused before any work"
