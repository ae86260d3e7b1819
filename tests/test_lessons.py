"""Each lesson notebook matches its Python source, cell for cell (run `make notebooks` after editing one)."""

from __future__ import annotations

import importlib.util

import nbformat
import pytest

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("lesson_build", ROOT / "notebooks" / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)


def cells(nb) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


@pytest.mark.parametrize("lesson", build.LESSONS)
def test_notebook_matches_its_source(lesson):
    committed = nbformat.read(ROOT / "notebooks" / f"{lesson}.ipynb", as_version=4)
    assert cells(committed) == cells(build.read_lesson(lesson)), (
        f"notebooks/{lesson}.ipynb is out of step with notebooks/{lesson}.py: run `make notebooks`"
    )


@pytest.mark.parametrize("lesson", ["01_train", "02_evaluate", "03_real_drawings"])
def test_lessons_ship_executed(lesson):
    nb = nbformat.read(ROOT / "notebooks" / f"{lesson}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert code and all(c.execution_count is not None for c in code), "run `make notebooks` and commit"
    assert sum(bool(c.outputs) for c in code) >= len(code) // 2, "most cells show something"
    pictures = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(pictures) >= 3, "the lesson's plots are committed as pictures"


@pytest.mark.parametrize("lesson", ["01_train", "02_evaluate", "03_real_drawings"])
def test_lessons_read_cleanly(lesson):
    """No red log blocks, no progress bars, no test-only markers in the code learners read."""
    nb = nbformat.read(ROOT / "notebooks" / f"{lesson}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for c in code:
        assert "nbval" not in c.source.lower(), "nbval settings go in cell tags, not in the code"
        for o in c.outputs:
            assert not (o.output_type == "stream" and o.name == "stderr"), o.get("text", "")[:300]
            text = o.get("text", "") if o.output_type == "stream" else ""
            assert "━" not in text, "a progress bar in a lesson output (one line per epoch is fine)"
