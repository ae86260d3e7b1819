"""The README's figures are what `draw2digit report` prints from the model cards, never typed by hand."""

from __future__ import annotations

import json
import shutil

from draw2digit.cli import main
from draw2digit.training.report import BEGIN, END, readme_table
from tests.conftest import MODELS, ROOT


def test_the_readme_table_is_what_the_report_command_prints(capsys):
    assert main(["report"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == readme_table((ROOT / "README.md").read_text())
    card = json.loads((MODELS / "model_card.json").read_text())
    shipped = f"| MNIST test set (as served) | {100 * card['test_accuracy']:.2f} % |"
    assert printed.splitlines()[2].startswith(shipped), "the shipped model's MNIST figure, read from its card"


def test_the_report_follows_the_cards(tmp_path, capsys):
    """A changed card changes the table: the test above can fail."""
    models = tmp_path / "models"
    shutil.copytree(MODELS, models, ignore=shutil.ignore_patterns("*.keras", "*.tflite", "figures"))
    card = json.loads((models / "model_card.json").read_text())
    card["test_accuracy"] = 0.9912
    (models / "model_card.json").write_text(json.dumps(card))
    (models / "heldout-twin" / "evaluation.json").unlink()
    assert main(["report", "--models", str(models)]) == 0
    table = capsys.readouterr().out
    assert "| MNIST test set (as served) | 99.12 % |" in table
    assert "held-out writers, rule on | – | – |" in table, "no saved evaluation, no figure"


def test_the_readme_stays_short_and_keeps_its_markers():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300 and readme.count(BEGIN) == readme.count(END) == 1
