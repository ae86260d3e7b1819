"""Corrections from users: a drawing, the digit it really is, what the model said.

Stored through SQLAlchemy Core in the database ``draw2digit.db`` names (an
SQLite file by default, PostgreSQL for several servers), one short transaction
per write, so concurrent requests and processes are safe. Originals are
re-encoded at most 560 pixels on a side; keeping the table bounded is a job
for ``draw2digit db prune``, off the request path. ``draw2digit finetune``
learns from them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from PIL import Image

from draw2digit import db
from draw2digit.decode import ImageInput, PreprocessError, to_pil_or_array
from draw2digit.paths import user_path
from draw2digit.preprocess import preprocess

ENV_FEEDBACK_DB = "DRAW2DIGIT_FEEDBACK_DB"  # an SQLite file; DRAW2DIGIT_DATABASE_URL takes precedence
MAX_ROWS = 10_000  # what `draw2digit db prune` keeps by default
MAX_SIDE = 560


class BlankCorrectionError(PreprocessError):
    """A blank drawing cannot teach the model anything."""


class StoreUnavailable(RuntimeError):
    """The corrections database cannot be reached: nothing was stored."""


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


def default_url() -> str:
    """``$DRAW2DIGIT_DATABASE_URL``, else the SQLite file ``$DRAW2DIGIT_FEEDBACK_DB`` (or its default)."""
    return os.environ.get(db.ENV_DATABASE_URL) or db.url_for(default_path())


class FeedbackStore:
    """Corrections in a database given by URL (or an SQLite path), migrated on first use."""

    def __init__(self, target: str | os.PathLike | None = None):
        self.url = db.url_for(target) if target else default_url()
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path | None:
        """The SQLite file, when it is one (None for a server database)."""
        url = sa.engine.make_url(self.url)
        return Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None

    def __str__(self) -> str:
        return (
            str(self.path) if self.path else sa.engine.make_url(self.url).render_as_string(hide_password=True)
        )

    def engine(self) -> sa.Engine:
        """Made and migrated on first use (a worker process makes its own, after the fork)."""
        with self._lock:
            if self._engine is None:
                if self.path is not None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                engine = db.make_engine(self.url)
                try:
                    db.upgrade(engine)
                except sa.exc.DBAPIError as exc:
                    engine.dispose()
                    raise StoreUnavailable(
                        f"the corrections database is unavailable ({_reason(exc)})"
                    ) from exc
                self._engine = engine
            return self._engine

    @contextmanager
    def _begin(self):
        try:
            with self.engine().begin() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            if isinstance(exc, sa.exc.IntegrityError):
                raise
            raise StoreUnavailable(f"the corrections database is unavailable ({_reason(exc)})") from exc

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
        row = {
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "label": label,
            "predicted": predicted,
            "original": original,
            "image": np.uint8(np.round(np.clip(pixels, 0, 1) * 255)).tobytes(),
            "drawing": hashlib.sha256(original).hexdigest()[:16],
            "position": piece.position if piece is not None else None,
            "box": ",".join(str(int(v)) for v in piece.box) if piece is not None else None,
        }
        with self._begin() as conn:
            return int(conn.execute(db.corrections.insert().returning(db.corrections.c.id), row).scalar_one())

    def count(self) -> int:
        if self.path is not None and not self.path.exists():
            return 0
        with self._begin() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(db.corrections)).scalar_one())

    def prune(self, keep: int = MAX_ROWS) -> int:
        """Keep the newest ``keep`` corrections; returns how many were deleted. A job, not a request."""
        t = db.corrections
        with self._begin() as conn:
            newest = conn.execute(sa.select(sa.func.max(t.c.id))).scalar_one()
            if newest is None:
                return 0
            return conn.execute(sa.delete(t).where(t.c.id <= newest - keep)).rowcount

    def check(self) -> str:
        """``"ok"``, or what is wrong, for readiness reports: never raises."""
        try:
            with self._begin() as conn:
                conn.execute(sa.select(1))
            return "ok"
        except (StoreUnavailable, OSError) as exc:
            return f"unavailable: {exc}"

    def records(self) -> list[dict]:
        """What was stored, without the images: for people and tools reviewing corrections."""
        if self.path is not None and not self.path.exists():
            return []
        t = db.corrections
        cols = [t.c.id, t.c.created, t.c.label, t.c.predicted, t.c.drawing, t.c.position, t.c.box]
        with self._begin() as conn:
            rows = conn.execute(sa.select(*cols).order_by(t.c.id)).mappings().all()
        out = [dict(r) for r in rows]
        for r in out:
            r["box"] = [int(v) for v in r["box"].split(",")] if r["box"] else None
        return out

    def load(self) -> Corrections:
        """All stored corrections as MNIST-style arrays, oldest first."""
        empty = Corrections(np.zeros(0, np.int64), np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))
        if self.path is not None and not self.path.exists():
            return empty
        t = db.corrections
        with self._begin() as conn:
            rows = conn.execute(sa.select(t.c.id, t.c.label, t.c.image).order_by(t.c.id)).all()
        if not rows:
            return empty
        ids = np.array([r[0] for r in rows], np.int64)
        labels = np.array([r[1] for r in rows], np.uint8)
        images = np.stack([np.frombuffer(bytes(r[2]), np.uint8).reshape(28, 28) for r in rows])
        return Corrections(ids, images, labels)


def _reason(exc: Exception) -> str:
    """The driver's one-line reason, without SQL or parameters (which may hold user data)."""
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0][:200] if str(orig).strip() else type(orig).__name__


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
