"""The corrections database: a URL, the table, and migrations with Alembic.

``DRAW2DIGIT_DATABASE_URL`` picks it: SQLite by default (one file, for one
server), PostgreSQL for several servers sharing their corrections, e.g.
``postgresql+psycopg://user:password@host/draw2digit``. The schema only ever
changes through a migration in ``draw2digit/migrations/versions``; a store
brings its database up to date on first use (under a lock, so that several
processes starting at once migrate it once), and ``draw2digit db upgrade``
does the same as a deployment step.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

ENV_DATABASE_URL = "DRAW2DIGIT_DATABASE_URL"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK_KEY = 20_251_126  # PostgreSQL advisory lock: one migrating process at a time

metadata = sa.MetaData()
corrections = sa.Table(
    "corrections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created", sa.String(40), nullable=False),
    # 0-9, or 10: the person said it is not a digit (kept out of digit fine-tuning)
    sa.Column("label", sa.Integer, sa.CheckConstraint("label BETWEEN 0 AND 10"), nullable=False),
    sa.Column("predicted", sa.Integer, sa.CheckConstraint("predicted IS NULL OR predicted BETWEEN 0 AND 9")),
    sa.Column("original", sa.LargeBinary, nullable=False),  # PNG, at most 560 px on a side
    sa.Column("image", sa.LargeBinary, nullable=False),  # the 28x28 model input, uint8, row-major
    sa.Column("drawing", sa.String(16)),  # SHA-256 (16 hex) of the whole drawing
    sa.Column("position", sa.Integer),  # which digit of a number, from the left; NULL for one digit
    sa.Column("box", sa.String(64)),  # "left,top,right,bottom" of that digit
    sa.Column("client", sa.String(16)),  # keyed hash of the sender's address; NULL: before it was kept
    sa.Column("user_id", sa.String(36)),  # the sender's opaque user id, so that forgetting them removes it
    sa.Index("ix_corrections_drawing", "drawing"),  # the rows of one number drawing
    sa.Index("ix_corrections_client", "client"),
    sa.Index("ix_corrections_user_id", "user_id"),
)
#: what each person taught: the model's features of a drawing they finished, with its final label
memories = sa.Table(
    "memories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(36), nullable=False),
    sa.Column("drawing", sa.String(16), nullable=False),  # SHA-256 (16 hex) of the 28x28 model input
    sa.Column("model", sa.String(64), nullable=False),  # whose features: another model's mean nothing
    # 0-9, or 10: not a digit
    sa.Column("label", sa.Integer, sa.CheckConstraint("label BETWEEN 0 AND 10"), nullable=False),
    sa.Column("corrected", sa.Boolean, nullable=False),  # False: the answer they accepted
    sa.Column("features", sa.LargeBinary, nullable=False),  # float32, unit length
    sa.Column("created", sa.Float, nullable=False),  # seconds since the epoch; newest kept under the cap
    sa.UniqueConstraint("user_id", "model", "drawing", name="uq_memories_user_model_drawing"),
    sa.Index("ix_memories_user_created", "user_id", "created"),
)
settings = sa.Table(
    "settings",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)
#: fixed-window counters of the rate limiter, shared by every worker and pod that shares the database
rate_limits = sa.Table(
    "rate_limits",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
)


def url_for(target: str | os.PathLike) -> str:
    """A database URL from a URL or a path to an SQLite file."""
    text = os.fspath(target)
    return text if "://" in text else f"sqlite:///{Path(text).expanduser().resolve()}"


def make_engine(url: str) -> sa.Engine:
    """An engine with the settings each backend needs under concurrent writers."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode = WAL")  # readers never wait for the writer
            cur.execute("PRAGMA busy_timeout = 30000")
            cur.execute("PRAGMA synchronous = NORMAL")  # with WAL: no fsync per commit, never corrupt
            cur.close()

        return engine
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


@contextlib.contextmanager
def _migration_lock(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
            conn.commit()
            try:
                yield conn
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                conn.commit()
        elif engine.dialect.name == "sqlite" and engine.url.database:
            import fcntl

            with open(f"{engine.url.database}.migrate-lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                yield conn
        else:
            yield conn


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the database to ``revision``. A file made before migrations existed is adopted, rows kept."""
    from alembic import command
    from alembic.config import Config

    with _migration_lock(engine) as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        inspector = sa.inspect(conn)
        if inspector.has_table("corrections") and not inspector.has_table("alembic_version"):
            command.stamp(config, "0001")  # the first release's table, made without Alembic
        command.upgrade(config, revision)
        conn.commit()


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
