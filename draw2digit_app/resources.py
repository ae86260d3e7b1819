"""One accessor per shared resource, as flaskr's ``get_db``: routes never spell out ``extensions``."""

from __future__ import annotations

import logging

from flask import Flask, current_app

from draw2digit.feedback import FeedbackStore
from draw2digit.personal import Personalizer
from draw2digit.predictor import Predictor

PREDICTOR = "draw2digit.predictor"
STORE = "draw2digit.feedback"
PERSONAL = "draw2digit.personal"
log = logging.getLogger("draw2digit.app")


def init_app(app: Flask, predictor: Predictor | None, store: FeedbackStore | None) -> None:
    """Load the model once per process (Predictor is thread-safe) and open the corrections store.

    A ready ``predictor`` or ``store`` is used as given: tests build a fresh app
    (and database) per test without loading the model again.
    """
    app.extensions[PREDICTOR] = predictor or Predictor(app.config["MODEL"])
    if store is None:
        # The one default store the pad, `draw2digit db` and `draw2digit finetune` use too (no setting:
        # the per-user data folder), so that the page's corrections reach fine-tuning.
        target = app.config.get("DATABASE_URL") or app.config.get("FEEDBACK_DB") or None
        # connected (and migrated) on first use, in the worker that uses it
        store = FeedbackStore(target, client_key=app.config.get("CLIENT_KEY"))
    app.extensions[STORE] = store
    app.extensions[PERSONAL] = Personalizer.for_predictor(
        store, app.extensions[PREDICTOR], size=app.config.get("MEMORY_SIZE")
    )


def get_predictor() -> Predictor:
    return current_app.extensions[PREDICTOR]


def get_store() -> FeedbackStore:
    return current_app.extensions[STORE]


def get_personalizer() -> Personalizer:
    return current_app.extensions[PERSONAL]
