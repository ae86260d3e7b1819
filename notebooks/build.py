"""Write the lesson notebooks from their sources, ``notebooks/0*.py`` (jupytext percent format).

The sources are plain Python that ruff checks and diffs show line by line; each
cell calls draw2digit and never copies code out of it. ``make notebooks`` runs
this and then executes the notebooks, whose outputs are committed: a learner
opening one sees the pictures, and nbval checks that they still come out.
"""

from __future__ import annotations

from pathlib import Path

import jupytext

HERE = Path(__file__).resolve().parent
LESSONS = ("01_train", "02_evaluate", "03_real_drawings", "04_draw")


def read_lesson(name: str):
    """The notebook a lesson source describes (cells and metadata, no outputs)."""
    nb = jupytext.read(HERE / f"{name}.py")
    nb.metadata.pop("jupytext", None)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def write(name: str) -> Path:
    path = HERE / f"{name}.ipynb"
    jupytext.write(read_lesson(name), path, fmt="ipynb")
    return path


if __name__ == "__main__":
    for lesson in LESSONS:
        print(write(lesson))
