"""environment.yml and pyproject.toml must describe the same environment."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pins(reqs: list[str]) -> dict[str, str]:
    return {_name(r): r.split(";")[0].strip().replace(" ", "") for r in reqs}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = _pins([c for c in conda if not c.startswith(("python", "pip"))] + pip)
    listed.pop("-e", None)
    py_pins = _pins([r for r in wanted if _name(r) != project["name"]])  # e.g. notebooks pulls in [train]
    # tensorflow-cpu (Linux x86_64) and tensorflow (elsewhere) are one dependency for conda.
    py_pins.pop("tensorflow", None)
    assert listed == py_pins
    python = next(c for c in conda if c.startswith("python"))
    assert python.replace(" ", "") == "python" + project["requires-python"]
