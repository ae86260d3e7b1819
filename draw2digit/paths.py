"""Per-user folders: one rule for where draw2digit keeps caches and data."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def user_path(env: str, kind: str, *parts: str) -> Path:
    """``$env`` when set (tests and CI never touch the real folders), else the per-user
    ``kind`` folder ("cache" or "data") of draw2digit joined with ``parts``."""
    value = os.environ.get(env)
    if value:
        return Path(value)
    base = platformdirs.user_cache_dir if kind == "cache" else platformdirs.user_data_dir
    return Path(base("draw2digit"), *parts)
