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
import hmac
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
from draw2digit.predictor import DigitInNumber
from draw2digit.preprocess import Preprocessed, preprocess

ENV_FEEDBACK_DB = "DRAW2DIGIT_FEEDBACK_DB"  # an SQLite file; DRAW2DIGIT_DATABASE_URL takes precedence
ENV_CLIENT_KEY = "DRAW2DIGIT_CLIENT_KEY"  # the key of the clients' hash; default: the database's own
MAX_ROWS = 10_000  # what `draw2digit db prune` keeps by default
MAX_PER_CLIENT = 100  # what `draw2digit finetune` takes from one client at most, by default
UNKNOWN_CLIENT = "unknown"  # rows stored before clients were kept, and rows from the CLI
MAX_SIDE = 560
NOT_A_DIGIT = 10  # the label of a drawing its sender said is not a digit


class BlankCorrectionError(PreprocessError):
    """A blank drawing cannot teach the model anything."""


class StoreUnavailable(RuntimeError):
    """The corrections database cannot be reached: nothing was stored."""


@dataclass(frozen=True)
class Saved:
    id: int
    new: bool  # False: the same drawing, label and client were stored already (kept once)


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

    def __init__(self, target: str | os.PathLike | None = None, *, client_key: str | None = None):
        self.url = db.url_for(target) if target else default_url()
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()
        self._local = threading.local()  # each thread's connection for fetch()
        self._client_key = client_key or os.environ.get(ENV_CLIENT_KEY) or None

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
    def transaction(self):
        """One short transaction; a database that cannot be reached raises StoreUnavailable."""
        try:
            with self.engine().begin() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            if isinstance(exc, sa.exc.IntegrityError):
                raise
            raise StoreUnavailable(f"the corrections database is unavailable ({_reason(exc)})") from exc

    def fetch(self, sql: str, params: tuple) -> list[tuple]:
        """Rows of one plain query (``?`` placeholders) on this thread's own connection.

        For the one read on a request's path that must be cheap: without SQLAlchemy's
        per-statement work it costs a fraction of a millisecond less, which a person
        waiting for an answer notices. A broken connection is replaced once.
        """
        engine = self.engine()
        if engine.dialect.paramstyle in ("format", "pyformat"):
            sql = sql.replace("?", "%s")
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            try:
                if conn is None:
                    conn = self._local.conn = engine.raw_connection()
                cursor = conn.cursor()
                try:
                    cursor.execute(sql, params)
                    rows = cursor.fetchall()
                finally:
                    cursor.close()
                conn.rollback()  # no transaction left open: the next read sees every commit since
                return rows
            except (sa.exc.DBAPIError, engine.dialect.dbapi.Error) as exc:
                self._local.conn = None
                if conn is not None:
                    conn.invalidate()
                if attempt == 2:
                    raise StoreUnavailable(
                        f"the corrections database is unavailable ({_reason(exc)})"
                    ) from exc
        raise AssertionError("unreachable")

    def add(
        self,
        source: ImageInput,
        label: int | None,
        predicted: int | None = None,
        *,
        piece: DigitInNumber | None = None,
        client: str | None = None,
        user: str | None = None,
    ) -> int:
        """Store one correction; returns its id (see :meth:`save`)."""
        return self.save(source, label, predicted, piece=piece, client=client, user=user).id

    def client_of(self, address: str | None) -> str | None:
        """The keyed hash stored for a client address (16 hex); the address itself is never stored."""
        if address is None:
            return None
        if self._client_key is None:
            with self.transaction() as conn:
                key = conn.execute(sa.select(db.settings.c.value).where(db.settings.c.name == "client_key"))
                self._client_key = key.scalar_one()
        digest = hmac.new(self._client_key.encode(), address.encode(), hashlib.sha256)
        return digest.hexdigest()[:16]

    def save(
        self,
        source: ImageInput,
        label: int | None,
        predicted: int | None = None,
        *,
        piece: DigitInNumber | None = None,
        client: str | None = None,
        user: str | None = None,
        item: Preprocessed | None = None,
    ) -> Saved:
        """Store one correction once. Raises PreprocessError for unusable images.

        ``piece`` corrects one digit of a number: the whole drawing is kept as
        the original (with its hash, so rows of one number can be grouped),
        and the piece's own 28x28 is what fine-tuning learns from. ``client`` is
        the sender's address, stored only as a keyed hash; the same drawing with
        the same label from the same client is stored once. ``user`` is the sender's
        opaque id (:mod:`draw2digit.personal`), kept so that forgetting them removes the row.
        ``item`` is ``source`` already preprocessed, when the caller needed it too.
        """
        if label is None:  # "not a digit": kept out of digit fine-tuning, a non-digit for the rejection rule
            label = NOT_A_DIGIT
        elif isinstance(label, bool) or not isinstance(label, int) or not 0 <= label <= 9:
            raise ValueError("label must be a digit from 0 to 9, or None for not a digit")
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
            item = item if item is not None else preprocess(decoded)
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
            "client": self.client_of(client),
            "user_id": user,
        }
        t = db.corrections
        same = sa.select(t.c.id).where(
            t.c.drawing == row["drawing"],
            t.c.label == label,
            t.c.position.is_not_distinct_from(row["position"]),  # NULL matches NULL
            t.c.client.is_not_distinct_from(row["client"]),
        )
        with self.transaction() as conn:
            existing = conn.execute(same.limit(1)).scalar()
            if existing is not None:
                return Saved(int(existing), False)
            return Saved(int(conn.execute(t.insert().returning(t.c.id), row).scalar_one()), True)

    def count(self) -> int:
        if self.path is not None and not self.path.exists():
            return 0
        with self.transaction() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(db.corrections)).scalar_one())

    def clients(self, top: int | None = None) -> list[tuple[str, int]]:
        """(client key, rows) per client, most rows first; rows without a client are one "unknown"."""
        if self.path is not None and not self.path.exists():
            return []
        t = db.corrections
        n = sa.func.count().label("n")
        query = sa.select(t.c.client, n).group_by(t.c.client).order_by(n.desc(), t.c.client)
        with self.transaction() as conn:
            rows = conn.execute(query.limit(top) if top else query).all()
        return [(r.client or UNKNOWN_CLIENT, int(r.n)) for r in rows]

    def prune(self, keep: int = MAX_ROWS) -> int:
        """Keep at most ``keep`` corrections, taking rows from the clients with the most first.

        Every client keeps its newest rows up to one cap, the largest that fits
        ``keep`` in all: a client under the cap loses nothing, so one client's flood
        never pushes out another's corrections. Returns how many were deleted (a job,
        not a request).
        """
        if keep < 0:
            raise ValueError("keep must be 0 or more")
        counts = dict(self.clients())
        cap = fair_cap(list(counts.values()), keep)
        t = db.corrections
        deleted = 0
        with self.transaction() as conn:
            for client, n in counts.items():
                if n <= cap:
                    continue
                mine = t.c.client.is_not_distinct_from(None if client == UNKNOWN_CLIENT else client)
                # the oldest id this client keeps; everything of theirs before it goes
                oldest_kept = sa.select(t.c.id).where(mine).order_by(t.c.id.desc()).offset(cap - 1).limit(1)
                older = t.c.id < oldest_kept.scalar_subquery() if cap else sa.true()
                deleted += conn.execute(sa.delete(t).where(mine, older)).rowcount
        return deleted

    def check(self) -> str:
        """``"ok"``, or what is wrong, for readiness reports: never raises."""
        try:
            with self.transaction() as conn:
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
        with self.transaction() as conn:
            rows = conn.execute(sa.select(*cols).order_by(t.c.id)).mappings().all()
        out = [dict(r) for r in rows]
        for r in out:
            r["box"] = [int(v) for v in r["box"].split(",")] if r["box"] else None
            if r["label"] == NOT_A_DIGIT:
                r["label"] = None  # said to be not a digit
        return out

    def not_digits(self) -> np.ndarray:
        """(n, 28, 28) uint8: the drawings people said are not digits, for fitting the rejection rule."""
        if self.path is not None and not self.path.exists():
            return np.zeros((0, 28, 28), np.uint8)
        t = db.corrections
        query = sa.select(t.c.image).where(t.c.label == NOT_A_DIGIT).order_by(t.c.id)
        with self.transaction() as conn:
            images = conn.execute(query).scalars().all()
        return (
            np.stack([np.frombuffer(bytes(b), np.uint8).reshape(28, 28) for b in images])
            if images
            else (np.zeros((0, 28, 28), np.uint8))
        )

    def load(self, max_per_client: int | None = None) -> Corrections:
        """The stored digit corrections as MNIST-style arrays, oldest first ("not a digit" ones apart).

        ``max_per_client`` keeps only each client's newest rows up to that many, so that
        no single client makes most of a fine-tuning set.
        """
        empty = Corrections(np.zeros(0, np.int64), np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))
        if self.path is not None and not self.path.exists():
            return empty
        t = db.corrections
        with self.transaction() as conn:
            digits = sa.select(t.c.id, t.c.label, t.c.image, t.c.client).where(t.c.label != NOT_A_DIGIT)
            rows = conn.execute(digits.order_by(t.c.id)).all()
        if max_per_client is not None:
            seen: dict[str | None, int] = {}
            newest_first = []
            for r in reversed(rows):
                seen[r.client] = seen.get(r.client, 0) + 1
                if seen[r.client] <= max_per_client:
                    newest_first.append(r)
            rows = newest_first[::-1]
        if not rows:
            return empty
        ids = np.array([r[0] for r in rows], np.int64)
        labels = np.array([r[1] for r in rows], np.uint8)
        images = np.stack([np.frombuffer(bytes(r[2]), np.uint8).reshape(28, 28) for r in rows])
        return Corrections(ids, images, labels)


def fair_cap(counts: list[int], keep: int) -> int:
    """The largest per-client cap with ``sum(min(n, cap)) <= keep``: clients at or under it keep all."""
    if sum(counts) <= keep:
        return max(counts, default=0)
    low, high = 0, max(counts)
    while low < high:
        mid = (low + high + 1) // 2
        if sum(min(n, mid) for n in counts) <= keep:
            low = mid
        else:
            high = mid - 1
    return low


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
