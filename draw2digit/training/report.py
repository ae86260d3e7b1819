"""The figures the README shows, read from the shipped models' cards and saved evaluations.

``draw2digit report`` prints this table; the README holds the same text between
two markers, and a test fails when they differ, so no figure is typed by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from draw2digit.artifacts import ModelCard
from draw2digit.calibration import CALIBRATION_FILE

#: what ``draw2digit evaluate --save`` writes into a model folder for this report
EVALUATION_FILE = "evaluation.json"
#: the three models the project ships, by folder under models/
SHIPPED = {"shipped model": ".", "its twin": "heldout-twin", "MNIST-only model": "mnist-only"}
BEGIN, END = "<!-- figures:begin (draw2digit report) -->", "<!-- figures:end -->"


@dataclass(frozen=True)
class ModelFigures:
    card: ModelCard
    calibration: dict
    evaluation: dict

    @classmethod
    def read(cls, folder: Path) -> ModelFigures:
        def load(name: str) -> dict:
            path = folder / name
            return json.loads(path.read_text()) if path.is_file() else {}

        return cls(ModelCard.read(folder), load(CALIBRATION_FILE), load(EVALUATION_FILE))

    def non_digits_rejected(self) -> float | None:
        rule = self.calibration.get("rule")
        return self.calibration["rules"][rule]["non_digit_rejection"] if rule else None

    def personal(self, key: str) -> float | None:
        """From ``evaluate --pen --personal``: online, one user per writer, learning from corrections."""
        online = self.evaluation.get("personal")
        if not online:
            return None
        if key == "weakest":
            return min(w["adapted"] for w in online["per_writer"].values())
        return online[key]

    def numbers(self) -> float | None:
        numbers = self.evaluation.get("numbers")
        if not numbers:
            return None
        return sum(r["sequence_accuracy"] for r in numbers.values()) / len(numbers)


def collect(models: Path) -> dict[str, ModelFigures]:
    return {name: ModelFigures.read(models / sub) for name, sub in SHIPPED.items() if (models / sub).is_dir()}


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f} %"


def render(figures: dict[str, ModelFigures]) -> str:
    """A Markdown table: one row a figure, one column a shipped model."""
    names = list(figures)

    def pen(f: ModelFigures, key: str) -> float | None:
        return f.evaluation.get("pen", {}).get(key)

    def interval(f: ModelFigures) -> str:
        low_high = pen(f, "accuracy_interval")
        return "–" if not low_high else f"{100 * low_high[0]:.2f}–{100 * low_high[1]:.2f} %"

    rows = [
        ("MNIST test set (as served)", lambda f: _pct(f.card.test_accuracy)),
        ("pen digits of 10 held-out writers, rule on", lambda f: _pct(pen(f, "accuracy"))),
        ("… 95 % interval over writers", interval),
        ("… real digits called not a digit", lambda f: _pct(pen(f, "false_rejection"))),
        ("… online, learning each writer's corrections", lambda f: _pct(f.personal("accuracy_adapted"))),
        ("… weakest writer, learning", lambda f: _pct(f.personal("weakest"))),
        ("… read right alone, wrong after learning", lambda f: _pct(f.personal("harm"))),
        ("non-digits rejected (test family)", lambda f: _pct(f.non_digits_rejected(), 1)),
        ("numbers of 2–5 held-out pen digits read exactly", lambda f: _pct(f.numbers(), 1)),
        ("parameters", lambda f: f"{f.card.raw['parameters']:,}" if "parameters" in f.card.raw else "–"),
    ]
    lines = ["| figure | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {label} | " + " | ".join(fn(figures[n]) for n in names) + " |" for label, fn in rows]
    return "\n".join(lines)


def readme_table(readme: str) -> str:
    """The table the README holds between the markers."""
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[start:end].strip()
