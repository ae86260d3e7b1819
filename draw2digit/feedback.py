"""Corrections from users: a drawing, the digit it really is, what the model said.

Stored in SQLite (created on first use, WAL mode, one short transaction per
write, so concurrent requests and processes are safe), bounded in rows (the
oldest go first) and in bytes per drawing (originals are re-encoded, at most
560 pixels on a side). ``draw2digit finetune`` learns from them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from draw2digit.data import user_path
from draw2digit.decode import ImageInput, PreprocessError, to_pil_or_array
from draw2digit.preprocess import preprocess

ENV_FEEDBACK_DB = "DRAW2DIGIT_FEEDBACK_DB"
MAX_ROWS = 10_000
MAX_SIDE = 560

SCHEMA = """
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
    predicted INTEGER CHECK (predicted IS NULL OR predicted BETWEEN 0 AND 9),
    original BLOB NOT NULL,          -- PNG, at most MAX_SIDE pixels on a side
    image BLOB NOT NULL,             -- the 28x28 model input, uint8, row-major
    drawing TEXT,                    -- SHA-256 (16 hex) of the whole drawing: rows of one number share it
    position INTEGER,                -- which digit of a number, from the left (NULL: a single digit)
    box TEXT                         -- that digit's "left,top,right,bottom" in the drawing's pixels
)
"""

#: Columns added after the first release: an older file gets them on first use and keeps its rows.
ADDED_COLUMNS = {"drawing": "TEXT", "position": "INTEGER", "box": "TEXT"}


class BlankCorrectionError(PreprocessError):
    """A blank drawing cannot teach the model anything."""


@dataclass(frozen=True)
class DigitPiece:
    """One digit of a number drawing, as the segmenter cut it."""

    position: int  # from the left, 0-based
    box: tuple[int, int, int, int]  # (left, top, right, bottom) in the drawing's pixels
    image: np.ndarray  # its 28x28 model input, values in [0, 1]


@dataclass(frozen=True)
class Corrections:
    ids: np.ndarray  # (n,)
    images: np.ndarray  # (n, 28, 28) uint8
    labels: np.ndarray  # (n,) uint8


def default_path() -> Path:
    return user_path(ENV_FEEDBACK_DB, "data", "feedback.sqlite3")


class FeedbackStore:
    def __init__(self, path: str | os.PathLike | None = None, max_rows: int = MAX_ROWS):
        self.path = Path(path) if path else default_path()
        self.max_rows = max_rows
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 30000")
        if not self._ready:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(SCHEMA)
            have = {row[1] for row in conn.execute("PRAGMA table_info(corrections)")}
            for name, kind in ADDED_COLUMNS.items():
                if name not in have:
                    conn.execute(f"ALTER TABLE corrections ADD COLUMN {name} {kind}")
            self._ready = True
        return conn

    def add(
        self,
        source: ImageInput,
        label: int,
        predicted: int | None = None,
        *,
        piece: DigitPiece | None = None,
    ) -> int:
        """Store one correction; returns its id. Raises PreprocessError for unusable images.

        ``piece`` corrects one digit of a number: the whole drawing is kept as
        the original (with its hash, so rows of one number can be grouped),
        and the piece's own 28x28 is what fine-tuning learns from.
        """
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label <= 9:
            raise ValueError("label must be a digit from 0 to 9")
        if predicted is not None and (isinstance(predicted, bool) or not isinstance(predicted, int)):
            raise ValueError("predicted must be a digit from 0 to 9 or null")
        decoded = to_pil_or_array(source)
        if piece is not None:
            pixels = np.asarray(piece.image, np.float32)
            if pixels.shape != (28, 28) or pixels.max(initial=0) <= 0:
                raise BlankCorrectionError(
                    "that digit of the number is blank: there is nothing to learn from"
                )
        else:
            item = preprocess(decoded)
            if item.blank:
                raise BlankCorrectionError("the drawing is blank: there is nothing to learn from")
            pixels = item.image
        original = _png_bytes(decoded)
        image = np.uint8(np.round(np.clip(pixels, 0, 1) * 255)).tobytes()
        drawing = hashlib.sha256(original).hexdigest()[:16]
        position = piece.position if piece is not None else None
        box = ",".join(str(int(v)) for v in piece.box) if piece is not None else None
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute(
                    "INSERT INTO corrections"
                    " (created, label, predicted, original, image, drawing, position, box)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (now, label, predicted, original, image, drawing, position, box),
                )
                conn.execute(
                    "DELETE FROM corrections WHERE id <= (SELECT MAX(id) FROM corrections) - ?",
                    (self.max_rows,),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return int(cur.lastrowid)

    def count(self) -> int:
        if not self.path.exists():
            return 0
        with closing(self._connect()) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM corrections").fetchone()[0])

    def check(self) -> str:
        """``"ok"``, or what is wrong, for readiness reports: never raises."""
        try:
            with closing(self._connect()) as conn:
                conn.execute("SELECT COUNT(*) FROM corrections").fetchone()
            return "ok"
        except (sqlite3.Error, OSError) as exc:
            return f"unavailable: {exc}"

    def records(self) -> list[dict]:
        """What was stored, without the images: for people and tools reviewing corrections."""
        if not self.path.exists():
            return []
        names = ("id", "created", "label", "predicted", "drawing", "position", "box")
        with closing(self._connect()) as conn:
            rows = conn.execute(f"SELECT {', '.join(names)} FROM corrections ORDER BY id").fetchall()
        out = [dict(zip(names, row, strict=True)) for row in rows]
        for r in out:
            r["box"] = [int(v) for v in r["box"].split(",")] if r["box"] else None
        return out

    def load(self) -> Corrections:
        """All stored corrections as MNIST-style arrays, oldest first."""
        if not self.path.exists():
            return Corrections(np.zeros(0, np.int64), np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT id, label, image FROM corrections ORDER BY id").fetchall()
        ids = np.array([r[0] for r in rows], np.int64)
        labels = np.array([r[1] for r in rows], np.uint8)
        images = (
            np.stack([np.frombuffer(r[2], np.uint8).reshape(28, 28) for r in rows])
            if rows
            else np.zeros((0, 28, 28), np.uint8)
        )
        return Corrections(ids, images, labels)


def _png_bytes(decoded) -> bytes:
    image = decoded if isinstance(decoded, Image.Image) else _array_image(decoded)
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA")
    image = image.copy()
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _array_image(array: np.ndarray) -> Image.Image:
    a = np.asarray(array, dtype=np.float64)
    if a.max(initial=0) <= 1.0:
        a = a * 255
    a = np.clip(a, 0, 255).astype(np.uint8)
    return Image.fromarray(a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a)
