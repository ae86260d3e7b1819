"""What every command shares: its errors, exit codes and argument types."""

from __future__ import annotations

import argparse
from pathlib import Path

from draw2digit.artifacts import MODEL_FILE

EXIT_USAGE = 2
EXIT_NOT_PUBLISHED = 3  # publish: the candidate was worse; the model in service stays

MODEL_HELP = "model folder or file (default: $DRAW2DIGIT_MODEL, else the shipped models/)"
CORRECTIONS_HELP = (
    "corrections database: a URL (postgresql+psycopg://...) or an SQLite file "
    "(default $DRAW2DIGIT_DATABASE_URL, else $DRAW2DIGIT_FEEDBACK_DB)"
)


class CLIError(Exception):
    """A problem the user can fix; printed as one line."""


def refuse_overwrite(out: Path, force: bool) -> None:
    """A run that writes a model never silently replaces one (train, finetune, quantize)."""
    if (out / MODEL_FILE).exists() and not force:
        raise CLIError(f"{out / MODEL_FILE} exists; pass --force to overwrite it or choose another --out")


def non_negative_int(text: str) -> int:
    """An argparse type: a readable usage error for "-3" or "soon" instead of a traceback later."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, not {value}")
    return value
