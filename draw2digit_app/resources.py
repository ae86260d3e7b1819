"""One accessor per shared resource, as flaskr's ``get_db``: routes never spell out ``extensions``."""

from __future__ import annotations

import logging
import threading

from flask import Flask, current_app

from draw2digit.feedback import FeedbackStore
from draw2digit.predictor import Predictor

PREDICTOR = "draw2digit.predictor"
STORE = "draw2digit.feedback"
log = logging.getLogger("draw2digit.app")


def init_app(app: Flask, predictor: Predictor | None, store: FeedbackStore | None) -> None:
    """Load the model once per process (Predictor is thread-safe) and open the corrections store.

    A ready ``predictor`` or ``store`` is used as given: tests build a fresh app
    (and database) per test without loading the model again.
    """
    import os

    app.extensions[PREDICTOR] = predictor or Predictor(app.config["MODEL"])
    if store is None:
        target = (
            app.config.get("DATABASE_URL")
            or app.config.get("FEEDBACK_DB")
            or os.path.join(app.instance_path, "feedback.sqlite3")
        )
        store = FeedbackStore(target)  # connected (and migrated) on first use, in the worker that uses it
    app.extensions[STORE] = store


def get_predictor() -> Predictor:
    return current_app.extensions[PREDICTOR]


def get_store() -> FeedbackStore:
    return current_app.extensions[STORE]


def warm_explainer_in_background(app: Flask) -> threading.Thread:
    """Load what "Show why" needs while the server already answers ``/predict``.

    A failure (no Keras copy beside the model, no TensorFlow installed) is
    logged, not raised: the explanation then answers its own clear error when asked.
    """
    predictor = app.extensions[PREDICTOR]

    def warm() -> None:
        try:
            seconds = predictor.warm_explainer()
            log.info("explanations ready after %.1f s", seconds)
        except Exception as exc:  # a background convenience must never kill the server
            log.warning("explanations not warmed: %s", exc)

    thread = threading.Thread(target=warm, name="warm-explainer", daemon=True)
    thread.start()
    return thread
