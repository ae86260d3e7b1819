"""Learning one person's handwriting from their corrections, from the next drawing on.

A model trained on many writers still misreads one person's odd 4 every time.
Here each drawing a person finishes is remembered by the model's penultimate
features with its final label: the digit they corrected it to, or the answer
they accepted by not correcting it. A new drawing whose nearest remembered
drawing is closer than :data:`THRESHOLD` (cosine) takes that drawing's label;
otherwise the model answers alone. Accepted answers matter as much as the
corrections: they keep a corrected 9 from capturing the same person's 7s.

The memory lives in the corrections database (``memories``), so every worker and
pod sees a correction at once; each person keeps their newest
:data:`MEMORY_SIZE` corrections and as many accepted answers. Users are opaque
random ids (UUIDs); nothing else about them is kept, and :meth:`Personalizer.forget`
removes all of it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import sqlalchemy as sa

from draw2digit import db
from draw2digit.feedback import NOT_A_DIGIT, FeedbackStore, StoreUnavailable
from draw2digit.predictor import DigitInNumber, NumberPrediction, Prediction, Predictor

ENV_MEMORY_SIZE = "DRAW2DIGIT_MEMORY_SIZE"
MEMORY_SIZE = 200  # newest corrections kept per person, and as many accepted answers
THRESHOLD = 0.8  # cosine similarity from which a remembered drawing decides (fitted on tuning writers)
TAUGHT_REASON = "you marked drawings like this one as not a digit"
log = logging.getLogger("draw2digit.personal")


class InvalidUser(ValueError):
    """A user id that is not a UUID."""


def check_user(value: object) -> str:
    """The user id in canonical form, or InvalidUser: only random UUIDs are accepted, never names."""
    if not isinstance(value, str) or len(value) != 36:
        raise InvalidUser("'user' must be a UUID such as 0f8c2a4e-3b1d-4c5e-9a7f-2d6b8e1c4a90")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidUser("'user' must be a UUID such as 0f8c2a4e-3b1d-4c5e-9a7f-2d6b8e1c4a90") from None


def memory_size() -> int:
    """``$DRAW2DIGIT_MEMORY_SIZE`` or the default; 0 turns remembering off."""
    text = os.environ.get(ENV_MEMORY_SIZE, "").strip()
    if not text:
        return MEMORY_SIZE
    if not text.isdigit():
        raise ValueError(f"{ENV_MEMORY_SIZE} must be a whole number, got {text!r}")
    return int(text)


def drawing_key(image: np.ndarray) -> str:
    """The same 28x28 model input gets the same key, whichever request brought it."""
    pixels = np.uint8(np.round(np.clip(np.asarray(image, np.float32), 0, 1) * 255))
    return hashlib.sha256(pixels.tobytes()).hexdigest()[:16]


@dataclass(frozen=True)
class Memory:
    """One person's remembered drawings: unit feature vectors and their labels."""

    features: np.ndarray  # (n, d) float32, unit length
    labels: np.ndarray  # (n,) 0-9, or NOT_A_DIGIT

    @classmethod
    def empty(cls) -> Memory:
        return cls(np.zeros((0, 0), np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def nearest(self, features: np.ndarray) -> tuple[int, float] | None:
        """(label, cosine similarity) of the closest remembered drawing, or None when there is none."""
        if not len(self) or features is None:
            return None
        sims = self.features @ _unit(features)
        best = int(np.argmax(sims))
        return int(self.labels[best]), float(sims[best])


@dataclass(frozen=True)
class Personal:
    """A prediction for one person: the answer, and what the model alone said when that differs."""

    prediction: Prediction  # the answer this person gets
    model: Prediction  # the model alone
    taught: bool  # the answer differs from the model's because of what this person taught

    @property
    def note(self) -> str | None:
        """What the page and the pad say beside an answer this person's corrections changed."""
        if not self.taught:
            return None
        alone = "it is not a digit" if self.model.digit is None else str(self.model.digit)
        read = "Not read as a digit" if self.prediction.rejected else f"Read as {self.prediction.digit}"
        return f"{read} because you taught it; the model alone says {alone}."

    def to_dict(self) -> dict:
        out = self.prediction.to_dict()
        out["personalized"] = self.taught
        if self.taught:
            out["model_digit"] = self.model.digit  # None: the model alone says it is not a digit
            out["note"] = self.note
        return out


def adapt(prediction: Prediction, memory: Memory, threshold: float = THRESHOLD) -> Personal:
    """The model's answer, unless a remembered drawing of this person is close enough to decide."""
    match = None if prediction.blank else memory.nearest(prediction.features)
    if match is None or match[1] < threshold:
        return Personal(prediction, prediction, False)
    label, similarity = match
    if label == NOT_A_DIGIT:
        answer = replace(prediction, digit=None, rejected=True, reason=TAUGHT_REASON)
    else:
        # the remembered label takes a share of the probability that grows with the likeness,
        # so the bars agree with the answer and still show what the model thought
        weight = 0.6 + 0.38 * (similarity - threshold) / max(1 - threshold, 1e-6)  # never quite certain
        probs = (1 - weight) * np.asarray(prediction.probabilities) + weight * np.eye(10)[label]
        answer = replace(
            prediction,
            digit=label,
            confidence=float(probs[label]),
            probabilities=tuple(float(v) for v in probs),
            rejected=False,
            reason=None,
        )
    taught = (answer.digit, answer.rejected) != (prediction.digit, prediction.rejected)
    return Personal(answer if taught else prediction, prediction, taught)


@dataclass(frozen=True)
class PersonalNumber:
    """A number read for one person: each digit adapted as a single drawing is."""

    prediction: NumberPrediction  # the number this person gets
    digits: tuple[Personal, ...]  # per digit: the answer and the model alone

    @property
    def taught(self) -> bool:
        return any(d.taught for d in self.digits)

    def notes(self) -> list[str]:
        """One sentence per digit this person's corrections changed, which digit first."""
        return [f"Digit {i + 1}: {d.note}" for i, d in enumerate(self.digits) if d.taught]

    def to_dict(self) -> dict:
        out = self.prediction.to_dict()
        out["personalized"] = self.taught
        for row, d in zip(out["digits"], self.digits, strict=True):
            row["personalized"] = d.taught
            if d.taught:
                row["model_digit"] = d.model.digit
                row["note"] = d.note
        return out


def _alone(d: DigitInNumber) -> Prediction:
    return Prediction(
        None if d.rejected else d.digit,
        d.confidence,
        d.probabilities,
        False,
        d.image,
        rejected=d.rejected,
        features=d.features,
    )


def adapt_number(number: NumberPrediction, memory: Memory, threshold: float = THRESHOLD) -> PersonalNumber:
    """Each digit of a number read with what this person taught; a piece still shows its top digit."""
    answers = tuple(adapt(_alone(d), memory, threshold) for d in number.digits)
    digits = tuple(
        replace(
            d,
            digit=d.digit if a.prediction.digit is None else a.prediction.digit,
            confidence=a.prediction.confidence,
            probabilities=a.prediction.probabilities,
            rejected=a.prediction.rejected,
        )
        if a.taught
        else d
        for d, a in zip(number.digits, answers, strict=True)
    )
    return PersonalNumber(NumberPrediction("".join(str(d.digit) for d in digits), digits), answers)


def _unit(features: np.ndarray) -> np.ndarray:
    f = np.asarray(features, np.float32).reshape(-1)
    return f / max(float(np.linalg.norm(f)), 1e-12)


class Personalizer:
    """Each person's memory in a :class:`FeedbackStore`'s database; shared by the API and the pad."""

    def __init__(
        self, store: FeedbackStore, model: str, size: int | None = None, threshold: float = THRESHOLD
    ):
        self.store = store
        self.model = model  # the served model's version: memories of another model's features are not used
        self._writer: ThreadPoolExecutor | None = None  # made on first use, in the process that uses it
        self._pending: Future | None = None
        self._lock = threading.Lock()
        self.size = memory_size() if size is None else size
        self.threshold = threshold

    @classmethod
    def for_predictor(
        cls, store: FeedbackStore, predictor: Predictor, size: int | None = None
    ) -> Personalizer:
        """Memories keyed by the served model: its training time (unique per model), else its folder."""
        card = predictor.card
        return cls(store, str(card.created or card.version or predictor.model_path.parent.name), size)

    def recall(self, user: str) -> Memory:
        """What this person taught, newest first (one query)."""
        rows = self.store.fetch(
            "SELECT label, features FROM memories WHERE user_id = ? AND model = ? "
            "ORDER BY created DESC LIMIT ?",
            (user, self.model, 2 * self.size),
        )
        if not rows:
            return Memory.empty()
        labels, blobs = zip(*rows, strict=True)
        features = np.frombuffer(b"".join(bytes(b) for b in blobs), np.float32).reshape(len(rows), -1)
        return Memory(features, np.array(labels, np.int64))

    def _memory(self, user: str) -> Memory:
        """What this person taught; nothing when the database cannot be reached: reading never fails on it."""
        try:
            return self.recall(user)
        except StoreUnavailable:
            log.warning("corrections database unavailable: answering without personal memory")
            return Memory.empty()

    def answer(self, predictions: list[Prediction], user: str) -> list[Personal]:
        """The answers this person gets; nothing is written (see :meth:`accept`)."""
        memory = self._memory(user)
        return [adapt(p, memory, self.threshold) for p in predictions]

    def answer_numbers(self, numbers: list[NumberPrediction], user: str) -> list[PersonalNumber]:
        """The numbers this person gets; their digits are not remembered as accepted: a cut can be wrong."""
        memory = self._memory(user) if any(n.digits for n in numbers) else Memory.empty()
        return [adapt_number(n, memory, self.threshold) for n in numbers]

    def accept_later(self, user: str, answers: list[Personal]) -> None:
        """:meth:`accept` on a background thread, in order: a reply never waits for the write."""
        with self._lock:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="draw2digit-memory")
            self._pending = self._writer.submit(self._accept_logged, user, answers)

    def flush(self) -> None:
        """Wait until every accepted answer handed to :meth:`accept_later` is written."""
        with self._lock:
            pending = self._pending
        if pending is not None:
            pending.result()

    def _accept_logged(self, user: str, answers: list[Personal]) -> None:
        try:
            self.accept(user, answers)
        except Exception:  # a lost write of an accepted answer costs a little learning, never a request
            log.warning("an accepted answer was not remembered", exc_info=True)

    def accept(self, user: str, answers: list[Personal]) -> None:
        """Remember the answers this person got for finished drawings (a server does it after replying)."""
        for personal in answers:
            given = personal.prediction
            if not given.blank and not given.rejected:
                self.remember(user, given, given.digit, corrected=False)

    def remember(
        self, user: str, prediction: Prediction, label: int | None, *, corrected: bool = True
    ) -> bool:
        """Keep one drawing (its features, from ``prediction``) with its label; None: not a digit.

        A correction replaces what was remembered for the same drawing; an accepted
        answer never replaces a correction. Returns whether anything was kept.
        """
        if self.size <= 0 or prediction.blank or prediction.features is None:
            return False
        if label is not None and not 0 <= label <= 9:
            raise ValueError("label must be a digit from 0 to 9, or None for not a digit")
        t = db.memories
        key = drawing_key(prediction.image)
        row = {
            "label": NOT_A_DIGIT if label is None else label,
            "corrected": corrected,
            "features": _unit(prediction.features).tobytes(),
            "created": time.time(),
        }
        mine = sa.and_(t.c.user_id == user, t.c.model == self.model)
        with self.store.transaction() as conn:
            existing = conn.execute(sa.select(t.c.id, t.c.corrected).where(mine, t.c.drawing == key)).first()
            if existing is not None:
                if existing.corrected and not corrected:
                    return False
                conn.execute(sa.update(t).where(t.c.id == existing.id).values(**row))
                return True
            conn.execute(sa.insert(t).values(user_id=user, drawing=key, model=self.model, **row))
            self._cap(conn, user, corrected)
        return True

    def _cap(self, conn: sa.Connection, user: str, corrected: bool) -> None:
        """Drop this person's rows of one kind beyond the newest ``size``."""
        t = db.memories
        kind = (t.c.user_id == user, t.c.corrected == corrected)
        cutoff = (
            sa.select(t.c.created).where(*kind).order_by(t.c.created.desc()).offset(self.size - 1).limit(1)
        )
        conn.execute(sa.delete(t).where(*kind, t.c.created < cutoff.scalar_subquery()))

    def forget(self, user: str) -> int:
        """Remove everything kept about this person: memories and their corrections. Returns the rows."""
        with self.store.transaction() as conn:
            n = conn.execute(sa.delete(db.memories).where(db.memories.c.user_id == user)).rowcount
            n += conn.execute(sa.delete(db.corrections).where(db.corrections.c.user_id == user)).rowcount
        return n

    def usage(self) -> tuple[int, int]:
        """(people, remembered drawings) in the database, for ``draw2digit db status``."""
        t = db.memories
        query = sa.select(sa.func.count(sa.distinct(t.c.user_id)), sa.func.count())
        with self.store.transaction() as conn:
            people, rows = conn.execute(query.select_from(t)).one()
        return int(people), int(rows)

    def prune(self) -> int:
        """Bring every person's memory under the cap (after the cap was lowered). Returns rows deleted."""
        t = db.memories
        with self.store.transaction() as conn:
            users = conn.execute(sa.select(t.c.user_id).distinct()).scalars().all()
            before = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            if self.size <= 0:  # remembering is off: nothing is kept
                conn.execute(sa.delete(t))
            else:
                for user in users:
                    for corrected in (True, False):
                        self._cap(conn, user, corrected)
            after = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
        return int(before - after)
