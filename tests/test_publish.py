"""The retraining job's last step: `draw2digit publish` puts a model into service only if it is not worse."""

from __future__ import annotations

import pytest

from draw2digit.cli import main
from draw2digit.cli.common import EXIT_NOT_PUBLISHED
from draw2digit.training.evaluate import not_worse
from tests.conftest import MODELS


def test_not_worse_rule():
    ok, _ = not_worse({"before": {"mnist_test_accuracy": 0.996}, "after": {"mnist_test_accuracy": 0.9958}})
    assert ok, "two images fewer is within the tolerance"
    ok, why = not_worse({"before": {"mnist_test_accuracy": 0.996}, "after": {"mnist_test_accuracy": 0.994}})
    assert not ok and "below" in why
    held = {"heldout_corrections_accuracy": 0.5}
    ok, why = not_worse(
        {
            "before": {"mnist_test_accuracy": 0.99, **held},
            "after": {"mnist_test_accuracy": 0.99, "heldout_corrections_accuracy": 0.4},
        }
    )
    assert not ok and "held-back" in why


@pytest.mark.slow
def test_publish_first_then_only_when_not_worse(tmp_path, mnist_dir, monkeypatch, capsys):
    monkeypatch.setenv("DRAW2DIGIT_DATA_DIR", str(mnist_dir))
    root = tmp_path / "models"
    root.mkdir()
    corrections = str(tmp_path / "fb.sqlite3")
    # first start: nothing in service, the image's model goes in
    assert main(["publish", str(MODELS / "mnist-only"), "--into", str(root), "--if-empty"]) == 0
    current = root / "current"
    assert current.is_symlink() and (current / "model.tflite").is_file()
    first = current.resolve()
    assert main(["publish", str(MODELS), "--into", str(root), "--if-empty"]) == 0
    assert current.resolve() == first, "--if-empty leaves a model in service alone"
    # the shipped model reads MNIST's test set a little worse (99.52 %) than the MNIST-only one (99.72 %)
    code = main(["publish", str(MODELS), "--into", str(root), "--corrections", corrections])
    assert code == EXIT_NOT_PUBLISHED and current.resolve() == first
    assert "not published" in capsys.readouterr().out
    code = main(
        ["publish", str(MODELS), "--into", str(root), "--corrections", corrections, "--tolerance", "0.003"]
    )
    assert code == 0 and current.resolve() != first and (current / "model.tflite").is_file()
    assert first.is_dir(), "the old version stays for a rollback"
