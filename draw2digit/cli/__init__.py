"""``draw2digit``: the command line. It parses and prints; the library does the work.

Every user error (bad path, not an image, missing data or model) ends in one
line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from draw2digit.artifacts import ModelNotFoundError
from draw2digit.cli import serving, training
from draw2digit.cli.common import EXIT_USAGE, CLIError
from draw2digit.decode import PreprocessError
from draw2digit.feedback import StoreUnavailable
from draw2digit.training.config import ConfigError
from draw2digit.training.data import DataError

__all__ = ["CLIError", "build_parser", "main"]

#: Modules that only an extra installs: the serving install lacks them, and a command needing one says which.
EXTRA_FOR = {
    "tensorflow": "train",
    "keras": "train",
    "matplotlib": "train",
    "tqdm": "train",
    "voila": "notebooks",
    "psutil": "notebooks",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="draw2digit",
        description="Read hand-drawn digits with a CNN trained on MNIST and real pen digits.",
        epilog="MNIST is read from $DRAW2DIGIT_DATA_DIR, else the user cache (downloaded when missing).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    training.add_commands(sub)
    serving.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CLIError, ConfigError, DataError, ModelNotFoundError, PreprocessError, StoreUnavailable) as exc:
        print(f"draw2digit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing in EXTRA_FOR:
            print(
                f"draw2digit: error: `draw2digit {args.command}` needs {missing}, which this install "
                f"does not have: pip install 'draw2digit[{EXTRA_FOR[missing]}]'",
                file=sys.stderr,
            )
            return EXIT_USAGE
        raise
    except KeyboardInterrupt:
        print("draw2digit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
