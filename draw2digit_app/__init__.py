"""The Flask front: a canvas page and a JSON API, a thin shell around ``Predictor``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from draw2digit.feedback import FeedbackStore
from draw2digit.predictor import Predictor
from draw2digit.ratelimit import DATABASE, FEEDBACK_LIMIT

log = logging.getLogger("draw2digit.app")


def create_app(
    test_config: dict[str, Any] | None = None,
    *,
    predictor: Predictor | None = None,
    store: FeedbackStore | None = None,
) -> Flask:
    """Application factory (as in Flask's tutorial).

    Settings come from the defaults below, then ``instance/config.py``, then
    ``DRAW2DIGIT_*`` environment variables (e.g. ``DRAW2DIGIT_MODEL``), then
    ``test_config``. A ready ``predictor`` and ``store`` are used as given.
    """
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        MODEL=None,  # folder or file; None = $DRAW2DIGIT_MODEL or the shipped models/
        MAX_CONTENT_LENGTH=4 * 1024 * 1024,  # bodies above this get 413
        MAX_BATCH=32,  # images per batch request
        DATABASE_URL=None,  # corrections database, e.g. postgresql+psycopg://... (DRAW2DIGIT_DATABASE_URL)
        FEEDBACK_DB=None,  # or an SQLite file; neither = the per-user default that `draw2digit db` reads
        LOG_REQUESTS=False,  # one line per request, with its X-Request-ID
        LOG_FORMAT="text",  # or "json": one JSON object per line, for log collectors
        TRUSTED_PROXIES=0,  # reverse proxies whose X-Forwarded-* headers are honoured (0: none)
        # Flask-Limiter notation ("30 per minute;1200 per hour"), or "off"; per client address
        FEEDBACK_LIMIT=FEEDBACK_LIMIT,  # a person correcting every few seconds never meets it
        PREDICT_LIMIT="off",  # batch clients and benchmarks are not surprised; e.g. "600 per minute"
        RATELIMIT_STORAGE=DATABASE,  # the corrections database (shared); or redis://..., memory://
        MEMORY_SIZE=None,  # corrections (and accepted answers) remembered per person; None: the default
        CLIENT_KEY=None,  # the key of the clients' hash; default: one the database makes for itself
    )
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("DRAW2DIGIT")
    if test_config:
        app.config.update(test_config)

    from draw2digit_app import api, limiting, observability, pages, resources

    resources.init_app(app, predictor, store)
    observability.init_app(app)

    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    limiting.init_app(app)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        """Every error, from any route, is JSON: ``{"error": "..."}``; routes say why with ``abort``."""
        generic = {
            404: f"no such endpoint: {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"the request body is larger than {app.config['MAX_CONTENT_LENGTH'] // (1024 * 1024)} MB",
        }
        said = exc.description if exc.description != type(exc).description else None
        message = said or generic.get(exc.code or 500) or exc.description or exc.name
        response = jsonify(error=message)
        response.status_code = exc.code or 500
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(error="internal error; the server logged it"), 500

    return app
