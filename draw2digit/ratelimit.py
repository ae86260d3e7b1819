"""Rate limits that hold across workers and pods: the ``limits`` library, its counters in our database.

Flask-Limiter (the page and API) and the notebook pad both count with the
``limits`` library. Its in-memory storage counts per process, so a client sent
to another gunicorn worker would start afresh; :class:`DatabaseStorage` keeps the
fixed-window counters in the corrections database instead (SQLite shared by the
workers of one machine, PostgreSQL by every pod). ``DRAW2DIGIT_RATELIMIT_STORAGE``
may name any other ``limits`` storage (``redis://host:6379``, ``memory://``).
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

import sqlalchemy as sa
from limits import parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy.dialects import postgresql, sqlite

from draw2digit import db

if TYPE_CHECKING:
    from draw2digit.feedback import FeedbackStore

ENV_FEEDBACK_LIMIT = "DRAW2DIGIT_FEEDBACK_LIMIT"
ENV_RATELIMIT_STORAGE = "DRAW2DIGIT_RATELIMIT_STORAGE"
#: a person correcting a drawing every few seconds never meets it; a script does at once
FEEDBACK_LIMIT = "30 per minute;1200 per hour"
SCHEME = "draw2digit-db"
DATABASE = f"{SCHEME}://"  # the default: the corrections database
OFF = "off"


class DatabaseStorage(Storage):
    """Fixed-window counters in the ``rate_limits`` table, one atomic upsert per counted request."""

    STORAGE_SCHEME = [SCHEME]  # noqa: RUF012 (the limits library reads it as a class attribute)

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options) -> None:
        self.store: FeedbackStore = options.pop("store")
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (sa.exc.SQLAlchemyError, OSError)

    def _insert(self, engine: sa.Engine):
        return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        engine = self.store.engine()
        t, now = db.rate_limits, time.time()
        insert = self._insert(engine)(t).values(key=key, count=amount, expires=now + expiry)
        expired = t.c.expires <= now
        upsert = insert.on_conflict_do_update(
            index_elements=[t.c.key],
            set_={
                "count": sa.case((expired, amount), else_=t.c.count + amount),
                "expires": sa.case((expired, now + expiry), else_=t.c.expires),
            },
        ).returning(t.c.count)
        with engine.begin() as conn:
            count = int(conn.execute(upsert).scalar_one())
            if random.random() < 0.01:  # now and then, forget windows long over
                conn.execute(sa.delete(t).where(t.c.expires < now - 3600))
        return count

    def get(self, key: str) -> int:
        t = db.rate_limits
        with self.store.engine().connect() as conn:
            row = conn.execute(sa.select(t.c.count, t.c.expires).where(t.c.key == key)).first()
        return int(row.count) if row is not None and row.expires > time.time() else 0

    def get_expiry(self, key: str) -> float:
        t = db.rate_limits
        with self.store.engine().connect() as conn:
            expires = conn.execute(sa.select(t.c.expires).where(t.c.key == key)).scalar()
        return float(expires) if expires is not None else time.time()

    def check(self) -> bool:
        return self.store.check() == "ok"

    def reset(self) -> int | None:
        with self.store.engine().begin() as conn:
            return conn.execute(sa.delete(db.rate_limits)).rowcount

    def clear(self, key: str) -> None:
        with self.store.engine().begin() as conn:
            conn.execute(sa.delete(db.rate_limits).where(db.rate_limits.c.key == key))


def storage_for(uri: str, store: FeedbackStore) -> Storage:
    """The limits storage an operator named: the corrections database by default."""
    return DatabaseStorage(DATABASE, store=store) if uri == DATABASE else storage_from_string(uri)


class Limiter:
    """One named limit for callers that are not Flask routes (the notebook pad): ``hit`` or wait."""

    def __init__(self, limit: str, storage: Storage, scope: str):
        self.limits = [] if limit.strip().lower() == OFF else parse_many(limit)
        self.strategy = FixedWindowRateLimiter(storage)
        self.scope = scope

    def hit(self, who: str) -> float:
        """Count one call by ``who``: 0 when allowed, else the seconds until it would be."""
        for item in self.limits:
            if not self.strategy.hit(item, self.scope, who):
                reset = self.strategy.get_window_stats(item, self.scope, who).reset_time
                return max(1.0, reset - time.time())
        return 0.0
